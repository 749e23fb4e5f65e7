"""``action_answer_faq`` and ``action_faq_feedback``: rule questions (FAQ).

The topics and their search are in ``af_core.catalogue``; what to answer is planned by
``af_core.faq_replies``. ``action_answer_faq`` answers the best topic and asks "Hjalp det?"
(sets ``faq_feedback_pending``); while another flow is active (e.g. the order form), the answer
comes without that question. ``action_faq_feedback`` handles ja/nej right after it
(data/rules/knowledge.yml).
"""
from __future__ import annotations

import asyncio

from rasa_sdk import Action
from rasa_sdk.events import SlotSet

from actions.forms_lookup import _chosen_entity, dispatch_plan, plan_to_events
from af_core.faq_replies import plan_faq_reply, plan_feedback_reply, without_feedback_question
from af_core.profile import get_profile


class ActionAnswerFaq(Action):
    def name(self) -> str:
        return "action_answer_faq"

    async def run(self, dispatcher, tracker, domain):
        latest = tracker.latest_message or {}
        chosen = _chosen_entity(latest, "faq_id")
        profile = get_profile()
        plan = await asyncio.to_thread(plan_faq_reply, latest.get("text") or "", chosen, profile)
        if (tracker.active_loop or {}).get("name"):
            # Asked in the middle of e.g. an order: answer, and let that flow ask its next question.
            plan = without_feedback_question(plan)
        dispatch_plan(dispatcher, plan, domain)
        return plan_to_events(plan)


class ActionFaqFeedback(Action):
    def name(self) -> str:
        return "action_faq_feedback"

    async def run(self, dispatcher, tracker, domain):
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        profile = get_profile()
        plan = await asyncio.to_thread(
            plan_feedback_reply,
            intent == "affirm",
            tracker.get_slot("faq_id"),
            profile,
            bool(tracker.get_slot("faq_feedback_pending")),
        )
        dispatch_plan(dispatcher, plan, domain)
        return [SlotSet("faq_feedback_pending", False)]
