"""Read conversations back from Rasa's tracker store, for review and reports.

Rasa's SQLTrackerStore keeps one row per event in the table ``events``
(``id, sender_id, type_name, timestamp, intent_name, action_name, data``; ``data``
is the event as JSON). SQLite at ``settings.tracker_db_path`` by default,
PostgreSQL when ``AF_TRACKER_STORE=postgres`` (see trainer/purge.py).

A *conversation* here is one Rasa session: the events of one sender id from a
``session_started`` event to the next (a session expires after 60 minutes of
silence). ``facts()`` turns a conversation's events into what happened in it,
using the signals the other capabilities leave in the tracker:

* a form was shown: slot ``form_id`` set to a value (action_find_form);
* a rule question was answered: slot ``faq_id`` set to a value (action_answer_faq);
* a case was created: ``action_submit_request`` followed by slot
  ``last_case_reference`` set; its type, topic and urgency are the slots
  ``request_type``, ``topic``, ``urgency`` at the moment the action ran;
* case status was shown: ``action_case_status`` ran;
* a person was involved: intent ``human_handoff``, an action whose name contains
  ``handoff``, ``action_request_callback`` (asked to be called back), or a
  ``pause`` event (a supporter took over);
* not understood: a user message with intent ``nlu_fallback`` or one answered by
  ``action_handle_fallback``;
* rating: slots ``rating`` (1-5) and ``rating_comment`` (actions/feedback.py);
* abandoned: a form (active loop) was started and never finished or cancelled.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence

from af_core.privacy import mask_cpr

FALLBACK_INTENT = "nlu_fallback"
FALLBACK_ACTION = "action_handle_fallback"
HANDOFF_INTENT = "human_handoff"
CALLBACK_ACTION = "action_request_callback"
SUBMIT_ACTION = "action_submit_request"
STATUS_ACTION = "action_case_status"
CANCEL_ACTION = "action_cancel_request"


def tracker_url(settings) -> Any:
    """SQLAlchemy URL of the tracker store the Rasa server uses."""
    from trainer.purge import tracker_db_url

    return tracker_db_url(settings)


def load_events(db_url: Any, since: Optional[float] = None, until: Optional[float] = None) -> Dict[str, List[Dict[str, Any]]]:
    """All events of every sender with at least one event in [since, until), by sender, in order."""
    import sqlalchemy as sa

    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("events"):
                return {}
            where, params = [], {}
            if since is not None:
                where.append("timestamp >= :since")
                params["since"] = since
            if until is not None:
                where.append("timestamp < :until")
                params["until"] = until
            senders_sql = "SELECT DISTINCT sender_id FROM events"
            if where:
                senders_sql += " WHERE " + " AND ".join(where)
            senders = [row[0] for row in conn.execute(sa.text(senders_sql), params)]
            by_sender: Dict[str, List[Dict[str, Any]]] = {}
            for start in range(0, len(senders), 500):
                chunk = senders[start : start + 500]
                query = sa.text(
                    "SELECT sender_id, type_name, timestamp, intent_name, action_name, data FROM events "
                    "WHERE sender_id IN :senders ORDER BY sender_id, timestamp, id"
                ).bindparams(sa.bindparam("senders", expanding=True))
                for sender_id, type_name, timestamp, intent_name, action_name, data in conn.execute(
                    query, {"senders": chunk}
                ):
                    try:
                        event = json.loads(data) if data else {}
                    except ValueError:
                        event = {}
                    event.setdefault("event", type_name)
                    event["timestamp"] = timestamp if timestamp is not None else event.get("timestamp", 0.0)
                    by_sender.setdefault(sender_id, []).append(event)
            return by_sender
    finally:
        engine.dispose()


@dataclass
class UserMessage:
    timestamp: float
    text: str  # CPR-masked
    intent: str  # the intent acted on (may be nlu_fallback)
    predicted: str  # the classifier's best real intent (fallback undone)
    confidence: float  # confidence of `predicted`
    fallback: bool
    payload: bool  # a button click ("/intent{...}")


@dataclass
class Case:
    timestamp: float
    request_type: str
    topic: str
    urgency: str
    reference: str


@dataclass
class Conversation:
    sender_id: str
    events: List[Dict[str, Any]]
    messages: List[UserMessage] = field(default_factory=list)
    forms: List[str] = field(default_factory=list)
    faqs: List[str] = field(default_factory=list)
    cases: List[Case] = field(default_factory=list)
    status_shown: bool = False
    handoff: bool = False  # asked for a person, or a person took over
    taken_over: bool = False  # a supporter paused the bot and took over
    ratings: List[Dict[str, Any]] = field(default_factory=list)
    open_form: Optional[str] = None  # a form started and never finished
    last_timestamp: float = 0.0

    @property
    def start(self) -> float:
        """When the leader first wrote (or the session started, if they never did)."""
        if self.messages:
            return self.messages[0].timestamp
        return self.events[0].get("timestamp", 0.0) if self.events else 0.0

    @property
    def resolved_by_assistant(self) -> bool:
        """Something was delivered (form, answer, case, status) and no person was involved."""
        delivered = bool(self.forms or self.faqs or self.cases or self.status_shown)
        return delivered and not self.handoff


def split_sessions(sender_id: str, events: Sequence[Dict[str, Any]]) -> List[Conversation]:
    """One Conversation per Rasa session of this sender."""
    sessions: List[List[Dict[str, Any]]] = [[]]
    for event in events:
        kind = event.get("event")
        if kind == "action" and event.get("name") == "action_session_start":
            continue
        if kind == "session_started" and sessions[-1]:
            sessions.append([])
        sessions[-1].append(event)
    return [facts(sender_id, session) for session in sessions if session]


def _best_real_intent(parse_data: Dict[str, Any]) -> tuple:
    intent = parse_data.get("intent") or {}
    name = intent.get("name") or ""
    confidence = float(intent.get("confidence") or 0.0)
    if name != FALLBACK_INTENT:
        return name, confidence
    for ranked in parse_data.get("intent_ranking") or []:
        if ranked.get("name") and ranked.get("name") != FALLBACK_INTENT:
            return ranked["name"], float(ranked.get("confidence") or 0.0)
    return "", 0.0


def facts(sender_id: str, events: Sequence[Dict[str, Any]]) -> Conversation:
    """What happened in one session (see the module docstring for the signals)."""
    conv = Conversation(sender_id=sender_id, events=list(events))
    slots: Dict[str, Any] = {}
    pending_submit: Optional[Dict[str, Any]] = None
    rating: Dict[str, Any] = {}
    for event in events:
        kind = event.get("event")
        timestamp = float(event.get("timestamp") or 0.0)
        conv.last_timestamp = max(conv.last_timestamp, timestamp)
        if kind == "user":
            parse = event.get("parse_data") or {}
            text = event.get("text") or ""
            intent = (parse.get("intent") or {}).get("name") or ""
            predicted, confidence = _best_real_intent(parse)
            conv.messages.append(
                UserMessage(
                    timestamp=timestamp,
                    text=mask_cpr(text)[0],
                    intent=intent,
                    predicted=predicted,
                    confidence=confidence,
                    fallback=intent == FALLBACK_INTENT,
                    payload=text.strip().startswith("/"),
                )
            )
            if intent == HANDOFF_INTENT:
                conv.handoff = True
        elif kind == "action":
            name = event.get("name") or ""
            if name == FALLBACK_ACTION and conv.messages:
                conv.messages[-1].fallback = True
            if "handoff" in name or name == CALLBACK_ACTION:
                conv.handoff = True
            if name == STATUS_ACTION:
                conv.status_shown = True
            if name == SUBMIT_ACTION:
                pending_submit = dict(slots)
                pending_submit["_timestamp"] = timestamp
            elif name != "action_listen":
                # last_case_reference comes with action_submit_request's own events,
                # before the next action; a later value is not a new case.
                pending_submit = None
        elif kind == "pause":
            conv.handoff = True
            conv.taken_over = True
        elif kind == "active_loop":
            name = event.get("name")
            conv.open_form = name if name else None
        elif kind == "slot":
            name, value = event.get("name"), event.get("value")
            if name == "last_case_reference" and value and pending_submit is not None:
                conv.cases.append(
                    Case(
                        timestamp=pending_submit["_timestamp"],
                        request_type=str(pending_submit.get("request_type") or "help"),
                        topic=str(pending_submit.get("topic") or "ukendt"),
                        urgency=str(pending_submit.get("urgency") or "ukendt"),
                        reference=str(value),
                    )
                )
                pending_submit = None
            elif name == "form_id" and value:
                conv.forms.append(str(value))
            elif name == "faq_id" and value:
                conv.faqs.append(str(value))
            elif name == "rating" and value is not None:
                try:
                    score = int(float(value))
                except (TypeError, ValueError):
                    score = 0
                if 1 <= score <= 5:
                    # One rating per session: a leader who corrects it counts once, with the last value.
                    rating = {"timestamp": timestamp, "rating": score, "comment": ""}
                    conv.ratings[:] = [rating]
            elif name == "rating_comment" and value and rating:
                rating["comment"] = mask_cpr(str(value))[0]
            slots[name] = value
        elif kind == "restart":
            slots.clear()
            conv.open_form = None
    return conv


def conversations(by_sender: Dict[str, List[Dict[str, Any]]]) -> List[Conversation]:
    """Every session of every sender, ordered by start time."""
    result: List[Conversation] = []
    for sender_id, events in by_sender.items():
        result.extend(split_sessions(sender_id, events))
    result.sort(key=lambda c: c.start)
    return result


def with_user_messages(items: Iterable[Conversation]) -> List[Conversation]:
    """Only sessions where the leader wrote or clicked something."""
    return [c for c in items if c.messages]
