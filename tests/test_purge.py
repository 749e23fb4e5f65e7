"""Retention: trainer/purge.py deletes exactly the conversations whose last event is too old.

The outbox and hand-over parts run on both store backends: the SQLite files and PostgreSQL
(the scaled deployment, tests/pg.py; skipped with the reason when PostgreSQL is not there)."""
from __future__ import annotations

import asyncio
import os
import sqlite3
import time
import warnings

import pytest

from af_core.settings import load_settings
from tests.pg import backend, pg, pg_database  # noqa: F401 - fixtures
from trainer import purge

warnings.filterwarnings("ignore", category=DeprecationWarning)

NOW = time.time()
DAY = 24 * 3600


@pytest.fixture(autouse=True)
def _own_review_dir(tmp_path, monkeypatch):
    """The checkout's own review/ folder is never touched by these tests."""
    monkeypatch.setattr(purge, "REVIEW_DIR", tmp_path / "review")


@pytest.fixture(scope="module")
def rasa_store_api():
    os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    return SQLTrackerStore, Domain, DialogueStateTracker, (ActionExecuted, BotUttered, SessionStarted, UserUttered)


def _conversation(api, sender: str, ages_in_days, text: str):
    _, _, DialogueStateTracker, (ActionExecuted, BotUttered, SessionStarted, UserUttered) = api
    events = []
    for i, age in enumerate(ages_in_days):
        ts = NOW - age * DAY
        if i == 0:
            events += [ActionExecuted("action_session_start", timestamp=ts), SessionStarted(timestamp=ts)]
        events += [
            UserUttered(f"{text} nr {i}", {"name": "greet", "confidence": 1.0}, timestamp=ts),
            BotUttered("Hej! Hvad kan jeg hjælpe med?", timestamp=ts + 1),
        ]
    return DialogueStateTracker.from_events(sender, events)


# sender id -> ages of its user messages in days (last one decides)
CONVERSATIONS = {
    "old-1": [200, 150, 120],
    "old-2": [91, 90.5],
    "just-too-old": [90.01],
    "recent": [3, 1],
    "old-but-came-back": [300, 200, 10],
    "just-inside": [89.9],
    "brand-new": [0],
}
EXPECTED_GONE = {"old-1", "old-2", "just-too-old"}


@pytest.fixture()
def tracker_db(tmp_path, rasa_store_api):
    SQLTrackerStore, Domain, _, _ = rasa_store_api
    db = tmp_path / "tracker.db"
    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(db))
    for sender, ages in CONVERSATIONS.items():
        asyncio.run(store.save(_conversation(rasa_store_api, sender, ages, f"BESKED-{sender}")))
    store.engine.dispose()
    return db


def _senders(db):
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT DISTINCT sender_id FROM events")}


def _event_count(db, sender):
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM events WHERE sender_id = ?", (sender,)).fetchone()[0]


def test_exactly_the_old_conversations_are_deleted(tracker_db, rasa_store_api):
    before = {s: _event_count(tracker_db, s) for s in CONVERSATIONS}
    result = purge.purge_tracker_store(f"sqlite:///{tracker_db}", NOW - 90 * DAY)
    assert result.conversations == len(EXPECTED_GONE)
    assert result.events == sum(before[s] for s in EXPECTED_GONE)
    assert _senders(tracker_db) == set(CONVERSATIONS) - EXPECTED_GONE
    # A conversation that is still in use is kept whole, also its old events.
    assert _event_count(tracker_db, "old-but-came-back") == before["old-but-came-back"]

    # Rasa can still read what is left.
    SQLTrackerStore, Domain, _, _ = rasa_store_api
    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tracker_db))
    assert asyncio.run(store.retrieve("recent")) is not None
    assert asyncio.run(store.retrieve("old-1")) is None
    store.engine.dispose()


def test_deleted_messages_do_not_linger_in_the_database_file(tracker_db):
    assert b"BESKED-old-1" in tracker_db.read_bytes()
    purge.purge_tracker_store(f"sqlite:///{tracker_db}", NOW - 90 * DAY)
    raw = tracker_db.read_bytes()
    assert b"BESKED-old-1" not in raw and b"BESKED-just-too-old" not in raw
    assert b"BESKED-recent" in raw


def test_dry_run_counts_but_deletes_nothing(tracker_db):
    result = purge.purge_tracker_store(f"sqlite:///{tracker_db}", NOW - 90 * DAY, dry_run=True)
    assert result.conversations == 3
    assert _senders(tracker_db) == set(CONVERSATIONS)


def test_missing_database_is_not_created(tmp_path):
    db = tmp_path / "none.db"
    assert purge.purge_tracker_store(f"sqlite:///{db}", NOW) == purge.TrackerPurge(0, 0)
    assert not db.exists()


def _settings(tmp_path, **extra):
    env = {"AF_MODE": "development", "AF_VAR_DIR": str(tmp_path), "AF_LOG_DIR": str(tmp_path / "logs")}
    env.update(extra)
    return load_settings(env)


def test_command_uses_settings_retention_days_and_prints_counts(tracker_db, tmp_path, capsys):
    settings = _settings(tmp_path, AF_RETENTION_DAYS="30", AF_TRACKER_DB_PATH=str(tracker_db))
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "rasa.log").write_text("ny\n")
    old_log = logs / "rasa.log.1"
    old_log.write_text("gammel\n")
    os.utime(old_log, (NOW - 40 * DAY, NOW - 40 * DAY))

    assert purge.main(["--dry-run"], settings=settings, now=NOW) == 0
    out = capsys.readouterr().out
    assert "30 dage" in out
    assert "4 samtaler" in out and "ville blive slettet" in out  # 30 days: old-but-came-back is 10 days
    assert _senders(tracker_db) == set(CONVERSATIONS) and old_log.exists()

    assert purge.main([], settings=settings, now=NOW) == 0
    out = capsys.readouterr().out
    assert "4 samtaler" in out and "1 fil slettet" in out
    assert _senders(tracker_db) == {"recent", "old-but-came-back", "brand-new"}
    assert not old_log.exists() and (logs / "rasa.log").exists()


def test_days_flag_overrides_setting(tracker_db, tmp_path, capsys):
    settings = _settings(tmp_path, AF_TRACKER_DB_PATH=str(tracker_db))
    assert purge.main(["--days", "2", "--no-logs"], settings=settings, now=NOW) == 0
    assert _senders(tracker_db) == {"recent", "brand-new"}


def test_broken_database_gives_a_clear_error_and_exit_1(tmp_path, capsys):
    bad = tmp_path / "tracker.db"
    bad.write_bytes(b"this is not a sqlite file" * 100)
    settings = _settings(tmp_path, AF_TRACKER_DB_PATH=str(bad))
    assert purge.main(["--no-logs"], settings=settings, now=NOW) == 1
    assert "FEJL under oprydningen" in capsys.readouterr().err


def test_postgres_url_comes_from_settings(tmp_path):
    settings = _settings(
        tmp_path, AF_TRACKER_STORE="postgres", AF_POSTGRES_HOST="db.local", AF_POSTGRES_PASSWORD="test-pw-from-env"
    )
    url = purge.tracker_db_url(settings)
    assert url.drivername == "postgresql" and url.host == "db.local" and url.password == "test-pw-from-env"
    assert url.database == "af_assistent"


def _outbox_rows(outbox):
    with outbox._connect() as conn:
        return {row[0]: row[1] for row in conn.execute("SELECT correlation_id, status FROM outbox").fetchall()}


def test_outbox_receipts_older_than_the_limit_go_and_undelivered_orders_stay(tmp_path, capsys, backend):
    from af_core.outbox import Outbox

    settings = _settings(tmp_path, AF_TRACKER_DB_PATH=str(tmp_path / "none.db"), **backend.env)
    outbox = Outbox.for_settings(settings)
    for cid in ("old-delivered", "new-delivered", "old-pending"):
        outbox.add({"short_description": cid}, correlation_id=cid, correlation_display=cid,
                   requester_email="leder@buf.kk.dk")
    outbox.mark_delivered("old-delivered", "AFH0000001", "a" * 32)
    outbox.mark_delivered("new-delivered", "AFH0000002", "b" * 32)
    with outbox._connect() as conn:
        conn.execute("UPDATE outbox SET delivered_at=? WHERE correlation_id='old-delivered'", (NOW - 100 * DAY,))
        conn.execute("UPDATE outbox SET created_at=? WHERE correlation_id='old-pending'", (NOW - 100 * DAY,))

    assert purge.main(["--dry-run", "--no-logs"], settings=settings, now=NOW) == 0
    assert "Udbakke: 1 leveret post ville blive slettet" in capsys.readouterr().out
    assert len(_outbox_rows(outbox)) == 3

    assert purge.main(["--no-logs"], settings=settings, now=NOW) == 0
    assert "Udbakke: 1 leveret post slettet" in capsys.readouterr().out
    assert _outbox_rows(outbox) == {"new-delivered": "delivered", "old-pending": "pending"}
    if backend.pg:  # the purge worked on the shared database, not on a SQLite file
        assert not settings.outbox_path.exists()
        assert backend.pg.sql("SELECT correlation_id FROM af_outbox ORDER BY 1") == [("new-delivered",), ("old-pending",)]


def test_missing_outbox_is_not_created(tmp_path):
    settings = _settings(tmp_path)
    assert purge.purge_outbox(settings, NOW, dry_run=False) == 0
    assert not settings.outbox_path.exists()


def test_missing_stores_are_not_created_in_postgres(tmp_path, pg):
    from af_core.handoff_store import HandoffStore

    settings = _settings(tmp_path, **pg.env)
    pg.drop_table("af_outbox")
    pg.drop_table("af_handoffs")
    try:
        for dry_run in (True, False):
            assert purge.purge_outbox(settings, NOW, dry_run=dry_run) == 0
            assert purge.purge_handoffs(settings, NOW, dry_run=dry_run) == 0
        assert "af_outbox" not in pg.tables() and "af_handoffs" not in pg.tables()
    finally:
        HandoffStore.for_settings(settings)  # other tests' cached stores expect their tables


def test_ended_handoffs_past_the_limit_go_and_waiting_leaders_stay(tmp_path, capsys, backend):
    from af_core.handoff_store import CLOSED, get_store

    settings = _settings(tmp_path, AF_TRACKER_DB_PATH=str(tmp_path / "none.db"), **backend.env)
    store = get_store(settings)
    who = dict(leader_name="Mette Hansen", leader_email="mette@buf.kk.dk", leader_institution="Valby Skole",
               leader_unit="af-syd", topic="loen", wait_seconds=180)
    old, _ = store.request("old-chat", now=NOW - 100 * DAY, **who)
    store.take(old.id, "sofie", "Sofie Lund", now=NOW - 100 * DAY)
    store.finish(old.id, "sofie", CLOSED, now=NOW - 100 * DAY)
    store.request("waiting-chat", now=NOW - 100 * DAY, **who)

    assert purge.main(["--dry-run", "--no-logs"], settings=settings, now=NOW) == 0
    assert "1 afsluttet samtale ville blive slettet" in capsys.readouterr().out
    assert purge.main(["--no-logs"], settings=settings, now=NOW) == 0
    assert "1 afsluttet samtale slettet" in capsys.readouterr().out
    with store._db() as conn:
        assert [r[0] for r in conn.execute("SELECT conversation_id FROM handoffs").fetchall()] == ["waiting-chat"]
    assert [h.conversation_id for h in store.list_open()] == ["waiting-chat"]
    if backend.pg:
        assert not settings.handoff_db_path.exists()
        assert backend.pg.sql("SELECT conversation_id FROM af_handoffs") == [("waiting-chat",)]


def test_review_sheets_fall_under_the_retention_purge(tmp_path, capsys):
    settings = _settings(tmp_path, AF_RETENTION_DAYS="30", AF_TRACKER_DB_PATH=str(tmp_path / "none.db"))
    review = tmp_path / "review"
    review.mkdir()
    old, new = review / "til-gennemgang-2026-01-01.csv", review / "til-gennemgang-2026-12-01.csv"
    old.write_text("gruppe;tekst\n1;min medarbejder er syg\n", encoding="utf-8")
    new.write_text("gruppe;tekst\n", encoding="utf-8")
    os.utime(old, (NOW - 40 * DAY, NOW - 40 * DAY))
    assert purge.main(["--no-logs"], settings=settings, now=NOW) == 0
    assert "Gennemgangsark til trænerne: 1 fil slettet" in capsys.readouterr().out
    assert not old.exists() and new.exists()
