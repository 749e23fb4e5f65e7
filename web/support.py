"""The supporter console at ``/support`` (registered by ``web.app``).

Pages and endpoints (every one except the login form needs a valid session;
without one the page redirects to the login form and the API answers 401):

* ``GET  /support/login``, ``POST /support/login`` – log in (double-submit CSRF nonce,
  single use, ten minutes; throttled per address, user name and known browser in the
  shared store *before* the password is hashed; at most ``MAX_CONCURRENT_HASHES`` hashes at once).
* ``POST /support/logout``
* ``GET  /support`` – the console; ``GET /support/assets/support.js`` – its script.
* ``GET  /support/api/queue`` – waiting and active chats (polled every 1.5 s;
  it also marks the supporter as present, which is what "on duty" means).
* ``GET  /support/api/handoffs/{id}`` – one chat with its transcript (from Rasa's tracker):
  only a waiting chat or one this supporter took; every read is recorded (``transcript_reads``).
* ``POST /support/api/handoffs/{id}/take|messages|return|close`` – the supporter's steps.
* ``GET  /support/api/audit`` – the latest audit entries.

Every POST needs the session's CSRF token (``X-CSRF-Token`` header, or the
``csrf`` form field) and, when the browser sends one, a same-origin
``Origin``. Cookies are HttpOnly, SameSite=Strict, path /support, Secure
outside development mode. Every request checks that the supporter is still in
the supporters file; one who was removed loses her sessions at once. Each client
(session, or address before login) gets at most ``RATE_BURST`` requests at once
and ``RATE_PER_SECOND`` after that (in memory, per process: a flood brake).

The web server also runs the time-out task (``web.handoff_flow.run_timeouts``).

CLI for the operator::

    python -m web.support add-supporter --username sofie.lund --name "Sofie Lund"
    python -m web.support list-supporters
    python -m web.support audit [--limit 50]
    python -m web.support reads [--limit 50] [--handoff 7]
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import hmac
import html
import logging
import math
import sys
import time
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from af_core import transcript
from af_core.handoff_store import ACTIVE, WAITING, Handoff, HandoffStore, LoginLimits, Session, get_store
from af_core.profile import load_profile
from af_core.settings import Settings, get_settings
from web import support_auth
from web.app import client_ip
from web.handoff_flow import Flow, FlowError, run_timeouts
from web.rasa_api import RasaApi, RasaApiError

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "af_support_session"
LOGIN_COOKIE = "af_support_login"
DEVICE_COOKIE = "af_support_device"
COOKIE_PATH = "/support"
DEVICE_COOKIE_PATH = "/support/login"
LOGIN_LIMITS = LoginLimits()
MAX_CONCURRENT_HASHES = 4  # scrypt takes ~16 MiB and a CPU core for a moment; more at once get 503
RATE_PER_SECOND, RATE_BURST = 20.0, 100  # per client; the open console makes about 1.5 requests a second
READ_FORBIDDEN = ("Du kan kun læse samtaler, der venter, og dem, du selv har taget. "
                  "Samtalen er hos en anden medarbejder eller afsluttet.")


class HashSlots:
    """At most ``size`` password checks at once in this process; the rest are refused, not queued."""

    def __init__(self, size: int) -> None:
        self.size, self.used = size, 0

    def try_acquire(self) -> bool:
        if self.used >= self.size:
            return False
        self.used += 1
        return True

    def release(self) -> None:
        self.used = max(0, self.used - 1)


class RateLimiter:
    """Token buckets per client key, in memory, at most ``max_clients`` remembered (oldest dropped)."""

    def __init__(self, rate: float, burst: int, max_clients: int = 10_000) -> None:
        self.rate, self.burst, self.max_clients = rate, float(burst), max_clients
        self.buckets: "OrderedDict[str, Tuple[float, float]]" = OrderedDict()

    def wait(self, key: str, now: float) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        tokens, at = self.buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self.buckets[key] = (tokens, now)
        while len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        return wait


SETTINGS = web.AppKey("support_settings", Settings)
STORE = web.AppKey("support_store", HandoffStore)
FLOW = web.AppKey("support_flow", Flow)
CLOCK = web.AppKey("support_clock", object)  # () -> unix time; tests replace it
HASH_SLOTS = web.AppKey("support_hash_slots", HashSlots)
LIMITER = web.AppKey("support_limiter", RateLimiter)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --------------------------------------------------------------------------- helpers
def _secure(request: web.Request, settings: Settings) -> bool:
    return request.secure or not settings.development


def _set_cookie(response: web.StreamResponse, request: web.Request, settings: Settings, name: str, value: str,
                max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, httponly=True, samesite="Strict",
                        secure=_secure(request, settings))


def _same_origin(request: web.Request) -> bool:
    """A browser's Origin must be our own; clients that send none (scripts, tests) rely on the CSRF token."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    # Compare the host only: behind a TLS-terminating proxy the scheme we see is http.
    return urlsplit(origin).netloc == request.host


def _unauthorised(request: web.Request) -> web.StreamResponse:
    if request.path.startswith("/support/api/"):
        return web.json_response({"error": "Du er ikke logget ind. Log ind igen."}, status=401)
    if request.method == "GET":
        raise web.HTTPSeeOther("/support/login")
    return web.json_response({"error": "Du er ikke logget ind. Log ind igen."}, status=401)


def _live_session(store: HandoffStore, settings: Settings, sid: str) -> Optional[Session]:
    session = store.touch_session(sid, present=False)
    if session is not None and support_auth.has_role(settings, session.username, "supporter"):
        store.touch_session(sid)  # on duty: leaders may be queued for her
    if session is None or support_auth.is_supporter(settings, session.username):
        return session
    # removed from the supporters file: every session of hers ends now (and so does her presence)
    store.delete_sessions_for(session.username)
    store.audit("session_revoked", session.username, detail="fjernet fra medarbejderfilen")
    log.warning("%s er ikke længere medarbejder; sessionerne er lukket", session.username)
    return None


async def current_session(request: web.Request) -> Optional[Session]:
    settings = request.app[SETTINGS]
    sid = support_auth.session_id_from_cookie(settings, request.cookies.get(SESSION_COOKIE))
    if sid is None:
        return None
    return await asyncio.to_thread(_live_session, request.app[STORE], settings, sid)


HOME_PAGES = {support_auth.SUPPORTER: "/support", support_auth.TRAINER: "/support/traener"}
WRONG_ROLE = "Du har ikke adgang til denne del af konsollen."


def _wrong_role(request: web.Request, session: Session) -> web.StreamResponse:
    """A page for another role sends the browser to this person's own page; the API answers 403."""
    if request.method == "GET" and "/api/" not in request.path:
        settings = request.app[SETTINGS]
        for role, page in HOME_PAGES.items():
            if page != request.path.rstrip("/") and support_auth.has_role(settings, session.username, role):
                raise web.HTTPSeeOther(page)
    return web.json_response({"error": WRONG_ROLE}, status=403)


def requires_role(role: Optional[str]) -> Callable[[Callable[[web.Request, Session], Awaitable[web.StreamResponse]]], Handler]:
    """A valid session, the CSRF rules for POST, and – unless ``role`` is None – that role in the
    supporters file now (support_auth.ROLES; checked on every request)."""

    def decorate(handler: Callable[[web.Request, Session], Awaitable[web.StreamResponse]]) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            session = await current_session(request)
            if session is None:
                return _unauthorised(request)
            if request.method == "POST":
                token = request.headers.get("X-CSRF-Token")
                if token is None and request.content_type == "application/x-www-form-urlencoded":
                    token = (await request.post()).get("csrf")
                if not _same_origin(request) or not isinstance(token, str) or not hmac.compare_digest(token, session.csrf):
                    return web.json_response({"error": "Ugyldig formular. Genindlæs siden."}, status=403)
            if role is not None and not await asyncio.to_thread(
                    support_auth.has_role, request.app[SETTINGS], session.username, role):
                return _wrong_role(request, session)
            return await handler(request, session)

        return wrapped

    return decorate


def requires_session(handler: Callable[[web.Request, Session], Awaitable[web.StreamResponse]]) -> Handler:
    """The console's pages and API: the supporter role (the trainer's workbench has its own)."""
    return requires_role(support_auth.SUPPORTER)(handler)


def _handoff_json(handoff: Handoff, session: Session, now: float) -> Dict[str, Any]:
    return {
        "id": handoff.id,
        "status": handoff.status,
        "leader_name": handoff.leader_name or "Ukendt leder (intet login)",
        "leader_institution": handoff.leader_institution or "",
        "leader_email": handoff.leader_email or "",
        "topic": handoff.topic or "Ikke oplyst",
        "requested_at": handoff.requested_at,
        "waiting_seconds": int(max(0, (handoff.taken_at or now) - handoff.requested_at)),
        "supporter_name": handoff.supporter_name or "",
        "mine": handoff.status == ACTIVE and handoff.supporter == session.username,
        "case_reference": handoff.case_reference or "",
    }


def _flow_error(exc: FlowError) -> web.Response:
    return web.json_response({"error": str(exc)}, status=exc.status)


def _rasa_error(exc: RasaApiError) -> web.Response:
    log.warning("Rasa-API'et svarede ikke: %s", exc)
    return web.json_response({"error": "Chat-serveren svarer ikke lige nu. Prøv igen om lidt."}, status=502)


def _handoff_id(request: web.Request) -> int:
    try:
        return int(request.match_info["handoff_id"])
    except ValueError:
        raise web.HTTPNotFound()


async def _json_body(request: web.Request) -> Dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# --------------------------------------------------------------------------- pages
def _page(title: str, body: str, scripts: str = "") -> str:
    return f"""<!doctype html>
<html lang="da">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="/static/support.css">
</head>
<body>
<a class="skip-link" href="#main">Gå til indhold</a>
{body}
{scripts}
</body>
</html>
"""


def render_login(nonce: str, error: str = "", username: str = "") -> str:
    alert = f'<p class="error" role="alert" id="login-error">{html.escape(error)}</p>' if error else ""
    described = ' aria-describedby="login-error"' if error else ""
    return _page("Log ind – AF's chat-konsol", f"""
<main id="main" class="login">
  <h1>AF's chat-konsol</h1>
  <p>Log ind for at se ledere, der venter på en medarbejder.</p>
  {alert}
  <form method="post" action="/support/login" class="login-form"{described}>
    <input type="hidden" name="csrf" value="{html.escape(nonce, quote=True)}">
    <label for="username">Brugernavn</label>
    <input id="username" name="username" autocomplete="username" required value="{html.escape(username, quote=True)}" autofocus>
    <label for="password">Adgangskode</label>
    <input id="password" name="password" type="password" autocomplete="current-password" required>
    <button type="submit">Log ind</button>
  </form>
</main>""")


def render_console(session: Session, settings: Settings) -> str:
    name = html.escape(session.display_name)
    csrf = html.escape(session.csrf, quote=True)
    workbench = ('<a class="header-link" href="/support/traener">Træn assistenten</a>'
                 if support_auth.has_role(settings, session.username, support_auth.TRAINER) else "")
    return _page("AF's chat-konsol", f"""
<header class="console-header">
  <h1>AF's chat-konsol</h1>
  <p>Du er logget ind som <strong>{name}</strong>. Lederne ser dig som <strong>{html.escape(transcript.supporter_label(session.display_name))}</strong>.</p>
  {workbench}
  <form method="post" action="/support/logout">
    <input type="hidden" name="csrf" value="{csrf}">
    <button type="submit" class="secondary">Log ud</button>
  </form>
</header>
<main id="main" class="console" data-csrf="{csrf}" data-wait-seconds="{settings.handoff_wait_seconds}">
  <section class="queue" aria-labelledby="queue-title">
    <h2 id="queue-title">Ledere der venter</h2>
    <p id="queue-status" role="status" aria-live="polite">Henter køen …</p>
    <ul id="queue" class="queue-list"></ul>
  </section>
  <section class="conversation" aria-labelledby="conversation-title">
    <h2 id="conversation-title" tabindex="-1">Vælg en samtale i køen</h2>
    <dl id="conversation-info" class="info" hidden></dl>
    <p id="conversation-status" class="status" role="status" aria-live="polite"></p>
    <ol id="transcript" class="transcript" role="log" aria-live="polite" aria-label="Samtalen med lederen" tabindex="0" hidden></ol>
    <div id="controls" hidden>
      <button type="button" id="take">Overtag samtalen</button>
      <form id="reply" class="reply" hidden>
        <label for="reply-text">Din besked til lederen</label>
        <textarea id="reply-text" rows="3" maxlength="2000" required></textarea>
        <button type="submit">Send besked</button>
      </form>
      <div id="finish" class="finish" hidden>
        <button type="button" id="hand-back" class="secondary">Giv samtalen tilbage til AF-assistenten</button>
        <form id="close">
          <fieldset>
            <legend>Afslut samtalen</legend>
            <input type="checkbox" id="close-case" checked>
            <label for="close-case">Opret en sag med samtalen (CPR-numre fjernes)</label>
            <label for="close-note" class="block">Note til sagen (valgfri)</label>
            <textarea id="close-note" rows="2" maxlength="2000"></textarea>
            <button type="submit">Afslut samtalen</button>
          </fieldset>
        </form>
      </div>
    </div>
  </section>
  <section class="audit" aria-labelledby="audit-title">
    <details id="audit-details">
      <summary><h2 id="audit-title">Log over overtagelser</h2></summary>
      <ul id="audit"></ul>
    </details>
  </section>
</main>""", '<script src="/support/assets/support.js" defer></script>')


async def login_form(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if await current_session(request) is not None:
        raise web.HTTPSeeOther("/support")
    cookie, nonce = support_auth.login_nonce(settings, request.app[CLOCK]())
    response = web.Response(text=render_login(nonce), content_type="text/html", charset="utf-8")
    _set_cookie(response, request, settings, LOGIN_COOKIE, cookie, support_auth.NONCE_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


def _minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return "et minut" if minutes == 1 else f"{minutes} minutter"


async def login(request: web.Request) -> web.StreamResponse:
    """Log in. In this order, so that nothing expensive happens for a refused attempt:
    form and nonce signature and age → reserve the attempt in the shared store (throttling,
    single-use nonce) → a free hashing slot → the password hash → record the outcome."""
    settings = request.app[SETTINGS]
    store = request.app[STORE]
    now = request.app[CLOCK]()
    form = await request.post()
    username = str(form.get("username", ""))[:64].strip().lower()
    password = str(form.get("password", ""))[:1024]
    nonce = str(form.get("csrf", ""))

    def refuse(message: str, status: int, retry_after: Optional[float] = None) -> web.Response:
        cookie, fresh = support_auth.login_nonce(settings, now)
        response = web.Response(text=render_login(fresh, message, username), status=status,
                                content_type="text/html", charset="utf-8")
        _set_cookie(response, request, settings, LOGIN_COOKIE, cookie, support_auth.NONCE_SECONDS)
        response.headers["Cache-Control"] = "no-store"
        if retry_after is not None:
            response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        return response

    if not _same_origin(request) or not support_auth.login_nonce_ok(
        settings, request.cookies.get(LOGIN_COOKIE), nonce, now
    ):
        return refuse("Formularen var for gammel. Prøv igen.", 403)
    device_value = request.cookies.get(DEVICE_COOKIE)
    device = support_auth.device_id(settings, device_value, username)
    reservation = await asyncio.to_thread(
        store.reserve_login, ip=client_ip(request), username=username, device=device,
        nonce_hash=support_auth.nonce_hash(nonce), nonce_expires_at=now + support_auth.NONCE_SECONDS,
        limits=LOGIN_LIMITS, now=now,
    )
    if reservation.refused == "throttled":
        return refuse(f"For mange forkerte forsøg. Vent {_minutes(reservation.retry_after)}, og prøv igen.", 429,
                      reservation.retry_after)
    if reservation.refused == "nonce" or reservation.attempt_id is None:
        return refuse("Formularen er allerede brugt. Prøv igen.", 403)
    slots = request.app[HASH_SLOTS]
    if not slots.try_acquire():
        await asyncio.to_thread(store.cancel_login, reservation.attempt_id)
        return refuse("Der er travlt lige nu. Vent et øjeblik, og prøv igen.", 503, 2)
    try:
        supporter = await asyncio.to_thread(support_auth.authenticate, settings, username, password)
    finally:
        slots.release()
    await asyncio.to_thread(store.finish_login, reservation.attempt_id, supporter is not None)
    if supporter is None:
        await asyncio.to_thread(store.audit, "login_failed", username[:64] or None)
        return refuse("Forkert brugernavn eller adgangskode.", 401)
    cookie, sid_hash, csrf, expires_at = support_auth.new_session_cookie(settings)
    await asyncio.to_thread(store.create_session, sid_hash, supporter.username, supporter.name, csrf, expires_at,
                            None, supporter.has_role("supporter"))
    await asyncio.to_thread(store.audit, "login", supporter.username)
    response = web.HTTPSeeOther("/support")
    _set_cookie(response, request, settings, SESSION_COOKIE, cookie, settings.web_session_minutes * 60)
    # remember this browser as hers: others' wrong guesses never lock it out
    response.set_cookie(DEVICE_COOKIE, device_value if device else support_auth.device_cookie(settings, supporter.username),
                        max_age=support_auth.DEVICE_DAYS * 86400, path=DEVICE_COOKIE_PATH, httponly=True,
                        samesite="Strict", secure=_secure(request, settings))
    response.del_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    raise response


@requires_role(None)  # every role may log out
async def logout(request: web.Request, session: Session) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    sid = support_auth.session_id_from_cookie(settings, request.cookies.get(SESSION_COOKIE))
    if sid:
        await asyncio.to_thread(request.app[STORE].delete_session, sid)
    await asyncio.to_thread(request.app[STORE].audit, "logout", session.username)
    response = web.HTTPSeeOther("/support/login")
    response.del_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    raise response


@requires_session
async def console(request: web.Request, session: Session) -> web.Response:
    response = web.Response(text=render_console(session, request.app[SETTINGS]), content_type="text/html",
                            charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


@requires_session
async def console_script(request: web.Request, session: Session) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "support.js", headers={"Content-Type": "application/javascript",
                                                                "Cache-Control": "no-store"})


# --------------------------------------------------------------------------- API
@requires_session
async def api_queue(request: web.Request, session: Session) -> web.Response:
    store = request.app[STORE]
    now = time.time()
    handoffs = await asyncio.to_thread(store.list_open)
    present = await asyncio.to_thread(store.present_supporters, request.app[SETTINGS].handoff_presence_seconds)
    return web.json_response({
        "me": {"username": session.username, "name": session.display_name},
        "present": present,
        "handoffs": [_handoff_json(h, session, now) for h in handoffs],
    })


@requires_session
async def api_handoff(request: web.Request, session: Session) -> web.Response:
    store = request.app[STORE]
    handoff = await asyncio.to_thread(store.get, _handoff_id(request))
    if handoff is None:
        raise web.HTTPNotFound()
    if handoff.status != WAITING and handoff.supporter != session.username:
        return web.json_response({"error": READ_FORBIDDEN}, status=403)
    try:
        tracker = await request.app[FLOW].api.tracker(handoff.conversation_id)
    except RasaApiError as exc:
        return _rasa_error(exc)
    await asyncio.to_thread(store.record_read, session.username, handoff)  # who, when, which – never the text
    return web.json_response({
        "handoff": _handoff_json(handoff, session, time.time()),
        "transcript": transcript.entries(tracker, handoff.leader_name or "Lederen"),
    })


async def _step(request: web.Request, step: Callable[[], Awaitable[Any]]) -> web.Response:
    try:
        result = await step()
    except FlowError as exc:
        return _flow_error(exc)
    except RasaApiError as exc:
        return _rasa_error(exc)
    return web.json_response({"ok": True, **(result if isinstance(result, dict) else {})})


@requires_session
async def api_take(request: web.Request, session: Session) -> web.Response:
    flow = request.app[FLOW]
    return await _step(request, lambda: flow.take_over(_handoff_id(request), session.username, session.display_name))


@requires_session
async def api_message(request: web.Request, session: Session) -> web.Response:
    body = await _json_body(request)
    flow = request.app[FLOW]
    return await _step(request, lambda: flow.send(_handoff_id(request), session.username, session.display_name,
                                                  str(body.get("text", ""))))


@requires_session
async def api_return(request: web.Request, session: Session) -> web.Response:
    flow = request.app[FLOW]
    return await _step(request, lambda: flow.hand_back(_handoff_id(request), session.username, session.display_name))


@requires_session
async def api_close(request: web.Request, session: Session) -> web.Response:
    body = await _json_body(request)
    flow = request.app[FLOW]
    return await _step(request, lambda: flow.close(
        _handoff_id(request), session.username, session.display_name, bool(body.get("create_case")),
        str(body.get("note", ""))[:2000],
    ))


@requires_session
async def api_audit(request: web.Request, session: Session) -> web.Response:
    entries = await asyncio.to_thread(request.app[STORE].audit_entries, 200)
    # the trainers' entries (traener_*) are shown in their workbench, not in the hand-over log
    return web.json_response({"entries": [e.__dict__ for e in entries if not e.action.startswith("traener_")][:50]})


# --------------------------------------------------------------------------- app wiring
@web.middleware
async def _rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/support"):
        return await handler(request)
    sid = support_auth.session_id_from_cookie(request.app[SETTINGS], request.cookies.get(SESSION_COOKIE))
    key = f"session:{sid}" if sid else f"ip:{client_ip(request)}"  # a forged cookie is no new key
    wait = request.app[LIMITER].wait(key, time.monotonic())
    if wait <= 0:
        return await handler(request)
    message = "Du sender for mange forespørgsler. Vent et øjeblik, og prøv igen."
    headers = {"Retry-After": str(max(1, math.ceil(wait)))}
    if request.path.startswith("/support/api/"):
        return web.json_response({"error": message}, status=429, headers=headers)
    return web.Response(text=message, status=429, headers=headers, content_type="text/plain", charset="utf-8")


async def _background(app: web.Application):
    settings = app[SETTINGS]
    session = aiohttp.ClientSession()
    # the profile named by this app's settings (not the process environment's)
    app[FLOW] = Flow(settings, load_profile(settings.profile_dir), app[STORE], RasaApi(settings, session))
    task = asyncio.create_task(run_timeouts(app[FLOW]))
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    await session.close()


def setup(app: web.Application, settings: Settings) -> None:
    app[SETTINGS] = settings
    app[STORE] = get_store(settings)
    app[CLOCK] = time.time
    app[HASH_SLOTS] = HashSlots(MAX_CONCURRENT_HASHES)
    app[LIMITER] = RateLimiter(RATE_PER_SECOND, RATE_BURST)
    app.middlewares.append(_rate_limit)
    app.cleanup_ctx.append(_background)
    app.router.add_get("/support/login", login_form)
    app.router.add_post("/support/login", login)
    app.router.add_post("/support/logout", logout)
    app.router.add_get("/support", console)
    app.router.add_get("/support/", console)
    app.router.add_get("/support/assets/support.js", console_script)
    app.router.add_get("/support/api/queue", api_queue)
    app.router.add_get("/support/api/audit", api_audit)
    app.router.add_get("/support/api/handoffs/{handoff_id}", api_handoff)
    app.router.add_post("/support/api/handoffs/{handoff_id}/take", api_take)
    app.router.add_post("/support/api/handoffs/{handoff_id}/messages", api_message)
    app.router.add_post("/support/api/handoffs/{handoff_id}/return", api_return)
    app.router.add_post("/support/api/handoffs/{handoff_id}/close", api_close)


# --------------------------------------------------------------------------- CLI
def _cli(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m web.support", description="AF's chat-konsol: medarbejdere og log")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add-supporter", help="tilføj eller opdatér en medarbejder")
    add.add_argument("--username", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--password-stdin", action="store_true", help="læs adgangskoden fra stdin (til scripts)")
    add.add_argument("--roles", default="supporter",
                     help="supporter (svarer ledere), trainer (træner assistenten) eller begge: supporter,trainer")
    commands.add_parser("list-supporters", help="vis medarbejderne")
    audit = commands.add_parser("audit", help="vis loggen over overtagelser")
    audit.add_argument("--limit", type=int, default=50)
    reads = commands.add_parser("reads", help="vis hvem der har læst hvilke samtaler")
    reads.add_argument("--limit", type=int, default=50)
    reads.add_argument("--handoff", type=int, default=None, help="kun denne chat (nummer)")
    args = parser.parse_args(argv)
    settings = get_settings()

    if args.command == "add-supporter":
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("Adgangskode: ")
            if getpass.getpass("Gentag adgangskoden: ") != password:
                print("Adgangskoderne er ikke ens.", file=sys.stderr)
                return 1
        try:
            supporter = support_auth.add_supporter(settings.supporters_file, args.username, args.name, password,
                                                   support_auth.parse_roles(args.roles))
        except support_auth.SupporterFileError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        print(f"{supporter.name} ({supporter.username}) kan nu logge ind i {settings.supporters_file.name}.")
        return 0
    if args.command == "list-supporters":
        for supporter in support_auth.load_supporters(settings.supporters_file).values():
            print(f"{supporter.username}\t{supporter.name}\t{','.join(supporter.roles)}")
        return 0
    if args.command == "reads":
        print("første\tseneste\tmedarbejder\tchat\tsamtale\tvisninger")
        for read in get_store(settings).transcript_reads(args.limit, args.handoff):
            first, last = (datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") for t in (read.first_at, read.last_at))
            print(f"{first}\t{last}\t{read.supporter}\t{read.handoff_id}\t{read.conversation_id}\t{read.reads}")
        return 0
    for entry in get_store(settings).audit_entries(args.limit):
        stamp = datetime.fromtimestamp(entry.at).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{stamp}\t{entry.action}\t{entry.supporter or '-'}\t{entry.handoff_id or '-'}\t"
              f"{entry.conversation_id or '-'}\t{entry.detail or ''}")
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
