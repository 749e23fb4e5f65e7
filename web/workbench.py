"""The trainer's workbench at ``/support/traener``: AF improves the assistant without a terminal.

Inside the supporter console (same login, sessions, CSRF rules, brute-force limits and
request brake; web/support.py), for the role ``trainer`` (web/support_auth.py). Every page
and endpoint below refuses a client without that role: a page sends the browser to the
person's own page, the API answers 401 without a session and 403 without the role.

* ``GET  /support/traener`` – the page; ``GET /support/assets/workbench.js`` – its script.
* ``GET  /support/api/traener/overview`` – the catalogue to choose from, the model in service, the job.
* ``GET  /support/api/traener/review?days=14`` – what went badly, grouped, CPR numbers masked
  (trainer/review.py in the child process, trainer/tools.py).
* ``GET  /support/api/traener/conversation?ref=…`` – the whole conversation of a reviewed
  message, masked. ``ref`` is signed by the review, so only those conversations can be read;
  every read is audited.
* ``POST /support/api/traener/check`` and ``…/annotate`` – warnings before adding, and the
  decision (trainer/annotate.py → data/nlu/fra-traenere.yml).
* ``GET  /support/api/traener/edit/{kind}/{id}``, ``POST …/preview``, ``POST …`` – a form, a rule
  answer or a response's wording (trainer/editing.py), with the hash the trainer started from.
* ``GET  /support/api/traener/new/{kind}``, ``POST …/preview``, ``POST …`` – a new form or rule topic
  (trainer/creating.py): the same fields and validators, an id made from the title or chosen.
* ``POST /support/api/traener/train``, ``GET …/train`` – retrain in the background, progress;
  ``POST …/train/stop`` stops it (trainer/jobs.py kills its process group).
* ``GET  /support/api/traener/comparison`` – the new model against the one in service.
* ``POST /support/api/traener/activate`` and ``…/rollback`` – models/i-drift, which every Rasa
  replica follows (scripts/model_watch.py); not approved needs a written reason.
* ``GET  /support/api/traener/audit`` – who did what and when (the console's audit table,
  actions ``traener_*``), and the trainers' notes to the catalogue owner.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import json
import logging
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Optional

import aiohttp
from aiohttp import web

from af_core import rasa_http
from af_core.handoff_store import Session
from af_core.settings import Settings
from web import support, support_auth

log = logging.getLogger(__name__)

try:
    from trainer import annotate, editing, jobs, serving
    from trainer import creating
    from trainer.files import TrainerError, shown
    from trainer.project import Project
except ModuleNotFoundError as exc:  # an image without the checkout's trainer/ (the app image): no workbench
    if exc.name not in ("trainer", "scripts") and not str(exc.name).startswith(("trainer.", "scripts.")):
        raise
    MISSING = exc.name
else:
    MISSING = None

STATIC_DIR = Path(__file__).resolve().parent / "static"
PROJECT = web.AppKey("workbench_project", object)
REVIEW_DAYS = (7, 14, 30, 90)
MIN_REASON = 10
AUDIT_PREFIX = "traener_"

trainer_only = support.requires_role(support_auth.TRAINER)
Handler = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]


# --------------------------------------------------------------------------- helpers
def _project(request: web.Request) -> Project:
    return request.app[PROJECT]


def _settings(request: web.Request) -> Settings:
    return request.app[support.SETTINGS]


def _error(exc: TrainerError) -> web.Response:
    return web.json_response({"error": str(exc)}, status=getattr(exc, "status", 400))


async def _audit(request: web.Request, session: Session, action: str, detail: str) -> None:
    await asyncio.to_thread(request.app[support.STORE].audit, AUDIT_PREFIX + action, session.username,
                            detail=detail[:500])


async def _body(request: web.Request) -> Dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def tracker_request(settings: Settings) -> Dict[str, Any]:
    """Where the Rasa server keeps the conversations, for the child process (on stdin, never argv)."""
    if settings.tracker_store == "postgres":
        return {"kind": "postgres", "host": settings.postgres_host, "port": settings.postgres_port,
                "db": settings.postgres_db, "user": settings.postgres_user, "password": settings.postgres_password}
    return {"kind": "sqlite", "path": str(settings.tracker_db_path)}


def _mac(settings: Settings, value: str) -> str:
    return hmac.new(settings.web_session_key.encode(), ("review:" + value).encode(), hashlib.sha256).hexdigest()[:32]


def conversation_ref(settings: Settings, sender: str, at: float) -> str:
    value = json.dumps([sender, at], separators=(",", ":"))
    return base64.urlsafe_b64encode(f"{value}|{_mac(settings, value)}".encode()).decode().rstrip("=")


def read_ref(settings: Settings, ref: str) -> Optional[tuple]:
    try:
        raw = base64.urlsafe_b64decode(ref + "=" * (-len(ref) % 4)).decode()
        value, mac = raw.rsplit("|", 1)
        if not hmac.compare_digest(mac, _mac(settings, value)):
            return None
        sender, at = json.loads(value)
        return str(sender), float(at)
    except (ValueError, TypeError, UnicodeDecodeError):
        return None


# --------------------------------------------------------------------------- the page
def render_page(session: Session, settings: Settings) -> str:
    name = html.escape(session.display_name)
    csrf = html.escape(session.csrf, quote=True)
    console = ('<a class="header-link" href="/support">Chat-konsollen</a>'
               if support_auth.has_role(settings, session.username, support_auth.SUPPORTER) else "")
    days = "".join(f'<option value="{d}"{" selected" if d == 14 else ""}>de sidste {d} dage</option>'
                   for d in REVIEW_DAYS)
    tabs = [("review", "Gennemgå"), ("train", "Træn og sammenlign"), ("serving", "I drift"),
            ("edit", "Ret blanketter og svar"), ("log", "Log")]
    tab_buttons = "".join(
        f'<button type="button" role="tab" id="tab-{key}" aria-controls="panel-{key}" '
        f'aria-selected="{"true" if i == 0 else "false"}" tabindex="{0 if i == 0 else -1}">{label}</button>'
        for i, (key, label) in enumerate(tabs))
    return support._page("Træn assistenten – AF", f"""
<header class="console-header">
  <h1>Træn AF-assistenten</h1>
  <p>Du er logget ind som <strong>{name}</strong> (træner).</p>
  {console}
  <form method="post" action="/support/logout">
    <input type="hidden" name="csrf" value="{csrf}">
    <button type="submit" class="secondary">Log ud</button>
  </form>
</header>
<main id="main" class="workbench" data-csrf="{csrf}">
  <div role="tablist" aria-label="Trænerens trin" class="tabs">{tab_buttons}</div>

  <section role="tabpanel" id="panel-review" aria-labelledby="tab-review" tabindex="0">
    <h2>Gennemgå det, assistenten havde svært ved</h2>
    <p class="help">Her er de beskeder, assistenten ikke forstod, var usikker på, eller hvor lederen bad om en
      medarbejder, gav op eller sagde, at svaret ikke hjalp. Ens beskeder står samlet. CPR-numre er fjernet.
      Vælg, hvad hver besked handler om. Det bliver til et eksempel, som assistenten lærer af, når du træner.</p>
    <form id="review-form" class="row">
      <label for="review-days">Periode</label>
      <select id="review-days">{days}</select>
      <button type="submit">Hent beskeder</button>
    </form>
    <p id="review-status" class="status" role="status" aria-live="polite"></p>
    <ol id="review-groups" class="groups"></ol>
    <section id="conversation" class="conversation-view" aria-labelledby="conversation-title" hidden>
      <h3 id="conversation-title" tabindex="-1">Hele samtalen</h3>
      <p class="help">Beskeden fra gennemgangen er markeret. CPR-numre er fjernet.</p>
      <ol id="conversation-log" class="transcript"></ol>
      <button type="button" id="conversation-close" class="secondary">Luk samtalen</button>
    </section>
  </section>

  <section role="tabpanel" id="panel-train" aria-labelledby="tab-train" tabindex="0" hidden>
    <h2>Træn en ny model og sammenlign</h2>
    <p class="help">Træningen bruger træningsdata, som de er nu, også dine nye eksempler. Den nye model måles på
      testsæt, den aldrig er trænet på, og sammenlignes med modellen i drift. Intet kommer i drift af sig selv.</p>
    <button type="button" id="train-start">Træn en ny model</button>
    <div id="train-progress-box" hidden>
      <label for="train-progress" id="train-step">Træning</label>
      <progress id="train-progress" max="100" value="0"></progress>
      <span id="train-percent" aria-hidden="true"></span>
      <button type="button" id="train-stop" class="secondary">Stop træningen</button>
    </div>
    <p id="train-status" class="status" role="status" aria-live="polite"></p>
    <section id="comparison" aria-labelledby="comparison-title" hidden>
      <h3 id="comparison-title" tabindex="-1">Sammenligning</h3>
      <div id="verdict" class="verdict"></div>
      <table id="sets-table" class="figures">
        <caption>Rigtige svar pr. testsæt</caption>
        <thead><tr><th scope="col">Testsæt</th><th scope="col">Beskeder</th><th scope="col">Ny model</th><th scope="col">Model i drift</th></tr></thead>
        <tbody></tbody>
      </table>
      <table id="labels-table" class="figures">
        <caption>Pr. intent, blanket og regelsvar (F1: 1 er bedst). Kun dem, der ændrede sig.</caption>
        <thead><tr><th scope="col">Hvad</th><th scope="col">Beskeder</th><th scope="col">Ny model</th><th scope="col">Model i drift</th><th scope="col">Ændring</th></tr></thead>
        <tbody></tbody>
      </table>
      <h4 id="better-title">Beskeder, den nye model svarer rigtigt på nu</h4>
      <ul id="better" class="changes" aria-labelledby="better-title"></ul>
      <h4 id="worse-title">Beskeder, den nye model svarer forkert på nu</h4>
      <ul id="worse" class="changes" aria-labelledby="worse-title"></ul>
      <form id="activate-form" class="activate">
        <h3>Sæt den nye model i drift</h3>
        <p id="activate-help" class="help"></p>
        <div id="reason-box" hidden>
          <label for="activate-reason">Hvorfor skal den i drift alligevel? (mindst {MIN_REASON} tegn, kommer i loggen)</label>
          <textarea id="activate-reason" rows="2" maxlength="500"></textarea>
        </div>
        <button type="submit" id="activate">Sæt i drift</button>
      </form>
    </section>
  </section>

  <section role="tabpanel" id="panel-serving" aria-labelledby="tab-serving" tabindex="0" hidden>
    <h2>Modellen i drift</h2>
    <dl id="serving-info" class="info"></dl>
    <p id="serving-status" class="status" role="status" aria-live="polite"></p>
    <form id="rollback-form">
      <h3>Rul tilbage</h3>
      <p class="help">Gik noget galt? Så kommer den forrige model i drift igen. Alle assistenter skifter inden for
        få sekunder.</p>
      <label for="rollback-reason">Hvorfor? (valgfrit, kommer i loggen)</label>
      <textarea id="rollback-reason" rows="2" maxlength="500"></textarea>
      <button type="submit" id="rollback">Rul tilbage til den forrige model</button>
      <p id="rollback-status" class="status" role="status" aria-live="polite"></p>
    </form>
  </section>

  <section role="tabpanel" id="panel-edit" aria-labelledby="tab-edit" tabindex="0" hidden>
    <h2>Ret en blanket, et regelsvar eller det, assistenten siger</h2>
    <p class="help">Ændringen gemmes i de samme filer, som udviklerne bruger, og virker med det samme for blanketter
      og regelsvar. En ændret sætning i assistentens svar kræver en ny træning.</p>
    <div class="row">
      <button type="button" id="new-form" class="secondary">Ny blanket</button>
      <button type="button" id="new-faq" class="secondary">Nyt regelemne</button>
    </div>
    <p class="help">En ny blanket eller et nyt regelemne virker også med det samme: assistenten søger selv i
      blanketterne og regelsvarene, så du skal ikke træne en ny model. Det kræver kun, at assistenten forstår, at
      lederen spørger efter en blanket eller om en regel. Gør den ikke det, så tilføj eksempler under Gennemgå, og træn.</p>
    <form id="edit-pick" class="row">
      <label for="edit-kind">Hvad vil du rette?</label>
      <select id="edit-kind">
        <option value="form">En blanket</option>
        <option value="faq">Et regelsvar</option>
        <option value="response">En sætning, assistenten siger</option>
      </select>
      <label for="edit-filter">Søg efter navn</label>
      <input id="edit-filter" type="search" autocomplete="off">
      <label for="edit-id">Vælg</label>
      <select id="edit-id"></select>
      <button type="submit">Åbn</button>
    </form>
    <form id="edit-form" hidden>
      <h3 id="edit-title" tabindex="-1"></h3>
      <div id="edit-fields"></div>
      <p id="edit-status" class="status" role="status" aria-live="polite"></p>
      <div class="row">
        <button type="button" id="edit-preview" class="secondary">Vis som i chatten</button>
        <button type="submit" id="edit-save">Gem ændringen</button>
      </div>
      <section id="preview" class="preview" aria-labelledby="preview-title" hidden>
        <h4 id="preview-title">Sådan ser lederen det</h4>
        <div id="preview-chat" class="preview-chat"></div>
      </section>
    </form>
  </section>

  <section role="tabpanel" id="panel-log" aria-labelledby="tab-log" tabindex="0" hidden>
    <h2>Hvem gjorde hvad</h2>
    <ul id="audit" class="audit-list"></ul>
    <h2>Ønsker til kataloget</h2>
    <p class="help">Beskeder, hvor en træner skrev, at der mangler en blanket eller et svar. Katalogejeren læser dem.</p>
    <ul id="notes" class="audit-list"></ul>
  </section>
</main>""", '<script src="/support/assets/workbench.js" defer></script>').replace(
        '<link rel="stylesheet" href="/static/support.css">',
        '<link rel="stylesheet" href="/static/support.css">\n<link rel="stylesheet" href="/static/workbench.css">')


@trainer_only
async def page(request: web.Request, session: Session) -> web.Response:
    response = web.Response(text=render_page(session, _settings(request)), content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


@trainer_only
async def script(request: web.Request, session: Session) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "workbench.js", headers={"Content-Type": "application/javascript",
                                                                  "Cache-Control": "no-store"})


# --------------------------------------------------------------------------- overview and serving
def _model_name(path: Optional[Path]) -> Optional[str]:
    return path.name if path is not None else None


def serving_state(project: Project, settings: Settings) -> Dict[str, Any]:
    root = project.root
    candidate = serving.read_candidate(root)
    return {
        "in_service": _model_name(serving.in_service(root)),
        "previous": _model_name(serving.previous(root)),
        "candidate": candidate,
        "follows_pointer": settings.model_poll_seconds > 0,
        "poll_seconds": settings.model_poll_seconds,
        "shared_models_dir": Path(settings.models_dir).resolve() == project.models_dir.resolve(),
    }


async def running_model(request: web.Request) -> Optional[str]:
    """The model the Rasa server (one replica behind settings.rasa_url) has loaded, if it answers."""
    settings = _settings(request)
    flow = request.app.get(support.FLOW)
    client = getattr(getattr(flow, "api", None), "session", None)
    if client is None:
        return None
    try:
        async with client.get(
                f"{settings.rasa_url}/status", headers=rasa_http.auth_headers(settings),
                timeout=aiohttp.ClientTimeout(total=5)) as response:
            if response.status != 200:
                return None
            data = await response.json()
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError):
        return None
    return Path(str(data.get("model_file") or "")).name or None


@trainer_only
async def api_overview(request: web.Request, session: Session) -> web.Response:
    project = _project(request)

    def collect() -> Dict[str, Any]:
        return {
            "me": {"username": session.username, "name": session.display_name},
            "intents": project.intents(), "forms": project.forms(), "faqs": project.faqs(),
            "responses": sorted(project.responses()),
            "serving": serving_state(project, _settings(request)),
            "job": jobs.status(project),
            "examples_file": shown(project.root, project.trainers_file),
        }

    try:
        data = await asyncio.to_thread(collect)
    except TrainerError as exc:
        return _error(exc)
    data["serving"]["running"] = await running_model(request)
    return web.json_response(data)


@trainer_only
async def api_serving(request: web.Request, session: Session) -> web.Response:
    project = _project(request)
    data = await asyncio.to_thread(serving_state, project, _settings(request))
    data["running"] = await running_model(request)
    return web.json_response(data)


# --------------------------------------------------------------------------- review
@trainer_only
async def api_review(request: web.Request, session: Session) -> web.Response:
    try:
        days = int(request.query.get("days", "14"))
    except ValueError:
        days = 14
    if days not in REVIEW_DAYS:
        return web.json_response({"error": "Vælg en af perioderne på listen."}, status=400)
    project, settings = _project(request), _settings(request)
    try:
        found = await asyncio.to_thread(jobs.run_tool, project, "review", tracker=tracker_request(settings),
                                        days=days)
        groups = await asyncio.to_thread(annotate.mark_decided, found["groups"], project)
    except TrainerError as exc:
        return _error(exc)
    for group in groups:
        for message in group["messages"]:
            newest = message.pop("newest")
            message["ref"] = conversation_ref(settings, newest["sender"], newest["at"])
    await _audit(request, session, "review", f"gennemgang af de sidste {days} dage")
    return web.json_response({**found, "groups": groups})


@trainer_only
async def api_conversation(request: web.Request, session: Session) -> web.Response:
    settings = _settings(request)
    found = read_ref(settings, request.query.get("ref", ""))
    if found is None:
        return web.json_response({"error": "Samtalen kan kun åbnes fra gennemgangen."}, status=403)
    sender, at = found
    try:
        data = await asyncio.to_thread(jobs.run_tool, _project(request), "conversation",
                                       tracker=tracker_request(settings), sender=sender, at=at)
    except TrainerError as exc:
        return _error(exc)
    await _audit(request, session, "read", f"læste samtalen {sender[:16]} fra gennemgangen")
    return web.json_response(data)


# --------------------------------------------------------------------------- annotate
@trainer_only
async def api_check(request: web.Request, session: Session) -> web.Response:
    body = await _body(request)
    try:
        result = await asyncio.to_thread(annotate.check, _project(request), str(body.get("text", "")),
                                         str(body.get("kind", "")), str(body.get("target", "")))
    except TrainerError as exc:
        return _error(exc)
    return web.json_response(result)


@trainer_only
async def api_annotate(request: web.Request, session: Session) -> web.Response:
    body = await _body(request)
    kind = str(body.get("kind", ""))
    try:
        result = await asyncio.to_thread(
            annotate.annotate, _project(request), original=str(body.get("original", ""))[:annotate.MAX_TEXT * 2],
            text=str(body.get("text", "")), kind=kind, target=str(body.get("target", "")),
            note=str(body.get("note", "")), user=session.username, confirm=bool(body.get("confirm")))
    except TrainerError as exc:
        return _error(exc)
    if result["status"] == "added":
        await _audit(request, session, "annotate", f"«{result['text'][:120]}» som eksempel på {result['label']}")
    elif result["status"] in ("ignored", "noted", "exists"):
        what = {"ignored": "sprang en besked over", "noted": "skrev et ønske til kataloget",
                "exists": "markerede en besked, der allerede er et eksempel"}[result["status"]]
        await _audit(request, session, "annotate", what)
    return web.json_response(result)


# --------------------------------------------------------------------------- edit
def _edit_args(request: web.Request) -> tuple:
    kind, item_id = request.match_info["kind"], request.match_info["item_id"]
    if kind not in editing.KINDS:
        raise web.HTTPNotFound()
    return kind, item_id


@trainer_only
async def api_edit_get(request: web.Request, session: Session) -> web.Response:
    kind, item_id = _edit_args(request)
    try:
        return web.json_response(await asyncio.to_thread(editing.load, _project(request), kind, item_id))
    except TrainerError as exc:
        return _error(exc)


@trainer_only
async def api_edit_preview(request: web.Request, session: Session) -> web.Response:
    kind, item_id = _edit_args(request)
    body = await _body(request)
    try:
        return web.json_response(await asyncio.to_thread(editing.preview, _project(request), kind, item_id,
                                                         body.get("fields") or {}))
    except TrainerError as exc:
        return _error(exc)


@trainer_only
async def api_edit_save(request: web.Request, session: Session) -> web.Response:
    kind, item_id = _edit_args(request)
    body = await _body(request)
    try:
        result = await asyncio.to_thread(editing.save, _project(request), kind, item_id, body.get("fields") or {},
                                         str(body.get("hash", "")))
    except TrainerError as exc:
        return _error(exc)
    if result.get("changed"):
        await _audit(request, session, "edit", f"{editing.NOUNS[kind]} {item_id}: {', '.join(result['changed'])} "
                                               f"({result['file']})")
    return web.json_response(result)


# --------------------------------------------------------------------------- new entries
def _new_kind(request: web.Request) -> str:
    kind = request.match_info["kind"]
    if kind not in creating.KINDS:
        raise web.HTTPNotFound()
    return kind


@trainer_only
async def api_new_get(request: web.Request, session: Session) -> web.Response:
    kind = _new_kind(request)
    try:
        return web.json_response(await asyncio.to_thread(creating.fields, _project(request), kind))
    except TrainerError as exc:
        return _error(exc)


@trainer_only
async def api_new_preview(request: web.Request, session: Session) -> web.Response:
    kind = _new_kind(request)
    body = await _body(request)
    try:
        return web.json_response(await asyncio.to_thread(creating.preview, _project(request), kind,
                                                         body.get("fields") or {}))
    except TrainerError as exc:
        return _error(exc)


@trainer_only
async def api_new_save(request: web.Request, session: Session) -> web.Response:
    kind = _new_kind(request)
    body = await _body(request)
    try:
        result = await asyncio.to_thread(creating.create, _project(request), kind, body.get("fields") or {})
    except TrainerError as exc:
        return _error(exc)
    await _audit(request, session, "create", f"{creating.NOUNS[kind]} {result['id']}: «{result['title'][:120]}» "
                                             f"({result['file']})")
    return web.json_response(result)


# --------------------------------------------------------------------------- train and compare
@trainer_only
async def api_train_status(request: web.Request, session: Session) -> web.Response:
    return web.json_response(await asyncio.to_thread(jobs.status, _project(request)))


@trainer_only
async def api_train_start(request: web.Request, session: Session) -> web.Response:
    try:
        job = await asyncio.to_thread(jobs.start, _project(request), session.username, session.display_name)
    except TrainerError as exc:
        return _error(exc)
    await _audit(request, session, "train", "startede en træning")
    return web.json_response(job)


@trainer_only
async def api_train_stop(request: web.Request, session: Session) -> web.Response:
    try:
        job = await asyncio.to_thread(jobs.stop, _project(request), session.username, session.display_name)
    except TrainerError as exc:
        return _error(exc)
    if job["state"] == "stopped":
        started = job.get("started_name") or job.get("started_by") or "ukendt"
        step = dict(jobs.STEPS).get(job.get("step"), "Starter")
        await _audit(request, session, "stop", f"træningen, som {started} startede (trin: {step})")
    return web.json_response(job)


@trainer_only
async def api_comparison(request: web.Request, session: Session) -> web.Response:
    project = _project(request)

    def collect() -> Dict[str, Any]:
        comparison = jobs.read_json(jobs.comparison_file(project))
        candidate = serving.read_candidate(project.root)
        if comparison is None or candidate is None or comparison.get("model") != candidate.get("model"):
            return {"comparison": None}
        in_service = serving.in_service(project.root)
        comparison["is_in_service"] = in_service is not None and in_service.name == comparison["model"]
        return {"comparison": comparison}

    return web.json_response(await asyncio.to_thread(collect))


@trainer_only
async def api_activate(request: web.Request, session: Session) -> web.Response:
    project = _project(request)
    body = await _body(request)
    reason = " ".join(str(body.get("reason", "")).split())[:500]
    candidate = await asyncio.to_thread(serving.read_candidate, project.root)
    if not candidate:
        return web.json_response({"error": "Der er ingen ny model. Træn først en ny model."}, status=409)
    if not candidate.get("approved") and len(reason) < MIN_REASON:
        return web.json_response({"error": "Sammenligningen frarådede den nye model. Skriv en begrundelse på mindst "
                                           f"{MIN_REASON} tegn, hvis den alligevel skal i drift."}, status=409)

    def change() -> serving.Change:
        from trainer.files import write_lock

        with write_lock(project.root):
            return serving.put_in_service(project.root, force=bool(reason), by=session.username,
                                          reason=reason or None)

    result = await asyncio.to_thread(change)
    if not result.ok:
        messages = {"missing": "Den nye model er slettet. Træn igen.",
                    "not_approved": "Sammenligningen frarådede den nye model. Skriv en begrundelse."}
        return web.json_response({"error": messages.get(result.code, "Modellen kunne ikke sættes i drift.")},
                                 status=409)
    if result.code == "already":
        return web.json_response({"ok": True, "model": result.model, "message": "Den model er allerede i drift."})
    approved = "godkendt af sammenligningen" if candidate.get("approved") else f"frarådet; begrundelse: {reason}"
    await _audit(request, session, "activate", f"satte {result.model} i drift (før: {result.previous or 'ingen'}; "
                                               f"{approved})")
    return web.json_response({"ok": True, "model": result.model, "previous": result.previous,
                              "message": await _switch_message(request, project, result.model)})


@trainer_only
async def api_rollback(request: web.Request, session: Session) -> web.Response:
    project = _project(request)
    body = await _body(request)
    reason = " ".join(str(body.get("reason", "")).split())[:500]

    def change() -> serving.Change:
        from trainer.files import write_lock

        with write_lock(project.root):
            return serving.roll_back(project.root, by=session.username, reason=reason or None)

    result = await asyncio.to_thread(change)
    if not result.ok:
        message = ("Der er ingen tidligere model at vende tilbage til." if result.code == "no_previous"
                   else "Den tidligere model er slettet, så der kan ikke rulles tilbage.")
        return web.json_response({"error": message}, status=409)
    await _audit(request, session, "rollback", f"rullede tilbage til {result.model} (før: {result.previous or 'ingen'})"
                 + (f"; begrundelse: {reason}" if reason else ""))
    return web.json_response({"ok": True, "model": result.model, "previous": result.previous,
                              "message": await _switch_message(request, project, result.model)})


async def _switch_message(request: web.Request, project: Project, model: str) -> str:
    settings = _settings(request)
    if settings.model_poll_seconds > 0:
        return (f"{model} er nu i drift. Alle assistenter skifter til den inden for "
                f"{settings.model_poll_seconds:g} sekunder plus den tid, det tager at indlæse den.")
    said = await asyncio.to_thread(serving.reload_server, project.models_dir / model, 120.0, settings)
    return f"{model} er nu i drift. {said}"


# --------------------------------------------------------------------------- log
@trainer_only
async def api_audit(request: web.Request, session: Session) -> web.Response:
    project = _project(request)

    def collect() -> Dict[str, Any]:
        entries = [e.__dict__ for e in request.app[support.STORE].audit_entries(1000)
                   if e.action.startswith(AUDIT_PREFIX)][:200]
        for entry in entries:
            entry["action"] = entry["action"][len(AUDIT_PREFIX):]
            entry.pop("handoff_id", None)
            entry.pop("conversation_id", None)
        return {"entries": entries, "notes": annotate.notes(project)[-100:]}

    return web.json_response(await asyncio.to_thread(collect))


# --------------------------------------------------------------------------- wiring
ROUTES = (
    ("GET", "/support/traener", page),
    ("GET", "/support/traener/", page),
    ("GET", "/support/assets/workbench.js", script),
    ("GET", "/support/api/traener/overview", api_overview),
    ("GET", "/support/api/traener/serving", api_serving),
    ("GET", "/support/api/traener/review", api_review),
    ("GET", "/support/api/traener/conversation", api_conversation),
    ("POST", "/support/api/traener/check", api_check),
    ("POST", "/support/api/traener/annotate", api_annotate),
    ("GET", "/support/api/traener/edit/{kind}/{item_id}", api_edit_get),
    ("POST", "/support/api/traener/edit/{kind}/{item_id}/preview", api_edit_preview),
    ("POST", "/support/api/traener/edit/{kind}/{item_id}", api_edit_save),
    ("GET", "/support/api/traener/new/{kind}", api_new_get),
    ("POST", "/support/api/traener/new/{kind}/preview", api_new_preview),
    ("POST", "/support/api/traener/new/{kind}", api_new_save),
    ("GET", "/support/api/traener/train", api_train_status),
    ("POST", "/support/api/traener/train", api_train_start),
    ("POST", "/support/api/traener/train/stop", api_train_stop),
    ("GET", "/support/api/traener/comparison", api_comparison),
    ("POST", "/support/api/traener/activate", api_activate),
    ("POST", "/support/api/traener/rollback", api_rollback),
    ("GET", "/support/api/traener/audit", api_audit),
)


@trainer_only
async def unavailable(request: web.Request, session: Session) -> web.Response:
    body = ('<main id="main" class="login"><h1>Træn AF-assistenten</h1><p>Træner-værktøjet kører ikke på denne '
            'server. Det kører på den maskine, hvor træningsdata og modellerne ligger (se docs/traening.md).</p>'
            '<form method="post" action="/support/logout"><input type="hidden" name="csrf" value="'
            + html.escape(session.csrf, quote=True) + '"><button type="submit">Log ud</button></form></main>')
    return web.Response(text=support._page("Træn assistenten – AF", body), content_type="text/html",
                        charset="utf-8", status=503)


def setup(app: web.Application, settings: Settings) -> None:
    if MISSING is not None:
        log.info("Træner-værktøjet er ikke med i dette image (%s mangler)", MISSING)
        app.router.add_get("/support/traener", unavailable)
        return
    app[PROJECT] = Project.for_settings(settings)
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
