"""Helpers for tests: run the emulator in a thread and talk to its admin API."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import requests

from servicenow_emulator.app import Credentials
from servicenow_emulator.server import ThreadedEmulator

TABLE = "u_af_henvendelse"


def dev_credentials() -> Credentials:
    from af_core import settings as s

    return Credentials(s.DEV_SERVICENOW_USERNAME, s.DEV_SERVICENOW_PASSWORD,
                       s.DEV_SERVICENOW_CLIENT_ID, s.DEV_SERVICENOW_CLIENT_SECRET)


def start_emulator(directory: Path, seed: Optional[int] = 1234) -> ThreadedEmulator:
    """Start an emulator on a free loopback port with its SQLite file in ``directory``."""
    return ThreadedEmulator(Path(directory) / "emulator.sqlite3", TABLE, dev_credentials(), seed=seed).start()


def test_settings(url: str, directory: Path, **overrides: str):
    """Settings for a test: development mode, the emulator at ``url``, files in ``directory``."""
    from af_core.settings import load_settings

    env = {
        "AF_MODE": "development",
        "AF_VAR_DIR": str(directory),
        "SERVICENOW_URL": url,
        "SERVICENOW_TIMEOUT_SECONDS": "2",
        "SERVICENOW_MAX_RETRIES": "3",
        "SERVICENOW_BACKOFF_SECONDS": "0.01",
        "AF_OUTBOX_PATH": str(Path(directory) / "outbox.sqlite3"),
        "AF_OUTBOX_INTERVAL_SECONDS": "0.05",
    }
    env.update(overrides)
    return load_settings(env)


test_settings.__test__ = False  # not a pytest test


class Admin:
    """The emulator's development-only admin API (same dev credentials)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.auth = (dev_credentials().username, dev_credentials().password)

    def faults(self, **values: Any) -> Dict[str, Any]:
        response = self.session.post(f"{self.url}/_emulator/faults", json=values, timeout=5)
        response.raise_for_status()
        return response.json()

    def reset_faults(self) -> None:
        self.session.delete(f"{self.url}/_emulator/faults", timeout=5).raise_for_status()

    def state(self) -> Dict[str, Any]:
        response = self.session.get(f"{self.url}/_emulator/faults", timeout=5)
        response.raise_for_status()
        return response.json()

    def config(self, **values: Any) -> None:
        self.session.post(f"{self.url}/_emulator/config", json=values, timeout=5).raise_for_status()

    def cases(self) -> List[Dict[str, str]]:
        response = self.session.get(f"{self.url}/_emulator/cases", timeout=10)
        response.raise_for_status()
        return response.json()["result"]

    def clear(self) -> None:
        self.session.delete(f"{self.url}/_emulator/cases", timeout=5).raise_for_status()

    def hide(self, sys_id: str) -> None:
        self.session.post(f"{self.url}/_emulator/acl", json={"sys_id": sys_id, "hidden": True},
                          timeout=5).raise_for_status()
