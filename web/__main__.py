"""``python -m web``: serve the leader's page (and the supporter console)."""
from __future__ import annotations

from aiohttp import web

from af_core.logsetup import configure_logging
from af_core.settings import settings_at_start
from web.app import create_app


def main() -> None:
    # Production needs AF_WEB_SESSION_KEY here (the console's logins); errors stop here, in Danish.
    settings = settings_at_start(web_server=True)
    configure_logging(settings, "web")  # logs/web.log, or masked JSON on stdout in a container
    mode = "UDVIKLING (demo-ledere, udviklingsnøgle)" if settings.development else "PRODUKTION"
    print(f"AF-assistentens webside: http://{settings.bind_host}:{settings.web_port}/  [{mode}]", flush=True)
    web.run_app(create_app(settings), host=settings.bind_host, port=settings.web_port, print=None)


if __name__ == "__main__":
    main()
