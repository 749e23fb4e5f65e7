"""The facade the dialogue uses for ServiceNow cases.

``submit_case`` turns a leader's order for help / meeting request into a case
of the AF case type (docs/servicenow.md). It never raises because of
ServiceNow: the request is written to the durable outbox first and, if
ServiceNow does not take it now, stays there for the outbox worker
(``status == "queued"``, ``reference`` like ``AF-7K3Q9``).

All blocking work (HTTP, SQLite) runs in ``asyncio.to_thread`` so a slow
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
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from actions import servicenow_client as sn
from actions.outbox import Outbox, OutboxEntry
from actions.servicenow_client import (
    InvalidQueryValue,
    ServiceNowClient,
    ServiceNowError,
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
REFERENCE_PATTERN = re.compile(r"^AF-[0-9A-Z]{5}$")
_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
_REQUEST_TYPE_LABELS = {"help": "Hjælp", "meeting": "Møde"}
_CHANNEL_LABELS = {"fysisk": "fysisk møde", "telefon": "telefon", "teams": "Teams"}
SHORT_DESCRIPTION_MAX = 160
# A leader is waiting: stop retrying after this long and queue the request instead
# (the outbox worker's client has no such budget).
INTERACTIVE_BUDGET_SECONDS = 15.0
DESCRIPTION_MAX = 4000

try:  # the shared CPR masking, if present
    from actions.privacy import mask_cpr as _mask_cpr
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
                 outbox: Optional[Outbox] = None, budget_seconds: float = INTERACTIVE_BUDGET_SECONDS):
        if settings is None:
            from actions.settings import get_settings

            settings = get_settings()
        if profile is None:
            from actions.profile import get_profile, load_profile

            profile = load_profile(settings.profile_dir) if settings is not None else get_profile()
        self.settings = settings
        self.profile = profile
        self.client = client or ServiceNowClient(settings, budget_seconds=budget_seconds)
        self.outbox = outbox or Outbox(settings.outbox_path)

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
        cid, display = record[sn.F_CORRELATION_ID], record[sn.F_CORRELATION_DISPLAY]
        stored = True
        try:
            self.outbox.add(
                record, correlation_id=cid, correlation_display=display,
                requester_email=record[sn.F_REQUESTER_EMAIL], request_type=record[sn.F_REQUEST_TYPE],
                topic=record[sn.F_TOPIC], short_description=record[sn.F_SHORT_DESCRIPTION],
                lease_seconds=self.client.max_operation_seconds() + 30,
            )
        except Exception:
            stored = False
            log.exception("Udbakken kunne ikke gemme %s; forsøger ServiceNow direkte", display)
        try:
            result = self.client.create_record(record)
        except Exception as exc:  # ServiceNowError, or a bug: the outbox keeps the request
            if not stored:
                raise CaseServiceUnavailable("hverken ServiceNow eller udbakken kunne tage imod") from exc
            level = logging.WARNING if isinstance(exc, ServiceNowError) else logging.ERROR
            log.log(level, "ServiceNow tog ikke imod %s (%s); den ligger i udbakken", display, exc)
            self.outbox.release(cid, str(exc), 0.0)
            return None
        if stored:
            try:
                self.outbox.mark_delivered(cid, result.get(sn.F_NUMBER, ""), result.get(sn.F_SYS_ID, ""))
            except Exception:  # the worker would look it up by correlation_id and find it: no duplicate
                log.exception("Udbakken kunne ikke markere %s som leveret", display)
        return result

    # -- the interface --------------------------------------------------------
    async def submit_case(self, req: CaseRequest) -> SubmitResult:
        record = self.build_record(req)
        unit = self.profile.unit_for_institution(req.institution)
        promise = str(self.profile.service_levels[req.urgency].get("promise", ""))
        result = await asyncio.to_thread(self._submit_blocking, record)
        if result and result.get(sn.F_NUMBER):
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
            queued = self.outbox.pending(email)
            return queued, self.client.list_cases_for_leader(email, limit=limit)

        try:
            queued, records = await asyncio.to_thread(work)
        except ServiceNowError as exc:
            raise CaseServiceUnavailable(str(exc)) from exc
        seen = {r.get(sn.F_CORRELATION_ID) for r in records}
        summaries = [self._queued_summary(e) for e in queued if e.correlation_id not in seen]
        summaries += [self._summary(r) for r in records]
        return summaries[:limit]

    async def get_case(self, number: str, email: str) -> Optional[CaseSummary]:
        try:
            email = normalise_email(email)
        except InvalidQueryValue:
            return None
        reference = re.sub(r"\s+", "", number or "").upper()
        if REFERENCE_PATTERN.match(reference):
            entries = await asyncio.to_thread(self.outbox.pending, email)
            for entry in entries:
                if entry.correlation_display == reference:
                    return self._queued_summary(entry)
            return None
        try:
            record = await asyncio.to_thread(self.client.get_case_for_leader, reference, email)
        except ServiceNowError as exc:
            raise CaseServiceUnavailable(str(exc)) from exc
        return self._summary(record) if record else None


# -- module-level interface (what the actions call) ---------------------------
_service: Optional[CaseService] = None
_service_lock = threading.Lock()


def get_service() -> CaseService:
    global _service
    with _service_lock:
        if _service is None:
            from actions.profile import get_profile
            from actions.settings import get_settings

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
