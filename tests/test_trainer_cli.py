"""The trainer's tools have one entry: ``python -m trainer <kommando>`` (what the make targets run)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from trainer.__main__ import COMMANDS, command

ROOT = Path(__file__).resolve().parent.parent


def trainer(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AF_MODE": "development"}
    return subprocess.run([sys.executable, "-m", "trainer", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_without_a_command_it_lists_the_commands_in_danish():
    result = trainer()
    assert result.returncode == 2
    for name in ("review", "add", "retrain", "activate", "rollback", "status", "report", "purge"):
        assert f"  {name} " in result.stdout


def test_an_unknown_command_is_refused_with_the_list():
    result = trainer("træn")
    assert result.returncode == 2
    assert "Ukendt kommando: træn" in result.stderr


def test_every_make_target_of_the_trainer_goes_through_the_entry():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("review", "add", "retrain", "activate", "rollback", "status", "report", "purge"):
        assert f"-m trainer {target}" in makefile, target
    assert "scripts/review.py" not in makefile and "trainer/" not in makefile


def test_every_command_reaches_a_main_function():
    for name in COMMANDS:
        assert callable(command(name))


def test_path_prints_the_model_to_start_with(tmp_path):
    (tmp_path / "models").mkdir()
    result = trainer("path", "--root", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(tmp_path / "models"))
