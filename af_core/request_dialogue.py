"""How a leader's order for help or meeting request is understood, turn by turn (no Rasa).

The request form asks for what AF needs -- help or meeting, topic, urgency and, for a meeting,
the channel -- and then shows a summary to confirm. Leaders do not answer one question at a
time, so every message is read for every detail, whatever was asked:

* several details in one message fill several slots ("teamsmøde om budget, haster ikke");
* nothing already known is asked again; a correction at any point replaces the value
  ("nej, telefon i stedet", "det haster alligevel", "forkert emne, det er arbejdstid");
* no question is asked more than twice: after the second miss the leader's words are kept in
  the description and a sensible value is used (topic "andet / ved ikke", the profile's default
  urgency, channel "AF foreslår"), so the request always reaches AF;
* the time is a wish, never a gate: a time mentioned anywhere is kept as the wish; the summary
  offers to add one; "lige meget", "når det passer jer", "ja" mean "no wish";
* the description comes from what the leader already wrote; when nothing describes the matter,
  the summary invites a few words but does not insist;
* "glem det", "annuller", "det er ikke nødvendigt alligevel" stop the request at any point;
  "ja", "ja tak", "det er fint", "send den" confirm at the summary.

``interpret(state, turn, context)`` is a pure function: it returns the slot updates, the domain
responses to say (by name, with their variables) and the next question. The rasa-sdk action
(``actions/requests_form.py``) only translates it to events.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from af_core import danish_time
from af_core.intent_shapes import shapes
from af_core.request_vocabulary import Vocabulary, token_spans, tokens
from af_core.textnorm import fold, is_stopword

TYPE_SLOT, TOPIC, URGENCY, CHANNEL = "request_type", "topic", "urgency", "meeting_channel"
TIME, TIME_TEXT, DESCRIPTION, EMAIL = "preferred_time", "preferred_time_text", "description", "contact_email"
CONFIRMED, PROGRESS, CORRELATION = "request_confirmed", "request_progress", "case_correlation_id"
DETAILS = (TYPE_SLOT, TOPIC, URGENCY, CHANNEL)
CORRECTABLE = DETAILS + (TIME, DESCRIPTION)
# Slots this capability owns; all are cleared when a request is sent or dropped.
REQUEST_SLOTS = (
    TYPE_SLOT, TOPIC, URGENCY, CHANNEL, TIME, TIME_TEXT, DESCRIPTION, CONFIRMED,
    "callback_requested", CORRELATION, PROGRESS,
)
NO_WISH = "none"  # button payload of "Intet ønske – AF foreslår et tidspunkt"
FALLBACK_TOPIC = "andet"
MAX_ASKS = 2
MAX_DESCRIPTION_CHARS = 1500
# Intents that are not answers when the message names no detail: the rules handle them and
# come back to the form (a rule question, a form question, a person, ...).
DIGRESSION_INTENTS = frozenset(
    {"ask_question", "find_form", "case_status", "human_handoff", "bot_challenge", "ask_capabilities", "restart"}
)
QUESTION_INTENTS = frozenset({"ask_question", "find_form"})
QUESTION_CONFIDENCE = 0.6
_QUESTION_START = re.compile(
    r"^\s*(hv\w+|må|maa|kan man|skal man|skal jeg|er det|gælder|gaelder|har man|har jeg ret|findes der|forresten)\b",
    re.IGNORECASE,
)
_TIME_MARKER = re.compile(
    r"\bkl\b|\bkl\.|\bklokken\b|\b\d{1,2}[:.]\d{2}\b|\b\d{1,2}/\d{1,2}\b|\bnæste uge\b|\buge \d{1,2}\b|"
    r"\b(mandag|tirsdag|onsdag|torsdag|fredag)(en|e)?\b|\b(formiddag|eftermiddag|morgen|frokost)(en)?\b|"
    r"\bi morgen\b|\bimorgen\b|\bovermorgen\b|"
    r"\b\d{1,2}\.? (januar|februar|marts|april|maj|juni|juli|august|september|oktober|november|december)\b"
)
_WISH_CUE = re.compile(
    r"\b(helst|gerne|passer|bedst|ledig|tid|tidspunkt|tidspunktet|mødes|moedes|møde|moede|mødet|ringe|ring|"
    r"kan (?:jeg|vi|du|i)|kunne)\b",
    re.IGNORECASE,
)
_DAY_REFERENCE = re.compile(
    r"\b(mandag|tirsdag|onsdag|torsdag|fredag|lørdag|søndag)\b|\bi morgen\b|\bimorgen\b|\bovermorgen\b|"
    r"\bi dag\b|\bidag\b|\bnæste uge\b|\buge \d|\d{1,2}\s*[/.-]\s*\d{1,2}|\d{4}-\d{2}-\d{2}|"
    r"\b\d{1,2}\.? (januar|februar|marts|april|maj|juni|juli|august|september|oktober|november|december)\b"
)


@dataclass
class Turn:
    """One leader message, as the form sees it."""

    text: str  # the leader's own words; "" for a button
    intent: Optional[str] = None
    confidence: float = 1.0
    entities: Dict[str, Any] = field(default_factory=dict)  # from a button or NLU
    activation: bool = False  # the message that started the request
    context_topic: Optional[str] = None  # area of the rule answer or form shown just before
    context_title: Optional[str] = None


@dataclass
class Context:
    vocabulary: Vocabulary
    topics: Sequence[str]
    urgencies: Sequence[str]
    default_urgency: str
    now: datetime
    opening_hours: Mapping[str, Sequence[str]]
    timezone: str
    closed: Callable[[date], Optional[str]] = lambda day: None
    infer_topic: Callable[[str], Optional[str]] = lambda text: None
    identity_known: bool = True
    channels: Sequence[str] = ("fysisk", "telefon", "teams")
    max_days: int = 60
    meeting_minutes: int = 30


@dataclass
class Say:
    response: str
    values: Dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    updates: Dict[str, Any] = field(default_factory=dict)
    say: List[Say] = field(default_factory=list)
    ask: Optional[str] = None  # the next question; None when the leader confirmed
    reject: bool = False  # not an answer: let the rules handle it and come back
    cancel: bool = False  # the leader dropped the request


# ---------------------------------------------------------------------------
# Reading a message
# ---------------------------------------------------------------------------
# Words with which a leader says the topic itself is wrong ("forkert emne", "det handler om ...").
_RENAMES_TOPIC_RE = re.compile(r"\bemne[t]?\b|\bhandler\b|\bdrejer sig om\b|\bgælder\b|\bgaelder\b", re.IGNORECASE)


def has_time_marker(text: str) -> bool:
    return bool(_TIME_MARKER.search(danish_time.normalise(text)))


def content_words(text: str, vocabulary: Vocabulary) -> List[str]:
    """The words of ``text`` that are neither filler nor a request detail."""
    details = vocabulary.detail_positions(text)
    found = []
    for position, word in enumerate(tokens(text)):
        folded = fold(word)
        if position in details or is_stopword(folded) or len(word) < 3 or word.isdigit():
            continue
        found.append(word)
    return found


def looks_like_question(text: str) -> bool:
    return "?" in text or bool(_QUESTION_START.match(text or ""))


def _time_phrase(text: str) -> str:
    """The part of a message that holds the time wish ("helst formiddag"), in the leader's words."""
    text = re.sub(r"\s+", " ", text).strip()
    if len(text.split()) <= 12:
        return text.rstrip(".!")
    for clause in re.split(r"(?<=[.!?;,])\s+", text):
        if has_time_marker(clause):
            return clause.strip().rstrip(".!,;")
    return text[:120]


@dataclass
class Reading:
    values: Dict[str, Any] = field(default_factory=dict)  # detail slot -> value
    time: Optional[Tuple[Optional[str], str]] = None  # (ISO or None, text shown) -- a wish
    no_time_wish: bool = False
    time_problem: Optional[danish_time.TimeCheck] = None
    correction_field: Optional[str] = None
    cue: bool = False  # "nej", "hellere", "i stedet", ...
    inferred_topic: bool = False  # the topic came from the catalogue, not from the leader's words
    topic_guessed: bool = False  # ... or from the answer given just before
    topic_by_the_way: bool = False  # a topic word in a turn that corrects something else
    type_from_channel: bool = False  # a help order became a meeting: the leader named a channel
    topic_stated: bool = False  # a short message that names the topic ("det er arbejdstid")


def read(state: Mapping[str, Any], turn: Turn, ctx: Context) -> Reading:
    """Every request detail in the message, whatever was asked."""
    vocabulary = ctx.vocabulary
    requested = state.get("requested_slot")
    text = turn.text or ""
    reading = Reading(cue=bool(text) and vocabulary.says("correction", text))
    entities = turn.entities or {}
    # Buttons first: their values are exact.
    if entities.get(TOPIC) in ctx.topics:
        reading.values[TOPIC] = entities[TOPIC]
    if entities.get(URGENCY) in ctx.urgencies:
        reading.values[URGENCY] = entities[URGENCY]
    channel_entity = str(entities.get(CHANNEL) or "").lower()
    if channel_entity in ctx.channels:
        reading.values[CHANNEL] = channel_entity
    if entities.get("correction_field") in CORRECTABLE:
        reading.correction_field = entities["correction_field"]
    button_time = entities.get(TIME)
    if button_time == NO_WISH:
        reading.no_time_wish = True
    elif button_time:
        check = _check_time(str(button_time), ctx)
        if check.ok:
            reading.time = (check.value.iso(), check.message)
        else:
            reading.time_problem = check
    if not text.strip():
        intent_type = {"request_help": "help", "book_meeting": "meeting"}.get(turn.intent or "")
        if intent_type and (turn.activation or requested == TYPE_SLOT):
            reading.values[TYPE_SLOT] = intent_type
        return reading

    # The leader's words.
    topic = vocabulary.topic(text)
    context_topic = turn.context_topic if turn.activation and turn.context_topic in ctx.topics else None
    if context_topic and (topic is None or vocabulary.topic_only_in_compounds(text)):
        # "kan i ringe mig op om det" right after the answer on omsorgsdage; a word inside a
        # compound ("personalemøde") does not outweigh the answer just given
        topic = context_topic
        reading.topic_guessed = True
    if topic is None and (turn.activation or requested == TOPIC) and len(content_words(text, vocabulary)) >= 2:
        topic = ctx.infer_topic(text)  # the catalogue's forms and rule topics know many more words
        reading.inferred_topic = reading.topic_guessed = topic is not None
    if topic:
        reading.values.setdefault(TOPIC, topic)
    urgency = vocabulary.urgency_level(text, asked=requested == URGENCY)
    if urgency:
        reading.values.setdefault(URGENCY, urgency)
    channel = vocabulary.channel(text)
    if channel in ctx.channels:
        reading.values.setdefault(CHANNEL, channel)
    if (topic and not reading.topic_guessed and TOPIC not in entities and len(content_words(text, vocabulary)) <= 1
            and not vocabulary.is_only("no_preference", text) and not looks_like_question(text)):
        # "det er arbejdstid", "oekonomi, og gerne snart": a short message that names the topic
        # says what the request is about, whatever was asked -- it replaces a guess or a word
        # read in passing in the first message.
        reading.topic_stated = True
    if TOPIC in reading.values and TOPIC not in entities and requested != TOPIC:
        # "jo, det haster alligevel. lønnen bliver kørt i morgen": the leader corrects the
        # urgency and says why; "lønnen" is no new topic. A topic changes in such a turn only
        # when the leader says so ("forkert emne", "det handler om ...", "ikke løn, ...").
        others = any(state.get(slot) and reading.values.get(slot) not in (None, state.get(slot))
                     for slot in (URGENCY, CHANNEL))
        reading.topic_by_the_way = (others and not _RENAMES_TOPIC_RE.search(text)
                                    and not vocabulary.negates_a_topic(text))

    named_type = vocabulary.request_type(text)
    intent_type = {"request_help": "help", "book_meeting": "meeting"}.get(turn.intent or "")
    if turn.activation or requested == TYPE_SLOT or state.get(TYPE_SLOT) is None:
        # "kan en konsulent ringe mig op" is a meeting by phone, whatever NLU called it -- but
        # "møde" alone is not: "en oversigt til vores MED-møde" is an order for help
        call = named_type == "meeting" and vocabulary.asks_for_a_call(text)
        value = "meeting" if call else (intent_type or named_type)
        if value is None and CHANNEL in reading.values:
            value = "meeting"
        if value:
            reading.values[TYPE_SLOT] = value
    elif named_type and named_type != state.get(TYPE_SLOT) and reading.cue:
        reading.values[TYPE_SLOT] = named_type  # "jeg vil hellere have et møde"
    elif state.get(TYPE_SLOT) == "help" and CHANNEL in reading.values and CHANNEL not in entities:
        # "teams call er fint" in an order for help: the leader wants to meet, and says how.
        reading.values[TYPE_SLOT] = "meeting"
        reading.type_from_channel = True

    if requested == TIME:
        if vocabulary.is_only("no_time_wish", text):
            reading.no_time_wish = True
        else:
            _read_time(text, ctx, reading, explicit=True)
    elif _wishes_a_time(text, reading.values.get(TYPE_SLOT) or state.get(TYPE_SLOT)):
        _read_time(text, ctx, reading, explicit=False)
    return reading


def _wishes_a_time(text: str, request_type: Optional[str]) -> bool:
    """A time in a meeting request is a wish when it is said as one ("helst torsdag", "kan vi
    mødes i morgen kl. 10"), not when it dates the matter ("fejl i lønnen i uge 9"). Help has no time."""
    if request_type == "help" or not has_time_marker(text):
        return False
    return len(text.split()) <= 12 or bool(_WISH_CUE.search(text))


def _check_time(text: str, ctx: Context) -> danish_time.TimeCheck:
    return danish_time.check_preferred_time(
        text, ctx.now, ctx.opening_hours, ctx.timezone, max_days=ctx.max_days,
        meeting_minutes=ctx.meeting_minutes, closed=ctx.closed,
    )


def _read_time(text: str, ctx: Context, reading: Reading, explicit: bool) -> None:
    check = _check_time(text, ctx)
    day_named = bool(_DAY_REFERENCE.search(danish_time.normalise(text)))
    if check.ok and (day_named or check.value.precision in ("time", "asap")):
        reading.time = (check.value.iso(), check.message)
    elif check.problem in ("closed_day", "holiday", "outside_hours") or (
        explicit and check.problem in ("past", "too_far")
    ):
        reading.time_problem = check
    elif check.problem in ("past", "too_far"):
        return  # a date in passing that no meeting can have: it dates the matter, not the meeting
    elif explicit and check.problem == "unparsed" and not has_time_marker(text):
        return  # not a time at all: a miss
    else:
        # A wish the calendar cannot place ("helst formiddag", "efter kl. 14"): AF reads it.
        reading.time = (None, _time_phrase(text))


# ---------------------------------------------------------------------------
# The turn
# ---------------------------------------------------------------------------
def progress_of(state: Mapping[str, Any]) -> Dict[str, Any]:
    raw = state.get(PROGRESS)
    progress = dict(raw) if isinstance(raw, Mapping) else {}
    progress["asks"] = dict(progress.get("asks") or {})
    progress["defaulted"] = list(progress.get("defaulted") or [])
    return progress


def required_order(state: Mapping[str, Any], ctx: Context) -> List[str]:
    order = [TYPE_SLOT, TOPIC, URGENCY]
    if state.get(TYPE_SLOT) == "meeting":
        order.append(CHANNEL)
    if not ctx.identity_known:
        order.append(EMAIL)
    order.append(CONFIRMED)
    return order


def interpret(state: Mapping[str, Any], turn: Turn, ctx: Context) -> Outcome:
    """What the form does with one message (see the module docstring)."""
    vocabulary = ctx.vocabulary
    requested = state.get("requested_slot")
    progress = progress_of(state)
    values = {slot: state.get(slot) for slot in REQUEST_SLOTS + (EMAIL,)}
    text = (turn.text or "").strip()
    out = Outcome()
    reading = read(state, turn, ctx)
    at_summary = requested == CONFIRMED
    changed = _apply(values, reading, requested, progress, at_summary)
    restated = at_summary and not changed and any(values.get(k) == v for k, v in reading.values.items())
    if requested == EMAIL and text:
        email = find_email(text)
        if email:
            values[EMAIL] = email
            changed.append(EMAIL)

    named = [slot for slot in changed if not (slot == TOPIC and reading.inferred_topic)]
    if text and requested is not None and not named and vocabulary.says("cancel", text) and turn.intent != "cancel":
        out.cancel = True  # said in words NLU did not read as cancel ("nej lad være")
        return out
    if not changed and not reading.correction_field and requested is not None:
        if turn.intent == "cancel":
            out.reject = True  # the rule "Glem det midt i bestillingen" ends the form
            return out
        if _is_digression(text, turn, requested):
            out.reject = True
            return out

    said_something = bool(changed or reading.correction_field)
    forced: Optional[str] = None
    if reading.correction_field:
        forced = _reopen(reading.correction_field, values, progress)

    # The description: what the leader already wrote.
    content = content_words(text, vocabulary) if text else []
    if requested == DESCRIPTION and text and not reading.correction_field:
        values[DESCRIPTION] = _clip(text)
        said_something = True
    elif text and turn.activation and (len(content) >= 3 or turn.context_title):
        values[DESCRIPTION] = _clip(text)
    if turn.activation and turn.context_title:
        progress["context_title"] = turn.context_title  # AF sees which answer the request follows
    elif text and not turn.activation and len(content) >= 4:
        _append_description(values, text)  # a long message mid-way explains the matter

    # The summary: confirm, correct, add words.
    if at_summary and not reading.correction_field:
        if changed:
            out.say.append(Say("utter_request_corrected"))
        elif _confirms(text, turn, vocabulary):
            rest = _after_confirmation(text, vocabulary)
            if rest and len(content_words(rest, vocabulary)) >= 2:
                _append_description(values, rest)
            values[CONFIRMED] = True
            values[CORRELATION] = values.get(CORRELATION) or uuid.uuid4().hex
            progress.pop("correcting", None)
            out.updates = _updates(state, values, progress)
            return out
        elif turn.intent == "deny" or (text and vocabulary.is_only("deny", text)):
            progress["correcting"] = True  # the summary question becomes "Hvad skal jeg rette?"
        elif text and len(content) >= 2:
            _append_description(values, text)
            out.say.append(Say("utter_request_description_added"))
        elif not restated:
            out.say.append(Say("utter_request_not_understood"))

    if requested == TIME and not reading.correction_field:
        forced = _time_answer(text, reading, values, progress, out) or forced
    elif reading.time_problem is not None:
        # A day AF cannot meet, mentioned in passing: say so, keep the leader's words as the wish.
        out.say.append(Say(f"utter_time_{reading.time_problem.problem}", dict(reading.time_problem.facts)))
        values[TIME], values[TIME_TEXT] = None, _time_phrase(text)

    # "ved ikke", "det må I vurdere", "ja" to how urgent or how to meet: AF's default, at once.
    if requested in (URGENCY, CHANNEL) and not said_something and text and (
        vocabulary.is_only("no_preference", text) or vocabulary.is_only("confirm", text)
    ):
        progress["asks"][requested] = MAX_ASKS  # _next_question applies the default and says so
        said_something = True

    # Nothing answered: keep the leader's own words, and ask again (at most twice in all).
    if requested not in (None, CONFIRMED, DESCRIPTION, TIME) and not said_something:
        if content:
            _append_description(values, text)
        out.say.append(Say("utter_request_not_understood"))

    out.ask = forced or _next_question(values, progress, ctx, out)
    out.updates = _updates(state, values, progress)
    return out


def _is_digression(text: str, turn: Turn, requested: str) -> bool:
    """A message that names no detail and is meant for someone else: a rule question, a form,
    a person, "er du en robot?". The rules answer it, and the form asks its question again."""
    if turn.intent == "case_status" and text and "case_status" not in shapes(text):
        return False  # "I må bare foreslå noget" is no question about a case, whatever NLU says
    if turn.intent in QUESTION_INTENTS:
        return turn.confidence >= QUESTION_CONFIDENCE and (looks_like_question(text) or requested != CONFIRMED)
    return turn.intent in DIGRESSION_INTENTS


def _reopen(field_name: str, values: Dict[str, Any], progress: Dict[str, Any]) -> str:
    """A "Ret noget" button: ask that detail again."""
    progress["asks"][field_name] = 0
    progress.pop("correcting", None)
    if field_name in progress["defaulted"]:
        progress["defaulted"].remove(field_name)
    progress.pop("time_misses", None)
    values[CONFIRMED] = None
    if field_name == TYPE_SLOT:
        values.update({TYPE_SLOT: None, CHANNEL: None, TIME: None, TIME_TEXT: None})
    elif field_name in DETAILS:
        values[field_name] = None
    return field_name


def _time_answer(text: str, reading: Reading, values: Dict[str, Any], progress: Dict[str, Any],
                 out: Outcome) -> Optional[str]:
    """The answer to "Har du et ønske til tidspunktet?"; the question again, or None to go on."""
    if reading.no_time_wish:
        values[TIME], values[TIME_TEXT] = None, None
        return None
    if reading.time is not None:
        return None
    if reading.time_problem is None and not text:
        return TIME
    progress["time_misses"] = progress.get("time_misses", 0) + 1
    if progress["time_misses"] >= MAX_ASKS:
        values[TIME], values[TIME_TEXT] = None, _time_phrase(text) if text else None
        return None
    if reading.time_problem is not None:
        out.say.append(Say(f"utter_time_{reading.time_problem.problem}", dict(reading.time_problem.facts)))
    else:
        out.say.append(Say("utter_time_unparsed"))
    return TIME


def _apply(values: Dict[str, Any], reading: Reading, requested: Optional[str],
           progress: Dict[str, Any], at_summary: bool) -> List[str]:
    """Put what was read into the slots; a known value changes only when the leader means it."""
    changed: List[str] = []
    for slot, value in reading.values.items():
        current = values.get(slot)
        if current == value:
            if slot == requested or (slot == TOPIC and reading.topic_stated and not at_summary):
                changed.append(slot)  # the same answer again still answers the question
            continue
        replace = (
            current is None
            or requested == slot
            or at_summary
            or reading.cue
            or slot in progress["defaulted"]
            or slot in progress.get("guessed", ())
            or slot == CHANNEL
            or (slot == TYPE_SLOT and reading.type_from_channel)
            or (slot == TOPIC and reading.topic_stated and not reading.topic_by_the_way)
            or progress.get("correcting")
        )
        if slot == TOPIC and current is not None and reading.topic_by_the_way:
            replace = slot in progress["defaulted"] or slot in progress.get("guessed", ())
        if not replace:
            continue
        values[slot] = value
        changed.append(slot)
        if slot in progress["defaulted"]:
            progress["defaulted"].remove(slot)
        guessed = set(progress.get("guessed", ()))
        guessed.discard(slot)
        if slot == TOPIC and reading.topic_guessed:
            guessed.add(TOPIC)  # from the catalogue or the answer before: the leader's own word wins later
        progress["guessed"] = sorted(guessed)
        if slot == TYPE_SLOT and value == "help":
            values[CHANNEL], values[TIME], values[TIME_TEXT] = None, None, None
    if reading.no_time_wish and requested != TIME and (values.get(TIME) or values.get(TIME_TEXT)):
        values[TIME], values[TIME_TEXT] = None, None
        changed.append(TIME)
    if reading.time is not None:
        iso, shown = reading.time
        if (iso, shown) != (values.get(TIME), values.get(TIME_TEXT)):
            values[TIME], values[TIME_TEXT] = iso, shown
            changed.append(TIME)
    if changed:
        progress.pop("correcting", None)
    return changed


def _next_question(values: Dict[str, Any], progress: Dict[str, Any], ctx: Context, out: Outcome) -> Optional[str]:
    for slot in required_order(values, ctx):
        if slot == CONFIRMED:
            return CONFIRMED
        if values.get(slot) is not None or slot in progress["defaulted"]:
            continue
        asks = progress["asks"].get(slot, 0)
        if asks >= MAX_ASKS:
            _default(slot, values, progress, ctx, out)
            if slot == EMAIL:
                out.cancel = True
                return None
            continue
        progress["asks"][slot] = asks + 1
        return slot
    return CONFIRMED


def _default(slot: str, values: Dict[str, Any], progress: Dict[str, Any], ctx: Context, out: Outcome) -> None:
    """Asked twice without an answer: go on with a value AF can work with."""
    progress["defaulted"].append(slot)
    if slot == TYPE_SLOT:
        values[TYPE_SLOT] = "help"
        out.say.append(Say("utter_request_type_defaulted"))
    elif slot == TOPIC:
        guess = ctx.infer_topic(values.get(DESCRIPTION) or "")
        values[TOPIC] = guess if guess in ctx.topics else (FALLBACK_TOPIC if FALLBACK_TOPIC in ctx.topics else None)
        if values[TOPIC] is None:
            values[TOPIC] = list(ctx.topics)[0]
        out.say.append(Say("utter_request_topic_defaulted", {"topic_key": values[TOPIC]}))
    elif slot == URGENCY:
        values[URGENCY] = ctx.default_urgency
        out.say.append(Say("utter_request_urgency_defaulted", {"urgency_key": ctx.default_urgency}))
    elif slot == CHANNEL:
        values[CHANNEL] = None
        out.say.append(Say("utter_request_channel_defaulted"))
    elif slot == EMAIL:
        out.say.append(Say("utter_request_needs_email"))


def _confirms(text: str, turn: Turn, vocabulary: Vocabulary) -> bool:
    """ "ja", "ja tak", "det er fint", "send den" -- or a confirmation followed by more words,
    unless those words correct something ("ja, men ret emnet")."""
    if not text:
        return turn.intent == "affirm"
    if vocabulary.is_only("confirm", text):
        return True
    rest = _after_confirmation(text, vocabulary)
    if rest is None:
        return False
    return not (vocabulary.says("deny", rest) or vocabulary.says("correction", rest))


def _after_confirmation(text: str, vocabulary: Vocabulary) -> Optional[str]:
    """The words after a confirmation that opens the message ("ja send den, og ..."), else None."""
    matches = vocabulary.phrases["confirm"].find(text)
    if not matches or matches[0].start != 0:
        return None
    end = 0
    for match in matches:  # "ja tak, send den": consecutive confirmations
        if match.start <= end + 1:
            end = max(end, match.end)
    spans = token_spans(text)
    return text[spans[end - 1][1]:].strip(" ,.;:-–!") if end else text


def _append_description(values: Dict[str, Any], text: str) -> None:
    text = re.sub(r"\s+", " ", text).strip()
    current = values.get(DESCRIPTION) or ""
    if not text or text in current:
        return
    values[DESCRIPTION] = _clip(f"{current} {text}".strip() if current else text)


def _clip(text: str) -> str:
    text = re.sub(r"\s+", " ", str(text)).strip()
    if len(text) > MAX_DESCRIPTION_CHARS:
        text = text[: MAX_DESCRIPTION_CHARS - 1].rstrip() + "…"
    return text


def _updates(state: Mapping[str, Any], values: Dict[str, Any], progress: Dict[str, Any]) -> Dict[str, Any]:
    """The slots that change. The progress always does (it counts the turns): Rasa's form rejects a
    message for which the validation sets no slot, and an answer that changes nothing ("snart"
    once more at the summary) is still an answer."""
    updates = {slot: value for slot, value in values.items() if slot != PROGRESS and state.get(slot) != value}
    progress["turns"] = progress_of(state).get("turns", 0) + 1
    updates[PROGRESS] = progress
    return updates


EMAIL_RE = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._+-]{0,62}[A-Za-z0-9_+-])?"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def find_email(text: str) -> Optional[str]:
    """The e-mail address in ``text``; a token with odd characters is not one."""
    for token in (text or "").split():
        if "@" not in token:
            continue
        candidate = token.strip(".,;:!?()<>\"'«»").lower()
        if len(candidate) <= 254 and EMAIL_RE.match(candidate):
            return candidate
        return None
    return None
