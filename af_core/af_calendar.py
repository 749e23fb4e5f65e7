"""The days AF is closed: Danish public holidays and the profile's own closing days.

Public holidays come from the maintained ``holidays`` library (Denmark, Danish names).
Days that are not public holidays but on which AF is closed (juleaftensdag, nytårsaftensdag,
grundlovsdag, ...) are trainer data in the profile::

    closing_days:
      - {date: "12-24", name: "juleaftensdag"}   # every year (MM-DD)
      - {date: "2027-05-07", name: "fredag efter Kristi himmelfartsdag"}   # one date

``closing_reason(profile)`` returns a function ``day -> name or None`` used by the meeting
suggestions and the time check (af_core/danish_time.py).
"""
from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import Callable, Dict, Optional, Tuple

import holidays

from af_core.profile import Profile, ProfileError

_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_closing_days(entries, source: str = "profile.yml") -> Tuple[Dict[Tuple[int, int], str], Dict[date, str]]:
    """(every year: (month, day) -> name, once: date -> name), with Danish errors for the trainer."""
    yearly: Dict[Tuple[int, int], str] = {}
    once: Dict[date, str] = {}
    for number, entry in enumerate(entries or [], start=1):
        where = f"{source}, closing_days nr. {number}"
        if not isinstance(entry, dict) or not str(entry.get("date") or "").strip():
            raise ProfileError(f"{where}: skal have 'date' (MM-DD eller ÅÅÅÅ-MM-DD) og 'name'")
        value = str(entry["date"]).strip()
        name = str(entry.get("name") or "lukkedag").strip()
        try:
            if _MONTH_DAY.match(value):
                month, day = (int(part) for part in value.split("-"))
                date(2024, month, day)  # a leap year accepts 02-29
                yearly[(month, day)] = name
            elif _ISO_DAY.match(value):
                once[date.fromisoformat(value)] = name
            else:
                raise ValueError(value)
        except ValueError:
            raise ProfileError(f"{where}: '{value}' er ikke en dato (skriv MM-DD, fx 12-24, eller ÅÅÅÅ-MM-DD)")
    return yearly, once


@lru_cache(maxsize=16)
def _public_holidays(country: str, year: int) -> Dict[date, str]:
    return dict(holidays.country_holidays(country, years=[year], language="da"))


def closing_reason(profile: Profile) -> Callable[[date], Optional[str]]:
    """``day -> why AF is closed that day (Danish), or None``."""
    yearly, once = parse_closing_days(profile.data.get("closing_days"), str(profile.directory / "profile.yml"))
    country = str(profile.data.get("holiday_country", "DK"))

    def reason(day: date) -> Optional[str]:
        if day in once:
            return once[day]
        if (day.month, day.day) in yearly:
            return yearly[(day.month, day.day)]
        return _public_holidays(country, day.year).get(day)

    return reason
