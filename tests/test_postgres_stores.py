"""The scaled deployment's shared stores across processes: the hand-over queue and the outbox in
PostgreSQL (``AF_TRACKER_STORE=postgres``, docs/deployment.md).

Every "server" here is its own OS process (multiprocessing "spawn": a fresh interpreter) with its
own ``AF_VAR_DIR`` – like servers on different hosts, they share no file, only the database.
They start each step at the same moment (a barrier), so the races are real:

* two web servers take the same waiting chats: each chat has exactly one winner;
* two action servers queue the same leaders from different windows: one open hand-over per leader;
* two web servers' time-out tasks: each overdue chat is claimed once;
* three web servers receive login attempts: the shared limits hold exactly, and a login form is
  used once, whichever server gets it;
* two outbox workers and two action servers (a second "ja") over the same requests, against a
  loopback ServiceNow without a unique index: each case is created exactly once;
* servers starting at once on an empty database all create the schema without tripping.

And the single-process parts of moving to it: ``--import-sqlite``, ``--check``, and the test
databases themselves (one left behind by a killed run is dropped by the next).

Needs PostgreSQL on 127.0.0.1:5432 (tests/pg.py); skipped with the reason when it is not there.
The store semantics on both backends, in one process, are in tests/test_handoff_units.py,
tests/test_console_security.py and tests/test_outbox_edges.py.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import socket
import time
from collections import Counter
from typing import Any, Callable, Dict, List, Sequence

import pytest

from af_core import servicenow_client as sn
from af_core.case_service import CaseService, correlation_display
from af_core.handoff_store import ACTIVE, HandoffStore, LoginLimits
from af_core.outbox import DELIVERED, Outbox, deliver_due
from af_core.settings import load_settings
from tests import pg_workers
from tests.pg import new_database, pg, pg_database  # noqa: F401 - fixtures
from tests.test_outbox_edges import FakeServiceNow, help_request, own_logging  # noqa: F401 - fixture

CTX = multiprocessing.get_context("spawn")
PROCESS_TIMEOUT = 120


def host_env(pg, tmp_path, host: str, **extra: str) -> Dict[str, str]:
    """The environment of one server: the shared PostgreSQL, but a var directory of its own."""
    env = {"AF_MODE": "development", "AF_VAR_DIR": str(tmp_path / host), **pg.env}
    env.update(extra)
    return env


def run_servers(target: Callable, argument_lists: Sequence[Sequence[Any]]) -> List[Any]:
    """Start one process per argument list, all waiting at one barrier; their results."""
    barrier = CTX.Barrier(len(argument_lists), timeout=PROCESS_TIMEOUT)
    results = CTX.Queue()
    processes = [CTX.Process(target=target, args=(*args, barrier, results), daemon=True) for args in argument_lists]
    for process in processes:
        process.start()
    try:
        got: List[Any] = []
        deadline = time.monotonic() + PROCESS_TIMEOUT
        while len(got) < len(processes):
            try:
                got.append(results.get(timeout=0.2))
            except queue.Empty:
                failed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
                assert not failed, f"a server process failed (exit code {failed[0]}); see its traceback above"
                assert time.monotonic() < deadline, "the server processes did not finish in time"
        for process in processes:
            process.join(30)
            assert process.exitcode == 0, f"a server process ended with {process.exitcode}"
        return got
    finally:
        for process in processes:  # only the processes started here
            if process.is_alive():
                process.kill()
                process.join(5)


def parent_settings(pg, tmp_path, **extra):
    return load_settings(host_env(pg, tmp_path, "parent", **extra))


# ------------------------------------------------------------------------------ the hand-over queue
def test_two_web_servers_taking_the_same_chats_never_both_win(pg, tmp_path):
    store = HandoffStore.for_settings(parent_settings(pg, tmp_path))
    ids = [store.request(f"c{i}", leader_name="Leder", leader_email=f"leder{i}@buf.kk.dk", leader_institution=None,
                         leader_unit=None, topic=None, wait_seconds=600)[0].id for i in range(40)]
    outcome = dict(run_servers(pg_workers.take_all, [
        (host_env(pg, tmp_path, "web-1"), "sofie", ids),
        (host_env(pg, tmp_path, "web-2"), "peter", ids),
    ]))
    sofie, peter = set(outcome["sofie"]), set(outcome["peter"])
    assert not sofie & peter, "a chat was taken by two supporters"
    assert sofie | peter == set(ids), "every waiting chat was taken by somebody"
    for handoff_id in ids:
        handoff = store.get(handoff_id)
        winner = "sofie" if handoff_id in sofie else "peter"
        assert handoff.status == ACTIVE and handoff.supporter == winner


def test_two_action_servers_queue_a_leader_once(pg, tmp_path):
    emails = [f"leder{i}@buf.kk.dk" for i in range(20)]
    outcome = dict(run_servers(pg_workers.request_for_leaders, [
        (host_env(pg, tmp_path, "actions-1"), "vindue-a", emails),
        (host_env(pg, tmp_path, "actions-2"), "vindue-b", emails),
    ]))
    created = Counter(outcome["vindue-a"] + outcome["vindue-b"])
    assert created == Counter(emails), "one open hand-over per leader, whichever server she asked through"
    store = HandoffStore.for_settings(parent_settings(pg, tmp_path))
    assert sorted(h.leader_email for h in store.list_open()) == sorted(emails)


def test_two_web_servers_time_out_each_chat_once(pg, tmp_path):
    store = HandoffStore.for_settings(parent_settings(pg, tmp_path))
    past = time.time() - 3600
    ids = [store.request(f"c{i}", leader_name=None, leader_email=None, leader_institution=None, leader_unit=None,
                         topic=None, wait_seconds=5, now=past + i)[0].id for i in range(30)]
    outcome = dict(run_servers(pg_workers.claim_time_outs, [
        (host_env(pg, tmp_path, "web-1"), "web-1"),
        (host_env(pg, tmp_path, "web-2"), "web-2"),
    ]))
    claimed = outcome["web-1"] + outcome["web-2"]
    assert sorted(claimed) == sorted(ids), "each overdue chat is timed out (and gets its case) exactly once"


def test_login_limits_and_single_use_forms_hold_across_web_servers(pg, tmp_path):
    limits = LoginLimits()
    servers = 3

    def phases(server: int):
        spread = [dict(ip=f"10.{server}.0.{i}", username="sofie.lund", device=None,
                       nonce_hash=f"spread-{server}-{i}") for i in range(limits.per_user + 2)]
        one_address = [dict(ip="10.9.9.9", username="peter.holm", device=None, nonce_hash=f"one-{server}-{i}")
                       for i in range(limits.per_ip_user + 1)]
        same_forms = [dict(ip=f"10.20.{i}.1", username=f"bruger{i}", device=None, nonce_hash=f"form-{i}")
                      for i in range(8)]
        return [spread, one_address, same_forms]

    outcome = dict(run_servers(pg_workers.reserve_logins, [
        (host_env(pg, tmp_path, f"web-{n}"), f"web-{n}", phases(n)) for n in range(servers)
    ]))
    spread, one_address, same_forms = (Counter(r for name in outcome for r in outcome[name][phase])
                                       for phase in range(3))
    assert spread["ok"] == limits.per_user, f"a guess spread over servers and addresses: {spread}"
    assert one_address["ok"] == limits.per_ip_user, f"one address, one name, several servers: {one_address}"
    assert same_forms == Counter(ok=8, nonce=8 * (servers - 1)), "each login form is used once in all"
    rows = pg.sql("SELECT username, COUNT(*) FROM af_login_attempts GROUP BY username ORDER BY username")
    assert dict(rows) == {"sofie.lund": limits.per_user, "peter.holm": limits.per_ip_user,
                          **{f"bruger{i}": 1 for i in range(8)}}


# ------------------------------------------------------------------------------ the outbox
@pytest.fixture
def fake():
    server = FakeServiceNow()
    yield server
    server.stop()


def test_outbox_workers_and_a_second_yes_on_other_servers_deliver_each_case_once(pg, tmp_path, fake):
    fake.slow_post = 0.05  # every delivery takes a while, so the servers overlap
    extra = {"SERVICENOW_URL": fake.url, "SERVICENOW_TIMEOUT_SECONDS": "5", "SERVICENOW_BACKOFF_SECONDS": "0.01",
             "AF_OUTBOX_INTERVAL_SECONDS": "0.05"}
    settings = parent_settings(pg, tmp_path, **extra)
    service = CaseService(settings)
    queued = [f"{i:032x}" for i in range(1, 21)]  # ServiceNow was down when these leaders said "ja"
    fresh = [f"{i:032x}" for i in range(100, 110)]  # these say "ja" now, on two action servers at once
    for cid in queued:
        record = service.build_record(help_request(correlation_id=cid))
        service.outbox.add(record, correlation_id=cid, correlation_display=correlation_display(cid),
                           requester_email=record[sn.F_REQUESTER_EMAIL])
    requests = [vars(help_request(correlation_id=cid)) for cid in queued + fresh]
    deadline = time.time() + 90
    outcome = run_servers(
        pg_workers.outbox_server,
        [(host_env(pg, tmp_path, "outbox-1", **extra), "worker", "outbox-1", deadline),
         (host_env(pg, tmp_path, "outbox-2", **extra), "worker", "outbox-2", deadline),
         (host_env(pg, tmp_path, "actions-1", **extra), "actions", "actions-1", requests),
         (host_env(pg, tmp_path, "actions-2", **extra), "actions", "actions-2", list(reversed(requests)))],
    )
    deliver_due(service.outbox, service.client, 0.0)  # anything an action server left queued
    by_cid = Counter(record[sn.F_CORRELATION_ID] for record in fake.records)
    assert by_cid == Counter(queued + fresh), f"each case exactly once in ServiceNow: {by_cid.most_common(3)}"
    assert fake.posts == len(queued) + len(fresh), "never a second POST of the same request"
    numbers = {record[sn.F_CORRELATION_ID]: record[sn.F_NUMBER] for record in fake.records}
    answers = [answer for name, answers in outcome if name.startswith("actions") for answer in answers]
    assert len(answers) == 2 * len(requests)
    for cid, status, number, reference in answers:  # both servers name the same case to the leader
        assert (status, number) == ("created", numbers[cid]) or (status, reference) == (
            "queued", correlation_display(cid))
    assert sum(1 for answer in answers if answer[1] == "created") >= len(requests)
    assert all(Outbox.for_settings(settings).receipt(cid)["status"] == DELIVERED for cid in queued + fresh)
    assert not settings.outbox_path.exists(), "the outbox is in PostgreSQL, not in a file"


# ------------------------------------------------------------------------------ first start
def test_servers_starting_at_once_on_an_empty_database_all_create_the_schema(tmp_path):
    with new_database() as empty:
        outcome = run_servers(pg_workers.open_stores, [(host_env(empty, tmp_path, f"host-{n}"),) for n in range(4)])
        assert outcome == [("ok", "")] * 4, outcome
        assert {"af_handoffs", "af_sessions", "af_audit", "af_transcript_reads", "af_login_attempts",
                "af_login_nonces", "af_outbox"} <= set(empty.tables())


# ------------------------------------------------------------------------------ moving to the scaled set-up
def test_requests_left_in_a_sqlite_outbox_are_moved_to_postgres_once(pg, tmp_path, capsys, own_logging):
    from af_core import outbox as outbox_module

    old_file = tmp_path / "single-host" / "outbox.sqlite3"
    single = Outbox(old_file)
    for cid in ("a" * 32, "b" * 32, "c" * 32, "d" * 32):
        single.add({"description": cid}, correlation_id=cid, correlation_display=correlation_display(cid),
                   requester_email="mette@buf.kk.dk")
    single.mark_dead("c" * 32, "HTTP 400: afvist")
    single.mark_delivered("d" * 32, "AFH0001001", "")
    settings = parent_settings(pg, tmp_path, AF_OUTBOX_PATH=str(old_file), AF_LOG_DIR=str(tmp_path / "logs"))
    shared = Outbox.for_settings(settings)
    assert shared.missing_from(single) == 3  # what the worker warns about at start
    assert outbox_module.main(["--import-sqlite"], settings=settings) == 0
    assert "3 ikke-leverede henvendelse(r) flyttet" in capsys.readouterr().out
    assert outbox_module.main(["--import-sqlite", str(old_file)], settings=settings) == 0
    assert "0 ikke-leverede" in capsys.readouterr().out  # a second run changes nothing
    assert shared.missing_from(single) == 0
    assert (shared.count_pending(), shared.count_dead(), shared.receipt("d" * 32)) == (2, 1, None)
    assert [e.record for e in shared.dead_letters()] == [{"description": "c" * 32}]
    assert outbox_module.main(["--check"], settings=settings) == 0
    assert "Udbakken svarer (PostgreSQL" in capsys.readouterr().out
    sqlite_only = load_settings({"AF_MODE": "development", "AF_VAR_DIR": str(tmp_path / "var"),
                                 "AF_LOG_DIR": str(tmp_path / "logs")})
    assert outbox_module.main(["--import-sqlite"], settings=sqlite_only) == 2


def test_the_health_check_fails_in_danish_when_postgres_cannot_be_reached(tmp_path, capsys, own_logging):
    from af_core import outbox as outbox_module

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # a port nobody listens on
    port = closed.getsockname()[1]
    settings = load_settings({"AF_MODE": "development", "AF_VAR_DIR": str(tmp_path), "AF_LOG_DIR": str(tmp_path),
                              "AF_TRACKER_STORE": "postgres", "AF_POSTGRES_HOST": "127.0.0.1",
                              "AF_POSTGRES_PORT": str(port)})
    try:
        assert outbox_module.main(["--check"], settings=settings) == 1
    finally:
        closed.close()
    err = capsys.readouterr().err
    assert "Udbakken kan ikke nås: kan ikke forbinde til PostgreSQL (PostgreSQL af_assistent@127.0.0.1:" in err


def test_an_image_without_the_postgres_driver_says_so_instead_of_using_sqlite(tmp_path, capsys, monkeypatch,
                                                                              own_logging):
    import builtins

    from af_core import outbox as outbox_module

    real_import = builtins.__import__

    def without_psycopg2(name, *args, **kwargs):
        if name.startswith("psycopg2"):
            raise ImportError("No module named 'psycopg2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_psycopg2)
    settings = load_settings({"AF_MODE": "development", "AF_VAR_DIR": str(tmp_path), "AF_LOG_DIR": str(tmp_path),
                              "AF_TRACKER_STORE": "postgres"})
    assert outbox_module.main(["--check"], settings=settings) == 1
    assert "psycopg2 (psycopg2-binary) er ikke installeret" in capsys.readouterr().err
    assert not settings.outbox_path.exists(), "no silent fall-back to a SQLite file of this host's own"


def test_a_test_database_left_by_a_killed_run_is_dropped_by_the_next(pg):
    from tests.pg import admin_sql, drop_stale_databases

    dead_pid = 4_194_304 + 1  # above Linux's highest pid: no such process
    dead, alive = f"af_test_{dead_pid}_deadbeef", f"af_test_{os.getppid()}_0badcafe"
    for name in (dead, alive):
        admin_sql(f'CREATE DATABASE "{name}"')
    try:
        drop_stale_databases()
        left = {row[0] for row in admin_sql("SELECT datname FROM pg_database")}
        assert dead not in left, "a killed run's database is dropped"
        assert alive in left and pg.name in left, "a running run's database is left alone"
    finally:
        for name in (dead, alive):
            admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
