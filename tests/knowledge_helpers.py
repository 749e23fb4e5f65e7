"""Helpers shared by tests/test_forms_lookup.py and tests/test_faq.py."""
from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from tests.domain_helpers import DOMAIN

ROOT = Path(__file__).resolve().parent.parent
STORIES = ROOT / "tests" / "stories" / "test_knowledge.yml"
_PAYLOAD_RE = re.compile(r"^/(\w+)(\{.*\})?$", re.S)


def story_turns(action: str, slot: str) -> List[Tuple[str, str, Optional[str]]]:
    """(story name, user text, expected slot value) for every user turn in the knowledge test
    stories that is answered by ``action`` and followed by ``slot_was_set`` of ``slot``."""
    data = yaml.safe_load(STORIES.read_text(encoding="utf-8"))
    turns = []
    for story in data["stories"]:
        steps = story["steps"]
        for i, step in enumerate(steps):
            if "user" not in step or i + 2 >= len(steps):
                continue
            if steps[i + 1].get("action") != action or "slot_was_set" not in steps[i + 2]:
                continue
            slots: Dict[str, Any] = {}
            for item in steps[i + 2]["slot_was_set"]:
                slots.update(item)
            if slot in slots:
                turns.append((story["story"], step["user"].strip(), slots[slot]))
    return turns


def message_for(text: str, intent: str) -> Dict[str, Any]:
    """A latest_message as Rasa would send it (button payloads carry entities)."""
    entities = []
    match = _PAYLOAD_RE.match(text.strip())
    if match:
        intent = match.group(1)
        for name, value in json.loads(match.group(2) or "{}").items():
            entities.append({"entity": name, "value": value})
    return {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": entities}


def run_action(action, text: str, intent: str, slots: Optional[Dict[str, Any]] = None,
               active_loop: Optional[str] = None):
    """Run a rasa_sdk action like the action server does (with the domain Rasa sends);
    returns (messages, events). ``tests.domain_helpers.shown`` gives what the leader reads."""
    tracker = Tracker(
        sender_id="test",
        slots=dict(slots or {}),
        latest_message=message_for(text, intent),
        events=[],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, DOMAIN))
    return dispatcher.messages, events


def slot_events(events) -> Dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def sentences(text: str) -> int:
    """Number of sentences ("1. september" and "5. ferieuge" are not sentence ends)."""
    return len(re.findall(r"[.!?](?=\s+[A-ZÆØÅ]|\s*$)", text.strip()))
