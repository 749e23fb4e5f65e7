"""The socket.io and REST channels against a running Rasa server.

The socket.io tests prove the Rasa 3.6 / python-socketio >= 5.10 fix: with
session persistence the socket must join the session's room, or no reply
ever arrives. They also check the identity refusal, the session binding
and the CPR hook at the channel boundary.
"""
from __future__ import annotations

import json
import queue
import time
import uuid
from typing import Any, Dict, List, Optional

import pytest
import requests
import socketio

from af_core import rasa_http
from af_core.identity import issue_token
from af_core.settings import load_settings
from channels.inbound import REFUSAL_EXPIRED, REFUSAL_MISSING, say


METTE = {"name": "Mette Hansen", "email": "mette.hansen@buf.kk.dk", "institution": "Valby Skole", "unit": "af-syd"}
JONAS = {"name": "Jonas Nielsen", "email": "jonas.nielsen@buf.kk.dk", "institution": "Børnehuset Mælkebøtten", "unit": "af-syd"}


def token_for(stack, identity: Dict[str, str], ttl: int = 3600, key: Optional[str] = None) -> str:
    settings = load_settings({"AF_MODE": "development", "AF_IDENTITY_JWT_KEY": key or stack.identity_key})
    return issue_token(identity, settings, ttl_seconds=ttl)


class ChatClient:
    """A socket.io client speaking the widget's protocol (polling transport)."""

    def __init__(self, stack, token: Optional[str]) -> None:
        self.stack = stack
        self.token = token
        self.sio = socketio.Client(reconnection=False)
        self.events: "queue.Queue[tuple]" = queue.Queue()
        self.sio.on("session_confirm", lambda data: self.events.put(("session_confirm", data)))
        self.sio.on("bot_uttered", lambda data: self.events.put(("bot_uttered", data)))
        self.sio.on("connect_error", lambda data=None: self.events.put(("connect_error", data)))
        self.session_id: Optional[str] = None

    def connect(self) -> None:
        auth = {"token": self.token} if self.token else None
        self.sio.connect(self.stack.rasa_url, transports=["polling"], auth=auth, socketio_path="/socket.io", wait_timeout=10)

    def start_session(self, session_id: Optional[str] = None) -> str:
        self.sio.emit("session_request", {"session_id": session_id, "customData": {"identity_token": self.token}})
        self.session_id = self.wait_for("session_confirm")
        return self.session_id

    def say(self, text: str, token: Any = "same") -> None:
        custom = {"identity_token": self.token if token == "same" else token}
        self.sio.emit("user_uttered", {"message": text, "session_id": self.session_id, "customData": custom})

    def wait_for(self, kind: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got, data = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if got == kind:
                return data
        raise AssertionError(f"Ingen {kind} inden for {timeout} s")

    def replies(self, timeout: float = 30, quiet: float = 1.5) -> List[Dict[str, Any]]:
        """All bot messages until the bot has been quiet for ``quiet`` seconds."""
        got = [self.wait_for("bot_uttered", timeout)]
        while True:
            try:
                kind, data = self.events.get(timeout=quiet)
            except queue.Empty:
                return got
            if kind == "bot_uttered":
                got.append(data)

    def close(self) -> None:
        if self.sio.connected:
            self.sio.disconnect()


def user_texts(tracker: Dict[str, Any]) -> List[str]:
    return [e.get("text") or "" for e in tracker["events"] if e.get("event") == "user"]


def test_socketio_reply_reconnect_and_conversation_continues(stack):
    token = token_for(stack, METTE)
    first = ChatClient(stack, token)
    first.connect()
    session_id = first.start_session()
    first.say("/greet")
    greeting = first.replies()
    assert any("Mette" in (m.get("text") or "") for m in greeting), greeting
    assert any(m.get("quick_replies") for m in greeting), "hovedmenuens knapper mangler"
    first.close()

    # A new socket (a page reload) asks for the same session and is answered in it.
    second = ChatClient(stack, token)
    second.connect()
    assert second.start_session(session_id) == session_id
    second.say("tak for hjælpen")
    assert second.replies(), "intet svar efter genforbindelse"
    second.close()

    texts = user_texts(stack.tracker(session_id))
    assert texts[:1] == ["/greet"] and "tak for hjælpen" in texts


def test_socketio_refuses_connection_without_valid_token(stack):
    for token, expected in [
        (None, say(REFUSAL_MISSING)),
        (token_for(stack, METTE, key="en-helt-anden-noegle-end-udviklingsnoeglen"), say(REFUSAL_MISSING)),
        (token_for(stack, METTE, ttl=-60), say(REFUSAL_EXPIRED)),
    ]:
        client = ChatClient(stack, token)
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect()
        refusal = client.wait_for("connect_error", timeout=5)
        assert (refusal or {}).get("message") == expected, token
        client.close()


def test_socketio_message_without_token_is_refused_politely_and_not_stored(stack):
    client = ChatClient(stack, token_for(stack, METTE))
    client.connect()
    session_id = client.start_session()
    client.say("hemmelig besked uden token", token=None)
    reply = client.wait_for("bot_uttered")
    assert reply["text"] == say(REFUSAL_MISSING) and reply["response"] == REFUSAL_MISSING
    client.close()
    r = requests.get(f"{stack.rasa_url}/conversations/{session_id}/tracker",
                     headers=rasa_http.headers_for_secret(stack.api_token), timeout=10)
    assert "hemmelig besked uden token" not in r.text


def test_socketio_cpr_is_masked_before_rasa(stack):
    client = ChatClient(stack, token_for(stack, METTE))
    client.connect()
    session_id = client.start_session()
    client.say("Min medarbejder har CPR 010203-1234, kan du hjælpe?")
    client.replies()
    client.close()
    tracker = stack.tracker(session_id)
    user_events = [e for e in tracker["events"] if e.get("event") == "user"]
    assert "[CPR-nummer fjernet]" in user_events[-1]["text"]
    assert user_events[-1]["metadata"].get("cpr_masked") == 1
    assert "010203" not in json.dumps(tracker)
    for log in stack.log_dir.glob("*.log"):
        assert "010203-1234" not in log.read_text(encoding="utf-8", errors="replace"), log.name


def test_socketio_cannot_join_another_leaders_session(stack):
    mette = ChatClient(stack, token_for(stack, METTE))
    mette.connect()
    mettes_session = mette.start_session()
    jonas = ChatClient(stack, token_for(stack, JONAS))
    jonas.connect()
    assert jonas.start_session(mettes_session) != mettes_session
    # Nor can he write into her conversation by naming it in a message.
    jonas.sio.emit("user_uttered", {"message": "ind i Mettes samtale", "session_id": mettes_session,
                                    "customData": {"identity_token": jonas.token}})
    jonas.wait_for("bot_uttered")
    mette.close()
    jonas.close()
    assert "ind i Mettes samtale" not in user_texts(stack.tracker(mettes_session))


def test_socketio_only_allowed_browser_origins(stack):
    from channels.socketio_channel import ORIGIN_REFUSED

    token = token_for(stack, METTE)
    evil = ChatClient(stack, token)
    with pytest.raises(socketio.exceptions.ConnectionError):
        evil.sio.connect(stack.rasa_url, transports=["polling"], auth={"token": token},
                         headers={"Origin": "https://evil.example"}, wait_timeout=10)
    assert (evil.wait_for("connect_error", timeout=5) or {}).get("message") == say(ORIGIN_REFUSED)
    evil.close()
    # The page's own origin gets exactly one CORS header (a doubled header makes browsers refuse).
    ok = requests.get(f"{stack.rasa_url}/socket.io/", params={"EIO": "4", "transport": "polling"},
                      headers={"Origin": stack.web_url}, timeout=10)
    assert ok.status_code == 200
    assert ok.headers.get("Access-Control-Allow-Origin") == stack.web_url
    foreign = requests.get(f"{stack.rasa_url}/socket.io/", params={"EIO": "4", "transport": "polling"},
                           headers={"Origin": "https://evil.example"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in foreign.headers


# -- REST --------------------------------------------------------------------------
def rest(stack, body: Any, headers: Optional[Dict[str, str]] = None) -> requests.Response:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", data=data,
                         headers={"Content-Type": "application/json", **(headers or {})}, timeout=60)


def test_rest_with_token_answers_and_masks_cpr(stack):
    sender = "s" + uuid.uuid4().hex  # a letter first: never read as a CPR number
    r = rest(stack, {"sender": sender, "message": "/greet", "metadata": {"identity_token": token_for(stack, METTE)}})
    assert r.status_code == 200 and "Mette" in r.text
    r = rest(stack, {"sender": sender, "message": "cpr 0102031234 og 311299 1234",
                          "metadata": {"identity_token": token_for(stack, METTE)}})
    assert r.status_code == 200 and r.json()
    assert user_texts(stack.tracker(sender))[-1] == "cpr [CPR-nummer fjernet] og [CPR-nummer fjernet]"


def test_rest_refuses_missing_expired_and_forged_tokens(stack):
    sender = "s" + uuid.uuid4().hex  # a letter first: never read as a CPR number
    for metadata, expected in [
        ({}, say(REFUSAL_MISSING)),
        ({"identity_token": token_for(stack, METTE, ttl=-5)}, say(REFUSAL_EXPIRED)),
        ({"identity_token": token_for(stack, METTE, key="forkert-noegle-forkert-noegle-123")}, None),
        ({"leader_name": "Mette Hansen", "leader_email": "mette.hansen@buf.kk.dk"}, say(REFUSAL_MISSING)),
    ]:
        r = rest(stack, {"sender": sender, "message": "/greet", "metadata": metadata})
        assert r.status_code == 403, metadata
        assert r.json()[0]["text"] and (expected is None or r.json()[0]["text"] == expected)
    assert user_texts(stack.tracker(sender)) == []


def test_rest_rejects_bad_requests_and_foreign_origins(stack):
    token = token_for(stack, METTE)
    assert rest(stack, "{ikke json").status_code == 400
    assert rest(stack, [1, 2]).status_code == 400
    assert rest(stack, {"message": "hej", "metadata": {"identity_token": token}}).status_code == 400
    # the sender id becomes the conversation's stored key: a CPR number there would be kept unmasked
    assert rest(stack, {"sender": "leder-010203-1234", "message": "hej",
                             "metadata": {"identity_token": token}}).status_code == 400
    r = rest(stack, {"sender": "x1", "message": "hej", "metadata": {"identity_token": token}},
             headers={"Origin": "https://evil.example"})
    assert r.status_code == 403


def test_typed_control_payloads_are_text_and_the_leader_stays_who_they_are(stack):
    """Security review (issue 14): /restart, /session_start and unoffered /inform{...}
    typed by hand are not commands; a menu button the bot offered still is."""
    sender = "s" + uuid.uuid4().hex
    token = token_for(stack, METTE)

    def say(text):
        r = rest(stack, {"sender": sender, "message": text, "metadata": {"identity_token": token}})
        assert r.status_code == 200, r.text
        return r.json()

    say("/greet")
    typed = ["/session_start", "/back", '/inform{"topic":"loen","urgency":"akut"}']
    for text in typed:
        say(text)
    r = requests.get(f"{stack.rasa_url}/conversations/{sender}/tracker",
                     params={"include_events": "ALL"}, headers=rasa_http.headers_for_secret(stack.api_token), timeout=10)
    tracker = r.json()
    kinds = [e.get("event") for e in tracker["events"]]
    # Read as text, "session_start" may well be understood as "start forfra": that is the
    # leader's wish, not a command; the identity stays either way.
    assert "undo" not in kinds
    assert user_texts(tracker)[1:] == [text[1:] for text in typed]
    assert tracker["slots"]["leader_email"] == METTE["email"]
    # The main menu's button is a command: the bot asks what the request is about.
    reply = say("/greet") and say("/request_help")
    assert user_texts(stack.tracker(sender))[-1] == "/request_help"
    assert reply and any(m.get("buttons") for m in reply)


# -- Doors (issue 14): conversation binding, the HTTP API, body limits, split CPR --------
def test_rest_cannot_write_into_another_leaders_conversation(stack):
    """A leader with a valid token who learns another conversation's id gets nothing of it."""
    from channels.inbound import REFUSAL_FOREIGN

    sender = "s" + uuid.uuid4().hex
    assert rest(stack, {"sender": sender, "message": "/greet",
                             "metadata": {"identity_token": token_for(stack, METTE)}}).status_code == 200
    r = rest(stack, {"sender": sender, "message": "hvad er status på mine sager",
                          "metadata": {"identity_token": token_for(stack, JONAS)}})
    assert r.status_code == 403
    assert [m.get("text") for m in r.json()] == [say(REFUSAL_FOREIGN)]
    tracker = stack.tracker(sender)
    assert "hvad er status på mine sager" not in user_texts(tracker)
    assert tracker["slots"]["leader_email"] == METTE["email"]


def test_socketio_binding_is_in_the_tracker_store_not_in_one_process(stack):
    """A conversation started elsewhere (REST, another replica, before a restart) still belongs
    to its leader: socket.io will not let another leader join its room."""
    sender = uuid.uuid4().hex
    assert rest(stack, {"sender": sender, "message": "/greet",
                             "metadata": {"identity_token": token_for(stack, METTE)}}).status_code == 200
    jonas = ChatClient(stack, token_for(stack, JONAS))
    jonas.connect()
    try:
        assert jonas.start_session(sender) != sender
    finally:
        jonas.close()
    mette = ChatClient(stack, token_for(stack, METTE))
    mette.connect()
    try:
        assert mette.start_session(sender) == sender  # her own conversation, on any replica
    finally:
        mette.close()


def test_rasa_http_api_takes_no_token_in_the_url(stack):
    """The API token never has to travel in a URL (proxies and access logs keep URLs)."""
    r = requests.get(f"{stack.rasa_url}/status", params={"token": stack.api_token}, timeout=10)
    assert r.status_code == 401
    r = requests.get(f"{stack.rasa_url}/status", headers=rasa_http.headers_for_secret(stack.api_token),
                     timeout=10)
    assert r.status_code == 200 and r.json().get("model_file")
    forged = rasa_http.headers_for_secret("ikke-den-rigtige-noegle-ikke-den-rigtige")
    assert requests.get(f"{stack.rasa_url}/status", headers=forged, timeout=10).status_code == 401


def test_huge_bodies_are_refused_before_they_are_read(stack):
    from channels.inbound import BODY_TOO_LARGE

    big = json.dumps({"sender": "s" + uuid.uuid4().hex, "message": "x" * (2 * 1024 * 1024),
                      "metadata": {"identity_token": token_for(stack, METTE)}})
    r = rest(stack, big)
    assert r.status_code == 413
    assert [m.get("text") for m in r.json()] == [say(BODY_TOO_LARGE)]  # in Danish, in the channel's format
    assert requests.get(f"{stack.rasa_url}/", timeout=10).status_code == 200  # still serving


@pytest.mark.parametrize("first, second", [
    ("Hun har cpr 010203-", "1234"),
    ("010203", "1234"),
    ("01.02.03", "1234 hedder hun"),
])
def test_a_cpr_number_sent_in_two_messages_is_not_kept(stack, first, second):
    sender = "s" + uuid.uuid4().hex
    token = token_for(stack, METTE)
    for text in (first, second):
        assert rest(stack, {"sender": sender, "message": text,
                                 "metadata": {"identity_token": token}}).status_code == 200
    stored = " ".join(user_texts(stack.tracker(sender)))
    assert "1234" not in stored and "[CPR-nummer fjernet]" in stored
