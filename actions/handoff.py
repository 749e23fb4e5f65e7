"""Hand-over to a human AF supporter: ``action_human_handoff``.

When the leader asks for a person (intent ``human_handoff``: the button, "jeg
vil gerne tale med et menneske", or the offer after repeated
misunderstandings):

* somebody on duty (opening hours and a supporter present in the console,
  ``af_core.handoff_store.duty_status``): the conversation is queued in the
  shared hand-over store, the leader hears their place in the queue, and the
  conversation is paused (``ConversationPaused``). While paused Rasa stores
  the leader's messages without answering; the supporter console reads them
  from the tracker and answers through Rasa's HTTP API (web/support.py).
* nobody on duty: the assistant says so honestly and offers to create a case
  (someone from AF contacts the leader) or to book a meeting, and gives AF's
  phone number. The conversation is not paused.

If NLU was unsure (confidence below ``second_chance.HANDOFF_GUARD_CONFIDENCE``), the text
does not ask for a person, and it clearly names a form or rule topic ("en medarbejder ønsker
tjenestefri ..." is about the leader's own staff), the assistant answers that and offers the
person as a button (``/human_handoff``) instead of queueing and pausing.

Hand-back, closing and the time-out (nobody took the chat in time) happen in
the web server (web/handoff_flow.py). See docs/handoff.md.

Every sentence is a domain response (domain/handoff.yml, ``utter_handoff_...``).
"""
from __future__ import annotations

import asyncio
import math
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.forms_lookup import dispatch_plan, plan_to_events
from af_core.handoff_store import ACTIVE, duty_status, get_store
from af_core.profile import get_profile
from af_core.responses import render
from af_core.second_chance import handoff_guard
from af_core.settings import get_settings

TOPIC_MAX_CHARS = 200


def wait_text(seconds: int, domain: Dict[Text, Any]) -> str:
    """'30 sekunder', 'et minut', '3 minutter' (utter_wait_seconds / _one_minute / _minutes)."""
    if seconds < 60:
        return render(domain, "utter_wait_seconds", seconds=seconds)
    minutes = math.ceil(seconds / 60)
    if minutes == 1:
        return render(domain, "utter_wait_one_minute")
    return render(domain, "utter_wait_minutes", minutes=minutes)


def asked_about(tracker: Tracker, profile: Any, domain: Dict[Text, Any]) -> Optional[str]:
    """What the leader asked about, for the supporter's queue: the chosen topic
    (``utter_handoff_note_topic``) and their latest own words before asking for a person."""
    parts: List[str] = []
    topic = tracker.get_slot("topic")
    if isinstance(topic, str) and topic in profile.topics:
        parts.append(render(domain, "utter_handoff_note_topic", topic_name=profile.topics[topic].get("name", topic)))
    for event in reversed(tracker.events):
        if event.get("event") == "session_started":
            break
        if event.get("event") != "user":
            continue
        text = (event.get("text") or "").strip()
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if not text or text.startswith("/") or intent == "human_handoff":
            continue
        parts.append(text if len(text) <= TOPIC_MAX_CHARS else text[: TOPIC_MAX_CHARS - 1] + "…")
        break
    return " – ".join(parts) or None


def _latest_text_and_confidence(tracker: Tracker):
    latest = tracker.latest_message or {}
    confidence = (latest.get("intent") or {}).get("confidence")
    return latest.get("text") or "", (float(confidence) if confidence is not None else None)


class ActionHumanHandoff(Action):
    def name(self) -> Text:
        return "action_human_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        settings = get_settings()
        profile = get_profile()
        guarded = await asyncio.to_thread(handoff_guard, *_latest_text_and_confidence(tracker), profile)
        if guarded is not None:
            # NLU was unsure, and the text is a clear form question about the leader's own staff
            # ("en medarbejder ønsker tjenestefri ..."): answer it, and offer the person as a button.
            dispatch_plan(dispatcher, guarded, domain)
            return plan_to_events(guarded)
        store = await asyncio.to_thread(get_store, settings)
        conversation_id = tracker.sender_id

        existing = await asyncio.to_thread(store.open_for, conversation_id)
        if existing is not None:
            if existing.status == ACTIVE:
                dispatcher.utter_message(response="utter_handoff_already_chatting",
                                         supporter_name=existing.supporter_name)
            else:
                position = await asyncio.to_thread(store.position, existing.id)
                dispatcher.utter_message(response="utter_handoff_already_queued", position=position)
            return [ConversationPaused()]

        duty = await asyncio.to_thread(duty_status, settings, profile, store)
        if not duty.on_duty:
            # A case or a meeting instead (the buttons are in the domain), and AF's phone.
            response = "utter_handoff_closed" if duty.reason == "closed" else "utter_handoff_nobody"
            dispatcher.utter_message(response=response, af_phone=profile.phone, af_phone_hours=profile.phone_hours)
            await asyncio.to_thread(store.audit, "no_supporter", None, None, f"{conversation_id}: {duty.reason}")
            return []

        handoff, created = await asyncio.to_thread(
            lambda: store.request(
                conversation_id,
                leader_name=tracker.get_slot("leader_name"),
                leader_email=tracker.get_slot("leader_email"),
                leader_institution=tracker.get_slot("leader_institution"),
                leader_unit=tracker.get_slot("leader_unit"),
                topic=asked_about(tracker, profile, domain),
                wait_seconds=settings.handoff_wait_seconds,
            )
        )
        position = await asyncio.to_thread(store.position, handoff.id)
        if not created and handoff.conversation_id != conversation_id:
            # One open hand-over per leader: they already wait or chat in another window. That
            # conversation keeps its place (and its time-out case); this one is not paused.
            if handoff.status == ACTIVE:
                dispatcher.utter_message(response="utter_handoff_elsewhere_chatting",
                                         supporter_name=handoff.supporter_name)
            else:
                dispatcher.utter_message(response="utter_handoff_elsewhere_queued", position=position)
            return []
        await asyncio.to_thread(store.audit, "requested", None, handoff, f"nummer {position} i køen")
        dispatcher.utter_message(response="utter_handoff_queued", position=position,
                                 wait=wait_text(settings.handoff_wait_seconds, domain))
        return [ConversationPaused()]
