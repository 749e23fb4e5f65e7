"""Start the rasa-sdk action server on the configured loopback address."""
from __future__ import annotations

import logging

from rasa_sdk.endpoint import create_app

from actions.settings import settings_at_start
from scripts.logsetup import configure_logging


def main() -> None:
    settings = settings_at_start()  # a configuration error stops here, in Danish
    configure_logging(settings.log_dir / "actions.log")
    app = create_app("actions", cors_origins=[])
    logging.getLogger(__name__).info(
        "Action-serveren kører på http://%s:%s", settings.bind_host, settings.actions_port
    )
    app.run(settings.bind_host, settings.actions_port, workers=1, access_log=False)


if __name__ == "__main__":
    main()
