"""Logging for our processes: one file under logs/, CPR numbers and tokens masked.

scripts/run.py sends each process's stdout/stderr to the same file, so only a
file handler is installed here (a stream handler would write every line twice).
"""
from __future__ import annotations

import logging
from pathlib import Path

from actions.privacy import install_log_filter


def configure_logging(log_file: Path, level: int = logging.INFO) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    install_log_filter()
