"""What the channels may read of a conversation before passing a message on.

Only one thing so far: the buttons the bot's latest turn offered, so that
``inbound.guard_payload`` can tell a button click from a payload typed by hand.
Read from the tracker store of the running Rasa agent (every replica shares it).
"""
from __future__ import annotations

import logging
from typing import Any, List, Optional

from rasa.shared.core.events import BotUttered, UserUttered

logger = logging.getLogger(__name__)


async def offered_payloads(app: Any, sender: str) -> Optional[List[str]]:
    """Payloads of the buttons the bot sent since the leader's latest message.

    ``[]`` for a new conversation; ``None`` when the conversation cannot be read
    (the caller then lets only the widget's opening payload through).
    """
    try:
        agent = app.ctx.agent
        tracker = await agent.tracker_store.retrieve(sender)
    except Exception:  # no agent yet, tracker store down: fail closed, never crash
        logger.warning("Samtalen kunne ikke læses før beskeden; payloads læses som tekst")
        return None
    if tracker is None:
        return []
    offered: List[str] = []
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            break
        if isinstance(event, BotUttered):
            for button in (event.data or {}).get("buttons") or []:
                if isinstance(button, dict) and isinstance(button.get("payload"), str):
                    offered.append(button["payload"])
    return offered
