"""Status of the leader's cases.

"Hvad sker der med min sag?" lists the leader's own open cases (number, short
description, state in Danish, last update), newest first, at most five. With
a case number ("status på AFH0001234") it shows that case only if it belongs
to the leader. An unknown, malformed or foreign number -- or an attempt to
smuggle a ServiceNow query into the number -- gets one and the same answer,
so nothing reveals whether a number exists.

Every sentence is a domain response (domain/requests.yml, ``utter_case_...``); a list of
cases is ``utter_case_line`` once per case, inside ``utter_case_list``.

Whose cases: the verified ``leader_email`` from the identity token; only in
development without a token, the ``contact_email`` the leader typed (asked
for once by ``case_status_form``; see requests_form.py for why it is a
separate slot).
"""
from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Text
from zoneinfo import ZoneInfo

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.contact_email import ContactEmailMixin, requester_email, typed_email_allowed
from af_core import danish_time
from af_core.profile import Profile, get_profile
from af_core.responses import render

log = logging.getLogger(__name__)

MAX_CASES = 5
CASE_NUMBER = re.compile(r"^AFH\d{7}$")
QUEUED_REFERENCE = re.compile(r"^AF-[0-9A-Z]{5}$")
# Anything in the message that looks like an attempt at a case number: a word with
# at least three digits, or starting with AF. Taken whole (up to white space) so
# "AFH0001001^ORrequester_email!=x" stays one malformed token.
_CANDIDATE = re.compile(r"(?<!\S)(\S*\d{3,}\S*|AF[HK]?-?\S+)", re.IGNORECASE)
_TRAILING = ".,;:!?)\"'»"
# ServiceNow encoded-query syntax has no business in a case number.
_QUERY_SYNTAX = re.compile(r"\^|javascript:|[=<>]|\bNQ\b|ORDERBY", re.IGNORECASE)


def case_number_candidate(text: str) -> Optional[str]:
    """The case number the leader wrote (normalised), a malformed token, or None."""
    if not text or text.startswith("/"):
        return None
    text = re.sub(r"\b(AF[HK]?)[\s-]+(\d{3,})\b", r"\1\2", text, flags=re.IGNORECASE)
    for token in text.split():
        if _QUERY_SYNTAX.search(token):
            return token.upper()  # malformed on purpose: gets the not-found answer
    for match in _CANDIDATE.finditer(text):
        token = match.group(1).strip(_TRAILING).lstrip("(\"'«#")
        if "@" in token:  # an e-mail address is not a case number
            continue
        if not token:
            continue
        upper = token.upper()
        if upper.isdigit() and len(upper) <= 7:
            return f"AFH{int(upper):07d}"  # "sag 1234" -> AFH0001234
        return upper
    return None


def requested_number(tracker: Tracker) -> Optional[str]:
    """The number in the leader's latest status question (the e-mail may have come after it)."""
    for event in reversed(tracker.events or []):
        if event.get("event") != "user":
            continue
        parse = event.get("parse_data") or {}
        if (parse.get("intent") or {}).get("name") != "case_status":
            if _is_email_answer(event):
                continue  # the e-mail the status form asked for; the question came before it
            return None
        entity = next(
            (e.get("value") for e in parse.get("entities", []) if e.get("entity") == "case_number" and e.get("value")),
            None,
        )
        if entity:
            return str(entity).strip().upper()
        return case_number_candidate(event.get("text") or "")
    return None


def _is_email_answer(event: Dict[str, Any]) -> bool:
    return "@" in (event.get("text") or "")


def render_updated(updated_on: str, profile: Profile, now: Optional[datetime] = None) -> Optional[str]:
    """ServiceNow's 'YYYY-MM-DD HH:MM:SS' (UTC) as Danish local time; as given if it is no such
    time; None if there is none."""
    try:
        moment = datetime.strptime(updated_on.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    except (ValueError, AttributeError):
        return updated_on or None
    local = moment.astimezone(ZoneInfo(profile.timezone))
    return danish_time.render_datetime(local, now)


def case_line(case: Any, profile: Profile, domain: Dict[str, Any], now: Optional[datetime] = None) -> str:
    """One case as the leader reads it: ``utter_case_line`` filled with the case's data."""
    return render(
        domain, "utter_case_line",
        number=case.number,
        title=case.short_description or render(domain, "utter_case_untitled"),
        state=case.state_label,
        updated=render_updated(case.updated_on, profile, now) or render(domain, "utter_case_updated_unknown"),
    )


def phone_values(profile: Profile) -> Dict[str, str]:
    """AF's phone for the responses' {af_phone} and {af_phone_hours}."""
    return {"af_phone": profile.phone, "af_phone_hours": profile.phone_hours}


def _case_service():
    """The ServiceNow facade (a seam for tests)."""
    from af_core import case_service

    return case_service


def _now(profile: Profile) -> datetime:
    return datetime.now(ZoneInfo(profile.timezone))


class ActionCaseStatus(Action):
    def name(self) -> Text:
        return "action_case_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        profile = get_profile()
        service = _case_service()
        email = requester_email(tracker)
        if not email:
            dispatcher.utter_message(response="utter_case_status_no_identity", **phone_values(profile))
            return []
        number = requested_number(tracker)
        now = _now(profile)
        try:
            if number:
                case = None
                if CASE_NUMBER.match(number) or QUEUED_REFERENCE.match(number):
                    case = await service.get_case(number, email)
                if case is None:
                    # The same answer for unknown, malformed and other leaders' numbers.
                    dispatcher.utter_message(response="utter_case_not_found")
                else:
                    dispatcher.utter_message(response="utter_case_shown", case=case_line(case, profile, domain, now))
                return []
            cases = list(await service.list_open_cases(email, limit=MAX_CASES))[:MAX_CASES]
        except service.CaseServiceUnavailable:
            dispatcher.utter_message(response="utter_case_status_unavailable", **phone_values(profile))
            return []
        except Exception:  # never crash the conversation
            log.exception("Opslag af sager fejlede")
            dispatcher.utter_message(response="utter_case_status_unavailable", **phone_values(profile))
            return []
        if not cases:
            dispatcher.utter_message(response="utter_no_open_cases")  # help or a meeting: buttons in the domain
            return []
        lines = "\n".join(case_line(case, profile, domain, now) for case in cases)
        response = "utter_case_list_one" if len(cases) == 1 else "utter_case_list"
        dispatcher.utter_message(response=response, count=len(cases), cases=lines)
        return []


class ValidateCaseStatusForm(ContactEmailMixin, FormValidationAction):
    """Asks for an e-mail only when there is neither a verified nor a typed one."""

    def name(self) -> Text:
        return "validate_case_status_form"

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        if tracker.get_slot("leader_email") or not typed_email_allowed():
            return []  # where a login is required, a typed e-mail is never asked for
        return ["contact_email"]
