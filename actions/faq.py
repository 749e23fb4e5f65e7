"""Answer rule questions (FAQ) with a short answer and a link, then ask if it helped.

The topics live in ``faq.yml`` in the organisation profile (trainer-maintained data,
links built from the intranet base URL). ``search_faq(text)`` ranks them with
``actions.catalogue_search``.

Actions:
* ``action_answer_faq`` – answers the best topic (2-4 sentences + link) and asks
  "Hjalp det?" (buttons Ja/Nej -> /affirm, /deny; sets ``faq_feedback_pending``).
  Unsure: up to three topics as buttons (``/ask_question{"faq_id": "<id>"}``).
  Not one clear topic but clearly a form: the form. Nothing fits: an offer of help or a meeting.
  Topics may list related forms (``forms:``); their links follow the answer.
* ``action_faq_feedback`` – ja/nej right after ``action_answer_faq`` (see
  data/rules/knowledge.yml). After Ja: closes politely; after Nej: offers to order help
  or book a meeting about the same topic (``/request_help{"topic": ...}``,
  ``/book_meeting{"topic": ...}``) or to talk to a person. If no "Hjalp det?" was
  asked (``faq_feedback_pending`` false), it points back to the choices instead.

While another flow is active (e.g. the order form), the answer comes without "Hjalp det?".

The sentences are domain responses (domain/knowledge.yml, ``utter_faq_...``); the answer itself,
its title and link are the topic's own data from the catalogue.
"""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from actions import forms_lookup
from actions.catalogue_search import CatalogueIndex, Decision, Field, decide
from actions.forms_lookup import (
    _chosen_entity,
    _text,
    dispatch_plan,
    help_buttons,
    payload,
    plan_to_events,
    validated_entries,
)
from actions.profile import Profile, ProfileError, get_profile
from actions.responses import button, catalogue_button, part

FAQ_FILE = "faq.yml"
MIN_SCORE = 1.0
# Measured 3 December 2026 on the rule questions of the development sets (tests/eval:
# dev-outside, A, B; 180 questions): title 1.0 / lead 1.3 answered 166 right, 3 wrong and
# offered choices for 11; title 1.5 / lead 1.2 answers 172 right, 3 wrong, 5 offered.
# A topic's title names it ("Omsorgsdage", "Sygesamtale"); a leader who uses that word
# means that topic more often than one who shares a general word with its examples.
SURE_RATIO = 1.2
TITLE_WEIGHT = 1.5


@dataclass(frozen=True)
class FaqTopic:
    id: str
    title: str
    topic: str  # loen, personale, ... (for the follow-up offer)
    url: str  # expanded
    answer: str
    words: Tuple[str, ...]
    forms: Tuple[str, ...] = ()  # related form ids (shown with a link under the answer)


@dataclass(frozen=True)
class FaqCatalogue:
    topics: Tuple[FaqTopic, ...]
    index: CatalogueIndex

    def get(self, faq_id: str) -> Optional[FaqTopic]:
        return next((t for t in self.topics if t.id == faq_id), None)

    def search(self, text: str) -> Decision:
        return decide(self.index.search(text), MIN_SCORE, SURE_RATIO)


def parse_faq(data: Any, profile: Profile, source: str = FAQ_FILE) -> Tuple[FaqTopic, ...]:
    topics: List[FaqTopic] = []
    for entry, faq_id, where, topic, words in validated_entries(
        data, profile, source, list_key="topics", noun="emne", at_least="ét emne", area_key="topic"
    ):
        forms = entry.get("forms") or []
        if not isinstance(forms, list) or not all(isinstance(f, str) for f in forms):
            raise ProfileError(f"{where}: forms skal være en liste af blanket-id'er fra forms.yml")
        topics.append(
            FaqTopic(
                id=faq_id,
                title=_text(entry, "title", where),
                topic=topic,
                url=profile.link(_text(entry, "url", where)),
                answer=" ".join(_text(entry, "answer", where).split()),
                words=words,
                forms=tuple(forms),
            )
        )
    return tuple(topics)


def check_related_forms(topics, form_catalogue, source: str = FAQ_FILE) -> None:
    for topic in topics:
        for form_id in topic.forms:
            if form_catalogue.get(form_id) is None:
                raise ProfileError(f"{source}, emne '{topic.id}': blanketten '{form_id}' findes ikke i forms.yml")


def build_index(topics) -> CatalogueIndex:
    entries = []
    for topic in topics:
        fields = [Field(topic.title, TITLE_WEIGHT, phrase=True), Field(topic.answer, 0.3)]
        fields.extend(Field(word, 1.0, phrase=True) for word in topic.words)
        entries.append((topic.id, fields))
    return CatalogueIndex(entries)


_lock = threading.Lock()
_cache: Dict[Path, Tuple[float, FaqCatalogue]] = {}


def load_faq_catalogue(profile: Optional[Profile] = None) -> FaqCatalogue:
    """The FAQ catalogue of ``profile``; re-read when the file changes."""
    profile = profile or get_profile()
    path = profile.directory / FAQ_FILE
    mtime = path.stat().st_mtime if path.exists() else -1.0
    with _lock:
        cached = _cache.get(path)
        if cached and cached[0] == mtime:
            return cached[1]
        topics = parse_faq(profile.catalogue(FAQ_FILE), profile, str(path))
        check_related_forms(topics, forms_lookup.load_form_catalogue(profile), str(path))
        catalogue = FaqCatalogue(topics, build_index(topics))
        _cache[path] = (mtime, catalogue)
        return catalogue


def search_faq(text: str, profile: Optional[Profile] = None) -> Decision:
    return load_faq_catalogue(profile).search(text)


# ---------------------------------------------------------------------------
# Replies: domain responses (domain/knowledge.yml) filled with the catalogue's data

def answer_message(topic: FaqTopic, profile: Optional[Profile] = None, response: str = "utter_faq_answer") -> Dict[str, Any]:
    """The topic's own answer and link, and a line for each related form (``utter_faq_related_form``)."""
    forms = forms_lookup.load_form_catalogue(profile) if topic.forms else None
    related = [part("utter_faq_related_form", **forms_lookup.form_values(forms.get(form_id)))
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
    """What ``action_answer_faq`` says, as data (see ``forms_lookup.plan_form_reply``)."""
    catalogue = load_faq_catalogue(profile)
    if chosen_id:
        topic = catalogue.get(chosen_id)
        if topic:
            return _answer(topic, profile)
    if not text or forms_lookup.is_payload(text):
        return {"kind": "prompt", "messages": [{"response": "utter_ask_which_rule"}]}
    decision = catalogue.search(text)
    form_decision = forms_lookup.search_forms(text, profile)
    if decision.kind == "sure" and not _form_outweighs(form_decision, decision):
        return _answer(catalogue.get(decision.hits[0].id), profile)
    # Not one clear rule topic. If it is clearly about a form, that form is part of the answer.
    form = None
    if form_decision.kind == "sure":
        form = forms_lookup.load_form_catalogue(profile).get(form_decision.hits[0].id)
    if form and decision.kind == "sure":  # the words name a form far more than the rule topic
        return {"kind": "form", "form_id": form.id, "messages": [forms_lookup.form_message(form)]}
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
        return {"kind": "form", "form_id": form.id, "messages": [forms_lookup.form_message(form)]}
    return {"kind": "none", "messages": [{"response": "utter_faq_no_answer", "buttons": help_buttons(profile, None)}]}


# "kan jeg give min TR et tillæg for ekstra opgaver" is asked like a rule question, but its words
# name the form for a pay change (score 12.5) far more than any rule topic (1.4): the form answers.
FORM_OUTWEIGHS = 3.0


def _form_outweighs(form_decision: Decision, faq_decision: Decision) -> bool:
    if form_decision.kind != "sure" or faq_decision.kind != "sure":
        return False
    return form_decision.hits[0].score >= FORM_OUTWEIGHS * faq_decision.hits[0].score


# Like forms_lookup.HINT_MIN_SCORE, for rule topics: at 4.5 the hint fires for none of the
# other intents' training examples (4.0 answered "et barn der slår" with omsorgsdage) and for a
# third of the ask_question examples. Measured on data/nlu, not on a held-out set.
HINT_MIN_SCORE = 4.5


def faq_hint(text: str, profile: Optional[Profile] = None) -> Optional[Dict[str, Any]]:
    """For fallback / out-of-scope handling: when NLU did not see a rule question but the text
    clearly is one of the FAQ topics, a plan answering it (without "Hjalp det?": the
    dialogue rules for ja/nej only follow action_answer_faq); else None.
    """
    if not text or forms_lookup.is_payload(text):
        return None
    profile = profile or get_profile()
    catalogue = load_faq_catalogue(profile)
    decision = catalogue.search(text)
    if decision.kind != "sure" or decision.hits[0].score < HINT_MIN_SCORE:
        return None
    topic = catalogue.get(decision.hits[0].id)
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


# ---------------------------------------------------------------------------
# Rasa actions

try:
    from rasa_sdk import Action
    from rasa_sdk.events import SlotSet
except ImportError:  # pragma: no cover
    Action = object  # type: ignore


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
