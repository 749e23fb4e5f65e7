"""scripts/rasa_speedups.py: every speed-up of the Rasa server keeps Rasa's behaviour
(action-response check, SQLite settings, event types, loading the model for serving)."""
from __future__ import annotations

import os
import time

import jsonschema
import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

from af_core.settings import PROJECT_ROOT as ROOT
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


def test_event_types_resolve_as_in_rasa_and_unknown_names_still_fail():
    from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered

    rasa_speedups.install()
    for _ in range(2):  # the second round comes from the remembered classes
        assert Event.resolve_by_type("slot") is SlotSet
        assert Event.resolve_by_type("user") is UserUttered
        assert Event.resolve_by_type("action") is ActionExecuted
    assert Event.resolve_by_type("topic") is None  # Rasa's backwards compatibility
    assert Event.resolve_by_type("nonsense", default=SlotSet) is SlotSet
    with pytest.raises(ValueError, match="Unknown event name"):
        Event.resolve_by_type("nonsense")
    events = [{"event": "slot", "name": "topic", "value": "loen", "timestamp": 1.0},
              {"event": "action", "name": "action_listen", "timestamp": 2.0}]
    assert [type(e) for e in map(Event.from_parameters, events)] == [SlotSet, ActionExecuted]


def test_the_server_understands_exactly_what_rasa_own_loading_understands(tmp_path):
    """The fast model load (no dummy training step) must not change a single prediction:
    the same intents, confidences and entities as Rasa's own loading, for real questions."""
    import json
    import subprocess
    import sys

    import yaml

    from scripts import model as model_lookup

    model = model_lookup.model_path()
    if not model.is_file():
        pytest.skip("no model for the current data (make test trains it first)")
    questions = yaml.safe_load((ROOT / "tests" / "heldout" / "form_questions.yml").read_text(encoding="utf-8"))
    texts = [q["text"] for q in questions["questions"]][::3] + [
        "Jeg vil gerne have et Teams-møde om løn, det haster",
        "kan I ringe mig op i morgen kl 10 om en vikar",
        "hvad er status på AFH0001002",
        "nej, hellere telefon",
        "glem det",
        "jeg vil gerne tale med et menneske",
    ]
    texts_file = tmp_path / "texts.json"
    texts_file.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")

    def parse(way: str) -> dict:
        result = subprocess.run([sys.executable, "tests/serving_load_probe.py", way, str(model), str(texts_file)],
                                cwd=ROOT, capture_output=True, text=True, timeout=600,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    rasa_way, fast_way = parse("rasa"), parse("fast")
    assert fast_way["fast_model_loads"] >= 1 and rasa_way["fast_model_loads"] == 0
    assert fast_way["parsed"] == rasa_way["parsed"]
    assert {p["intent"] for p in fast_way["parsed"]} >= {"find_form", "book_meeting", "cancel", "human_handoff"}
