"""The facade the dialogue uses for ServiceNow cases.

``submit_case`` turns a leader's order for help / meeting request into a case
of the AF case type (docs/servicenow.md). It never raises because of
ServiceNow: the request is written to the durable outbox first and, if
ServiceNow does not take it now, stays there for the outbox worker
(``status == "queued"``, ``reference`` like ``AF-7K3Q9``).

A leader is waiting, so one submit takes at most ``INTERACTIVE_BUDGET_SECONDS`` in
all; whatever is left then is the outbox worker's job.

Submitting the same request again (same ``correlation_id``: a lost action reply and a
second "ja", or two "ja" at once) never creates a second case, also when ServiceNow has
no unique index on correlation_id: the outbox already holds the request, so the case
number is taken from its receipt, the request is looked up in ServiceNow before it is
POSTed again, or -- while someone else is delivering it -- we wait for that delivery.
A request ServiceNow rejected (a dead letter) is not sent again; the leader keeps the
reference, and AF handles it (docs/servicenow.md).

Case numbers from ServiceNow (or from a receipt) reach the leader only in their exact
form (``AFH`` + 7 ASCII digits); anything else gets the ``AF-XXXXX`` reference instead.

All blocking work (HTTP, the outbox database) runs in ``asyncio.to_thread`` so a slow
ServiceNow never stalls other conversations on the action server's loop.

Settings and profile are injectable for tests: ``CaseService(settings, profile)``
and ``set_service(...)``; the module functions use ``get_service()``, which
defaults to ``get_settings()`` / ``get_profile()``.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional

from af_core import servicenow_client as sn
from af_core.outbox import (
    DEAD,
    DELIVERED,
    Outbox,
    OutboxEntry,
    delay_for,
    log_dead_letter,
    mark_delivered_checked,
    rejection_text,
)
from af_core.servicenow_client import (
    InvalidQueryValue,
    ServiceNowClient,
    ServiceNowError,
    ServiceNowRejected,
    is_case_number,
    normalise_email,
)

log = logging.getLogger(__name__)

REQUEST_TYPES = ("help", "meeting")
MEETING_CHANNELS = ("fysisk", "telefon", "teams")
STATE_LABELS = {
    "1": "Ny",
    "2": "Under behandling",
    "3": "Afventer",
    "6": "Løst",
    "7": "Lukket",
    "8": "Annulleret",
}
QUEUED_STATE = "queued"
QUEUED_LABEL = "Modtaget – bliver registreret"
REFERENCE_PATTERN = re.compile(r"^AF-[0-9A-Z]{5}\Z")  # use with fullmatch
_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
_REQUEST_TYPE_LABELS = {"help": "Hjælp", "meeting": "Møde"}
_CHANNEL_LABELS = {"fysisk": "fysisk møde", "telefon": "telefon", "teams": "Teams"}
SHORT_DESCRIPTION_MAX = 160
# A leader is waiting: one submit (every attempt, lookup and pause) ends within this many
# seconds, and what is left is queued for the outbox worker (whose client has the longer,
# settings-based deadline). Also the time a second "ja" waits for a delivery in progress.
INTERACTIVE_BUDGET_SECONDS = 5.0
WAIT_POLL_SECONDS = 0.1
DESCRIPTION_MAX = 4000

try:  # the shared CPR masking, if present
    from af_core.privacy import mask_cpr as _mask_cpr
except ImportError:  # pragma: no cover - fallback while privacy.py is not there
    _mask_cpr = None

_LOCAL_CPR = re.compile(r"(?<!\d)([0-3]\d[01]\d\d\d)[ -]?(\d{4})(?!\d)")


def mask_cpr(text: str) -> str:
    """Mask CPR numbers (defensively: the channel has masked them already)."""
    text = text or ""
    if _mask_cpr is not None:
        masked = _mask_cpr(text)
        text = masked[0] if isinstance(masked, tuple) else masked
    return _LOCAL_CPR.sub("[CPR-nummer fjernet]", text)


class CaseServiceUnavailable(Exception):
    """ServiceNow cannot be reached right now (reads only; submits are queued)."""


@dataclass
class CaseRequest:
    request_type: str  # "help" | "meeting"
    topic: str  # "loen" | "personale" | "indkoeb" | "oekonomi" | "arbejdstid"
    urgency: str  # "akut" | "snart" | "ingen_hast" (profile.service_levels key)
    description: str  # the leader's own words
    requester_name: str
    requester_email: str
    institution: str
    meeting_channel: Optional[str] = None  # "fysisk" | "telefon" | "teams"
    preferred_time: Optional[str] = None  # ISO 8601, when the wish names a day or a time
    preferred_time_text: Optional[str] = None  # the wish as the leader said it ("helst formiddag")
    summary: str = ""  # short summary of the conversation
    short_description: str = ""  # generated if empty
    correlation_id: str = ""  # generated (uuid4 hex) if empty; unique per request


@dataclass
class SubmitResult:
    status: str  # "created" | "queued"
    number: Optional[str]  # ServiceNow number when created
    reference: str  # the number, or e.g. "AF-7K3Q9" when queued
    unit_name: str  # e.g. "AF Syd"
    assignment_group: str
    promise: str  # e.g. "i dag"


@dataclass
class CaseSummary:
    number: str  # "AFH0001001", or the reference "AF-7K3Q9" for a request still in the outbox
    short_description: str
    state: str  # ServiceNow state value, or "queued"
    state_label: str  # Danish label, e.g. "Ny", "Under behandling"
    updated_on: str  # "YYYY-MM-DD HH:MM:SS" (UTC, ServiceNow's format)
    request_type: str
    topic: str


def correlation_display(correlation_id: str) -> str:
    """A short reference a human can read aloud: ``AF-`` + 5 Crockford base32 characters."""
    value = int.from_bytes(hashlib.sha256(correlation_id.encode("ascii")).digest()[:8], "big")
    chars = []
    for _ in range(5):
        value, index = divmod(value, 32)
        chars.append(_REFERENCE_ALPHABET[index])
    return "AF-" + "".join(chars)


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _time_text(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


class CaseService:
    def __init__(self, settings=None, profile=None, client: Optional[ServiceNowClient] = None,
                 outbox: Optional[Outbox] = None, budget_seconds: float = INTERACTIVE_BUDGET_SECONDS,
                 clock: Optional[Callable[[], float]] = None, sleep: Optional[Callable[[float], None]] = None):
        """``clock`` (monotonic) and ``sleep`` are for tests; they go to the client made here."""
        if settings is None:
            from af_core.settings import get_settings

            settings = get_settings()
        if profile is None:
            from af_core.profile import get_profile, load_profile

            profile = load_profile(settings.profile_dir) if settings is not None else get_profile()
        self.settings = settings
        self.profile = profile
        if client is None:
            extra: Dict[str, Any] = {}
            if clock is not None:
                extra["clock"] = clock
            if sleep is not None:
                extra["sleep"] = sleep
            client = ServiceNowClient(settings, budget_seconds=budget_seconds, **extra)
        self.client = client
        self.outbox = outbox or Outbox.for_settings(settings)  # SQLite, or PostgreSQL when scaled
        self._sleep = sleep or time.sleep

    # -- building the case --------------------------------------------------
    def build_record(self, req: CaseRequest) -> Dict[str, Any]:
        profile = self.profile
        if req.request_type not in REQUEST_TYPES:
            raise ValueError(f"ukendt request_type {req.request_type!r}")
        if req.topic not in profile.topics:
            raise ValueError(f"ukendt emne {req.topic!r}")
        if req.urgency not in profile.service_levels:
            raise ValueError(f"ukendt hastegrad {req.urgency!r}")
        channel = req.meeting_channel or ""
        if channel and channel not in MEETING_CHANNELS:
            raise ValueError(f"ukendt mødeform {channel!r}")
        email = normalise_email(req.requester_email)  # InvalidQueryValue is a ValueError
        correlation_id = req.correlation_id or uuid.uuid4().hex
        sn.validate_correlation_id(correlation_id)

        topic_name = profile.topics[req.topic].get("name", req.topic)
        institution = (req.institution or "").strip()
        short = req.short_description.strip() or (
            f"{_REQUEST_TYPE_LABELS[req.request_type]}"
            + (f" ({_CHANNEL_LABELS[channel]})" if channel else "")
            + f": {topic_name} – {institution or req.requester_name}"
        )
        lines = [mask_cpr(req.description).strip() or "(ingen beskrivelse)"]
        if req.request_type == "meeting":
            lines.append("")
            lines.append(f"Ønsket mødeform: {_CHANNEL_LABELS.get(channel, 'ikke angivet')}")
            wish = req.preferred_time_text or req.preferred_time
            lines.append(f"Ønske til tidspunkt: {wish or 'intet ønske – AF foreslår et tidspunkt'}")
        if req.summary.strip():
            lines += ["", "Resumé af samtalen med AF-assistenten:", mask_cpr(req.summary).strip()]
        return {
            sn.F_SHORT_DESCRIPTION: _clip(mask_cpr(short), SHORT_DESCRIPTION_MAX),
            sn.F_DESCRIPTION: _clip("\n".join(lines), DESCRIPTION_MAX),
            sn.F_REQUEST_TYPE: req.request_type,
            sn.F_TOPIC: req.topic,
            sn.F_URGENCY: str(profile.service_levels[req.urgency]["urgency"]),
            sn.F_MEETING_CHANNEL: channel if req.request_type == "meeting" else "",
            sn.F_PREFERRED_TIME: (req.preferred_time or "") if req.request_type == "meeting" else "",
            sn.F_OPENED_BY: email,
            sn.F_REQUESTER_EMAIL: email,
            sn.F_REQUESTER_NAME: req.requester_name.strip(),
            sn.F_INSTITUTION: institution,
            sn.F_ASSIGNMENT_GROUP: profile.assignment_group(institution, req.topic),
            sn.F_CONTACT_TYPE: "chat",
            sn.F_CORRELATION_ID: correlation_id,
            sn.F_CORRELATION_DISPLAY: correlation_display(correlation_id),
        }

    # -- the blocking parts (run in a thread) -------------------------------
    def _submit_blocking(self, record: Dict[str, Any]) -> Optional[Dict[str, str]]:
        """The case (with a valid number), or None: queued (the reference is the answer)."""
        with self.client.time_limit():  # the whole submit shares the interactive deadline
            return self._submit_within_deadline(record)

    def _submit_within_deadline(self, record: Dict[str, Any]) -> Optional[Dict[str, str]]:
        cid, display = record[sn.F_CORRELATION_ID], record[sn.F_CORRELATION_DISPLAY]
        lease = self.client.max_operation_seconds() + 30
        try:
            new = self.outbox.add(
                record, correlation_id=cid, correlation_display=display,
                requester_email=record[sn.F_REQUESTER_EMAIL], request_type=record[sn.F_REQUEST_TYPE],
                topic=record[sn.F_TOPIC], short_description=record[sn.F_SHORT_DESCRIPTION],
                lease_seconds=lease,
            )
        except Exception:
            log.exception("Udbakken kunne ikke gemme %s; forsøger ServiceNow direkte", display)
            # We cannot know whether an earlier attempt got through: look up before POSTing.
            return self._create(record, stored=False, lookup_first=True)
        if new:
            return self._create(record, stored=True, lookup_first=False)
        return self._submit_again(record, lease)

    def _submit_again(self, record: Dict[str, Any], lease: float) -> Optional[Dict[str, str]]:
        """The outbox already has this request: never simply POST it again."""
        cid, display = record[sn.F_CORRELATION_ID], record[sn.F_CORRELATION_DISPLAY]
        log.info("%s er sendt før; bruger den første henvendelse", display)
        while True:
            receipt = self.outbox.receipt(cid)
            if receipt is None:  # the receipt was purged meanwhile: ask ServiceNow first
                return self._create(record, stored=False, lookup_first=True)
            if receipt["status"] == DELIVERED:
                return self._delivered(cid, display, receipt)
            if receipt["status"] == DEAD:
                return None  # ServiceNow rejected it; AF has it (the leader keeps the reference)
            entry = self.outbox.claim(cid, lease)
            if entry is not None:  # nobody is delivering it: do it, looking it up first
                return self._create(entry.record or record, stored=True, lookup_first=True)
            # Someone (the worker, or the first "ja") is delivering it right now: wait for them.
            if self.client.remaining() < WAIT_POLL_SECONDS + sn.MIN_ATTEMPT_SECONDS:
                return None
            self._sleep(WAIT_POLL_SECONDS)

    def _delivered(self, cid: str, display: str, receipt: Dict[str, Any]) -> Optional[Dict[str, str]]:
        if is_case_number(receipt.get("number")):
            return {sn.F_NUMBER: receipt["number"], sn.F_SYS_ID: receipt.get("sys_id", "")}
        try:  # no usable number in the receipt: ServiceNow knows it
            found = self.client.find_by_correlation_id(cid)
        except (ServiceNowError, InvalidQueryValue) as exc:
            log.warning("Sagsnummeret for %s kunne ikke slås op (%s); lederen får referencen", display, exc)
            return None
        if found is None:
            log.error("%s står som leveret, men ServiceNow kender den ikke", display)
            return None
        number = mark_delivered_checked(self.outbox, cid, display, found)
        return dict(found, **{sn.F_NUMBER: number}) if number else None

    def _create(self, record: Dict[str, Any], *, stored: bool, lookup_first: bool) -> Optional[Dict[str, str]]:
        cid, display = record[sn.F_CORRELATION_ID], record[sn.F_CORRELATION_DISPLAY]
        try:
            result = self.client.create_record(record, lookup_first=lookup_first)
        except ServiceNowRejected as exc:
            if not stored:
                raise CaseServiceUnavailable("ServiceNow afviste henvendelsen, og udbakken kunne ikke gemme den") from exc
            self.outbox.mark_dead(cid, rejection_text(exc))
            log_dead_letter(display, cid, exc)
            return None
        except Exception as exc:  # ServiceNowError, or a bug: the outbox keeps the request
            if not stored:
                raise CaseServiceUnavailable("hverken ServiceNow eller udbakken kunne tage imod") from exc
            level = logging.WARNING if isinstance(exc, ServiceNowError) else logging.ERROR
            log.log(level, "ServiceNow tog ikke imod %s (%s); den ligger i udbakken", display, exc)
            self.outbox.release(cid, str(exc), delay_for(getattr(exc, "retry_after", None), 0.0))
            return None
        number = result.get(sn.F_NUMBER, "")
        if stored:
            try:
                number = mark_delivered_checked(self.outbox, cid, display, result)
            except Exception:  # the worker would look it up by correlation_id and find it: no duplicate
                log.exception("Udbakken kunne ikke markere %s som leveret", display)
        if not is_case_number(number):
            if not stored:
                log.error("ServiceNow gav %s et sagsnummer i en ukendt form; lederen får referencen", display)
            return None
        return result

    # -- the interface --------------------------------------------------------
    async def submit_case(self, req: CaseRequest) -> SubmitResult:
        record = self.build_record(req)
        unit = self.profile.unit_for_institution(req.institution)
        promise = str(self.profile.service_levels[req.urgency].get("promise", ""))
        result = await asyncio.to_thread(self._submit_blocking, record)
        if result and is_case_number(result.get(sn.F_NUMBER)):
            number = result[sn.F_NUMBER]
            return SubmitResult("created", number, number, unit["name"], record[sn.F_ASSIGNMENT_GROUP], promise)
        return SubmitResult(
            "queued", None, record[sn.F_CORRELATION_DISPLAY], unit["name"], record[sn.F_ASSIGNMENT_GROUP], promise
        )

    @staticmethod
    def _summary(record: Dict[str, str]) -> CaseSummary:
        state = record.get(sn.F_STATE, "")
        return CaseSummary(
            number=record.get(sn.F_NUMBER, ""),
            short_description=record.get(sn.F_SHORT_DESCRIPTION, ""),
            state=state,
            state_label=STATE_LABELS.get(state, "Ukendt"),
            updated_on=record.get(sn.F_UPDATED_ON, ""),
            request_type=record.get(sn.F_REQUEST_TYPE, ""),
            topic=record.get(sn.F_TOPIC, ""),
        )

    @staticmethod
    def _queued_summary(entry: OutboxEntry) -> CaseSummary:
        return CaseSummary(
            number=entry.correlation_display,
            short_description=entry.short_description,
            state=QUEUED_STATE,
            state_label=QUEUED_LABEL,
            updated_on=_time_text(entry.created_at),
            request_type=entry.request_type,
            topic=entry.topic,
        )

    async def list_open_cases(self, email: str, limit: int = 5) -> List[CaseSummary]:
        try:
            email = normalise_email(email)
        except InvalidQueryValue:
            log.warning("list_open_cases: ugyldig e-mailadresse")
            return []
        limit = max(1, min(int(limit), 50))

        def work():
            queued = self.outbox.pending(email, include_dead=True)
            return queued, self.client.list_cases_for_leader(email, limit=limit)

        try:
            queued, records = await asyncio.to_thread(work)
        except ServiceNowError as exc:
            raise CaseServiceUnavailable(str(exc)) from exc
        shown = [r for r in records if is_case_number(r.get(sn.F_NUMBER))]
        if len(shown) != len(records):
            log.error("ServiceNow returnerede %d sager med et sagsnummer i en ukendt form; de vises ikke",
                      len(records) - len(shown))
        records = shown
        seen = {r.get(sn.F_CORRELATION_ID) for r in records if sn.is_correlation_id(r.get(sn.F_CORRELATION_ID))}
        summaries = [self._queued_summary(e) for e in queued if e.correlation_id not in seen]
        summaries += [self._summary(r) for r in records]
        return summaries[:limit]

    async def get_case(self, number: str, email: str) -> Optional[CaseSummary]:
        try:
            email = normalise_email(email)
        except InvalidQueryValue:
            return None
        reference = re.sub(r"\s+", "", number or "").upper()
        if REFERENCE_PATTERN.fullmatch(reference):
            entries = await asyncio.to_thread(self.outbox.pending, email, True)
            for entry in entries:
                if entry.correlation_display == reference:
                    return self._queued_summary(entry)
            return None
        try:
            record = await asyncio.to_thread(self.client.get_case_for_leader, reference, email)
        except ServiceNowError as exc:
            raise CaseServiceUnavailable(str(exc)) from exc
        return self._summary(record) if record and is_case_number(record.get(sn.F_NUMBER)) else None


# -- module-level interface (what the actions call) ---------------------------
_service: Optional[CaseService] = None
_service_lock = threading.Lock()


def get_service() -> CaseService:
    global _service
    with _service_lock:
        if _service is None:
            from af_core.profile import get_profile
            from af_core.settings import get_settings

            _service = CaseService(get_settings(), get_profile())
        return _service


def set_service(service: Optional[CaseService]) -> None:
    """Replace the process-wide service (tests); ``None`` resets to the default."""
    global _service
    with _service_lock:
        _service = service


async def submit_case(req: CaseRequest) -> SubmitResult:
    """Create the case in ServiceNow, or queue it in the outbox. Never raises for ServiceNow trouble."""
    return await get_service().submit_case(req)


async def list_open_cases(email: str, limit: int = 5) -> List[CaseSummary]:
    """The leader's open cases, newest first. Raises CaseServiceUnavailable when ServiceNow is down."""
    return await get_service().list_open_cases(email, limit)


async def get_case(number: str, email: str) -> Optional[CaseSummary]:
    """The leader's case ``number`` (or queued reference), None for malformed/unknown/foreign numbers."""
    return await get_service().get_case(number, email)
