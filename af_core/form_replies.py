"""What the assistant says about forms, as data: a plan of domain responses and their values.

``plan_form_reply`` is what ``action_find_form`` answers (one clear form; up to three as
buttons; nothing fits: the forms page and AF's help, or a rule topic that fits), and
``form_hint`` the second chance other capabilities use. A plan is
``{"kind": ..., "form_id": ..., "messages": [{"response": "utter_...", "values": {...},
"buttons": [...]}]}``; the sentences are domain responses (domain/knowledge.yml), filled with the
form's own title, "when" and link from the catalogue. No Rasa here: ``actions/forms_lookup.py``
sends a plan.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from af_core.catalogue import (
    NO_FORM_ID,
    Form,
    clear_hit,
    load_faq_catalogue,
    load_form_catalogue,
    search_faq,
)
from af_core.profile import Profile, get_profile
from af_core.responses import button, catalogue_button


def is_payload(text: Optional[str]) -> bool:
    return bool(text) and text.strip().startswith("/")


def form_values(form: Form) -> Dict[str, str]:
    """A form's own data (title, when, link) for a response's {form_title}, {form_when}, {form_url}."""
    return {"form_title": form.title, "form_when": form.when, "form_url": form.url}


def form_message(form: Form, response: str = "utter_form") -> Dict[str, Any]:
    return {"response": response, "values": form_values(form)}


def payload(intent: str, **entities: str) -> str:
    return f"/{intent}{json.dumps(entities, ensure_ascii=False)}" if entities else f"/{intent}"


def help_buttons(profile: Profile, topic: Optional[str]) -> List[Dict[str, Any]]:
    """Buttons offering AF's help; with ``topic`` the order starts on that topic."""
    entities = {"topic": topic} if topic else {}
    return [
        button(payload("request_help", **entities), "utter_button_order_help"),
        button(payload("book_meeting", **entities), "utter_button_book_meeting"),
    ]


def plan_form_reply(text: str, chosen_id: Optional[str], profile: Profile) -> Dict[str, Any]:
    """What ``action_find_form`` says, as data: ``{"messages": [...], "form_id": ..., "kind": ...}``.

    Each message names a domain response with its variables (see ``af_core.responses``).
    Pure apart from reading the catalogue.
    """
    catalogue = load_form_catalogue(profile)
    if chosen_id:
        form = catalogue.get(chosen_id)
        if form:
            return {"kind": "sure", "form_id": form.id, "messages": [form_message(form)]}
        if chosen_id == NO_FORM_ID:
            return _no_fit(profile, None, "utter_form_none_of_these")
    if not text or is_payload(text):
        return {"kind": "prompt", "form_id": None, "messages": [{"response": "utter_ask_which_form"}]}
    decision = catalogue.search(text)
    if decision.kind == "sure":
        form = catalogue.get(decision.hits[0].id)
        return {"kind": "sure", "form_id": form.id, "messages": [form_message(form)]}
    if decision.kind == "unsure":
        buttons = [
            catalogue_button(payload("find_form", form_id=h.id), catalogue.get(h.id).title)
            for h in decision.hits
        ]
        buttons.append(button(payload("find_form", form_id=NO_FORM_ID), "utter_button_none_of_these"))
        return {
            "kind": "unsure",
            "form_id": None,
            "candidates": [h.id for h in decision.hits],
            "messages": [{"response": "utter_form_unsure", "buttons": buttons}],
        }
    # Nothing fits as a form. If it reads like one of the rule questions, offer that answer.
    faq_decision = search_faq(text, profile)
    plan = _no_fit(profile, None, "utter_form_not_found")
    if faq_decision.kind == "sure":
        topic = load_faq_catalogue(profile).get(faq_decision.hits[0].id)
        plan["messages"][0]["buttons"].insert(0, read_about_button(topic))
        plan["suggested_faq"] = topic.id
    return plan


def read_about_button(topic: Any) -> Dict[str, Any]:
    """"Læs om: <the rule topic's title>"."""
    return button(payload("ask_question", faq_id=topic.id), "utter_button_read_about", faq_title=topic.title)


# A fallback hint must be safe: the leader's text was NOT understood as a form question.
# One rare catalogue word alone scores about 2.9 ("stop", "passer", "starte", "5", "computer"
# each matched a form), so 2.5 guessed a form for 15 % of the other intents' training examples.
# 4.0 needs two catalogue words or a trainer's phrase ("§ 56"): it fires for 1.3 % of the other
# intents' examples (mostly request_help/book_meeting, which never ask for a hint) and for 45 %
# of the find_form examples. Measured on data/nlu (not the held-out set); see docs/nlu.md.
HINT_MIN_SCORE = 4.0


def form_hint(text: str, profile: Optional[Profile] = None) -> Optional[Dict[str, Any]]:
    """For other capabilities' fallback / out-of-scope handling: when NLU did not see a form
    question but the text clearly names one form, a plan suggesting it; else None.

    Use: ``plan = form_hint(text)``; ``if plan: dispatch_plan(dispatcher, plan, domain)``.
    """
    if not text or is_payload(text):
        return None
    profile = profile or get_profile()
    form = clear_hit(load_form_catalogue(profile), text, HINT_MIN_SCORE)
    if form is None:
        return None
    return {"kind": "hint", "form_id": form.id, "messages": [form_message(form, "utter_form_hint")]}


def _no_fit(profile: Profile, topic: Optional[str], response: str) -> Dict[str, Any]:
    """No form fits: the link to all forms, and AF's help."""
    return {"kind": "none", "form_id": None, "messages": [{
        "response": response,
        "values": {"forms_page_url": profile.forms_page_url},
        "buttons": help_buttons(profile, topic),
    }]}
