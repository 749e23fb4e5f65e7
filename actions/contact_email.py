"""The e-mail a leader without a verified login types (development only).

Shared by the request form and the case status form. The typed address is kept in
``contact_email``, never in ``leader_email``: it is a contact address and can never pass
for a verified identity.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from af_core.request_dialogue import EMAIL_RE, find_email
from af_core.settings import get_settings

STOP_INTENTS = frozenset({"cancel", "human_handoff", "restart", "case_status"})


def typed_email_allowed() -> bool:
    """A typed e-mail may stand in for a login only where no login is required."""
    return not get_settings().identity_required


def requester_email(tracker: Tracker) -> Optional[str]:
    """The verified e-mail, else (only where no login is required) the one the leader typed.

    Where identity is required a typed address is never an identity: a leader whose
    identity is somehow missing gets no case and no case list in anyone's name.
    """
    verified = tracker.get_slot("leader_email")
    if verified or not typed_email_allowed():
        return verified or None
    return tracker.get_slot("contact_email")


def _latest_text(tracker: Tracker) -> str:
    text = (tracker.latest_message or {}).get("text") or ""
    return "" if text.startswith("/") else text


class ContactEmailMixin:
    """Extraction and validation of ``contact_email`` for a FormValidationAction."""

    async def extract_contact_email(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        if tracker.get_slot("requested_slot") != "contact_email":
            return {}
        if ((tracker.latest_message or {}).get("intent") or {}).get("name") in STOP_INTENTS:
            return {}
        text = _latest_text(tracker)
        email = find_email(text)
        if email:
            return {"contact_email": email}
        if text.strip():
            dispatcher.utter_message(response="utter_email_invalid")
            return {"contact_email": None}
        return {}

    def validate_contact_email(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        if slot_value is None:
            return {"contact_email": None}
        value = str(slot_value).strip().lower()
        if not EMAIL_RE.match(value) or len(value) > 254:
            dispatcher.utter_message(response="utter_email_invalid")
            return {"contact_email": None}
        return {"contact_email": value}
