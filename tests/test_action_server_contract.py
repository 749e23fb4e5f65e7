"""Contract: the action server on a supported Python answers Rasa 3.6 exactly as today's does.

Two action servers run side by side on free loopback ports:

- today's: ``scripts/action_server.py`` in .venv (Python 3.10, rasa-sdk 3.6.2), and
- the app runtime: ``scripts/action_server_app.py`` on Python 3.12 with the newest rasa-sdk,
  from locks/app-py312.txt installed with hash checking (scripts/app_venv.sh, cached outside the repo).

This test process is Rasa 3.6 itself: each call is made by Rasa's own ``RemoteAction.run`` (the
request JSON, the response schema check and the parsing of the events are Rasa's code), with a
tracker and the project's domain as the Rasa server has them. Both servers must return the same
events and messages. Skipped only when no Python 3.12 is installed.
"""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
import requests

from tests.pg import pg, pg_database  # noqa: E402,F401 - fixtures

ROOT = Path(__file__).resolve().parent.parent
LEADER = {"name": "Hanne Holm", "email": "hanne.holm@kk.dk", "institution": "Valby Skole"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def app_python() -> str:
    result = subprocess.run([str(ROOT / "scripts" / "app_venv.sh")], capture_output=True, text=True, timeout=600)
    if result.returncode == 3:
        pytest.skip("Python 3.12 findes ikke på maskinen (scripts/find_python_app.sh): " + result.stderr.strip())
    assert result.returncode == 0, "app-miljøet kunne ikke laves:\n" + result.stderr
    return str(Path(result.stdout.strip().splitlines()[-1]) / "bin" / "python")


def _server_env(**extra: str) -> Dict[str, str]:
    """The environment of both servers (and of the token the test signs): development mode."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), AF_MODE="development", AF_BIND_HOST="127.0.0.1", **extra)
    env.pop("AF_OUTBOX_PATH", None)
    return env


def _start(python: str, script: str, tmp: Path) -> tuple:
    port = _free_port()
    env = _server_env(AF_ACTIONS_PORT=str(port), AF_LOG_DIR=str(tmp / "logs"), AF_VAR_DIR=str(tmp / "var"))
    log = open(tmp / "server.out", "w")
    proc = subprocess.Popen([python, str(ROOT / "scripts" / script)], cwd=str(ROOT), env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                return proc, f"http://127.0.0.1:{port}/webhook"
        except requests.RequestException:
            time.sleep(0.3)
    proc.kill()
    raise AssertionError(f"{script} med {python} startede ikke:\n" + (tmp / "server.out").read_text())


@pytest.fixture(scope="module")
def servers(app_python: str, tmp_path_factory) -> Dict[str, str]:
    started = {
        "rasa-sdk 3.6 (Python 3.10)": _start(sys.executable, "action_server.py", tmp_path_factory.mktemp("py310")),
        "app (Python 3.12)": _start(app_python, "action_server_app.py", tmp_path_factory.mktemp("py312")),
    }
    yield {name: url for name, (_, url) in started.items()}
    for proc, _ in started.values():
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def rasa_side():
    """Rasa 3.6's own pieces: the domain as the server loads it, and its response generator."""
    from rasa.core.nlg import TemplatedNaturalLanguageGenerator
    from rasa.shared.core.domain import Domain

    domain = Domain.load(str(ROOT / "domain"))
    return domain, TemplatedNaturalLanguageGenerator(domain.responses)


def _token() -> str:
    from af_core.identity import issue_token
    from af_core.settings import load_settings

    return issue_token(LEADER, load_settings(_server_env()))


def _call(url: str, action: str, events: List[Any], rasa_side) -> List[Dict[str, Any]]:
    """Run ``action`` the way the Rasa 3.6 server does, return the events as Rasa stores them."""
    from rasa.core.actions.action import RemoteAction
    from rasa.core.channels.channel import CollectingOutputChannel
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    domain, nlg = rasa_side
    tracker = DialogueStateTracker.from_events("kontrakt-test", events, slots=domain.slots)
    result = asyncio.run(RemoteAction(action, EndpointConfig(url)).run(CollectingOutputChannel(), nlg, tracker, domain))
    out = []
    for event in result:
        data = event.as_dict()
        data.pop("timestamp", None)
        out.append(data)
    return out


def _both(servers, action, events, rasa_side) -> List[Dict[str, Any]]:
    answers = {name: _call(url, action, events, rasa_side) for name, url in servers.items()}
    old, new = answers.values()
    assert new == old, f"{action}: de to action-servere svarer forskelligt"
    return new


def _session_events():
    from rasa.shared.core.events import ActionExecuted, SlotSet

    return [ActionExecuted("action_session_start"),
            SlotSet("session_started_metadata", {"identity_token": _token()})]


def test_session_start_sets_the_verified_leader_on_both_runtimes(servers, rasa_side):
    events = _both(servers, "action_session_start", _session_events(), rasa_side)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "session_started" and kinds[-1] == "action"
    assert events[-1]["name"] == "action_listen"
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["leader_email"] == LEADER["email"]
    assert slots["leader_name"] == LEADER["name"]
    assert slots["af_phone"]


def test_request_form_validation_and_question_on_both_runtimes(servers, rasa_side):
    from rasa.shared.core.events import ActionExecuted, ActiveLoop, SessionStarted, SlotSet, UserUttered

    domain, _ = rasa_side
    session = [SessionStarted(), SlotSet("leader_email", LEADER["email"]), SlotSet("leader_name", LEADER["name"]),
               ActionExecuted("action_listen")]
    text = "Jeg vil gerne bestille hjælp til en ansættelse af en ny pædagog"
    events = session + [
        UserUttered(text, intent={"name": "request_help", "confidence": 0.97},
                    parse_data={"intent": {"name": "request_help", "confidence": 0.97}, "entities": [], "text": text}),
        ActionExecuted("request_form"),
        ActiveLoop("request_form"),
    ]
    validated = _both(servers, "validate_request_form", events, rasa_side)
    slots = {e["name"]: e["value"] for e in validated if e["event"] == "slot"}
    assert "requested_slot" in slots, validated
    asked = slots["requested_slot"]
    assert asked in domain.required_slots_for_form("request_form"), validated

    # The form's next question (a custom action: action_ask_<slot>), as Rasa renders it.
    question = f"action_ask_{asked}"
    assert question in domain.user_actions, question
    follow = events + [SlotSet(k, v) for k, v in slots.items()]
    bot = _both(servers, question, follow, rasa_side)
    assert any(e["event"] == "bot" and (e.get("text") or e.get("data", {}).get("buttons")) for e in bot), bot


def test_unknown_action_is_refused_alike(servers):
    """Rasa 3.6 turns a 404 from the action server into an error; both runtimes answer 404."""
    body = {"next_action": "action_findes_ikke", "sender_id": "x", "version": "3.6.21",
            "tracker": {"sender_id": "x", "slots": {}, "latest_message": {}, "events": [], "paused": False,
                        "followup_action": None, "active_loop": {}, "latest_action_name": None},
            "domain": {}}
    codes = {name: requests.post(url, json=body, timeout=10).status_code for name, url in servers.items()}
    assert set(codes.values()) == {404}, codes


def test_web_server_and_outbox_run_on_the_app_runtime(app_python, tmp_path):
    """The other two processes of the app image: the leader's page and the outbox worker."""
    port = _free_port()
    env = _server_env(AF_WEB_PORT=str(port), AF_LOG_DIR=str(tmp_path / "logs"), AF_VAR_DIR=str(tmp_path / "var"))
    web = subprocess.Popen([app_python, "-m", "web"], cwd=str(ROOT), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, status = time.monotonic() + 60, None
        while time.monotonic() < deadline and web.poll() is None:
            try:
                status = requests.get(f"http://127.0.0.1:{port}/", timeout=1).status_code
                break
            except requests.RequestException:
                time.sleep(0.3)
        assert status == 200, (web.poll(), status)
        assert requests.get(f"http://127.0.0.1:{port}/static/vendor/socket.io.min.js", timeout=5).ok
    finally:
        web.terminate()
        web.wait(timeout=10)
    dead = subprocess.run([app_python, "-m", "af_core.outbox", "--dead"], cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=60)
    assert dead.returncode == 0, dead.stdout + dead.stderr


def test_the_app_runtime_reaches_the_scaled_stores_in_postgresql(app_python, pg, tmp_path):
    """In the scaled deployment the action servers, web servers and the outbox keep the hand-over
    queue and the outbox in PostgreSQL (af_core/db.py): the app image must carry its driver."""
    env = _server_env(AF_LOG_DIR=str(tmp_path / "logs"), AF_VAR_DIR=str(tmp_path / "var"), **pg.env)
    check = subprocess.run([app_python, "-m", "af_core.outbox", "--check"], cwd=str(ROOT), env=env,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "af_outbox" in pg.tables()
