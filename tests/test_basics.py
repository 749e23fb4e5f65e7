"""Conversation basics: session start sets identity only from a verified token; fallback escalates."""
import asyncio

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.basics import ActionHandleFallback, ActionSessionStart, consecutive_fallbacks
from af_core.identity import issue_token
from af_core.settings import get_settings
from tests.domain_helpers import DOMAIN, shown, shown_buttons


def _user(intent, text="x", metadata=None):
    return {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}, "metadata": metadata or {}}


def _tracker(events, slots=None):
    return Tracker("s1", slots or {}, {}, events, False, None, {}, "action_listen")


def _run(action, tracker):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, DOMAIN))
    return dispatcher.messages, events


def _slots(events):
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def test_session_start_sets_identity_from_a_valid_token(monkeypatch):
    monkeypatch.setenv("AF_MODE", "development")
    get_settings.cache_clear()
    token = issue_token({"name": "Mette Hansen", "email": "mette.hansen@buf.kk.dk", "institution": "Valby Skole"})
    messages, events = _run(ActionSessionStart(), _tracker([], {"session_started_metadata": {"identity_token": token}}))
    slots = _slots(events)
    assert slots["leader_email"] == "mette.hansen@buf.kk.dk"
    assert slots["leader_unit"] == "af-syd"
    assert slots["af_phone"]
    assert messages == []  # first session: the greeting comes from the conversation, not twice
    get_settings.cache_clear()


def test_session_start_ignores_a_forged_token_and_plain_identity_metadata(monkeypatch):
    monkeypatch.setenv("AF_MODE", "development")
    get_settings.cache_clear()
    metadata = {"identity_token": "abc.def.ghi", "email": "chef@buf.kk.dk", "leader_email": "chef@buf.kk.dk"}
    _, events = _run(ActionSessionStart(), _tracker([], {"session_started_metadata": metadata}))
    assert _slots(events)["leader_email"] is None
    get_settings.cache_clear()


def test_a_returning_leader_is_greeted_again_in_the_new_session():
    messages, _ = _run(ActionSessionStart(), _tracker([{"event": "session_started"}, _user("greet")]))
    assert messages[0]["response"] == "utter_welcome_back_anonymous"
    assert "Velkommen tilbage!" in shown(messages[0])
    assert any(b["payload"] == "/find_form" for b in shown_buttons(messages[0]))


def test_a_returning_leader_with_a_name_is_greeted_by_first_name():
    slots = {"leader_name": "Mette Hansen", "leader_email": "mette.hansen@buf.kk.dk",
             "leader_institution": "Valby Skole", "leader_unit": "af-syd"}
    messages, _ = _run(ActionSessionStart(), _tracker([{"event": "session_started"}, _user("greet")], slots))
    assert messages[0]["response"] == "utter_welcome_back" and messages[0]["first_name"] == "Mette"
    assert shown(messages[0]).startswith("Velkommen tilbage Mette! Der er gået lidt tid")


def test_first_misunderstanding_asks_to_rephrase_with_the_main_menu():
    tracker = _tracker([_user("greet"), {"event": "bot"}, _user("nlu_fallback")])
    assert consecutive_fallbacks(tracker) == 1
    messages, _ = _run(ActionHandleFallback(), tracker)
    assert messages[0]["response"] == "utter_ask_rephrase"
    assert "forstod jeg ikke" in shown(messages[0])
    assert len(shown_buttons(messages[0])) == 6


def test_second_misunderstanding_in_a_row_offers_a_case_or_a_person():
    tracker = _tracker([_user("nlu_fallback"), {"event": "bot"}, _user("nlu_fallback")])
    messages, _ = _run(ActionHandleFallback(), tracker)
    assert messages[0]["response"] == "utter_fallback_offer_help"
    payloads = [b["payload"] for b in shown_buttons(messages[0])]
    assert "/request_help" in payloads and "/human_handoff" in payloads
    assert messages[0]["af_phone"] in shown(messages[0])


def test_understood_message_in_between_resets_the_count():
    tracker = _tracker([_user("nlu_fallback"), _user("greet"), _user("nlu_fallback")])
    assert consecutive_fallbacks(tracker) == 1


def test_fallback_hands_the_turn_back_to_the_leader():
    """As core fallback the action must end the turn, or Rasa loops until its circuit breaker."""
    _, events = _run(ActionHandleFallback(), _tracker([_user("affirm")]))
    assert events == [{"event": "followup", "timestamp": None, "name": "action_listen"}]


def _expired_token():
    import time

    import jwt

    past = int(time.time()) - 10 * 3600
    settings = get_settings()
    payload = {"name": "Mette Hansen", "email": "mette.hansen@buf.kk.dk", "institution": "Valby Skole",
               "unit": "", "iat": past, "exp": past + 8 * 3600,
               "iss": settings.identity_issuer, "aud": settings.identity_audience}
    return jwt.encode(payload, settings.identity_jwt_key, algorithm=settings.identity_jwt_algorithm)


KNOWN = {"leader_name": "Mette Hansen", "leader_email": "mette.hansen@buf.kk.dk",
         "leader_institution": "Valby Skole", "leader_unit": "af-syd"}


def test_a_typed_session_start_with_an_expired_start_token_keeps_the_verified_leader(production_settings):
    """Security review (issue 14): the start token expired, the leader types /session_start
    in the same session; the identity must not fall to None (the forms would then take any
    typed e-mail)."""
    slots = dict(KNOWN, session_started_metadata={"identity_token": _expired_token()})
    _, events = _run(ActionSessionStart(), _tracker([_user("session_start", "/session_start")], slots))
    assert _slots(events)["leader_email"] == "mette.hansen@buf.kk.dk"


def test_a_session_start_uses_the_current_messages_verified_token(production_settings):
    from tests.production_env import sign_token  # issue_token is for development only

    fresh = sign_token({"name": "Ole Holm", "email": "ole.holm@buf.kk.dk", "institution": "Valby Skole"},
                       production_settings)
    tracker = _tracker([_user("session_start", "/session_start", {"identity_token": fresh})],
                       {"session_started_metadata": {"identity_token": _expired_token()}})
    _, events = _run(ActionSessionStart(), tracker)
    assert _slots(events)["leader_email"] == "ole.holm@buf.kk.dk"
