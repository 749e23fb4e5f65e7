"""What every input channel does to a message before Rasa sees it.

``prepare(text, metadata)`` returns the text and metadata that may reach NLU,
the tracker store, the logs and the actions:

1. control characters (NUL etc.) are removed, newlines and tabs kept;
2. CPR numbers are masked (``af_core.privacy.mask_cpr``); the count goes into
   ``metadata["cpr_masked"]`` so the bot can tell the leader kindly;
3. text over ``settings.max_message_length`` is cut to the limit and
   ``metadata["too_long"] = True``;
4. identity-looking entities in forged ``/intent{...}`` payloads are dropped
   (defence in depth: the identity slots also have only custom mappings);
5. the client's metadata is NOT passed on. Only what a *verified*
   ``identity_token`` says is: its claims and a hash of it
   (``af_core.identity.metadata_for``), never the token, which anyone who can read
   the tracker store could otherwise replay until it expires. When
   ``settings.identity_required`` and the token
   is missing, expired or wrongly signed, the message is refused with a polite
   Danish response (``Inbound.refusal`` names it) and must not reach Rasa.

Payload commands (``/intent{...}``) are a separate step, because it needs the
conversation: ``guard_payload(text, offered)`` lets a payload through only when
the bot's latest turn offered it as a button (or it is the widget's opening
``/greet``). Anything else the leader types with a leading slash - ``/restart``,
``/session_start``, ``/inform{"topic": ...}`` - is read as ordinary text.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from af_core import domain_texts
from af_core.identity import METADATA_KEY, Identity, IdentityError, metadata_for, verify_token
from af_core.privacy import mask_cpr, mask_cpr_continuation, mask_cpr_in, mask_cpr_start
from af_core.settings import Settings, get_settings

logger = logging.getLogger(__name__)

# What the leader reads when the channel refuses or shortens a message: domain responses
# (domain/channel.yml), sent as text by the channels (af_core.domain_texts).
REFUSAL_MISSING = "utter_channel_no_login"
REFUSAL_EXPIRED = "utter_channel_login_expired"
REFUSAL_INVALID = "utter_channel_login_invalid"
REFUSAL_FOREIGN = "utter_channel_foreign_conversation"
BODY_TOO_LARGE = "utter_channel_body_too_large"
TOO_FAST = "utter_channel_too_fast"
TOO_LONG = "utter_channel_too_long"
CPR_REMOVED, CPR_REMOVED_MANY = "utter_channel_cpr_removed", "utter_channel_cpr_removed_many"
RESPONSES = (REFUSAL_MISSING, REFUSAL_EXPIRED, REFUSAL_INVALID, REFUSAL_FOREIGN, BODY_TOO_LARGE, TOO_FAST, TOO_LONG,
             CPR_REMOVED, CPR_REMOVED_MANY)


def say(name: str, **values: Any) -> str:
    """The text of a channel response (domain/channel.yml)."""
    return domain_texts.text(name, **values)


def cpr_notice(count: int) -> str:
    """What the leader is told when ``count`` CPR numbers were removed ("" when none); the
    request itself carries on with the masked text."""
    if count <= 0:
        return ""
    return say(CPR_REMOVED) if count == 1 else say(CPR_REMOVED_MANY, count=count)


# Slots/entities that only action_session_start may set (from a verified token).
IDENTITY_ENTITY_PREFIXES = ("leader_", "identity")

# Control characters and lone UTF-16 surrogates (which crash logging and JSON encoders).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
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


def _clean_payload(text: str) -> Tuple[str, int]:
    """A ``/intent{...}`` payload with identity entities dropped and CPR numbers masked
    in its *decoded* values, written back as plain JSON (no ``\\u`` escapes).

    Rasa decodes the JSON itself, so ``{"topic": "\\u0030102031234"}`` would reach the
    tracker as ``0102031234`` if only the raw text were masked. Returns the text and
    how many CPR numbers were masked. Other texts are returned unchanged.
    """
    match = _PAYLOAD_RE.match(text)
    if not match:
        return text, 0
    try:
        entities = json.loads(match.group(2))
    except ValueError:
        return text, 0
    if not isinstance(entities, dict):
        return text, 0
    kept = {
        key: value
        for key, value in entities.items()
        if not str(key).lower().startswith(IDENTITY_ENTITY_PREFIXES)
    }
    if len(kept) != len(entities):
        logger.warning("Forsøg på at sætte identitet via payload blev afvist")
    kept, count = mask_cpr_in(kept)
    if kept == entities and count == 0 and "\\u" not in match.group(2):
        return text, 0
    return match.group(1) + (json.dumps(kept, ensure_ascii=False) if kept else ""), count


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
    # A number's first half at the end ("010203-"): its second half may come next.
    masked, half = mask_cpr_start(masked)
    count += half
    # After any rewrite of a payload, mask again: the rewrite decodes JSON escapes.
    masked, in_payload = _clean_payload(masked)
    count += in_payload

    metadata: Dict[str, Any] = {}
    notices: List[str] = []
    if identity is not None and isinstance(token, str):
        metadata.update(metadata_for(identity, token))
    if count:
        metadata["cpr_masked"] = count
        notices.append(cpr_notice(count))
    if too_long:
        metadata["too_long"] = True
        notices.append(say(TOO_LONG, limit=f"{limit:,}".replace(",", ".")))
    return Inbound(text=masked, metadata=metadata, identity=identity, notices=notices)


def finish(prepared: Inbound, conversation: Any) -> Inbound:
    """The steps that need the conversation as stored (``channels.conversation.read``):
    a payload only if the bot offered it, and a CPR number's second half masked when the
    leader's previous message held its first half. ``conversation`` None: not readable."""
    offered = None if conversation is None else conversation.offered
    previous = None if conversation is None else conversation.last_user_text
    if payload_key(prepared.text) is not None:
        prepared.text = guard_payload(prepared.text, offered)
    prepared.text, count = mask_cpr_continuation(previous, prepared.text)
    if count:
        total = int(prepared.metadata.get("cpr_masked", 0)) + count
        prepared.metadata["cpr_masked"] = total
        prepared.notices = [n for n in prepared.notices if n != cpr_notice(total - count)]
        prepared.notices.insert(0, cpr_notice(total))
    return prepared


# The widget's own opening message (data-init-payload); harmless anywhere.
ALWAYS_ALLOWED_PAYLOADS = ("/greet",)
# Rasa's own reading of a message that starts with "/" (YAMLStoryReader._regex_message_pattern):
# an intent name, an optional @confidence, optional {entities} and anything after them.
_PAYLOAD_HEAD_RE = re.compile(r"^/(?P<intent>[^{@]+)(?P<confidence>@[0-9.]+)?(?P<entities>\{.+\})?(?P<rest>.*)$",
                              re.DOTALL)


def payload_key(text: Any) -> Optional[Tuple[str, ...]]:
    """What a text starting with "/" tells Rasa, in comparable form; None for plain text.

    Rasa reads every such text as a command, also "/restart@1.0" and "/inform{...} more",
    so every one of them is a payload here.
    """
    if not isinstance(text, str) or not text.strip().startswith("/"):
        return None
    match = _PAYLOAD_HEAD_RE.match(text.strip())
    if not match:
        return ("", text.strip())  # Rasa may still try it; no button looks like it
    entities: Any = {}
    if match.group("entities"):
        try:
            entities = json.loads(match.group("entities"))
        except ValueError:
            entities = "\x00" + match.group("entities")  # never equal to a button's
    return (match.group("intent").strip(), match.group("confidence") or "",
            json.dumps(entities, sort_keys=True, ensure_ascii=False), match.group("rest").strip())


def guard_payload(text: str, offered: Optional[List[str]]) -> str:
    """The text Rasa may see: a payload only if the current step offered it.

    A payload typed by the leader (or sent by a script) that the bot did not offer is
    not a command: the leading slash is dropped and NLU reads the rest as text.
    ``offered`` None means the conversation could not be read: only the always-allowed
    opening payload passes (fail closed).
    """
    key = payload_key(text)
    if key is None:
        return text
    allowed = {payload_key(p) for p in (*ALWAYS_ALLOWED_PAYLOADS, *(offered or []))}
    if key in allowed:
        return text
    logger.warning("En payload, som botten ikke tilbød, blev læst som tekst: /%s", key[0][:40])
    return text.strip().lstrip("/")  # "//restart" must not become "/restart"
