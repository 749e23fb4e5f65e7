"""Start the action server on either rasa-sdk: 3.6 (Python 3.10, .venv) or the newest
(Python 3.12, locks/app-py312.txt and the `app` image).

Same settings, same log file and the same address as scripts/action_server.py; only the two
calls that changed in rasa-sdk 3.11 are made the way the installed version wants them:

- ``create_app`` takes an ``ActionExecutor`` instead of the name of the action package;
- its Sanic (22.12 and newer) starts the server in a child process unless told to stay in one
  (``single_process=True``); Sanic 21.12 (rasa-sdk 3.6) has no such option.

What Rasa 3.6 sends to ``/webhook`` and expects back did not change; the contract test
(tests/test_action_server_contract.py) calls this server on both runtimes the way Rasa 3.6 does.
"""
from __future__ import annotations

import inspect
import logging
from typing import Any

from rasa_sdk.endpoint import create_app

from scripts.logsetup import configure_logging

try:  # the checked start (a configuration error stops the process in Danish)
    from af_core.settings import settings_at_start
except ImportError:  # pragma: no cover - older af_core/settings.py without it
    from af_core.settings import get_settings as settings_at_start


def build_app(package: str = "actions") -> Any:
    """The rasa-sdk Sanic app with every action in ``package``, CORS closed."""
    if "action_package_name" in inspect.signature(create_app).parameters:  # rasa-sdk < 3.11
        return create_app(package, cors_origins=[])
    from rasa_sdk.executor import ActionExecutor

    executor = ActionExecutor()
    executor.register_package(package)
    return create_app(executor, cors_origins=[])


def run_kwargs(app: Any, host: str, port: int) -> dict:
    """Arguments for ``app.run``: one process, no access log, on every Sanic version."""
    kwargs: dict = {"host": host, "port": port, "access_log": False}
    if "single_process" in inspect.signature(app.run).parameters:
        kwargs["single_process"] = True
    else:
        kwargs["workers"] = 1
    return kwargs


def main() -> None:
    settings = settings_at_start()
    configure_logging(settings.log_dir / "actions.log")
    app = build_app()
    logging.getLogger(__name__).info(
        "Action-serveren kører på http://%s:%s", settings.bind_host, settings.actions_port
    )
    app.run(**run_kwargs(app, settings.bind_host, settings.actions_port))


if __name__ == "__main__":
    main()
