"""The catalogues' second chance: when NLU misreads a clear form question as out of scope,
a misunderstanding, a rating or a wish for a person, the leader still gets the form.
Also: the hints stay silent on everyday chat, and the held-out set stays out of training data."""
from __future__ import annotations

import asyncio
import glob
import re
from types import SimpleNamespace

import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import handoff
from actions.basics import ActionHandleFallback, ActionOutOfScope
from actions.feedback import ActionStoreRating
from actions.handoff import ActionHumanHandoff
from af_core import catalogue, second_chance
from af_core.settings import PROJECT_ROOT
from af_core.textnorm import fold
from devtools import eval_forms
from tests.domain_helpers import DOMAIN, all_shown, plan_shown, shown_buttons

LEAVE = "en medarbejder ønsker tjenestefri uden løn et år for at studere"
SICK = "§ 56 aftale for en lærer"


def tracker(text, intent="nlu_fallback", confidence=0.4, slots=None, loop=None, events=None):
    latest = {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": []}
    return Tracker("c1", slots or {}, latest, events or [], False, None, {"name": loop} if loop else {}, "action_listen")


def run(action, t):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, t, DOMAIN))
    return dispatcher.messages, events


def texts(messages):
    """What the leader reads."""
    return all_shown(messages)


def slots(events):
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


# ------------------------------------------------------------------ the hints themselves
def test_hint_names_the_form_for_a_clear_form_question():
    plan = second_chance.catalogue_hint(LEAVE)
    assert plan["form_id"] == "orlov" and "/af/blanketter/orlov" in plan_shown(plan)


def test_hint_answers_a_clear_rule_question():
    plan = second_chance.catalogue_hint("hvordan fungerer samtidighedsferie i ferieloven")
    assert plan["faq_id"] == "ferieloven" and "Læs de fulde regler her" in plan_shown(plan)


def test_hint_stays_silent_on_chat_that_shares_one_word_with_a_form():
    # Each of these matched one rare catalogue word (stopper, passe, starter, 5. ferieuge, kører)
    # and got a form at the old threshold.
    for text in ("stop", "det passer ikke", "min pc vil ikke starte", "5", "hvornår kører 5C",
                 "regner det i københavn i dag", "hej igen", "taler jeg med en computer?", "/greet", ""):
        assert second_chance.catalogue_hint(text) is None, text


def test_form_and_rule_both_clear_gives_the_form_and_the_rule_one_tap_away():
    plan = second_chance.catalogue_hint("hvornår skal jeg holde en sygesamtale med en sygemeldt")
    assert plan["form_id"] == "sygdom"
    assert '/ask_question{"faq_id": "sygesamtale"}' in [b["payload"] for b in plan["messages"][-1]["buttons"]]


# ------------------------------------------------------------------ out of scope and fallback
def test_out_of_scope_that_is_a_form_question_gets_the_form():
    messages, events = run(ActionOutOfScope(), tracker("hvordan bestiller jeg bus og indkøb af materialer til udflugten",
                                                       "out_of_scope", 0.99))
    assert "/af/blanketter/indkoeb" in texts(messages)
    assert slots(events)["form_id"] == "indkoeb"
    assert not any(m.get("response") == "utter_out_of_scope" for m in messages)


def test_real_out_of_scope_says_what_the_assistant_does():
    messages, events = run(ActionOutOfScope(), tracker("hvem vinder superligaen i år", "out_of_scope", 0.99))
    assert [m.get("response") for m in messages] == ["utter_out_of_scope"]
    assert events == []


def test_fallback_first_tries_the_catalogue_and_still_hands_the_turn_back():
    messages, events = run(ActionHandleFallback(), tracker(SICK, "nlu_fallback", 0.45))
    assert "/af/blanketter/sygdom" in texts(messages)
    assert "forstod jeg ikke" not in texts(messages)
    assert events[-1] == {"event": "followup", "timestamp": None, "name": "action_listen"}


def test_core_fallback_after_a_misread_deny_gives_the_form():
    messages, _ = run(ActionHandleFallback(), tracker(LEAVE, "deny", 0.7))
    assert "/af/blanketter/orlov" in texts(messages)


def test_fallback_without_a_clear_form_asks_to_rephrase():
    messages, events = run(ActionHandleFallback(), tracker("blabla fnuller", "nlu_fallback", 0.3))
    assert "forstod jeg ikke" in texts(messages)
    assert events == [{"event": "followup", "timestamp": None, "name": "action_listen"}]


def test_no_hint_while_an_order_is_being_filled_in():
    messages, _ = run(ActionHandleFallback(), tracker(SICK, "nlu_fallback", 0.45, loop="request_form"))
    assert "/af/blanketter/sygdom" not in texts(messages)


# ------------------------------------------------------------------ a person or a form?
def test_guard_fires_only_when_unsure_not_asking_for_a_person_and_a_form_is_clear():
    assert second_chance.handoff_guard(LEAVE, 0.7)["form_id"] == "orlov"
    assert second_chance.handoff_guard(LEAVE, 0.95) is None  # NLU sure: the leader gets the person
    assert second_chance.handoff_guard(LEAVE, None) is None
    assert second_chance.handoff_guard("jeg vil tale med en person om tjenestefri uden løn et år", 0.5) is None
    assert second_chance.handoff_guard("kan jeg chatte med en fra AF om orlov uden løn", 0.5) is None
    assert second_chance.handoff_guard("/human_handoff", 0.5) is None
    assert second_chance.handoff_guard("medarbejder tak", 0.6) is None  # no clear form
    # "i forbindelse med" is everyday Danish, not "forbind mig med en person"
    assert not second_chance.asks_for_person("overarbejde i forbindelse med en tur, tjenestefri uden løn")
    assert second_chance.asks_for_person("forbind mig med en fra løn")


def test_handoff_action_answers_the_form_and_offers_the_person_without_pausing():
    messages, events = run(ActionHumanHandoff(), tracker(LEAVE, "human_handoff", 0.7))
    assert "/af/blanketter/orlov" in texts(messages)
    assert messages[-1]["response"] == "utter_offer_person"
    assert {"title": "Tal med en person fra AF", "payload": "/human_handoff"} in shown_buttons(messages[-1])
    assert not any(e.get("event") == "pause" for e in events)


def test_handoff_action_hands_over_when_nlu_is_sure(monkeypatch):
    waiting = SimpleNamespace(id=7, status="waiting", supporter_name=None)
    fake_store = SimpleNamespace(open_for=lambda conversation: waiting, position=lambda handoff_id: 2)
    monkeypatch.setattr(handoff, "get_store", lambda settings: fake_store)
    messages, events = run(ActionHumanHandoff(), tracker(LEAVE, "human_handoff", 0.97))
    assert "nummer 2 i køen" in texts(messages)
    assert any(e.get("event") == "pause" for e in events)


# ------------------------------------------------------------------ a rating nobody asked for
def test_unrequested_rating_that_is_a_form_question_gets_the_form():
    messages, events = run(ActionStoreRating(), tracker(SICK, "rate", 0.99))
    assert "/af/blanketter/sygdom" in texts(messages)
    assert "rating" not in slots(events)


def test_requested_rating_is_stored_even_if_it_mentions_a_form():
    messages, events = run(ActionStoreRating(), tracker("4 - jeg fandt § 56 aftale blanketten", "rate", 0.99,
                                                        slots={"rating_requested": True}))
    assert slots(events)["rating"] == 4.0


# ------------------------------------------------------------------ ranking
def test_hiring_a_new_employee_is_the_permanent_hire_not_a_tie_with_the_substitute():
    decision = catalogue.search_forms("hvor finder jeg blanketten til ansættelse af en ny medarbejder")
    assert decision.kind == "sure" and decision.hits[0].id == "ansaettelse"
    assert catalogue.search_forms("ansættelse af en vikar").hits[0].id == "vikar"


# ------------------------------------------------------------------ the evaluation counts the real path
def test_eval_counts_a_second_chance_only_where_the_bot_gives_one():
    profile = second_chance.get_profile()
    assert eval_forms.bot_ranking("action_out_of_scope", LEAVE, profile)["forms"] == ["orlov"]
    assert eval_forms.bot_ranking("action_handle_fallback", "hvem vinder superligaen", profile)["forms"] == []
    assert eval_forms.bot_ranking("action_human_handoff", LEAVE, profile, 0.7)["forms"] == ["orlov"]
    assert eval_forms.bot_ranking("action_human_handoff", LEAVE, profile, 0.97)["forms"] == []
    assert eval_forms.bot_ranking("utter_goodbye", LEAVE, profile)["forms"] == []


def test_heldout_batches_are_read_from_the_comments():
    questions = eval_forms.load_questions()
    batches = {}
    for q in questions:
        batches[q["batch"]] = batches.get(q["batch"], 0) + 1
    assert batches == {1: 92, 2: 30, 3: 20, 4: 36}


def _norm(text):
    return " ".join(re.sub(r"[^a-z0-9§]+", " ", fold(text)).split())


def test_no_heldout_question_is_in_the_training_data():
    heldout = {_norm(q["text"]) for q in eval_forms.load_questions()}
    training = set()
    for path in glob.glob(str(PROJECT_ROOT / "data" / "nlu" / "*.yml")):
        for block in yaml.safe_load(open(path, encoding="utf-8"))["nlu"]:
            for line in (block.get("examples") or "").splitlines():
                training.add(_norm(line.strip().lstrip("-")))
    assert not heldout & training
