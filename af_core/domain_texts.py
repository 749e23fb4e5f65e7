"""Sentences sent outside an action, read from the domain while the servers run.

Most of what a leader reads is sent by Rasa or an action, which get the domain from the model.
A few sentences are sent before a message reaches the dialogue (the channels: no login, too
fast, too long, a CPR number removed) or by the web server (a supporter takes or gives back a
conversation). They are domain responses too, in domain/channel.yml, so a trainer changes them in
the same place and the same way as every other sentence; this module reads domain/*.yml (again
when a file changes) and fills a response's ``{variables}`` as Rasa does.

Pure: no Rasa imports. The Rasa and the web images both carry domain/.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import yaml

from af_core.responses import MissingResponse, render

DOMAIN_DIR = Path(__file__).resolve().parent.parent / "domain"

_lock = threading.Lock()
_cache: Dict[str, Any] = {"signature": None, "responses": {}}


def _signature(directory: Path) -> Tuple[Tuple[str, int], ...]:
    return tuple((str(p), p.stat().st_mtime_ns) for p in sorted(directory.glob("*.yml")))


def responses(directory: Optional[Path] = None) -> Dict[str, List[Dict[str, Any]]]:
    """Every response of domain/*.yml (name -> variations), read again when a file changed."""
    directory = directory or DOMAIN_DIR
    signature = (str(directory), _signature(directory))
    with _lock:
        if _cache["signature"] != signature:
            merged: Dict[str, List[Dict[str, Any]]] = {}
            for path in sorted(directory.glob("*.yml")):
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
                merged.update(data.get("responses") or {})
            _cache.update(signature=signature, responses=merged)
        return _cache["responses"]


def text(name: str, **values: Any) -> str:
    """Response ``name``'s first variation, ``{variables}`` filled from ``values``."""
    return render({"responses": responses()}, name, **values)


def buttons(name: str) -> List[Dict[str, str]]:
    """The buttons of response ``name``'s first variation ([] when it has none)."""
    variations = responses().get(name)
    if not variations:
        raise MissingResponse(name)
    return [{"title": str(b["title"]), "payload": str(b["payload"])} for b in variations[0].get("buttons") or []]


def bot_event(name: str, extra_buttons: Optional[Iterable[Mapping[str, str]]] = None,
              **values: Any) -> Dict[str, Any]:
    """A tracker ``bot`` event saying response ``name`` (with its buttons, or ``extra_buttons``),
    named in its metadata as Rasa names an uttered response (``utter_action``)."""
    event: Dict[str, Any] = {"event": "bot", "text": text(name, **values), "metadata": {"utter_action": name}}
    shown = list(extra_buttons) if extra_buttons is not None else buttons(name)
    if shown:
        event["data"] = {"buttons": [dict(b) for b in shown]}
    return event


def missing(names: Iterable[str]) -> List[str]:
    """The names in ``names`` the domain has no response for (a trainer renamed or deleted one)."""
    known = responses()
    return sorted(n for n in names if n not in known)
