"""Danish preferred times the way leaders write them (base: Monday 30 Nov 2026, 09:00)."""
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from af_core.danish_time import (
    check_preferred_time,
    describe_iso,
    normalise,
    opening_hours_text,
    render_datetime,
    suggest_times,
)

TZ = ZoneInfo("Europe/Copenhagen")
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=TZ)
HOURS = {
    "monday": ["08:00", "15:00"],
    "tuesday": ["08:00", "15:00"],
    "wednesday": ["08:00", "15:00"],
    "thursday": ["08:00", "15:00"],
    "friday": ["08:00", "14:00"],
}


def check(text, now=NOW, hours=HOURS, **kwargs):
    return check_preferred_time(text, now, hours, "Europe/Copenhagen", **kwargs)


@pytest.mark.parametrize(
    "text, iso, shown",
    [
        ("i morgen kl. 10", "2026-12-01T10:00:00+01:00", "tirsdag den 1. december kl. 10.00"),
        ("i morgen kl 10", "2026-12-01T10:00:00+01:00", "tirsdag den 1. december kl. 10.00"),
        ("imorgen kl10", "2026-12-01T10:00:00+01:00", "tirsdag den 1. december kl. 10.00"),
        ("1/12 kl 13", "2026-12-01T13:00:00+01:00", "tirsdag den 1. december kl. 13.00"),
        ("torsdag kl 14", "2026-12-03T14:00:00+01:00", "torsdag den 3. december kl. 14.00"),
        ("på fredag kl 9.30", "2026-12-04T09:30:00+01:00", "fredag den 4. december kl. 9.30"),
        ("tordag kl 10", "2026-12-03T10:00:00+01:00", "torsdag den 3. december kl. 10.00"),
        ("halv to på fredag", "2026-12-04T13:30:00+01:00", "fredag den 4. december kl. 13.30"),
        ("kvart over 10 i morgen", "2026-12-01T10:15:00+01:00", "tirsdag den 1. december kl. 10.15"),
        ("klokken ti torsdag", "2026-12-03T10:00:00+01:00", "torsdag den 3. december kl. 10.00"),
        ("i overmorgen kl 11", "2026-12-02T11:00:00+01:00", "onsdag den 2. december kl. 11.00"),
        ("3. december kl. 13", "2026-12-03T13:00:00+01:00", "torsdag den 3. december kl. 13.00"),
        ("d. 3.12 kl 10", "2026-12-03T10:00:00+01:00", "torsdag den 3. december kl. 10.00"),
        ("tirsdag d. 1/12 kl. 10", "2026-12-01T10:00:00+01:00", "tirsdag den 1. december kl. 10.00"),
        ("i morgen kl 2", "2026-12-01T14:00:00+01:00", "tirsdag den 1. december kl. 14.00"),
        ("næste torsdag kl 10", "2026-12-10T10:00:00+01:00", "torsdag den 10. december kl. 10.00"),
        ("torsdag i uge 50 kl 10", "2026-12-10T10:00:00+01:00", "torsdag den 10. december kl. 10.00"),
        ("torsdag, gerne ved 11-tiden", "2026-12-03T11:00:00+01:00", "torsdag den 3. december kl. 11.00"),
        ("hvad med tirsdag kl 10?", "2026-12-01T10:00:00+01:00", "tirsdag den 1. december kl. 10.00"),
        ("kl 13", "2026-11-30T13:00:00+01:00", "mandag den 30. november kl. 13.00"),
        # our own rendering (used on buttons) must parse back to the same time
        ("tirsdag den 1. december kl. 10.00", "2026-12-01T10:00:00+01:00", "tirsdag den 1. december kl. 10.00"),
        ("2026-12-01T10:00:00+01:00", "2026-12-01T10:00:00+01:00", "tirsdag den 1. december kl. 10.00"),
    ],
)
def test_clock_times_are_understood_and_repeated_in_plain_danish(text, iso, shown):
    result = check(text)
    assert result.ok, result.message
    assert result.value.iso() == iso
    assert result.message == shown


@pytest.mark.parametrize(
    "text, iso, shown",
    [
        ("torsdag eftermiddag", "2026-12-03T13:00:00+01:00", "torsdag den 3. december om eftermiddagen (fra kl. 13.00)"),
        ("onsdag formiddag", "2026-12-02T10:00:00+01:00", "onsdag den 2. december om formiddagen (fra kl. 10.00)"),
        ("i morgen tidlig", "2026-12-01T08:00:00+01:00", "tirsdag den 1. december tidligt (fra kl. 8.00)"),
        ("helst torsdag formiddag", "2026-12-03T10:00:00+01:00", "torsdag den 3. december om formiddagen (fra kl. 10.00)"),
        ("torsdag eftermiddag kl 2", "2026-12-03T14:00:00+01:00", "torsdag den 3. december kl. 14.00"),
    ],
)
def test_parts_of_the_day(text, iso, shown):
    result = check(text)
    assert result.ok, result.message
    assert result.value.iso() == iso
    assert result.message == shown


@pytest.mark.parametrize(
    "text, iso, shown",
    [
        ("næste uge", "2026-12-07", "ugen fra mandag den 7. december"),
        ("naeste uge", "2026-12-07", "ugen fra mandag den 7. december"),
        ("i næste uge", "2026-12-07", "ugen fra mandag den 7. december"),
        ("uge 50", "2026-12-07", "ugen fra mandag den 7. december"),
        ("om to dage", "2026-12-02", "onsdag den 2. december (intet bestemt klokkeslæt)"),
        ("3 dec", "2026-12-03", "torsdag den 3. december (intet bestemt klokkeslæt)"),
        ("torsdag", "2026-12-03", "torsdag den 3. december (intet bestemt klokkeslæt)"),
    ],
)
def test_days_and_weeks_without_a_clock_time(text, iso, shown):
    result = check(text)
    assert result.ok, result.message
    assert result.value.iso() == iso
    assert result.message == shown


def test_as_soon_as_possible_gives_the_first_slot_inside_opening_hours():
    result = check("hurtigst muligt")
    assert result.ok
    assert result.value.iso() == "2026-11-30T10:00:00+01:00"
    assert result.message.startswith("hurtigst muligt")
    # late on a Friday the first slot is Monday morning
    friday_late = datetime(2026, 12, 4, 13, 50, tzinfo=TZ)
    assert check("snarest", now=friday_late).value.iso() == "2026-12-07T10:00:00+01:00"


@pytest.mark.parametrize("text", ["blabla", "ved ikke", "", "   ", "31/2 kl 10", "kl 99", "^ORnumber!=x"])
def test_nonsense_is_refused_with_examples_not_a_crash(text):
    result = check(text)
    assert not result.ok
    assert result.problem == "unparsed"
    assert "torsdag kl. 10" in result.message


@pytest.mark.parametrize(
    "text", ["i dag kl 8", "28/11 kl 10", "i går kl 10", "mandag den 23. november kl. 10"]
)
def test_past_times_are_refused(text):
    result = check(text)
    assert result.problem == "past", (text, result)
    assert "allerede gået" in result.message


def test_explicit_past_date_is_not_silently_moved_to_next_year():
    # dateparser alone would make this 28 November 2027
    result = check("28/11 kl 10")
    assert result.value.start.year == 2026
    assert result.message.startswith("Lørdag den 28. november kl. 10.00")


@pytest.mark.parametrize("text", ["lørdag kl 10", "loerdag", "søndag formiddag", "soendag kl 11"])
def test_weekends_are_refused_with_the_opening_hours(text):
    result = check(text)
    assert result.problem == "closed_day", (text, result)
    assert "mandag-torsdag kl. 8.00-15.00 og fredag kl. 8.00-14.00" in result.message


@pytest.mark.parametrize(
    "text, detail",
    [
        ("i morgen kl 16", "kl. 8.00-15.00"),
        ("i morgen kl. 7", "kl. 8.00-15.00"),
        ("fredag kl 14", "kl. 8.00-14.00"),
        ("kl. 14.45 i morgen", "kl. 8.00-15.00"),  # a 30-minute meeting would end after closing
        ("i aften", "kl. 8.00-15.00"),
    ],
)
def test_outside_opening_hours_is_refused(text, detail):
    result = check(text)
    assert result.problem == "outside_hours", (text, result)
    assert detail in result.message


def test_too_far_ahead_is_refused():
    result = check("1/3 kl 10")
    assert result.problem == "too_far"
    assert "60 dage" in result.message
    assert check("1/3 kl 10", max_days=120).ok


def test_other_opening_hours_and_timezone_are_respected():
    late_hours = {"saturday": ["10:00", "12:00"]}
    assert check("lørdag kl 10", hours=late_hours).ok
    assert check("torsdag kl 10", hours=late_hours).problem == "closed_day"
    # 'now' given in UTC is read in the profile's timezone
    utc_now = datetime(2026, 11, 30, 8, 45, tzinfo=ZoneInfo("UTC"))  # 9.45 in Copenhagen
    assert check("kl 9.30", now=utc_now).value.iso() == "2026-12-01T09:30:00+01:00"


def test_summer_time_offset_is_right():
    june = datetime(2026, 6, 1, 9, 0, tzinfo=TZ)
    assert check("i morgen kl 10", now=june).value.iso() == "2026-06-02T10:00:00+02:00"


def test_normalise_folds_ascii_spellings_and_typos():
    assert normalise("Naeste Uge paa tordag") == "næste uge på torsdag"
    assert normalise("loerdag eftermidag") == "lørdag eftermiddag"


def test_rendering_and_opening_hours_text():
    assert render_datetime(datetime(2026, 12, 3, 14, 0, tzinfo=TZ)) == "torsdag den 3. december kl. 14.00"
    assert render_datetime(datetime(2027, 1, 4, 9, 30, tzinfo=TZ), NOW) == "mandag den 4. januar 2027 kl. 9.30"
    assert opening_hours_text(HOURS) == "mandag-torsdag kl. 8.00-15.00 og fredag kl. 8.00-14.00"
    assert describe_iso("2026-12-03T14:00:00+01:00") == "torsdag den 3. december kl. 14.00"


def test_suggestions_are_inside_opening_hours_and_parse_back():
    slots = suggest_times(NOW, HOURS, "Europe/Copenhagen", count=3)
    assert len(slots) == 3
    assert slots[0] > NOW
    for slot in slots:
        shown = render_datetime(slot, NOW)
        assert check(shown).ok
        assert check(shown).value.start == slot
