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
* Event types: every event read from the tracker store is turned into its class by
  ``Event.resolve_by_type``, which walks the whole ``Event`` class tree (with an
  ``inspect.isabstract`` per class) on every call: about 5 % of the server's CPU per
  message under load. The class found for a name is remembered; a name that is not
  found still goes to Rasa's own lookup, so defaults and errors are unchanged.
* Loading DIET for serving: Rasa builds the model's weights by *training one step*
  on a dummy example before it reads the saved weights, only so that the optimizer's
  variables exist. Tracing that training graph was about three quarters of the cold
  start here (py-spy: ~30 of ~43 s). A server never trains, so the weights are read
  from the checkpoint and bound as the prediction graph creates them (TensorFlow's
  deferred restoration), and the restore is checked: if any variable the prediction
  uses was not in the checkpoint, Rasa's own loading runs instead. Fine-tuning
  (``rasa train --finetune``) always uses Rasa's loading.
"""
from __future__ import annotations

import logging
from typing import Any, Dict

logger = logging.getLogger(__name__)
_installed = False
fast_model_loads = 0  # models loaded for serving without the dummy training step


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


def _patch_event_type_lookup() -> None:
    from rasa.shared.core.events import Event

    original = Event.resolve_by_type
    if getattr(original, "_af_cached", False):
        return
    found: Dict[str, Any] = {}

    def resolve_by_type(type_name: str, default: Any = None) -> Any:
        cls = found.get(type_name)
        if cls is None:
            cls = original(type_name, default)
            if cls is not None and cls is not default:
                # Subclasses are only ever added, after the existing ones: the first
                # match for a name stays the first match.
                found[type_name] = cls
        return cls

    resolve_by_type._af_cached = True  # type: ignore[attr-defined]
    Event.resolve_by_type = staticmethod(resolve_by_type)


def _patch_model_load_for_serving() -> None:
    from rasa.utils.tensorflow.models import RasaModel

    original = RasaModel.load.__func__  # type: ignore[attr-defined]
    if getattr(original, "_af_serving", False):
        return

    def load(cls: Any, model_file_name: str, model_data_example: Any, predict_data_example: Any = None,
             finetune_mode: bool = False, *args: Any, **kwargs: Any) -> Any:
        if finetune_mode or predict_data_example is None:
            return original(cls, model_file_name, model_data_example, predict_data_example, finetune_mode,
                            *args, **kwargs)
        try:
            model = cls(*args, **kwargs)
            status = model.load_weights(model_file_name)
            model.run_inference(predict_data_example)  # builds and traces the prediction graph
            # every variable the prediction graph created got its saved value
            status.assert_existing_objects_matched()
            status.expect_partial()  # the optimizer's slots are not needed to serve
            global fast_model_loads
            fast_model_loads += 1
            return model
        except Exception as error:  # pragma: no cover - a model shape we have not seen
            logger.warning("Hurtig indlæsning af %s lykkedes ikke (%s); bruger Rasas egen.", cls.__name__, error)
            return original(cls, model_file_name, model_data_example, predict_data_example, finetune_mode,
                            *args, **kwargs)

    load._af_serving = True  # type: ignore[attr-defined]
    RasaModel.load = classmethod(load)


def install() -> None:
    """Apply every speed-up once (idempotent)."""
    global _installed
    if _installed:
        return
    _patch_action_result_validation()
    _patch_sqlite_pragmas()
    _patch_sqlite_pool()
    _patch_event_type_lookup()
    _patch_model_load_for_serving()
    _installed = True
    logger.debug("Rasa speed-ups installed")
