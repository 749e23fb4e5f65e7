"""Danish preferred meeting times: parse, sanity-check and render.

Leaders write times the way they talk: "i morgen kl. 10", "torsdag
eftermiddag", "næste uge", "1/12 kl 13", "halv to på fredag", often without
æøå ("naeste uge", "loerdag") and with typos ("tordag"). ``dateparser`` 1.2.0
has weak Danish (it ignores "kl. 10", moves "torsdag kl 14" to the wrong day,
puts "1/12 kl 13" in the year 2113), so this module normalises the text first:

1. fold ae/oe/aa spellings and small typos of the words we rely on back to
   Danish (weekdays, months, parts of the day, "næste", "uge", ...);
2. pull out the clock time ourselves ("kl. 10", "10.30", "halv to",
   "kvart over 9", "klokken ti", parts of the day such as "formiddag");
3. resolve the relative expressions dateparser gets wrong ("i overmorgen",
   weekdays, "næste torsdag", "næste uge", "uge 50", "om to dage"), and hand
   explicit dates ("1/12", "3. december", "3 dec 2026") to dateparser with
   ``languages=["da"]``, future preference and day-month order;
4. combine, then check the result against "now", a horizon and the
   profile's opening hours.

``now`` is always injected, so tests are deterministic.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple
from zoneinfo import ZoneInfo

import dateparser

WEEKDAYS = ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag")
WEEKDAY_KEYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = (
    "januar", "februar", "marts", "april", "maj", "juni",
    "juli", "august", "september", "oktober", "november", "december",
)

# Parts of the day -> the clock time we propose for them.
PARTS_OF_DAY: Dict[str, time] = {
    "morgen": time(8, 0),
    "tidlig": time(8, 0),
    "formiddag": time(10, 0),
    "middag": time(12, 0),
    "frokost": time(12, 0),
    "eftermiddag": time(13, 0),
    "aften": time(18, 0),
    "nat": time(23, 0),
}
PART_LABELS = {
    "morgen": "om morgenen",
    "tidlig": "tidligt",
    "formiddag": "om formiddagen",
    "middag": "ved middagstid",
    "frokost": "ved frokosttid",
    "eftermiddag": "om eftermiddagen",
    "aften": "om aftenen",
    "nat": "om natten",
}

NUMBER_WORDS = {
    "en": 1, "et": 1, "én": 1, "to": 2, "tre": 3, "fire": 4, "fem": 5, "seks": 6,
    "syv": 7, "otte": 8, "ni": 9, "ti": 10, "elleve": 11, "tolv": 12,
    "tretten": 13, "fjorten": 14, "femten": 15, "seksten": 16, "sytten": 17,
    "atten": 18, "nitten": 19, "tyve": 20, "par": 2,
}
_NUM = r"(\d{1,2}|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")"

# Words we rely on; the normaliser folds ascii spellings and typos onto them.
VOCABULARY = (
    *WEEKDAYS, *MONTHS, *PARTS_OF_DAY.keys(),
    "morgen", "overmorgen", "næste", "kommende", "uge", "uger", "ugen", "dag", "dage",
    "dagen", "klokken", "hurtigst", "muligt", "snarest", "formiddagen", "eftermiddagen",
    "morgenen", "aftenen", "middagstid", "frokosttid", "fleksibel", "ligegyldigt",
    "på", "når", "måned",
)
_FUZZY_TARGETS = tuple(w for w in VOCABULARY if len(w) >= 5)
_ASCII_FOLDS = (("ae", "æ"), ("oe", "ø"), ("aa", "å"), ("o", "ø"), ("a", "å"))
_DEFINITE = {
    "formiddagen": "formiddag", "eftermiddagen": "eftermiddag", "morgenen": "morgen",
    "aftenen": "aften", "middagstid": "middag", "frokosttid": "frokost", "tidligt": "tidlig",
    "mandagen": "mandag", "tirsdagen": "tirsdag", "onsdagen": "onsdag", "torsdagen": "torsdag",
    "fredagen": "fredag",
}
_MONTH_ABBREVIATIONS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8,
    "sep": 9, "sept": 9, "okt": 10, "nov": 11, "dec": 12,
}

ASAP_PATTERN = re.compile(
    r"\b(hurtigst muligt|hurtigst|snarest(?: muligt)?|asap|hurtigt som muligt|"
    r"når som helst|lige ?meget|ligegyldigt|fleksibel|første ledige(?: tid)?)\b"
)


@dataclass(frozen=True)
class ParsedTime:
    """A preferred time as the leader meant it.

    ``precision`` tells how much they said: ``time`` (a clock time),
    ``part`` (a part of the day; ``start`` holds the proposed clock time),
    ``day`` (a day, no time), ``week`` (a week; ``start`` is its Monday) or
    ``asap`` (as soon as possible; ``start`` is the first opening slot).
    """

    start: datetime
    precision: str
    part: Optional[str] = None

    def iso(self) -> str:
        """ISO 8601: a date for day/week precision, else a local date-time with offset."""
        if self.precision in {"day", "week"}:
            return self.start.date().isoformat()
        return self.start.replace(second=0, microsecond=0).isoformat()

    def render(self, now: Optional[datetime] = None) -> str:
        return render_parsed(self, now)


@dataclass(frozen=True)
class TimeCheck:
    """The outcome of checking a leader's preferred time."""

    value: Optional[ParsedTime]
    problem: Optional[str]  # None, unparsed, past, too_far, closed_day, holiday, outside_hours
    message: str  # Danish: the repeat-back when ok, else what is wrong
    # The facts behind the message, for a domain response (utter_time_<problem>):
    # shown, weekday, closing, opens, closes, hours, limit_day, max_days.
    facts: Dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.problem is None and self.value is not None


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------
def clock(value: time) -> str:
    """'kl. 14.00' style clock time."""
    return f"kl. {value.hour}.{value.minute:02d}"


def render_day(day: date, now: Optional[datetime] = None) -> str:
    """'torsdag den 3. december' (with the year when it is not this year)."""
    text = f"{WEEKDAYS[day.weekday()]} den {day.day}. {MONTHS[day.month - 1]}"
    if now is not None and day.year != now.year:
        text += f" {day.year}"
    return text


def render_datetime(moment: datetime, now: Optional[datetime] = None) -> str:
    """'torsdag den 3. december kl. 14.00'."""
    return f"{render_day(moment.date(), now)} {clock(moment.time())}"


def render_parsed(parsed: ParsedTime, now: Optional[datetime] = None) -> str:
    day = parsed.start.date()
    if parsed.precision == "week":
        return f"ugen fra {render_day(day, now)}"
    if parsed.precision == "day":
        return f"{render_day(day, now)} (intet bestemt klokkeslæt)"
    if parsed.precision == "part":
        label = PART_LABELS.get(parsed.part or "", "")
        return f"{render_day(day, now)} {label} (fra {clock(parsed.start.time())})".replace("  ", " ")
    if parsed.precision == "asap":
        return f"hurtigst muligt (første mulighed: {render_datetime(parsed.start, now)})"
    return render_datetime(parsed.start, now)


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _short_clock(value: time) -> str:
    return f"{value.hour}.{value.minute:02d}"


def opening_hours_text(opening_hours: Mapping[str, Sequence[str]]) -> str:
    """'mandag-torsdag kl. 8.00-15.00 og fredag kl. 8.00-14.00'."""
    groups: List[Tuple[int, int, str]] = []
    for index, key in enumerate(WEEKDAY_KEYS):
        hours = opening_hours.get(key)
        if not hours:
            continue
        span = f"kl. {_short_clock(_hhmm(hours[0]))}-{_short_clock(_hhmm(hours[1]))}"
        if groups and groups[-1][1] == index - 1 and groups[-1][2] == span:
            groups[-1] = (groups[-1][0], index, span)
        else:
            groups.append((index, index, span))
    parts = []
    for first, last, span in groups:
        days = WEEKDAYS[first] if first == last else f"{WEEKDAYS[first]}-{WEEKDAYS[last]}"
        parts.append(f"{days} {span}")
    if not parts:
        return "efter aftale"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " og " + parts[-1]


# ---------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------
def _fold_word(word: str) -> str:
    if word in _DEFINITE:
        return _DEFINITE[word]
    if word in VOCABULARY or not word.isalpha():
        return word
    for ascii_form, danish in _ASCII_FOLDS[:3]:
        candidate = word.replace(ascii_form, danish)
        if candidate in VOCABULARY:
            return candidate
        if candidate in _DEFINITE:
            return _DEFINITE[candidate]
    if len(word) >= 5:
        match = difflib.get_close_matches(word, _FUZZY_TARGETS, n=1, cutoff=0.8)
        if match:
            return match[0]
    return word


def normalise(text: str) -> str:
    """Lower-case, fold ascii spellings and typos, tidy punctuation."""
    lowered = (text or "").lower().replace("\u00a0", " ")
    lowered = re.sub(r"[!?,;()\"'»«]+", " ", lowered)
    lowered = re.sub(r"\bkl(?=\d)", "kl ", lowered)
    lowered = re.sub(r"\bi(morgen|dag|gaar|går|gar|overmorgen|forgårs|forgaars)\b", r"i \1", lowered)
    words = [_fold_word(w) for w in re.split(r"\s+", lowered) if w]
    result = " ".join(words)
    # 'på' spelt 'paa'/'pa' is too short for the fuzzy matcher
    result = re.sub(r"\b(paa|pa)\b", "på", result)
    result = re.sub(r"\b(naeste|nste|neste)\b", "næste", result)
    result = re.sub(r"\bmaaned\b", "måned", result)
    result = re.sub(r"\b(i ?)(gaar|gar)\b", r"\1går", result)
    result = re.sub(r"\b(i ?)(forgaars|forgars)\b", r"\1forgårs", result)
    result = re.sub(r"\bi ?over ?morgen\b", "overmorgen", result)
    return result.strip()


def _number(token: str) -> Optional[int]:
    if token.isdigit():
        return int(token)
    return NUMBER_WORDS.get(token)


# ---------------------------------------------------------------------------
# Clock time
# ---------------------------------------------------------------------------
_KL = r"(?:kl\.?|klokken)"
_TIME_PATTERNS: Tuple[Tuple[str, re.Pattern], ...] = (
    ("tiden", re.compile(rf"\b(?:ved\s+|omkring\s+|ca\.?\s+)?{_NUM}\s*-?\s*tiden\b")),
    ("halv", re.compile(rf"(?:{_KL}\s*)?\bhalv\s+{_NUM}\b")),
    ("kvart_over", re.compile(rf"(?:{_KL}\s*)?\bkvart\s+over\s+{_NUM}\b")),
    ("kvart_i", re.compile(rf"(?:{_KL}\s*)?\bkvart\s+i\s+{_NUM}\b")),
    ("kl", re.compile(
        rf"\b{_KL}\s*{_NUM}(?:[.:](\d{{2}}))?\b(?:\s*(?:-|til|og)\s*\d{{1,2}}(?:[.:]\d{{2}})?\b)?"
    )),
    ("colon", re.compile(r"\b(\d{1,2}):(\d{2})\b(?:\s*(?:-|til)\s*\d{1,2}(?:[.:]\d{2})?\b)?")),
    ("dot", re.compile(r"(?<![\d/.])(\d{1,2})\.(\d{2})\b(?![.\d/])(?:\s*(?:-|til)\s*\d{1,2}(?:[.:]\d{2})?\b)?")),
)


def _extract_clock(text: str) -> Tuple[Optional[Tuple[int, int]], str]:
    """Find a clock time; return ((hour, minute) or None, text without it)."""
    for kind, pattern in _TIME_PATTERNS:
        for match in pattern.finditer(text):
            hour = _number(match.group(1))
            if hour is None:
                continue
            minute = 0
            if kind == "halv":
                hour, minute = hour - 1, 30
            elif kind == "kvart_over":
                minute = 15
            elif kind == "kvart_i":
                hour, minute = hour - 1, 45
            elif kind in {"kl", "colon"}:
                minute = int(match.group(2)) if match.group(2) else 0
            elif kind == "dot":
                minute = int(match.group(2))
                # "1.12" is a date (1 December); "9.30" and "13.00" are times
                if 1 <= minute <= 12 and 1 <= hour <= 31:
                    continue
            if hour < 0:
                hour += 12
            if not (0 <= hour <= 24 and 0 <= minute <= 59):
                continue
            return (hour % 24, minute), (text[: match.start()] + " " + text[match.end():]).strip()
    return None, text


def _extract_part(text: str) -> Tuple[Optional[str], str]:
    """A part of the day; 'i morgen' (tomorrow) is not 'morgen' (morning)."""
    # "i morgen tidlig" / "i morgen formiddag": protect "i morgen" first.
    protected = re.sub(r"\bi morgen\b", "i_morgen", text)
    for part in ("eftermiddag", "formiddag", "middag", "frokost", "morgen", "tidlig", "aften", "nat"):
        match = re.search(rf"\b(?:om |i |sidst på |først på |på )?{part}\b", protected)
        if match:
            remaining = (protected[: match.start()] + " " + protected[match.end():]).replace("i_morgen", "i morgen")
            return part, remaining.strip()
    return None, text


def _apply_part(hour: int, minute: int, part: Optional[str]) -> Tuple[int, int]:
    if part in {"eftermiddag", "aften"} and hour < 12:
        return hour + 12, minute
    if part is None and 1 <= hour <= 6:
        # Offices are closed at night: "kl. 2" means 14.00.
        return hour + 12, minute
    return hour, minute


# ---------------------------------------------------------------------------
# Date
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _DatePart:
    day: date
    precision: str  # "day" or "week"
    explicit_past: bool = False  # an explicit day/month that has passed this year


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _next_weekday(today: date, weekday: int, next_week: bool) -> date:
    if next_week:
        return _monday(today) + timedelta(days=7 + weekday)
    ahead = (weekday - today.weekday()) % 7
    return today + timedelta(days=ahead or 7)


def _dateparser(text: str, now: datetime) -> Optional[datetime]:
    settings = {
        "PREFER_DATES_FROM": "future",
        "DATE_ORDER": "DMY",
        "RELATIVE_BASE": now.replace(tzinfo=None),
        "RETURN_AS_TIMEZONE_AWARE": False,
        "PREFER_DAY_OF_MONTH": "first",
    }
    try:
        return dateparser.parse(text, languages=["da"], settings=settings)
    except Exception:  # dateparser raises assorted errors on odd input
        return None


_EXPLICIT_NUMERIC = re.compile(r"\b(\d{1,2})\s*[/.-]\s*(\d{1,2})(?:\s*[/.-]\s*(\d{2,4}))?\b\.?")
_EXPLICIT_NAMED = re.compile(
    r"\b(\d{1,2})\.?\s*(" + "|".join(MONTHS) + "|" + "|".join(_MONTH_ABBREVIATIONS) + r")\b\.?(?:\s+(\d{4}))?"
)
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")


def _explicit_date(text: str, now: datetime) -> Tuple[Optional[_DatePart], str, bool]:
    """An explicit calendar date; returns (date part, remaining text, matched)."""
    iso = _ISO_DATE.search(text)
    if iso:
        try:
            day = date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
        except ValueError:
            return None, text, True
        return _DatePart(day, "day"), text.replace(iso.group(0), " "), True
    match = _EXPLICIT_NAMED.search(text) or _EXPLICIT_NUMERIC.search(text)
    if not match:
        return None, text, False
    remaining = (text[: match.start()] + " " + text[match.end():]).strip()
    day_number = int(match.group(1))
    month_token = match.group(2)
    month = int(month_token) if month_token.isdigit() else (
        MONTHS.index(month_token) + 1 if month_token in MONTHS else _MONTH_ABBREVIATIONS[month_token]
    )
    year_token = match.group(3)
    if year_token:
        year = int(year_token)
        year = year + 2000 if year < 100 else year
        phrase = f"{day_number}. {MONTHS[month - 1]} {year}" if 1 <= month <= 12 else ""
    else:
        phrase = f"{day_number}. {MONTHS[month - 1]}" if 1 <= month <= 12 else ""
    parsed = _dateparser(phrase, now) if phrase else None
    if parsed is None:
        return None, remaining, True  # "31/2": a date, but not a real one
    explicit_past = False
    if not year_token:
        try:
            this_year = date(now.year, month, day_number)
        except ValueError:
            this_year = None
        if this_year is not None and this_year >= now.date():
            parsed = datetime.combine(this_year, time())
        elif this_year is not None and (now.date() - this_year).days <= 183:
            explicit_past = True
            parsed = datetime.combine(this_year, time())
    return _DatePart(parsed.date(), "day", explicit_past), remaining, True


def _relative_date(text: str, now: datetime) -> Tuple[Optional[_DatePart], str]:
    today = now.date()
    rules: List[Tuple[re.Pattern, object]] = [
        (re.compile(r"\bi dag\b|\bidag\b"), lambda m: _DatePart(today, "day")),
        (re.compile(r"\bi ?forgårs\b"), lambda m: _DatePart(today - timedelta(days=2), "day")),
        (re.compile(r"\bi ?går\b"), lambda m: _DatePart(today - timedelta(days=1), "day")),
        (re.compile(r"\bovermorgen\b"), lambda m: _DatePart(today + timedelta(days=2), "day")),
        (re.compile(r"\bi ?morgen\b"), lambda m: _DatePart(today + timedelta(days=1), "day")),
        (re.compile(rf"\bom\s+(?:et\s+|en\s+)?{_NUM}\s+dage?\b"),
         lambda m: _DatePart(today + timedelta(days=_number(m.group(1)) or 0), "day")),
        (re.compile(r"\bom\s+(?:en|et)\s+uge\b"), lambda m: _DatePart(today + timedelta(days=7), "day")),
        (re.compile(rf"\bom\s+{_NUM}\s+uger?\b"),
         lambda m: _DatePart(today + timedelta(days=7 * (_number(m.group(1)) or 0)), "day")),
    ]
    for pattern, build in rules:
        match = pattern.search(text)
        if match:
            return build(match), (text[: match.start()] + " " + text[match.end():]).strip()  # type: ignore[operator]
    return None, text


_WEEKDAY_RE = re.compile(r"\b(?:på\s+)?(?:(næste|kommende)\s+)?(" + "|".join(WEEKDAYS) + r")\b")
_NEXT_WEEK_RE = re.compile(r"\b(?:i\s+|om\s+)?(?:næste|kommende)\s+uge\b|\bugen efter\b|\bom en uge\b")
_WEEK_NUMBER_RE = re.compile(r"\b(?:i\s+)?uge\s*(\d{1,2})\b")


def _weekday_and_week(text: str, now: datetime) -> Tuple[Optional[_DatePart], str]:
    today = now.date()
    week_start: Optional[date] = None
    week_match = _WEEK_NUMBER_RE.search(text)
    if week_match:
        number = int(week_match.group(1))
        for year in (today.year, today.year + 1):
            try:
                candidate = date.fromisocalendar(year, number, 1)
            except ValueError:
                continue
            if candidate + timedelta(days=6) >= today:
                week_start = candidate
                break
        text = (text[: week_match.start()] + " " + text[week_match.end():]).strip()
        if week_start is None:
            return None, text
    next_week = _NEXT_WEEK_RE.search(text)
    if next_week:
        text = (text[: next_week.start()] + " " + text[next_week.end():]).strip()
    day_match = _WEEKDAY_RE.search(text)
    if day_match:
        weekday = WEEKDAYS.index(day_match.group(2))
        text = (text[: day_match.start()] + " " + text[day_match.end():]).strip()
        if week_start is not None:
            return _DatePart(week_start + timedelta(days=weekday), "day"), text
        wants_next_week = bool(next_week) or bool(day_match.group(1) == "næste")
        return _DatePart(_next_weekday(today, weekday, wants_next_week), "day"), text
    if week_start is not None:
        return _DatePart(week_start, "week"), text
    if next_week:
        return _DatePart(_monday(today) + timedelta(days=7), "week"), text
    return None, text


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------
def _as_local(now: datetime, tz: ZoneInfo) -> datetime:
    return now.replace(tzinfo=tz) if now.tzinfo is None else now.astimezone(tz)


def _from_iso(text: str, tz: ZoneInfo) -> Optional[ParsedTime]:
    stripped = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", stripped):
        return ParsedTime(datetime.combine(date.fromisoformat(stripped), time(), tz), "day")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?([+-]\d{2}:\d{2}|Z)?", stripped):
        moment = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
        moment = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)
        return ParsedTime(moment, "time")
    return None


def parse_danish_time(
    text: str,
    now: datetime,
    timezone: str = "Europe/Copenhagen",
    opening_hours: Optional[Mapping[str, Sequence[str]]] = None,
) -> Tuple[Optional[ParsedTime], bool]:
    """Parse a Danish preferred time.

    Returns ``(parsed, explicit_past)``; ``parsed`` is None when nothing
    usable was found. ``explicit_past`` is true when the leader named a
    calendar date that has already passed this year ("28/11" on 30/11):
    dateparser would silently move it to next year.
    """
    tz = ZoneInfo(timezone)
    now = _as_local(now, tz)
    iso = _from_iso(text or "", tz)
    if iso is not None:
        return iso, False
    normalised = normalise(text)
    if not normalised:
        return None, False

    if ASAP_PATTERN.search(normalised):
        slot = first_opening_slot(now, opening_hours or {}, timezone)
        return (ParsedTime(slot, "asap"), False) if slot else (None, False)

    clock_value, rest = _extract_clock(normalised)
    part, rest = _extract_part(rest)

    date_part, rest, explicit = _explicit_date(rest, now)
    if explicit and date_part is None:
        return None, False
    if date_part is None:
        date_part, rest = _relative_date(rest, now)
    if date_part is None:
        date_part, rest = _weekday_and_week(rest, now)
    if date_part is None and clock_value is None and part is None:
        # Last resort: whatever dateparser makes of the tidied text.
        cleaned = re.sub(r"\b(på|den|d\.|gerne|helst|ca\.?|cirka|omkring)\b", " ", normalised)
        cleaned = re.sub(r"\s+", " ", cleaned).strip()
        if not cleaned or re.search(r"\b(kl|klokken)\b", cleaned) or not re.search(r"\d|" + "|".join(MONTHS), cleaned):
            return None, False
        found = _dateparser(cleaned, now)
        if found is None:
            return None, False
        has_clock = bool(re.search(r"\d{1,2}:\d{2}", cleaned))
        moment = found.replace(tzinfo=tz)
        return ParsedTime(moment, "time" if has_clock else "day"), False

    explicit_past = bool(date_part and date_part.explicit_past)
    if clock_value is not None:
        hour, minute = _apply_part(clock_value[0], clock_value[1], part)
        if date_part is None:
            day = now.date()
            if datetime.combine(day, time(hour % 24, minute), tz) <= now:
                day += timedelta(days=1)
        else:
            day = date_part.day if date_part.precision == "day" else date_part.day
        moment = datetime.combine(day, time(hour % 24, minute), tz)
        return ParsedTime(moment, "time"), explicit_past
    if part is not None:
        start = PARTS_OF_DAY[part]
        if date_part is None:
            day = now.date()
            if datetime.combine(day, start, tz) <= now:
                day += timedelta(days=1)
        else:
            day = date_part.day
        return ParsedTime(datetime.combine(day, start, tz), "part", part), explicit_past
    assert date_part is not None
    return ParsedTime(datetime.combine(date_part.day, time(), tz), date_part.precision), explicit_past


# ---------------------------------------------------------------------------
# Opening hours and checks
# ---------------------------------------------------------------------------
def hours_on(day: date, opening_hours: Mapping[str, Sequence[str]]) -> Optional[Tuple[time, time]]:
    hours = opening_hours.get(WEEKDAY_KEYS[day.weekday()])
    if not hours:
        return None
    return _hhmm(hours[0]), _hhmm(hours[1])


def first_opening_slot(
    now: datetime,
    opening_hours: Mapping[str, Sequence[str]],
    timezone: str = "Europe/Copenhagen",
    lead_minutes: int = 60,
    meeting_minutes: int = 30,
) -> Optional[datetime]:
    """The first whole or half hour inside opening hours, at least ``lead_minutes`` ahead."""
    slots = suggest_times(now, opening_hours, timezone, 1, lead_minutes, meeting_minutes)
    return slots[0] if slots else None


def suggest_times(
    now: datetime,
    opening_hours: Mapping[str, Sequence[str]],
    timezone: str = "Europe/Copenhagen",
    count: int = 3,
    lead_minutes: int = 60,
    meeting_minutes: int = 30,
    closed: Optional[Callable[[date], Optional[str]]] = None,
) -> List[datetime]:
    """Proposals for the buttons: one per opening day, alternating morning/afternoon.

    ``closed(day)`` names a day AF is closed (a public holiday, a closing day): it is skipped.
    """
    tz = ZoneInfo(timezone)
    now = _as_local(now, tz)
    earliest = now + timedelta(minutes=lead_minutes)
    proposals: List[datetime] = []
    day = now.date()
    preferred = (time(10, 0), time(13, 0))
    for offset in range(0, 21):
        if len(proposals) >= count:
            break
        current = day + timedelta(days=offset)
        hours = hours_on(current, opening_hours)
        if hours is None or (closed is not None and closed(current)):
            continue
        opens, closes = hours
        last_start = datetime.combine(current, closes, tz) - timedelta(minutes=meeting_minutes)
        wish = preferred[len(proposals) % 2]
        candidates = [datetime.combine(current, wish, tz)]
        # otherwise the next half hour after 'earliest' (today)
        start = max(datetime.combine(current, opens, tz), earliest)
        if start.minute not in (0, 30) or start.second or start.microsecond:
            start = start.replace(second=0, microsecond=0)
            start += timedelta(minutes=(30 - start.minute % 30) % 30 or 30) if start.minute % 30 else timedelta()
        candidates.append(start)
        for candidate in candidates:
            if earliest <= candidate <= last_start and datetime.combine(current, opens, tz) <= candidate:
                proposals.append(candidate)
                break
    return proposals


def check_preferred_time(
    text: str,
    now: datetime,
    opening_hours: Mapping[str, Sequence[str]],
    timezone: str = "Europe/Copenhagen",
    max_days: int = 60,
    meeting_minutes: int = 30,
    closed: Optional[Callable[[date], Optional[str]]] = None,
) -> TimeCheck:
    """Parse ``text`` and check it is in the future, near enough, not on a day AF is closed
    (``closed(day)`` names a holiday or closing day) and inside opening hours."""
    tz = ZoneInfo(timezone)
    now = _as_local(now, tz)
    try:
        parsed, explicit_past = parse_danish_time(text, now, timezone, opening_hours)
    except Exception:  # never let odd input crash the form
        parsed, explicit_past = None, False
    hours_text = opening_hours_text(opening_hours)
    if parsed is None:
        return TimeCheck(
            None,
            "unparsed",
            'Det tidspunkt forstod jeg ikke helt. Skriv fx "torsdag kl. 10", '
            '"i morgen eftermiddag", "næste uge" eller "3/12 kl. 13".',
            {"hours": hours_text},
        )
    day = parsed.start.date()
    shown = parsed.render(now)
    limit = now + timedelta(days=max_days)
    facts = {
        "shown": shown, "weekday": WEEKDAYS[day.weekday()], "hours": hours_text,
        "limit_day": render_day(limit.date(), now), "max_days": str(max_days),
    }

    if explicit_past or _is_past(parsed, now, opening_hours, meeting_minutes):
        return TimeCheck(parsed, "past", f"{_capitalise(shown)} er allerede gået. Vælg et tidspunkt frem i tiden.", facts)
    if parsed.start > limit:
        return TimeCheck(
            parsed,
            "too_far",
            f"Det er for langt ude i fremtiden. Vælg et tidspunkt inden for {max_days} dage, "
            f"senest {render_day(limit.date(), now)}.",
            facts,
        )
    if parsed.precision == "week":
        return TimeCheck(parsed, None, shown, facts)
    closing = closed(day) if closed is not None else None
    if closing:
        facts["closing"] = closing
        facts["shown"] = render_day(day, now)
        return TimeCheck(parsed, "holiday", f"AF har lukket {render_day(day, now)} ({closing}). Vælg en anden dag.", facts)
    hours = hours_on(day, opening_hours)
    if hours is None:
        return TimeCheck(
            parsed,
            "closed_day",
            f"AF har lukket om {WEEKDAYS[day.weekday()]}en. AF har åbent {hours_text}. "
            "Vælg en anden dag.",
            facts,
        )
    if parsed.precision in {"time", "part", "asap"}:
        opens, closes = hours
        start = parsed.start
        end = start + timedelta(minutes=meeting_minutes)
        if start.time() < opens or end > datetime.combine(day, closes, tz):
            facts.update(opens=_short_clock(opens), closes=_short_clock(closes))
            return TimeCheck(
                parsed,
                "outside_hours",
                f"{_capitalise(shown)} ligger uden for AF's åbningstid. Om {WEEKDAYS[day.weekday()]}en har AF "
                f"åbent kl. {_short_clock(opens)}-{_short_clock(closes)}. Vælg et tidspunkt inden for det.",
                facts,
            )
    return TimeCheck(parsed, None, shown, facts)


def _is_past(
    parsed: ParsedTime, now: datetime, opening_hours: Mapping[str, Sequence[str]], meeting_minutes: int
) -> bool:
    if parsed.precision == "week":
        return parsed.start.date() + timedelta(days=6) < now.date()
    if parsed.precision == "day":
        if parsed.start.date() < now.date():
            return True
        if parsed.start.date() == now.date():
            hours = hours_on(now.date(), opening_hours)
            if hours is not None:
                last = datetime.combine(now.date(), hours[1], now.tzinfo) - timedelta(minutes=meeting_minutes)
                return now > last
        return False
    return parsed.start <= now


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def describe_iso(value: Optional[str], now: Optional[datetime] = None, timezone: str = "Europe/Copenhagen") -> str:
    """Render a stored ISO value (date or date-time) in plain Danish."""
    if not value:
        return ""
    parsed = _from_iso(value, ZoneInfo(timezone))
    if parsed is None:
        return value
    return parsed.render(now)
