"""Ordering help or booking a meeting with AF (the ``request_form``).

The form collects: request type (help/meeting), topic, urgency, for meetings
the channel and a preferred time, a short description in the leader's own
words, and -- only when no verified identity is present (development) -- an
e-mail address. Then it shows a summary and asks for confirmation; only a
confirmed request becomes a case (``action_submit_request``).

Design choices worth knowing:

* Everything the leader already said fills its slot: the validation action
  reads entities *and* matches the text itself (fuzzy, without æøå, with
  typos), so "Jeg vil gerne have et Teams-møde om løn, det haster" only leaves
  the description (and the time) to ask for.
* Corrections ("nej, hellere telefon") are understood at any step except
  while the leader is writing the description (which is free text); at the
  summary a plain "nej" asks what to change, with a button per detail.
* A message that fills nothing (a rule question, "er du en robot?", "glem
  det", asking for a person) makes the form reject, so the rules in
  ``data/rules/requests.yml`` handle it and then return to the form.
* The e-mail typed by a leader without a verified token is kept in
  ``contact_email``, never in ``leader_email``: it is only a contact address
  and can never pass for a verified identity. Case status look-ups use it
  when there is no verified e-mail (development), see ``case_status.py``.
* The correlation id is fixed when the leader confirms, and kept until the
  case is submitted, so a repeated confirmation never creates a second case
  (the ServiceNow client looks requests up by correlation id first).
"""
from __future__ import annotations

import asyncio
import logging
import re
import uuid
from datetime import datetime
from typing import Any, Dict, Iterable, List, Optional, Sequence, Text, Tuple
from zoneinfo import ZoneInfo

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import danish_time
from actions.handoff import ActionHumanHandoff
from actions.handoff_store import duty_status, get_store
from actions.menu import MAIN_MENU
from actions.profile import Profile, get_profile
from actions.settings import get_settings
from actions.textnorm import edit_distance

log = logging.getLogger(__name__)

FORM = "request_form"

# Slots this capability owns and resets after a request is submitted or cancelled.
REQUEST_SLOTS = (
    "request_type",
    "topic",
    "urgency",
    "meeting_channel",
    "preferred_time",
    "preferred_time_text",
    "description",
    "request_confirmed",
    "callback_requested",
    "case_correlation_id",
)
# Slots set alongside a required one; rasa-sdk would otherwise not return them.
COMPANION_SLOTS = ("preferred_time_text", "meeting_channel", "preferred_time", "case_correlation_id")
CORRECTABLE = ("request_type", "topic", "urgency", "meeting_channel", "preferred_time", "description")

# Intents that are never an answer to a form question: a message with one of these
# fills nothing, so the form rejects and the rules handle it (and come back).
DIGRESSION_INTENTS = frozenset(
    {
        "cancel",
        "human_handoff",
        "bot_challenge",
        "ask_capabilities",
        "faq",
        "ask_question",
        "find_form",
        "case_status",
        "greet",
        "goodbye",
        "thank",
        "restart",
        "out_of_scope",
    }
)
# ... except while the leader writes the description: any words are theirs,
# unless they want out or want a person.
DESCRIPTION_STOP_INTENTS = frozenset({"cancel", "human_handoff", "restart", "case_status"})

REQUEST_TYPE_LABELS = {"help": "hjælp fra AF", "meeting": "et møde med AF"}
CHANNEL_LABELS = {"fysisk": "fysisk møde", "telefon": "telefonmøde", "teams": "Teams-møde"}
URGENCY_LABELS = {"akut": "akut", "snart": "snart", "ingen_hast": "ingen hast"}

# Words leaders use, per value. Matched on ascii-folded tokens with typo tolerance.
TOPIC_WORDS: Dict[str, Tuple[str, ...]] = {
    "loen": (
        "løn", "lønnen", "lønsedel", "lønsedlen", "lønseddel", "lønsedler", "lønudbetaling", "udbetaling",
        "lønsag", "lønforhold", "tillæg", "tillæget", "lønindplacering", "indplacering", "løntrin",
        "lønforhandling", "efterløn", "feriepenge", "pension", "overenskomst",
    ),
    "personale": (
        "personale", "personalesag", "personalesager", "hr", "ansættelse", "ansætte", "ansat", "nyansat",
        "afsked", "afskedigelse", "opsigelse", "fratrædelse", "sygefravær", "sygdom", "syg", "fravær",
        "barsel", "orlov", "advarsel", "tjenstlig", "medarbejdersag", "rekruttering", "vikar", "vikarer",
        "personalet", "ansøgning",
    ),
    "indkoeb": (
        "indkøb", "indkøbet", "indkøbe", "købe", "køb", "bestilling", "bestille", "leverandør",
        "leverandøren", "faktura", "fakturaen", "fakturaer", "regning", "indkøbsaftale", "udbud",
        "varer", "møbler", "inventar", "it-udstyr", "computere",
    ),
    "oekonomi": (
        "økonomi", "økonomien", "budget", "budgettet", "budgetter", "regnskab", "regnskabet", "penge",
        "bevilling", "underskud", "overskud", "budgetopfølgning", "prognose", "konto", "kontering",
        "forbrug", "økonomiske",
    ),
    "arbejdstid": (
        "arbejdstid", "arbejdstiden", "tidsregistrering", "tidsregistreringen", "timer", "timeregistrering",
        "overarbejde", "overtid", "merarbejde", "vagtplan", "vagtplanen", "mødeplan", "skema", "skemaet",
        "opgaveoversigt", "a20", "normtid", "flekstid", "afspadsering", "plustid", "minustid",
    ),
}
TOPIC_PHRASES: Dict[str, Tuple[str, ...]] = {
    "arbejdstid": ("tid registrering",),
    "personale": ("ny medarbejder",),
}

CHANNEL_WORDS: Dict[str, Tuple[str, ...]] = {
    "teams": ("teams", "teamsmøde", "video", "videomøde", "online", "onlinemøde", "virtuelt", "skærm", "ms teams"),
    "telefon": ("telefon", "telefonen", "telefonmøde", "ringe", "ring", "ringer", "opkald", "tlf", "mobil", "telefonisk"),
    "fysisk": (
        "fysisk", "fysiske", "fysisk møde", "personligt", "fremmøde", "ansigt til ansigt", "face to face",
        "komme ud", "kommer ud", "på skolen", "på institutionen", "hos os", "ude hos",
    ),
}

# Urgency phrases; negated phrases are checked first ("det haster ikke").
URGENCY_PHRASES: Tuple[Tuple[str, str], ...] = (
    ("ingen_hast", r"ingen hast|haster ikke|ikke (?:noget )?(?:der )?haster|ikke (?:så )?akut|ikke travlt|"
                   r"ingen travlhed|kan godt vente|det kan vente|når i har tid|når det passer|i ro og mag|"
                   r"ingen stress|ikke vigtigt|ikke presserende|haster ik"),
    ("snart", r"\bsnart\b|\bsnarest\b|et par dage|par dage|i løbet af ugen|inden for et par|denne uge|"
              r"i denne uge|ikke akut|nogenlunde hurtigt|inden længe|indenfor et par"),
    ("akut", r"\bakut\b|\bhaster\b|hastesag|haster meget|haster gevaldigt|\bstraks\b|med det samme|"
             r"hurtigst muligt|\bi dag\b|\bidag\b|\bnu\b|brænder|kritisk|meget vigtigt|asap|\bsnarest muligt\b"),
)
URGENCY_WORDS: Dict[str, Tuple[str, ...]] = {
    "akut": ("akut", "akkut", "akutt", "haster", "hastende", "hastr"),
    "snart": ("snart",),
    "ingen_hast": ("ingenhast",),
}
REQUEST_TYPE_WORDS: Dict[str, Tuple[str, ...]] = {
    "meeting": ("møde", "mødet", "møder", "mødes", "booke", "book", "aftale", "samtale"),
    "help": ("hjælp", "hjælpe", "bestille", "bestil", "opgave", "sag", "henvendelse", "assistance"),
}

AFFIRM_WORDS = re.compile(
    r"^\s*(ja|jep|jo|yes|ok|okay|jamen ja|ja tak|ja, tak|send|send den|send det|opret|opret den|"
    r"det er rigtigt|det passer|korrekt|fint|perfekt|godkend|godkendt|bekræft|bekræfter|helt rigtigt|"
    r"ja det er korrekt|ja send|ja opret)\b[\s.!]*",
    re.IGNORECASE,
)
DENY_WORDS = re.compile(r"^\s*(nej|nix|nope|ikke helt|det passer ikke|forkert|ret|rette)\b", re.IGNORECASE)
NEGATION = re.compile(r"\b(ikke|ik|ikk|ingen|aldrig)\s*$")
STRICT_EMAIL = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._+-]{0,62}[A-Za-z0-9_+-])?"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_TIME_MARKER = re.compile(
    r"\bkl\b|\bkl\.|\bklokken\b|\b\d{1,2}[:.]\d{2}\b|\b\d{1,2}/\d{1,2}\b|\bnæste uge\b|\buge \d{1,2}\b|"
    r"\b(mandag|tirsdag|onsdag|torsdag|fredag|lørdag|søndag)\b|\b(formiddag|eftermiddag)\b|"
    r"\b\d{1,2}\.? (januar|februar|marts|april|maj|juni|juli|august|september|oktober|november|december)\b"
)
MIN_DESCRIPTION_CHARS = 8
MAX_DESCRIPTION_CHARS = 1500
DESCRIPTION_FROM_FIRST_MESSAGE_WORDS = 15


# ---------------------------------------------------------------------------
# Text matching helpers (pure)
# ---------------------------------------------------------------------------
_FOLD = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "é": "e"})


def fold(text: str) -> str:
    """Lower-case, æøå -> ae/oe/aa, and single-letter variants collapsed (o/a)."""
    return (text or "").casefold().translate(_FOLD)


def _loose(word: str) -> str:
    """'loen', 'lon', 'løn' all become 'lon'."""
    return fold(word).replace("ae", "a").replace("oe", "o").replace("aa", "a")


def tokens(text: str) -> List[str]:
    return re.findall(r"[a-zæøå0-9]+", (text or "").casefold())


def _keyword_positions(text: str, table: Dict[str, Sequence[str]]) -> List[Tuple[int, str]]:
    """(token position, value) for every keyword found in ``text``, typo tolerant."""
    words = tokens(text)
    loose_words = [_loose(w) for w in words]
    found: List[Tuple[int, str]] = []
    for value, keywords in table.items():
        for keyword in keywords:
            parts = [_loose(p) for p in tokens(keyword)]
            if not parts:
                continue
            n = len(parts)
            for i in range(len(loose_words) - n + 1):
                window = loose_words[i : i + n]
                if window == parts:
                    found.append((i, value))
                elif n == 1 and len(parts[0]) >= 5 and len(window[0]) >= 4:
                    allowed = 2 if len(parts[0]) >= 9 else 1
                    if edit_distance(window[0], parts[0], limit=allowed) <= allowed:
                        found.append((i, value))
            # compound words: "lønsedlen", "teamsmøde"
            if n == 1 and len(parts[0]) >= 4:
                for i, word in enumerate(loose_words):
                    if len(word) > len(parts[0]) + 2 and word.startswith(parts[0]):
                        found.append((i, value))
    return found


PREFERENCE = re.compile(r"\b(hellere|men|nej|snarere|helst|i stedet)\s*$")


def match_choice(text: str, table: Dict[str, Sequence[str]]) -> Optional[str]:
    """The value the leader means, or None when unclear.

    Negated mentions do not count ("ikke teams, telefon"). When two different
    values remain, only a marked preference decides ("løn, nej hellere
    personale"); otherwise the leader is asked rather than guessed for.
    """
    words = tokens(text)
    hits = sorted(set(_keyword_positions(text, table)))
    kept: List[Tuple[int, str]] = []
    for position, value in hits:
        before = " ".join(words[max(0, position - 2) : position])
        if NEGATION.search(before):
            continue
        kept.append((position, value))
    values = {value for _, value in kept}
    if len(values) <= 1:
        return next(iter(values), None)
    for position, value in reversed(kept):
        before = " ".join(words[max(0, position - 3) : position])
        if PREFERENCE.search(before) or re.search(r"\b(hellere|i stedet)\b", " ".join(words[position + 1 : position + 3])):
            return value
    return None


def match_topic(text: str) -> Optional[str]:
    folded = " ".join(tokens(text))
    for value, phrases in TOPIC_PHRASES.items():
        if any(phrase in folded for phrase in phrases):
            return value
    return match_choice(text, TOPIC_WORDS)


def match_channel(text: str) -> Optional[str]:
    return match_choice(text, CHANNEL_WORDS)


def match_urgency(text: str) -> Optional[str]:
    lowered = " ".join(tokens(text))
    # tolerate "haster" without æøå issues (none) and typos like "hastr", "akkut"
    for value, pattern in URGENCY_PHRASES:
        if re.search(pattern, lowered):
            return value
    return match_choice(text, URGENCY_WORDS)


def match_request_type(text: str) -> Optional[str]:
    return match_choice(text, REQUEST_TYPE_WORDS)


def find_email(text: str) -> Optional[str]:
    """The e-mail address in ``text``; a token with odd characters is not one."""
    for token in (text or "").split():
        if "@" not in token:
            continue
        candidate = token.strip(".,;:!?()<>\"'«»").lower()
        if len(candidate) <= 254 and STRICT_EMAIL.match(candidate):
            return candidate
        return None
    return None


def has_time_marker(text: str) -> bool:
    return bool(_TIME_MARKER.search(danish_time.normalise(text)))


# ---------------------------------------------------------------------------
# Tracker helpers
# ---------------------------------------------------------------------------
def latest_intent(tracker: Tracker) -> Optional[str]:
    return (tracker.latest_message or {}).get("intent", {}).get("name")


def latest_text(tracker: Tracker) -> str:
    text = (tracker.latest_message or {}).get("text") or ""
    # A button payload like /inform{"topic":"loen"} is not the leader's words.
    return "" if text.startswith("/") else text


def latest_entities(tracker: Tracker, entity: str) -> List[Any]:
    return [e.get("value") for e in (tracker.latest_message or {}).get("entities", []) if e.get("entity") == entity]


def values_before_latest_message(tracker: Tracker) -> Dict[str, Any]:
    """Slot values as they were just before the leader's latest message."""
    events = list(tracker.events or [])
    last_user = max((i for i, e in enumerate(events) if e.get("event") == "user"), default=None)
    values: Dict[str, Any] = {}
    if last_user is None:
        return values
    for event in events[:last_user]:
        kind = event.get("event")
        if kind == "slot":
            values[event.get("name")] = event.get("value")
        elif kind in ("restart", "session_started"):
            values = {}
    return values


def changed_this_turn(tracker: Tracker, slots: Iterable[str]) -> List[str]:
    """Which of ``slots`` have another value now than before the latest message."""
    before = values_before_latest_message(tracker)
    return [slot for slot in slots if tracker.slots.get(slot) != before.get(slot)]


def now_local(profile: Profile) -> datetime:
    """The current time in the profile's timezone (tests monkeypatch this)."""
    return datetime.now(ZoneInfo(profile.timezone))


def meeting_settings(profile: Profile) -> Dict[str, int]:
    """Optional ``meetings`` block of the profile: horizon and assumed length."""
    block = profile.data.get("meetings") or {}
    return {
        "max_days_ahead": int(block.get("max_days_ahead", 60)),
        "duration_minutes": int(block.get("duration_minutes", 30)),
    }


def requester_email(tracker: Tracker) -> Optional[str]:
    """The verified e-mail, else the contact e-mail the leader typed (development)."""
    return tracker.get_slot("leader_email") or tracker.get_slot("contact_email")


def topic_name(profile: Profile, topic: Optional[str]) -> str:
    if not topic:
        return ""
    return str(profile.topics.get(topic, {}).get("name", topic))


# ---------------------------------------------------------------------------
# E-mail (shared by the request form and the case status form)
# ---------------------------------------------------------------------------
class ContactEmailMixin:
    """Extraction and validation of ``contact_email`` for leaders without a verified token."""

    async def extract_contact_email(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        if tracker.get_slot("requested_slot") != "contact_email":
            return {}
        if latest_intent(tracker) in DESCRIPTION_STOP_INTENTS:
            return {}
        text = latest_text(tracker)
        email = find_email(text)
        if email:
            return {"contact_email": email}
        if text.strip():
            dispatcher.utter_message(
                text="Det ligner ikke en e-mailadresse. Skriv den sådan her: fornavn.efternavn@kk.dk"
            )
            return {"contact_email": None}
        return {}

    def validate_contact_email(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        if slot_value is None:
            return {"contact_email": None}
        value = str(slot_value).strip().lower()
        if not STRICT_EMAIL.match(value) or len(value) > 254:
            dispatcher.utter_message(
                text="Det ligner ikke en e-mailadresse. Skriv den sådan her: fornavn.efternavn@kk.dk"
            )
            return {"contact_email": None}
        return {"contact_email": value}


# ---------------------------------------------------------------------------
# The form's validation action
# ---------------------------------------------------------------------------
class ValidateRequestForm(ContactEmailMixin, FormValidationAction):
    def name(self) -> Text:
        return "validate_request_form"

    # -- which slots ----------------------------------------------------------
    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        slots = ["request_type", "topic", "urgency"]
        if tracker.get_slot("request_type") == "meeting":
            slots += ["meeting_channel", "preferred_time"]
        slots.append("description")
        if not tracker.get_slot("leader_email"):
            slots.append("contact_email")
        slots.append("request_confirmed")
        return slots

    async def get_extraction_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Extract every form slot, not only the ones required *before* this message.

        rasa-sdk asks ``required_slots`` once before extracting, when a first
        message like "et Teams-møde om løn" has not yet made this a meeting;
        the channel and time in it would be lost.
        """
        extracted: Dict[Text, Any] = {}
        for slot in self.domain_slots(domain):
            output = await self._extract_slot(slot, dispatcher, tracker, domain)
            extracted.update(output)
            tracker.slots.update(output)
        return [SlotSet(slot, value) for slot, value in extracted.items()]

    async def get_validation_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """rasa-sdk drops slots the form does not require (``preferred_time_text``, or the
        channel cleared when a meeting becomes a request for help); keep those that changed."""
        events = await super().get_validation_events(dispatcher, tracker, domain)
        returned = {event.get("name") for event in events}
        before = values_before_latest_message(tracker)
        for slot in COMPANION_SLOTS:
            if slot not in returned and tracker.slots.get(slot) != before.get(slot):
                events.append(SlotSet(slot, tracker.slots.get(slot)))
        return events

    # -- when may a slot be read from this message ----------------------------
    @staticmethod
    def _requested(tracker: Tracker) -> Optional[str]:
        return tracker.get_slot("requested_slot")

    def _may_read(self, tracker: Tracker, slot: str) -> bool:
        """Read ``slot`` from the latest message?

        Yes when it is the slot being asked for, at activation, at the
        summary (corrections) and at any other step, except while the leader
        writes the description, and never from a digression.
        """
        if latest_intent(tracker) in DIGRESSION_INTENTS:
            return False
        requested = self._requested(tracker)
        if requested == "description" and slot != "description":
            return False
        return True

    @staticmethod
    def _changed(tracker: Tracker, slot: str, value: Any) -> Dict[Text, Any]:
        """Only report a slot when the value is new."""
        if value is None or tracker.get_slot(slot) == value:
            return {}
        return {slot: value}

    @staticmethod
    def _keep_during_description(tracker: Tracker, slot: str, value: Any) -> Optional[Dict[Text, Any]]:
        """Words in the description must not change other details (an entity mapping may have)."""
        before = values_before_latest_message(tracker)
        if before.get("requested_slot") == "description" and value != before.get(slot):
            return {slot: before.get(slot)}
        return None

    # -- extraction -----------------------------------------------------------
    async def extract_request_type(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        if not self._may_read(tracker, "request_type"):
            return {}
        intent = latest_intent(tracker)
        value = {"request_help": "help", "book_meeting": "meeting"}.get(intent or "")
        requested = self._requested(tracker)
        if value is None and requested in ("request_type", "request_confirmed"):
            value = match_request_type(latest_text(tracker))
        if value is None and requested is None and tracker.get_slot("request_type") is None:
            value = match_request_type(latest_text(tracker))
        return self._changed(tracker, "request_type", value)

    async def extract_topic(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        if not self._may_read(tracker, "topic"):
            return {}
        entity = next((v for v in latest_entities(tracker, "topic") if v), None)
        value = entity or match_topic(latest_text(tracker))
        return self._changed(tracker, "topic", value)

    async def extract_urgency(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        if not self._may_read(tracker, "urgency"):
            return {}
        text = latest_text(tracker)
        if self._requested(tracker) not in ("urgency", None, "request_confirmed") and not re.search(
            r"\b(akut|haster|hast|travlt|vente|snart|straks)\b", text.casefold()
        ):
            # "i dag" / "nu" while answering another question is not a change of urgency
            text = ""
        value = match_urgency(text) or next((v for v in latest_entities(tracker, "urgency") if v), None)
        return self._changed(tracker, "urgency", value)

    async def extract_meeting_channel(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        if not self._may_read(tracker, "meeting_channel"):
            return {}
        entity = next((v for v in latest_entities(tracker, "meeting_channel") if v), None)
        value = entity or match_channel(latest_text(tracker))
        if value and tracker.get_slot("request_type") == "help" and self._requested(tracker) != "request_type":
            # "ring til mig" in a request for help is not a meeting
            return {}
        return self._changed(tracker, "meeting_channel", value)

    async def extract_preferred_time(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        if not self._may_read(tracker, "preferred_time"):
            return {}
        requested = self._requested(tracker)
        entity = next((v for v in latest_entities(tracker, "preferred_time") if v), None)
        text = entity or latest_text(tracker)
        if not text.strip():
            return {}
        if requested != "preferred_time" and not (entity or has_time_marker(text)):
            return {}
        profile = get_profile()
        settings = meeting_settings(profile)
        check = danish_time.check_preferred_time(
            text,
            now_local(profile),
            profile.opening_hours,
            profile.timezone,
            max_days=settings["max_days_ahead"],
            meeting_minutes=settings["duration_minutes"],
        )
        if check.ok:
            return {"preferred_time": check.value.iso(), "preferred_time_text": check.message}
        if requested == "preferred_time" or check.problem != "unparsed":
            dispatcher.utter_message(text=check.message)
            if requested == "preferred_time":
                return {"preferred_time": None, "preferred_time_text": None}
        return {}

    async def extract_description(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        requested = self._requested(tracker)
        intent = latest_intent(tracker)
        text = latest_text(tracker).strip()
        if not text or intent in DESCRIPTION_STOP_INTENTS:
            return {}
        if requested == "description":
            return {"description": text}
        if (
            requested is None
            and intent in ("request_help", "book_meeting")
            and tracker.get_slot("description") is None
            and len(text.split()) >= DESCRIPTION_FROM_FIRST_MESSAGE_WORDS
        ):
            # A long first message already says what it is about.
            return {"description": text}
        return {}

    async def extract_request_confirmed(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        if self._requested(tracker) != "request_confirmed":
            return {}
        intent = latest_intent(tracker)
        if intent in DIGRESSION_INTENTS:
            return {}
        field = next((v for v in latest_entities(tracker, "correction_field") if v), None)
        if field in CORRECTABLE:
            cleared: Dict[Text, Any] = {field: None, "request_confirmed": None}
            if field == "preferred_time":
                cleared["preferred_time_text"] = None
            if field == "request_type":
                cleared.update({"meeting_channel": None, "preferred_time": None, "preferred_time_text": None})
            return cleared
        if changed_this_turn(tracker, CORRECTABLE):
            return {"request_confirmed": None}  # a correction: show the summary again
        text = latest_text(tracker)
        if intent == "affirm" or (intent not in ("deny",) and AFFIRM_WORDS.match(text or "")):
            if DENY_WORDS.match(text or ""):
                return {"request_confirmed": None}
            return {"request_confirmed": True}
        if intent == "deny" or DENY_WORDS.match(text or ""):
            return {"request_confirmed": None}
        return {}

    # -- validation -----------------------------------------------------------
    def validate_request_type(self, slot_value: Any, dispatcher, tracker, domain) -> Dict[Text, Any]:
        if slot_value is None:  # cleared on purpose (a correction)
            return {"request_type": None}
        if slot_value in ("help", "meeting"):
            if slot_value == "help":
                return {"request_type": "help", "meeting_channel": None, "preferred_time": None, "preferred_time_text": None}
            return {"request_type": "meeting"}
        dispatcher.utter_message(text="Vælg, om du vil bestille hjælp eller et møde.")
        return {"request_type": None}

    def _validate_choice(self, slot: str, slot_value: Any, allowed, matcher, retry_text: str,
                         dispatcher, tracker) -> Dict[Text, Any]:
        """A closed choice: a button value, or free text (typos, no æøå) read by ``matcher``."""
        kept = self._keep_during_description(tracker, slot, slot_value)
        if kept is not None:
            return kept
        if slot_value is None:
            return {slot: None}
        value = str(slot_value or "").strip()
        if value not in allowed:
            value = matcher(value) or ""
        if value in allowed:
            return {slot: value}
        dispatcher.utter_message(text=retry_text)
        return {slot: None}

    def validate_topic(self, slot_value: Any, dispatcher, tracker, domain) -> Dict[Text, Any]:
        profile = get_profile()
        names = ", ".join(topic_name(profile, t) for t in profile.topics)
        return self._validate_choice("topic", slot_value, profile.topics, match_topic,
                                     f"Det emne kender jeg ikke. Vælg et af disse: {names}.", dispatcher, tracker)

    def validate_urgency(self, slot_value: Any, dispatcher, tracker, domain) -> Dict[Text, Any]:
        return self._validate_choice("urgency", slot_value, get_profile().service_levels, match_urgency,
                                     "Vælg, hvor meget det haster: akut, snart eller ingen hast.", dispatcher, tracker)

    def validate_meeting_channel(self, slot_value: Any, dispatcher, tracker, domain) -> Dict[Text, Any]:
        lowered = slot_value.lower() if isinstance(slot_value, str) else slot_value
        return self._validate_choice("meeting_channel", lowered, CHANNEL_LABELS, match_channel,
                                     "Vælg fysisk møde, telefon eller Teams.", dispatcher, tracker)

    def validate_preferred_time(self, slot_value: Any, dispatcher, tracker, domain) -> Dict[Text, Any]:
        if slot_value is None:
            return {"preferred_time": None}
        if tracker.get_slot("preferred_time_text") and changed_this_turn(tracker, ["preferred_time_text"]):
            # parsed and checked by extract_preferred_time; the text must be returned from here,
            # since rasa-sdk only returns slots the form requires or a validate_ method sets
            return {"preferred_time": slot_value, "preferred_time_text": tracker.get_slot("preferred_time_text")}
        profile = get_profile()
        settings = meeting_settings(profile)
        check = danish_time.check_preferred_time(
            str(slot_value),
            now_local(profile),
            profile.opening_hours,
            profile.timezone,
            max_days=settings["max_days_ahead"],
            meeting_minutes=settings["duration_minutes"],
        )
        if check.ok:
            return {"preferred_time": check.value.iso(), "preferred_time_text": check.message}
        dispatcher.utter_message(text=check.message)
        return {"preferred_time": None, "preferred_time_text": None}

    def validate_description(self, slot_value: Any, dispatcher, tracker, domain) -> Dict[Text, Any]:
        if slot_value is None:
            return {"description": None}
        text = re.sub(r"\s+", " ", str(slot_value or "")).strip()
        if len(text) < MIN_DESCRIPTION_CHARS:
            dispatcher.utter_message(
                text="Skriv lidt mere, så AF kan forberede sig. Bare en sætning eller to om, hvad det drejer sig om."
            )
            return {"description": None}
        if len(text) > MAX_DESCRIPTION_CHARS:
            text = text[: MAX_DESCRIPTION_CHARS - 1].rstrip() + "…"
        return {"description": text}

    def validate_request_confirmed(self, slot_value: Any, dispatcher, tracker, domain) -> Dict[Text, Any]:
        if slot_value is True:
            correlation_id = tracker.get_slot("case_correlation_id") or uuid.uuid4().hex
            return {"request_confirmed": True, "case_correlation_id": correlation_id}
        return {"request_confirmed": None}


# ---------------------------------------------------------------------------
# Asking for slots that need the profile or the clock
# ---------------------------------------------------------------------------
class ActionAskTopic(Action):
    def name(self) -> Text:
        return "action_ask_topic"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        profile = get_profile()
        buttons = [
            {"title": topic_name(profile, key).capitalize(), "payload": f'/inform{{"topic":"{key}"}}'}
            for key in profile.topics
        ]
        what = "mødet" if tracker.get_slot("request_type") == "meeting" else "det"
        dispatcher.utter_message(text=f"Hvad handler {what} om?", buttons=buttons)
        return []


class ActionAskUrgency(Action):
    def name(self) -> Text:
        return "action_ask_urgency"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        profile = get_profile()
        buttons = []
        for key, level in profile.service_levels.items():
            label = str(level.get("label", URGENCY_LABELS.get(key, key)))
            promise = str(level.get("promise", ""))
            title = f"{label.capitalize()} – svar {promise}" if promise else label.capitalize()
            buttons.append({"title": title, "payload": f'/inform{{"urgency":"{key}"}}'})
        dispatcher.utter_message(text="Hvor meget haster det?", buttons=buttons)
        return []


class ActionAskMeetingChannel(Action):
    """Asked from code, not domain.yml: Rasa treats the braces of an entity
    payload in a domain response as a slot placeholder and logs an error."""

    CHOICES = (("Fysisk møde", "fysisk"), ("Telefon", "telefon"), ("Teams", "teams"))

    def name(self) -> Text:
        return "action_ask_meeting_channel"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        buttons = [{"title": title, "payload": f'/inform{{"meeting_channel":"{key}"}}'} for title, key in self.CHOICES]
        dispatcher.utter_message(text="Hvordan vil du helst holde mødet?", buttons=buttons)
        return []


class ActionAskPreferredTime(Action):
    def name(self) -> Text:
        return "action_ask_preferred_time"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        profile = get_profile()
        settings = meeting_settings(profile)
        now = now_local(profile)
        suggestions = danish_time.suggest_times(
            now, profile.opening_hours, profile.timezone, count=3, meeting_minutes=settings["duration_minutes"]
        )
        buttons = [
            {
                "title": danish_time.render_datetime(moment, now).capitalize(),
                "payload": '/inform{"preferred_time":"' + moment.isoformat() + '"}',
            }
            for moment in suggestions
        ]
        hours = danish_time.opening_hours_text(profile.opening_hours)
        dispatcher.utter_message(
            text=(
                "Hvornår passer det dig? Skriv fx \"torsdag kl. 10\", \"i morgen eftermiddag\" eller "
                f"\"næste uge\", eller vælg et forslag. AF har åbent {hours}."
            ),
            buttons=buttons,
        )
        return []


def render_summary(tracker: Tracker, profile: Profile) -> str:
    request_type = tracker.get_slot("request_type")
    lines = [f"Du vil gerne have {REQUEST_TYPE_LABELS.get(request_type, 'hjælp fra AF')}."]
    lines.append(f"• Emne: {topic_name(profile, tracker.get_slot('topic'))}")
    urgency = tracker.get_slot("urgency")
    level = profile.service_levels.get(urgency or "", {})
    label = str(level.get("label", URGENCY_LABELS.get(urgency or "", urgency or "")))
    promise = level.get("promise")
    lines.append(f"• Haster: {label}" + (f" (AF vender tilbage {promise})" if promise else ""))
    if request_type == "meeting":
        lines.append(f"• Mødeform: {CHANNEL_LABELS.get(tracker.get_slot('meeting_channel') or '', 'ikke valgt')}")
        shown = tracker.get_slot("preferred_time_text") or danish_time.describe_iso(
            tracker.get_slot("preferred_time"), timezone=profile.timezone
        )
        lines.append(f"• Tidspunkt: {shown or 'ikke valgt'}")
    lines.append(f"• Beskrivelse: {tracker.get_slot('description') or ''}")
    if tracker.get_slot("callback_requested"):
        lines.append("• Du ønsker at blive ringet op")
    email = requester_email(tracker)
    if email:
        lines.append(f"• AF svarer dig på: {email}")
    return "\n".join(lines)


CONFIRM_BUTTONS = [
    {"title": "Ja, send den", "payload": "/affirm"},
    {"title": "Ret noget", "payload": "/deny"},
    {"title": "Glem det", "payload": "/cancel"},
]


def correction_buttons(tracker: Tracker) -> List[Dict[str, str]]:
    fields = [("topic", "Emne"), ("urgency", "Hvor meget det haster")]
    if tracker.get_slot("request_type") == "meeting":
        fields += [("meeting_channel", "Mødeform"), ("preferred_time", "Tidspunkt")]
    fields += [("description", "Beskrivelse"), ("request_type", "Hjælp eller møde")]
    buttons = [
        {"title": title, "payload": f'/inform{{"correction_field":"{field}"}}'} for field, title in fields
    ]
    buttons.append({"title": "Det passer alligevel", "payload": "/affirm"})
    return buttons


class ActionAskRequestConfirmed(Action):
    """The summary before anything is created -- or, after a plain "nej", what to change."""

    def name(self) -> Text:
        return "action_ask_request_confirmed"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        profile = get_profile()
        changed = changed_this_turn(tracker, CORRECTABLE)
        at_summary = values_before_latest_message(tracker).get("requested_slot") == "request_confirmed"
        intent = latest_intent(tracker)
        if intent == "deny" and not changed and at_summary:
            dispatcher.utter_message(
                text="Hvad skal jeg rette? Skriv fx \"hellere telefon\" eller \"emnet er personale\", eller vælg her:",
                buttons=correction_buttons(tracker),
            )
            return []
        intro = "Jeg har rettet det. " if changed and at_summary else ""
        dispatcher.utter_message(
            text=f"{intro}Her er din henvendelse:\n{render_summary(tracker, profile)}\n\nSkal jeg sende den til AF?",
            buttons=CONFIRM_BUTTONS,
        )
        return []


# ---------------------------------------------------------------------------
# After the form: submit, cancel, call-back
# ---------------------------------------------------------------------------
def _case_service():
    """The ServiceNow facade (a seam for tests)."""
    from actions import case_service

    return case_service


def reset_events() -> List[EventType]:
    return [SlotSet(slot, None) for slot in REQUEST_SLOTS]


def conversation_summary(tracker: Tracker, profile: Profile) -> str:
    lines = [render_summary(tracker, profile)]
    if tracker.get_slot("callback_requested"):
        lines.append("Lederen bad om at tale med en medarbejder i chatten: ønsker at blive ringet op.")
    if not tracker.get_slot("leader_email") and tracker.get_slot("contact_email"):
        lines.append("Bemærk: e-mailadressen er skrevet af lederen selv (ikke verificeret login).")
    return "\n".join(lines)


class ActionSubmitRequest(Action):
    """Create the confirmed request as a case, and say what happens next."""

    def name(self) -> Text:
        return "action_submit_request"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        profile = get_profile()
        if tracker.get_slot("request_confirmed") is not True:
            # Never create anything the leader did not confirm.
            return []
        service = _case_service()
        request_type = tracker.get_slot("request_type") or "help"
        description = tracker.get_slot("description") or ""
        if tracker.get_slot("callback_requested"):
            description = f"ØNSKER AT BLIVE RINGET OP. {description}".strip()
        correlation_id = tracker.get_slot("case_correlation_id") or uuid.uuid4().hex
        email = requester_email(tracker) or ""
        request = service.CaseRequest(
            request_type=request_type,
            topic=tracker.get_slot("topic"),
            urgency=tracker.get_slot("urgency"),
            description=description,
            requester_name=tracker.get_slot("leader_name") or "",
            requester_email=email,
            institution=tracker.get_slot("leader_institution") or "",
            meeting_channel=tracker.get_slot("meeting_channel") if request_type == "meeting" else None,
            preferred_time=tracker.get_slot("preferred_time") if request_type == "meeting" else None,
            summary=conversation_summary(tracker, profile),
            correlation_id=correlation_id,
        )
        try:
            result = await service.submit_case(request)
        except Exception:  # invalid data or neither ServiceNow nor the outbox: never crash the chat
            log.exception("Henvendelsen kunne ikke oprettes")
            dispatcher.utter_message(
                text=(
                    "Beklager, jeg kunne ikke gemme din henvendelse. Ring til AF på "
                    f"{profile.phone} ({profile.phone_hours}), så hjælper de dig."
                )
            )
            return reset_events()
        dispatcher.utter_message(text=self._reply(result, request_type, tracker, profile))
        return reset_events() + [SlotSet("last_case_reference", result.reference)]

    @staticmethod
    def _reply(result: Any, request_type: str, tracker: Tracker, profile: Profile) -> str:
        unit = result.unit_name or profile.unit_for_institution(tracker.get_slot("leader_institution"))["name"]
        promise = result.promise or str(profile.service_levels.get(tracker.get_slot("urgency") or "", {}).get("promise", ""))
        if result.status == "created":
            text = f"Tak! Din sag er oprettet med nummeret {result.number}. {unit} tager sig af den"
            text += f" og vender tilbage {promise}." if promise else "."
            if request_type == "meeting":
                text += " De kontakter dig for at bekræfte tid og sted for mødet."
            if tracker.get_slot("callback_requested"):
                text += " Der står i sagen, at du gerne vil ringes op."
            text += f" Du kan altid spørge mig om status på sag {result.number}."
            return text
        return (
            f"Tak! Jeg har modtaget din henvendelse. Din reference er {result.reference}. "
            "Sagssystemet svarer ikke lige nu, så henvendelsen bliver registreret, så snart systemet svarer igen – "
            f"du skal ikke gøre noget. {unit} vender tilbage {promise}. "
            f"Haster det, kan du ringe til AF på {profile.phone} ({profile.phone_hours})."
        )


class ActionCancelRequest(Action):
    """'Glem det': drop the request (nothing is created) and clear its details."""

    def name(self) -> Text:
        return "action_cancel_request"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        active = (tracker.active_loop or {}).get("name")
        if active:
            dispatcher.utter_message(
                text="Okay, jeg har droppet det. Der er ikke oprettet noget. Er der andet, jeg kan hjælpe med?",
                buttons=_main_menu(),
            )
        else:
            dispatcher.utter_message(
                text="Okay. Der er ikke noget i gang, som skal stoppes. Er der andet, jeg kan hjælpe med?",
                buttons=_main_menu(),
            )
        return reset_events() + [SlotSet("requested_slot", None)]


def _main_menu() -> List[Dict[str, str]]:
    return list(MAIN_MENU)


class ActionRequestCallback(Action):
    """The leader asks for a person in the middle of the form.

    When a supporter is on duty, the chat is handed over (the form ends; the
    supporter reads what was filled in from the transcript). Otherwise the case
    is marked "ønsker at blive ringet op", and the form goes on with what is missing.
    """

    def name(self) -> Text:
        return "action_request_callback"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        profile = get_profile()
        settings = get_settings()
        store = await asyncio.to_thread(get_store, settings)
        duty = await asyncio.to_thread(duty_status, settings, profile, store)
        if duty.on_duty:
            events = await ActionHumanHandoff().run(dispatcher, tracker, domain)
            if any(event.get("event") == "pause" for event in events):
                return [ActiveLoop(None), SlotSet("requested_slot", None), *events]
            return events
        dispatcher.utter_message(
            text=(
                "Jeg kan ikke stille dig direkte videre til en medarbejder her i chatten lige nu. "
                "I stedet skriver jeg i din henvendelse, at du ønsker at blive ringet op. "
                f"Du kan også selv ringe til AF på {profile.phone} ({profile.phone_hours}). "
                "Lad os gøre henvendelsen færdig:"
            )
        )
        events: List[EventType] = [SlotSet("callback_requested", True)]
        if not tracker.get_slot("request_type"):
            events.append(SlotSet("request_type", "help"))
        return events


class ActionInformWithoutRequest(Action):
    """A detail ("Teams", "det haster") arrives while no request is in progress."""

    def name(self) -> Text:
        return "action_inform_without_request"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        dispatcher.utter_message(
            text="Vil du bestille hjælp hos AF eller booke et møde?",
            buttons=[
                {"title": "Bestil hjælp", "payload": "/request_help"},
                {"title": "Book et møde med AF", "payload": "/book_meeting"},
                {"title": "Noget andet", "payload": "/ask_capabilities"},
            ],
        )
        return []
