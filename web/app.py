"""The aiohttp application and its route registry.

A feature module (``web.leader_page``, ``web.support`` …) exposes
``setup(app: aiohttp.web.Application, settings: Settings) -> None`` and adds
its routes there; the settings are in ``app[SETTINGS_KEY]``. List it in ``ROUTE_MODULES``; a module that does not exist
yet is skipped, so the supporter console can arrive later without touching
this file's callers.

Every response gets strict security headers. The Content-Security-Policy
only allows our own origin and the Rasa server's socket.io endpoint, so the
page cannot load anything from outside (closed network). A route that needs
something else sets its own ``Content-Security-Policy`` header, which is then
left alone.
"""
from __future__ import annotations

import importlib
import logging
from typing import Awaitable, Callable, Optional, Tuple
from urllib.parse import urlsplit

from aiohttp import web

from actions.settings import Settings, get_settings

logger = logging.getLogger(__name__)

ROUTE_MODULES: Tuple[str, ...] = ("web.leader_page", "web.support")

SETTINGS_KEY = web.AppKey("settings", Settings)


def socket_origins(settings: Settings) -> Tuple[str, str]:
    """(http origin, ws origin) of the Rasa server the browser talks to."""
    parts = urlsplit(settings.rasa_public_url)
    ws_scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{parts.scheme}://{parts.netloc}", f"{ws_scheme}://{parts.netloc}"


def content_security_policy(settings: Settings) -> str:
    http_origin, ws_origin = socket_origins(settings)
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src 'self' {http_origin} {ws_origin}",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'self'",
        ]
    )


def _security_headers(settings: Settings) -> Callable:
    csp = content_security_policy(settings)

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        headers = response.headers
        headers.setdefault("Content-Security-Policy", csp)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        if isinstance(response, web.HTTPException):
            raise response
        return response

    return middleware


def create_app(settings: Optional[Settings] = None) -> web.Application:
    settings = settings or get_settings()
    app = web.Application(middlewares=[_security_headers(settings)], client_max_size=64 * 1024)
    app[SETTINGS_KEY] = settings
    for name in ROUTE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                logger.info("%s findes ikke (endnu) – springes over", name)
                continue
            raise
        module.setup(app, settings)
    return app
