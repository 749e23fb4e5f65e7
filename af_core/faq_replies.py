"""What the assistant says about rule questions (FAQ), as data (see ``af_core.form_replies``).

``plan_faq_reply`` is what ``action_answer_faq`` answers: the topic's short answer and link,
then "Hjalp det?"; unsure: up to three topics as buttons (``/ask_question{"faq_id": "<id>"}``);
not one clear topic but clearly a form: the form; nothing fits: an offer of help or a meeting.
``plan_feedback_reply`` is the reply to ja/nej after "Hjalp det?" (``action_faq_feedback``),
``faq_hint`` the second chance other capabilities use. The sentences are domain responses
(domain/knowledge.yml, ``utter_faq_...``); the answer, title and link are the topic's own data.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from af_core.catalogue import FaqTopic, clear_hit, load_faq_catalogue, load_form_catalogue, search_forms
from af_core.catalogue_search import Decision
from af_core.form_replies import form_message, form_values, help_buttons, is_payload, payload
from af_core.profile import Profile, get_profile
from af_core.responses import button, catalogue_button, part


def answer_message(topic: FaqTopic, profile: Optional[Profile] = None, response: str = "utter_faq_answer") -> Dict[str, Any]:
    """The topic's own answer and link, and a line for each related form (``utter_faq_related_form``)."""
    forms = load_form_catalogue(profile) if topic.forms else None
    related = [part("utter_faq_related_form", **form_values(forms.get(form_id)))
               for form_id in topic.forms]
    return {
        "response": response,
        "values": {"faq_title": topic.title, "faq_answer": topic.answer, "faq_url": topic.url},
        "parts": {"related_forms": related},
    }


def _answer(topic: FaqTopic, profile: Optional[Profile] = None) -> Dict[str, Any]:
    return {
        "kind": "sure",
        "faq_id": topic.id,
        "related_forms": list(topic.forms),
        "topic": topic.topic,
        "ask_feedback": True,
        "messages": [answer_message(topic, profile), {"response": "utter_ask_faq_helped"}],
    }


def plan_faq_reply(text: str, chosen_id: Optional[str], profile: Profile) -> Dict[str, Any]:
    """What ``action_answer_faq`` says, as data (see ``form_replies.plan_form_reply``)."""
    catalogue = load_faq_catalogue(profile)
    if chosen_id:
        topic = catalogue.get(chosen_id)
        if topic:
            return _answer(topic, profile)
    if not text or is_payload(text):
        return {"kind": "prompt", "messages": [{"response": "utter_ask_which_rule"}]}
    decision = catalogue.search(text)
    form_decision = search_forms(text, profile)
    if decision.kind == "sure" and not _form_outweighs(form_decision, decision):
        return _answer(catalogue.get(decision.hits[0].id), profile)
    # Not one clear rule topic. If it is clearly about a form, that form is part of the answer.
    form = None
    if form_decision.kind == "sure":
        form = load_form_catalogue(profile).get(form_decision.hits[0].id)
    if form and decision.kind == "sure":  # the words name a form far more than the rule topic
        return {"kind": "form", "form_id": form.id, "messages": [form_message(form)]}
    if decision.kind == "unsure":
        buttons = [
            catalogue_button(payload("ask_question", faq_id=h.id), catalogue.get(h.id).title)
            for h in decision.hits
        ]
        if form:
            buttons.append(button(payload("find_form", form_id=form.id), "utter_button_form", form_title=form.title))
        return {
            "kind": "unsure",
            "candidates": [h.id for h in decision.hits],
            "offered_forms": [form.id] if form else [],
            "messages": [{"response": "utter_faq_unsure", "buttons": buttons}],
        }
    if form:
        return {"kind": "form", "form_id": form.id, "messages": [form_message(form)]}
    return {"kind": "none", "messages": [{"response": "utter_faq_no_answer", "buttons": help_buttons(profile, None)}]}


# "kan jeg give min TR et tillæg for ekstra opgaver" is asked like a rule question, but its words
# name the form for a pay change (score 12.5) far more than any rule topic (1.4): the form answers.
FORM_OUTWEIGHS = 3.0


def _form_outweighs(form_decision: Decision, faq_decision: Decision) -> bool:
    if form_decision.kind != "sure" or faq_decision.kind != "sure":
        return False
    return form_decision.hits[0].score >= FORM_OUTWEIGHS * faq_decision.hits[0].score


# Like form_replies.HINT_MIN_SCORE, for rule topics: at 4.5 the hint fires for none of the
# other intents' training examples (4.0 answered "et barn der slår" with omsorgsdage) and for a
# third of the ask_question examples. Measured on data/nlu, not on a held-out set.
HINT_MIN_SCORE = 4.5


def faq_hint(text: str, profile: Optional[Profile] = None) -> Optional[Dict[str, Any]]:
    """For fallback / out-of-scope handling: when NLU did not see a rule question but the text
    clearly is one of the FAQ topics, a plan answering it (without "Hjalp det?": the
    dialogue rules for ja/nej only follow action_answer_faq); else None.
    """
    if not text or is_payload(text):
        return None
    profile = profile or get_profile()
    topic = clear_hit(load_faq_catalogue(profile), text, HINT_MIN_SCORE)
    if topic is None:
        return None
    return {
        "kind": "hint",
        "faq_id": topic.id,
        "related_forms": list(topic.forms),
        "topic": topic.topic,
        "messages": [answer_message(topic, profile, "utter_faq_hint")],
    }


def without_feedback_question(plan: Dict[str, Any]) -> Dict[str, Any]:
    """The same answer without "Hjalp det?" (used while another flow, e.g. an order, is active)."""
    if not plan.get("ask_feedback"):
        return plan
    return {**plan, "ask_feedback": False, "messages": plan["messages"][:1]}


def plan_feedback_reply(helped: bool, faq_id: Optional[str], profile: Profile, pending: bool = True) -> Dict[str, Any]:
    """The reply to ja/nej right after action_answer_faq (``pending``: it asked "Hjalp det?")."""
    if not pending:
        # The leader said ja/nej to a list of topics, a prompt or an offer of help.
        if helped:
            return {"kind": "not_pending", "messages": [
                {"response": "utter_faq_pick_a_topic", "buttons": help_buttons(profile, None)}]}
        return {"kind": "not_pending", "messages": [{"response": "utter_faq_okay"}]}
    if helped:
        return {"kind": "helped", "messages": [{"response": "utter_faq_glad"}]}
    topic = load_faq_catalogue(profile).get(faq_id) if faq_id else None
    area = topic.topic if topic else None
    area_name = profile.topics.get(area, {}).get("name") if area else None
    buttons = help_buttons(profile, area)
    buttons.append(button("/human_handoff", "utter_button_a_person"))
    if area_name:
        message = {"response": "utter_faq_not_helped", "values": {"topic_name": area_name}, "buttons": buttons}
    else:
        message = {"response": "utter_faq_not_helped_no_topic", "buttons": buttons}
    return {"kind": "not_helped", "topic": area, "messages": [message]}
