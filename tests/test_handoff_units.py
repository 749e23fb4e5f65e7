"""Hand-over building blocks without the running stack: the queue store, who is on duty,
supporter passwords and sessions, the transcript, and the console's login/CSRF rules
(in-process aiohttp server). The end-to-end paths are in tests/test_handoff.py.

The store's tests run on both backends: the SQLite file (embedded default) and PostgreSQL
(the scaled deployment, tests/pg.py; skipped with the reason when PostgreSQL is not there)."""
from __future__ import annotations

import asyncio
import re
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from af_core import transcript
from af_core.handoff_store import (
    ACTIVE,
    CLOSED,
    RETURNED,
    TIMED_OUT,
    WAITING,
    HandoffStore,
    duty_status,
    within_opening_hours,
)
from af_core.profile import load_profile
from af_core.settings import DEV_SUPPORTER_PASSWORD, DEV_SUPPORTER_USERNAME, PROJECT_ROOT, load_settings
from tests.pg import backend, pg, pg_database  # noqa: F401 - fixtures
from web import support_auth

PROFILE = load_profile(PROJECT_ROOT / "profiles" / "buf")
CPH = ZoneInfo("Europe/Copenhagen")


def at(*args) -> float:
    return datetime(*args, tzinfo=CPH).timestamp()


def queue(store: HandoffStore, conversation: str, now: float, wait: float = 60):
    # one leader per conversation: a leader has at most one open hand-over (tests/test_console_security.py)
    return store.request(conversation, leader_name="Mette Hansen", leader_email=f"leder.{conversation}@buf.kk.dk",
                         leader_institution="Valby Skole", leader_unit="af-syd", topic="løn",
                         wait_seconds=wait, now=now)


@pytest.fixture
def store(tmp_path, backend) -> HandoffStore:
    return HandoffStore.for_settings(settings_for(tmp_path, **backend.env))


def settings_for(tmp_path: Path, **extra):
    env = {"AF_MODE": "development", "AF_VAR_DIR": str(tmp_path / "var")}
    env.update(extra)
    return load_settings(env)


# ------------------------------------------------------------------------------ the queue
def test_queue_positions_and_one_open_handoff_per_conversation(store):
    first, created = queue(store, "c1", 100)
    second, _ = queue(store, "c2", 101)
    again, created_again = queue(store, "c1", 102)
    assert created and not created_again and again.id == first.id
    assert (store.position(first.id), store.position(second.id)) == (1, 2)
    assert store.take(first.id, "sofie", "Sofie Lund", now=110).status == ACTIVE
    assert store.position(second.id) == 1 and store.position(first.id) == 0


def test_only_one_supporter_can_take_a_chat_and_only_they_can_finish_it(store):
    handoff, _ = queue(store, "c1", 100)
    assert store.take(handoff.id, "sofie", "Sofie Lund") is not None
    assert store.take(handoff.id, "peter", "Peter Holm") is None
    assert store.finish(handoff.id, "peter", RETURNED) is None
    assert store.finish(handoff.id, "sofie", CLOSED).status == CLOSED
    # the leader may ask again after the chat ended
    new, created = queue(store, "c1", 200)
    assert created and new.id != handoff.id and new.status == WAITING


def test_timed_out_chats_are_claimed_exactly_once(store):
    late, _ = queue(store, "c1", 100, wait=30)
    fresh, _ = queue(store, "c2", 120, wait=30)
    assert store.claim_timed_out(now=129) == []
    claimed = store.claim_timed_out(now=131)
    assert [h.id for h in claimed] == [late.id] and claimed[0].status == TIMED_OUT
    assert store.claim_timed_out(now=131) == []
    assert store.take(late.id, "sofie", "Sofie Lund") is None
    assert store.get(fresh.id).status == WAITING


def test_audit_log_records_who_took_which_conversation(store):
    handoff, _ = queue(store, "samtale-42", 100)
    handoff = store.take(handoff.id, "sofie", "Sofie Lund", now=130)
    store.audit("take", "sofie", handoff, now=130)
    entry = store.audit_entries(10)[0]
    assert (entry.supporter, entry.action, entry.handoff_id, entry.conversation_id, entry.at) == (
        "sofie", "take", handoff.id, "samtale-42", 130)


# ------------------------------------------------------------------------------ on duty
def test_opening_hours_follow_the_profile():
    hours = PROFILE.opening_hours
    assert within_opening_hours(hours, PROFILE.timezone, at(2026, 12, 1, 9, 0))  # Tuesday
    assert not within_opening_hours(hours, PROFILE.timezone, at(2026, 12, 1, 15, 0))
    assert not within_opening_hours(hours, PROFILE.timezone, at(2026, 12, 4, 14, 30))  # Friday after 14
    assert not within_opening_hours(hours, PROFILE.timezone, at(2026, 12, 5, 10, 0))  # Saturday


def test_on_duty_needs_opening_hours_and_a_present_supporter(tmp_path, store):
    settings = settings_for(tmp_path, AF_HANDOFF_OPENING_HOURS="profile", AF_HANDOFF_PRESENCE_SECONDS="60")
    tuesday = at(2026, 12, 1, 10, 0)
    assert duty_status(settings, PROFILE, store, tuesday).reason == "nobody"
    store.create_session("h1", "sofie", "Sofie Lund", "csrf", expires_at=tuesday + 3600, now=tuesday - 30)
    assert duty_status(settings, PROFILE, store, tuesday).on_duty
    assert duty_status(settings, PROFILE, store, tuesday + 31).reason == "nobody"  # console closed a while ago
    saturday = at(2026, 12, 5, 10, 0)
    store.create_session("h2", "sofie", "Sofie Lund", "csrf", expires_at=saturday + 3600, now=saturday)
    assert duty_status(settings, PROFILE, store, saturday).reason == "closed"
    always = settings_for(tmp_path, AF_HANDOFF_OPENING_HOURS="always")
    assert duty_status(always, PROFILE, store, saturday).on_duty


# ------------------------------------------------------------------------------ supporters
def test_passwords_are_hashed_and_the_file_holds_no_password(tmp_path):
    path = tmp_path / "supporters.yml"
    support_auth.add_supporter(path, "Sofie.Lund", "Sofie Lund", "en lang nok adgangskode")
    text = path.read_text()
    assert "sofie.lund" in text and "en lang nok adgangskode" not in text and "scrypt$" in text
    from tests.production_env import production_env

    settings = settings_for(tmp_path, **production_env(AF_SUPPORTERS_FILE=str(path), AF_WEB_SESSION_KEY="k" * 40))
    assert support_auth.authenticate(settings, "sofie.lund", "en lang nok adgangskode").name == "Sofie Lund"
    assert support_auth.authenticate(settings, "sofie.lund", "forkert adgangskode") is None
    # the development demo supporter does not exist in production
    assert support_auth.authenticate(settings, DEV_SUPPORTER_USERNAME, DEV_SUPPORTER_PASSWORD) is None
    with pytest.raises(support_auth.SupporterFileError):
        support_auth.add_supporter(path, "kort", "Kort Kode", "for kort")


def test_demo_supporter_only_in_development_and_never_written(tmp_path):
    settings = settings_for(tmp_path)
    assert support_auth.authenticate(settings, DEV_SUPPORTER_USERNAME, DEV_SUPPORTER_PASSWORD) is not None
    assert not settings.supporters_file.exists()


def test_session_cookie_is_signed(tmp_path):
    settings = settings_for(tmp_path)
    cookie, sid_hash, _, _ = support_auth.new_session_cookie(settings)
    assert support_auth.session_id_from_cookie(settings, cookie) == sid_hash
    sid, mac = cookie.rsplit(".", 1)
    assert support_auth.session_id_from_cookie(settings, f"{sid}x.{mac}") is None
    other = settings_for(tmp_path, AF_WEB_SESSION_KEY="en-anden-udviklingsnoegle")
    assert support_auth.session_id_from_cookie(other, cookie) is None


# ------------------------------------------------------------------------------ transcript
def test_transcript_names_the_supporter_and_masks_cpr_for_cases():
    tracker = {"events": [
        {"event": "user", "text": "/greet", "timestamp": 1},
        {"event": "user", "text": "Hjælp med løn til 010203-1234?", "timestamp": 2},
        {"event": "bot", "text": "Jeg sætter dig i kø.", "timestamp": 3},
        {"event": "pause", "timestamp": 4},
        {**transcript.supporter_event("Hej, hvad drejer det sig om?", "Sofie Lund", 7), "timestamp": 5},
    ]}
    items = transcript.entries(tracker, "Mette Hansen")
    assert [i["who"] for i in items] == ["leader", "leader", "bot", "system", "supporter"]
    assert items[-1]["name"] == "Sofie Lund" and items[-1]["text"] == "Hej, hvad drejer det sig om?"
    text = transcript.as_text(items)
    assert "010203-1234" not in text and "Mette Hansen: Hjælp med løn" in text
    event = transcript.supporter_event("Hej", "Sofie Lund", 7)
    assert event["data"]["custom"]["data"]["text"] == "Sofie fra AF: Hej"


# ------------------------------------------------------------------------------ console auth (in-process)
async def _console(tmp_path, env=None):
    from web.app import create_app

    settings = settings_for(tmp_path, AF_RASA_URL="http://127.0.0.1:9", **(env or {}))
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    return client


async def _login(client, username=DEV_SUPPORTER_USERNAME, password=DEV_SUPPORTER_PASSWORD):
    page = await client.get("/support/login")
    nonce = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
    return await client.post("/support/login", data={"username": username, "password": password, "csrf": nonce},
                             allow_redirects=False)


def test_console_login_cookie_flags_and_csrf(tmp_path, backend):
    async def scenario():
        client = await _console(tmp_path, backend.env)
        try:
            assert (await client.get("/support/api/queue")).status == 401
            bad = await _login(client, password="forkert-kode")
            assert bad.status == 401 and "Forkert brugernavn eller adgangskode" in await bad.text()
            # a login form without its nonce cookie (cross-site form) is refused
            client.session.cookie_jar.clear()
            forged = await client.post("/support/login", data={
                "username": DEV_SUPPORTER_USERNAME, "password": DEV_SUPPORTER_PASSWORD, "csrf": "x"},
                allow_redirects=False)
            assert forged.status == 403
            ok = await _login(client)
            assert ok.status == 303 and ok.headers["Location"] == "/support"
            cookie = ok.headers.getall("Set-Cookie")
            session_cookie = next(c for c in cookie if c.startswith("af_support_session="))
            assert "HttpOnly" in session_cookie and "SameSite=Strict" in session_cookie
            assert "Path=/support" in session_cookie
            page = await client.get("/support")
            assert page.status == 200 and "Sofie Lund" in await page.text()
            queue_json = await (await client.get("/support/api/queue")).json()
            assert queue_json["me"]["username"] == DEV_SUPPORTER_USERNAME
            # POST without the CSRF token, or from another origin, is refused
            assert (await client.post("/support/api/handoffs/1/take")).status == 403
            csrf = re.search(r'data-csrf="([^"]+)"', await page.text()).group(1)
            cross = await client.post("/support/api/handoffs/1/take", headers={
                "X-CSRF-Token": csrf, "Origin": "http://evil.example"})
            assert cross.status == 403
            missing = await client.post("/support/api/handoffs/999/take", headers={"X-CSRF-Token": csrf})
            assert missing.status == 404
        finally:
            await client.close()

    asyncio.run(scenario())


def test_too_many_wrong_passwords_are_slowed_down(tmp_path, backend):
    async def scenario():
        client = await _console(tmp_path, backend.env)
        try:
            for _ in range(5):
                assert (await _login(client, password="forkert-kode")).status == 401
            assert (await _login(client)).status == 429
        finally:
            await client.close()

    asyncio.run(scenario())
    if backend.pg:  # the counts are in the shared database, where every web server sees them
        assert backend.pg.sql("SELECT outcome, COUNT(*) FROM af_login_attempts GROUP BY outcome") == [("failed", 5)]


def test_asked_about_uses_the_leaders_own_words():
    from actions.handoff import asked_about, wait_text
    from tests.domain_helpers import DOMAIN

    tracker = SimpleNamespace(
        get_slot=lambda name: "loen" if name == "topic" else None,
        events=[
            {"event": "session_started"},
            {"event": "user", "text": "hvordan registrerer jeg overarbejde for en lærer",
             "parse_data": {"intent": {"name": "nlu_fallback"}}},
            {"event": "user", "text": "jeg vil tale med et menneske", "parse_data": {"intent": {"name": "human_handoff"}}},
        ],
    )
    assert asked_about(tracker, PROFILE, DOMAIN) == "Emne: løn – hvordan registrerer jeg overarbejde for en lærer"
    assert [wait_text(s, DOMAIN) for s in (30, 60, 180)] == ["30 sekunder", "et minut", "3 minutter"]


# ------------------------------------------------------------------------------ the flow with a fake Rasa API
class FakeRasa:
    def __init__(self) -> None:
        self.appended = []
        self.fail = False

    async def append(self, conversation_id, events, deliver=True):
        from web.rasa_api import RasaApiError

        if self.fail:
            raise RasaApiError("events: ClientConnectorError")
        self.appended.append((conversation_id, events))

    async def tracker(self, conversation_id):
        return {"events": [], "slots": {}}


def test_a_resume_that_failed_is_retried_so_no_leader_stays_paused(tmp_path, store):
    from web.handoff_flow import RESUME_RETRY_SECONDS, Flow

    api = FakeRasa()
    flow = Flow(settings_for(tmp_path), PROFILE, store, api)
    handoff, _ = store.request("c1", leader_name=None, leader_email=None, leader_institution=None,
                               leader_unit=None, topic=None, wait_seconds=5, now=100)

    async def scenario():
        await flow.take_over(handoff.id, "sofie", "Sofie Lund")
        api.fail = True
        with pytest.raises(Exception):
            await flow.hand_back(handoff.id, "sofie", "Sofie Lund")
        api.fail = False
        assert await flow.sweep() == 0  # not retried at once
        with store._db() as db:  # pretend the retry delay has passed
            db.execute("UPDATE handoffs SET ended_at = ended_at - ?", (RESUME_RETRY_SECONDS + 1,))
        assert await flow.sweep() == 1
        assert await flow.sweep() == 0

    asyncio.run(scenario())
    kinds = [[e["event"] for e in events] for _, events in api.appended]
    assert kinds[0] == ["bot"]  # "Nu skriver du med Sofie fra AF"
    assert kinds[-1][:2] == ["resume", "action"] and "AF-assistenten" in api.appended[-1][1][-1]["text"]
    assert store.get(handoff.id).resumed_at is not None


def test_time_out_without_identity_offers_a_case_and_resumes(tmp_path, store):
    from web.handoff_flow import Flow

    api = FakeRasa()
    flow = Flow(settings_for(tmp_path), PROFILE, store, api)
    handoff, _ = store.request("c9", leader_name=None, leader_email=None, leader_institution=None,
                               leader_unit=None, topic=None, wait_seconds=5, now=100)
    assert asyncio.run(flow.sweep()) == 1
    events = api.appended[0][1]
    assert [e["event"] for e in events] == ["resume", "action", "bot"]
    assert "Ingen medarbejder nåede at tage chatten" in events[-1]["text"]
    assert [b["payload"] for b in events[-1]["data"]["buttons"]] == ["/request_help", "/book_meeting"]
    assert store.get(handoff.id).status == "timed_out"
    assert [e.action for e in store.audit_entries(5)] == ["timeout"]


def test_cli_adds_a_supporter_who_can_log_in(tmp_path):
    import os
    import subprocess
    import sys

    path = tmp_path / "supporters.yml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AF_")}
    env.update({"AF_MODE": "development", "AF_VAR_DIR": str(tmp_path), "AF_SUPPORTERS_FILE": str(path),
                "PYTHONPATH": str(PROJECT_ROOT)})
    result = subprocess.run([sys.executable, "-m", "web.support", "add-supporter", "--username", "peter.holm",
                             "--name", "Peter Holm", "--password-stdin"], input="et-langt-kodeord-til-test\n",
                            env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    settings = settings_for(tmp_path, AF_SUPPORTERS_FILE=str(path))
    assert support_auth.authenticate(settings, "peter.holm", "et-langt-kodeord-til-test").name == "Peter Holm"


def test_purge_removes_ended_handoffs_but_never_open_ones(store):
    ended, _ = queue(store, "old", 100)
    store.take(ended.id, "sofie", "Sofie Lund", now=110)
    store.finish(ended.id, "sofie", CLOSED, now=120)
    waiting, _ = queue(store, "still-waiting", 100)
    store.audit("take", "sofie", ended, now=110)
    assert store.purge(before=1000) == 1
    assert store.get(ended.id) is None and store.get(waiting.id) is not None
    assert store.audit_entries() == []
