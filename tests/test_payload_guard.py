"""Payload commands typed by hand are text; only the buttons the bot offered are commands
(security review, issue 14)."""
import asyncio
from types import SimpleNamespace

import pytest
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from channels import conversation
from channels.inbound import guard_payload, payload_key

MENU = ["/find_form", "/request_help", '/inform{"topic": "loen"}']


@pytest.mark.parametrize("typed", [
    "/session_start", "/restart", "/back", '/session_start{"identity_token":"x"}',
    '/inform{"topic":"personale"}', "/affirm", " /restart ", "/human_handoff{}", '/inform{"topic": "loen", "x": 1}',
    # forms Rasa also reads as commands
    "/session_start@1.0", "/restart@0.99", "//restart", '/find_form{"form_id": "vikar"} og mere', "/request_help nu",
])
def test_a_payload_the_bot_did_not_offer_is_read_as_plain_text(typed):
    guarded = guard_payload(typed, MENU)
    assert payload_key(guarded) is None
    assert guarded == typed.strip().lstrip("/")


@pytest.mark.parametrize("clicked", ["/find_form", "/request_help", '/inform{"topic":"loen"}', "/greet"])
def test_an_offered_button_and_the_widgets_opening_greet_pass_unchanged(clicked):
    assert guard_payload(clicked, MENU) == clicked


def test_when_the_conversation_cannot_be_read_only_the_opening_greet_passes():
    assert guard_payload("/greet", None) == "/greet"
    assert guard_payload("/request_help", None) == "request_help"


def test_plain_text_is_never_touched():
    for text in ("hej", "1/2 stilling", "løn / tillæg", "", "http://x.dk/a"):
        assert guard_payload(text, []) == text


class _Store:
    def __init__(self, tracker):
        self.tracker = tracker

    async def retrieve(self, sender):
        return self.tracker


def test_only_buttons_since_the_leaders_latest_message_are_offered():
    tracker = DialogueStateTracker.from_events("s", [
        ActionExecuted("action_listen"),
        UserUttered("hej"),
        BotUttered("Vælg", {"buttons": [{"title": "Gammel", "payload": "/old"}]}),
        UserUttered("løn"),
        BotUttered("Hvad handler det om?", {"buttons": [{"title": "Løn", "payload": '/inform{"topic":"loen"}'}]}),
        BotUttered("Eller:", {"buttons": [{"title": "Glem det", "payload": "/cancel"}]}),
    ])
    app = SimpleNamespace(ctx=SimpleNamespace(agent=SimpleNamespace(tracker_store=_Store(tracker))))
    offered = asyncio.run(conversation.offered_payloads(app, "s"))
    assert sorted(offered) == ["/cancel", '/inform{"topic":"loen"}']
    assert asyncio.run(conversation.offered_payloads(SimpleNamespace(), "s")) is None
    empty = SimpleNamespace(ctx=SimpleNamespace(agent=SimpleNamespace(tracker_store=_Store(None))))
    assert asyncio.run(conversation.offered_payloads(empty, "s")) == []
