"""The leader's page in a real browser (headless Debian Chromium via playwright-core).

Runs tests/browser/chat.spec.mjs against the chat stack: pick a demo leader,
get the greeting, click a button, ask for a form and see its link, HTML shown
as text, reload and continue, keyboard and names, network log only loopback.
Screenshots: test-output/screenshots/. Needs `npm ci` and
`apt-get install -y chromium` (the test set-up does both).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("AF_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-output" / "screenshots"


def test_leader_chats_in_a_real_browser(stack):
    node = shutil.which("node")
    missing = [
        what
        for what, ok in [
            ("node (apt-get install -y nodejs npm)", node),
            (f"{CHROMIUM} (apt-get install -y chromium)", Path(CHROMIUM).is_file()),
            ("node_modules/playwright-core (npm ci)", (ROOT / "node_modules" / "playwright-core").is_dir()),
        ]
        if not ok
    ]
    if missing:
        pytest.fail("Browsertesten mangler: " + ", ".join(missing))
    env = dict(os.environ, AF_TEST_WEB_URL=stack.web_url + "/", AF_TEST_SCREENSHOT_DIR=str(SCREENSHOTS),
               AF_TEST_CHROMIUM=CHROMIUM)
    result = subprocess.run([node, "tests/browser/chat.spec.mjs"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    print(result.stdout)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{stack.logs()}"
    assert (SCREENSHOTS / "01-hilsen.png").is_file()
