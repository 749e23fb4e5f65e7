"""Every way an action speaks, run once with fakes, recording what it passes to the domain.

``collect()`` runs the actions of actions/ through their situations -- a returning leader, a
misunderstanding, a list of cases, a form, a rule answer, a rating, a hand-over, every question,
default and time problem of the request form -- and returns, for every message sent, the response
name and the names of the values the action passed. ``rendered_parts()`` returns the parts an
action fills itself (a case line, a summary line, a button label). tests/test_responses.py checks
both against the domain: no ``{variable}`` is left for the leader to read.
"""
from __future__ import annotations

import asyncio
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple
from zoneinfo import ZoneInfo

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import basics, case_status, faq, feedback, forms_lookup, handoff, requests_form as rf
from af_core import case_service, responses
from af_core.profile import Profile, load_profile
from tests.domain_helpers import DOMAIN, MESSAGE_KEYS, ROOT

PROFILE = load_profile(ROOT / "profiles" / "buf")
NOW = datetime(2026, 12, 23, 10, 0, tzinfo=ZoneInfo("Europe/Copenhagen"))
VERIFIED = dict(leader_name="Mette Hansen", leader_email="mette.hansen@buf.kk.dk", leader_institution="Valby Skole",
                leader_unit="af-syd")
MEETING = dict(VERIFIED, request_type="meeting", topic="loen", urgency="akut", meeting_channel="teams")
Sent = Tuple[str, Set[str]]


def _user(text: str, intent: str, confidence: float = 0.95, entities=()) -> Dict[str, Any]:
    return {"text": text, "intent": {"name": intent, "confidence": confidence},
            "entities": [{"entity": k, "value": v} for k, v in entities]}


def _tracker(latest=None, slots=None, events=None, loop=None) -> Tracker:
    return Tracker("leder-1", dict(slots or {}), latest or {}, list(events or []), False, None,
                   {"name": loop} if loop else {}, "action_listen")


def _run(action, tracker: Tracker) -> List[Dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    asyncio.run(action.run(dispatcher, tracker, DOMAIN))
    return dispatcher.messages


class _Cases:
    CaseServiceUnavailable = case_service.CaseServiceUnavailable
    CaseRequest = case_service.CaseRequest

    def __init__(self, cases=(), down=False, status="created", error=None):
        self.cases, self.down, self.status, self.error = list(cases), down, status, error

    async def list_open_cases(self, email, limit=5):
        if self.down:
            raise self.CaseServiceUnavailable("nede")
        return self.cases[:limit]

    async def get_case(self, number, email):
        if self.down:
            raise self.CaseServiceUnavailable("nede")
        return next((c for c in self.cases if c.number == number), None)

    async def submit_case(self, request):
        if self.error:
            raise self.error
        number = "AFH0001042" if self.status == "created" else None
        return case_service.SubmitResult(self.status, number, number or "AF-7K3Q9", "AF Syd", "af-syd-loen", "i dag")


class _Store:
    def __init__(self, existing=None, handoff_row=None, created=True):
        self.existing, self.row, self.created = existing, handoff_row, created

    def open_for(self, conversation_id):
        return self.existing

    def position(self, handoff_id):
        return 2

    def audit(self, *args, **kwargs):
        return None

    def request(self, conversation_id, **kwargs):
        return self.row or SimpleNamespace(id=1, status="waiting", conversation_id=conversation_id,
                                           supporter_name=None), self.created


@contextmanager
def _patched() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        for module in (basics, case_status, faq, forms_lookup, handoff, rf, feedback):
            if hasattr(module, "get_profile"):
                mp.setattr(module, "get_profile", lambda: PROFILE)
        mp.setattr(rf, "now_local", lambda profile: NOW)
        mp.setenv("AF_MODE", "development")
        from af_core.settings import get_settings

        get_settings.cache_clear()
        try:
            yield mp
        finally:
            get_settings.cache_clear()


def _case(number="AFH0001001", short="Møde (Teams): løn – Valby Skole", updated="2026-11-30 08:00:00"):
    return case_service.CaseSummary(number, short, "2", "Under behandling", updated, "meeting", "loen")


def _validate(text, requested=None, intent="inform", entities=(), **slots):
    latest = _user(text, intent, entities=entities)
    events = [{"event": "user", "text": text, "parse_data": latest},
              {"event": "slot", "name": "requested_slot", "value": requested},
              {"event": "action", "name": "request_form"}]
    return _run(rf.ValidateRequestForm(), _tracker(latest, {**slots, "requested_slot": requested}, events,
                                                   "request_form" if requested else None))


def _scenarios(mp: pytest.MonkeyPatch) -> Iterator[List[Dict[str, Any]]]:
    # ---------------------------------------------------------------- basics
    back = [{"event": "session_started"}, {"event": "user", "text": "hej", "parse_data": {}}]
    yield _run(basics.ActionSessionStart(), _tracker(events=back))
    yield _run(basics.ActionSessionStart(), _tracker(slots=VERIFIED, events=back))
    fallback = {"event": "user", "text": "x", "parse_data": {"intent": {"name": "nlu_fallback"}}}
    yield _run(basics.ActionHandleFallback(), _tracker(_user("blabla", "nlu_fallback", 0.3), events=[fallback]))
    yield _run(basics.ActionHandleFallback(), _tracker(_user("blabla", "nlu_fallback", 0.3),
                                                       events=[fallback, fallback]))
    yield _run(basics.ActionHandleFallback(), _tracker(_user("§ 56 aftale for en lærer", "nlu_fallback", 0.45)))
    yield _run(basics.ActionOutOfScope(), _tracker(_user("hvem vinder superligaen", "out_of_scope")))
    yield _run(basics.ActionOutOfScope(), _tracker(_user("hvordan fungerer samtidighedsferie i ferieloven",
                                                         "out_of_scope")))
    yield _run(basics.ActionOutOfScope(), _tracker(_user("hvornår skal jeg holde en sygesamtale med en sygemeldt",
                                                         "out_of_scope")))
    # ---------------------------------------------------------------- case status
    status = _user("hvad sker der med min sag", "case_status")
    asking = [{"event": "user", "text": status["text"], "parse_data": status}]
    by_number = _user("status på AFH0001001", "case_status")
    asking_number = [{"event": "user", "text": by_number["text"], "parse_data": by_number}]
    for fake, latest, events, slots in (
        (_Cases([_case(f"AFH000100{i}") for i in range(1, 4)]), status, asking, VERIFIED),
        (_Cases([_case(short="", updated="")]), status, asking, VERIFIED),
        (_Cases([]), status, asking, VERIFIED),
        (_Cases([_case()]), by_number, asking_number, VERIFIED),
        (_Cases([]), by_number, asking_number, VERIFIED),
        (_Cases(down=True), status, asking, VERIFIED),
        (_Cases(), status, asking, {}),
    ):
        mp.setattr(case_status, "_case_service", lambda fake=fake: fake)
        yield _run(case_status.ActionCaseStatus(), _tracker(latest, slots, events))
    # ---------------------------------------------------------------- forms and rule answers
    for text in ("min pædagog går på efterløn, hvad gør jeg", "noget med løn", '/find_form{"form_id": "ingen"}',
                 "hvad er samtidighedsferie", "/find_form", "asdf qwerty"):
        entities = [("form_id", "ingen")] if "ingen" in text else []
        yield _run(forms_lookup.ActionFindForm(), _tracker(_user(text, "find_form", entities=entities)))
    for text in ("hvor mange uger barsel har en far ret til", "ferie", "hvad koster en kaffe i kantinen",
                 "/ask_question", "kørselsgodtgørelse"):
        yield _run(faq.ActionAnswerFaq(), _tracker(_user(text, "ask_question")))
    for intent, slots in (("affirm", {"faq_id": "omsorgsdage", "faq_feedback_pending": True}),
                          ("deny", {"faq_id": "loenudbetaling", "faq_feedback_pending": True}),
                          ("deny", {"faq_feedback_pending": True}),
                          ("affirm", {"faq_feedback_pending": False}),
                          ("deny", {"faq_feedback_pending": False})):
        yield _run(faq.ActionFaqFeedback(), _tracker(_user("ja" if intent == "affirm" else "nej", intent), slots))
    # ---------------------------------------------------------------- ratings
    yield _run(feedback.ActionAskRating(), _tracker())
    for text, slots in (("hmm", {"rating_requested": True}), ("3 - for mange spørgsmål", {"rating_requested": True}),
                        ("2", {"rating_requested": True}), ("5", {"rating_requested": True}),
                        ("§ 56 aftale for en lærer", {})):
        yield _run(feedback.ActionStoreRating(), _tracker(_user(text, "rate"), slots))
    # ---------------------------------------------------------------- hand-over
    mp.setattr(handoff, "duty_status", lambda *a, **k: SimpleNamespace(on_duty=True, reason="ok"))
    person = _user("jeg vil tale med et menneske", "human_handoff", 0.99)
    for store in (_Store(), _Store(existing=SimpleNamespace(id=1, status="active", supporter_name="Sofie Lund")),
                  _Store(existing=SimpleNamespace(id=1, status="waiting", supporter_name=None)),
                  _Store(handoff_row=SimpleNamespace(id=1, status="active", conversation_id="other",
                                                     supporter_name="Sofie Lund"), created=False),
                  _Store(handoff_row=SimpleNamespace(id=1, status="waiting", conversation_id="other",
                                                     supporter_name=None), created=False)):
        mp.setattr(handoff, "get_store", lambda settings, store=store: store)
        yield _run(handoff.ActionHumanHandoff(), _tracker(person, dict(VERIFIED, topic="loen"), [
            {"event": "user", "text": "fejl i lønnen", "parse_data": {"intent": {"name": "request_help"}}}]))
    for reason in ("closed", "nobody"):
        mp.setattr(handoff, "duty_status", lambda *a, reason=reason, **k: SimpleNamespace(on_duty=False, reason=reason))
        yield _run(handoff.ActionHumanHandoff(), _tracker(person, VERIFIED))
    yield _run(handoff.ActionHumanHandoff(), _tracker(
        _user("en medarbejder ønsker tjenestefri uden løn et år for at studere", "human_handoff", 0.7), VERIFIED))
    # ---------------------------------------------------------------- the request form: questions
    for action, slots in ((rf.ActionAskTopic(), {"request_type": "meeting"}),
                          (rf.ActionAskTopic(), {"request_progress": {"asks": {"topic": 2}}}),
                          (rf.ActionAskUrgency(), {"request_progress": {"asks": {"urgency": 2}}}),
                          (rf.ActionAskMeetingChannel(), {"request_progress": {"asks": {"meeting_channel": 2}}}),
                          (rf.ActionAskPreferredTime(), {"urgency": "snart"}),
                          (rf.ActionAskRequestConfirmed(), dict(MEETING)),
                          (rf.ActionAskRequestConfirmed(), dict(MEETING, description="x", preferred_time_text="helst formiddag",
                                                                callback_requested=True)),
                          (rf.ActionAskRequestConfirmed(), dict(MEETING, meeting_channel=None,
                                                                request_progress={"defaulted": ["urgency"]})),
                          (rf.ActionAskRequestConfirmed(), dict(MEETING, request_progress={"correcting": True})),
                          (rf.ActionAskRequestConfirmed(), dict(VERIFIED, request_type="help", topic="loen",
                                                                urgency="snart", leader_email=None,
                                                                contact_email="a@b.dk")),
                          (rf.ActionInformWithoutRequest(), {})):
        yield _run(action, _tracker(_user("det haster", "inform"), slots, loop="request_form"))
    # ---------------------------------------------------------------- ... what it says on the way
    yield _validate("asdfgh", "urgency", "nlu_fallback", **dict(MEETING, urgency=None))
    yield _validate("hellere telefon", "request_confirmed", **MEETING)
    yield _validate("vi skal have styr på vikartimerne for december", "request_confirmed", **MEETING)
    yield _validate("det drejer sig om Ahmeds aftale fra sidste år", "request_confirmed", **MEETING)
    yield _validate("øhm", "request_type", request_progress={"asks": {"request_type": 2}}, **VERIFIED)
    yield _validate("øhm", "topic", request_type="help", request_progress={"asks": {"topic": 2}}, **VERIFIED)
    yield _validate("øhm", "urgency", request_type="help", topic="loen", request_progress={"asks": {"urgency": 2}},
                    **VERIFIED)
    yield _validate("øhm", "meeting_channel", request_progress={"asks": {"meeting_channel": 2}},
                    **dict(MEETING, meeting_channel=None))
    yield _validate("ved ikke", "contact_email", request_progress={"asks": {"contact_email": 2}},
                    **dict(MEETING, leader_email=None))
    for when in ("blå bil", "21/12 kl 10", "1/6 kl 10", "9/1 kl 10", "24/12 kl 10", "tirsdag kl 17"):
        yield _validate(when, "preferred_time", **MEETING)
    yield _validate("nej vent, helst torsdag kl 17", None, "book_meeting", **{})
    # ---------------------------------------------------------------- ... and after it
    confirmed = dict(MEETING, request_confirmed=True, callback_requested=True, description="Tillæg",
                     request_progress={"context_title": "Omsorgsdage"})
    for fake in (_Cases(), _Cases(status="queued"), _Cases(error=RuntimeError("boom"))):
        mp.setattr(rf, "_case_service", lambda fake=fake: fake)
        yield _run(rf.ActionSubmitRequest(), _tracker(slots=confirmed))
    yield _run(rf.ActionSubmitRequest(), _tracker(slots=dict(confirmed, leader_email=None)))
    yield _run(rf.ActionSubmitRequest(), _tracker(slots=dict(confirmed, leader_email=None, contact_email="a@b.dk")))
    yield _run(rf.ActionCancelRequest(), _tracker(slots=MEETING, loop="request_form"))
    yield _run(rf.ActionCancelRequest(), _tracker())
    mp.setattr(rf, "get_store", lambda settings: _Store())
    mp.setattr(rf, "duty_status", lambda *a, **k: SimpleNamespace(on_duty=False, reason="nobody"))
    yield _run(rf.ActionRequestCallback(), _tracker(slots=VERIFIED, loop="request_form"))
    # a profile whose service levels promise nothing: the urgency buttons without "svar ..."
    no_promise = Profile(PROFILE.directory, {**PROFILE.data, "service_levels": {
        key: {**level, "promise": ""} for key, level in PROFILE.service_levels.items()}})
    mp.setattr(rf, "get_profile", lambda: no_promise)
    yield _run(rf.ActionAskUrgency(), _tracker())
    mp.setattr(rf, "get_profile", lambda: PROFILE)
    # ---------------------------------------------------------------- a typed e-mail (development)
    typed = _user("min mail er ikke-en-adresse", "inform")
    form = case_status.ValidateCaseStatusForm()
    dispatcher = CollectingDispatcher()
    asyncio.run(form.extract_contact_email(dispatcher, _tracker(typed, {"requested_slot": "contact_email"}), DOMAIN))
    form.validate_contact_email("ikke@", dispatcher, _tracker(), DOMAIN)
    yield dispatcher.messages


@lru_cache(maxsize=1)
def _recorded() -> Tuple[Tuple[Sent, ...], Tuple[Sent, ...]]:
    sent: List[Sent] = []
    parts: List[Sent] = []
    original = responses.render

    def recording_render(domain, name, **values):
        parts.append((name, set(values)))
        return original(domain, name, **values)

    with _patched() as mp:
        for module in (responses, case_status, handoff, feedback, rf):
            mp.setattr(module, "render", recording_render)
        for messages in _scenarios(mp):
            for message in messages:
                if message.get("response"):
                    sent.append((message["response"], {k for k in message if k not in MESSAGE_KEYS}))
                else:
                    sent.append(("<text>", set()))
        for seconds in (30, 60, 180):  # the hand-over's waiting time, as the leader reads it
            handoff.wait_text(seconds, DOMAIN)
    return tuple(sent), tuple(parts)


def collect() -> List[Sent]:
    return list(_recorded()[0])


def messages() -> List[Tuple[str, Dict[str, Any]]]:
    """(response, the collected message) of every situation: what the action server returns."""
    found = []
    with _patched() as mp:
        for batch in _scenarios(mp):
            found.extend((m.get("response") or "<text>", m) for m in batch)
    return found


def rendered_parts() -> List[Sent]:
    return list(_recorded()[1])
