"""The leader's page: a plain AF page on KKintra with the chat widget.

Routes:

* ``GET /`` – the page. In development mode it also shows a demo-leader
  picker (``profile.demo_leaders``); in production mode the intranet supplies
  the identity token (see docs/kkintra-embed.md).
* ``POST /dev/token`` – development mode only: ``{"leader": <index>}`` →
  ``{"token": ..., "name": ..., "institution": ...}`` signed with the
  development key. Only the profile's demo leaders can be chosen. 404 in
  production mode.
* ``GET /static/…`` – the widget (``af-chat.js``/``.css``), the page's CSS and
  ``/static/vendor/socket.io.min.js`` from ``node_modules`` (installed by
  ``npm ci``). Nothing is loaded from outside.
"""
from __future__ import annotations

import html
import json
import logging
import re
from pathlib import Path
from typing import Any, Dict, List

from aiohttp import web

from af_core import domain_texts
from af_core.identity import IdentityError, issue_token
from af_core.profile import get_profile
from af_core.settings import PROJECT_ROOT, Settings
from web.app import SETTINGS_KEY

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
SOCKETIO_CLIENT = PROJECT_ROOT / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
DEV_TOKEN_TTL_SECONDS = 8 * 3600


def demo_identity(leader: Dict[str, Any]) -> Dict[str, str]:
    """The identity claims of a demo leader (the AF unit follows from the institution)."""
    profile = get_profile()
    unit = profile.unit_for_institution(leader.get("institution"))
    return {
        "name": str(leader.get("name", "")),
        "email": str(leader.get("email", "")),
        "institution": str(leader.get("institution", "")),
        "unit": str(unit["id"]),
    }


def _demo_picker(leaders: List[Dict[str, Any]]) -> str:
    options = "\n".join(
        f'<option value="{i}">{html.escape(str(leader.get("name", "")))} – '
        f'{html.escape(str(leader.get("role", "")))}, {html.escape(str(leader.get("institution", "")))}</option>'
        for i, leader in enumerate(leaders)
    )
    return f"""
<section class="dev-banner" aria-labelledby="dev-title">
  <h2 id="dev-title">Udviklingstilstand</h2>
  <p>Her er intet login fra KKintra. Vælg en demo-leder, så underskriver serveren et identitetstoken med udviklingsnøglen.</p>
  <form id="demo-login" class="dev-form">
    <label for="demo-leader">Demo-leder</label>
    <select id="demo-leader" name="leader">
{options}
    </select>
    <button type="submit">Start chatten som denne leder</button>
  </form>
  <p id="demo-status" class="dev-status" role="status"></p>
</section>"""


def render_page(settings: Settings) -> str:
    profile = get_profile()
    assistant = html.escape(str(profile.data["organisation"].get("assistant_name", "AF-assistenten")))
    org = html.escape(profile.name)
    dev = settings.development
    picker = _demo_picker(profile.demo_leaders) if dev else ""
    dev_script = '<script src="/static/dev-leader.js" defer></script>' if dev else ""
    socket_url = html.escape(settings.rasa_public_url, quote=True)
    forms_url = html.escape(profile.forms_page_url, quote=True)
    phone = html.escape(profile.phone)
    hours = html.escape(profile.phone_hours)
    # In production the intranet's own page carries data-identity-token or data-token-url.
    autostart = "false" if dev else "true"
    return f"""<!doctype html>
<html lang="da">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Administrative fællesskaber (AF) – KKintra</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/page.css">
<link rel="stylesheet" href="/static/af-chat.css">
</head>
<body>
<a class="skip-link" href="#main">Gå til indhold</a>
<header class="intra-header">
  <p class="intra-logo">KKintra</p>
  <nav aria-label="Brødkrumme" class="breadcrumb">
    <ol><li><a href="/">Forside</a></li><li><a href="/">{org}</a></li><li aria-current="page">Administrative fællesskaber</li></ol>
  </nav>
</header>
<main id="main">
{picker}
  <h1>Administrative fællesskaber (AF)</h1>
  <p class="lead">AF hjælper skoler og daginstitutioner med løn, personale, indkøb og økonomi.</p>
  <h2>Sådan får du hjælp</h2>
  <ul>
    <li>Spørg {assistant} i chatten nederst til højre. Den finder blanketter, svarer på regler og kan bestille hjælp eller et møde.</li>
    <li>Find alle blanketter på <a href="{forms_url}">AF's blanketside</a>.</li>
    <li>Ring til AF på {phone} ({hours}).</li>
  </ul>
  <h2>Skriv ikke CPR-numre i chatten</h2>
  <p>Chatten fjerner CPR-numre automatisk. Skriv hellere medarbejderens navn eller initialer.</p>
</main>
<footer class="intra-footer"><p>{org} · Københavns Kommune</p></footer>
<div id="af-chat"></div>
<script src="/static/vendor/socket.io.min.js" defer></script>
<script src="/static/af-chat.js" defer
  data-socket-url="{socket_url}"
  data-socket-path="/socket.io/"
  data-title="{assistant}"
  data-init-payload="/greet"
  data-autostart="{autostart}"></script>
{dev_script}
</body>
</html>
"""


async def page(request: web.Request) -> web.Response:
    settings: Settings = request.app[SETTINGS_KEY]
    return web.Response(text=render_page(settings), content_type="text/html", charset="utf-8")


async def dev_token(request: web.Request) -> web.Response:
    settings: Settings = request.app[SETTINGS_KEY]
    try:
        body = await request.json()
        index = int(body.get("leader"))
    except (ValueError, TypeError, AttributeError):
        raise web.HTTPBadRequest(text="Vælg en demo-leder.")
    leaders = get_profile().demo_leaders
    if not 0 <= index < len(leaders):
        raise web.HTTPBadRequest(text="Ukendt demo-leder.")
    identity = demo_identity(leaders[index])
    try:
        token = issue_token(identity, settings, ttl_seconds=DEV_TOKEN_TTL_SECONDS)
    except IdentityError as exc:
        raise web.HTTPServiceUnavailable(text=str(exc))
    return web.json_response({"token": token, "name": identity["name"], "institution": identity["institution"]})


async def socketio_client(_: web.Request) -> web.StreamResponse:
    if not SOCKETIO_CLIENT.is_file():
        logger.error("socket.io-client mangler: kør `npm ci` i projektets rod")
        raise web.HTTPNotFound(text="socket.io-client er ikke installeret (npm ci)")
    return web.FileResponse(SOCKETIO_CLIENT, headers={"Content-Type": "application/javascript"})


# The widget's own wording (af-chat.js's T): the response utter_widget_<key in snake case> in
# domain/channel.yml for each key, e.g. notSent -> utter_widget_not_sent.
WIDGET_KEYS = ("open", "close", "label", "placeholder", "send", "log", "you", "bot", "choices", "connecting",
               "offline", "notSent", "refused", "noToken", "newWindow", "chattingAs")
WIDGET_TEXTS = {key: "utter_widget_" + re.sub(r"([A-Z])", r"_\1", key).lower() for key in WIDGET_KEYS}
WIDGET_FILE = STATIC_DIR / "af-chat.js"
WIDGET_MARKER = "/*AF_CHAT_TEXTS*/null"


def widget_source() -> str:
    """af-chat.js with its wording from the domain (read again when a domain file changes)."""
    texts = {key: domain_texts.text(name) for key, name in WIDGET_TEXTS.items()}
    source = WIDGET_FILE.read_text(encoding="utf-8")
    return source.replace(WIDGET_MARKER, json.dumps(texts, ensure_ascii=False), 1)


async def widget(_: web.Request) -> web.Response:
    return web.Response(text=widget_source(), content_type="application/javascript", charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


def setup(app: web.Application, settings: Settings) -> None:
    app.router.add_get("/", page)
    app.router.add_get("/static/af-chat.js", widget)
    app.router.add_get("/static/vendor/socket.io.min.js", socketio_client)
    if settings.development:
        app.router.add_post("/dev/token", dev_token)
    app.router.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
