"""Production refuses development keys at start, in every process, and says why in Danish.

Security review: explicitly set development keys, short keys and missing secrets used to be
accepted in production, the web server started with an empty session key, and the ServiceNow
emulator fell back to the development credentials. Each server process must now stop at start
with a message that names the variable and never shows its value.
"""
from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from af_core import settings as settings_module
from af_core.settings import ConfigError, load_settings
from servicenow_emulator.server import ThreadedEmulator, credentials_from_settings
from tests.production_env import production_env

ROOT = Path(__file__).resolve().parent.parent
DEV_TOKEN = settings_module.DEV_RASA_API_TOKEN


def _start(command, env, tmp_path, timeout=60):
    """Run a server's start command with only ``env`` (plus PATH/PYTHONPATH); it must stop by itself.

    Every port is one this test holds open, so a server that started despite the error could not
    listen (and would not collide with anyone else's)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "HOME": str(tmp_path),
                    "AF_VAR_DIR": str(tmp_path / "var"), "AF_LOG_DIR": str(tmp_path / "logs"),
                    "AF_RASA_PORT": port, "AF_ACTIONS_PORT": port, "AF_WEB_PORT": port, "AF_EMULATOR_PORT": port,
                    **env}
        return subprocess.run([sys.executable, *command], cwd=ROOT, env=full_env, capture_output=True, text=True,
                              timeout=timeout)


SERVERS = {
    "action-server": ["scripts/action_server.py"],
    "action-server-image": ["scripts/action_server_app.py"],
    "rasa-replica": ["scripts/rasa_replica.py", "findes-ikke.tar.gz"],
    "web": ["-m", "web"],
    "outbox": ["-m", "af_core.outbox"],
    "emulator": ["-m", "servicenow_emulator"],
    "make-run": ["scripts/run.py", "findes-ikke.tar.gz"],
}


@pytest.mark.parametrize("name", SERVERS)
def test_every_server_refuses_a_development_key_in_production_at_start(name, tmp_path):
    result = _start(SERVERS[name], production_env(RASA_API_TOKEN=DEV_TOKEN,
                                                  AF_WEB_SESSION_KEY="test-sessionsnoegle-" + "s" * 20), tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "RASA_API_TOKEN" in result.stderr and "udviklingsværdi" in result.stderr, output
    assert DEV_TOKEN not in output
    assert "Traceback" not in output, output


def test_the_web_server_refuses_to_start_without_a_session_key_in_production(tmp_path):
    result = _start(SERVERS["web"], production_env(), tmp_path)
    assert result.returncode != 0
    assert "AF_WEB_SESSION_KEY" in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_the_rasa_server_refuses_a_development_key_without_showing_it(tmp_path):
    """scripts/rasa_server.py itself (not ours to tidy): it stops, names the variable, hides the value."""
    result = _start(["scripts/rasa_server.py", "findes-ikke.tar.gz", "endpoints.yml"],
                    production_env(RASA_API_TOKEN=DEV_TOKEN), tmp_path)
    assert result.returncode != 0
    assert "RASA_API_TOKEN" in result.stderr and DEV_TOKEN not in result.stdout + result.stderr


# -- the emulator never falls back to the development credentials in production --------------------
SERVICENOW = {"SERVICENOW_URL": "http://127.0.0.1:9", "SERVICENOW_USERNAME": "af-assistent-test-bruger",
              "SERVICENOW_PASSWORD": "test-adgangskode-0123456789"}


def test_emulator_in_production_needs_configured_credentials():
    with pytest.raises(ConfigError, match="SERVICENOW_USERNAME"):
        credentials_from_settings(load_settings(production_env()))


def _basic(username: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def test_emulator_in_production_accepts_only_the_configured_credentials(tmp_path):
    settings = load_settings(production_env(**SERVICENOW))
    emulator = ThreadedEmulator(tmp_path / "emulator.sqlite3", "u_af_henvendelse",
                                credentials_from_settings(settings)).start()
    try:
        table = f"{emulator.url}/api/now/table/u_af_henvendelse"
        dev = _basic(settings_module.DEV_SERVICENOW_USERNAME, settings_module.DEV_SERVICENOW_PASSWORD)
        assert requests.get(table, headers=dev, timeout=5).status_code == 401
        assert requests.get(table, headers=_basic("", ""), timeout=5).status_code == 401
        configured = _basic(SERVICENOW["SERVICENOW_USERNAME"], SERVICENOW["SERVICENOW_PASSWORD"])
        assert requests.get(table, headers=configured, timeout=5).status_code == 200
        # OAuth is not configured: neither the development client nor an empty one gets a token
        for client_id, secret in ((settings_module.DEV_SERVICENOW_CLIENT_ID,
                                   settings_module.DEV_SERVICENOW_CLIENT_SECRET), ("", "")):
            r = requests.post(f"{emulator.url}/oauth_token.do", timeout=5, data={
                "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
            assert r.status_code == 401, (client_id, r.text)
    finally:
        emulator.stop()


def test_emulator_in_development_still_uses_the_documented_credentials():
    credentials = credentials_from_settings(load_settings({"AF_MODE": "development"}))
    assert credentials.username == settings_module.DEV_SERVICENOW_USERNAME
    assert credentials.client_secret == settings_module.DEV_SERVICENOW_CLIENT_SECRET
