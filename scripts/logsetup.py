"""Logging for our processes: to a file under logs/ and to stderr, CPR numbers masked."""
from __future__ import annotations

import logging
from pathlib import Path


def configure_logging(log_file: Path, level: int = logging.INFO) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handlers = [logging.FileHandler(log_file, encoding="utf-8"), logging.StreamHandler()]
    try:  # mask personal ID numbers in every record, whoever logs it
        from actions.privacy import CprLogFilter
    except ImportError:  # pragma: no cover - privacy module not present
        CprLogFilter = None
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        if CprLogFilter is not None:
            handler.addFilter(CprLogFilter())
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level)
