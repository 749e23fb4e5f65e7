"""Build a tracker store with known conversations, through Rasa's own SQLTrackerStore.

Tests describe conversations with a few helpers (``Conv().user(...).action(...)``)
and ``write_store`` saves them with rasa.core.tracker_store.SQLTrackerStore, so
the rows have exactly the schema and JSON the running Rasa server writes.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence


class Conv:
    """One session of one sender, built event by event; time advances 5 s per event."""

    def __init__(self, sender_id: str, start: float):
        from rasa.shared.core.events import ActionExecuted, SessionStarted

        self.sender_id = sender_id
        self.t = start
        self.events: List[Any] = [
            ActionExecuted("action_session_start", timestamp=self._tick()),
            SessionStarted(timestamp=self._tick()),
            ActionExecuted("action_listen", timestamp=self._tick()),
        ]

    def _tick(self, seconds: float = 5.0) -> float:
        self.t += seconds
        return self.t

    def new_session(self, gap_seconds: float) -> "Conv":
        from rasa.shared.core.events import ActionExecuted, SessionStarted

        self._tick(gap_seconds)
        self.events += [
            ActionExecuted("action_session_start", timestamp=self._tick()),
            SessionStarted(timestamp=self._tick()),
            ActionExecuted("action_listen", timestamp=self._tick()),
        ]
        return self

    def user(self, text: str, intent: str, confidence: float = 0.95,
             ranking: Optional[Sequence[tuple]] = None, entities: Optional[List[Dict[str, Any]]] = None) -> "Conv":
        from rasa.shared.core.events import UserUttered

        ranking_list = [{"name": n, "confidence": c} for n, c in (ranking or [(intent, confidence)])]
        parse_data = {
            "intent": {"name": intent, "confidence": confidence},
            "entities": entities or [],
            "text": text,
            "intent_ranking": ranking_list,
        }
        self.events.append(
            UserUttered(text, intent={"name": intent, "confidence": confidence}, entities=entities or [],
                        parse_data=parse_data, timestamp=self._tick())
        )
        return self

    def fallback(self, text: str, best: str, confidence: float) -> "Conv":
        """A message the FallbackClassifier turned into nlu_fallback, answered by the fallback action."""
        self.user(text, "nlu_fallback", confidence=0.45, ranking=[("nlu_fallback", 0.45), (best, confidence)])
        return self.action("action_handle_fallback").bot("Undskyld, det forstod jeg ikke helt.").listen()

    def action(self, name: str) -> "Conv":
        from rasa.shared.core.events import ActionExecuted

        self.events.append(ActionExecuted(name, timestamp=self._tick()))
        return self

    def listen(self) -> "Conv":
        return self.action("action_listen")

    def bot(self, text: str) -> "Conv":
        from rasa.shared.core.events import BotUttered

        self.events.append(BotUttered(text, timestamp=self._tick()))
        return self

    def slot(self, name: str, value: Any) -> "Conv":
        from rasa.shared.core.events import SlotSet

        self.events.append(SlotSet(name, value, timestamp=self._tick()))
        return self

    def loop(self, name: Optional[str]) -> "Conv":
        from rasa.shared.core.events import ActiveLoop

        self.events.append(ActiveLoop(name, timestamp=self._tick()))
        return self

    def pause(self) -> "Conv":
        from rasa.shared.core.events import ConversationPaused

        self.events.append(ConversationPaused(timestamp=self._tick()))
        return self

    # ------------------------------------------------------------ whole flows
    def form_shown(self, text: str, form_id: str) -> "Conv":
        return self.user(text, "find_form").action("action_find_form").bot("Du skal bruge blanketten ...") \
            .slot("form_id", form_id).slot("faq_id", None).listen()

    def faq_answered(self, text: str, faq_id: str) -> "Conv":
        return self.user(text, "ask_question").action("action_answer_faq").bot("Svar ...") \
            .slot("form_id", None).slot("faq_id", faq_id).listen()

    def case_created(self, request_type: str, topic: str, urgency: str, reference: str) -> "Conv":
        intent = "book_meeting" if request_type == "meeting" else "request_help"
        self.user("jeg vil gerne have hjælp", intent).action("request_form").loop("request_form")
        self.slot("request_type", request_type).slot("requested_slot", "topic").listen()
        self.user(f"det handler om {topic}", "inform").action("request_form").slot("topic", topic)
        self.slot("urgency", urgency).slot("request_confirmed", True).loop(None).slot("requested_slot", None)
        self.action("action_submit_request").bot(f"Tak! Din sag er oprettet med nummeret {reference}.")
        for name in ("request_type", "topic", "urgency", "request_confirmed"):
            self.slot(name, None)
        self.slot("last_case_reference", reference)
        return self.listen()

    def rated(self, rating: int, comment: str = "") -> "Conv":
        self.action("action_ask_rating").bot("Hvordan var min hjælp?").slot("rating_requested", True).listen()
        self.user(f"{rating} {comment}".strip(), "rate", entities=[{"entity": "rating", "value": str(rating)}])
        self.action("action_store_rating").slot("rating", float(rating))
        self.slot("rating_comment", comment or None).slot("rating_requested", False).bot("Tak!")
        return self.listen()


def write_store(path: Path, conversations: Sequence[Conv]) -> str:
    """Save the conversations into an SQLite tracker store at ``path``; returns its SQLAlchemy URL."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.trackers import DialogueStateTracker

    store = SQLTrackerStore(dialect="sqlite", db=str(path))

    async def save_all() -> None:
        by_sender: Dict[str, List[Any]] = {}
        for conv in conversations:
            by_sender.setdefault(conv.sender_id, []).extend(conv.events)
        for sender_id, events in by_sender.items():
            await store.save(DialogueStateTracker.from_events(sender_id, events))

    asyncio.run(save_all())
    store.engine.dispose()
    return f"sqlite:///{path}"
