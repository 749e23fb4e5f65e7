"""``action_find_form``: the right form ("blanket") for a leader's question.

The catalogue and its search are in ``af_core.catalogue``; what to answer is planned by
``af_core.form_replies.plan_form_reply``. This module only sends a plan: ``dispatch_plan``
(each message a domain response, its parts and button labels from the domain) and
``plan_to_events`` (the slots the rules and stories read), which the other actions use too.
"""
from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

from rasa_sdk import Action
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from af_core.form_replies import plan_form_reply
from af_core.profile import get_profile
from af_core.responses import message_buttons, message_values


def _chosen_entity(latest_message: Dict[str, Any], name: str) -> Optional[str]:
    for entity in latest_message.get("entities") or []:
        if entity.get("entity") == name and entity.get("value"):
            return str(entity["value"]).strip()
    return None


def plan_to_events(plan: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [
        SlotSet("form_id", plan.get("form_id")),
        SlotSet("faq_id", plan.get("faq_id")),
        SlotSet("faq_feedback_pending", bool(plan.get("ask_feedback"))),
    ]


def dispatch_plan(dispatcher: "CollectingDispatcher", plan: Dict[str, Any], domain: Dict[str, Any]) -> None:
    """Send a plan's messages: each a domain response, its parts and button labels from ``domain``."""
    for message in plan["messages"]:
        dispatcher.utter_message(
            response=message["response"],
            buttons=message_buttons(domain, message),
            **message_values(domain, message),
        )


class ActionFindForm(Action):
    def name(self) -> str:
        return "action_find_form"

    async def run(self, dispatcher, tracker, domain):
        latest = tracker.latest_message or {}
        text = latest.get("text") or ""
        chosen = _chosen_entity(latest, "form_id")
        profile = get_profile()
        plan = await asyncio.to_thread(plan_form_reply, text, chosen, profile)
        dispatch_plan(dispatcher, plan, domain)
        return plan_to_events(plan)
