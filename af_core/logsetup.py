"""Logging for every process of AF-assistenten: one place, CPR numbers and secrets masked.

``configure_logging(settings, process)`` is called once at start-up by each process: the Rasa
server, the action server, the web server, the outbox worker and the ServiceNow emulator.

* ``AF_LOG_TARGET=file`` (default, ``make run``): ``logs/<process>.log``. scripts/run.py sends
  each process's stdout/stderr to that same file, so no stream handler is added.
* ``AF_LOG_TARGET=stdout`` (containers): one line per record on standard output, where the
  container runtime collects it (``docker compose logs``, Kubernetes).
* ``AF_LOG_FORMAT=json``: one JSON object per line (``ts``, ``level``, ``logger``, ``process``,
  ``message``, ``exc``), for the municipality's log collector; ``text`` is for people.

Every record passes ``af_core.privacy``'s masking (CPR numbers, tokens in URLs, bearer tokens)
before any handler sees it, in both targets and both formats.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from typing import Optional

from af_core.privacy import install_log_filter
from af_core.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the message is already masked by the record factory."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "process": self.process,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings, process: str, level: int = logging.INFO,
                      stream: Optional[object] = None) -> logging.Handler:
    """Install this process's one log handler (see the module docstring). Returns it."""
    if settings.log_target == "stdout":
        handler: logging.Handler = logging.StreamHandler(stream or sys.stdout)
    else:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(settings.log_dir / f"{process}.log", encoding="utf-8")
    handler.setFormatter(JsonFormatter(process) if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    install_log_filter()
    return handler
