"""Danish personal ID numbers (CPR): detection and masking.

Leaders paste employees' CPR numbers into the chat. Every input channel masks
them *before* the message reaches NLU, the tracker store, the logs, the event
broker, ServiceNow or the outbox; the log filter below is a second line of
defence for anything that is logged anyway.

A CPR number is DDMMYY-SSSS. We recognise it

* written together: ``0102031234``,
* with a dash or a space (or both) between date and serial number:
  ``010203-1234``, ``010203 1234``, ``010203 - 1234``,
* with spaces between the date groups: ``01 02 03-1234``, ``01 02 03 - 1234``,
  ``01 02 03 1234``,
* with dots, dashes, slashes or underscores between the date groups, followed
  by a dash, a space or the same separator: ``01.02.03-1234``,
  ``01-02-03 1234``, ``01_02_03_1234``;
* with a dot, slash or underscore between date and serial: ``010203.1234``;
* with a line break, or one of Unicode's other spaces, between the parts;
* glued to letters: ``medarbejder0102031234`` (not glued to other digits);
* hidden with invisible characters (zero-width space, soft hyphen, joiners)
  or written in full-width or other compatibility forms: the text is matched
  after NFKC normalisation with invisible characters removed, and the span
  masked in the original.

Decision (security review, issue 14): a date and a four-digit time written
``12.03.24 1400`` and a 10-digit case number glued to letters are masked too
when the digits form a CPR number. A masked meeting time costs a question;
a leaked CPR number cannot be taken back.

We do NOT use the modulus-11 check: numbers issued since 2007 may fail it.
Instead the date part must be a real calendar date (day valid for the month,
29 February only in a leap year, the century taken from the 7th digit as the
CPR office defines it). That keeps 10-digit numbers whose first six digits are
not a date (many EAN/P-numbers, phone numbers with country code +45) unmasked.

This module is pure (no I/O, no settings) and imports only the standard
library: the Rasa server's channels import it without pulling in rasa-sdk.
"""
from __future__ import annotations

import calendar
import logging
import re
import unicodedata
from typing import Any, Iterator, Tuple

CPR_MASK = "[CPR-nummer fjernet]"

# Digits are \d on purpose: it also matches full-width and other Unicode
# digits, which int() understands, so "０１０２０３１２３４" is caught as well.
_D = r"\d"
_DASH = "\\-\u2010\u2011\u2012\u2013\u2014\u2212"  # hyphen-minus, hyphens, en/em dash, minus
# Space, tab, no-break spaces; NFKC has already turned thin, figure and
# ideographic spaces into plain ones. One line break may sit between the parts.
_SPACE = r"(?:[ \t\u00a0\u202f]|\r?\n)"

# Not glued to a preceding digit or letter (case numbers like AFH0001001,
# SAG0102031234), except the explicit prefixes "cpr"/"cprnr" ("CPR0102031234"),
# and not the second half of a longer number ("1234-0102031234": bank account).
_START = rf"(?<!{_D}[{_DASH}./_])(?<!{_D})"
# Not followed by another digit (part of a longer number: EAN-13, account
# numbers) nor by a dash/dot + digit (e.g. "0102031234-5").
_END = rf"(?!{_D})(?![{_DASH}.,/_]{_D})"

_CPR_RE = re.compile(
    _START
    + r"(?:"
    # 1) DDMMYY together, then nothing, a space, or a dash (spaces around it)
    + rf"(?P<d1>{_D}{{2}})(?P<m1>{_D}{{2}})(?P<y1>{_D}{{2}})"
    + rf"(?:{_SPACE}{{0,3}}[{_DASH}]{_SPACE}{{0,3}}|{_SPACE}{{0,3}}|[./_])"
    + rf"(?P<s1>{_D}{{4}})"
    + r"|"
    # 2) DD MM YY with single spaces, then a space or a dash (spaces around it)
    + rf"(?P<d2>{_D}{{2}}){_SPACE}(?P<m2>{_D}{{2}}){_SPACE}(?P<y2>{_D}{{2}})"
    + rf"(?:{_SPACE}{{0,3}}[{_DASH}]{_SPACE}{{0,3}}|{_SPACE}{{1,3}})"
    + rf"(?P<s2>{_D}{{4}})"
    + r"|"
    # 3) DD.MM.YY / DD-MM-YY / DD/MM/YY / DD_MM_YY (same separator), then a dash,
    #    a space or the same separator.
    + rf"(?P<d3>{_D}{{2}})(?P<sep>[.{_DASH}/_])(?P<m3>{_D}{{2}})(?P=sep)(?P<y3>{_D}{{2}})"
    + rf"(?:{_SPACE}{{0,3}}[{_DASH}]{_SPACE}{{0,3}}|{_SPACE}{{1,3}}|(?P=sep))(?P<s3>{_D}{{4}})"
    + r")"
    + _END,
    re.IGNORECASE,
)


def _century_year(yy: int, seventh: int) -> int:
    """Full birth year from the two-digit year and the 7th digit (CPR office rules)."""
    if seventh <= 3:
        return 1900 + yy
    if seventh in (4, 9):
        return (2000 if yy <= 36 else 1900) + yy
    # 5, 6, 7, 8
    return (2000 if yy <= 57 else 1800) + yy


def is_valid_cpr_date(day: int, month: int, yy: int, seventh: int) -> bool:
    """True when DDMMYY with this 7th digit is a real calendar date."""
    if not 1 <= month <= 12 or day < 1:
        return False
    year = _century_year(yy, seventh)
    return day <= calendar.monthrange(year, month)[1]


def _groups(match: "re.Match[str]") -> Tuple[int, int, int, str]:
    for n in ("1", "2", "3"):
        day = match.group("d" + n)
        if day is not None:
            return int(day), int(match.group("m" + n)), int(match.group("y" + n)), match.group("s" + n)
    raise AssertionError("unreachable: CPR pattern without groups")  # pragma: no cover


def _is_cpr(match: "re.Match[str]") -> bool:
    day, month, yy, serial = _groups(match)
    return is_valid_cpr_date(day, month, yy, int(serial[0]))


def mask_cpr(text: str) -> Tuple[str, int]:
    """Replace every CPR number in ``text`` with CPR_MASK.

    Returns the masked text and how many numbers were masked. Non-strings are
    returned unchanged with count 0 (so callers can pass metadata values).
    """
    if not isinstance(text, str) or not text:
        return text, 0
    spans = list(_find(text))
    if not spans:
        return text, 0
    parts = []
    last = 0
    for start, end in spans:
        parts.append(text[last:start])
        parts.append(CPR_MASK)
        last = end
    parts.append(text[last:])
    return "".join(parts), len(spans)


# Characters that render as nothing: a number with one inside still reads as a number.
_INVISIBLE = frozenset("\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff")


def _normalised(text: str) -> Tuple[str, list]:
    """``text`` in NFKC form without invisible characters, and for each of its
    characters the index of the original character it came from."""
    chars = []
    origin = []
    for index, char in enumerate(text):
        if char in _INVISIBLE or unicodedata.category(char) == "Cf":
            continue
        form = unicodedata.normalize("NFKC", char) if ord(char) > 127 else char
        for piece in form:
            chars.append(piece)
            origin.append(index)
    return "".join(chars), origin


def _find(text: str) -> Iterator[Tuple[int, int]]:
    """Spans (in ``text``) of the CPR numbers, left to right, not overlapping."""
    if text.isascii():
        yield from _find_plain(text)
        return
    norm, origin = _normalised(text)
    for start, end in _find_plain(norm):
        yield origin[start], origin[end - 1] + 1


def _find_plain(text: str) -> Iterator[Tuple[int, int]]:
    """Spans of the CPR numbers in text, left to right, not overlapping.

    A candidate whose date is not valid does not hide a real number that
    starts inside it: the search resumes one character later.
    """
    pos = 0
    search = _CPR_RE.search
    while True:
        match = search(text, pos)
        if match is None:
            return
        if _is_cpr(match):
            yield match.start(), match.end()
            pos = match.end()
        else:
            pos = match.start() + 1


def contains_cpr(text: str) -> bool:
    """True when ``text`` holds at least one CPR number."""
    if not isinstance(text, str) or not text:
        return False
    return next(_find(text), None) is not None


# The first half of a CPR number at the very end of a message: "010203-" or "01.02.03 -".
_HALF_AT_END_RE = re.compile(
    rf"(?<!{_D})(?P<d>{_D}{{2}})[./_ ]?(?P<m>{_D}{{2}})[./_ ]?(?P<y>{_D}{{2}}){_SPACE}{{0,3}}[{_DASH}]{_SPACE}*$"
)
# A CPR number's last four digits at the start of a message (after a dash or space).
_SECOND_HALF_RE = re.compile(rf"[{_DASH}]?{_SPACE}*{_D}{{4}}(?!{_D})")
# How much of two messages is enough to hold one CPR number with its separators.
_SPLIT_WINDOW = 24


def mask_cpr_start(text: str) -> Tuple[str, int]:
    """Mask a CPR number's first half left at the end of a message ("Det er 010203-").

    A leader who sends a number in two messages ("010203-", then "1234") must not leave its
    halves in the conversation. A date followed by a dash that ends the message is read as the
    start of a CPR number; a date on its own ("mødet 010223") is left alone.
    """
    if not isinstance(text, str) or not text:
        return text, 0
    norm, origin = _normalised(text) if not text.isascii() else (text, list(range(len(text))))
    match = _HALF_AT_END_RE.search(norm)
    if match is None:
        return text, 0
    day, month, yy = int(match.group("d")), int(match.group("m")), int(match.group("y"))
    # Any seventh digit: the date must be valid in at least one century.
    if not any(is_valid_cpr_date(day, month, yy, seventh) for seventh in (0, 4, 5, 9)):
        return text, 0
    return text[: origin[match.start()]] + CPR_MASK, 1


def mask_cpr_continuation(previous: Any, text: str) -> Tuple[str, int]:
    """Mask the start of ``text`` when it completes a CPR number begun at the end of ``previous``.

    ``previous`` is the leader's message before this one, as stored ("010203", "010203 -").
    Only ``text`` can still be changed; its part of the number is masked.
    """
    if not isinstance(previous, str) or not previous.strip() or not isinstance(text, str) or not text:
        return text, 0
    lead = len(text) - len(text.lstrip())
    if previous.rstrip().endswith(CPR_MASK):
        # The first half was masked already ("010203-" -> mask_cpr_start): four digits now are its end.
        rest = _SECOND_HALF_RE.match(text[lead:])
        if rest:
            return CPR_MASK + text[lead + rest.end():], 1
    tail = previous.rstrip()[-_SPLIT_WINDOW:]
    head = text[lead:lead + _SPLIT_WINDOW]
    for joint in ("", "\n"):
        joined = tail + joint + head
        boundary = len(tail) + len(joint)
        for start, end in _find(joined):
            if start < len(tail) and end > boundary:
                return CPR_MASK + text[lead + end - boundary:], 1
    return text, 0


def mask_cpr_in(value: Any) -> Tuple[Any, int]:
    """Mask CPR numbers in a JSON-like value (str, dict, list, tuple), recursively.

    For channel metadata and other structured input. Dict keys are masked too.
    Returns a new value (the input is not modified) and the number masked.
    """
    if isinstance(value, str):
        return mask_cpr(value)
    if isinstance(value, dict):
        total = 0
        out = {}
        for key, item in value.items():
            new_key, n_key = mask_cpr_in(key)
            new_item, n_item = mask_cpr_in(item)
            total += n_key + n_item
            out[new_key] = new_item
        return out, total
    if isinstance(value, (list, tuple)):
        total = 0
        items = []
        for item in value:
            new_item, n = mask_cpr_in(item)
            total += n
            items.append(new_item)
        return (tuple(items) if isinstance(value, tuple) else items), total
    return value, 0


# --------------------------------------------------------------------------
# Logging: mask CPR numbers in every log record
# --------------------------------------------------------------------------


class CprLogFilter(logging.Filter):
    """Masks CPR numbers (and URL/bearer tokens) in a log record's message,
    exception text and stack.

    The record's message is formatted once (``msg % args``), masked, and
    stored back with ``args`` cleared. Never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: A003 (logging API)
        _mask_record(record)
        return True


# Secrets that end up in logged URLs, e.g. the Rasa HTTP API's "?token=...".
_URL_SECRET_RE = re.compile(
    r"(?P<key>[?&;](?:token|access_token|refresh_token|jwt|password|client_secret)=)[^&\s\"'#]+",
    re.IGNORECASE,
)
_BEARER_RE = re.compile(r"(?P<key>\bBearer\s+)[A-Za-z0-9\-_.~+/=]{8,}")
SECRET_MASK = "[skjult]"


def redact_log_text(text: str) -> str:
    """CPR numbers masked, URL tokens and bearer tokens hidden (for log lines)."""
    text = mask_cpr(text)[0]
    if "=" in text:
        text = _URL_SECRET_RE.sub(lambda m: m.group("key") + SECRET_MASK, text)
    if "earer" in text:
        text = _BEARER_RE.sub(lambda m: m.group("key") + SECRET_MASK, text)
    return text


def _mask_record(record: logging.LogRecord) -> logging.LogRecord:
    if getattr(record, "_cpr_masked", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: let logging report it as usual
        return record
    masked = redact_log_text(message)
    if masked != message or record.args:
        record.msg = masked
        record.args = None
    if record.exc_info and not record.exc_text:
        try:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        except Exception:  # pragma: no cover - defensive
            pass
    if record.exc_text:
        record.exc_text = redact_log_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_log_text(record.stack_info)
    record._cpr_masked = True  # type: ignore[attr-defined]
    return record


_FILTER = CprLogFilter()
_installed = False


def install_log_filter() -> None:
    """Mask CPR numbers in every log record of this process. Idempotent.

    Wraps the log record factory, so every record from every logger (Rasa,
    Sanic, aiohttp, ours, handlers configured later) is masked when it is
    created, and also adds the filter to the root logger's current handlers.
    Call it once at start-up of each process: the Rasa server (from the
    channel module, at import) and the action server (from an actions module).
    """
    global _installed
    if _installed:
        _attach_to_root_handlers()
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _mask_record(previous(*args, **kwargs))

    factory._cpr_masking = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
    _attach_to_root_handlers()
    _installed = True


def _attach_to_root_handlers() -> None:
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


def route_structlog_through_logging(level: int = logging.INFO) -> bool:
    """Send structlog's output (Rasa 3.6 logs with it) through stdlib logging.

    Unconfigured, structlog prints EVERY level, debug included, straight to
    stdout: Rasa's ``processor.message.parse ... parse_data_text=<the message>``
    lines end up in logs/rasa.log, past the log filter. After this call,
    records below ``level`` are dropped and the rest are ordinary log records,
    masked by :func:`install_log_filter`. Call it in the Rasa server process
    before Rasa handles a message. Returns False when structlog is missing.
    structlog is imported lazily: importing this module stays stdlib-only.
    """
    try:
        import structlog
    except ImportError:  # pragma: no cover - not in the Rasa venv
        return False
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["event"], drop_missing=True),
        ],
        context_class=dict,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    return True
