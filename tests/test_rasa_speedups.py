"""scripts/rasa_speedups.py: the Rasa server's action-response check does the same as Rasa's,
without re-checking the constant JSON schema on every custom action call."""
from __future__ import annotations

import time

import jsonschema
import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

from scripts import rasa_speedups

GOOD = {"events": [{"event": "slot", "name": "topic", "value": "loen"}],
        "responses": [{"text": "Hvad handler det om?", "buttons": []}]}
BAD = {"events": [{"event": 42}], "responses": []}


@pytest.fixture(scope="module")
def original():
    return RemoteAction._validate_action_result


def test_same_verdicts_as_rasa_and_same_error(original):
    action = RemoteAction("action_x", None)
    with pytest.raises(ValidationError) as rasa_error:
        original(action, BAD)
    rasa_speedups.install()
    assert RemoteAction._validate_action_result is not original
    assert action._validate_action_result(GOOD) is True
    with pytest.raises(ValidationError) as ours:
        action._validate_action_result(BAD)
    assert ours.value.message == rasa_error.value.message
    assert "Failed to validate Action server response" in ours.value.message


def test_the_schema_is_not_rechecked_per_call(monkeypatch):
    rasa_speedups.install()
    calls = []
    for cls in (jsonschema.Draft202012Validator, jsonschema.Draft7Validator, jsonschema.Draft4Validator):
        monkeypatch.setattr(cls, "check_schema", classmethod(lambda c, s, *a, **k: calls.append(c)))
    action = RemoteAction("action_x", None)
    started = time.perf_counter()
    for _ in range(200):
        action._validate_action_result(GOOD)
    assert calls == []
    assert time.perf_counter() - started < 2.0


def test_sqlite_tracker_store_uses_wal_without_fsync_per_commit(tmp_path):
    rasa_speedups.install()
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "tracker.db"))
    tracker = DialogueStateTracker.from_events("leder", [UserUttered("hej")])
    import asyncio

    asyncio.run(store.save(tracker))
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    again = asyncio.run(store.retrieve("leder"))
    assert [e.text for e in again.events if isinstance(e, UserUttered)] == ["hej"]
    # One connection stays open between messages (closing the last one checkpoints the WAL).
    assert store.engine.pool.checkedin() == 1
    assert (tmp_path / "tracker.db-wal").exists()
