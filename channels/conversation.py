"""What the channels read of a conversation before passing a message on.

Read from the tracker store of the running Rasa agent, which every replica shares (SQLite in
``make run``, PostgreSQL in the scaled deployment), so the answers hold on every replica and
after a restart:

* ``owner`` - the verified e-mail of the leader who first wrote in the conversation. A
  conversation belongs to that leader for good: another leader's message, or a socket.io
  client asking to join its room, is refused (``may_use``).
* ``offered`` - the buttons the bot's latest turn offered, so ``inbound.guard_payload`` can
  tell a button click from a payload typed by hand.
* ``last_user_text`` - the leader's previous message, so a CPR number sent in two halves is
  caught (``af_core.privacy.mask_cpr_continuation``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, List, Mapping, Optional

from rasa.shared.core.events import BotUttered, UserUttered

from af_core.identity import CLAIMS_METADATA_KEY as CLAIMS_KEY, METADATA_KEY

logger = logging.getLogger(__name__)


@dataclass
class Conversation:
    exists: bool
    owner: Optional[str] = None
    offered: List[str] = field(default_factory=list)
    last_user_text: Optional[str] = None


NEW = Conversation(exists=False)


def _email_in(metadata: Any) -> Optional[str]:
    """The verified e-mail the channel stored with a user event, if any."""
    if not isinstance(metadata, Mapping):
        return None
    claims = metadata.get(CLAIMS_KEY)
    if isinstance(claims, Mapping) and isinstance(claims.get("email"), str) and claims["email"]:
        return claims["email"].strip().lower()
    token = metadata.get(METADATA_KEY)
    if isinstance(token, str) and token:
        # Conversations stored before claims were kept carry the token the channel verified
        # then; its signature was checked on arrival, so only its e-mail is read here.
        import jwt

        try:
            email = jwt.decode(token, options={"verify_signature": False}).get("email")
        except jwt.PyJWTError:
            return None
        return email.strip().lower() if isinstance(email, str) and email else None
    return None


def from_events(events: Iterable[Any], slots: Optional[Mapping[str, Any]] = None) -> Conversation:
    events = list(events)
    owner: Optional[str] = None
    for event in events:
        if isinstance(event, UserUttered):
            owner = _email_in(event.metadata)
            if owner:
                break
    if owner is None and slots:
        email = slots.get("leader_email")
        owner = email.strip().lower() if isinstance(email, str) and email else None
    offered: List[str] = []
    last_user_text: Optional[str] = None
    for event in reversed(events):
        if isinstance(event, UserUttered):
            last_user_text = event.text
            break
        if isinstance(event, BotUttered):
            for button in (event.data or {}).get("buttons") or []:
                if isinstance(button, dict) and isinstance(button.get("payload"), str):
                    offered.append(button["payload"])
    return Conversation(exists=True, owner=owner, offered=offered, last_user_text=last_user_text)


async def read(app: Any, sender: str) -> Optional[Conversation]:
    """The conversation as the tracker store has it; ``NEW`` when there is none yet, ``None``
    when it cannot be read (no agent yet, tracker store down: the caller fails closed)."""
    try:
        agent = app.ctx.agent
        tracker = await agent.tracker_store.retrieve(sender)
    except Exception:
        logger.warning("Samtalen kunne ikke læses før beskeden")
        return None
    if tracker is None:
        return NEW
    slots = {"leader_email": tracker.get_slot("leader_email")} if "leader_email" in tracker.slots else {}
    return from_events(tracker.events, slots)


def may_use(conversation: Optional[Conversation], email: Optional[str], identity_required: bool) -> bool:
    """Whether a client verified as ``email`` (None: no identity) may write in or join it."""
    if conversation is None:
        return not identity_required  # unknown owner: only where nobody is identified anyway
    if conversation.owner is None:
        return True
    return bool(email) and email.strip().lower() == conversation.owner


async def offered_payloads(app: Any, sender: str) -> Optional[List[str]]:
    """Payloads of the buttons the bot sent since the leader's latest message.

    ``[]`` for a new conversation; ``None`` when the conversation cannot be read
    (the caller then lets only the widget's opening payload through).
    """
    conversation = await read(app, sender)
    return None if conversation is None else conversation.offered
