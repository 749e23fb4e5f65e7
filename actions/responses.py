"""Domain responses rendered inside an action, for sentences made of several parts.

Every sentence a leader reads is a response in ``domain/`` (trainers change wording there).
Most are sent whole with ``dispatcher.utter_message(response=..., **values)``. A few messages
are put together from parts that depend on the request -- the summary's lines, a button's
label -- and those parts are responses too; ``render`` fills one from the domain the action
server receives with every call. Pure: no Rasa imports.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

_PLACEHOLDER = re.compile(r"{([^\n{}]+?)}")


class MissingResponse(KeyError):
    """The domain has no such response (a trainer renamed or deleted it)."""


def render(domain: Mapping[str, Any], name: str, **values: Any) -> str:
    """The first variation of response ``name`` with ``{placeholders}`` filled from ``values``.

    A placeholder without a value is left as it is, as Rasa does.
    """
    variations = (domain.get("responses") or {}).get(name)
    if not variations:
        raise MissingResponse(name)
    text = str(variations[0].get("text") or "")
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)
