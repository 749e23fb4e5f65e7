"""PostgreSQL for the store tests (the hand-over store and the outbox on the scaled backend).

Needs PostgreSQL on 127.0.0.1:5432 with the ``postgres`` role without a password (trust), as on
the project's machines. A test run makes one database of its own, ``af_test_<pid>_<8 hex>``, and
drops it when the run ends; one left behind by a run that was killed (its process is gone) is
dropped by the next run. Tests that need PostgreSQL are skipped with the reason when it is not there.

Fixtures (import them into a test module):

* ``pg`` – the run's database, emptied before the test (every ``af_`` table truncated);
* ``backend`` – parametrised ``sqlite`` / ``postgres``: ``backend.env`` are the settings
  variables that choose it (empty for SQLite, the embedded default).
"""
from __future__ import annotations

import atexit
import functools
import os
import re
import secrets
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List

import pytest

PG_HOST, PG_PORT, PG_ADMIN = "127.0.0.1", 5432, "postgres"


@functools.lru_cache(maxsize=1)
def why_not_available() -> str:
    with socket.socket() as sock:
        sock.settimeout(1)
        if sock.connect_ex((PG_HOST, PG_PORT)) != 0:
            return f"PostgreSQL svarer ikke på {PG_HOST}:{PG_PORT}"
    try:
        import psycopg2

        psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_ADMIN, dbname="postgres", connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - any reason is a reason to skip
        return f"PostgreSQL afviser rollen {PG_ADMIN!r} uden adgangskode: {exc}"
    return ""


def admin_sql(statement: str, dbname: str = "postgres") -> List[tuple]:
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_ADMIN, dbname=dbname, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


@dataclass
class PgDatabase:
    name: str
    env: Dict[str, str] = field(default_factory=dict)

    def sql(self, statement: str) -> List[tuple]:
        return admin_sql(statement, self.name)

    def tables(self) -> List[str]:
        return sorted(r[0] for r in self.sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'af\\_%'"))

    def clean(self) -> None:
        tables = self.tables()
        if tables:
            self.sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")

    def drop_table(self, table: str) -> None:
        self.sql(f"DROP TABLE IF EXISTS {table}")


def env_for(name: str) -> Dict[str, str]:
    """The settings variables of the scaled deployment, pointing at database ``name``."""
    return {"AF_TRACKER_STORE": "postgres", "AF_POSTGRES_HOST": PG_HOST, "AF_POSTGRES_PORT": str(PG_PORT),
            "AF_POSTGRES_USER": PG_ADMIN, "AF_POSTGRES_DB": name}


_OURS = re.compile(r"^af_test_(\d+)_[0-9a-f]{8}$")  # tests/test_scaled.py's have 6 hex digits


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drop_stale_databases() -> None:
    """Databases of this helper whose test run was killed before it could drop them."""
    for (name,) in admin_sql("SELECT datname FROM pg_database WHERE datname LIKE 'af\\_test\\_%'"):
        match = _OURS.match(name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _create() -> PgDatabase:
    reason = why_not_available()
    if reason:
        pytest.skip(f"PostgreSQL-backend kræver PostgreSQL: {reason}")
    drop_stale_databases()
    name = f"af_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin_sql(f'CREATE DATABASE "{name}"')
    return PgDatabase(name, env_for(name))


def _drop(database: PgDatabase) -> None:
    from af_core.db import close_pools

    close_pools()
    admin_sql(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')


@contextmanager
def new_database() -> Iterator[PgDatabase]:
    """A database of its own, dropped afterwards (also when our pools still hold connections)."""
    database = _create()
    try:
        yield database
    finally:
        _drop(database)


_run_database: List[PgDatabase] = []
_run_lock = threading.Lock()


def _drop_run_database() -> None:
    for database in _run_database:
        try:
            _drop(database)
        except Exception:  # noqa: BLE001 - PostgreSQL went away; the next run drops it
            pass


@pytest.fixture(scope="session")
def pg_database() -> PgDatabase:
    """The run's database: one for every test module that uses it, dropped when the run ends."""
    with _run_lock:
        if not _run_database:
            _run_database.append(_create())
            atexit.register(_drop_run_database)
    return _run_database[0]


@pytest.fixture
def pg(pg_database) -> PgDatabase:
    pg_database.clean()
    return pg_database


@dataclass(frozen=True)
class Backend:
    name: str
    env: Dict[str, str]
    pg: Any = None  # the PgDatabase on the postgres backend


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request) -> Backend:
    if request.param == "postgres":
        database = request.getfixturevalue("pg")
        return Backend("postgres", dict(database.env), database)
    return Backend("sqlite", {})
