"""Every Rasa replica serves the model in service: the one named in the shared pointer file.

``make activate`` / ``make rollback`` (trainer/serving.py) write ``models/i-drift``. The models
folder is the shared model store: the same folder for ``make run``, a shared volume for the
replicas in Compose/Kubernetes (``AF_MODELS_DIR``). Each Rasa server checks the pointer every
``AF_MODEL_POLL_SECONDS`` and, when it names another model than the one loaded, loads that model
in a worker thread (the replica keeps answering with the old model meanwhile) and then swaps it
in, keeping the tracker store, lock store and action endpoint. A model that fails to load is
logged once and the replica keeps the model it has.

Started by scripts/rasa_server.py as a Sanic listener.
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Optional

from af_core.settings import Settings

logger = logging.getLogger(__name__)

POINTER = "i-drift"  # trainer/serving.py's name for it


def wanted_model(models_dir: Path) -> Optional[Path]:
    """The model the pointer names, if the pointer and the file exist."""
    try:
        name = (models_dir / POINTER).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not name or "/" in name or name.startswith("."):
        return None
    path = models_dir / name
    return path if path.is_file() else None


def _load_processor(agent: Any, model_path: Path) -> Any:
    from rasa.core.processor import MessageProcessor

    return MessageProcessor(
        model_path=model_path,
        tracker_store=agent.tracker_store,
        lock_store=agent.lock_store,
        action_endpoint=agent.action_endpoint,
        generator=agent.nlg,
        http_interpreter=agent.http_interpreter,
    )


def _swap(agent: Any, processor: Any) -> None:
    from rasa.core.nlg import TemplatedNaturalLanguageGenerator

    agent.processor = processor
    agent.domain = processor.domain
    agent.tracker_store.domain = processor.domain
    if isinstance(agent.nlg, TemplatedNaturalLanguageGenerator):
        agent.nlg.responses = processor.domain.responses if processor.domain else {}


async def check_once(app: Any, models_dir: Path, failed: set) -> Optional[str]:
    """Load the pointer's model if it is not the one loaded. Returns the new model's name."""
    agent = getattr(app.ctx, "agent", None)
    if agent is None or agent.processor is None:
        return None
    wanted = wanted_model(models_dir)
    if wanted is None or wanted.name == agent.processor.model_filename or wanted.name in failed:
        return None
    logger.info("Modellen i drift er nu %s; indlæser den", wanted.name)
    loop = asyncio.get_running_loop()
    try:
        processor = await loop.run_in_executor(None, _load_processor, agent, wanted)
    except Exception:
        failed.add(wanted.name)
        logger.exception("Modellen %s kunne ikke indlæses; beholder %s", wanted.name, agent.processor.model_filename)
        return None
    _swap(agent, processor)
    logger.info("Skiftet til modellen %s", wanted.name)
    return wanted.name


def listener(settings: Settings):
    """A Sanic ``after_server_start`` listener that starts the watch (none when polling is off)."""

    async def start(app: Any, _loop: Any) -> None:
        if settings.model_poll_seconds <= 0:
            return

        async def watch() -> None:
            failed: set = set()
            while True:
                await asyncio.sleep(settings.model_poll_seconds)
                try:
                    await check_once(app, settings.models_dir, failed)
                except asyncio.CancelledError:
                    raise
                except Exception:  # never let the watch die quietly
                    logger.exception("Tjek af modellen i drift fejlede")

        app.add_task(watch())

    return start
