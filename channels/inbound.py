"""What every input channel does to a message before Rasa sees it.

``prepare(text, metadata)`` returns the text and metadata that may reach NLU,
the tracker store, the logs and the actions:

1. control characters (NUL etc.) are removed, newlines and tabs kept;
2. CPR numbers are masked (``actions.privacy.mask_cpr``); the count goes into
   ``metadata["cpr_masked"]`` so the bot can tell the leader kindly;
3. text over ``settings.max_message_length`` is cut to the limit and
   ``metadata["too_long"] = True``;
4. identity-looking entities in forged ``/intent{...}`` payloads are dropped
   (defence in depth: the identity slots also have only custom mappings);
5. the client's metadata is NOT passed on. Only a *verified*
   ``identity_token`` is, unchanged (the action server verifies it again in
   ``action_session_start``). When ``settings.identity_required`` and the token
   is missing, expired or wrongly signed, the message is refused with a polite
   Danish text (``Inbound.refusal``) and must not reach Rasa.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from actions.identity import METADATA_KEY, Identity, IdentityError, verify_token
from actions.privacy import cpr_notice, mask_cpr
from actions.settings import Settings, get_settings

logger = logging.getLogger(__name__)

REFUSAL_MISSING = (
    "Jeg kan ikke se, hvem du er, så jeg kan ikke hjælpe dig her. "
    "Åbn chatten fra AF's side på KKintra, mens du er logget ind."
)
REFUSAL_EXPIRED = (
    "Dit login til chatten er udløbet. Genindlæs siden på KKintra, så kan vi fortsætte."
)
REFUSAL_INVALID = (
    "Jeg kunne ikke bekræfte, hvem du er. Genindlæs siden på KKintra og prøv igen."
)

# Slots/entities that only action_session_start may set (from a verified token).
IDENTITY_ENTITY_PREFIXES = ("leader_", "identity")

# Control characters and lone UTF-16 surrogates (which crash logging and JSON encoders).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
TOO_LONG_NOTICE = (
    "Din besked er meget lang, så jeg har kun læst de første {limit} tegn. "
    "Skriv gerne kortere beskeder – gerne én ting ad gangen."
)
_PAYLOAD_RE = re.compile(r"^(\s*/[^{}\s@]+(?:@[0-9.]+)?)(\{.*\})\s*$", re.DOTALL)
# Room for a CPR number that straddles the length limit to be masked whole.
_MASK_MARGIN = 32


@dataclass
class Inbound:
    text: str
    metadata: Dict[str, Any] = field(default_factory=dict)
    identity: Optional[Identity] = None
    refusal: Optional[str] = None
    # Kind Danish notices the channel sends before the bot's reply
    # (a CPR number was removed, the message was cut to the length limit).
    notices: List[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return self.refusal is not None


def clean_text(text: Any) -> str:
    if text is None:
        return ""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        return ""
    return _CONTROL_RE.sub("", str(text))


def _drop_identity_entities(text: str) -> str:
    match = _PAYLOAD_RE.match(text)
    if not match:
        return text
    try:
        entities = json.loads(match.group(2))
    except ValueError:
        return text
    if not isinstance(entities, dict):
        return text
    kept = {
        key: value
        for key, value in entities.items()
        if not str(key).lower().startswith(IDENTITY_ENTITY_PREFIXES)
    }
    if len(kept) == len(entities):
        return text
    logger.warning("Forsøg på at sætte identitet via payload blev afvist")
    return match.group(1) + (json.dumps(kept, ensure_ascii=False) if kept else "")


def parse_metadata(raw: Any) -> Dict[str, Any]:
    """Client metadata as a dict (socket.io clients may send a JSON string)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return dict(raw) if isinstance(raw, dict) else {}


def check_identity(raw_metadata: Any, settings: Settings) -> Tuple[Optional[Identity], Optional[str], Optional[str]]:
    """(identity, token, refusal). ``refusal`` is set only when identity is required."""
    token = parse_metadata(raw_metadata).get(METADATA_KEY)
    try:
        return verify_token(token, settings), token, None
    except IdentityError as exc:
        if not settings.identity_required:
            return None, None, None
        reason = str(exc)
        if reason == "mangler":
            return None, None, REFUSAL_MISSING
        if reason == "udløbet":
            return None, None, REFUSAL_EXPIRED
        return None, None, REFUSAL_INVALID


def prepare(text: Any, raw_metadata: Any, settings: Optional[Settings] = None) -> Inbound:
    settings = settings or get_settings()
    identity, token, refusal = check_identity(raw_metadata, settings)
    if refusal:
        # Nothing the refused client sent is passed on or logged.
        return Inbound(text="", metadata={}, identity=None, refusal=refusal)

    cleaned = clean_text(text)
    limit = settings.max_message_length
    too_long = len(cleaned) > limit
    if too_long:
        cleaned = cleaned[: limit + _MASK_MARGIN]
    masked, count = mask_cpr(cleaned)
    if too_long:
        masked = masked[:limit]
    masked = _drop_identity_entities(masked)

    metadata: Dict[str, Any] = {}
    notices: List[str] = []
    if token is not None:
        metadata[METADATA_KEY] = token
    if count:
        metadata["cpr_masked"] = count
        notices.append(cpr_notice(count))
    if too_long:
        metadata["too_long"] = True
        notices.append(TOO_LONG_NOTICE.format(limit=f"{limit:,}".replace(",", ".")))
    return Inbound(text=masked, metadata=metadata, identity=identity, notices=notices)
