"""PostgreSQL for the store tests (the hand-over store and the outbox on the scaled backend).

Needs PostgreSQL on 127.0.0.1:5432 with the ``postgres`` role without a password (trust), as on
the project's machines. A test run makes its own database ``af_test_<pid>_<random>`` and drops
it at the end; tests that need PostgreSQL are skipped with the reason when it is not there.

Fixtures (import them into a test module):

* ``pg`` – the run's database, emptied before the test (every ``af_`` table truncated);
* ``backend`` – parametrised ``sqlite`` / ``postgres``: ``backend.env`` are the settings
  variables that choose it (empty for SQLite, the embedded default).
"""
from __future__ import annotations

import functools
import os
import secrets
import socket
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


@contextmanager
def new_database() -> Iterator[PgDatabase]:
    """A database of its own, dropped afterwards (also when our pools still hold connections)."""
    reason = why_not_available()
    if reason:
        pytest.skip(f"PostgreSQL-backend kræver PostgreSQL: {reason}")
    name = f"af_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin_sql(f'CREATE DATABASE "{name}"')
    try:
        yield PgDatabase(name, env_for(name))
    finally:
        from actions.db import close_pools

        close_pools()
        admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database() -> Iterator[PgDatabase]:
    with new_database() as database:
        yield database


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
