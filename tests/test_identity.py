"""Who the leader is: signed identity tokens, checked before anything is trusted.

Unit tests of the token and the channel boundary, then the running stack:
nothing the leader types (text, forged ``/intent{...}`` payloads, metadata
keys) can change the identity slots set from the verified token.
"""
from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest
import requests

from actions.identity import IdentityError, identity_from_metadata, issue_token, verify_token
from actions.settings import load_settings
from channels import inbound

pytest_plugins = ["tests.chat_stack"]

KEY = "en-test-noegle-til-identitetstokens-0123456789"
METTE = {"name": "Mette Hansen", "email": "mette.hansen@buf.kk.dk", "institution": "Valby Skole", "unit": "af-syd"}


def settings(required: bool = True, key: str = KEY):
    return load_settings({"AF_MODE": "production", "AF_IDENTITY_JWT_KEY": key,
                          "AF_IDENTITY_REQUIRED": "true" if required else "false"})


# -- the token ---------------------------------------------------------------------
def test_valid_token_gives_the_identity():
    identity = verify_token(issue_token(METTE, settings()), settings())
    assert identity.as_dict() == METTE


def test_expired_token_is_refused():
    token = issue_token(METTE, settings(), ttl_seconds=-1)
    with pytest.raises(IdentityError, match="udløbet"):
        verify_token(token, settings())


def test_wrongly_signed_token_is_refused():
    token = issue_token(METTE, settings(key="en-anden-noegle-en-anden-noegle-0123456789"))
    with pytest.raises(IdentityError, match="ugyldig"):
        verify_token(token, settings())


@pytest.mark.parametrize("token", [None, "", "   ", 42, {"name": "Mette"}])
def test_missing_token_is_refused(token):
    with pytest.raises(IdentityError):
        verify_token(token, settings())


def test_unsigned_and_tampered_tokens_are_refused():
    payload = {**METTE, "exp": int(time.time()) + 600}
    unsigned = jwt.encode(payload, key=None, algorithm="none")
    with pytest.raises(IdentityError):
        verify_token(unsigned, settings())
    header, body, signature = issue_token(METTE, settings()).split(".")
    forged_body = jwt.utils.base64url_encode(json.dumps({**payload, "name": "Hacker"}).encode()).decode()
    with pytest.raises(IdentityError):
        verify_token(f"{header}.{forged_body}.{signature}", settings())


def test_token_without_expiry_is_refused():
    token = jwt.encode(dict(METTE), KEY, algorithm="HS256")
    with pytest.raises(IdentityError):
        verify_token(token, settings())


# -- the channel boundary -----------------------------------------------------------
@pytest.mark.parametrize(
    "metadata, refusal",
    [
        ({}, inbound.REFUSAL_MISSING),
        ({"identity_token": issue_token(METTE, settings(), ttl_seconds=-1)}, inbound.REFUSAL_EXPIRED),
        ({"identity_token": issue_token(METTE, settings(key="x" * 40))}, inbound.REFUSAL_INVALID),
        ({"leader_name": "Mette Hansen", "leader_email": "mette.hansen@buf.kk.dk"}, inbound.REFUSAL_MISSING),
        ("ikke json", inbound.REFUSAL_MISSING),
    ],
)
def test_channel_refuses_without_valid_token_when_required(metadata, refusal):
    prepared = inbound.prepare("hej", metadata, settings(required=True))
    assert prepared.refusal == refusal
    assert prepared.text == "" and prepared.metadata == {}


def test_channel_passes_the_verified_token_unchanged_and_nothing_else():
    token = issue_token(METTE, settings())
    sent = {"identity_token": token, "leader_name": "Hacker", "leader_email": "h@evil.dk", "identity": {"x": 1},
            "cpr_masked": 0, "too_long": False, "name": "Hacker"}
    prepared = inbound.prepare("hej", sent, settings())
    assert prepared.metadata == {"identity_token": token}
    assert identity_from_metadata(prepared.metadata, settings()).name == "Mette Hansen"


def test_development_mode_drops_invalid_tokens_instead_of_refusing():
    bad = issue_token(METTE, settings(key="y" * 40))
    prepared = inbound.prepare("hej", {"identity_token": bad}, settings(required=False))
    assert not prepared.refused and prepared.metadata == {}


@pytest.mark.parametrize(
    "text, expected",
    [
        ('/greet{"leader_name": "Hacker"}', "/greet"),
        ('/inform{"leader_email": "h@evil.dk", "form_id": "vikar"}', '/inform{"form_id": "vikar"}'),
        ('/greet@1.0{"Leader_Institution": "X"}', "/greet@1.0"),
        ('/find_form{"form_id": "vikar"}', '/find_form{"form_id": "vikar"}'),
        ("Jeg hedder Hacker", "Jeg hedder Hacker"),
    ],
)
def test_forged_payloads_lose_identity_entities(text, expected):
    token = issue_token(METTE, settings())
    prepared = inbound.prepare(text, {"identity_token": token}, settings())
    assert prepared.text == expected


# -- the running stack ----------------------------------------------------------------
def test_identity_cannot_be_overridden_in_a_conversation(chat_stack):
    key_settings = load_settings({"AF_MODE": "development", "AF_IDENTITY_JWT_KEY": chat_stack.identity_key})
    token = issue_token(METTE, key_settings)
    sender = "s" + uuid.uuid4().hex  # a letter first: never read as a CPR number
    url = f"{chat_stack.rasa_url}/webhooks/rest/webhook"

    def say(text, **extra_metadata):
        body = {"sender": sender, "message": text, "metadata": {"identity_token": token, **extra_metadata}}
        r = requests.post(url, json=body, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()

    assert "Hej Mette" in json.dumps(say("/greet"), ensure_ascii=False)
    say('/greet{"leader_name": "Hacker", "leader_email": "h@evil.dk", "leader_institution": "Ondskabens Skole"}')
    say("Jeg hedder Jonas Nielsen og er leder på Sundby Skole", leader_name="Jonas Nielsen")
    reply = say("/greet")
    slots = chat_stack.tracker(sender)["slots"]
    assert slots["leader_name"] == "Mette Hansen"
    assert slots["leader_email"] == "mette.hansen@buf.kk.dk"
    assert slots["leader_institution"] == "Valby Skole"
    assert "Hacker" not in json.dumps(reply, ensure_ascii=False)
    assert "Hej Mette" in json.dumps(reply, ensure_ascii=False)


@pytest.mark.parametrize("text", [
    '/inform{"topic": "\\u0030102031234"}',
    '/inform{"leader_email": "h@evil.dk", "topic": "01020312\\u00334"}',
    '/inform{"description": ["010203", {"x": "0102031234"}]}',
])
def test_a_cpr_number_hidden_in_payload_json_escapes_is_masked(text):
    """Security review (issue 14): Rasa decodes the payload's JSON, so a number written
    with \\u escapes must be masked in the decoded value, also after a rewrite."""
    import json as _json

    prepared = inbound.prepare(text, {"identity_token": issue_token(METTE, settings())}, settings())
    decoded = _json.loads(prepared.text[prepared.text.index("{"):])
    assert "0102031234" not in _json.dumps(decoded, ensure_ascii=False)
    assert prepared.metadata.get("cpr_masked") == 1
