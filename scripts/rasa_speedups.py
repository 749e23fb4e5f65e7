"""Speed-ups for the Rasa server process, found by profiling (docs/benchmarks.md).

``install()`` is called by scripts/rasa_server.py before Rasa starts. Each patch keeps
Rasa's behaviour and only removes repeated work:

* Action-server responses: Rasa 3.6 calls ``jsonschema.validate(result, schema)`` for
  every custom action call. That function first re-checks the *schema itself* against
  the JSON-Schema meta-schema, every time; with jsonschema 4.17 that was about a quarter
  of the Rasa server's CPU per message here (py-spy). The schema is a constant, so it
  is checked once and a prepared validator is reused. Invalid responses still raise the
  same ``ValidationError`` with the same message.
* SQLite tracker store (the single-server set-up of `make run`): Rasa's SQL tracker
  store commits synchronously on the event loop, and SQLite's default rollback journal
  with ``synchronous=FULL`` waits for several fsyncs per message, stalling every
  conversation meanwhile. WAL with ``synchronous=NORMAL`` needs no fsync per commit and
  is still safe against a crash of the process (the last commits can be lost only if
  the machine itself loses power). SQLAlchemy 1.4 gives a file-based SQLite engine no
  pool, so every message opened and closed a connection, and closing the last
  connection of a WAL database checkpoints and fsyncs it: one pooled connection is kept
  open instead. PostgreSQL (the scaled set-up) is not touched.
"""
from __future__ import annotations

import logging
from typing import Any, Dict

logger = logging.getLogger(__name__)
_installed = False


def _patch_action_result_validation() -> None:
    from jsonschema.exceptions import best_match
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)  # once, instead of on every action call
    validator = validator_class(schema)

    def _validate_action_result(self: RemoteAction, result: Dict[str, Any]) -> bool:
        error = best_match(validator.iter_errors(result))
        if error is None:
            return True
        error.message += (
            ". Failed to validate Action server response from API, "
            "make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit {DOCS_BASE_URL}/custom-actions"
        )
        raise error

    RemoteAction._validate_action_result = _validate_action_result


def _patch_sqlite_pragmas() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        if type(dbapi_connection).__module__.startswith("sqlite3"):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    event.listen(Engine, "connect", _on_connect)


def _patch_sqlite_pool() -> None:
    from rasa.core import tracker_store
    from sqlalchemy.pool import QueuePool

    original = tracker_store.create_engine_kwargs
    if getattr(original, "_af_pooled", False):
        return

    def create_engine_kwargs(url: Any) -> Dict[str, Any]:
        kwargs = original(url)
        text = str(url)
        if text.startswith("sqlite") and text not in {"sqlite://", "sqlite:///"} and ":memory:" not in text:
            # Rasa uses the store from the event loop; the pool hands a connection to one user at a time.
            kwargs.update(poolclass=QueuePool, pool_size=1, max_overflow=4,
                          connect_args={"check_same_thread": False})
        return kwargs

    create_engine_kwargs._af_pooled = True  # type: ignore[attr-defined]
    tracker_store.create_engine_kwargs = create_engine_kwargs


def install() -> None:
    """Apply every speed-up once (idempotent)."""
    global _installed
    if _installed:
        return
    _patch_action_result_validation()
    _patch_sqlite_pragmas()
    _patch_sqlite_pool()
    _installed = True
    logger.debug("Rasa speed-ups installed")
