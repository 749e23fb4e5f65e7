"""The supporter console's doors (security review): login throttling that an attacker can neither
outrun nor turn against a real supporter, single-use login forms, a cap on password hashing,
transcripts only for waiting chats and the supporter's own (every read audited), removed
supporters lose their sessions at once, body and request limits, one open hand-over per leader,
and a time-out never makes a second case for the same request.

All in-process (aiohttp test server, fake Rasa API, fake case service); no running stack. Each
test runs on both store backends: the SQLite file and PostgreSQL (the scaled deployment,
tests/pg.py; skipped with the reason when PostgreSQL is not there). Across processes:
tests/test_postgres_stores.py."""
from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from types import SimpleNamespace

import pytest
from aiohttp.test_utils import TestClient, TestServer
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from af_core import case_service
from af_core.handoff_store import ACTIVE, CLOSED, WAITING, HandoffStore, get_store
from af_core.profile import load_profile
from af_core.settings import DEV_SUPPORTER_PASSWORD, DEV_SUPPORTER_USERNAME, PROJECT_ROOT, load_settings
from tests.pg import backend, pg, pg_database  # noqa: F401 - fixtures
from web import support, support_auth

PROFILE = load_profile(PROJECT_ROOT / "profiles" / "buf")
SOFIE, SOFIE_PASSWORD = "sofie.lund", "sofies-rigtige-kodeord"  # pragma: allowlist secret (test-only)
PETER, PETER_PASSWORD = "peter.holm", "peters-rigtige-kodeord"  # pragma: allowlist secret (test-only)
SECRET_WORDS = "min medarbejder har kræft"


def settings_for(tmp_path, **extra):
    env = {"AF_MODE": "development", "AF_VAR_DIR": str(tmp_path / "var"), "AF_RASA_URL": "http://127.0.0.1:9",
           "AF_SUPPORTERS_FILE": str(tmp_path / "supporters.yml"),
           # the test client is the reverse proxy; X-Forwarded-For names the browser
           "AF_WEB_TRUSTED_PROXIES": "127.0.0.1"}
    env.update(extra)
    return load_settings(env)


@pytest.fixture
def settings(tmp_path, backend):
    path = tmp_path / "supporters.yml"
    support_auth.add_supporter(path, SOFIE, "Sofie Lund", SOFIE_PASSWORD)
    support_auth.add_supporter(path, PETER, "Peter Holm", PETER_PASSWORD)
    return settings_for(tmp_path, **backend.env)


@pytest.fixture
def new_store(tmp_path, backend):
    """A hand-over store on the test's backend (not the one the console app uses)."""
    return lambda: HandoffStore.for_settings(settings_for(tmp_path, **backend.env))


def stored_bytes(settings, backend) -> bytes:
    """Everything the hand-over store holds, as bytes (to look for text that must not be there)."""
    if backend.pg:
        rows = [backend.pg.sql(f"SELECT {table}::text FROM {table}") for table in backend.pg.tables()]
        return "\n".join(str(row[0]) for table_rows in rows for row in table_rows).encode()
    return b"".join(p.read_bytes() for p in settings.handoff_db_path.parent.glob("handoff.sqlite3*"))


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


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
        return {"events": [{"event": "user", "text": SECRET_WORDS, "timestamp": 1}], "slots": {}}


def console(settings, scenario, clock=None):
    """Run ``scenario(client, app)`` against the web app with a fake Rasa API."""
    from web.app import create_app

    async def main():
        app = create_app(settings)
        if clock is not None:
            app[support.CLOCK] = clock
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            app[support.FLOW].api = FakeRasa()
            return await scenario(client, app)
        finally:
            await client.close()

    return asyncio.run(main())


def from_ip(ip):
    return {"X-Forwarded-For": ip}


async def post_login(client, settings, ip, username, password, nonce=None, cookies=None, now=None):
    """A login POST with a fresh form (an attacker can fetch as many forms as they like)."""
    if nonce is None:
        cookie, nonce = support_auth.login_nonce(settings, now=now) if now else support_auth.login_nonce(settings)
        cookies = {**(cookies or {}), support.LOGIN_COOKIE: cookie}
    return await client.post("/support/login", data={"username": username, "password": password, "csrf": nonce},
                             headers=from_ip(ip), cookies=cookies, allow_redirects=False)


async def login_from_form(client, ip, username, password):
    page = await client.get("/support/login", headers=from_ip(ip))
    nonce = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
    return await client.post("/support/login", data={"username": username, "password": password, "csrf": nonce},
                             headers=from_ip(ip), allow_redirects=False), nonce


def count_hashes(monkeypatch):
    calls = []
    real = support_auth.verify_password

    def counting(password, stored):
        calls.append(password)
        return real(password, stored)

    monkeypatch.setattr(support_auth, "verify_password", counting)
    return calls


# ------------------------------------------------------------------------------ 1. login throttling
def test_parallel_wrong_guesses_are_refused_before_hashing_and_the_real_supporter_still_gets_in(settings, monkeypatch):
    hashes = count_hashes(monkeypatch)

    async def scenario(client, app):
        guesses = await asyncio.gather(*[post_login(client, settings, "10.6.6.6", SOFIE, f"gæt-nummer-{i}")
                                         for i in range(60)])
        statuses = Counter(r.status for r in guesses)
        texts = [await r.text() for r in guesses if r.status == 429]
        hashed = len(hashes)
        real = await post_login(client, settings, "10.0.0.7", SOFIE, SOFIE_PASSWORD)
        return statuses, texts, hashed, real.status

    statuses, texts, hashed, real = console(settings, scenario)
    assert hashed <= 5, f"{hashed} of 60 parallel guesses were hashed"
    assert set(statuses) <= {401, 429, 503} and statuses[401] == hashed
    assert statuses[429] >= 50  # the rest never reached the hash (503: no free hashing slot, also no hash)
    assert all("For mange forkerte forsøg" in text for text in texts)
    assert real == 303, "the real supporter on her own computer is not locked out"


def test_a_guess_from_many_addresses_only_briefly_blocks_unknown_browsers(settings):
    clock = Clock()

    async def scenario(client, app):
        # Sofie logged in on her own computer before: the browser remembers it (signed cookie).
        first = await post_login(client, settings, "10.0.0.7", SOFIE, SOFIE_PASSWORD)
        assert first.status == 303
        device = client.session.cookie_jar.filter_cookies(client.make_url("/support/login"))[support.DEVICE_COOKIE].value
        client.session.cookie_jar.clear()
        wrong = [(await post_login(client, settings, f"10.1.0.{i}", SOFIE, "forkert-gæt")).status for i in range(15)]
        stranger = await post_login(client, settings, "10.2.0.1", SOFIE, SOFIE_PASSWORD)
        own = await post_login(client, settings, "10.0.0.7", SOFIE, SOFIE_PASSWORD,
                               cookies={support.DEVICE_COOKIE: device})
        client.session.cookie_jar.clear()
        clock.now += support.LOGIN_LIMITS.window_seconds + 1
        later = await post_login(client, settings, "10.2.0.1", SOFIE, SOFIE_PASSWORD, now=clock.now)
        return wrong, stranger.status, own.status, later.status

    wrong, stranger, own, later = console(settings, scenario, clock)
    assert wrong.count(401) == support.LOGIN_LIMITS.per_user and set(wrong[support.LOGIN_LIMITS.per_user:]) == {429}
    assert stranger == 429  # a browser that never logged in as Sofie waits while the guessing goes on
    assert own == 303  # her own browser is never locked out by others' guesses
    assert later == 303  # and the block ends by itself


def test_too_many_wrong_passwords_from_one_address_block_that_address_only(settings):
    async def scenario(client, app):
        statuses = [(await post_login(client, settings, "10.3.0.1", SOFIE, "forkert")).status for _ in range(6)]
        blocked = await post_login(client, settings, "10.3.0.1", SOFIE, SOFIE_PASSWORD)
        other = await post_login(client, settings, "10.3.0.2", SOFIE, SOFIE_PASSWORD)
        return statuses, blocked.status, blocked.headers.get("Retry-After"), other.status

    statuses, blocked, retry_after, other = console(settings, scenario)
    assert statuses == [401] * 5 + [429] and blocked == 429
    assert retry_after is not None and 0 < int(retry_after) <= support.LOGIN_LIMITS.window_seconds
    assert other == 303


def test_writing_x_forwarded_for_does_not_give_an_attacker_new_addresses(settings, tmp_path, backend):
    async def guesses(client, forwarded):
        statuses = []
        for i in range(6):
            cookie, nonce = support_auth.login_nonce(settings)
            r = await client.post("/support/login", data={"username": SOFIE, "password": "forkert", "csrf": nonce},
                                  headers={"X-Forwarded-For": forwarded(i)}, cookies={support.LOGIN_COOKIE: cookie},
                                  allow_redirects=False)
            statuses.append(r.status)
        return statuses

    # no trusted proxy: the header is ignored, the peer's address counts
    direct = settings_for(tmp_path, AF_WEB_TRUSTED_PROXIES="", **backend.env)
    assert console(direct, lambda client, app: guesses(client, lambda i: f"10.66.0.{i}"))[-1] == 429
    # behind the proxy: only the address the proxy itself saw counts, not what the browser wrote before it
    assert console(settings, lambda client, app: guesses(client, lambda i: f"10.66.0.{i}, 10.3.3.3"))[-1] == 429


def test_a_login_form_can_be_used_once_and_expires(settings):
    clock = Clock()

    async def scenario(client, app):
        first, nonce = await login_from_form(client, "10.4.0.1", SOFIE, "forkert")
        again = await client.post("/support/login", data={"username": SOFIE, "password": SOFIE_PASSWORD,
                                                          "csrf": nonce}, headers=from_ip("10.4.0.1"),
                                  allow_redirects=False)
        page = await client.get("/support/login", headers=from_ip("10.4.0.1"))
        old_nonce = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
        clock.now += support_auth.NONCE_SECONDS + 1
        expired = await client.post("/support/login", data={"username": SOFIE, "password": SOFIE_PASSWORD,
                                                            "csrf": old_nonce}, headers=from_ip("10.4.0.1"),
                                    allow_redirects=False)
        return first.status, again.status, await again.text(), expired.status

    first, again, text, expired = console(settings, scenario, clock)
    assert first == 401
    assert again == 403 and "Prøv igen" in text  # a reused form is refused, even with the right password
    assert expired == 403


def test_password_hashing_is_capped_and_the_rest_are_told_to_wait(settings, monkeypatch):
    gate = threading.Event()
    inside = []
    most = []
    real = support_auth.verify_password

    def slow(password, stored):
        inside.append(1)
        most.append(len(inside))
        gate.wait(5)
        inside.pop()
        return real(password, stored)

    monkeypatch.setattr(support_auth, "verify_password", slow)
    n = support.MAX_CONCURRENT_HASHES + 4

    async def scenario(client, app):
        tasks = [asyncio.create_task(post_login(client, settings, f"10.5.0.{i}", f"bruger{i}", "forkert"))
                 for i in range(n)]
        for _ in range(200):  # until the hashing slots are full and the rest have their answer
            if len(inside) >= support.MAX_CONCURRENT_HASHES and sum(t.done() for t in tasks) >= n - len(inside):
                break
            await asyncio.sleep(0.01)
        gate.set()
        responses = await asyncio.gather(*tasks)
        return [(r.status, await r.text()) for r in responses]

    results = console(settings, scenario)
    assert max(most) <= support.MAX_CONCURRENT_HASHES
    busy = [text for status, text in results if status == 503]
    assert len(busy) == n - support.MAX_CONCURRENT_HASHES
    assert all("travlt" in text for text in busy)


# ------------------------------------------------------------------------------ 2. who may read a transcript
def _request(store, conversation, email, now):
    handoff, _ = store.request(conversation, leader_name="Mette Hansen", leader_email=email,
                               leader_institution="Valby Skole", leader_unit="af-syd", topic="løn",
                               wait_seconds=600, now=now)
    return handoff


async def _session(client, username=DEV_SUPPORTER_USERNAME, password=DEV_SUPPORTER_PASSWORD, ip="10.9.0.1"):
    response, _ = await login_from_form(client, ip, username, password)
    assert response.status == 303
    page = await client.get("/support", headers=from_ip(ip))
    return re.search(r'data-csrf="([^"]+)"', await page.text()).group(1)


def test_a_supporter_reads_only_waiting_chats_and_her_own_and_every_read_is_audited(settings, backend):
    store = get_store(settings)
    now = time.time()
    waiting = _request(store, "c-waiting", "a@buf.kk.dk", now)
    mine = _request(store, "c-mine", "b@buf.kk.dk", now)
    store.take(mine.id, DEV_SUPPORTER_USERNAME, "Sofie Lund")
    peters = _request(store, "c-peter", "c@buf.kk.dk", now)
    store.take(peters.id, PETER, "Peter Holm")
    closed = _request(store, "c-closed", "d@buf.kk.dk", now)
    store.take(closed.id, PETER, "Peter Holm")
    store.finish(closed.id, PETER, CLOSED)

    async def scenario(client, app):
        await _session(client)
        got = {}
        for name, handoff in (("waiting", waiting), ("mine", mine), ("peters", peters), ("closed", closed)):
            response = await client.get(f"/support/api/handoffs/{handoff.id}", headers=from_ip("10.9.0.1"))
            got[name] = (response.status, await response.json())
        await client.get(f"/support/api/handoffs/{waiting.id}", headers=from_ip("10.9.0.1"))
        return got

    got = console(settings, scenario)
    assert got["waiting"][0] == 200 and got["mine"][0] == 200
    assert SECRET_WORDS in got["waiting"][1]["transcript"][0]["text"]
    for name in ("peters", "closed"):
        status, body = got[name]
        assert status == 403 and "transcript" not in body and "Du kan kun" in body["error"]
    reads = {(r.supporter, r.handoff_id): r for r in store.transcript_reads()}
    assert set(reads) == {(DEV_SUPPORTER_USERNAME, waiting.id), (DEV_SUPPORTER_USERNAME, mine.id)}
    assert reads[(DEV_SUPPORTER_USERNAME, waiting.id)].reads == 2
    assert reads[(DEV_SUPPORTER_USERNAME, mine.id)].conversation_id == "c-mine"
    data = stored_bytes(settings, backend)
    assert b"c-mine" in data  # the store was read where the console keeps it ...
    assert SECRET_WORDS.encode() not in data, "the transcript itself is never stored in the audit"


def test_a_removed_supporter_loses_her_session_at_once(settings):
    async def scenario(client, app):
        await _session(client, PETER, PETER_PASSWORD)
        before = (await client.get("/support/api/queue", headers=from_ip("10.9.0.1"))).status
        support_auth.write_supporters(settings.supporters_file,
                                      [s for s in support_auth.load_supporters(settings.supporters_file).values()
                                       if s.username != PETER])
        after = await client.get("/support/api/queue", headers=from_ip("10.9.0.1"))
        page = await client.get("/support", headers=from_ip("10.9.0.1"), allow_redirects=False)
        return before, after.status, page.status

    before, after, page = console(settings, scenario)
    assert (before, after, page) == (200, 401, 303)
    assert PETER not in get_store(settings).present_supporters(3600)


# ------------------------------------------------------------------------------ 3. flood limits
def test_a_large_body_gets_a_clear_413(settings):
    async def scenario(client, app):
        login = await client.post("/support/login", data={"username": "x" * 100_000, "password": "y"},
                                  headers=from_ip("10.8.0.1"))
        csrf = await _session(client, ip="10.8.0.2")
        message = await client.post("/support/api/handoffs/1/messages", json={"text": "x" * 100_000},
                                    headers={"X-CSRF-Token": csrf, **from_ip("10.8.0.2")})
        return login.status, await login.text(), message.status, await message.json()

    login_status, login_text, message_status, message = console(settings, scenario)
    assert login_status == 413 and "for stor" in login_text
    assert message_status == 413 and "for stor" in message["error"]


def test_one_client_cannot_flood_the_console(settings):
    async def scenario(client, app):
        statuses = [(await client.get("/support/login", headers=from_ip("10.7.0.1"))).status for _ in range(300)]
        refused = await client.get("/support/login", headers=from_ip("10.7.0.1"))
        other = await client.get("/support/login", headers=from_ip("10.7.0.2"))
        return statuses, refused.status, await refused.text(), other.status

    statuses, refused, text, other = console(settings, scenario)
    assert statuses.count(429) > 100 and refused == 429 and "Vent" in text
    assert other == 200


def test_one_open_handoff_per_leader(new_store):
    store = new_store()
    first = _request(store, "c1", "mette.hansen@buf.kk.dk", 100)
    again, created = store.request("c2", leader_name="Mette Hansen", leader_email="Mette.Hansen@BUF.kk.dk",
                                   leader_institution=None, leader_unit=None, topic=None, wait_seconds=60, now=101)
    assert not created and again.id == first.id and again.conversation_id == "c1"
    other = _request(store, "c3", "peter@buf.kk.dk", 102)
    assert other.id != first.id
    store.take(first.id, "sofie", "Sofie Lund")
    store.finish(first.id, "sofie", CLOSED)
    assert _request(store, "c2", "mette.hansen@buf.kk.dk", 200).id not in (first.id, other.id)
    anonymous = [store.request(f"anon{i}", leader_name=None, leader_email=None, leader_institution=None,
                               leader_unit=None, topic=None, wait_seconds=60)[1] for i in range(2)]
    assert anonymous == [True, True]  # without a verified identity: one per conversation


def test_asking_again_in_another_window_does_not_queue_twice(tmp_path, monkeypatch, new_store):
    from actions import handoff as handoff_action
    from tests.domain_helpers import DOMAIN, all_shown

    store = new_store()
    first = _request(store, "c1", "mette.hansen@buf.kk.dk", time.time())
    monkeypatch.setattr(handoff_action, "get_settings", lambda: settings_for(tmp_path))
    monkeypatch.setattr(handoff_action, "get_profile", lambda: PROFILE)
    monkeypatch.setattr(handoff_action, "get_store", lambda settings: store)
    monkeypatch.setattr(handoff_action, "duty_status", lambda *a, **k: SimpleNamespace(on_duty=True, reason="ok"))
    slots = {"leader_name": "Mette Hansen", "leader_email": "mette.hansen@buf.kk.dk"}
    latest = {"text": "jeg vil tale med et menneske", "intent": {"name": "human_handoff", "confidence": 0.99},
              "entities": []}
    tracker = Tracker("c2", slots, latest, [], False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    events = asyncio.run(handoff_action.ActionHumanHandoff().run(dispatcher, tracker, DOMAIN))
    assert [m["response"] for m in dispatcher.messages] == ["utter_handoff_elsewhere_queued"]
    text = all_shown(dispatcher.messages)
    assert "allerede i kø" in text and "andet chatvindue" in text
    assert not any(e.get("event") == "pause" for e in events)  # this window is not left paused
    assert [h.id for h in store.list_open()] == [first.id]


class FakeCases:
    def __init__(self) -> None:
        self.requests = []
        self.open = []
        self.gate = None

    async def submit(self, request):
        self.requests.append(request)
        if self.gate is not None:
            await self.gate.wait()
        number = f"AFH{len(self.requests):07d}"
        self.open.append(SimpleNamespace(number=number))
        return case_service.SubmitResult("created", number, number, "AF Syd", "AF Syd", "i dag")

    async def list_open(self, email, limit=5):
        return list(self.open)


@pytest.fixture
def cases(monkeypatch):
    fake = FakeCases()
    monkeypatch.setattr(case_service, "submit_case", fake.submit)
    monkeypatch.setattr(case_service, "list_open_cases", fake.list_open)
    return fake


def test_asking_again_after_a_time_out_reuses_the_open_case(tmp_path, cases, new_store):
    from web.handoff_flow import Flow

    store = new_store()
    api = FakeRasa()
    flow = Flow(settings_for(tmp_path), PROFILE, store, api)

    async def scenario():
        for conversation in ("c1", "c1", "c2"):
            _request(store, conversation, "mette.hansen@buf.kk.dk", time.time() - 700)
            assert await flow.sweep() == 1

    asyncio.run(scenario())
    assert len(cases.requests) == 1, "one case for the leader's open request, not one per time-out"
    said = [events[-1]["text"] for _, events in api.appended]
    assert all("AFH0000001" in text for text in said)


def test_a_time_out_retried_while_the_first_try_is_slow_makes_the_same_case(tmp_path, cases, new_store):
    from web.handoff_flow import RESUME_RETRY_SECONDS, Flow

    store = new_store()
    first, second = (Flow(settings_for(tmp_path), PROFILE, store, FakeRasa()) for _ in range(2))  # two web servers
    handoff = _request(store, "c1", "mette.hansen@buf.kk.dk", time.time() - 700)

    async def scenario():
        cases.gate = asyncio.Event()
        slow = asyncio.create_task(first.sweep())
        while not cases.requests:
            await asyncio.sleep(0.01)
        with store._db() as db:  # the first try has taken longer than the retry delay
            db.execute("UPDATE handoffs SET ended_at = ended_at - ?", (RESUME_RETRY_SECONDS + 1,))
        retry = asyncio.create_task(second.sweep())
        await asyncio.sleep(0.05)
        cases.gate.set()
        await asyncio.gather(slow, retry)

    asyncio.run(scenario())
    ids = {request.correlation_id for request in cases.requests}
    assert len(ids) == 1 and re.fullmatch(r"[0-9a-f]{32}", ids.pop()), \
        "both tries carry the hand-over's own correlation id, so ServiceNow and the outbox make one case"
    assert store.get(handoff.id).status == "timed_out"
