"""The two NLU components of our own: the Danish normalising tokenizer and the sentence-shape arbiter."""
from __future__ import annotations

import pytest

from af_core.intent_shapes import decide, shapes
from nlu_components.danish_tokenizer import Normaliser, restorations

KNOWN = {"ændring": 3, "ønsker": 4, "medhjælper": 2, "barsel": 5, "blanket": 9, "teams": 4, "møde": 7,
         "lønseddel": 2, "spørgsmål": 3, "fratrædelse": 4, "løn": 9, "vikar": 6}


@pytest.mark.parametrize("written, meant", [
    ("oensker", "ønsker"), ("aendring", "ændring"), ("medhjaelper", "medhjælper"), ("loen", "løn"),
    ("fratrædelsee", "fratrædelse"), ("vikr", "vikr"),  # four letters: too short to guess a typo
])
def test_words_without_danish_letters_or_with_a_typo_get_the_known_lemma(written, meant):
    assert Normaliser(KNOWN).parts(written)[0][0] == meant


@pytest.mark.parametrize("compound, parts", [
    ("barselsblanket", [("barsel", 0), ("blanket", 7)]),
    ("teamsmøde", [("teams", 0), ("møde", 5)]),
    ("teamsmoede", [("teams", 0), ("møde", 5)]),
    ("lønseddelspørgsmål", [("lønseddel", 0), ("spørgsmål", 9)]),
])
def test_unknown_compounds_split_into_known_words_with_their_offsets(compound, parts):
    assert list(Normaliser(KNOWN).parts(compound)) == parts


def test_unknown_words_stay_as_they_are_and_restorations_are_all_spellings():
    assert Normaliser(KNOWN).parts("xyzzy") == (("xyzzy", 0),)
    assert set(restorations("aaboe")) == {"åboe", "aabø", "åbø"}


@pytest.mark.parametrize("text, diet, expected", [
    ("Vores Amalie skal gøres fast. Hvordan gør jeg det?", "request_help", "find_form"),
    ("kan I rette vagterne for Lone i uge 12", "find_form", "request_help"),
    ("har I fået min henvendelse om Lones vagter?", "request_help", "case_status"),
    ("kan en fra oekonomi ringe mig i morgen", "request_help", "book_meeting"),
    ("maa jeg give vikarbureauet en medarbejders cpr nummer", "find_form", "ask_question"),
    ("har en medarbejder ret til at få udbetalt ferie", "request_help", "ask_question"),
    ("jeg vil gerne skrive med en af jeres medarbejdere", "request_help", "human_handoff"),
    ("har nogen kigget paa min bestilling fra mandag", "cancel", "case_status"),
    # shapes added after blind batch B (now development data)
    ("hun har lagt ud for kage til festen hvordan faar hun pengene igen", "request_help", "find_form"),
    ("er mit telefonmøde blevet aftalt?", "book_meeting", "case_status"),
    ("Jeg bestilte en opgørelse i sidste uge og har ikke hørt noget. Hvad sker der?", "request_help", "case_status"),
    ("Jeg sendte blanketten ind i august, men tillægget er ikke kommet med på lønsedlen. "
     "Kan I få det rettet?", "find_form", "request_help"),
    ("hun skal ha mere i løn fra 1. april, hvordan", "request_help", "find_form"),
    # an order and a form word in one sentence: what comes first ("kan I ..., jeg kan ikke finde blanketten")
    ("kan I indberette barslen, jeg kan ikke finde blanketten", "find_form", "request_help"),
    ("send den", "cancel", "affirm"),
    ("hvor laver jeg en indkobsordre", "request_help", "find_form"),
    # an unsure cancel in a long message would drop the leader's request: not understood instead
    ("min pædagog vil gerne prøve noget andet i et år men komme tilbage bagefter", "cancel", "nlu_fallback"),
    ("Kan man komme ind til jer og få gennemgået økonomien?", "ask_question", "book_meeting"),
    ("en af mine har kørt i egen bil hele foråret, kan hun få kilometerpenge", "request_help", "ask_question"),
])
def test_a_sentence_shape_settles_what_diet_confused(text, diet, expected):
    assert decide(text, diet, 0.7) == expected


@pytest.mark.parametrize("text, diet", [
    ("hej med dig", "greet"),  # not an intent of the group
    ("glem det", "cancel"),  # no shape
    ("hvordan faar jeg et barn skrevet op til vuggestue", "out_of_scope"),  # out of scope stays out of scope
    ("/find_form{\"form_id\": \"vikar\"}", "find_form"),  # a button
])
def test_everything_else_is_left_to_diet(text, diet):
    assert decide(text, diet, 0.7) is None


def test_a_sure_intent_outside_the_group_is_never_overruled():
    assert decide("har nogen kigget paa bestillingen", "cancel", 0.95) is None
    assert "case_status" in shapes("har nogen kigget paa bestillingen")
    assert decide("er du et menneske eller en maskine", "bot_challenge", 0.7) is None


def test_a_long_message_is_never_small_talk():
    assert decide("ok. kan i ringe mig op om det, jeg har en konkret sag", "thank", 0.95) == "book_meeting"


def test_the_arbiter_leaves_no_tie_for_the_fallback_classifier():
    """DIET sure of the other intent (1.0) must not leave a top-two tie that the FallbackClassifier
    turns into "det forstod jeg ikke" (found on the development set)."""
    from rasa.shared.nlu.training_data.message import Message

    from nlu_components.intent_cues import IntentShapeArbiter

    message = Message(data={"text": "hvor mange feriedage har en nyuddannet paedagog ret til",
                            "intent": {"name": "find_form", "confidence": 1.0},
                            "intent_ranking": [{"name": "find_form", "confidence": 1.0},
                                               {"name": "ask_question", "confidence": 0.0}]})
    [out] = IntentShapeArbiter().process([message])
    ranking = out.get("intent_ranking")
    assert out.get("intent")["name"] == "ask_question"
    assert ranking[0]["name"] == "ask_question"
    assert ranking[0]["confidence"] - ranking[1]["confidence"] >= 0.5


def test_an_unsure_diet_that_agrees_with_the_shape_is_made_sure():
    """DIET gave 'kan I ...' request_help at 0.40: the FallbackClassifier said 'det forstod jeg ikke'."""
    assert decide("vil I lægge vagtplanen for december ind i tidsregistreringen", "request_help", 0.4) == \
        "request_help"
    assert decide("vil I lægge vagtplanen for december ind i tidsregistreringen", "request_help", 0.95) is None
