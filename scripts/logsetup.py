"""Kept for the launchers that pass a log file: the logic is in af_core/logsetup.py.

``configure_logging(settings.log_dir / "rasa.log")`` logs as process "rasa" to the target the
settings choose (the file, or standard output in containers).
"""
from __future__ import annotations

import logging
from pathlib import Path

from af_core.logsetup import configure_logging as _configure
from af_core.settings import get_settings


def configure_logging(log_file: Path, level: int = logging.INFO) -> None:
    settings = get_settings()
    if settings.log_target == "file" and Path(log_file).parent != settings.log_dir:
        settings = _with_log_dir(settings, Path(log_file).parent)
    _configure(settings, Path(log_file).stem, level)


def _with_log_dir(settings, log_dir: Path):
    from dataclasses import replace

    return replace(settings, log_dir=log_dir)
