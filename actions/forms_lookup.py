"""Find the right form ("blanket") for a leader's question.

The catalogue is ``forms.yml`` in the organisation profile (trainer-maintained data).
``search_forms(text)`` ranks it with ``actions.catalogue_search``; ``ActionFindForm``
answers in the chat:

* one clear match: title, the one-line "when" and the link;
* unsure: up to three forms as buttons (payload ``/find_form{"form_id": "<id>"}``);
* nothing fits: says so and offers to order help or book a meeting with AF
  (or answers a rule question, if the text is clearly one of the FAQ topics).

The sentences are domain responses (domain/knowledge.yml, ``utter_form...``), filled with the
form's own title, "when" and link from the catalogue.
"""
from __future__ import annotations

import asyncio
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from actions.catalogue_search import CatalogueIndex, Decision, Field, decide
from actions.profile import Profile, ProfileError, get_profile
from actions.responses import button, catalogue_button, message_buttons, message_values

FORMS_FILE = "forms.yml"
ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")

# Tuned on tests/test_forms_lookup.py and the training examples (not on the held-out set).
MIN_SCORE = 1.0  # below this nothing fits
SURE_RATIO = 1.2  # the best form must beat the runner-up by this factor to answer directly (1.3 until
# 2.12.2026: 1.2 answered 7 more of 287 development-set questions right and 2 more wrong, and on the
# held-out split 4 more right and 1 more wrong; docs/nlu.md)
NO_FORM_ID = "ingen"  # button payload "none of these"
TITLE_WEIGHT = 0.7  # words only in a form's title weigh less than its trainer-written words (1.0)


@dataclass(frozen=True)
class Form:
    id: str
    title: str
    url: str  # already expanded ({intranet} replaced)
    area: str
    when: str
    words: Tuple[str, ...]


@dataclass(frozen=True)
class FormCatalogue:
    forms: Tuple[Form, ...]
    index: CatalogueIndex

    def get(self, form_id: str) -> Optional[Form]:
        return next((f for f in self.forms if f.id == form_id), None)

    def search(self, text: str) -> Decision:
        return decide(self.index.search(text), MIN_SCORE, SURE_RATIO)


def _text(entry: Dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(f"{where}: feltet '{key}' mangler eller er tomt")
    return value.strip()


def validated_entries(
    data: Any, profile: Profile, source: str, *, list_key: str, noun: str, at_least: str, area_key: str
) -> Iterator[Tuple[Dict[str, Any], str, str, str, Tuple[str, ...]]]:
    """The checks every trainer catalogue shares (forms.yml, faq.yml), with Danish errors.

    Yields ``(entry, id, where, area, words)`` for each entry; ``where`` names it in errors.
    """
    if not isinstance(data, dict) or not isinstance(data.get(list_key), list) or not data[list_key]:
        raise ProfileError(f"{source}: skal have en liste '{list_key}' med mindst {at_least}")
    areas = set(profile.topics)
    seen = set()
    for number, entry in enumerate(data[list_key], start=1):
        where = f"{source}, {noun} nr. {number}"
        if not isinstance(entry, dict):
            raise ProfileError(f"{where}: skal være en samling af felter (id, title, ...)")
        entry_id = _text(entry, "id", where)
        where = f"{source}, {noun} '{entry_id}'"
        if not ID_RE.match(entry_id):
            raise ProfileError(f"{where}: id må kun have små bogstaver a-z, tal og _")
        if entry_id in seen:
            raise ProfileError(f"{where}: id findes to gange")
        seen.add(entry_id)
        area = _text(entry, area_key, where)
        if area not in areas:
            raise ProfileError(f"{where}: {area_key} skal være en af {', '.join(sorted(areas))}")
        words = entry.get("words") or []
        if not isinstance(words, list) or not all(isinstance(w, (str, int)) for w in words):
            raise ProfileError(f"{where}: words skal være en liste af ord og vendinger")
        yield entry, entry_id, where, area, tuple(str(w).strip() for w in words if str(w).strip())


def parse_forms(data: Any, profile: Profile, source: str = FORMS_FILE) -> Tuple[Form, ...]:
    """Validate the catalogue data and return the forms (links expanded)."""
    return tuple(
        Form(
            id=form_id,
            title=_text(entry, "title", where),
            url=profile.link(_text(entry, "url", where)),
            area=area,
            when=_text(entry, "when", where),
            words=words,
        )
        for entry, form_id, where, area, words in validated_entries(
            data, profile, source, list_key="forms", noun="blanket", at_least="én blanket", area_key="area"
        )
    )


def build_index(forms: Sequence[Form]) -> CatalogueIndex:
    entries = []
    for form in forms:
        # Titles name the KIND of form with generic words ("Ansættelse af vikar ..."), so a title
        # word counts less than the trainer's own words: "ansættelse af en ny medarbejder" is the
        # permanent hire (a word of 'ansaettelse'), not a tie with the title of 'vikar'.
        fields = [Field(form.title, TITLE_WEIGHT, phrase=True), Field(form.when, 0.4)]
        fields.extend(Field(word, 1.0, phrase=True) for word in form.words)
        entries.append((form.id, fields))
    return CatalogueIndex(entries)


_lock = threading.Lock()
_cache: Dict[Path, Tuple[float, FormCatalogue]] = {}


def load_form_catalogue(profile: Optional[Profile] = None) -> FormCatalogue:
    """The form catalogue of ``profile`` (default: the active one).

    Re-read when the file changes, so a trainer's edit takes effect without a restart.
    """
    profile = profile or get_profile()
    path = profile.directory / FORMS_FILE
    mtime = path.stat().st_mtime if path.exists() else -1.0
    with _lock:
        cached = _cache.get(path)
        if cached and cached[0] == mtime:
            return cached[1]
        forms = parse_forms(profile.catalogue(FORMS_FILE), profile, str(path))
        catalogue = FormCatalogue(forms, build_index(forms))
        _cache[path] = (mtime, catalogue)
        return catalogue


def search_forms(text: str, profile: Optional[Profile] = None) -> Decision:
    """Ranked decision for a leader's form question (the code path the bot uses)."""
    return load_form_catalogue(profile).search(text)


# ---------------------------------------------------------------------------
# Replies: domain responses (domain/knowledge.yml) filled with the catalogue's data

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

    Each message names a domain response with its variables (see ``actions.responses``).
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
    from actions import faq  # local import: faq imports this module

    faq_decision = faq.search_faq(text, profile)
    plan = _no_fit(profile, None, "utter_form_not_found")
    if faq_decision.kind == "sure":
        topic = faq.load_faq_catalogue(profile).get(faq_decision.hits[0].id)
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
    catalogue = load_form_catalogue(profile)
    decision = catalogue.search(text)
    if decision.kind != "sure" or decision.hits[0].score < HINT_MIN_SCORE:
        return None
    form = catalogue.get(decision.hits[0].id)
    return {"kind": "hint", "form_id": form.id, "messages": [form_message(form, "utter_form_hint")]}


def _no_fit(profile: Profile, topic: Optional[str], response: str) -> Dict[str, Any]:
    """No form fits: the link to all forms, and AF's help."""
    return {"kind": "none", "form_id": None, "messages": [{
        "response": response,
        "values": {"forms_page_url": profile.forms_page_url},
        "buttons": help_buttons(profile, topic),
    }]}


def _chosen_entity(latest_message: Dict[str, Any], name: str) -> Optional[str]:
    for entity in latest_message.get("entities") or []:
        if entity.get("entity") == name and entity.get("value"):
            return str(entity["value"]).strip()
    return None


# ---------------------------------------------------------------------------
# Rasa action (rasa_sdk is imported here only, so the search can be used without it)

try:
    from rasa_sdk import Action, Tracker
    from rasa_sdk.events import SlotSet
    from rasa_sdk.executor import CollectingDispatcher
except ImportError:  # pragma: no cover - the action server always has rasa_sdk
    Action = object  # type: ignore


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
