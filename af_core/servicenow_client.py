"""A thin, synchronous client for ServiceNow's REST Table API.

Used from async actions through ``asyncio.to_thread`` (see ``case_service``) and
from the outbox worker. Design (details in docs/servicenow.md):

* every HTTP call has a timeout (``SERVICENOW_TIMEOUT_SECONDS``), and every
  operation (all its attempts, lookups, token requests and pauses) a total
  deadline: ``budget_seconds`` for a waiting leader, ``max_operation_seconds()``
  otherwise. No attempt starts, and no pause is taken, that would end after it;
  each attempt's timeouts are cut to the time that is left;
* connection errors, timeouts, 408, 502/503/504 and 429 are retried with
  exponential backoff and jitter, honouring ``Retry-After`` (seconds or an
  HTTP date; a wait longer than ``MAX_RETRY_AFTER_SECONDS`` ends the operation
  and travels on ``ServiceNowUnavailable.retry_after`` for the outbox);
* a create is never re-POSTed blindly: when the outcome of a POST is uncertain
  (timeout, dropped connection, gateway error, unique-key conflict) the record
  is first looked up by its ``correlation_id``;
* a create ServiceNow refuses for good (400 and the other 4xx in
  ``is_rejection``) raises ``ServiceNowRejected``: sending the same request
  again cannot help, so the outbox keeps it as a dead letter for AF;
* queries are built only from constants and strictly validated values: case
  numbers, e-mail addresses and correlation ids must match their patterns in
  full (``fullmatch``, ASCII digits only), so they cannot contain ``^``, ``=``,
  ``,``, ``:`` or a line break. Every lookup for a leader is
  ANDed with the leader's e-mail, and the answer is filtered once more on the
  client side (ServiceNow silently drops conditions on unknown fields);
* Basic auth, or OAuth 2.0 (``/oauth_token.do``, form-encoded) with a cached
  token refreshed before it expires, chosen by configuration.
"""
from __future__ import annotations

import logging
import math
import random
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import requests

from af_core.settings import Settings, get_settings

log = logging.getLogger(__name__)

# -- field names of the case type (docs/servicenow.md) ------------------------
F_NUMBER = "number"
F_SYS_ID = "sys_id"
F_SHORT_DESCRIPTION = "short_description"
F_DESCRIPTION = "description"
F_REQUEST_TYPE = "u_request_type"
F_TOPIC = "u_topic"
F_URGENCY = "urgency"
F_MEETING_CHANNEL = "u_meeting_channel"
F_PREFERRED_TIME = "u_preferred_time"
F_OPENED_BY = "opened_by"
F_REQUESTER_EMAIL = "u_requester_email"
F_REQUESTER_NAME = "u_requester_name"
F_INSTITUTION = "u_institution"
F_ASSIGNMENT_GROUP = "assignment_group"
F_CONTACT_TYPE = "contact_type"
F_STATE = "state"
F_CORRELATION_ID = "correlation_id"
F_CORRELATION_DISPLAY = "correlation_display"
F_COMMENTS = "comments"
F_WORK_NOTES = "work_notes"
F_CREATED_ON = "sys_created_on"
F_UPDATED_ON = "sys_updated_on"

# What a leader may see about a case (never description/work notes).
SUMMARY_FIELDS: Tuple[str, ...] = (
    F_NUMBER,
    F_SYS_ID,
    F_SHORT_DESCRIPTION,
    F_STATE,
    F_REQUEST_TYPE,
    F_TOPIC,
    F_REQUESTER_EMAIL,
    F_CORRELATION_ID,
    F_CREATED_ON,
    F_UPDATED_ON,
)

# State values of the case type; "closed" states are not "open cases".
CLOSED_STATES: Tuple[str, ...] = ("6", "7", "8")

# -- strict patterns for every value that goes into a query -------------------
# Use them with fullmatch (they are anchored with \Z as well, never $: a $ also
# accepts a trailing line break). [0-9], not \d: \d also matches Arabic-Indic,
# full-width and other Unicode digits.
NUMBER_PATTERN = re.compile(r"^AFH[0-9]{7}\Z")
CORRELATION_ID_PATTERN = re.compile(r"^[0-9a-f]{32}\Z")
SYS_ID_PATTERN = re.compile(r"^[0-9a-f]{32}\Z")
# Deliberately narrower than RFC 5322: no ^ = , : ; space quotes or brackets.
EMAIL_PATTERN = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._+-]{0,62}[A-Za-z0-9_+-])?"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z"
)
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9@._+-]{1,254}\Z")
_DELAY_SECONDS = re.compile(r"[0-9]+")  # Retry-After: delay-seconds (RFC 9110 10.2.3)

RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})
UNCERTAIN_STATUSES = frozenset({408, 502, 503, 504})  # the request may have been processed
# 4xx answers to a create that are *not* a verdict on the request itself: login (401),
# ACL or the unique index (403), a wrong address (404), timeouts (408), conflicts (409)
# and rate limits (429). Every other 4xx to a POST is a rejection (see is_rejection).
NOT_REJECTIONS = frozenset({401, 403, 404, 408, 409, 429})
MAX_RETRY_AFTER_SECONDS = 10.0  # longer waits end the operation and are left to the outbox
MAX_BACKOFF_SECONDS = 30.0
TOKEN_REFRESH_MARGIN_SECONDS = 60.0
MIN_ATTEMPT_SECONDS = 0.05  # an attempt with less time than this left is not started


# -- exceptions -----------------------------------------------------------------
class ServiceNowError(Exception):
    """Something went wrong talking to ServiceNow."""

    def __init__(self, message: str, status: Optional[int] = None, detail: Optional[str] = None,
                 retry_after: Optional[float] = None):
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after  # seconds ServiceNow asked us to wait, if it did


class ServiceNowUnavailable(ServiceNowError):
    """ServiceNow did not answer usefully (down, timeouts, 408/502/503/504, 429) in time.

    ``retry_after``: the wait ServiceNow asked for last (uncapped), or None."""


class ServiceNowAuthError(ServiceNowError):
    """Authentication failed (401, or the OAuth token endpoint refused)."""


class ServiceNowRequestError(ServiceNowError):
    """ServiceNow refused the request (4xx other than 401/404/408/429). Not retried by the client."""


class ServiceNowRejected(ServiceNowRequestError):
    """ServiceNow refused to create this case for good (``is_rejection``): the same request
    will be refused again, so it must not be retried. The outbox keeps it as a dead letter."""


class ServiceNowNotConfigured(ServiceNowUnavailable):
    """SERVICENOW_URL (or the credentials) are not set."""


class InvalidQueryValue(ValueError):
    """A value was refused before it could reach ``sysparm_query``."""


@dataclass
class _Retryable(Exception):
    reason: str
    uncertain: bool
    retry_after: Optional[float] = None
    status: Optional[int] = None
    out_of_time: bool = False

    def __str__(self) -> str:
        return self.reason


def is_rejection(status: Optional[int]) -> bool:
    """True for a 4xx answer to a create that says the request itself is wrong (400, 405,
    413, 415, 422, ...): every 4xx except NOT_REJECTIONS."""
    return status is not None and 400 <= status < 500 and status not in NOT_REJECTIONS


def is_case_number(value: Any) -> bool:
    """A whole case number (``AFH`` + 7 ASCII digits), nothing before or after."""
    return isinstance(value, str) and NUMBER_PATTERN.fullmatch(value) is not None


def is_correlation_id(value: Any) -> bool:
    return isinstance(value, str) and CORRELATION_ID_PATTERN.fullmatch(value) is not None


def is_sys_id(value: Any) -> bool:
    return isinstance(value, str) and SYS_ID_PATTERN.fullmatch(value) is not None


# -- validation -----------------------------------------------------------------
def normalise_email(email: str) -> str:
    """The e-mail in lower case if it matches the strict pattern, else InvalidQueryValue."""
    value = (email or "").strip().lower()
    if not EMAIL_PATTERN.fullmatch(value) or ".." in value:
        raise InvalidQueryValue("ugyldig e-mailadresse")
    return value


def normalise_number(number: str) -> str:
    """A case number such as ``AFH0001001`` (spaces removed, upper case), else InvalidQueryValue."""
    value = re.sub(r"\s+", "", number or "").upper()
    if not is_case_number(value):
        raise InvalidQueryValue("ugyldigt sagsnummer")
    return value


def validate_correlation_id(correlation_id: str) -> str:
    if not is_correlation_id(correlation_id):
        raise InvalidQueryValue("ugyldigt correlation_id")
    return correlation_id


class EncodedQuery:
    """Builds ``sysparm_query`` from field constants and pre-validated values only."""

    _FIELD = re.compile(r"^[a-z_][a-z0-9_]*\Z")

    def __init__(self) -> None:
        self._parts: List[str] = []

    def _field(self, name: str) -> str:
        if not isinstance(name, str) or not self._FIELD.fullmatch(name):
            raise InvalidQueryValue(f"ugyldigt feltnavn {name!r}")
        return name

    @staticmethod
    def _value(value: str) -> str:
        if not isinstance(value, str) or not _SAFE_VALUE.fullmatch(value) or value.lower().startswith("javascript"):
            raise InvalidQueryValue("værdien kan ikke bruges i en forespørgsel")
        return value

    def eq(self, name: str, value: str) -> "EncodedQuery":
        self._parts.append(f"{self._field(name)}={self._value(value)}")
        return self

    def not_in(self, name: str, values: Sequence[str]) -> "EncodedQuery":
        self._parts.append(f"{self._field(name)}NOT IN{','.join(self._value(v) for v in values)}")
        return self

    def order_by_desc(self, name: str) -> "EncodedQuery":
        self._parts.append(f"ORDERBYDESC{self._field(name)}")
        return self

    def __str__(self) -> str:
        return "^".join(self._parts)


def plain(record: Dict[str, Any]) -> Dict[str, str]:
    """Flatten reference fields (``{"value":..., "display_value":...}``) to strings."""
    flat: Dict[str, str] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            value = value.get("display_value") or value.get("value") or ""
        flat[key] = "" if value is None else str(value)
    return flat


def parse_retry_after(raw: Optional[str], now: float) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds (``120``) or an HTTP date
    (``Wed, 21 Oct 2026 07:28:00 GMT``, compared with the wall clock ``now``). A date in the
    past is 0. Anything else ("soon", "-5", "1e9", "nan") is None: use our own backoff.
    The value is not capped here; the callers cap it."""
    if raw is None:
        return None
    value = raw.strip()
    if _DELAY_SECONDS.fullmatch(value):
        return float(value[:16]) if len(value) <= 16 else 1e16
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)  # HTTP dates are GMT
    seconds = when.timestamp() - now
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _error_of(response: requests.Response) -> Tuple[str, Optional[str]]:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}", None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or f"HTTP {response.status_code}"), error.get("detail")
    if isinstance(error, str):  # OAuth endpoint
        return error, body.get("error_description")
    return f"HTTP {response.status_code}", None


# -- the client -----------------------------------------------------------------
class ServiceNowClient:
    def __init__(
        self,
        settings: Optional[Settings] = None,
        *,
        budget_seconds: Optional[float] = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Optional[random.Random] = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ):
        """``budget_seconds``: the total deadline of one operation (a leader is waiting);
        None: the bound ``max_operation_seconds()`` computes from the settings.
        ``sleep``/``clock`` (monotonic) and ``wall_clock`` (for HTTP dates) are for tests."""
        self.settings = settings or get_settings()
        self.budget_seconds = budget_seconds
        self._sleep = sleep
        self.clock = clock
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()
        self._local = threading.local()
        self._token_lock = threading.Lock()
        self._access_token: Optional[str] = None
        self._token_expires_at = 0.0
        self._refresh_token: Optional[str] = None

    # -- plumbing -----------------------------------------------------------
    @property
    def base_url(self) -> str:
        return self.settings.servicenow_url.rstrip("/")

    @property
    def table_path(self) -> str:
        return f"/api/now/table/{self.settings.servicenow_table}"

    @property
    def timeout(self) -> Tuple[float, float]:
        total = self.settings.servicenow_timeout_seconds
        return (min(total, 3.05), total)

    def max_operation_seconds(self) -> float:
        """The deadline of one client operation including all retries and pauses (enforced).
        Outbox leases are this plus a margin, so two deliverers never overlap."""
        if self.budget_seconds is not None:
            return float(self.budget_seconds)
        attempts = self.settings.servicenow_max_retries + 1
        per_attempt = 3 * self.settings.servicenow_timeout_seconds + MAX_RETRY_AFTER_SECONDS + MAX_BACKOFF_SECONDS
        return attempts * per_attempt

    @contextmanager
    def time_limit(self, seconds: Optional[float] = None) -> Iterator[float]:
        """Everything this thread asks the client inside the block shares one deadline:
        ``seconds`` (default ``max_operation_seconds()``) from now, or an enclosing, earlier one.
        Yields the deadline on ``self.clock``."""
        outer = getattr(self._local, "deadline", None)
        mine = self.clock() + (self.max_operation_seconds() if seconds is None else seconds)
        self._local.deadline = mine if outer is None else min(outer, mine)
        try:
            yield self._local.deadline
        finally:
            self._local.deadline = outer

    def remaining(self) -> float:
        """Seconds left before the current deadline (infinite outside ``time_limit``)."""
        deadline = getattr(self._local, "deadline", None)
        return math.inf if deadline is None else deadline - self.clock()

    def _timeouts(self) -> Tuple[float, float]:
        """This attempt's (connect, read) timeouts, cut to the time that is left."""
        remaining = self.remaining()
        if remaining < MIN_ATTEMPT_SECONDS:
            raise _Retryable("ingen tid tilbage", uncertain=False, out_of_time=True)
        connect, read = self.timeout
        return (min(connect, remaining), min(read, remaining))

    def _retry_after(self, response: requests.Response) -> Optional[float]:
        return parse_retry_after(response.headers.get("Retry-After"), self._wall_clock())

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update({"Accept": "application/json", "Content-Type": "application/json"})
            session.trust_env = False  # never route ServiceNow calls through ambient proxies/netrc
            self._local.session = session
        return session

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None

    def _check_configured(self) -> None:
        s = self.settings
        if not s.servicenow_url:
            raise ServiceNowNotConfigured("SERVICENOW_URL er ikke sat")
        if s.servicenow_auth == "basic" and not (s.servicenow_username and s.servicenow_password):
            raise ServiceNowNotConfigured("SERVICENOW_USERNAME/SERVICENOW_PASSWORD er ikke sat")

    def _backoff(self, attempt: int, retry_after: Optional[float]) -> float:
        base = self.settings.servicenow_backoff_seconds
        delay = min(base * (2 ** attempt), MAX_BACKOFF_SECONDS) * (0.5 + self._rng.random())
        if retry_after is not None:
            delay = max(delay, retry_after + self._rng.random() * min(base, 1.0))
        return delay

    # -- OAuth ----------------------------------------------------------------
    def _token(self, force: bool = False) -> str:
        with self._token_lock:
            now = time.monotonic()
            if not force and self._access_token and now < self._token_expires_at:
                return self._access_token
            s = self.settings
            form = {"client_id": s.servicenow_client_id, "client_secret": s.servicenow_client_secret}
            grants: List[Dict[str, str]] = []
            if self._refresh_token:
                grants.append({"grant_type": "refresh_token", "refresh_token": self._refresh_token})
            if s.servicenow_username and s.servicenow_password:
                grants.append(
                    {"grant_type": "password", "username": s.servicenow_username, "password": s.servicenow_password}
                )
            else:
                grants.append({"grant_type": "client_credentials"})
            last: Optional[ServiceNowError] = None
            for grant in grants:
                try:
                    response = self._session().post(
                        f"{self.base_url}/oauth_token.do",
                        data={**form, **grant},
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                        timeout=self._timeouts(),
                    )
                except requests.RequestException as exc:
                    raise _Retryable(f"token: {type(exc).__name__}", uncertain=False) from exc
                if response.status_code in RETRY_STATUSES or response.status_code >= 500:
                    raise _Retryable(
                        f"token: HTTP {response.status_code}", uncertain=False,
                        retry_after=self._retry_after(response), status=response.status_code,
                    )
                if response.status_code != 200:
                    message, detail = _error_of(response)
                    last = ServiceNowAuthError(f"OAuth afvist: {message}", response.status_code, detail)
                    if grant["grant_type"] == "refresh_token":
                        self._refresh_token = None
                    continue
                body = response.json()
                lifetime = float(body.get("expires_in") or 1800)
                margin = min(TOKEN_REFRESH_MARGIN_SECONDS, lifetime * 0.1)
                self._access_token = body["access_token"]
                self._token_expires_at = now + lifetime - margin
                self._refresh_token = body.get("refresh_token") or self._refresh_token
                return self._access_token
            assert last is not None
            raise last

    def _auth(self, force_new_token: bool = False) -> Dict[str, Any]:
        if self.settings.servicenow_auth == "oauth":
            return {"headers": {"Authorization": f"Bearer {self._token(force=force_new_token)}"}}
        return {"auth": (self.settings.servicenow_username, self.settings.servicenow_password)}

    # -- one attempt --------------------------------------------------------
    def _once(self, method: str, path: str, *, params: Optional[Dict[str, str]] = None,
              body: Optional[Dict[str, Any]] = None) -> Tuple[int, Any]:
        """One HTTP exchange. Returns (status, result) for 2xx and 404;
        raises _Retryable for transient trouble and ServiceNowError otherwise."""
        self._check_configured()
        url = f"{self.base_url}{path}"
        for renew in (False, True):
            kwargs = self._auth(force_new_token=renew)
            try:
                response = self._session().request(
                    method, url, params=params, json=body, timeout=self._timeouts(), **kwargs
                )
            except requests.Timeout as exc:
                raise _Retryable(f"timeout ({method})", uncertain=True) from exc
            except requests.ConnectionError as exc:
                raise _Retryable(f"forbindelsesfejl ({method})", uncertain=True) from exc
            status = response.status_code
            if status == 401 and self.settings.servicenow_auth == "oauth" and not renew:
                continue  # token revoked or expired early: get a new one once
            break
        if status in RETRY_STATUSES:
            raise _Retryable(
                f"HTTP {status} ({method})", uncertain=status in UNCERTAIN_STATUSES,
                retry_after=self._retry_after(response), status=status,
            )
        if 200 <= status < 300:
            try:
                return status, response.json().get("result")
            except (ValueError, AttributeError) as exc:
                raise _Retryable(f"ulæseligt svar ({method})", uncertain=True, status=status) from exc
        message, detail = _error_of(response)
        if status == 404:
            return status, None
        if status == 401:
            raise ServiceNowAuthError(f"ServiceNow afviste login: {message}", status, detail)
        if status >= 500:
            raise ServiceNowError(f"ServiceNow-fejl: {message}", status, detail)
        raise ServiceNowRequestError(f"ServiceNow afviste forespørgslen: {message}", status, detail)

    def _may_retry(self, exc: _Retryable, attempt: int) -> Optional[float]:
        """The delay before the next attempt, or None when it is time to give up: no
        attempts left, ServiceNow asked for a long wait, or the pause plus a short attempt
        would not fit before the deadline."""
        if exc.out_of_time or attempt + 1 >= self.settings.servicenow_max_retries + 1:
            return None
        if exc.retry_after is not None and exc.retry_after > MAX_RETRY_AFTER_SECONDS:
            return None
        delay = self._backoff(attempt, exc.retry_after)
        if delay + MIN_ATTEMPT_SECONDS > self.remaining():
            return None
        return delay

    @staticmethod
    def _unavailable(what: str, errors: List[_Retryable]) -> ServiceNowUnavailable:
        real = [e for e in errors if not e.out_of_time] or errors
        last = real[-1]
        retry_after = next((e.retry_after for e in reversed(real) if e.retry_after is not None), None)
        return ServiceNowUnavailable(f"ServiceNow svarer ikke ({what}): {last}", last.status, retry_after=retry_after)

    def _with_retries(self, operation: Callable[[], Any], what: str) -> Any:
        attempts = self.settings.servicenow_max_retries + 1
        errors: List[_Retryable] = []
        with self.time_limit():
            for attempt in range(attempts):
                try:
                    return operation()
                except _Retryable as exc:
                    errors.append(exc)
                    delay = self._may_retry(exc, attempt)
                    if delay is None:
                        break
                    log.info("ServiceNow %s: %s; prøver igen om %.2f s", what, exc, delay)
                    self._sleep(delay)
        raise self._unavailable(what, errors)

    # -- reads --------------------------------------------------------------
    def query(self, query: EncodedQuery, fields: Sequence[str], limit: int, offset: int = 0) -> List[Dict[str, str]]:
        params = {
            "sysparm_query": str(query),
            "sysparm_fields": ",".join(fields),
            "sysparm_limit": str(int(limit)),
            "sysparm_exclude_reference_link": "true",
        }
        if offset:
            params["sysparm_offset"] = str(int(offset))

        def op() -> List[Dict[str, str]]:
            status, result = self._once("GET", self.table_path, params=params)
            if status == 404 or result is None:
                return []
            return [plain(r) for r in result]

        return self._with_retries(op, "læsning")

    def get_record(self, sys_id: str, fields: Optional[Sequence[str]] = None) -> Optional[Dict[str, str]]:
        """One record by sys_id; None when it does not exist or an ACL hides it (404)."""
        if not is_sys_id(sys_id):
            raise InvalidQueryValue("ugyldigt sys_id")
        params = {"sysparm_exclude_reference_link": "true"}
        if fields:
            params["sysparm_fields"] = ",".join(fields)

        def op() -> Optional[Dict[str, str]]:
            status, result = self._once("GET", f"{self.table_path}/{sys_id}", params=params)
            return plain(result) if status != 404 and result else None

        return self._with_retries(op, "læsning")

    def _find_by_correlation_once(self, correlation_id: str) -> Optional[Dict[str, str]]:
        query = EncodedQuery().eq(F_CORRELATION_ID, correlation_id)
        params = {"sysparm_query": str(query), "sysparm_limit": "2", "sysparm_exclude_reference_link": "true"}
        status, result = self._once("GET", self.table_path, params=params)
        matches = [plain(r) for r in (result or []) if r.get(F_CORRELATION_ID) == correlation_id]
        if len(matches) > 1:
            log.error("ServiceNow har %d sager med correlation_id %s", len(matches), correlation_id)
        return matches[0] if matches else None

    def find_by_correlation_id(self, correlation_id: str) -> Optional[Dict[str, str]]:
        validate_correlation_id(correlation_id)
        return self._with_retries(lambda: self._find_by_correlation_once(correlation_id), "opslag")

    def list_cases_for_leader(self, email: str, limit: int = 5, open_only: bool = True) -> List[Dict[str, str]]:
        """The leader's cases, newest first. Only cases whose requester e-mail is ``email``."""
        email = normalise_email(email)
        query = EncodedQuery().eq(F_REQUESTER_EMAIL, email)
        if open_only:
            query.not_in(F_STATE, CLOSED_STATES)
        query.order_by_desc(F_CREATED_ON).order_by_desc(F_NUMBER)
        records = self.query(query, SUMMARY_FIELDS, limit=max(1, min(int(limit), 100)))
        return self._only_for(email, records)

    def get_case_for_leader(self, number: str, email: str) -> Optional[Dict[str, str]]:
        """The case ``number`` if it belongs to ``email``; None otherwise (also for bad input)."""
        try:
            number, email = normalise_number(number), normalise_email(email)
        except InvalidQueryValue:
            return None
        query = EncodedQuery().eq(F_NUMBER, number).eq(F_REQUESTER_EMAIL, email)
        records = self._only_for(email, self.query(query, SUMMARY_FIELDS, limit=1))
        records = [r for r in records if r.get(F_NUMBER, "").upper() == number]
        return records[0] if records else None

    @staticmethod
    def _only_for(email: str, records: List[Dict[str, str]]) -> List[Dict[str, str]]:
        # Defence in depth: if the e-mail condition was dropped (e.g. the field has a
        # different name on the instance), ServiceNow would return everyone's cases.
        mine = [r for r in records if r.get(F_REQUESTER_EMAIL, "").strip().lower() == email]
        if len(mine) != len(records):
            log.error("ServiceNow returnerede %d sager for en anden leder: tjek feltet %s",
                      len(records) - len(mine), F_REQUESTER_EMAIL)
        return mine

    # -- writes -------------------------------------------------------------
    def create_record(self, record: Dict[str, Any], *, lookup_first: bool = False) -> Dict[str, str]:
        """Create a case exactly once, identified by ``record["correlation_id"]``.

        With ``lookup_first`` (the outbox, or any retry of an earlier attempt)
        an existing case with that correlation_id is returned instead of POSTing.
        """
        correlation_id = validate_correlation_id(str(record.get(F_CORRELATION_ID, "")))
        with self.time_limit():
            return self._create(record, correlation_id, lookup_first)

    def _post(self, record: Dict[str, Any]) -> Dict[str, str]:
        try:
            status, result = self._once("POST", self.table_path, body=record)
        except ServiceNowRequestError as exc:
            if is_rejection(exc.status):
                raise ServiceNowRejected(str(exc), exc.status, exc.detail) from exc
            raise
        if status == 404 or not isinstance(result, dict):
            raise ServiceNowRequestError("ServiceNow oprettede ikke sagen", status)
        return plain(result)

    def _create(self, record: Dict[str, Any], correlation_id: str, lookup_first: bool) -> Dict[str, str]:
        uncertain = lookup_first
        attempts = self.settings.servicenow_max_retries + 1
        errors: List[_Retryable] = []
        for attempt in range(attempts):
            try:
                if uncertain:
                    existing = self._find_by_correlation_once(correlation_id)
                    if existing is not None:
                        return existing
                    uncertain = False
                return self._post(record)
            except ServiceNowRejected:
                raise
            except ServiceNowRequestError as exc:
                if exc.status in (403, 409) and not uncertain:
                    # e.g. the unique index on correlation_id: an earlier attempt won.
                    existing = self._with_retries(lambda: self._find_by_correlation_once(correlation_id), "opslag")
                    if existing is not None:
                        return existing
                raise
            except _Retryable as exc:
                errors.append(exc)
                uncertain = uncertain or exc.uncertain
                delay = self._may_retry(exc, attempt)
                if delay is None:
                    break
                log.info("ServiceNow oprettelse: %s; prøver igen om %.2f s", exc, delay)
                self._sleep(delay)
        raise self._unavailable("oprettelse", errors)

    def update_record(self, sys_id: str, values: Dict[str, Any]) -> Optional[Dict[str, str]]:
        """PATCH a record; None on 404. Plain retries are safe for ordinary fields, but
        not for the journal fields (comments/work_notes append an entry each time)."""
        if not is_sys_id(sys_id):
            raise InvalidQueryValue("ugyldigt sys_id")

        def op() -> Optional[Dict[str, str]]:
            status, result = self._once("PATCH", f"{self.table_path}/{sys_id}", body=values)
            return plain(result) if status != 404 and result else None

        return self._with_retries(op, "opdatering")
