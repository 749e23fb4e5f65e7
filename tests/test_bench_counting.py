"""make bench counts the calls to the action server per turn (devtools/bench.py): each custom
action is a call, and a form's turn calls its validator and the custom question it asks."""
from __future__ import annotations

from devtools.bench import calls_per_turn

DOMAIN = {
    "actions": ["action_session_start", "action_find_form", "validate_request_form", "action_ask_topic",
                "action_submit_request", "action_ask_rating"],
    "forms": {"request_form": {}},
    "responses": {"utter_greet": [], "utter_ask_description": []},
}


def _user(text):
    return {"event": "user", "text": text}


def _action(name):
    return {"event": "action", "name": name}


def _asks(slot):
    return {"event": "slot", "name": "requested_slot", "value": slot}


def test_custom_actions_form_validation_and_custom_questions_are_counted_per_turn():
    events = [
        _action("action_session_start"), {"event": "session_started"}, _action("action_listen"),
        _user("hej"), _action("utter_greet"), _action("action_listen"),
        _user("hvor er blanketten"), _action("action_find_form"), _action("action_listen"),
        _user("jeg vil bestille hjælp"), _action("request_form"), {"event": "active_loop", "name": "request_form"},
        _asks("topic"), _action("action_listen"),
        _user("løn"), _action("request_form"), _asks("description"), _action("action_listen"),  # utter_ask_: no call
        _user("ja"), _action("request_form"), _asks(None), _action("action_submit_request"),
        _action("action_ask_rating"), _action("action_listen"),
    ]
    assert calls_per_turn(events, DOMAIN) == [
        ["action_session_start"],
        ["action_find_form"],
        ["validate_request_form", "action_ask_topic"],
        ["validate_request_form"],
        ["validate_request_form", "action_submit_request", "action_ask_rating"],
    ]


def test_a_bot_without_custom_actions_makes_no_calls():
    events = [_action("action_session_start"), _user("hello"), _action("utter_greet"), _action("action_listen")]
    assert calls_per_turn(events, {"actions": [], "responses": {"utter_greet": []}}) == [[]]
