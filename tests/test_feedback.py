"""Ratings: what the leader sees when asked, and what gets stored."""
from __future__ import annotations

import asyncio

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.feedback import ActionAskRating, ActionStoreRating, parse_rating
from tests.domain_helpers import DOMAIN, shown


def tracker(text: str = "", intent: str = "rate", entities=None, slots=None) -> Tracker:
    return Tracker(
        sender_id="leder",
        slots=slots or {},
        latest_message={"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": entities or []},
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


def run(action, t: Tracker):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, t, DOMAIN))
    return dispatcher.messages, {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


@pytest.mark.parametrize(
    "text, rating, comment",
    [
        ("5", 5, ""),
        ("4 stjerner", 4, ""),
        ("jeg giver dig en 4'er", 4, ""),
        ("fem stjerner herfra", 5, ""),
        ("middel", 3, ""),
        ("4 af 5", 4, ""),
        ("en solid 4'er", 4, ""),
        ("min bedømmelse: 2", 2, ""),
        ("top karakter herfra", 5, ""),
        ("5/5 ville bruge den igen", 5, "ville bruge den igen"),
        ("det var dårligt", 2, ""),
        ("det var daarligt", 2, ""),
        ("hjælpen var elendig", 1, ""),
        ("rigtig godt, jeg fandt blanketten med det samme", 5, "rigtig godt, jeg fandt blanketten med det samme"),
        ("3 - svaret var ok men linket virkede ikke", 3, "svaret var ok men linket virkede ikke"),
        ("2 ud af 5, jeg fandt ikke det jeg søgte", 2, "jeg fandt ikke det jeg søgte"),
        ("1 - hun har cpr 010203-1234", 1, "hun har cpr [CPR-nummer fjernet]"),
        ("hvor finder jeg blanketten til vikar", None, "hvor finder jeg blanketten til vikar"),
        ("det var to gode svar", None, "det var to gode svar"),  # "to" only counts in short messages
    ],
)
def test_parse_rating(text, rating, comment):
    found, note = parse_rating(text)
    assert found == rating
    if rating is not None:
        assert note == comment


def test_button_entity_wins_and_payload_is_no_comment():
    assert parse_rating('/rate{"rating": "2"}', "2") == (2, "")
    assert parse_rating("rigtig godt", "5") == (5, "")
    assert parse_rating("jeg vil give fire", "fire") == (4, "")
    assert parse_rating("9", "9")[0] is None


def test_ask_once_per_session_with_buttons():
    messages, slots = run(ActionAskRating(), tracker())
    assert messages[0]["response"] == "utter_ask_rating"
    assert "1 (dårlig) til 5 (rigtig god)" in shown(messages[0])
    assert [b["payload"] for b in messages[0]["buttons"]] == [f'/rate{{"rating": "{n}"}}' for n in (5, 4, 3, 2, 1)]
    assert [b["title"] for b in messages[0]["buttons"]] == ["5 – rigtig god", "4", "3", "2", "1 – dårlig"]
    assert slots == {"rating_requested": True}
    assert run(ActionAskRating(), tracker(slots={"rating_requested": True})) == ([], {})
    assert run(ActionAskRating(), tracker(slots={"rating": 4.0})) == ([], {})


def test_store_rating_with_comment():
    messages, slots = run(ActionStoreRating(), tracker("3 - for mange spørgsmål", entities=[{"entity": "rating", "value": "3"}]))
    assert slots == {"rating": 3.0, "rating_comment": "for mange spørgsmål", "rating_requested": False}
    assert messages[0]["response"] == "utter_rating_thanks_comment" and messages[0]["rating"] == 3
    assert "Tak for din bedømmelse (3 ud af 5)" in shown(messages[0]) and "kommentaren" in shown(messages[0])


def test_low_rating_without_comment_invites_one_and_high_rating_does_not():
    messages, slots = run(ActionStoreRating(), tracker('/rate{"rating": "2"}', entities=[{"entity": "rating", "value": "2"}]))
    assert slots["rating"] == 2.0 and slots["rating_comment"] is None
    assert messages[0]["response"] == "utter_rating_thanks_low"
    assert "hvad jeg kunne have gjort bedre" in shown(messages[0])
    messages, _ = run(ActionStoreRating(), tracker("5"))
    assert messages[0]["response"] == "utter_rating_thanks"
    assert shown(messages[0]) == "Tak for din bedømmelse (5 ud af 5)!"


def test_no_rating_found_asks_again_and_stores_nothing():
    messages, slots = run(ActionStoreRating(), tracker("hmm"))
    assert messages[0]["response"] == "utter_rating_not_caught"
    assert "Vælg et tal fra 1" in shown(messages[0]) and len(messages[0]["buttons"]) == 5
    assert "rating" not in slots


def test_absurdly_long_number_is_not_a_rating_and_does_not_crash():
    from actions.feedback import parse_rating

    digits = "10" * 185
    assert parse_rating(digits, digits)[0] is None
    parse_rating("1e400", "1e400")  # overflows float(): must not crash the action
