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

Request bodies are limited to ``MAX_BODY_BYTES`` (the page and the console send
tiny JSON and forms); a larger one gets a 413 with a Danish message before any
handler reads it. ``client_ip`` is the browser's address: the peer, or – only
when the peer is one of ``settings.web_trusted_proxies`` – the nearest address
in ``X-Forwarded-For`` that is not a trusted proxy.
"""
from __future__ import annotations

import importlib
import ipaddress
import logging
from typing import Awaitable, Callable, Optional, Tuple
from urllib.parse import urlsplit

from aiohttp import web

from af_core.settings import Settings, get_settings

logger = logging.getLogger(__name__)

ROUTE_MODULES: Tuple[str, ...] = ("web.leader_page", "web.support", "web.workbench")

SETTINGS_KEY = web.AppKey("settings", Settings)
TRUSTED_PROXIES_KEY = web.AppKey("trusted_proxies", tuple)

MAX_BODY_BYTES = 64 * 1024
TOO_LARGE = "Det, du sendte, er for stort. Der kan højst sendes 64 kB ad gangen."


def _networks(settings: Settings) -> tuple:
    return tuple(ipaddress.ip_network(p, strict=False) for p in getattr(settings, "web_trusted_proxies", ()))


def _in(address: str, networks: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(request: web.Request) -> str:
    """The browser's IP address (see the module docstring); never taken from a header we cannot trust."""
    peer = request.remote or ""
    networks = request.app.get(TRUSTED_PROXIES_KEY, ())
    if not networks or not _in(peer, networks):
        return peer
    hops = [hop.strip() for value in request.headers.getall("X-Forwarded-For", ()) for hop in value.split(",")]
    hops = [hop for hop in hops if hop]
    for hop in reversed(hops):
        if not _valid_ip(hop):
            return peer  # garbage in the header: use the proxy's address rather than a made-up one
        if not _in(hop, networks):
            return hop
    return hops[0] if hops else peer


def _valid_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


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


def _too_large(request: web.Request) -> web.Response:
    if "/api/" in request.path or request.content_type == "application/json":
        return web.json_response({"error": TOO_LARGE}, status=413)
    return web.Response(text=TOO_LARGE, status=413, content_type="text/plain", charset="utf-8")


@web.middleware
async def _body_limit(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """413 with a Danish message: at once from Content-Length, or when a handler reads too much."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return _too_large(request)
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return _too_large(request)


def create_app(settings: Optional[Settings] = None) -> web.Application:
    settings = settings or get_settings()
    app = web.Application(middlewares=[_security_headers(settings), _body_limit], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS_KEY] = settings
    app[TRUSTED_PROXIES_KEY] = _networks(settings)
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
