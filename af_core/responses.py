"""Domain responses rendered inside an action, for sentences made of several parts.

Every sentence a leader reads is a response in ``domain/`` (trainers change wording there).
Most are sent whole with ``dispatcher.utter_message(response=..., **values)``. A few messages
are put together from parts that depend on the data -- the summary's lines, the list of cases,
a form linked under a rule answer, a button's label -- and those parts are responses too;
``render`` fills one from the domain the action server receives with every call.

The catalogue answers (forms_lookup, faq, second_chance) are planned as data first, without a
domain: a *message* is ``{"response": "utter_...", "values": {...}, "parts": {...},
"buttons": [...]}``; ``message_values`` and ``message_buttons`` turn it into what
``utter_message`` gets. A button is ``{"payload": ..., "title": <catalogue title>}`` or
``{"payload": ..., "label": "utter_button_...", "values": {...}}`` (its wording a response).

Pure: no Rasa imports.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping

_PLACEHOLDER = re.compile(r"{([^\n{}]+?)}")


class MissingResponse(KeyError):
    """The domain has no such response (a trainer renamed or deleted it)."""


def placeholders(text: str) -> List[str]:
    """The ``{variables}`` of a response text, as Rasa reads them."""
    return _PLACEHOLDER.findall(text or "")


def render(domain: Mapping[str, Any], name: str, **values: Any) -> str:
    """The first variation of response ``name`` with ``{placeholders}`` filled from ``values``.

    A placeholder without a value is left as it is, as Rasa does.
    """
    variations = (domain.get("responses") or {}).get(name)
    if not variations:
        raise MissingResponse(name)
    text = str(variations[0].get("text") or "")
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)


def part(response: str, **values: Any) -> Dict[str, Any]:
    """One part of a message (a line), planned without the domain."""
    return {"response": response, "values": values}


def button(payload: str, label: str, **values: Any) -> Dict[str, Any]:
    """A button whose wording is the response ``label`` (``utter_button_...``)."""
    return {"payload": payload, "label": label, "values": values}


def catalogue_button(payload: str, title: str) -> Dict[str, str]:
    """A button labelled with a catalogue entry's own title (trainer data in profiles/)."""
    return {"payload": payload, "title": title}


def message_values(domain: Mapping[str, Any], message: Mapping[str, Any]) -> Dict[str, Any]:
    """The variables of a planned message; each list of parts becomes its lines, each on a new line."""
    values = dict(message.get("values") or {})
    for key, parts in (message.get("parts") or {}).items():
        values[key] = "".join("\n" + render(domain, p["response"], **p["values"]) for p in parts)
    return values


def message_buttons(domain: Mapping[str, Any], message: Mapping[str, Any]) -> List[Dict[str, str]]:
    """The buttons of a planned message, labels filled from the domain."""
    out = []
    for item in message.get("buttons") or []:
        title = item["title"] if "title" in item else render(domain, item["label"], **(item.get("values") or {}))
        out.append({"title": title, "payload": item["payload"]})
    return out
