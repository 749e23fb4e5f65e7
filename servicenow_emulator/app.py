"""The emulator's aiohttp application: Table API, OAuth, fault injection, admin.

Only for development and tests. See docs/servicenow.md ("Emulatoren").
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import random
import secrets
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import urlencode
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

from aiohttp import web

from servicenow_emulator.query import parse
from servicenow_emulator.store import CASE_FIELDS, DuplicateCorrelationId, Store

log = logging.getLogger("servicenow_emulator")

DEFAULT_LIMIT = 10000
API_PREFIX = "/api/now/table/"
ADMIN_PREFIX = "/_emulator/"
TOKEN_PATH = "/oauth_token.do"

ERROR_TEXTS = {
    400: ("Bad Request", "The request could not be processed"),
    401: ("User Not Authenticated", "Required to provide Auth information"),
    403: ("Operation Failed", "ACL restricts the operation"),
    404: ("No Record found", "Record doesn't exist or ACL restricts the record retrieval"),
    405: ("Method not Supported", "Requested method is not supported for this resource"),
    429: ("Rate limit exceeded", "Too many requests for this user. Try again later."),
    500: ("Internal server error", "An unexpected error occurred while processing the request"),
}
# Gateways answer 502/503/504 with HTML, not ServiceNow's JSON envelope.
HTML_STATUSES = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def error_response(status: int, message: Optional[str] = None, detail: Optional[str] = None,
                   headers: Optional[Dict[str, str]] = None) -> web.Response:
    if status in HTML_STATUSES and message is None:
        text = f"<html><body><h1>{status} {HTML_STATUSES[status]}</h1></body></html>"
        return web.Response(status=status, text=text, content_type="text/html", headers=headers)
    default_message, default_detail = ERROR_TEXTS.get(status, ("Error", None))
    body = {
        "error": {"message": message or default_message, "detail": detail if detail is not None else default_detail},
        "status": "failure",
    }
    return web.json_response(body, status=status, headers=headers)


@dataclass
class Faults:
    """Fault injection, changed at run time with POST /_emulator/faults."""

    error_rate: float = 0.0  # share of API calls that fail with one of error_statuses
    error_statuses: List[int] = field(default_factory=lambda: [503])
    error_phase: str = "before"  # before | after (the request was processed first) | mixed
    retry_after: int = 1  # seconds, sent with every 429
    latency_ms: int = 0  # added to every API call
    latency_phase: str = "before"  # before | after (processed first, then slow answer)
    methods: Optional[List[str]] = None  # only these HTTP methods get faults (None: all)
    next_statuses: List[int] = field(default_factory=list)  # one-shot: the next calls fail with these
    next_phase: str = "before"

    def applies_to(self, method: str) -> bool:
        return self.methods is None or method.upper() in {m.upper() for m in self.methods}


@dataclass
class Config:
    access_token_seconds: int = 1800
    refresh_token_seconds: int = 100 * 24 * 3600
    enforce_unique_correlation: bool = True  # the unique index docs/servicenow.md asks for


@dataclass
class Stats:
    requests: int = 0
    token_requests: int = 0
    injected: Dict[str, int] = field(default_factory=dict)
    dropped_connections: int = 0
    statuses: Dict[str, int] = field(default_factory=dict)


class ServerControl:
    """Lets the app take its own listening socket down ("refusing connections")."""

    def __init__(self) -> None:
        self.down_until = 0.0
        self.go_down: Optional[Callable[[float], Awaitable[None]]] = None

    @property
    def down(self) -> bool:
        return time.monotonic() < self.down_until


@dataclass
class Credentials:
    username: str
    password: str
    client_id: str
    client_secret: str


class Emulator:
    def __init__(self, store: Store, tables: List[str], credentials: Credentials, seed: Optional[int] = None):
        self.store = store
        self.tables = set(tables)
        self.credentials = credentials
        self.faults = Faults()
        self.config = Config()
        self.stats = Stats()
        self.control = ServerControl()
        self.random = random.Random(seed)
        self.access_tokens: Dict[str, Tuple[str, float]] = {}
        self.refresh_tokens: Dict[str, Tuple[str, str, float]] = {}

    # -- authentication ---------------------------------------------------
    def _basic_user(self, header: str) -> Optional[str]:
        try:
            decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, _, password = decoded.partition(":")
        if hmac.compare_digest(username, self.credentials.username) and hmac.compare_digest(
            password, self.credentials.password
        ):
            return username
        return None

    def authenticate(self, request: web.Request) -> Optional[str]:
        header = request.headers.get("Authorization", "")
        if header[:6].lower() == "basic ":
            return self._basic_user(header)
        if header[:7].lower() == "bearer ":
            entry = self.access_tokens.get(header[7:].strip())
            if entry and entry[1] > time.monotonic():
                return entry[0]
        return None

    def _issue_tokens(self, user: str, client_id: str, with_refresh: bool) -> Dict[str, Any]:
        access = secrets.token_urlsafe(48)
        lifetime = self.config.access_token_seconds
        self.access_tokens[access] = (user, time.monotonic() + lifetime)
        body: Dict[str, Any] = {
            "access_token": access,
            "scope": "useraccount",
            "token_type": "Bearer",
            "expires_in": max(lifetime - 1, 0),
        }
        if with_refresh:
            refresh = secrets.token_urlsafe(48)
            self.refresh_tokens[refresh] = (user, client_id, time.monotonic() + self.config.refresh_token_seconds)
            body["refresh_token"] = refresh
        return body

    async def oauth_token(self, request: web.Request) -> web.Response:
        self.stats.token_requests += 1
        denied = web.json_response({"error_description": "access_denied", "error": "server_error"}, status=401)
        if request.content_type != "application/x-www-form-urlencoded":
            return web.json_response(
                {"error_description": "Request must be form-encoded (application/x-www-form-urlencoded)",
                 "error": "invalid_request"},
                status=400,
            )
        form = await request.post()
        grant = str(form.get("grant_type", ""))
        client_id, client_secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        if not (hmac.compare_digest(client_id, self.credentials.client_id)
                and hmac.compare_digest(client_secret, self.credentials.client_secret)):
            return denied
        if grant == "password":
            user, password = str(form.get("username", "")), str(form.get("password", ""))
            if not (hmac.compare_digest(user, self.credentials.username)
                    and hmac.compare_digest(password, self.credentials.password)):
                return denied
            return web.json_response(self._issue_tokens(user, client_id, with_refresh=True))
        if grant == "client_credentials":
            return web.json_response(self._issue_tokens(self.credentials.username, client_id, with_refresh=False))
        if grant == "refresh_token":
            entry = self.refresh_tokens.get(str(form.get("refresh_token", "")))
            if not entry or entry[2] <= time.monotonic() or entry[1] != client_id:
                return denied
            body = self._issue_tokens(entry[0], client_id, with_refresh=False)
            body["refresh_token"] = str(form.get("refresh_token"))
            return web.json_response(body)
        return web.json_response(
            {"error_description": f"Unsupported grant_type {grant!r}", "error": "unsupported_grant_type"}, status=400
        )

    # -- Table API --------------------------------------------------------
    def _check_table(self, request: web.Request) -> str:
        table = request.match_info["table"]
        if table not in self.tables:
            raise _Error(error_response(400, f"Invalid table {table}", None))
        return table

    @staticmethod
    def _fields(request: web.Request) -> Optional[List[str]]:
        raw = request.query.get("sysparm_fields", "").strip()
        if not raw:
            return None
        return [name.strip() for name in raw.split(",") if name.strip() in CASE_FIELDS]

    @staticmethod
    def _project(record: Dict[str, str], fields: Optional[List[str]]) -> Dict[str, str]:
        if fields is None:
            return record
        return {name: record.get(name, "") for name in fields}

    async def _json_body(self, request: web.Request) -> Dict[str, Any]:
        try:
            body = json.loads(await request.text() or "null")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise _Error(error_response(400, "Exception while reading request", "The payload is not valid JSON."))
        return body

    async def create(self, request: web.Request) -> web.Response:
        table = self._check_table(request)
        body = await self._json_body(request)
        try:
            record = self.store.insert(
                table, body, request["user"], unique_correlation=self.config.enforce_unique_correlation
            )
        except DuplicateCorrelationId:
            return error_response(
                403,
                "Operation Failed",
                f"Error during insert of {table} (correlation_id): Unique Key violation detected by database",
            )
        location = f"{_base(request)}{API_PREFIX}{table}/{record['sys_id']}"
        return web.json_response(
            {"result": self._project(record, self._fields(request))}, status=201, headers={"Location": location}
        )

    async def list(self, request: web.Request) -> web.Response:
        table = self._check_table(request)
        limit = _int_param(request, "sysparm_limit", DEFAULT_LIMIT, minimum=1)
        offset = _int_param(request, "sysparm_offset", 0, minimum=0)
        query = parse(request.query.get("sysparm_query", ""), CASE_FIELDS)
        matching = query.sort([r for r in self.store.all(table) if query.matches(r)])
        page = matching[offset:offset + limit]
        fields = self._fields(request)
        headers = {"X-Total-Count": str(len(matching))}
        links = _links(request, len(matching), limit, offset)
        if links:
            headers["Link"] = links
        return web.json_response({"result": [self._project(r, fields) for r in page]}, headers=headers)

    async def read(self, request: web.Request) -> web.Response:
        table = self._check_table(request)
        record = self.store.get(table, request.match_info["sys_id"])
        if record is None:
            return error_response(404)
        return web.json_response({"result": self._project(record, self._fields(request))})

    async def update(self, request: web.Request) -> web.Response:
        table = self._check_table(request)
        body = await self._json_body(request)
        record = self.store.update(table, request.match_info["sys_id"], body, request["user"])
        if record is None:
            return error_response(404)
        return web.json_response({"result": self._project(record, self._fields(request))})

    # -- admin (development only) -----------------------------------------
    async def get_faults(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"faults": asdict(self.faults), "config": asdict(self.config), "stats": asdict(self.stats),
             "down": self.control.down}
        )

    async def set_faults(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        down_seconds = float(body.pop("down_seconds", 0) or 0)
        if body.pop("reset", False):
            self.faults = Faults()
        if "status" in body:  # shorthand: one status for error_rate
            body["error_statuses"] = [int(body.pop("status"))]
        known = set(Faults.__dataclass_fields__)
        unknown = sorted(set(body) - known)
        if unknown:
            return error_response(400, "Unknown fault settings", ", ".join(unknown))
        for name, value in body.items():
            setattr(self.faults, name, value)
        if down_seconds > 0 and self.control.go_down is not None:
            asyncio.get_running_loop().call_later(0.05, lambda: asyncio.ensure_future(self.control.go_down(down_seconds)))
            self.control.down_until = time.monotonic() + 0.05 + down_seconds
        return await self.get_faults(request)

    async def reset_faults(self, request: web.Request) -> web.Response:
        self.faults = Faults()
        return await self.get_faults(request)

    async def set_config(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        unknown = sorted(set(body) - set(Config.__dataclass_fields__))
        if unknown:
            return error_response(400, "Unknown config settings", ", ".join(unknown))
        for name, value in body.items():
            setattr(self.config, name, value)
        return await self.get_faults(request)

    async def cases(self, request: web.Request) -> web.Response:
        table = request.query.get("table")
        return web.json_response({"result": self.store.all(table, include_hidden=True)})

    async def clear_cases(self, request: web.Request) -> web.Response:
        self.store.clear()
        return web.json_response({"result": "cleared"})

    async def acl(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if not self.store.set_hidden(str(body.get("sys_id", "")), bool(body.get("hidden", True))):
            return error_response(404)
        return web.json_response({"result": "ok"})

    # -- middleware ---------------------------------------------------------
    async def _inject(self, request: web.Request, handler) -> web.StreamResponse:
        faults = self.faults
        if not faults.applies_to(request.method):
            return await handler(request)
        status, phase = None, faults.error_phase
        if faults.next_statuses:
            status, phase = int(faults.next_statuses.pop(0)), faults.next_phase
        elif faults.error_rate > 0 and self.random.random() < faults.error_rate and faults.error_statuses:
            status = int(self.random.choice(faults.error_statuses))
        if phase == "mixed":
            phase = self.random.choice(["before", "after"])
        if status == 429:
            phase = "before"  # rate limiting refuses a request; it never processes it first
        if faults.latency_ms and faults.latency_phase == "before":
            await asyncio.sleep(faults.latency_ms / 1000)
        if status is not None and phase == "before":
            return self._injected(status)
        response = await handler(request)
        if faults.latency_ms and faults.latency_phase == "after":
            await asyncio.sleep(faults.latency_ms / 1000)
        if status is not None:
            return self._injected(status)
        return response

    def _injected(self, status: int) -> web.Response:
        self.stats.injected[str(status)] = self.stats.injected.get(str(status), 0) + 1
        headers = None
        if status == 429:
            headers = {
                "Retry-After": str(self.faults.retry_after),
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Reset": str(int(time.time()) + int(self.faults.retry_after)),
            }
        return error_response(status, headers=headers)

    @web.middleware
    async def middleware(self, request: web.Request, handler) -> web.StreamResponse:
        path = request.path
        if self.control.down and not path.startswith(ADMIN_PREFIX):
            # "Refusing connections": the listening socket is closed; a request on an
            # already open keep-alive connection is cut off without an answer.
            self.stats.dropped_connections += 1
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError()
        try:
            if path == TOKEN_PATH:
                self.stats.requests += 1
                response = await self._inject(request, handler)
            elif path.startswith(API_PREFIX) or path.startswith(ADMIN_PREFIX):
                user = self.authenticate(request)
                if user is None:
                    response = error_response(401, headers={"WWW-Authenticate": 'BASIC realm="Service-now"'})
                else:
                    request["user"] = user
                    if path.startswith(ADMIN_PREFIX):
                        response = await handler(request)
                    else:
                        self.stats.requests += 1
                        response = await self._inject(request, handler)
            else:
                response = await handler(request)
        except _Error as exc:
            response = exc.response
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = error_response(
                exc.status if exc.status in ERROR_TEXTS else 400,
                "Requested URI does not represent any resource" if exc.status == 404 else None,
                "" if exc.status == 404 else None,
            )
        if path.startswith(API_PREFIX) or path == TOKEN_PATH:
            self.stats.statuses[str(response.status)] = self.stats.statuses.get(str(response.status), 0) + 1
        return response


class _Error(Exception):
    def __init__(self, response: web.Response):
        super().__init__(response.status)
        self.response = response


def _int_param(request: web.Request, name: str, default: int, minimum: int) -> int:
    raw = request.query.get(name, "")
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value >= minimum else default


def _base(request: web.Request) -> str:
    # request.url breaks with this aiohttp/yarl pair when Host has a port; build it by hand.
    return f"{request.scheme}://{request.host}"


def _links(request: web.Request, total: int, limit: int, offset: int) -> str:
    def url(new_offset: int) -> str:
        query = dict(request.query)
        query["sysparm_offset"] = str(new_offset)
        query["sysparm_limit"] = str(limit)
        return f"{_base(request)}{request.path}?{urlencode(query)}"

    if total == 0:
        return ""
    last = ((total - 1) // limit) * limit
    parts = [f'<{url(0)}>;rel="first"']
    if offset > 0:
        parts.append(f'<{url(max(offset - limit, 0))}>;rel="prev"')
    if offset + limit < total:
        parts.append(f'<{url(offset + limit)}>;rel="next"')
    parts.append(f'<{url(last)}>;rel="last"')
    return ",".join(parts)


EMULATOR_KEY = web.AppKey("emulator", Emulator)


def create_app(emulator: Emulator) -> web.Application:
    app = web.Application(middlewares=[emulator.middleware], client_max_size=1024 * 1024)
    app[EMULATOR_KEY] = emulator
    app.router.add_post(TOKEN_PATH, emulator.oauth_token)
    app.router.add_post(API_PREFIX + "{table}", emulator.create)
    app.router.add_get(API_PREFIX + "{table}", emulator.list)
    app.router.add_get(API_PREFIX + "{table}/{sys_id}", emulator.read)
    app.router.add_patch(API_PREFIX + "{table}/{sys_id}", emulator.update)
    app.router.add_put(API_PREFIX + "{table}/{sys_id}", emulator.update)
    app.router.add_get(ADMIN_PREFIX + "faults", emulator.get_faults)
    app.router.add_post(ADMIN_PREFIX + "faults", emulator.set_faults)
    app.router.add_delete(ADMIN_PREFIX + "faults", emulator.reset_faults)
    app.router.add_post(ADMIN_PREFIX + "config", emulator.set_config)
    app.router.add_get(ADMIN_PREFIX + "cases", emulator.cases)
    app.router.add_delete(ADMIN_PREFIX + "cases", emulator.clear_cases)
    app.router.add_post(ADMIN_PREFIX + "acl", emulator.acl)
    return app
