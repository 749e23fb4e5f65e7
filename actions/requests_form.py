"""Ordering help or booking a meeting with AF: the ``request_form`` (rasa-sdk side).

What the leader's words mean is decided in ``af_core/request_dialogue.py`` (pure, no Rasa);
this module reads the tracker into it and turns its outcome into events, and asks the form's
questions. Every sentence is a domain response (domain/requests.yml); buttons built from the
profile (topics, urgency, channels, time suggestions) carry labels from the profile or from
``utter_button_*`` responses.

The form's flow:

* ``validate_request_form`` runs on every message while the form is active and reads every
  detail. It returns nothing only for a digression (a rule question, a form, a person, "er du
  en robot?"): the form then rejects, the rules in data/rules/requests.yml answer, and the form
  comes back and asks its question again. A message it does not understand never drops the
  form: the question is asked again, with its buttons and a way out, at most twice.
* "glem det" at any point ends the form through ``action_cancel_request`` (nothing is created).
* Confirmed at the summary: the form ends and ``action_submit_request`` creates the case once
  (the correlation id is fixed at confirmation, so a repeated "ja" never gives two cases).
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from typing import Any, Dict, List, Optional, Text, Tuple
from zoneinfo import ZoneInfo

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.contact_email import requester_email, typed_email_allowed
from actions.handoff import ActionHumanHandoff
from af_core import danish_time, request_dialogue as rd
from af_core.af_calendar import closing_reason
from af_core.catalogue import clear_hit, load_faq_catalogue, load_form_catalogue
from af_core.faq_replies import HINT_MIN_SCORE as FAQ_HINT_MIN_SCORE
from af_core.form_replies import HINT_MIN_SCORE as FORM_HINT_MIN_SCORE
from af_core.handoff_store import duty_status, get_store
from af_core.menu import main_menu
from af_core.profile import Profile, get_profile
from af_core.request_vocabulary import load_vocabulary
from af_core.responses import render
from af_core.settings import get_settings

log = logging.getLogger(__name__)

FORM = "request_form"
REQUEST_SLOTS = rd.REQUEST_SLOTS
WAY_OUT_BUTTONS = (("utter_button_cancel_request", "/cancel"), ("utter_button_person", "/human_handoff"))


# ---------------------------------------------------------------------------
# Reading the tracker
# ---------------------------------------------------------------------------
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


def infer_topic(text: str, profile: Profile) -> Optional[str]:
    """The area of the form or rule topic the text clearly names ("kørt i egen bil" ->
    kørselsgodtgørelse -> løn), with the catalogue hints' strict thresholds."""
    if not text or not text.strip():
        return None
    catalogues = (
        (load_form_catalogue(profile), FORM_HINT_MIN_SCORE, "area"),
        (load_faq_catalogue(profile), FAQ_HINT_MIN_SCORE, "topic"),
    )
    for catalogue, min_score, area_field in catalogues:
        entry = clear_hit(catalogue, text, min_score)
        area = getattr(entry, area_field) if entry else None
        if area in profile.topics:
            return area
    return None


def build_context(tracker: Tracker, profile: Profile) -> rd.Context:
    settings = meeting_settings(profile)
    return rd.Context(
        vocabulary=load_vocabulary(profile),
        topics=list(profile.topics),
        urgencies=list(profile.service_levels),
        default_urgency=profile.default_urgency,
        now=now_local(profile),
        opening_hours=profile.opening_hours,
        timezone=profile.timezone,
        closed=closing_reason(profile),
        infer_topic=lambda text: infer_topic(text, profile),
        # Where a login is required, an e-mail is never asked for (nor taken) in its place.
        identity_known=bool(tracker.get_slot("leader_email")) or not typed_email_allowed(),
        channels=list(profile.meeting_channels),
        max_days=settings["max_days_ahead"],
        meeting_minutes=settings["duration_minutes"],
    )


def latest_text(tracker: Tracker) -> str:
    text = (tracker.latest_message or {}).get("text") or ""
    # A button payload like /inform{"topic":"loen"} is not the leader's words.
    return "" if text.strip().startswith("/") else text


def latest_entities(tracker: Tracker) -> Dict[str, Any]:
    found: Dict[str, Any] = {}
    for entity in (tracker.latest_message or {}).get("entities") or []:
        name, value = entity.get("entity"), entity.get("value")
        if name and value is not None and name not in found:
            found[name] = value
    return found


def _events_since_latest_user(tracker: Tracker) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """(events after the latest user message, events between the one before and it)."""
    events = list(tracker.events or [])
    users = [i for i, e in enumerate(events) if e.get("event") == "user"]
    if not users:
        return events, []
    last = users[-1]
    previous = users[-2] if len(users) > 1 else -1
    return events[last + 1 :], events[previous + 1 : last]


def returned_after_digression(tracker: Tracker) -> bool:
    """The form was rejected for this message and comes back after the rules answered it."""
    after, _ = _events_since_latest_user(tracker)
    return any(e.get("event") == "action_execution_rejected" and e.get("name") == FORM for e in after)


def previous_answer(tracker: Tracker, profile: Profile) -> Tuple[Optional[str], Optional[str]]:
    """(topic, title) of the rule answer or form the assistant gave just before this message:
    "kan I ringe mig op om det" after the answer on omsorgsdage is about personale."""
    _, before = _events_since_latest_user(tracker)
    for event in reversed(before):
        if event.get("event") != "slot" or not event.get("value"):
            continue
        if event.get("name") == "faq_id":
            topic = load_faq_catalogue(profile).get(str(event["value"]))
            if topic:
                return topic.topic, topic.title
        if event.get("name") == "form_id":
            form = load_form_catalogue(profile).get(str(event["value"]))
            if form:
                return form.area, form.title
    # No answer just before, but the leader's previous message may have named the matter:
    # "jeg vil tale med en HR-konsulent om sygefravær" -> nobody on duty -> "gerne et fysisk møde".
    earlier = _before_latest_user(tracker)
    at = next((i for i in range(len(earlier) - 1, -1, -1) if earlier[i].get("event") == "user"), None)
    finished = at is None or any(
        e.get("event") == "action" and e.get("name") in ("action_submit_request", "action_cancel_request")
        for e in earlier[at:])
    if not finished:
        text = str(earlier[at].get("text") or "")
        if text and not text.startswith("/"):
            return load_vocabulary(profile).topic(text), None
    return None, None


def _before_latest_user(tracker: Tracker) -> List[Dict[str, Any]]:
    """The events of this session before the leader's latest message."""
    events = list(tracker.events or [])
    users = [i for i, e in enumerate(events) if e.get("event") == "user"]
    if not users:
        return []
    start = max((i for i, e in enumerate(events) if e.get("event") == "session_started"), default=-1)
    return events[start + 1 : users[-1]]


def request_state(tracker: Tracker) -> Dict[str, Any]:
    state = {slot: tracker.get_slot(slot) for slot in REQUEST_SLOTS + (rd.EMAIL,)}
    state["requested_slot"] = tracker.get_slot("requested_slot")
    return state


def progress(tracker: Tracker) -> Dict[str, Any]:
    return rd.progress_of({rd.PROGRESS: tracker.get_slot(rd.PROGRESS)})


# ---------------------------------------------------------------------------
# Names for the responses' variables
# ---------------------------------------------------------------------------
def topic_name(profile: Profile, topic: Optional[str]) -> str:
    if not topic:
        return ""
    return str(profile.topics.get(topic, {}).get("name", topic))


def urgency_values(profile: Profile, urgency: Optional[str]) -> Dict[str, str]:
    level = profile.service_levels.get(urgency or "", {})
    return {"urgency_label": str(level.get("label", urgency or "")), "promise": str(level.get("promise", ""))}


# Responses that open with the time the leader named ("Torsdag den 3. december kl. 9.00 er ...").
_STARTS_WITH_TIME = ("utter_time_past", "utter_time_outside_hours")


def say(dispatcher: CollectingDispatcher, message: rd.Say, profile: Profile, **extra: Any) -> None:
    values = dict(message.values)
    if message.response in _STARTS_WITH_TIME and values.get("shown"):
        values["shown"] = values["shown"][:1].upper() + values["shown"][1:]
    if "topic_key" in values:
        values["topic_name"] = topic_name(profile, values.pop("topic_key"))
    if "urgency_key" in values:
        values.update(urgency_values(profile, values.pop("urgency_key")))
    values.setdefault("af_phone", profile.phone)
    values.setdefault("af_phone_hours", profile.phone_hours)
    values.update(extra)
    dispatcher.utter_message(response=message.response, **values)


def label(domain: Dict[str, Any], name: str, **values: Any) -> str:
    return render(domain, name, **values)


def way_out(domain: Dict[str, Any]) -> List[Dict[str, str]]:
    return [{"title": label(domain, name), "payload": payload} for name, payload in WAY_OUT_BUTTONS]


def asked_before(tracker: Tracker, slot: str) -> bool:
    """This is the second time the question is asked: offer a way out with the buttons."""
    return progress(tracker)["asks"].get(slot, 0) >= rd.MAX_ASKS


# ---------------------------------------------------------------------------
# The form's validation: every message, every detail
# ---------------------------------------------------------------------------
class ValidateRequestForm(Action):
    def name(self) -> Text:
        return "validate_request_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[EventType]:
        requested = tracker.get_slot("requested_slot")
        if requested is not None and returned_after_digression(tracker):
            # Back after a rule answer, a form or "er du en robot?": ask the same question again.
            return [SlotSet("requested_slot", requested)]
        profile = get_profile()
        intent = (tracker.latest_message or {}).get("intent") or {}
        activation = requested is None
        context_topic, context_title = previous_answer(tracker, profile) if activation else (None, None)
        turn = rd.Turn(
            text=latest_text(tracker),
            intent=intent.get("name"),
            confidence=float(intent.get("confidence") or 0.0),
            entities=latest_entities(tracker),
            activation=activation,
            context_topic=context_topic,
            context_title=context_title,
        )
        state = request_state(tracker)

        def decide() -> rd.Outcome:
            return rd.interpret(state, turn, build_context(tracker, profile))

        outcome = await asyncio.to_thread(decide)  # the catalogue search is CPU work
        if outcome.reject:
            return []
        for message in outcome.say:
            say(dispatcher, message, profile)
        events: List[EventType] = [SlotSet(slot, value) for slot, value in outcome.updates.items()]
        if outcome.cancel:
            return events + [SlotSet("requested_slot", None), ActiveLoop(None), FollowupAction("action_cancel_request")]
        events.append(SlotSet("requested_slot", outcome.ask))
        return events


# ---------------------------------------------------------------------------
# The questions
# ---------------------------------------------------------------------------
class ActionAskTopic(Action):
    def name(self) -> Text:
        return "action_ask_topic"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        profile = get_profile()
        buttons = [
            {"title": topic_name(profile, key)[:1].upper() + topic_name(profile, key)[1:],
             "payload": f'/inform{{"topic":"{key}"}}'}
            for key in profile.topics
        ]
        if asked_before(tracker, "topic"):
            buttons += way_out(domain)
        dispatcher.utter_message(response="utter_ask_topic", buttons=buttons)
        return []


class ActionAskUrgency(Action):
    def name(self) -> Text:
        return "action_ask_urgency"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        profile = get_profile()
        buttons = []
        for key in profile.service_levels:
            values = urgency_values(profile, key)
            name = "utter_button_urgency" if values["promise"] else "utter_button_urgency_plain"
            title = label(domain, name, **values)
            buttons.append({"title": title[:1].upper() + title[1:], "payload": f'/inform{{"urgency":"{key}"}}'})
        if asked_before(tracker, "urgency"):
            buttons += way_out(domain)
        dispatcher.utter_message(response="utter_ask_urgency", buttons=buttons)
        return []


class ActionAskMeetingChannel(Action):
    """Buttons from code: Rasa reads the braces of an entity payload in a domain response as a
    slot placeholder and logs an error."""

    def name(self) -> Text:
        return "action_ask_meeting_channel"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        profile = get_profile()
        buttons = [{"title": title, "payload": f'/inform{{"meeting_channel":"{key}"}}'}
                   for key, title in profile.meeting_channels.items()]
        if asked_before(tracker, "meeting_channel"):
            buttons += way_out(domain)
        dispatcher.utter_message(response="utter_ask_meeting_channel", buttons=buttons)
        return []


def time_suggestions(profile: Profile, count: int = 3) -> List[datetime]:
    settings = meeting_settings(profile)
    return danish_time.suggest_times(
        now_local(profile), profile.opening_hours, profile.timezone, count=count,
        meeting_minutes=settings["duration_minutes"], closed=closing_reason(profile),
    )


class ActionAskPreferredTime(Action):
    """Only when the leader wants to add a wish: AF cannot see its calendars from the chat, so
    the time is a wish that AF confirms when they call. Suggestions skip holidays and closing days."""

    def name(self) -> Text:
        return "action_ask_preferred_time"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        profile = get_profile()
        now = now_local(profile)
        buttons = [
            {"title": danish_time.render_datetime(moment, now).capitalize(),
             "payload": '/inform{"preferred_time":"' + moment.isoformat() + '"}'}
            for moment in await asyncio.to_thread(time_suggestions, profile)
        ]
        buttons.append({"title": label(domain, "utter_button_no_time_wish"),
                        "payload": '/inform{"preferred_time":"' + rd.NO_WISH + '"}'})
        dispatcher.utter_message(
            response="utter_ask_preferred_time",
            hours=danish_time.opening_hours_text(profile.opening_hours),
            **urgency_values(profile, tracker.get_slot("urgency")),
            buttons=buttons,
        )
        return []


def summary_lines(tracker: Tracker, profile: Profile, domain: Dict[str, Any]) -> str:
    """The summary's lines, each a response in domain/requests.yml."""
    request_type = tracker.get_slot("request_type") or "help"
    done = progress(tracker)
    lines = [label(domain, f"utter_summary_line_type_{request_type}")]
    lines.append(label(domain, "utter_summary_line_topic", topic_name=topic_name(profile, tracker.get_slot("topic"))))
    urgency_line = "utter_summary_line_urgency_default" if "urgency" in done["defaulted"] else "utter_summary_line_urgency"
    lines.append(label(domain, urgency_line, **urgency_values(profile, tracker.get_slot("urgency"))))
    if request_type == "meeting":
        channel = tracker.get_slot("meeting_channel")
        if channel:
            lines.append(label(domain, "utter_summary_line_channel",
                               channel_label=profile.meeting_channels.get(channel, channel)))
        else:
            lines.append(label(domain, "utter_summary_line_channel_open"))
        wish = tracker.get_slot("preferred_time_text") or danish_time.describe_iso(
            tracker.get_slot("preferred_time"), timezone=profile.timezone)
        if wish:
            lines.append(label(domain, "utter_summary_line_time", time_text=wish))
        else:
            lines.append(label(domain, "utter_summary_line_no_time"))
    description = tracker.get_slot("description")
    if description:
        lines.append(label(domain, "utter_summary_line_description", description=description))
    if tracker.get_slot("callback_requested"):
        lines.append(label(domain, "utter_summary_line_callback"))
    email = requester_email(tracker)
    if email:
        lines.append(label(domain, "utter_summary_line_email", email=email))
    return "\n".join(lines)


CORRECTION_FIELDS = (
    ("topic", "utter_button_fix_topic"),
    ("urgency", "utter_button_fix_urgency"),
    ("meeting_channel", "utter_button_fix_channel"),
    ("preferred_time", "utter_button_fix_time"),
    ("description", "utter_button_fix_description"),
    ("request_type", "utter_button_fix_type"),
)


class ActionAskRequestConfirmed(Action):
    """The summary before anything is created -- or, after a plain "nej", what to change."""

    def name(self) -> Text:
        return "action_ask_request_confirmed"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        profile = get_profile()
        meeting = tracker.get_slot("request_type") == "meeting"
        if progress(tracker).get("correcting"):
            buttons = [
                {"title": label(domain, name), "payload": f'/inform{{"correction_field":"{field}"}}'}
                for field, name in CORRECTION_FIELDS
                if meeting or field not in ("meeting_channel", "preferred_time")
            ]
            buttons.append({"title": label(domain, "utter_button_still_right"), "payload": "/affirm"})
            dispatcher.utter_message(response="utter_ask_what_to_correct", buttons=buttons)
            return []
        buttons = [{"title": label(domain, "utter_button_send"), "payload": "/affirm"}]
        if meeting and not (tracker.get_slot("preferred_time") or tracker.get_slot("preferred_time_text")):
            buttons.append({"title": label(domain, "utter_button_add_time"),
                            "payload": '/inform{"correction_field":"preferred_time"}'})
        buttons += [
            {"title": label(domain, "utter_button_correct"), "payload": "/deny"},
            {"title": label(domain, "utter_button_cancel_request"), "payload": "/cancel"},
        ]
        response = "utter_request_summary" if tracker.get_slot("description") else "utter_request_summary_invite"
        dispatcher.utter_message(response=response, summary=summary_lines(tracker, profile, domain), buttons=buttons)
        return []


# ---------------------------------------------------------------------------
# After the form: submit, cancel, call-back
# ---------------------------------------------------------------------------
def _case_service():
    """The ServiceNow facade (a seam for tests)."""
    from af_core import case_service

    return case_service


def reset_events() -> List[EventType]:
    return [SlotSet(slot, None) for slot in REQUEST_SLOTS]


def conversation_summary(tracker: Tracker, profile: Profile, domain: Dict[str, Any]) -> str:
    """For AF's case: the summary the leader confirmed, and where the request came from."""
    lines = [summary_lines(tracker, profile, domain)]
    context = progress(tracker).get("context_title")
    if context:
        lines.append(label(domain, "utter_case_note_context", title=context))
    if tracker.get_slot("callback_requested"):
        lines.append(label(domain, "utter_case_note_callback"))
    if not tracker.get_slot("leader_email") and tracker.get_slot("contact_email"):
        lines.append(label(domain, "utter_case_note_unverified_email"))
    return "\n".join(lines)


class ActionSubmitRequest(Action):
    """Create the confirmed request as a case, and say what happens next."""

    def name(self) -> Text:
        return "action_submit_request"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        profile = get_profile()
        if tracker.get_slot("request_confirmed") is not True:
            return []  # never create anything the leader did not confirm
        if not requester_email(tracker):
            # Where a login is required and the identity is missing, nothing is filed in
            # anyone's name (a typed e-mail is no identity); the leader gets AF's phone.
            log.warning("Bestilling uden verificeret identitet blev ikke sendt")
            dispatcher.utter_message(response="utter_request_failed", af_phone=profile.phone,
                                     af_phone_hours=profile.phone_hours)
            return []
        service = _case_service()
        request_type = tracker.get_slot("request_type") or "help"
        description = tracker.get_slot("description") or ""
        if tracker.get_slot("callback_requested"):
            description = f"{label(domain, 'utter_case_note_callback')} {description}".strip()
        meeting = request_type == "meeting"
        request = service.CaseRequest(
            request_type=request_type,
            topic=tracker.get_slot("topic"),
            urgency=tracker.get_slot("urgency"),
            description=description,
            requester_name=tracker.get_slot("leader_name") or "",
            requester_email=requester_email(tracker) or "",
            institution=tracker.get_slot("leader_institution") or "",
            meeting_channel=tracker.get_slot("meeting_channel") if meeting else None,
            preferred_time=tracker.get_slot("preferred_time") if meeting else None,
            preferred_time_text=tracker.get_slot("preferred_time_text") if meeting else None,
            summary=conversation_summary(tracker, profile, domain),
            correlation_id=tracker.get_slot("case_correlation_id") or uuid.uuid4().hex,
        )
        try:
            result = await service.submit_case(request)
        except Exception:  # invalid data or neither ServiceNow nor the outbox: never crash the chat
            log.exception("Henvendelsen kunne ikke oprettes")
            dispatcher.utter_message(response="utter_request_failed", af_phone=profile.phone,
                                     af_phone_hours=profile.phone_hours)
            return reset_events()
        dispatcher.utter_message(**self.reply(result, request_type, tracker, profile, domain))
        return reset_events() + [SlotSet("last_case_reference", result.reference)]

    @staticmethod
    def reply(result: Any, request_type: str, tracker: Tracker, profile: Profile,
              domain: Dict[str, Any]) -> Dict[str, Any]:
        """The response and its variables for a created or a queued request."""
        unit = result.unit_name or profile.unit_for_institution(tracker.get_slot("leader_institution"))["name"]
        promise = result.promise or urgency_values(profile, tracker.get_slot("urgency"))["promise"]
        steps = []
        if request_type == "meeting":
            steps.append(label(domain, "utter_request_next_meeting"))
        if tracker.get_slot("callback_requested"):
            steps.append(label(domain, "utter_request_next_callback"))
        values = {"unit": unit, "promise": promise, "next_steps": " ".join(steps),
                  "af_phone": profile.phone, "af_phone_hours": profile.phone_hours}
        if result.status == "created":
            return {"response": "utter_request_created", "number": result.number, **values}
        return {"response": "utter_request_queued", "reference": result.reference, **values}


class ActionCancelRequest(Action):
    """'Glem det': drop the request (nothing is created) and clear its details."""

    def name(self) -> Text:
        return "action_cancel_request"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        started = (tracker.active_loop or {}).get("name") or any(tracker.get_slot(s) for s in rd.DETAILS)
        dispatcher.utter_message(
            response="utter_request_dropped" if started else "utter_nothing_to_cancel", buttons=main_menu(domain)
        )
        return reset_events() + [SlotSet("requested_slot", None)]


class ActionRequestCallback(Action):
    """The leader asks for a person in the middle of the form.

    When a supporter is on duty, the chat is handed over (the form ends; the supporter reads
    what was filled in from the transcript). Otherwise the case is marked "ønsker at blive
    ringet op", and the form goes on with what is missing.
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
        dispatcher.utter_message(response="utter_callback_noted", af_phone=profile.phone,
                                 af_phone_hours=profile.phone_hours)
        events: List[EventType] = [SlotSet("callback_requested", True)]
        if not tracker.get_slot("request_type"):
            events.append(SlotSet("request_type", "help"))
        return events


class ActionInformWithoutRequest(Action):
    """A detail ("Teams", "det haster") arrives while no request is in progress.

    When it names a meeting or a channel ("telefonmøde", "teams"), a meeting request starts
    with it; otherwise the leader chooses help or meeting.
    """

    def name(self) -> Text:
        return "action_inform_without_request"

    async def run(self, dispatcher, tracker, domain) -> List[EventType]:
        text = latest_text(tracker)
        vocabulary = load_vocabulary(get_profile())
        if text and (vocabulary.request_type(text) == "meeting" or vocabulary.channel(text)):
            return [FollowupAction(FORM)]  # a channel is only ever for a meeting
        dispatcher.utter_message(response="utter_ask_help_or_meeting")
        return []
