"""Shared pytest fixtures.

`stack` starts the whole running system (scripts/run.py: emulator, action
server, outbox worker, Rasa server, web) once per test session, on free
loopback ports, with its own var/ and logs/ folders, in development mode with
the login required (AF_IDENTITY_REQUIRED=true, as in production), so the
channels' refusals and the page's demo-leader picker are tested on the same
stack as the dialogue. It is the suite's one stack: the model is loaded once.
(tests/test_workbench_browser.py starts its own on a copy of the project,
because it trains and activates a new model.)
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from af_core import rasa_http  # noqa: E402
from af_core.identity import issue_token  # noqa: E402
from af_core.settings import DEV_IDENTITY_JWT_KEY, load_settings  # noqa: E402
from tests.chat_stack import log_tails  # noqa: E402
from tests.production_env import PRODUCTION_ENV  # noqa: E402

# The code's default mode is production, which refuses to load without its secrets. Unless the
# environment chooses a mode itself, this test process is production with fake, valid values
# (tests/production_env.py), so code that calls get_settings() sees a complete production set-up.
# The stacks strip AF_*/RASA_*/SERVICENOW_* and run in development mode.
if os.environ.get("AF_MODE", "").strip().lower() in {"", "production"}:
    for _name, _value in PRODUCTION_ENV.items():
        os.environ.setdefault(_name, _value)


@pytest.fixture(autouse=True)
def _fresh_settings_after_each_test():
    """Settings are cached per process; a test that sets AF_MODE must not leak it."""
    yield
    from af_core.settings import get_settings

    get_settings.cache_clear()


@pytest.fixture
def production_settings(monkeypatch):
    """This process in production mode (a login is required), with valid production values
    (tests/production_env.py; sign tokens for it with its ``sign_token``)."""
    from af_core.settings import get_settings
    from tests.production_env import PRODUCTION_ENV

    for name in list(os.environ):
        if name.startswith(("AF_IDENTITY_", "SERVICENOW_", "RASA_API_TOKEN", "AF_WEB_SESSION_KEY")):
            monkeypatch.delenv(name)
    for name, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return get_settings()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    env: Dict[str, str]
    var_dir: Path
    log_dir: Path
    rasa_url: str
    actions_url: str
    emulator_url: str
    web_url: str
    api_token: str
    process: subprocess.Popen
    identity_key: str = DEV_IDENTITY_JWT_KEY
    _counter: List[int] = field(default_factory=lambda: [0])

    def logs(self) -> str:
        """The end of every server's log (for a failing test's message)."""
        return log_tails(self.log_dir)

    @property
    def settings(self):
        return load_settings(self.env)

    def token_for(self, name="Mette Hansen", email="mette.hansen@buf.kk.dk", institution="Valby Skole", **extra) -> str:
        return issue_token({"name": name, "email": email, "institution": institution, **extra}, self.settings)

    def new_sender(self, prefix: str = "test") -> str:
        self._counter[0] += 1
        # letters between the numbers: "123456-1234" would read as a CPR number, which REST refuses
        return f"{prefix}-p{os.getpid()}-n{self._counter[0]}-t{time.monotonic_ns() % 100000}"

    def send(self, sender: str, message: str, metadata: Optional[Dict[str, Any]] = None,
             token: Optional[str] = None, timeout: float = 30) -> List[Dict[str, Any]]:
        """Send a message through the REST channel and return the bot's messages."""
        metadata = dict(metadata or {})
        if token is not None:
            metadata.setdefault("identity_token", token)
        response = requests.post(
            f"{self.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": message, "metadata": metadata},
            timeout=timeout,
        )
        response.raise_for_status()
        return response.json()

    def tracker(self, sender: str) -> Dict[str, Any]:
        response = requests.get(
            f"{self.rasa_url}/conversations/{sender}/tracker", headers=rasa_http.headers_for_secret(self.api_token), timeout=30
        )
        response.raise_for_status()
        return response.json()


def _wait_ready(process: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The stack stopped during start-up:\n{log_path.read_text()[-4000:]}")
        if "AF-assistenten kører" in log_path.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise RuntimeError(f"The stack did not start within {timeout} s:\n{log_path.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    base = tmp_path_factory.mktemp("stack")
    var_dir, log_dir = base / "var", base / "logs"
    ports = {name: free_port() for name in ("rasa", "actions", "emulator", "web")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AF_", "SERVICENOW_", "RASA_API"))}
    env.update(
        {
            "AF_MODE": "development",
            # The test stack keeps the model it was started with, whatever models/i-drift says.
            "AF_MODEL_POLL_SECONDS": "0",
            "AF_VAR_DIR": str(var_dir),
            "AF_LOG_DIR": str(log_dir),
            "AF_RASA_PORT": str(ports["rasa"]),
            "AF_ACTIONS_PORT": str(ports["actions"]),
            "AF_EMULATOR_PORT": str(ports["emulator"]),
            "AF_WEB_PORT": str(ports["web"]),
            "AF_OUTBOX_INTERVAL_SECONDS": "1",
            # As in production: no message reaches the dialogue without a verified login.
            "AF_IDENTITY_REQUIRED": "true",
            # the attack run (tests/test_attack_run.py) logs in "from" many addresses
            "AF_WEB_TRUSTED_PROXIES": "127.0.0.1",
            "PYTHONPATH": str(ROOT),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            # A user who has never run Rasa: its first run must not disturb make run (the
            # telemetry notice once became the model path), and it must still answer.
            "HOME": str(base / "home"),
        }
    )
    (base / "home").mkdir()
    settings = load_settings(env)
    model = subprocess.run(
        [sys.executable, "scripts/model.py", "ensure"], cwd=ROOT, env=env, check=True,
        capture_output=True, text=True,
    ).stdout.strip()
    out_path = base / "run.out"
    out = open(out_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "scripts/run.py", model], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_ready(process, out_path, timeout=240)
    except Exception:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
        raise
    stack = Stack(
        env=env, var_dir=var_dir, log_dir=log_dir,
        rasa_url=f"http://127.0.0.1:{ports['rasa']}",
        actions_url=f"http://127.0.0.1:{ports['actions']}",
        emulator_url=f"http://127.0.0.1:{ports['emulator']}",
        web_url=f"http://127.0.0.1:{ports['web']}",
        api_token=settings.rasa_api_token, process=process,
    )
    yield stack
    # A test may have restarted the stack: stop whichever process runs it now.
    _stop(stack.process)


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
