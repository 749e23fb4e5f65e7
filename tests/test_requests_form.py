"""The request form, driven turn by turn the way Rasa drives it (validation action + ask actions).

A small simulator (``FormDriver``) replays what Rasa's FormAction does: it gives the
validation action a tracker whose latest message is the leader's, applies the
returned slots, finds the next requested slot and runs its ask action. ServiceNow
is replaced by a fake facade; time is fixed at Monday 30 November 2026, 09:00.
"""
import asyncio
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Optional
from zoneinfo import ZoneInfo

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import case_service as real_case_service
from actions import requests_form as rf
from actions.profile import load_profile

ROOT = Path(__file__).resolve().parent.parent
PROFILE = load_profile(ROOT / "profiles" / "buf")
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=ZoneInfo("Europe/Copenhagen"))


def _domain() -> Dict[str, Any]:
    merged: Dict[str, Any] = {"slots": {}, "forms": {}}
    for path in sorted((ROOT / "domain").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        merged["slots"].update(data.get("slots") or {})
        merged["forms"].update(data.get("forms") or {})
    return merged


DOMAIN = _domain()
ASK_ACTIONS = {
    "topic": rf.ActionAskTopic(),
    "urgency": rf.ActionAskUrgency(),
    "preferred_time": rf.ActionAskPreferredTime(),
    "request_confirmed": rf.ActionAskRequestConfirmed(),
}
ASK_TEXTS = {
    "request_type": "Vil du bestille hjælp",
    "meeting_channel": "Hvordan vil du helst holde mødet?",
    "description": "Skriv kort med dine egne ord",
    "contact_email": "Hvilken e-mailadresse",
}


@pytest.fixture(autouse=True)
def fixed_profile_and_clock(monkeypatch):
    monkeypatch.setattr(rf, "get_profile", lambda: PROFILE)
    monkeypatch.setattr(rf, "now_local", lambda profile: NOW)


class FakeCaseService:
    """Stands in for actions.case_service; records what would have been created."""

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


class FormDriver:
    """Replays Rasa's form loop around validate_request_form."""

    def __init__(self, **slots):
        self.slots: Dict[str, Any] = {"requested_slot": None, **slots}
        self.events: List[Dict[str, Any]] = [
            {"event": "slot", "name": k, "value": v} for k, v in self.slots.items() if v is not None
        ]
        self.active = False
        self.messages: List[Dict[str, Any]] = []

    def _tracker(self, extra_events=()):
        return Tracker(
            "leder-1",
            dict(self.slots),
            self.latest,
            list(self.events) + list(extra_events),
            False,
            None,
            {"name": "request_form"} if self.active else {},
            "action_listen",
        )

    def say(self, text: str, intent: str = "inform", entities=(), mapped: Optional[Dict[str, Any]] = None):
        """One leader message. ``mapped``: slots Rasa's own mappings set (e.g. from_entity)."""
        self.latest = {
            "text": text,
            "intent": {"name": intent, "confidence": 0.9},
            "entities": [{"entity": k, "value": v} for k, v in entities],
        }
        self.events.append({"event": "user", "text": text, "parse_data": self.latest})
        mapped = dict(mapped or {})
        candidates = [{"event": "slot", "name": k, "value": v} for k, v in mapped.items()]
        self.slots.update(mapped)
        dispatcher = CollectingDispatcher()
        form_events = [
            {"event": "slot", "name": "requested_slot", "value": self.slots.get("requested_slot")},
            {"event": "action", "name": "request_form"},
        ] + candidates
        events = asyncio.run(rf.ValidateRequestForm().run(dispatcher, self._tracker(form_events), DOMAIN))
        self.messages = list(dispatcher.messages)
        filled = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
        self.last_filled = filled
        slot_events = [e for e in events if e.get("event") == "slot"]
        requested_before = self.slots.get("requested_slot")
        nothing = not mapped and not [e for e in slot_events if e["name"] != "requested_slot"]
        if requested_before and self.active and nothing:
            self.rejected = True
            return self
        self.rejected = False
        self.active = True
        self.events.extend(candidates)
        self.events.append({"event": "action", "name": "request_form"})
        self.events.extend(slot_events)
        self.slots.update(filled)
        requested = self.slots.get("requested_slot")
        if requested and requested in ASK_ACTIONS:
            ask_dispatcher = CollectingDispatcher()
            asyncio.run(ASK_ACTIONS[requested].run(ask_dispatcher, self._tracker(), DOMAIN))
            self.messages += ask_dispatcher.messages
        elif requested:
            self.messages.append({"text": ASK_TEXTS[requested]})
        return self

    @property
    def requested(self) -> Optional[str]:
        return self.slots.get("requested_slot")

    @property
    def text(self) -> str:
        return "\n".join(m.get("text") or "" for m in self.messages)

    @property
    def buttons(self) -> List[Dict[str, str]]:
        return [b for m in self.messages for b in (m.get("buttons") or [])]


VERIFIED = dict(
    leader_name="Mette Hansen", leader_email="mette.hansen@buf.kk.dk", leader_institution="Valby Skole",
    leader_unit="af-syd",
)


# --------------------------------------------------------------------------- filling
def test_everything_in_the_first_message_only_asks_for_what_is_missing():
    form = FormDriver(**VERIFIED).say("Jeg vil gerne have et Teams-møde om løn, det haster", intent="book_meeting")
    assert form.slots["request_type"] == "meeting"
    assert form.slots["meeting_channel"] == "teams"
    assert form.slots["topic"] == "loen"
    assert form.slots["urgency"] == "akut"
    assert form.requested == "preferred_time"
    assert "Hvornår passer det dig?" in form.text
    # the proposed times are inside opening hours and come as buttons
    assert len(form.buttons) == 3
    assert form.buttons[0]["title"] == "Mandag den 30. november kl. 10.00"
    form.say("torsdag eftermiddag")
    assert form.slots["preferred_time"] == "2026-12-03T13:00:00+01:00"
    assert form.requested == "description"


def test_first_message_with_time_and_without_aeoeaa():
    form = FormDriver(**VERIFIED).say(
        "kan vi tage et mode paa telefonen om budgettet naeste uge, ingen hast", intent="book_meeting"
    )
    assert form.slots["meeting_channel"] == "telefon"
    assert form.slots["topic"] == "oekonomi"
    assert form.slots["urgency"] == "ingen_hast"
    assert form.slots["preferred_time"] == "2026-12-07"
    assert form.slots["preferred_time_text"] == "ugen fra mandag den 7. december"
    assert form.requested == "description"


def test_each_detail_is_asked_for_with_buttons_and_free_text_typos_are_understood():
    form = FormDriver().say("/request_help", intent="request_help")
    assert form.slots["request_type"] == "help"
    assert form.requested == "topic"
    assert [b["payload"] for b in form.buttons] == [
        '/inform{"topic":"loen"}', '/inform{"topic":"personale"}', '/inform{"topic":"indkoeb"}',
        '/inform{"topic":"oekonomi"}', '/inform{"topic":"arbejdstid"}',
    ]
    form.say("lonsedlen er forkert")  # no æøå, no entity from NLU
    assert form.slots["topic"] == "loen"
    assert form.requested == "urgency"
    assert "svar i dag" in " ".join(b["title"] for b in form.buttons)  # service level from the profile
    form.say("det kan godt vente")
    assert form.slots["urgency"] == "ingen_hast"
    assert form.requested == "description"  # help: no channel, no time
    form.say("En pædagog har fået for lidt i tillæg for weekendarbejde i oktober")
    assert form.requested == "contact_email"  # no verified identity
    form.say("mette hansen")
    assert "ligner ikke en e-mailadresse" in form.text
    assert form.requested == "contact_email"
    form.say("min mail er Mette.Hansen@buf.kk.dk")
    assert form.slots["contact_email"] == "mette.hansen@buf.kk.dk"
    assert form.slots.get("leader_email") is None  # never a verified identity
    assert form.requested == "request_confirmed"
    assert "Her er din henvendelse" in form.text
    assert "• Emne: løn" in form.text
    assert "• Haster: ingen hast (AF vender tilbage inden for fem arbejdsdage)" in form.text
    assert "• AF svarer dig på: mette.hansen@buf.kk.dk" in form.text
    assert [b["payload"] for b in form.buttons] == ["/affirm", "/deny", "/cancel"]
    form.say("ja tak", intent="affirm")
    assert form.slots["request_confirmed"] is True
    assert len(form.slots["case_correlation_id"]) == 32
    assert form.requested is None  # the form is done: the submit rule takes over


def test_button_payloads_fill_slots_through_entities():
    form = FormDriver(**VERIFIED).say("/book_meeting", intent="book_meeting")
    assert form.requested == "topic"
    form.say('/inform{"topic":"arbejdstid"}', entities=[("topic", "arbejdstid")], mapped={"topic": "arbejdstid"})
    form.say('/inform{"urgency":"snart"}', entities=[("urgency", "snart")], mapped={"urgency": "snart"})
    assert form.requested == "meeting_channel"
    form.say('/inform{"meeting_channel":"fysisk"}', entities=[("meeting_channel", "fysisk")],
             mapped={"meeting_channel": "fysisk"})
    assert form.requested == "preferred_time"
    iso = "2026-12-01T13:00:00+01:00"
    form.say('/inform{"preferred_time":"' + iso + '"}', entities=[("preferred_time", iso)])
    assert form.slots["preferred_time"] == iso
    assert form.slots["preferred_time_text"] == "tirsdag den 1. december kl. 13.00"
    assert form.requested == "description"


def test_unknown_closed_choice_is_asked_again_not_guessed():
    form = FormDriver(**VERIFIED).say("/request_help", intent="request_help")
    form.say("bananer", intent="inform", entities=[("topic", "bananer")], mapped={"topic": "bananer"})
    assert form.slots["topic"] is None
    assert "Det emne kender jeg ikke" in form.text
    assert form.requested == "topic"


# --------------------------------------------------------------------------- time
@pytest.mark.parametrize(
    "answer, problem",
    [
        ("lørdag kl 10", "AF har lukket om lørdagen"),
        ("i går kl 10", "er allerede gået"),
        ("28/11 kl 13", "er allerede gået"),
        ("i morgen kl 17", "uden for AF's åbningstid"),
        ("det ved jeg ikke", "forstod jeg ikke"),
    ],
)
def test_invalid_and_past_times_are_refused_and_asked_again(answer, problem):
    form = FormDriver(**VERIFIED).say("møde om løn på teams, det haster", intent="book_meeting")
    assert form.requested == "preferred_time"
    form.say(answer)
    assert problem in form.text
    assert form.slots.get("preferred_time") is None
    assert form.requested == "preferred_time"
    assert "Hvornår passer det dig?" in form.text
    form.say("i morgen kl. 10")
    assert form.slots["preferred_time"] == "2026-12-01T10:00:00+01:00"


# --------------------------------------------------------------------------- corrections
def _meeting_at_summary() -> FormDriver:
    form = FormDriver(**VERIFIED).say("Jeg vil gerne have et Teams-møde om løn, det haster", intent="book_meeting")
    form.say("i morgen kl 10")
    form.say("Vi skal tale om en medarbejders tillæg efter en ny aftale")
    assert form.requested == "request_confirmed"
    assert "• Mødeform: Teams-møde" in form.text
    assert "• Tidspunkt: tirsdag den 1. december kl. 10.00" in form.text
    return form


def test_correction_at_the_summary_changes_only_that_detail_and_shows_the_summary_again():
    form = _meeting_at_summary()
    form.say("nej, hellere telefon", intent="deny")
    assert form.slots["meeting_channel"] == "telefon"
    assert form.slots["request_confirmed"] is None
    assert form.requested == "request_confirmed"
    assert "Jeg har rettet det" in form.text
    assert "• Mødeform: telefonmøde" in form.text
    assert form.slots["topic"] == "loen" and form.slots["urgency"] == "akut"


def test_plain_no_at_the_summary_asks_what_to_change_and_the_button_reopens_that_question():
    form = _meeting_at_summary()
    form.say("nej", intent="deny")
    assert "Hvad skal jeg rette?" in form.text
    payloads = [b["payload"] for b in form.buttons]
    assert '/inform{"correction_field":"preferred_time"}' in payloads
    form.say('/inform{"correction_field":"preferred_time"}', entities=[("correction_field", "preferred_time")])
    assert form.requested == "preferred_time"
    form.say("fredag kl 9.30")
    assert form.requested == "request_confirmed"
    assert "fredag den 4. december kl. 9.30" in form.text


def test_correction_in_the_middle_of_the_form():
    form = FormDriver(**VERIFIED).say("Jeg vil gerne have et Teams-møde om løn", intent="book_meeting")
    assert form.requested == "urgency"
    form.say("det haster, og ikke teams men fysisk")
    assert form.slots["urgency"] == "akut"
    assert form.slots["meeting_channel"] == "fysisk"
    assert form.requested == "preferred_time"


def test_changing_from_meeting_to_help_drops_channel_and_time():
    form = _meeting_at_summary()
    form.say('/inform{"correction_field":"request_type"}', entities=[("correction_field", "request_type")])
    assert form.requested == "request_type"
    form.say("bare hjælp", intent="request_help")
    assert form.slots["request_type"] == "help"
    assert form.slots["meeting_channel"] is None and form.slots["preferred_time"] is None
    assert form.requested == "request_confirmed"
    assert "Mødeform" not in form.text


def test_description_words_do_not_change_other_details():
    form = FormDriver(**VERIFIED).say("hjælp til en personalesag, det haster", intent="request_help")
    assert form.requested == "description"
    # the NLU tagged "løn" and "telefon" in the description; the form keeps the earlier answers
    form.say("Hun ringede i telefon om sin løn, det kan vente til efter ferien", intent="inform",
             entities=[("topic", "loen")], mapped={"topic": "loen"})
    assert form.slots["topic"] == "personale"
    assert form.slots["urgency"] == "akut"
    assert form.slots["description"].startswith("Hun ringede i telefon")


# --------------------------------------------------------------------------- digressions
@pytest.mark.parametrize(
    "text, intent",
    [
        ("hvordan er reglerne for løn under barsel", "ask_question"),
        ("glem det", "cancel"),
        ("kan jeg tale med en rigtig person", "human_handoff"),
        ("er du en robot?", "bot_challenge"),
    ],
)
def test_digressions_fill_nothing_so_the_rules_take_over(text, intent):
    form = FormDriver(**VERIFIED).say("/book_meeting", intent="book_meeting")
    assert form.requested == "topic"
    form.say(text, intent=intent)
    assert form.rejected, form.last_filled
    assert form.slots.get("topic") is None


def test_cancel_while_writing_the_description_is_not_taken_as_the_description():
    form = FormDriver(**VERIFIED).say("hjælp til løn, det haster", intent="request_help")
    assert form.requested == "description"
    form.say("glem det", intent="cancel")
    assert form.rejected


def test_a_rule_question_as_the_description_is_the_leaders_own_words():
    form = FormDriver(**VERIFIED).say("hjælp til løn, det haster", intent="request_help")
    form.say("hvordan beregner vi tillæg for en TR der går ned i tid?", intent="ask_question")
    assert not form.rejected
    assert form.slots["description"].startswith("hvordan beregner")


@pytest.mark.parametrize(
    "garbage",
    ["", "   ", "😀😀😀", "x" * 5000, "^ORnumber!=x", "javascript:alert(1)", "/inform{\"topic\":", "1/1/1/1 kl 99:99"],
)
def test_bad_input_never_crashes_any_step(garbage):
    for setup in (
        lambda: FormDriver(**VERIFIED).say("/book_meeting", intent="book_meeting"),
        lambda: FormDriver(**VERIFIED).say("møde om løn på teams, det haster", intent="book_meeting"),
        lambda: FormDriver().say("hjælp til løn, det haster", intent="request_help"),
        _meeting_at_summary,
    ):
        form = setup()
        form.say(garbage, intent="nlu_fallback")
        assert form.requested is not None


# --------------------------------------------------------------------------- actions after the form
def _run(action, slots, latest=None, events=None):
    dispatcher = CollectingDispatcher()
    tracker = Tracker("leder-1", slots, latest or {}, events or [], False, None, {}, "action_listen")
    result = asyncio.run(action.run(dispatcher, tracker, DOMAIN))
    return dispatcher.messages, {e["name"]: e["value"] for e in result if e.get("event") == "slot"}


CONFIRMED_MEETING = dict(
    VERIFIED,
    request_type="meeting", topic="loen", urgency="akut", meeting_channel="teams",
    preferred_time="2026-12-01T10:00:00+01:00", preferred_time_text="tirsdag den 1. december kl. 10.00",
    description="Tillæg for en medarbejder", request_confirmed=True,
    case_correlation_id="0123456789abcdef0123456789abcdef",
)


def test_submit_creates_the_case_with_the_collected_details_and_says_what_happens_next(monkeypatch):
    fake = FakeCaseService()
    monkeypatch.setattr(rf, "_case_service", lambda: fake)
    messages, slots = _run(rf.ActionSubmitRequest(), dict(CONFIRMED_MEETING))
    [req] = fake.submitted
    assert (req.request_type, req.topic, req.urgency, req.meeting_channel) == ("meeting", "loen", "akut", "teams")
    assert req.preferred_time == "2026-12-01T10:00:00+01:00"
    assert req.requester_email == "mette.hansen@buf.kk.dk"
    assert req.requester_name == "Mette Hansen" and req.institution == "Valby Skole"
    assert req.correlation_id == "0123456789abcdef0123456789abcdef"
    assert "Tillæg for en medarbejder" in req.description
    text = messages[0]["text"]
    assert "AFH0001042" in text and "AF Syd" in text and "i dag" in text
    # everything about this request is cleared, so a new one starts fresh
    assert slots["request_confirmed"] is None and slots["case_correlation_id"] is None
    assert slots["last_case_reference"] == "AFH0001042"


def test_queued_request_gives_the_reference_and_the_phone_number(monkeypatch):
    fake = FakeCaseService(status="queued")
    monkeypatch.setattr(rf, "_case_service", lambda: fake)
    messages, _ = _run(rf.ActionSubmitRequest(), dict(CONFIRMED_MEETING))
    text = messages[0]["text"]
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
    assert PROFILE.phone in messages[0]["text"]


def test_repeated_confirmation_keeps_the_same_correlation_id():
    validator = rf.ValidateRequestForm()
    tracker = Tracker("x", {"case_correlation_id": "f" * 32}, {}, [], False, None, {}, "action_listen")
    result = validator.validate_request_confirmed(True, CollectingDispatcher(), tracker, DOMAIN)
    assert result["case_correlation_id"] == "f" * 32


def test_development_leader_uses_the_typed_contact_email_marked_as_unverified(monkeypatch):
    fake = FakeCaseService()
    monkeypatch.setattr(rf, "_case_service", lambda: fake)
    slots = dict(CONFIRMED_MEETING, leader_email=None, leader_name=None, contact_email="test.leder@buf.kk.dk")
    _run(rf.ActionSubmitRequest(), slots)
    assert fake.submitted[0].requester_email == "test.leder@buf.kk.dk"
    assert "ikke verificeret" in fake.submitted[0].summary


@pytest.fixture
def handoff_settings(monkeypatch, tmp_path):
    """This process's settings, with the hand-over queue in a temporary folder."""
    from actions.settings import get_settings

    monkeypatch.setenv("AF_MODE", "development")
    monkeypatch.setenv("AF_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def test_asking_for_a_person_mid_form_with_a_supporter_on_duty_hands_the_chat_over(handoff_settings):
    import time

    from actions.handoff_store import get_store

    store = get_store(handoff_settings)
    store.create_session("hash-1", "sofie", "Sofie Lund", "csrf", expires_at=time.time() + 600)
    dispatcher = CollectingDispatcher()
    tracker = Tracker("leder-2", dict(VERIFIED, topic="loen"), {"text": "/human_handoff"}, [], False, None,
                      {"name": "request_form"}, "action_listen")
    events = asyncio.run(rf.ActionRequestCallback().run(dispatcher, tracker, DOMAIN))
    kinds = [e["event"] for e in events]
    assert "pause" in kinds and {"event": "active_loop", "timestamp": None, "name": None} in events
    assert "i kø" in dispatcher.messages[0]["text"]
    assert store.open_for("leder-2") is not None


def test_asking_for_a_person_mid_form_marks_the_case_call_me(monkeypatch, handoff_settings):
    messages, slots = _run(rf.ActionRequestCallback(), dict(VERIFIED))
    assert slots["callback_requested"] is True
    assert slots["request_type"] == "help"
    assert "ringet op" in messages[0]["text"] and PROFILE.phone in messages[0]["text"]
    fake = FakeCaseService()
    monkeypatch.setattr(rf, "_case_service", lambda: fake)
    messages, _ = _run(rf.ActionSubmitRequest(), dict(CONFIRMED_MEETING, callback_requested=True))
    assert fake.submitted[0].description.startswith("ØNSKER AT BLIVE RINGET OP")
    assert "ringes op" in messages[0]["text"]


def test_cancel_clears_the_request_and_says_nothing_was_created():
    dispatcher = CollectingDispatcher()
    tracker = Tracker("x", dict(CONFIRMED_MEETING), {}, [], False, None, {"name": "request_form"}, "action_listen")
    events = asyncio.run(rf.ActionCancelRequest().run(dispatcher, tracker, DOMAIN))
    slots = {e["name"]: e["value"] for e in events}
    assert all(slots[s] is None for s in rf.REQUEST_SLOTS)
    assert "ikke oprettet noget" in dispatcher.messages[0]["text"]


def test_matching_helpers():
    assert rf.match_channel("nej, hellere telefon") == "telefon"
    assert rf.match_channel("ikke teams men fysisk") == "fysisk"
    assert rf.match_channel("temas") == "teams"
    assert rf.match_urgency("det haster ikke") == "ingen_hast"
    assert rf.match_urgency("akkut") == "akut"
    assert rf.match_topic("tidsregistrering") == "arbejdstid"
    assert rf.match_topic("personle") == "personale"
    assert rf.match_topic("jeg skal have hjælp til noget") is None
    assert rf.find_email("skriv til a.b@kk.dk tak") == "a.b@kk.dk"
    assert rf.find_email("a^b@kk.dk") is None


def test_a_long_first_message_is_taken_as_the_description():
    text = ("Vi har en medarbejder på barsel, og jeg er i tvivl om hvordan vi skal håndtere "
            "hendes tillæg, kan I hjælpe, det haster")
    form = FormDriver(**VERIFIED).say(text, intent="request_help")
    assert form.slots["description"] == text
    assert form.slots["urgency"] == "akut"
    assert form.requested == "topic"  # "barsel" and "tillæg" point two ways: ask, don't guess


def test_two_different_values_without_a_preference_are_asked_for_not_guessed():
    assert rf.match_channel("telefon eller teams") is None
    assert rf.match_channel("teams, nej hellere telefon") == "telefon"
    assert rf.match_channel("telefon i stedet for teams") == "telefon"
    assert rf.match_topic("løn, nej hellere personale") == "personale"


def test_meeting_channel_is_asked_with_three_buttons_that_fill_the_slot():
    import asyncio

    from rasa_sdk.executor import CollectingDispatcher

    dispatcher = CollectingDispatcher()
    asyncio.run(rf.ActionAskMeetingChannel().run(dispatcher, None, {}))
    payloads = [b["payload"] for b in dispatcher.messages[0]["buttons"]]
    assert payloads == ['/inform{"meeting_channel":"fysisk"}', '/inform{"meeting_channel":"telefon"}',
                        '/inform{"meeting_channel":"teams"}']
