"""Start the Rasa server with the settings from af_core/settings.py.

Started by scripts/run.py instead of `rasa run` so the API token is not
visible on the command line and our log filter is installed first.
"""
from __future__ import annotations

import sys

from af_core.settings import get_settings
from scripts.logsetup import configure_logging


async def _danish_size_refusal(app, _loop) -> None:
    """A body over AF_MAX_BODY_BYTES is refused before it is read (Sanic's 413); the REST
    channel's clients get the refusal in the channel's own reply format, in Danish."""
    from sanic import response
    from sanic.exceptions import PayloadTooLarge

    from channels.inbound import BODY_TOO_LARGE, say

    def refuse(_request, _exception):
        return response.json([{"recipient_id": "", "text": say(BODY_TOO_LARGE), "response": BODY_TOO_LARGE}],
                             status=413)

    app.error_handler.add(PayloadTooLarge, refuse)


def main(model_path: str, endpoints_path: str) -> None:
    settings = get_settings()
    configure_logging(settings.log_dir / "rasa.log")
    if not settings.rasa_api_token:
        # Without a token Rasa would serve its HTTP API (trackers, events) to anyone.
        sys.exit("FEJL: RASA_API_TOKEN er ikke sat. Rasa-serveren starter ikke med et åbent HTTP-API.")
    from af_core import domain_texts
    from channels import inbound, rest_channel, socketio_channel

    gone = domain_texts.missing(inbound.RESPONSES + rest_channel.RESPONSES + socketio_channel.RESPONSES)
    if gone:  # a trainer renamed or deleted one: say so now, not when a leader is refused
        sys.exit(f"FEJL: domain/ mangler svarene {', '.join(gone)}, som chatten selv sender (domain/channel.yml).")
    import logging
    import os

    # No calls home from a closed network, however this server was started (run.py, the scaled
    # replicas, a container): Rasa reads this before its telemetry starts.
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"
    # Sanic reads SANIC_* when Rasa creates its app: no request body above our limit is read
    # (Sanic's own default is 100 MB; a chat message is a few hundred bytes).
    os.environ["SANIC_REQUEST_MAX_SIZE"] = str(settings.max_body_bytes)
    import rasa.api

    from af_core import rasa_http
    from af_core.privacy import route_structlog_through_logging
    from scripts import model_watch

    route_structlog_through_logging(logging.INFO)

    from scripts.rasa_speedups import install as install_speedups

    install_speedups()  # measured: see scripts/rasa_speedups.py and docs/benchmarks.md

    rasa.api.run(
        model=model_path,
        endpoints=endpoints_path,
        credentials="credentials.yml",
        interface=settings.bind_host,
        port=settings.rasa_port,
        cors=list(settings.allowed_origins),
        # No query-string token (it ends up in logs): callers send a short-lived bearer JWT
        # signed with RASA_API_TOKEN (af_core/rasa_http.py).
        auth_token=None,
        jwt_secret=settings.rasa_api_token,
        jwt_method=rasa_http.ALGORITHM,
        enable_api=True,
        # Every replica follows models/i-drift (make activate / rollback): scripts/model_watch.py
        server_listeners=[
            (model_watch.listener(settings), "after_server_start"),
            (_danish_size_refusal, "before_server_start"),
        ],
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
