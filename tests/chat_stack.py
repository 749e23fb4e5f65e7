"""A chat stack a test starts itself (action server + Rasa server + web page), and stops.

The suite's one shared stack is the ``stack`` fixture (tests/conftest.py). This is for the one
test that needs a stack of its own: tests/test_workbench_browser.py trains and activates a new
model in a copy of the project, which must not change what the other tests talk to.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import pytest
import requests

from af_core import rasa_http
from af_core.settings import DEV_IDENTITY_JWT_KEY, DEV_RASA_API_TOKEN

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = float(os.environ.get("AF_TEST_STACK_TIMEOUT", "240"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tails(log_dir: Path) -> str:
    """The end of every server's log in ``log_dir`` (for a failing test's message)."""
    return "\n".join(f"--- {p.name} ---\n" + p.read_text(encoding="utf-8", errors="replace")[-4000:]
                     for p in sorted(Path(log_dir).glob("*.log")))


@dataclass
class ChatStack:
    env: Dict[str, str]
    rasa_url: str
    actions_url: str
    web_url: str
    tmp: Path
    processes: List[subprocess.Popen] = field(default_factory=list)
    api_token: str = DEV_RASA_API_TOKEN
    identity_key: str = DEV_IDENTITY_JWT_KEY

    def tracker(self, sender_id: str) -> dict:
        r = requests.get(f"{self.rasa_url}/conversations/{sender_id}/tracker",
                         headers=rasa_http.headers_for_secret(self.api_token), timeout=10)
        r.raise_for_status()
        return r.json()

    @property
    def log_dir(self) -> Path:
        return self.tmp / "logs"

    def logs(self) -> str:
        return log_tails(self.log_dir)


def _wait(url: str, proc: subprocess.Popen, stack: ChatStack, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args} stoppede med kode {proc.returncode}\n{stack.logs()}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} svarede ikke inden for {STARTUP_TIMEOUT} s\n{stack.logs()}")


def stop_stack(stack: ChatStack) -> None:
    for proc in stack.processes:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for proc in stack.processes:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
