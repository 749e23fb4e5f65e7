"""pytest plugin: a running chat stack (action server + Rasa server + web page).

Used by tests/test_channels.py and tests/test_browser.py via
``pytest_plugins = ["tests.chat_stack"]``. The session-scoped fixture
``chat_stack`` starts the three processes on free loopback ports with the
current model (``scripts/model.py path``; ``make model`` trains it), in
development mode with ``AF_IDENTITY_REQUIRED=true`` so the identity checks
are on while the page's demo-leader picker still works. Logs, tracker store
and var/ go to a temporary folder. Everything is stopped at the end.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List

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
        return "\n".join(
            f"--- {p.name} ---\n" + p.read_text(encoding="utf-8", errors="replace")[-4000:]
            for p in sorted(self.log_dir.glob("*.log"))
        )


def _model_path() -> str:
    result = subprocess.run(
        [sys.executable, "scripts/model.py", "path"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    path = result.stdout.strip()
    if result.returncode == 0 and path and Path(path).is_file():
        return path
    # Data changed since the last `make model` (others edit in parallel): the
    # channels and the page do not depend on the newest training data.
    existing = sorted((ROOT / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not existing:
        pytest.fail(f"Ingen trænet model – kør `make model` først ({result.stderr.strip()})")
    warnings.warn(f"Modellen for de nuværende data mangler; bruger {existing[-1].name}")
    return str(existing[-1])


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


def start_stack(tmp: Path) -> ChatStack:
    rasa_port, actions_port, web_port, emulator_port = free_port(), free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AF_", "RASA_", "SERVICENOW_"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "AF_MODE": "development",
            # The test stack keeps the model it was started with, whatever models/i-drift says.
            "AF_MODEL_POLL_SECONDS": "0",
            # the attack run (tests/test_attack_run.py) logs in "from" many addresses
            "AF_WEB_TRUSTED_PROXIES": "127.0.0.1",
            "AF_IDENTITY_REQUIRED": "true",
            "AF_RASA_PORT": str(rasa_port),
            "AF_ACTIONS_PORT": str(actions_port),
            "AF_WEB_PORT": str(web_port),
            "AF_EMULATOR_PORT": str(emulator_port),
            "AF_START_EMULATOR": "false",
            "SERVICENOW_URL": f"http://127.0.0.1:{emulator_port}",
            "AF_VAR_DIR": str(tmp / "var"),
            "AF_LOG_DIR": str(tmp / "logs"),
        }
    )
    (tmp / "logs").mkdir(parents=True, exist_ok=True)
    stack = ChatStack(
        env=env,
        rasa_url=f"http://127.0.0.1:{rasa_port}",
        actions_url=f"http://127.0.0.1:{actions_port}",
        web_url=f"http://127.0.0.1:{web_port}",
        tmp=tmp,
    )
    model = _model_path()
    # The endpoints file the same way `make run` writes it, for these settings.
    endpoints = subprocess.run(
        [sys.executable, "-c", "from scripts.run import write_endpoints; from af_core.settings import get_settings; "
         "print(write_endpoints(get_settings()))"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()

    def spawn(name: str, args: List[str]) -> subprocess.Popen:
        out = open(tmp / "logs" / f"{name}.stdout.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        stack.processes.append(proc)
        return proc

    deadline = time.monotonic() + STARTUP_TIMEOUT
    actions = spawn("actions", ["scripts/action_server.py"])
    web = spawn("web", ["-m", "web"])
    rasa = spawn("rasa", ["scripts/rasa_server.py", model, endpoints])
    try:
        _wait(f"{stack.actions_url}/health", actions, stack, deadline)
        _wait(f"{stack.web_url}/", web, stack, deadline)
        _wait(f"{stack.rasa_url}/", rasa, stack, deadline)
        # The model is loaded once the status endpoint answers without 409.
        while time.monotonic() < deadline:
            r = requests.get(f"{stack.rasa_url}/status", headers=rasa_http.headers_for_secret(stack.api_token),
                             timeout=5)
            if r.status_code == 200 and r.json().get("model_file"):
                break
            time.sleep(0.5)
    except BaseException:
        stop_stack(stack)
        raise
    return stack


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


@pytest.fixture(scope="session")
def chat_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatStack]:
    stack = start_stack(tmp_path_factory.mktemp("chat-stack"))
    try:
        yield stack
    finally:
        stop_stack(stack)
