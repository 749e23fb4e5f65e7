"""CPR detection and masking (af_core/privacy.py)."""
from __future__ import annotations

import datetime as dt
import logging
import random
import re
import subprocess
import sys

import pytest

from af_core.privacy import (
    CPR_MASK,
    CprLogFilter,
    contains_cpr,
    install_log_filter,
    is_valid_cpr_date,
    mask_cpr,
    mask_cpr_in,
)

WEIGHTS = (4, 3, 2, 7, 6, 5, 4, 3, 2, 1)


def mod11_ok(digits: str) -> bool:
    return sum(int(d) * w for d, w in zip(digits, WEIGHTS)) % 11 == 0


# --------------------------------------------------------------------------- positives

POSITIVE = [
    "010203-1234",
    "0102031234",
    "010203 1234",
    "010203 - 1234",
    "010203\u20131234",  # en dash
    "010203\u00a01234",  # no-break space
    "01 02 03 - 1234",
    "01 02 03-1234",
    "01 02 03 1234",
    "01.02.03-1234",
    "01-02-03-1234",
    "01/02/03-1234",
    "311299-4321",
    "290204-1234",  # 29 Feb 1904 (leap year: 7th digit 1 -> 1900s)
    "290200-4123",  # 29 Feb 2000 (7th digit 4, yy<=36 -> 2000, a leap year)
    "300690-0001",
    "０１０２０３１２３４",  # full-width digits
    # Security review (issue 14): shapes that passed before.
    "0102\u200b031234",  # zero-width space inside
    "01\u00ad02031234",  # soft hyphen
    "010203\u200d1234",  # zero-width joiner
    "010203\u20601234",  # word joiner
    "010203\u20091234",  # thin space
    "010203\u20071234",  # figure space
    "010203\u30001234",  # ideographic space
    "010203\n1234",  # line break between the parts
    "010203\r\n1234",
    "01.02.03 1234",
    "01-02-03 1234",
    "010203.1234",
    "010203/1234",
    "010203_1234",
    "01_02_03_1234",
    "010203\uff0d1234",  # full-width hyphen
    "medarbejder0102031234",  # glued to letters
    "SAG0102031234",  # glued to letters: masked even if it were a case number (decision)
    "møde 12.03.24 1400"[5:],  # a date and a time look exactly like 12.03.24 + serial (decision)
]


@pytest.mark.parametrize("cpr", POSITIVE)
def test_cpr_forms_are_masked(cpr):
    masked, n = mask_cpr(cpr)
    assert n == 1
    assert masked == CPR_MASK or masked.endswith(CPR_MASK) and masked[:-len(CPR_MASK)].isalpha()
    assert contains_cpr(cpr)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Hans har cpr 010203-1234 og er syg", f"Hans har cpr {CPR_MASK} og er syg"),
        ("CPR: 0102031234.", f"CPR: {CPR_MASK}."),
        ("cpr-nr.:010203-1234,", f"cpr-nr.:{CPR_MASK},"),
        ("(010203-1234)", f"({CPR_MASK})"),
        ("CPR0102031234", f"CPR{CPR_MASK}"),
        ("cprnr0102031234", f"cprnr{CPR_MASK}"),
        ("linje\n010203-1234\nslut", f"linje\n{CPR_MASK}\nslut"),
        ('{"cpr": "010203-1234"}', '{"cpr": "' + CPR_MASK + '"}'),
    ],
)
def test_cpr_inside_text_keeps_the_rest(text, expected):
    assert mask_cpr(text)[0] == expected


def test_several_numbers_are_all_masked_and_counted():
    text = "Anna 010203-1234, Bo 111111 1118 og Carl 2412851234 skal flyttes"
    masked, n = mask_cpr(text)
    assert n == 3
    assert masked == f"Anna {CPR_MASK}, Bo {CPR_MASK} og Carl {CPR_MASK} skal flyttes"
    assert not re.search(r"\d{4}", masked)


def test_numbers_issued_since_2007_that_fail_modulus_11_are_masked():
    # These are valid-looking CPR numbers (real dates) that fail modulus 11;
    # since 2007 such numbers are issued, so they must be masked all the same.
    failing = ["0101074321", "240512-5678", "311299-1234", "010203-1234"]
    for number in failing:
        assert not mod11_ok(number.replace("-", "")), number
        assert mask_cpr(number) == (CPR_MASK, 1)


def test_masking_is_idempotent():
    once, n1 = mask_cpr("cpr 010203-1234")
    twice, n2 = mask_cpr(once)
    assert (once, n1) == (twice, 1) or n2 == 0
    assert twice == once and n2 == 0


# --------------------------------------------------------------------------- negatives

NEGATIVE = [
    "",
    "hej",
    "Ring på 33 17 00 00",  # phone, 8 digits
    "tlf. 33170000",
    "+45 33 17 00 00",  # 45 is not a day
    "+45 12 03 45 67",
    "004533170000",
    "Sagen hedder AFH0001001",
    "INC0010203",
    "Det koster 12.500 kr",
    "beløb 1.234.567,50 kr",
    "mød mig 1/12 kl 13",
    "den 01.02.2003",
    "P-nummer 1003388394 er ikke et cpr",  # 1003388394: 10/03/38 is a date! see below
    "EAN 5798000012345",  # 13 digits
    "5798000012",  # 57/98 -> month 98
    "3213991234",  # day 32
    "0013991234",  # day 0
    "0100991234",  # month 0
    "3102991234",  # 31 February
    "3104991234",  # 31 April
    "2902991234",  # 29 Feb 1999
    "2902000123",  # 29 Feb 1900 (7th digit 0 -> 1900, not a leap year)
    "01020312345",  # 11 digits
    "90102031234",  # 11 digits
    "0102031234-5",  # longer number with a dash
    "konto 1234-0102031234",
    "12 34 56 78 90",
    "01 02 03 04 05 06",
    "010203",
    "010203-123",
]


@pytest.mark.parametrize("text", [t for t in NEGATIVE if "P-nummer" not in t])
def test_not_a_cpr_number_is_left_alone(text):
    assert mask_cpr(text) == (text, 0)
    assert not contains_cpr(text)


def test_ten_digit_number_with_a_real_date_is_masked_even_if_it_is_a_p_number():
    # We cannot tell a P-number whose first six digits are a date from a CPR
    # number; masking too much is the safe side.
    assert mask_cpr("P-nummer 1003388394")[1] == 1


def test_invalid_candidate_does_not_hide_a_real_number_inside_it():
    # "99 01 02 ..." is not a date, but "010203-1234" right after it is.
    assert mask_cpr("99 010203-1234") == (f"99 {CPR_MASK}", 1)


def test_non_strings_pass_through():
    assert mask_cpr(None) == (None, 0)  # type: ignore[arg-type]
    assert mask_cpr(1234) == (1234, 0)  # type: ignore[arg-type]
    assert not contains_cpr(None)  # type: ignore[arg-type]


def test_mask_cpr_in_structures():
    value = {"customData": {"note": "cpr 010203-1234", "n": 5, "list": ["0102031234", "x"]}, "010203-1234": 1}
    masked, n = mask_cpr_in(value)
    assert n == 3
    assert masked == {"customData": {"note": f"cpr {CPR_MASK}", "n": 5, "list": [CPR_MASK, "x"]}, CPR_MASK: 1}
    assert value["customData"]["note"] == "cpr 010203-1234"  # input not modified


# --------------------------------------------------------------------------- date rules


@pytest.mark.parametrize(
    "day,month,yy,seventh,ok",
    [
        (29, 2, 0, 4, True),  # 2000
        (29, 2, 0, 0, False),  # 1900
        (29, 2, 96, 9, True),  # 1996
        (29, 2, 58, 5, False),  # 1858
        (29, 2, 56, 5, True),  # 2056
        (31, 12, 99, 3, True),
        (31, 11, 99, 3, False),
        (1, 13, 99, 3, False),
        (0, 1, 99, 3, False),
    ],
)
def test_date_rules(day, month, yy, seventh, ok):
    assert is_valid_cpr_date(day, month, yy, seventh) is ok


# --------------------------------------------------------------------------- property-style

FORMATS = [
    "{d}{m}{y}{s}",
    "{d}{m}{y}-{s}",
    "{d}{m}{y} {s}",
    "{d}{m}{y} - {s}",
    "{d} {m} {y} - {s}",
    "{d} {m} {y}-{s}",
    "{d} {m} {y} {s}",
    "{d}.{m}.{y}-{s}",
    "{d}-{m}-{y}-{s}",
]
CONTEXT = [
    ("", ""),
    ("Min medarbejder har cpr ", " og er syg."),
    ("CPR: ", ""),
    ("Hej\n", "\ntak"),
    ("(", ")"),
    ("Sag AFH0001001: ", ", ring 33 17 00 00"),
]


def _random_cpr(rng: random.Random):
    date = dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 95))
    yy = date.year % 100
    # A 7th digit consistent with the century of the date.
    if date.year < 2000:
        seventh = rng.choice([0, 1, 2, 3] + ([4, 9] if yy >= 37 else []))
    else:
        seventh = rng.choice([4, 9, 5, 6, 7, 8] if yy <= 36 else [5, 6, 7, 8])
    serial = f"{seventh}{rng.randrange(0, 1000):03d}"
    return f"{date.day:02d}", f"{date.month:02d}", f"{yy:02d}", serial


def test_property_every_generated_cpr_is_masked_and_no_digits_leak():
    rng = random.Random(20261130)
    mod11_failures = 0
    for _ in range(3000):
        d, m, y, s = _random_cpr(rng)
        mod11_failures += not mod11_ok(d + m + y + s)
        cpr = rng.choice(FORMATS).format(d=d, m=m, y=y, s=s)
        before, after = rng.choice(CONTEXT)
        masked, n = mask_cpr(before + cpr + after)
        assert n == 1, (before + cpr + after)
        assert masked == before + CPR_MASK + after
    assert mod11_failures > 2000  # most random serials fail modulus 11: we do not care


def test_property_numbers_with_impossible_dates_are_never_masked():
    rng = random.Random(7)
    for _ in range(3000):
        # Pick a day that is impossible for the month (or month 0/13-99).
        if rng.random() < 0.5:
            month = rng.randrange(1, 13)
            day = rng.randrange(32, 100) if rng.random() < 0.5 else rng.choice([0, 30, 31]) if month == 2 else 0
            if month in (4, 6, 9, 11) and rng.random() < 0.5:
                day = 31
        else:
            month = rng.choice([0] + list(range(13, 100)))
            day = rng.randrange(0, 100)
        number = f"{day:02d}{month:02d}{rng.randrange(0, 100):02d}{rng.randrange(0, 10000):04d}"
        fmt = rng.choice(FORMATS)
        text = fmt.format(d=number[0:2], m=number[2:4], y=number[4:6], s=number[6:10])
        assert mask_cpr(text) == (text, 0), text


def test_property_random_text_without_ten_digits_is_unchanged():
    rng = random.Random(99)
    alphabet = "abcæøå ÆØÅ.,-:/\n0123456789kr"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60)))
        if len(re.sub(r"\D", "", text)) < 10:
            assert mask_cpr(text) == (text, 0)


def test_speed_on_long_input():
    text = ("Hej, jeg skal bruge en blanket til barsel 33 17 00 00 12.500 kr " * 2000) + "010203-1234"
    import time

    start = time.perf_counter()
    masked, n = mask_cpr(text)
    assert n == 1
    assert time.perf_counter() - start < 0.5


# --------------------------------------------------------------------------- logging


def test_log_filter_masks_message_args_and_exception():
    logger = logging.getLogger("test_privacy.filter")
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(CprLogFilter())
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("Received user message '%s'", "cpr 010203-1234")
        logger.warning("direct 0102031234")
        try:
            raise ValueError("bad 010203-1234")
        except ValueError:
            logger.exception("failed for %s", "0102031234")
    finally:
        logger.removeHandler(handler)
    text = "\n".join(records)
    assert "1234" not in text.replace("Received", "")
    assert CPR_MASK in records[0] and CPR_MASK in records[1]
    assert "ValueError: bad [CPR-nummer fjernet]" in text


def test_install_log_filter_masks_records_of_every_logger_in_a_fresh_process(tmp_path):
    # A fresh interpreter, so the global record factory of this test process
    # is not changed. Handlers configured AFTER installing are covered too.
    log_file = tmp_path / "x.log"
    code = f"""
import logging, sys
sys.path.insert(0, {str(__import__('pathlib').Path(__file__).resolve().parent.parent)!r})
from af_core.privacy import install_log_filter
install_log_filter()
install_log_filter()
logging.basicConfig(filename={str(log_file)!r}, level=logging.DEBUG)
logging.getLogger("rasa.core.processor").debug("Received user message 'cpr %s' with intent", "010203-1234")
logging.getLogger("sanic.root").info("body=0102031234")
try:
    raise RuntimeError("010203 1234")
except RuntimeError:
    logging.getLogger("x").exception("boom")
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    content = log_file.read_text()
    assert content.count(CPR_MASK) == 3, content
    assert "1234" not in content


def test_log_filter_hides_api_tokens_in_logged_urls():
    record = logging.LogRecord(
        "sanic.access", logging.INFO, __file__, 1,
        "GET /conversations/abc/tracker?token=%s&include_events=ALL 200; Authorization: Bearer %s",
        ("s3cr3t-token-value", "eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.abc"), None,
    )
    CprLogFilter().filter(record)
    line = record.getMessage()
    assert "s3cr3t" not in line and "eyJhbGci" not in line
    assert "?token=[skjult]&include_events=ALL" in line


def test_structlog_output_goes_through_the_filter_and_respects_the_level(tmp_path):
    """Rasa 3.6 logs with structlog; unconfigured it prints debug lines with message text to stdout."""
    log_file = tmp_path / "s.log"
    code = f"""
import logging, sys
sys.path.insert(0, {str(__import__('pathlib').Path(__file__).resolve().parent.parent)!r})
import structlog
early = structlog.get_logger()  # like Rasa's module-level loggers, created before configuration
from af_core.privacy import install_log_filter, route_structlog_through_logging
install_log_filter()
logging.basicConfig(filename={str(log_file)!r}, level=logging.INFO)
assert route_structlog_through_logging(logging.INFO)
early.debug("processor.message.parse", parse_data_text="hemmelig besked 010203-1234")
early.info("processor.info", text="cpr 0102031234 her")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "hemmelig" not in result.stdout + result.stderr  # nothing printed past logging
    content = log_file.read_text()
    assert "hemmelig besked" not in content  # debug dropped at INFO
    assert "processor.info" in content and CPR_MASK in content and "1234" not in content


def test_notice_for_the_leader_is_danish_and_counts():
    from channels.inbound import cpr_notice

    assert cpr_notice(0) == ""
    one = cpr_notice(1)
    assert "fjernet et CPR-nummer" in one and "Skriv ikke CPR-numre" in one
    assert "fjernet 3 CPR-numre" in cpr_notice(3)
    assert not contains_cpr(one)


import unicodedata  # noqa: E402

# --------------------------------------------------------------------------- property-based (Hypothesis)
from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402

INVISIBLE = ["\u200b", "\u00ad", "\u200c", "\u200d", "\u2060", "\ufeff"]
SPACES = [" ", "\u00a0", "\u2009", "\u2007", "\u3000", "\u202f", "\n"]
SEPARATORS = ["", "-", " ", " - ", "\u2013", "\uff0d", ".", "/", "_", "\n"] + SPACES


@st.composite
def cpr_in_odd_shape(draw):
    """A real CPR date and serial, written in one of the shapes leaders (or an attacker) use."""
    day_one = draw(st.dates(min_value=dt.date(1937, 1, 1), max_value=dt.date(1999, 12, 31)))
    serial = draw(st.integers(min_value=0, max_value=3999))  # 7th digit 0-3: the 1900s
    digits = f"{day_one:%d%m%y}{serial:04d}"
    d, m, y, s = digits[0:2], digits[2:4], digits[4:6], digits[6:10]
    shape = draw(st.sampled_from(["together", "groups", "dotted"]))
    if shape == "together":
        text = d + m + y + draw(st.sampled_from(SEPARATORS)) + s
    elif shape == "groups":
        space = draw(st.sampled_from([" ", "\u2009", "\u3000"]))
        text = d + space + m + space + y + draw(st.sampled_from(["-", " ", " - "])) + s
    else:
        sep = draw(st.sampled_from([".", "-", "/", "_"]))
        text = d + sep + m + sep + y + draw(st.sampled_from(["-", " ", sep])) + s
    if draw(st.booleans()):  # full-width digits
        text = "".join(chr(ord(c) - ord("0") + 0xFF10) if c.isdigit() else c for c in text)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):  # invisible characters inside
        at = draw(st.integers(min_value=1, max_value=len(text) - 1))
        text = text[:at] + draw(st.sampled_from(INVISIBLE)) + text[at:]
    before = draw(st.sampled_from(["", "cpr ", "medarbejder", "Hej, ", "Min ansatte (", "\n"]))
    after = draw(st.sampled_from(["", " er syg", ".", ")", "\ntak", " og skal have løn"]))
    return before + text + after, digits


@hsettings(max_examples=400, deadline=None)
@given(cpr_in_odd_shape())
def test_property_a_cpr_number_in_any_shape_leaves_no_trace(case):
    text, digits = case
    masked, count = mask_cpr(text)
    assert count == 1, repr(text)
    left = re.sub(r"\D", "", unicodedata.normalize("NFKC", masked))
    assert digits[:6] not in left and digits[6:] not in left, repr(masked)
    assert not contains_cpr(masked)
