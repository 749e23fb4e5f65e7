"""Conversation basics: who the leader is, and what to do when we don't understand."""
from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, FollowupAction, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.forms_lookup import dispatch_plan, plan_to_events
from af_core.identity import Identity, identity_from_metadata
from af_core.profile import get_profile
from af_core.second_chance import catalogue_hint

IDENTITY_SLOTS = ("leader_name", "leader_email", "leader_institution", "leader_unit")


def _candidate_metadata(tracker: Tracker) -> List[Dict[str, Any]]:
    """Metadata that may carry the leader's verified token, freshest first.

    A session Rasa starts by itself puts the triggering message's metadata in
    ``session_started_metadata``; a ``/session_start`` typed in the middle of a
    session leaves that slot as it was (possibly hours old), but the typed message
    carries the current token. Both are tried; only a verified token counts.
    """
    candidates: List[Dict[str, Any]] = []
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            if isinstance(event.get("metadata"), dict):
                candidates.append(event["metadata"])
            break
    metadata = tracker.get_slot("session_started_metadata")
    if isinstance(metadata, dict):
        candidates.insert(0, metadata)
    return candidates


def _verified_identity(tracker: Tracker) -> Optional[Identity]:
    for metadata in _candidate_metadata(tracker):
        identity = identity_from_metadata(metadata)
        if identity is not None:
            return identity
    return None


def _kept_identity(tracker: Tracker) -> Optional[Tuple[Any, ...]]:
    """The identity slots as they are, if a verified identity is already set.

    A session start without a fresh verified token never downgrades a leader who is
    already known: otherwise an expired start token plus a typed ``/session_start``
    would wipe the identity and let the forms take an e-mail the leader types.
    """
    values = tuple(tracker.get_slot(slot) for slot in IDENTITY_SLOTS)
    return values if values[1] else None


def _had_previous_session(tracker: Tracker) -> bool:
    return any(event.get("event") == "session_started" for event in tracker.events)


class ActionSessionStart(Action):
    """Start a session: identity from the verified token, contact data from the profile.

    A leader returning after the session expired is greeted again.
    """

    def name(self) -> Text:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        returning = _had_previous_session(tracker)
        profile = get_profile()
        events: List[EventType] = [SessionStarted()]
        identity = _verified_identity(tracker)
        kept = _kept_identity(tracker)
        if identity is not None:
            unit = identity.unit or profile.unit_for_institution(identity.institution)["id"]
            values = (identity.name, identity.email, identity.institution, unit)
        elif kept is not None:
            values = kept
        else:
            values = (None, None, None, None)
        events.extend(SlotSet(slot, value) for slot, value in zip(IDENTITY_SLOTS, values))
        events.extend(
            [
                SlotSet("af_phone", profile.phone),
                SlotSet("af_phone_hours", profile.phone_hours),
                SlotSet("forms_page_url", profile.forms_page_url),
            ]
        )
        if returning:
            # The responses carry the main menu (domain/basics.yml).
            full_name = identity.name if identity else values[0]
            if full_name and full_name.split():
                dispatcher.utter_message(response="utter_welcome_back", first_name=full_name.split()[0])
            else:
                dispatcher.utter_message(response="utter_welcome_back_anonymous")
        events.append(ActionExecuted("action_listen"))
        return events


def consecutive_fallbacks(tracker: Tracker) -> int:
    """How many of the leader's latest messages in a row the assistant did not understand."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") == "session_started":
            break
        if event.get("event") != "user":
            continue
        intent = (event.get("parse_data") or {}).get("intent", {}).get("name")
        if intent != "nlu_fallback":
            break
        count += 1
    return count


async def second_chance(
    dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
) -> Optional[List[EventType]]:
    """If the leader's latest text clearly names a form or rule topic, answer that and return
    the events; else None. Not while a form (e.g. an order) is active: there the text is an
    answer to the form's question.
    """
    if (tracker.active_loop or {}).get("name"):
        return None
    text = (tracker.latest_message or {}).get("text") or ""
    plan = await asyncio.to_thread(catalogue_hint, text, get_profile())
    if plan is None:
        return None
    dispatch_plan(dispatcher, plan, domain)
    return plan_to_events(plan)


class ActionHandleFallback(Action):
    """Say we did not understand; after two misses in a row offer a case or a person.

    First a second chance: a text that clearly names a form or rule topic gets that answer.
    """

    def name(self) -> Text:
        return "action_handle_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        # This action is also the core fallback (no policy is sure what to do next).
        # Listening afterwards keeps it from predicting itself again in a loop.
        hinted = await second_chance(dispatcher, tracker, domain)
        if hinted is not None:
            return hinted + [FollowupAction("action_listen")]
        if consecutive_fallbacks(tracker) >= 2:
            # A case, a person or a form (the buttons are in the domain), and AF's phone.
            dispatcher.utter_message(response="utter_fallback_offer_help", af_phone=get_profile().phone)
        else:
            dispatcher.utter_message(response="utter_ask_rephrase")  # with the main menu
        return [FollowupAction("action_listen")]


class ActionOutOfScope(Action):
    """Out of scope: unless the text clearly names a form or rule topic (NLU reads e.g.
    "hvordan bestiller jeg ..." as out of scope), say politely what the assistant does."""

    def name(self) -> Text:
        return "action_out_of_scope"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        hinted = await second_chance(dispatcher, tracker, domain)
        if hinted is not None:
            return hinted
        dispatcher.utter_message(response="utter_out_of_scope")
        return []
