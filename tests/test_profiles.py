"""Another administration: AF_PROFILE=kff-demo selects KFF's units, routing, texts, hours and catalogues.

profiles/kff-demo is a small fictitious profile with other units, routing,
service levels, phone number, intranet address, opening hours (including
Saturday) and its own forms.yml and faq.yml. Nothing in the code changes.
"""
import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import case_status as cs, requests_form as rf
from af_core import danish_time
from af_core.case_service import CaseRequest, CaseService
from af_core.catalogue import load_faq_catalogue, load_form_catalogue, search_faq, search_forms
from af_core.profile import load_profile
from af_core.settings import load_settings
from tests.test_requests_form import DOMAIN

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=ZoneInfo("Europe/Copenhagen"))  # a Monday


@pytest.fixture
def kff(tmp_path):
    settings = load_settings({"AF_PROFILE": "kff-demo", "AF_MODE": "development", "AF_VAR_DIR": str(tmp_path)})
    return settings, load_profile(settings.profile_dir)


@pytest.fixture
def buf(tmp_path):
    settings = load_settings({"AF_MODE": "development", "AF_VAR_DIR": str(tmp_path)})
    return settings, load_profile(settings.profile_dir)


def test_the_setting_selects_the_profile_folder(kff, buf):
    assert kff[0].profile_dir.name == "kff-demo"
    assert buf[0].profile_dir.name == "buf"
    assert kff[1].short_name == "KFF" and buf[1].short_name == "BUF"


def test_routing_and_service_levels_come_from_the_kff_profile(kff):
    settings, profile = kff
    service = CaseService(settings, profile)
    record = service.build_record(CaseRequest(
        request_type="meeting", topic="loen", urgency="akut", description="Weekendtillæg mangler",
        requester_name="Sofie Lind", requester_email="sofie.lind@kff.example", institution="Valby Idrætspark",
        meeting_channel="teams", preferred_time="2026-12-05T10:30:00+01:00",
        correlation_id="0123456789abcdef0123456789abcdef",
    ))
    assert record["assignment_group"] == "kff-admin-idraet-loenteam"
    assert record["urgency"] == "1"
    # an unknown institution goes to KFF's default unit; purchasing is one shared group
    assert profile.assignment_group("Ukendt Hal", "indkoeb") == "kff-faelles-indkoeb"
    assert profile.unit_for_institution("Ukendt Hal")["name"] == "KFF Administration Biblioteker"
    # BUF's institutions mean nothing here
    assert profile.unit_for_institution("Valby Skole")["id"] == "kff-admin-bib"


def test_the_dialogue_shows_kff_texts(kff, monkeypatch):
    _, profile = kff
    monkeypatch.setattr(rf, "get_profile", lambda: profile)
    monkeypatch.setattr(rf, "now_local", lambda p: NOW)
    dispatcher = CollectingDispatcher()
    tracker = Tracker("x", {}, {}, [], False, None, {}, "action_listen")
    asyncio.run(rf.ActionAskUrgency().run(dispatcher, tracker, DOMAIN))
    titles = [b["title"] for b in dispatcher.messages[0]["buttons"]]
    assert titles[0] == "Akut – svar inden for to timer"
    asyncio.run(rf.ActionAskPreferredTime().run(dispatcher, tracker, DOMAIN))
    assert "mandag-fredag kl. 9.00-13.00 og lørdag kl. 10.00-12.00" == dispatcher.messages[1]["hours"]

    result = SimpleResult()
    reply = rf.ActionSubmitRequest.reply(result, "help", tracker, profile, DOMAIN)
    assert reply["unit"] == "KFF Administration Idræt" and reply["promise"] == "inden for to timer"
    queued = rf.ActionSubmitRequest.reply(SimpleResult(status="queued", number=None), "help", tracker, profile, DOMAIN)
    assert queued["response"] == "utter_request_queued"
    assert queued["af_phone"] == "33 66 00 00"
    assert cs.phone_values(profile) == {"af_phone": "33 66 00 00", "af_phone_hours": "mandag-fredag kl. 9-13"}


class SimpleResult:
    def __init__(self, status="created", number="AFH0000007"):
        self.status, self.number, self.reference = status, number, number or "AF-ABCDE"
        self.unit_name, self.promise = "KFF Administration Idræt", "inden for to timer"


def test_opening_hours_and_meeting_rules_follow_the_profile(kff, buf):
    _, k = kff
    _, b = buf

    def check(profile, text):
        settings = rf.meeting_settings(profile)
        return danish_time.check_preferred_time(
            text, NOW, profile.opening_hours, profile.timezone,
            max_days=settings["max_days_ahead"], meeting_minutes=settings["duration_minutes"],
        )

    assert check(k, "lørdag kl 10.30").ok  # KFF is open Saturday morning
    assert check(b, "lørdag kl 10.30").problem == "closed_day"
    assert check(k, "tirsdag kl 14").problem == "outside_hours"  # KFF closes at 13
    assert check(b, "tirsdag kl 14").ok
    assert check(k, "tirsdag kl 12.30").problem == "outside_hours"  # a 45-minute meeting ends after 13
    assert check(k, "8/1 kl 10").problem == "too_far"  # KFF books 30 days ahead
    assert check(b, "8/1 kl 10").ok


def test_forms_and_faq_come_from_the_kff_catalogues(kff, buf):
    _, k = kff
    _, b = buf
    decision = search_forms("hvor er timesedlen til de timelønnede i hallen", k)
    assert decision.kind == "sure" and decision.hits[0].id == "timeseddel"
    form = load_form_catalogue(k).get("timeseddel")
    assert form.url == "https://intra.kff.example/kff/admin/skemaer/timeseddel"
    assert load_form_catalogue(k).get("ansaettelse") is None  # BUF's forms are not KFF's
    assert load_form_catalogue(b).get("timeseddel") is None
    assert search_faq("hvad med weekendtillæg", k).hits[0].id == "weekendtillaeg"
    assert load_faq_catalogue(k).get("weekendtillaeg").url.startswith("https://intra.kff.example/kff/")
    assert k.forms_page_url == "https://intra.kff.example/kff/admin/skemaer"
