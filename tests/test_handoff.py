"""Hand-over to a human supporter, end to end on the running stack (tests/conftest.py `stack`).

The leader is a socket.io client (polling transport, identity token in customData,
like the widget); the supporter uses the console's HTTP endpoints with a real login
(the development demo supporter). Each test logs its supporter out again, so
"somebody on duty" is exactly what the test sets up.
"""
from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest
import requests
import socketio

from af_core.handoff_store import HandoffStore
from af_core.settings import DEV_SUPPORTER_PASSWORD, DEV_SUPPORTER_USERNAME

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("AF_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-output" / "screenshots"


def eventually(check: Callable[[], Any], timeout: float = 20, interval: float = 0.3, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what or 'betingelsen'} blev ikke opfyldt inden for {timeout} s (sidst: {last!r})")


class Leader:
    """A socket.io client speaking the widget's protocol."""

    def __init__(self, stack, name: str, email: str, institution: str = "Valby Skole") -> None:
        self.token = stack.token_for(name=name, email=email, institution=institution)
        self.sio = socketio.Client(reconnection=False)
        self.events: "queue.Queue[Dict[str, Any]]" = queue.Queue()
        self.sio.on("bot_uttered", lambda data: self.events.put(data))
        confirmed: "queue.Queue[str]" = queue.Queue()
        self.sio.on("session_confirm", lambda sid: confirmed.put(sid))
        self.sio.connect(stack.rasa_url, transports=["polling"], auth={"token": self.token},
                         socketio_path="/socket.io", wait_timeout=10)
        self.sio.emit("session_request", {"session_id": None, "customData": {"identity_token": self.token}})
        self.session_id = confirmed.get(timeout=15)

    def say(self, text: str) -> None:
        self.sio.emit("user_uttered", {"message": text, "session_id": self.session_id,
                                       "customData": {"identity_token": self.token}})

    def wait_for(self, pattern: str, timeout: float = 30) -> Dict[str, Any]:
        """The next bot message whose text matches ``pattern`` (earlier ones are skipped)."""
        deadline = time.monotonic() + timeout
        seen: List[str] = []
        while time.monotonic() < deadline:
            try:
                message = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            seen.append(message.get("text") or "")
            if re.search(pattern, message.get("text") or ""):
                return message
        raise AssertionError(f"ingen besked som /{pattern}/ inden for {timeout} s; fik {seen}")

    def quiet_for(self, seconds: float) -> List[Dict[str, Any]]:
        got = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                got.append(self.events.get(timeout=max(0.05, deadline - time.monotonic())))
            except queue.Empty:
                pass
        return got

    def close(self) -> None:
        if self.sio.connected:
            self.sio.disconnect()


class Supporter:
    """The supporter console over HTTP, logged in like a browser."""

    def __init__(self, stack) -> None:
        self.base = stack.web_url
        self.http = requests.Session()
        form = self.http.get(f"{self.base}/support/login", timeout=10)
        nonce = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        r = self.http.post(f"{self.base}/support/login", timeout=20, allow_redirects=False, data={
            "username": DEV_SUPPORTER_USERNAME, "password": DEV_SUPPORTER_PASSWORD, "csrf": nonce})
        assert r.status_code == 303, r.text
        page = self.http.get(f"{self.base}/support", timeout=10)
        assert page.status_code == 200
        self.csrf = re.search(r'data-csrf="([^"]+)"', page.text).group(1)

    def get(self, path: str) -> Dict[str, Any]:
        r = self.http.get(f"{self.base}/support/api/{path}", timeout=20)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: Optional[Dict[str, Any]] = None) -> requests.Response:
        return self.http.post(f"{self.base}/support/api/{path}", json=body or {},
                              headers={"X-CSRF-Token": self.csrf}, timeout=30)

    def waiting_for(self, leader_name: str) -> Dict[str, Any]:
        def find():
            return next((h for h in self.get("queue")["handoffs"]
                         if h["leader_name"] == leader_name and h["status"] == "waiting"), None)
        return eventually(find, what=f"{leader_name} i køen")

    def logout(self) -> None:
        self.http.post(f"{self.base}/support/logout", data={"csrf": self.csrf}, timeout=10, allow_redirects=False)


@pytest.fixture
def supporter(stack):
    person = Supporter(stack)
    yield person
    person.logout()


def _unique(prefix: str) -> str:
    return f"{prefix}.{os.getpid()}.{time.monotonic_ns() % 10**9}@buf.kk.dk"


def _paused(stack, sender: str) -> bool:
    return bool(stack.tracker(sender).get("paused"))


# ----------------------------------------------------------------------------------- (1) the whole round
def test_leader_gets_a_person_who_writes_back_then_the_bot_returns(stack, supporter):
    leader = Leader(stack, "Mette Hansen", _unique("mette.hansen"))
    try:
        leader.say("/greet")
        leader.wait_for(r"Hej Mette")
        leader.say("hvornår bliver overarbejde udbetalt med lønnen")
        leader.quiet_for(2)
        leader.say("jeg vil gerne tale med en medarbejder")  # typed: payloads are only buttons
        queued = leader.wait_for(r"i kø")
        assert re.search(r"nummer \d+ i køen", queued["text"]), queued
        eventually(lambda: _paused(stack, leader.session_id), what="samtalen på pause")

        # Paused: the leader's message is stored for the supporter, and the bot stays quiet.
        leader.say("Det drejer sig om en lærer på Valby Skole")
        assert leader.quiet_for(3) == []

        waiting = supporter.waiting_for("Mette Hansen")
        assert waiting["leader_institution"] == "Valby Skole"
        assert "overarbejde" in waiting["topic"]
        detail = supporter.get(f"handoffs/{waiting['id']}")
        texts = [e["text"] for e in detail["transcript"]]
        assert "Det drejer sig om en lærer på Valby Skole" in texts and any("i kø" in t for t in texts)

        assert supporter.post(f"handoffs/{waiting['id']}/take").status_code == 200
        leader.wait_for(r"Nu skriver du med Sofie fra AF")
        # nobody else can take it now
        assert supporter.post(f"handoffs/{waiting['id']}/take").status_code == 409

        assert supporter.post(f"handoffs/{waiting['id']}/messages",
                              {"text": "Hej Mette, det kigger jeg på nu."}).status_code == 200
        from_person = leader.wait_for(r"Hej Mette, det kigger jeg på nu")
        assert from_person["text"].startswith("Sofie fra AF: ")
        assert from_person["sender_name"] == "Sofie Lund" and from_person["sender_role"] == "af_supporter"

        leader.say("Tak! Han har 12 timers overarbejde i november.")
        eventually(lambda: any("12 timers overarbejde" in e["text"] and e["who"] == "leader"
                               for e in supporter.get(f"handoffs/{waiting['id']}")["transcript"]),
                   what="lederens svar i konsollen")
        assert leader.quiet_for(1) == []  # still no bot answer while the person has the chat

        assert supporter.post(f"handoffs/{waiting['id']}/return").status_code == 200
        back = leader.wait_for(r"AF-assistenten, igen")
        assert back.get("quick_replies"), "menuen skal vises, når assistenten er tilbage"
        eventually(lambda: not _paused(stack, leader.session_id), what="samtalen genoptaget")

        leader.say("/greet")
        leader.wait_for(r"Hej Mette")

        audit = supporter.get("audit")["entries"]
        taken = [e for e in audit if e["action"] == "take" and e["conversation_id"] == leader.session_id]
        assert taken and taken[0]["supporter"] == DEV_SUPPORTER_USERNAME and taken[0]["at"] > time.time() - 120
        assert any(e["action"] == "return" and e["conversation_id"] == leader.session_id for e in audit)
    finally:
        leader.close()


def test_supporter_closes_with_a_case_holding_the_transcript_without_cpr(stack, supporter):
    email = _unique("jonas.nielsen")
    leader = Leader(stack, "Jonas Nielsen", email, "Børnehuset Mælkebøtten")
    try:
        leader.say("jeg vil gerne tale med en medarbejder")  # typed: payloads are only buttons
        leader.wait_for(r"i kø")
        leader.say("Det gælder barsel for medarbejderen med cpr 010203-1234")
        waiting = supporter.waiting_for("Jonas Nielsen")
        assert supporter.post(f"handoffs/{waiting['id']}/take").status_code == 200
        closed = supporter.post(f"handoffs/{waiting['id']}/close", {"create_case": True, "note": "Barsel, ring op"})
        assert closed.status_code == 200, closed.text
        reference = closed.json()["case_reference"]
        assert reference
        leader.wait_for(r"har afsluttet samtalen.*" + re.escape(reference))
        eventually(lambda: not _paused(stack, leader.session_id), what="samtalen genoptaget")
        case = eventually(lambda: _cases_for(stack, email), timeout=30, what="sagen i ServiceNow")[0]
        assert "barsel for medarbejderen" in case["description"]
        assert "010203-1234" not in case["description"] and "CPR-nummer fjernet" in case["description"]
    finally:
        leader.close()


def _cases_for(stack, email: str) -> List[Dict[str, Any]]:
    settings = stack.settings
    r = requests.get(f"{stack.emulator_url}/api/now/table/{settings.servicenow_table}",
                     params={"sysparm_query": f"u_requester_email={email}", "sysparm_limit": "10"},
                     auth=(settings.servicenow_username, settings.servicenow_password), timeout=10)
    r.raise_for_status()
    return r.json()["result"]


# ----------------------------------------------------------------------------------- (2) nobody comes
def test_nobody_takes_the_chat_in_time_the_bot_returns_and_a_case_exists(stack, supporter):
    email = _unique("aisha.karimi")
    leader = Leader(stack, "Aisha Karimi", email, "Sundby Skole")
    try:
        leader.say("jeg vil gerne tale med en medarbejder")  # typed: payloads are only buttons
        queued = leader.wait_for(r"i kø")
        assert "3 minutter" in queued["text"]  # AF_HANDOFF_WAIT_SECONDS default, told honestly
        leader.say("Det handler om budgettet for næste år")
        waiting = supporter.waiting_for("Aisha Karimi")
        eventually(lambda: any("budgettet" in e["text"] for e in supporter.get(f"handoffs/{waiting['id']}")["transcript"]),
                   what="lederens besked i samtalen")
        # Let the waiting time pass: move this chat's deadline (set from AF_HANDOFF_WAIT_SECONDS) to now.
        HandoffStore(stack.settings.handoff_db_path).set_deadline(waiting["id"], time.time())
        back = leader.wait_for(r"Ingen medarbejder nåede at tage chatten", timeout=20)
        assert re.search(r"henvendelse til AF \((AFH\d+|AF-[0-9A-Z]{5})\)", back["text"]), back
        assert any(b["payload"] == "/book_meeting" for b in back.get("quick_replies") or [])
        eventually(lambda: not _paused(stack, leader.session_id), what="samtalen genoptaget")
        case = eventually(lambda: _cases_for(stack, email), timeout=30, what="sagen i ServiceNow")[0]
        assert "Ønsker at blive kontaktet" in case["short_description"]
        assert "budgettet for næste år" in case["description"]
        # the supporter can no longer take it
        assert supporter.post(f"handoffs/{waiting['id']}/take").status_code == 409
        leader.say("/greet")
        leader.wait_for(r"Hej Aisha")
    finally:
        leader.close()


def test_nobody_on_duty_the_bot_says_so_and_offers_a_case_or_meeting(stack):
    leader = Leader(stack, "Mette Hansen", _unique("mette.hansen"))
    try:
        # No supporter has the console open (every test logs its supporter out).
        HandoffStore(stack.settings.handoff_db_path)  # the store exists
        leader.say("jeg vil gerne tale med en medarbejder")  # typed: payloads are only buttons
        offer = leader.wait_for(r"ingen medarbejder i chatten", timeout=30)
        payloads = [b["payload"] for b in offer.get("quick_replies") or []]
        assert payloads == ["/request_help", "/book_meeting"]
        assert not _paused(stack, leader.session_id)
    finally:
        leader.close()


# ----------------------------------------------------------------------------------- (3) no session, no answer
def console_routes() -> List[tuple]:
    from af_core.settings import load_settings
    from web.app import create_app

    app = create_app(load_settings({"AF_MODE": "development", "AF_VAR_DIR": "/tmp/af-handoff-routes"}))
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if route.method in ("GET", "POST") and path.startswith("/support") and path != "/support/login":
            found.add((route.method, path.replace("{handoff_id}", "1")))
    return sorted(found)


def test_every_console_endpoint_refuses_without_a_session(stack):
    routes = console_routes()
    assert len(routes) >= 10, routes
    forged = {"af_support_session": "abc.def"}
    for cookies in ({}, forged):
        for method, path in routes:
            r = requests.request(method, stack.web_url + path, cookies=cookies, allow_redirects=False, timeout=10,
                                 json={"text": "hej"} if method == "POST" else None)
            if method == "GET" and not path.startswith("/support/api/"):
                assert r.status_code == 303 and r.headers["Location"] == "/support/login", (method, path)
            else:
                assert r.status_code == 401, (method, path, r.status_code)
            assert "Sofie" not in r.text and "leader_name" not in r.text


# ----------------------------------------------------------------------------------- (4) in a real browser
def test_console_in_a_browser_takes_over_and_the_leaders_page_shows_the_message(stack):
    node = shutil.which("node")
    if not node or not Path(CHROMIUM).is_file() or not (ROOT / "node_modules" / "playwright-core").is_dir():
        pytest.fail("Browsertesten mangler node, chromium eller node_modules/playwright-core (npm ci)")
    env = dict(os.environ, AF_TEST_WEB_URL=stack.web_url, AF_TEST_SCREENSHOT_DIR=str(SCREENSHOTS),
               AF_TEST_CHROMIUM=CHROMIUM, AF_TEST_SUPPORTER=DEV_SUPPORTER_USERNAME,
               AF_TEST_SUPPORTER_PASSWORD=DEV_SUPPORTER_PASSWORD)
    result = subprocess.run([node, "tests/browser/handoff.spec.mjs"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    print(result.stdout)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert (SCREENSHOTS / "handoff-leder.png").is_file() and (SCREENSHOTS / "handoff-konsol.png").is_file()
