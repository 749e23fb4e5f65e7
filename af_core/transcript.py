"""A conversation's transcript, from the Rasa tracker's events.

Used by the supporter console (shown as text, never HTML) and for the case
created when a hand-over ends (CPR numbers masked).

A supporter's message is a bot event whose ``metadata.sender_role`` is
``af_supporter`` (``supporter_event`` builds it): see docs/handoff.md for
how it reaches the leader's chat window.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from af_core.privacy import mask_cpr

SUPPORTER_ROLE = "af_supporter"
MAX_ENTRIES = 300


def supporter_label(name: str) -> str:
    """'Sofie fra AF' for 'Sofie Lund'."""
    first = name.split()[0] if name.strip() else "En medarbejder"
    return f"{first} fra AF"


def supporter_event(text: str, supporter_name: str, handoff_id: int) -> Dict[str, Any]:
    """The bot event that carries a supporter's message to the leader.

    Rasa's socket.io output sends ``custom`` as ``emit("bot_uttered", **custom)``,
    so the leader's widget receives exactly ``custom["data"]``:
    ``{"text": "Sofie fra AF: …", "message": "…", "sender_name": "Sofie Lund",
    "sender_label": "Sofie fra AF", "sender_role": "af_supporter"}``. ``text`` carries the name
    too, so any widget shows who wrote it; a widget that knows ``sender_role`` can show
    ``sender_label`` as the author and ``message`` as the body.
    """
    label = supporter_label(supporter_name)
    payload = {"text": f"{label}: {text}", "message": text, "sender_name": supporter_name,
               "sender_label": label, "sender_role": SUPPORTER_ROLE}
    return {
        "event": "bot",
        "text": None,
        "data": {"custom": {"data": payload}},
        "metadata": {"sender_name": supporter_name, "sender_role": SUPPORTER_ROLE, "handoff_id": handoff_id},
    }


def _bot_text(event: Dict[str, Any], key: str = "text") -> Optional[str]:
    if event.get("text"):
        return str(event["text"])
    custom = ((event.get("data") or {}).get("custom") or {})
    payload = custom.get("data") if isinstance(custom, dict) else None
    if isinstance(payload, dict) and isinstance(payload.get(key), str):
        return payload[key]
    return None


def entries(tracker: Dict[str, Any], leader_label: str = "Lederen") -> List[Dict[str, Any]]:
    """[{"who": "leader"|"bot"|"supporter"|"system", "name": ..., "text": ..., "at": ts}, ...]."""
    found: List[Dict[str, Any]] = []
    for event in tracker.get("events") or []:
        kind = event.get("event")
        at = event.get("timestamp")
        if kind == "user":
            text = (event.get("text") or "").strip()
            if not text:
                continue
            if text.startswith("/"):
                text = f"(valgte knappen {text.split('{')[0]})"
            found.append({"who": "leader", "name": leader_label, "text": text, "at": at})
        elif kind == "bot":
            metadata = event.get("metadata") or {}
            supporter = metadata.get("sender_role") == SUPPORTER_ROLE
            text = _bot_text(event, "message" if supporter else "text")
            if not text:
                continue
            if supporter:
                found.append({"who": "supporter", "name": str(metadata.get("sender_name") or "AF"),
                              "text": text, "at": at})
            else:
                found.append({"who": "bot", "name": "AF-assistenten", "text": text, "at": at})
        elif kind == "pause":
            found.append({"who": "system", "name": "", "text": "Samtalen venter på en medarbejder.", "at": at})
        elif kind == "resume":
            found.append({"who": "system", "name": "", "text": "AF-assistenten svarer igen.", "at": at})
    return found[-MAX_ENTRIES:]


def as_text(items: List[Dict[str, Any]]) -> str:
    """Plain text for a case, CPR numbers masked."""
    lines = []
    for item in items:
        if item["who"] == "system":
            continue
        lines.append(f"{item['name']}: {mask_cpr(item['text'])[0]}")
    return "\n".join(lines)
