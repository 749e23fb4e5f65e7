"""The running stack answers in Danish over REST, knows the leader, and restarts without losing history."""
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.conftest import ROOT, _wait_ready


def _texts(messages):
    return " ".join(m.get("text", "") for m in messages)


def test_greeting_in_danish_with_the_main_menu(stack):
    sender = stack.new_sender("greet")
    messages = stack.send(sender, "hej", token=stack.token_for())
    assert "AF-assistenten" in _texts(messages)
    payloads = [b["payload"] for m in messages for b in m.get("buttons", [])]
    assert payloads == ["/find_form", "/ask_question", "/request_help", "/book_meeting", "/case_status", "/human_handoff"]


def test_verified_leader_is_greeted_by_name_and_known_to_the_actions(stack):
    sender = stack.new_sender("ident")
    messages = stack.send(sender, "godmorgen", token=stack.token_for())
    assert "Hej Mette Hansen" in _texts(messages)
    slots = stack.tracker(sender)["slots"]
    assert slots["leader_email"] == "mette.hansen@buf.kk.dk"
    assert slots["leader_unit"] == "af-syd"


def test_the_http_api_refuses_requests_without_the_token(stack):
    import requests

    response = requests.get(f"{stack.rasa_url}/conversations/x/tracker", timeout=10)
    assert response.status_code == 401


def test_restart_keeps_history_does_not_retrain_and_leaves_no_process(stack, tmp_path):
    """Stop the stack, start it again on the same var/: the conversation is still there."""
    sender = stack.new_sender("persist")
    token = stack.token_for()
    stack.send(sender, "hej", token=token)
    before = len(stack.tracker(sender)["events"])
    models_before = sorted(p.name for p in (ROOT / "models").glob("*.tar.gz"))

    children = psutil.Process(stack.process.pid).children(recursive=True)
    os.killpg(stack.process.pid, signal.SIGTERM)
    stack.process.wait(60)
    time.sleep(1)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]

    model = subprocess.run([sys.executable, "scripts/model.py", "ensure"], cwd=ROOT, env=stack.env,
                           check=True, capture_output=True, text=True)
    assert "Træner" not in model.stderr
    assert sorted(p.name for p in (ROOT / "models").glob("*.tar.gz")) == models_before

    out_path = tmp_path / "run2.out"
    stack.process = subprocess.Popen(
        [sys.executable, "scripts/run.py", model.stdout.strip()], cwd=ROOT, env=stack.env,
        stdout=open(out_path, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    _wait_ready(stack.process, out_path, timeout=240)
    assert len(stack.tracker(sender)["events"]) >= before
    assert stack.send(sender, "tak", token=token)  # the conversation goes on
