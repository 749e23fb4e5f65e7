"""The small database layer under the hand-over store and the outbox.

Two backends with one interface, so each store writes its SQL once:

* ``SqliteDatabase`` – one SQLite file (the embedded default: ``make run``, one host).
* ``PostgresDatabase`` – the tracker store's PostgreSQL database, chosen with
  ``AF_TRACKER_STORE=postgres`` (the scaled deployment: several action servers, web
  servers and outbox workers on different hosts). Our tables live next to Rasa's
  ``events`` table with the prefix ``af_`` (``af_handoffs``, ``af_outbox``, ...).

The stores write SQLite-flavoured SQL with ``?`` placeholders and their own table names
(``handoffs``, ``outbox``); on PostgreSQL every statement is translated once (and cached):
``?`` becomes ``%s``, and each of the store's table names – and index names that start
with one – gets the ``af_`` prefix. Schema text is translated too (``REAL`` → ``DOUBLE
PRECISION``, ``INTEGER PRIMARY KEY AUTOINCREMENT`` → ``BIGSERIAL PRIMARY KEY``).

Concurrency, where SQLite's single writer did the work:

* ``connect()`` – SQLite: each statement commits by itself; PostgreSQL: the whole block is
  one transaction (committed at the end, rolled back on an exception). Conditional
  ``UPDATE ... WHERE status = 'waiting'`` statements give "one winner" on both: PostgreSQL
  re-checks the condition on the newest row version after a concurrent update committed.
* ``transaction(lock=...)`` – a multi-step check that must be atomic (one open hand-over
  per leader, the login attempt reservation): SQLite ``BEGIN IMMEDIATE`` (one writer);
  PostgreSQL a transaction that first takes a transaction-level advisory lock named by
  ``lock`` (``pg_advisory_xact_lock``), so every process doing the same step waits its turn.
* ``Connection.for_update_skip_locked`` – appended to a ``SELECT`` that claims rows (the
  outbox worker): on PostgreSQL rows another worker is claiming are skipped, not waited for.
* Schema creation is idempotent (``IF NOT EXISTS``) and, on PostgreSQL, serialised with an
  advisory lock, so processes starting at the same time on an empty database do not trip
  over each other.

PostgreSQL connections come from a small pool per process (the stores are called from
threads via ``asyncio.to_thread``); a connection idle for a while is checked before use, and
a broken one is thrown away. Every statement has a time limit (``STATEMENT_TIMEOUT_MS``), so
a lock that is never released shows up as an error instead of a hang.

Nothing here reads the environment: ``database_for(settings, sqlite_path)`` picks the
backend from the settings.
"""
from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

TABLE_PREFIX = "af_"
POOL_SIZE = 8  # connections per process and database
POOL_WAIT_SECONDS = 30.0
PING_AFTER_IDLE_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 10
STATEMENT_TIMEOUT_MS = 30_000


class DatabaseError(Exception):
    """The store's database could not be used (message in Danish, for operators)."""


class Cursor:
    """What ``Connection.execute`` returns: rows by index and by column name."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> List[Any]:
        return list(self._cursor.fetchall())


class Connection:
    """One connection (SQLite) or one transaction (PostgreSQL) of a store."""

    dialect = ""
    for_update_skip_locked = ""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        for params in rows:
            self.execute(sql, params)

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an ``INSERT`` into a table with an ``id`` column; the new row's id."""
        raise NotImplementedError


class Database:
    """A store's database. ``tables``: the store's table names (prefixed on PostgreSQL)."""

    dialect = ""

    def __init__(self, tables: Sequence[str]) -> None:
        self.tables = tuple(tables)

    # -- what the stores use --------------------------------------------------------
    def connect(self) -> "Iterator[Connection]":  # pragma: no cover - interface
        raise NotImplementedError

    def transaction(self, lock: Optional[str] = None) -> "Iterator[Connection]":  # pragma: no cover
        raise NotImplementedError

    def ensure_schema(self, ddl: str, added_columns: Dict[str, Sequence[Tuple[str, str]]] = None) -> None:
        raise NotImplementedError

    def exists(self) -> bool:
        """Whether the store was ever created here (without creating anything)."""
        raise NotImplementedError

    def has_table(self, table: str) -> bool:
        raise NotImplementedError

    @property
    def key(self) -> str:
        """Identifies the database within this process (for caches)."""
        raise NotImplementedError

    def describe(self) -> str:
        """Where the store is, for operators (never a password)."""
        raise NotImplementedError


# ====================================================================== SQLite
class _SqliteConnection(Connection):
    dialect = "sqlite"

    def __init__(self, db: sqlite3.Connection) -> None:
        self.raw = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return Cursor(self.raw.execute(sql, tuple(params)))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.raw.executemany(sql, [tuple(r) for r in rows])

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.raw.execute(sql, tuple(params)).lastrowid)


class SqliteDatabase(Database):
    """One SQLite file in WAL mode; a connection per call (cheap), statements autocommit."""

    dialect = "sqlite"

    def __init__(self, path: Path, tables: Sequence[str], *, timeout: float = 10.0,
                 pragmas: Sequence[str] = ()) -> None:
        super().__init__(tables)
        self.path = Path(path)
        self.timeout = float(timeout)
        self.pragmas = tuple(pragmas)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        db = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            for pragma in self.pragmas:
                db.execute(f"PRAGMA {pragma}")
            yield _SqliteConnection(db)
        finally:
            db.close()

    @contextmanager
    def transaction(self, lock: Optional[str] = None) -> Iterator[Connection]:
        """``BEGIN IMMEDIATE``: SQLite has one writer, so this is atomic whatever ``lock`` says."""
        with self.connect() as conn:
            conn.raw.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.raw.execute("COMMIT")
            except BaseException:
                conn.raw.execute("ROLLBACK")
                raise

    def ensure_schema(self, ddl: str, added_columns: Dict[str, Sequence[Tuple[str, str]]] = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as conn:
            conn.raw.execute("PRAGMA journal_mode=WAL")
            conn.raw.executescript(ddl)
            for table, columns in (added_columns or {}).items():  # stores made before a column existed
                present = {row[1] for row in conn.raw.execute(f"PRAGMA table_info({table})")}
                for name, kind in columns:
                    if name not in present:
                        conn.raw.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    def exists(self) -> bool:
        return self.path.exists()

    def has_table(self, table: str) -> bool:
        if not self.path.exists():
            return False
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=self.timeout)
        try:
            return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone() is not None
        finally:
            db.close()

    @property
    def key(self) -> str:
        return f"sqlite:{self.path}"

    def describe(self) -> str:
        return str(self.path)


# ====================================================================== PostgreSQL
def lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for ``name`` (stable across processes and hosts)."""
    digest = hashlib.sha256(f"af-assistenten:{name}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _translate_ddl(ddl: str) -> str:
    ddl = re.sub(r"INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY", ddl)
    return re.sub(r"\bREAL\b", "DOUBLE PRECISION", ddl)


class _Pool:
    """A few open connections per process, handed to one thread at a time."""

    def __init__(self, connect) -> None:
        self._connect = connect
        self._idle: List[Tuple[Any, float]] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(POOL_SIZE)

    @contextmanager
    def connection(self) -> Iterator[Any]:
        if not self._slots.acquire(timeout=POOL_WAIT_SECONDS):
            raise DatabaseError(f"ingen ledig forbindelse til PostgreSQL efter {POOL_WAIT_SECONDS:g} sekunder")
        try:
            conn = self._checkout()
            try:
                yield conn
            finally:
                self._give_back(conn)
        finally:
            self._slots.release()

    def _checkout(self):
        import psycopg2

        while True:
            with self._lock:
                item = self._idle.pop() if self._idle else None
            if item is None:
                return self._connect()
            conn, since = item
            if conn.closed:
                continue
            if time.monotonic() - since > PING_AFTER_IDLE_SECONDS:
                try:  # the server may have restarted, or a proxy dropped the idle connection
                    with conn.cursor() as cur:
                        cur.execute("SELECT 1")
                    conn.rollback()
                except psycopg2.Error:
                    _close_quietly(conn)
                    continue
            return conn

    def _give_back(self, conn) -> None:
        """Idle again when it is healthy and outside a transaction; closed otherwise."""
        import psycopg2

        try:
            if not conn.closed:
                conn.rollback()  # nothing to do after a commit; ends a transaction left open
                if conn.status == psycopg2.extensions.STATUS_READY:
                    with self._lock:
                        self._idle.append((conn, time.monotonic()))
                    return
        except psycopg2.Error:
            pass
        _close_quietly(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            _close_quietly(conn)


def _close_quietly(conn) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - it is being thrown away
        pass


_pools: Dict[Tuple[int, str], _Pool] = {}
_pools_lock = threading.Lock()


def close_pools() -> None:
    """Close every idle PostgreSQL connection of this process (tests, before dropping a database)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


class _PostgresConnection(Connection):
    dialect = "postgres"
    for_update_skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, database: "PostgresDatabase", raw: Any) -> None:
        self.database = database
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        cursor = self.raw.cursor(cursor_factory=self.database.cursor_factory)
        cursor.execute(self.database.translate(sql), tuple(params))
        return Cursor(cursor)

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.execute(sql.rstrip().rstrip(";") + " RETURNING id", params).fetchone()[0])


class PostgresDatabase(Database):
    """Our tables (prefixed ``af_``) in the tracker store's PostgreSQL database."""

    dialect = "postgres"

    def __init__(self, *, host: str, port: int, dbname: str, user: str, password: str,
                 tables: Sequence[str], prefix: str = TABLE_PREFIX) -> None:
        super().__init__(tables)
        self.host, self.port, self.dbname, self.user = host, int(port), dbname, user
        self._password = password
        self.prefix = prefix
        self._names = re.compile(r"\b(%s)(\w*)" % "|".join(re.escape(t) for t in sorted(tables, key=len, reverse=True)))
        self._translated: Dict[str, str] = {}
        try:
            from psycopg2.extras import DictCursor
        except ImportError as exc:  # an image without the driver (Rasa's own images have it)
            raise DatabaseError("AF_TRACKER_STORE=postgres: udbakken og overdragelseskøen bruger PostgreSQL, "
                                "men Python-pakken psycopg2 (psycopg2-binary) er ikke installeret") from exc
        self.cursor_factory = DictCursor

    # -- connections -----------------------------------------------------------------
    def _open(self):
        import psycopg2

        try:
            conn = psycopg2.connect(
                host=self.host, port=self.port, dbname=self.dbname, user=self.user,
                password=self._password or None, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name="af-assistenten", options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
            )
        except psycopg2.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatabaseError(f"kan ikke forbinde til PostgreSQL ({self.describe()}): {first}") from exc
        conn.autocommit = False
        return conn

    def _pool(self) -> _Pool:
        key = (os.getpid(), self.key)  # a forked child never shares its parent's sockets
        with _pools_lock:
            pool = _pools.get(key)
            if pool is None:
                pool = _pools[key] = _Pool(self._open)
        return pool

    def translate(self, sql: str) -> str:
        done = self._translated.get(sql)
        if done is None:
            done = self._names.sub(lambda m: f"{self.prefix}{m.group(1)}{m.group(2)}", sql)
            done = done.replace("%", "%%").replace("?", "%s")
            self._translated[sql] = done
        return done

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self._pool().connection() as raw:
            try:
                yield _PostgresConnection(self, raw)
                raw.commit()
            except BaseException:
                try:
                    if not raw.closed:
                        raw.rollback()
                except Exception:  # noqa: BLE001 - the connection is broken; the pool drops it
                    pass
                raise

    @contextmanager
    def transaction(self, lock: Optional[str] = None) -> Iterator[Connection]:
        """One transaction; with ``lock``, every process doing the same step waits its turn."""
        with self.connect() as conn:
            if lock:
                with conn.raw.cursor() as cur:
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(f"{self.prefix}{lock}"),))
            yield conn

    def ensure_schema(self, ddl: str, added_columns: Dict[str, Sequence[Tuple[str, str]]] = None) -> None:
        statements = [s.strip() for s in _translate_ddl(ddl).split(";") if s.strip()]
        with self.transaction(lock="schema") as conn:
            for statement in statements:
                conn.execute(statement)
            for table, columns in (added_columns or {}).items():
                for name, kind in columns:
                    kind = _translate_ddl(kind)
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {kind}")

    def has_table(self, table: str) -> bool:
        with self.connect() as conn:
            with conn.raw.cursor() as cur:
                cur.execute("SELECT to_regclass(%s)", (f"{self.prefix}{table}",))
                return cur.fetchone()[0] is not None

    def exists(self) -> bool:
        return self.has_table(self.tables[0])

    @property
    def key(self) -> str:
        return f"postgres:{self.user}@{self.host}:{self.port}/{self.dbname}/{self.prefix}{','.join(self.tables)}"

    def describe(self) -> str:
        return f"PostgreSQL {self.user}@{self.host}:{self.port}/{self.dbname}, tabeller {self.prefix}*"


def uses_postgres(settings: Any) -> bool:
    """The scaled deployment: the stores live in the tracker store's PostgreSQL database."""
    return getattr(settings, "tracker_store", "sqlite") == "postgres"


def database_for(settings: Any, sqlite_path: Path, tables: Sequence[str], **sqlite_options: Any) -> Database:
    """PostgreSQL when ``settings.tracker_store == "postgres"``, else the SQLite file ``sqlite_path``."""
    if uses_postgres(settings):
        return PostgresDatabase(host=settings.postgres_host, port=settings.postgres_port,
                                dbname=settings.postgres_db, user=settings.postgres_user,
                                password=settings.postgres_password, tables=tables)
    return SqliteDatabase(sqlite_path, tables, **sqlite_options)
