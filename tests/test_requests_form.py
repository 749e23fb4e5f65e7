"""The request form's rasa-sdk side: the validation action turns the dialogue's decisions into
events, the ask actions show the right response with the right buttons, and the actions after
the form create the case once and say what happens next.

What the words mean is tested in tests/test_request_dialogue.py. Here the tracker is built
the way Rasa's FormAction hands it to the action server; ServiceNow is a fake facade; time is
fixed at Wednesday 23 December 2026, 10:00 (the day before two closed days).
"""
import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional
from zoneinfo import ZoneInfo

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import requests_form as rf
from af_core import case_service as real_case_service
from af_core.profile import load_profile
from af_core.responses import render

ROOT = Path(__file__).resolve().parent.parent
PROFILE = load_profile(ROOT / "profiles" / "buf")
NOW = datetime(2026, 12, 23, 10, 0, tzinfo=ZoneInfo("Europe/Copenhagen"))


def _domain() -> Dict[str, Any]:
    merged: Dict[str, Any] = {"slots": {}, "forms": {}, "responses": {}}
    for path in sorted((ROOT / "domain").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key in merged:
            merged[key].update(data.get(key) or {})
    return merged


DOMAIN = _domain()


@pytest.fixture(autouse=True)
def fixed_profile_and_clock(monkeypatch):
    monkeypatch.setattr(rf, "get_profile", lambda: PROFILE)
    monkeypatch.setattr(rf, "now_local", lambda profile: NOW)


def shown(message: Dict[str, Any]) -> str:
    """What the leader reads: the response filled in as Rasa fills it (first variation)."""
    if message.get("response"):
        values = {k: v for k, v in message.items() if k not in ("response", "buttons", "text")}
        return render(DOMAIN, message["response"], **values)
    return message.get("text") or ""


class FakeCaseService:
    """Stands in for af_core.case_service; records what would have been created."""

    CaseRequest = real_case_service.CaseRequest
    SubmitResult = real_case_service.SubmitResult
    CaseServiceUnavailable = real_case_service.CaseServiceUnavailable

    def __init__(self, status="created", error: Optional[Exception] = None):
        self.status = status
        self.error = error
        self.submitted: List[real_case_service.CaseRequest] = []

    async def submit_case(self, req):
        self.submitted.append(req)
        if self.error:
            raise self.error
        if self.status == "created":
            return real_case_service.SubmitResult("created", "AFH0001042", "AFH0001042", "AF Syd", "af-syd-loen", "i dag")
        return real_case_service.SubmitResult("queued", None, "AF-7K3Q9", "AF Syd", "af-syd-loen", "i dag")


VERIFIED = dict(
    leader_name="Mette Hansen", leader_email="mette.hansen@buf.kk.dk", leader_institution="Valby Skole",
    leader_unit="af-syd",
)


def validate(text: str, intent: str = "inform", requested: Optional[str] = None, entities=(),
             extra_events=(), before=(), **slots):
    """Run validate_request_form as Rasa's FormAction does: the latest message, then the
    requested slot and the form's own ActionExecuted in a temporary tracker."""
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.95},
              "entities": [{"entity": k, "value": v} for k, v in entities]}
    all_slots = {**VERIFIED, **slots, "requested_slot": requested}
    events = list(before) + [{"event": "user", "text": text, "parse_data": latest}] + list(extra_events) + [
        {"event": "slot", "name": "requested_slot", "value": requested},
        {"event": "action", "name": "request_form"},
    ]
    tracker = Tracker("leder-1", all_slots, latest, events, False, None,
                      {"name": "request_form"} if requested else {}, "action_listen")
    dispatcher = CollectingDispatcher()
    result = asyncio.run(rf.ValidateRequestForm().run(dispatcher, tracker, DOMAIN))
    return result, dispatcher.messages


def slots_of(events) -> Dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def ask(action, **slots):
    dispatcher = CollectingDispatcher()
    tracker = Tracker("leder-1", {**VERIFIED, **slots}, {}, [], False, None, {"name": "request_form"}, "action_listen")
    asyncio.run(action.run(dispatcher, tracker, DOMAIN))
    return dispatcher.messages


# --------------------------------------------------------------------------- the validation action
def test_everything_in_the_first_message_fills_every_slot_and_goes_to_the_summary():
    events, messages = validate("Jeg vil gerne have et Teams-møde om løn, det haster", intent="book_meeting")
    slots = slots_of(events)
    assert (slots["request_type"], slots["topic"], slots["urgency"], slots["meeting_channel"]) == (
        "meeting", "loen", "akut", "teams")
    assert slots["requested_slot"] == "request_confirmed"
    assert messages == []


def test_a_digression_returns_nothing_so_the_form_rejects_and_the_rules_answer():
    events, _ = validate("Må jeg kræve en lægeerklæring fra første sygedag?", intent="ask_question",
                         requested="urgency", request_type="meeting", topic="personale")
    assert events == []


def test_back_after_a_digression_the_same_question_is_asked_without_reading_the_message_again():
    events, messages = validate(
        "Må jeg kræve en lægeerklæring fra første sygedag?", intent="ask_question", requested="urgency",
        extra_events=[{"event": "action_execution_rejected", "name": "request_form"},
                      {"event": "action", "name": "action_answer_faq"}],
        request_type="meeting", topic="personale")
    assert events == [{"event": "slot", "timestamp": None, "name": "requested_slot", "value": "urgency"}]
    assert messages == []


def test_cancel_in_words_ends_the_form_through_the_cancel_action():
    events, _ = validate("nej lad være, vi har løst det", intent="deny", requested="urgency",
                         request_type="meeting", topic="loen")
    kinds = [(e.get("event"), e.get("name")) for e in events]
    assert ("active_loop", None) in kinds and ("followup", "action_cancel_request") in kinds


def test_not_understood_inside_the_form_says_so_and_keeps_what_was_collected():
    events, messages = validate("asdfgh", intent="nlu_fallback", requested="urgency",
                                request_type="meeting", topic="loen")
    assert [m["response"] for m in messages] == ["utter_request_not_understood"]
    slots = slots_of(events)
    assert slots["requested_slot"] == "urgency"
    assert "topic" not in slots  # unchanged, not cleared


def test_a_request_right_after_a_rule_answer_takes_that_answers_topic():
    before = [
        {"event": "user", "text": "hvor mange omsorgsdage har man", "parse_data": {}},
        {"event": "action", "name": "action_answer_faq"},
        {"event": "slot", "name": "faq_id", "value": "omsorgsdage"},
        {"event": "action", "name": "action_listen"},
    ]
    events, _ = validate("kan i ringe mig op om det", intent="book_meeting", before=before)
    slots = slots_of(events)
    assert slots["topic"] == "personale" and slots["meeting_channel"] == "telefon"
    assert slots["request_progress"]["context_title"] == "Omsorgsdage"


def test_an_answer_that_changes_nothing_still_sets_a_slot_so_the_form_does_not_reject_it():
    """Rasa's form rejects a message for which validation sets no slot but requested_slot: the
    leader repeating "snart" at the summary fell out of the form into "det forstod jeg ikke"."""
    events, messages = validate("snart", requested="request_confirmed", request_type="meeting", topic="loen",
                                urgency="snart", meeting_channel="teams")
    assert [e["name"] for e in events if e.get("event") == "slot" and e["name"] != "requested_slot"]
    assert slots_of(events)["requested_slot"] == "request_confirmed"
    assert messages == []


@pytest.mark.parametrize("text, starts", [("telefonmøde", True), ("teams", True), ("det haster", False)])
def test_a_detail_without_a_request_starts_a_meeting_when_it_names_one(text, starts):
    dispatcher = CollectingDispatcher()
    tracker = Tracker("x", {}, {"text": text, "intent": {"name": "inform"}}, [], False, None, {}, "action_listen")
    events = asyncio.run(rf.ActionInformWithoutRequest().run(dispatcher, tracker, DOMAIN))
    if starts:
        assert events == [{"event": "followup", "timestamp": None, "name": "request_form"}]
    else:
        assert events == [] and dispatcher.messages[0]["response"] == "utter_ask_help_or_meeting"


def test_defaults_are_said_with_their_names():
    events, messages = validate("øhm", requested="urgency", request_type="meeting", topic="loen",
                                request_progress={"asks": {"urgency": 2}, "defaulted": []})
    assert messages[-1]["response"] == "utter_request_urgency_defaulted"
    assert messages[-1]["urgency_label"] == "snart" and messages[-1]["promise"] == "inden for to arbejdsdage"


# --------------------------------------------------------------------------- the questions
def test_topic_is_asked_with_the_profiles_topics_and_andet_and_a_way_out_the_second_time():
    [first] = ask(rf.ActionAskTopic(), request_type="meeting")
    assert first["response"] == "utter_ask_topic"
    assert [b["payload"] for b in first["buttons"]][-1] == '/inform{"topic":"andet"}'
    [second] = ask(rf.ActionAskTopic(), request_type="meeting", request_progress={"asks": {"topic": 2}})
    assert [b["payload"] for b in second["buttons"]][-2:] == ["/cancel", "/human_handoff"]


def test_urgency_buttons_show_the_service_levels():
    [message] = ask(rf.ActionAskUrgency())
    assert message["response"] == "utter_ask_urgency"
    assert [b["title"] for b in message["buttons"]] == [
        "Akut – svar i dag", "Snart – svar inden for to arbejdsdage", "Ingen hast – svar inden for fem arbejdsdage"]


def test_time_suggestions_skip_christmas_and_offer_no_wish():
    [message] = ask(rf.ActionAskPreferredTime(), urgency="snart")
    assert message["response"] == "utter_ask_preferred_time"
    payloads = [b["payload"] for b in message["buttons"]]
    days = [p.split('"preferred_time":"')[1][:10] for p in payloads[:-1]]
    # asked on 23 December: not 24 (closing day), 25/26 (holidays), 31 (closing day), nor a weekend
    assert days == ["2026-12-23", "2026-12-28", "2026-12-29"]
    assert payloads[-1] == '/inform{"preferred_time":"none"}'
    assert message["buttons"][-1]["title"] == "Intet ønske – AF foreslår et tidspunkt"
    assert "inden for to arbejdsdage" in shown(message)


def test_summary_without_a_description_invites_a_few_words_and_offers_a_time_wish():
    [message] = ask(rf.ActionAskRequestConfirmed(), request_type="meeting", topic="oekonomi", urgency="ingen_hast",
                    meeting_channel="teams")
    assert message["response"] == "utter_request_summary_invite"
    text = shown(message)
    assert "• Emne: økonomi" in text and "• Mødeform: Teams" in text
    assert "intet ønske – AF foreslår et tidspunkt" in text
    assert [b["payload"] for b in message["buttons"]] == [
        "/affirm", '/inform{"correction_field":"preferred_time"}', "/deny", "/cancel"]


def test_summary_shows_the_latest_values_and_the_leaders_words():
    [message] = ask(rf.ActionAskRequestConfirmed(), request_type="meeting", topic="arbejdstid", urgency="snart",
                    meeting_channel="telefon", preferred_time_text="helst formiddag",
                    description="hendes timer er ikke registreret")
    assert message["response"] == "utter_request_summary"
    text = shown(message)
    assert "• Mødeform: Telefon" in text and "• Ønske til tidspunkt: helst formiddag" in text
    assert "hendes timer er ikke registreret" in text
    assert '/inform{"correction_field":"preferred_time"}' not in [b["payload"] for b in message["buttons"]]


def test_after_a_plain_no_the_summary_question_becomes_what_to_correct():
    [message] = ask(rf.ActionAskRequestConfirmed(), request_type="help", topic="loen", urgency="snart",
                    request_progress={"correcting": True})
    assert message["response"] == "utter_ask_what_to_correct"
    fields = [b["payload"] for b in message["buttons"]]
    assert '/inform{"correction_field":"topic"}' in fields
    assert '/inform{"correction_field":"meeting_channel"}' not in fields  # no channel for help


# --------------------------------------------------------------------------- actions after the form
def _run(action, slots, latest=None, events=None):
    dispatcher = CollectingDispatcher()
    tracker = Tracker("leder-1", slots, latest or {}, events or [], False, None, {}, "action_listen")
    result = asyncio.run(action.run(dispatcher, tracker, DOMAIN))
    return dispatcher.messages, {e["name"]: e["value"] for e in result if e.get("event") == "slot"}


CONFIRMED_MEETING = dict(
    VERIFIED,
    request_type="meeting", topic="loen", urgency="akut", meeting_channel="teams",
    preferred_time="2026-12-28T10:00:00+01:00", preferred_time_text="mandag den 28. december kl. 10.00",
    description="Tillæg for en medarbejder", request_confirmed=True,
    case_correlation_id="0123456789abcdef0123456789abcdef",
)


def test_submit_creates_the_case_with_the_collected_details_and_says_what_happens_next(monkeypatch):
    fake = FakeCaseService()
    monkeypatch.setattr(rf, "_case_service", lambda: fake)
    messages, slots = _run(rf.ActionSubmitRequest(), dict(CONFIRMED_MEETING))
    [req] = fake.submitted
    assert (req.request_type, req.topic, req.urgency, req.meeting_channel) == ("meeting", "loen", "akut", "teams")
    assert req.preferred_time == "2026-12-28T10:00:00+01:00"
    assert req.preferred_time_text == "mandag den 28. december kl. 10.00"
    assert req.requester_email == "mette.hansen@buf.kk.dk"
    assert req.requester_name == "Mette Hansen" and req.institution == "Valby Skole"
    assert req.correlation_id == "0123456789abcdef0123456789abcdef"
    assert "Tillæg for en medarbejder" in req.description
    assert messages[0]["response"] == "utter_request_created"
    text = shown(messages[0])
    assert "AFH0001042" in text and "AF Syd" in text and "i dag" in text
    assert "aftale tid og sted for mødet" in text
    # everything about this request is cleared, so a new one starts fresh
    assert slots["request_confirmed"] is None and slots["case_correlation_id"] is None
    assert slots["last_case_reference"] == "AFH0001042"


def test_queued_request_gives_the_reference_and_the_phone_number(monkeypatch):
    fake = FakeCaseService(status="queued")
    monkeypatch.setattr(rf, "_case_service", lambda: fake)
    messages, _ = _run(rf.ActionSubmitRequest(), dict(CONFIRMED_MEETING))
    assert messages[0]["response"] == "utter_request_queued"
    text = shown(messages[0])
    assert "AF-7K3Q9" in text
    assert "så snart systemet svarer" in text
    assert PROFILE.phone in text


def test_nothing_is_created_without_confirmation(monkeypatch):
    fake = FakeCaseService()
    monkeypatch.setattr(rf, "_case_service", lambda: fake)
    _run(rf.ActionSubmitRequest(), dict(CONFIRMED_MEETING, request_confirmed=None))
    assert fake.submitted == []


def test_a_failing_facade_gives_the_phone_number_instead_of_a_crash(monkeypatch):
    fake = FakeCaseService(error=RuntimeError("boom"))
    monkeypatch.setattr(rf, "_case_service", lambda: fake)
    messages, _ = _run(rf.ActionSubmitRequest(), dict(CONFIRMED_MEETING))
    assert messages[0]["response"] == "utter_request_failed" and PROFILE.phone in shown(messages[0])


def test_development_leader_uses_the_typed_contact_email_marked_as_unverified(monkeypatch):
    from af_core.settings import get_settings

    monkeypatch.setenv("AF_MODE", "development")  # only where no login is required
    get_settings.cache_clear()
    fake = FakeCaseService()
    monkeypatch.setattr(rf, "_case_service", lambda: fake)
    slots = dict(CONFIRMED_MEETING, leader_email=None, leader_name=None, contact_email="test.leder@buf.kk.dk")
    _run(rf.ActionSubmitRequest(), slots)
    assert fake.submitted[0].requester_email == "test.leder@buf.kk.dk"
    assert "ikke verificeret" in fake.submitted[0].summary


@pytest.fixture
def handoff_settings(monkeypatch, tmp_path):
    """This process's settings, with the hand-over queue in a temporary folder."""
    from af_core.settings import get_settings

    monkeypatch.setenv("AF_MODE", "development")
    monkeypatch.setenv("AF_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def test_asking_for_a_person_mid_form_with_a_supporter_on_duty_hands_the_chat_over(handoff_settings):
    import time

    from af_core.handoff_store import get_store

    store = get_store(handoff_settings)
    store.create_session("hash-1", "sofie", "Sofie Lund", "csrf", expires_at=time.time() + 600)
    dispatcher = CollectingDispatcher()
    tracker = Tracker("leder-2", dict(VERIFIED, topic="loen"), {"text": "/human_handoff"}, [], False, None,
                      {"name": "request_form"}, "action_listen")
    events = asyncio.run(rf.ActionRequestCallback().run(dispatcher, tracker, DOMAIN))
    kinds = [e["event"] for e in events]
    assert "pause" in kinds and {"event": "active_loop", "timestamp": None, "name": None} in events
    assert dispatcher.messages[0]["response"] == "utter_handoff_queued"
    assert "i kø" in shown(dispatcher.messages[0])
    assert store.open_for("leder-2") is not None


def test_asking_for_a_person_mid_form_marks_the_case_call_me(monkeypatch, handoff_settings):
    messages, slots = _run(rf.ActionRequestCallback(), dict(VERIFIED))
    assert slots["callback_requested"] is True
    assert slots["request_type"] == "help"
    assert messages[0]["response"] == "utter_callback_noted" and PROFILE.phone in shown(messages[0])
    fake = FakeCaseService()
    monkeypatch.setattr(rf, "_case_service", lambda: fake)
    messages, _ = _run(rf.ActionSubmitRequest(), dict(CONFIRMED_MEETING, callback_requested=True))
    assert fake.submitted[0].description.startswith("ØNSKER AT BLIVE RINGET OP")
    assert "ringes op" in shown(messages[0])


def test_cancel_clears_the_request_and_says_nothing_was_created():
    dispatcher = CollectingDispatcher()
    tracker = Tracker("x", dict(CONFIRMED_MEETING), {}, [], False, None, {"name": "request_form"}, "action_listen")
    events = asyncio.run(rf.ActionCancelRequest().run(dispatcher, tracker, DOMAIN))
    slots = {e["name"]: e["value"] for e in events}
    assert all(slots[s] is None for s in rf.REQUEST_SLOTS)
    assert dispatcher.messages[0]["response"] == "utter_request_dropped"


def test_meeting_channel_is_asked_with_three_buttons_that_fill_the_slot():
    import asyncio

    from rasa_sdk.executor import CollectingDispatcher

    dispatcher = CollectingDispatcher()
    tracker = Tracker("x", {}, {}, [], False, None, {}, "action_listen")
    asyncio.run(rf.ActionAskMeetingChannel().run(dispatcher, tracker, DOMAIN))
    payloads = [b["payload"] for b in dispatcher.messages[0]["buttons"]]
    assert payloads == ['/inform{"meeting_channel":"fysisk"}', '/inform{"meeting_channel":"telefon"}',
                        '/inform{"meeting_channel":"teams"}']


def test_where_a_login_is_required_a_typed_email_files_no_case_and_is_never_asked_for(monkeypatch,
                                                                                    production_settings):
    """Security review (issue 14): identity lost + a typed e-mail must not file a case in
    that address's name, and the form must not ask for an e-mail in place of the login."""
    fake = FakeCaseService()
    monkeypatch.setattr(rf, "_case_service", lambda: fake)
    slots = dict(CONFIRMED_MEETING, leader_email=None, leader_name=None, contact_email="victim@buf.kk.dk")
    messages, _ = _run(rf.ActionSubmitRequest(), slots)
    assert fake.submitted == []
    assert messages[0]["response"] == "utter_request_failed"
    tracker = Tracker("leder-1", {"leader_email": None}, {}, [], False, None, {}, "action_listen")
    assert rf.build_context(tracker, PROFILE).identity_known is True


def test_the_matter_named_in_the_message_before_the_request_is_its_topic():
    """Blind batch B: 'tale med en HR-konsulent om sygefravær' -> nobody on duty -> 'gerne et
    fysisk møde her hos os': the meeting is about personale, not 'andet'."""
    before = [
        {"event": "user", "text": "Jeg vil gerne tale med en HR-konsulent om en medarbejder med meget sygefravær",
         "parse_data": {"intent": {"name": "human_handoff"}}},
        {"event": "action", "name": "action_human_handoff"},
        {"event": "bot", "text": "Der er desværre ingen medarbejder i chatten lige nu."},
    ]
    events, _ = validate("gerne et fysisk møde her hos os i institutionen", intent="book_meeting", before=before)
    assert slots_of(events).get("topic") == "personale"


def test_a_finished_request_lends_its_topic_to_no_new_one():
    before = [
        {"event": "user", "text": "teamsmøde om løn, det haster", "parse_data": {"intent": {"name": "book_meeting"}}},
        {"event": "action", "name": "action_submit_request"},
        {"event": "bot", "text": "Din sag er oprettet"},
    ]
    events, _ = validate("jeg vil gerne booke et fysisk møde", intent="book_meeting", before=before)
    assert slots_of(events).get("topic") is None
