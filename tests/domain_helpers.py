"""The domain as the action server receives it, and what a leader reads from an action's messages.

Rasa sends the whole domain with every action call; ``DOMAIN`` is the same merge of
domain/*.yml (no training needed). ``shown(message)`` fills a collected message's response the
way Rasa does: the first variation whose conditions hold for ``slots``, ``{variables}`` from the
slots and the values the action passed. Tests about wording assert the response name; tests
about what the leader sees use ``shown``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional

import yaml

from af_core.responses import message_buttons, message_values, render

ROOT = Path(__file__).resolve().parent.parent
# Keys of a collected message that are not variables of its response.
MESSAGE_KEYS = frozenset({"text", "buttons", "elements", "custom", "template", "response", "image", "attachment"})


def load_domain(directory: Path = ROOT / "domain") -> Dict[str, Any]:
    merged: Dict[str, Any] = {"intents": [], "slots": {}, "forms": {}, "responses": {}, "actions": []}
    for path in sorted(Path(directory).glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key, value in merged.items():
            if isinstance(value, dict):
                value.update(data.get(key) or {})
            else:
                value.extend(data.get(key) or [])
    return merged


DOMAIN = load_domain()


def _matches(variation: Mapping[str, Any], slots: Mapping[str, Any]) -> bool:
    return all(slots.get(c["name"]) == c.get("value") for c in variation.get("condition") or [])


def variation(name: str, slots: Optional[Mapping[str, Any]] = None, domain: Mapping[str, Any] = DOMAIN) -> Dict[str, Any]:
    variations = domain["responses"][name]
    slots = slots or {}
    conditional = [v for v in variations if v.get("condition") and _matches(v, slots)]
    plain = [v for v in variations if not v.get("condition")]
    return (conditional or plain)[0]


def message_variables(message: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in message.items() if k not in MESSAGE_KEYS}


def shown(message: Mapping[str, Any], slots: Optional[Mapping[str, Any]] = None) -> str:
    """The text a leader reads for one collected message."""
    if not message.get("response"):
        return message.get("text") or ""
    chosen = variation(message["response"], slots)
    values = {**(slots or {}), **message_variables(message)}
    return render({"responses": {"x": [chosen]}}, "x", **values)


def shown_buttons(message: Mapping[str, Any], slots: Optional[Mapping[str, Any]] = None) -> List[Dict[str, str]]:
    """The buttons a leader sees: the response's own (from the domain), then the action's."""
    own = []
    if message.get("response"):
        own = [dict(b) for b in variation(message["response"], slots).get("buttons") or []]
    return own + [dict(b) for b in message.get("buttons") or []]


def all_shown(messages: Iterable[Mapping[str, Any]], slots: Optional[Mapping[str, Any]] = None) -> str:
    return "\n".join(shown(m, slots) for m in messages)


def plan_shown(plan: Mapping[str, Any]) -> str:
    """What a leader reads for a catalogue plan (forms_lookup / faq / second_chance)."""
    return "\n".join(
        render(DOMAIN, m["response"], **message_values(DOMAIN, m)) for m in plan["messages"]
    )


def plan_buttons(message: Mapping[str, Any]) -> List[Dict[str, str]]:
    """A planned message's buttons as the leader sees them (domain buttons first, as Rasa does)."""
    own = [dict(b) for b in variation(message["response"]).get("buttons") or []]
    return own + message_buttons(DOMAIN, message)
