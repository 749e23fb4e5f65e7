"""A conversation belongs to the leader who started it, on every replica (issue 14);
the REST channel is off in production unless configured; a CPR number sent in two halves
is masked. Fast tests without the stack; tests/test_channels.py drives the same over HTTP."""
import asyncio
from types import SimpleNamespace

import pytest
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from af_core.privacy import CPR_MASK, mask_cpr_continuation, mask_cpr_start
from af_core.settings import load_settings
from channels import conversation, inbound
from channels.rest_channel import REST_OFF, AfRestInput

METTE = "mette.hansen@buf.kk.dk"


class _Store:
    def __init__(self, tracker):
        self.tracker = tracker

    async def retrieve(self, sender):
        return self.tracker


def _app(tracker):
    return SimpleNamespace(ctx=SimpleNamespace(agent=SimpleNamespace(tracker_store=_Store(tracker))))


def _read(events):
    tracker = DialogueStateTracker.from_events("s", events) if events is not None else None
    return asyncio.run(conversation.read(_app(tracker), "s"))


def test_the_first_verified_writer_owns_the_conversation_for_good():
    state = _read([
        ActionExecuted("action_listen"),
        UserUttered("hej", metadata={"identity": {"email": "Mette.Hansen@buf.kk.dk"}}),
        UserUttered("og mig", metadata={"identity": {"email": "jonas.nielsen@buf.kk.dk"}}),
    ])
    assert state.owner == METTE
    assert conversation.may_use(state, METTE, identity_required=True)
    assert conversation.may_use(state, "METTE.hansen@buf.kk.dk", identity_required=True)
    assert not conversation.may_use(state, "jonas.nielsen@buf.kk.dk", identity_required=True)
    assert not conversation.may_use(state, None, identity_required=False)  # anonymous: not hers either


def test_conversations_stored_with_the_token_are_bound_too():
    from af_core.identity import issue_token

    settings = load_settings({"AF_MODE": "development"})
    token = issue_token({"name": "Mette", "email": METTE, "institution": "Valby Skole"}, settings)
    state = _read([UserUttered("hej", metadata={"identity_token": token})])
    assert state.owner == METTE


def test_a_new_conversation_is_free_and_an_unreadable_one_is_closed_where_identity_counts():
    assert conversation.may_use(_read(None), METTE, identity_required=True)
    unreadable = asyncio.run(conversation.read(SimpleNamespace(), "s"))
    assert unreadable is None
    assert not conversation.may_use(unreadable, METTE, identity_required=True)
    assert conversation.may_use(unreadable, None, identity_required=False)


def test_the_previous_message_and_the_latest_buttons_are_read_together():
    state = _read([
        UserUttered("010203-"),
        BotUttered("Hvad handler det om?", {"buttons": [{"title": "Løn", "payload": "/loen"}]}),
    ])
    assert state.last_user_text == "010203-" and state.offered == ["/loen"]


@pytest.mark.parametrize("previous, text", [
    ("010203", "1234"), ("Hun har 010203-", "1234"), ("010203 -", "1234 tak"), ("01.02.03", "1234"),
    ("010203", "-1234"), ("cpr 010203", " 1234"),
])
def test_the_second_half_of_a_cpr_number_is_masked(previous, text):
    masked, count = mask_cpr_continuation(previous, text)
    assert count == 1 and masked.startswith(CPR_MASK) and "1234" not in masked


@pytest.mark.parametrize("previous, text", [
    ("mødet 010223", "kl 10"), ("hej", "1234"), ("sag 12", "3456"), ("", "1234"), (None, "1234"),
    ("310203", "1234"),  # 31 February is no date
])
def test_ordinary_numbers_after_a_message_are_left_alone(previous, text):
    assert mask_cpr_continuation(previous, text) == (text, 0)


@pytest.mark.parametrize("text, expected", [
    ("Det er 010203-", "Det er " + CPR_MASK), ("010203 -", CPR_MASK), ("０１0203-", CPR_MASK),
    ("mødet 010223", "mødet 010223"), ("Tal 991399-", "Tal 991399-"), ("klokken 10-", "klokken 10-"),
])
def test_a_cpr_numbers_first_half_at_the_end_of_a_message_is_masked(text, expected):
    assert mask_cpr_start(text)[0] == expected


def test_prepare_and_finish_mask_both_halves_and_tell_the_leader():
    settings = load_settings({"AF_MODE": "development"})
    first = inbound.prepare("Hun hedder Anna, 010203-", {}, settings)
    assert first.text == "Hun hedder Anna, " + CPR_MASK and first.metadata["cpr_masked"] == 1
    second = inbound.prepare("1234", {}, settings)
    inbound.finish(second, conversation.Conversation(exists=True, last_user_text="010203"))
    assert second.text == CPR_MASK and second.metadata["cpr_masked"] == 1 and second.notices


def _rest_handler(settings):
    blueprint = AfRestInput(settings).blueprint(lambda message: None)
    for route in blueprint._future_routes:
        if route.uri == "/webhook":
            return route.handler
    raise AssertionError("no /webhook route")


def test_the_rest_channel_is_off_in_production_unless_configured(production_settings):
    import json

    request = SimpleNamespace(headers={}, json={"sender": "s1", "message": "hej"}, args={}, app=None)
    assert production_settings.rest_channel_enabled is False
    response = asyncio.run(_rest_handler(production_settings)(request))
    assert response.status == 404 and json.loads(response.body)[0]["response"] == REST_OFF
    assert load_settings({"AF_MODE": "development"}).rest_channel_enabled is True


def test_four_digits_after_a_masked_first_half_are_masked_too():
    assert mask_cpr_continuation("Hun har cpr " + CPR_MASK, "1234") == (CPR_MASK, 1)
    assert mask_cpr_continuation(CPR_MASK, "-1234 hedder hun") == (CPR_MASK + " hedder hun", 1)
    assert mask_cpr_continuation(CPR_MASK, "12345") == ("12345", 0)


# -- flood limit per leader (issue 14) ------------------------------------------------
def test_one_leader_may_send_a_human_pace_and_a_script_is_slowed_down():
    from af_core.leader_rate import LeaderRate

    now = [1000.0]
    rate = LeaderRate(30, clock=lambda: now[0])
    assert all(rate.allow("mette@kk.dk") for _ in range(30))
    assert not rate.allow("Mette@KK.dk")  # the 31st within a minute, however it is spelt
    assert rate.allow("jonas@kk.dk")  # another leader is not held back
    now[0] += 61
    assert rate.allow("mette@kk.dk")  # a minute later she may go on
    assert all(LeaderRate(0).allow("x@kk.dk") for _ in range(500))  # 0: no limit (development)


def test_the_rest_channel_answers_a_too_fast_leader_in_danish(production_settings):
    import json
    from dataclasses import replace

    from tests.production_env import sign_token

    assert production_settings.leader_messages_per_minute == 30
    handler = _rest_handler(replace(production_settings, rest_channel_enabled=True))  # an integration
    token = sign_token({"name": "Mette Hansen", "email": METTE, "institution": "Valby Skole"}, production_settings)

    def send():
        body = {"sender": "s1", "message": "hej", "metadata": {"identity_token": token}}
        request = SimpleNamespace(headers={}, json=body, args={}, app=SimpleNamespace())
        return asyncio.run(handler(request))

    statuses = [send().status for _ in range(30)]
    assert 429 not in statuses
    refused = send()
    assert refused.status == 429 and json.loads(refused.body)[0]["text"] == inbound.say(inbound.TOO_FAST)
