"""The organisation profile: everything specific to one administration.

A profile is a folder under ``profiles/`` (chosen with ``AF_PROFILE``) holding
``profile.yml`` (units, routing, opening hours, service levels, phone numbers,
intranet base URL), the trainer-maintained catalogues (``forms.yml``,
``faq.yml``) and the words leaders use for a request (``vocabulary.yml``: topics,
meeting channels, urgency, ...; ``Profile.vocabulary()``). Links in the catalogues
may contain ``{intranet}``, which is replaced by the profile's ``intranet_base_url``.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from af_core.settings import get_settings

MEETING_CHANNELS = ("fysisk", "telefon", "teams")
VOCABULARY_FILE = "vocabulary.yml"


class ProfileError(ValueError):
    """The profile folder is missing a file or holds an invalid value."""


@dataclass(frozen=True)
class Profile:
    directory: Path
    data: Dict[str, Any]

    # -- basics ---------------------------------------------------------
    @property
    def name(self) -> str:
        return self.data["organisation"]["name"]

    @property
    def short_name(self) -> str:
        return self.data["organisation"].get("short_name", self.name)

    @property
    def intranet_base_url(self) -> str:
        return str(self.data["intranet_base_url"]).rstrip("/")

    def link(self, template: str) -> str:
        """Expand ``{intranet}`` in a link template."""
        return template.replace("{intranet}", self.intranet_base_url)

    @property
    def phone(self) -> str:
        return self.data["contact"]["phone"]

    @property
    def phone_hours(self) -> str:
        return self.data["contact"].get("phone_hours", "")

    @property
    def forms_page_url(self) -> str:
        return self.link(self.data["contact"]["forms_page_url"])

    @property
    def af_page_url(self) -> str:
        return self.link(self.data["contact"].get("af_page_url", "{intranet}"))

    @property
    def timezone(self) -> str:
        return self.data.get("timezone", "Europe/Copenhagen")

    @property
    def opening_hours(self) -> Dict[str, List[str]]:
        return self.data.get("opening_hours", {})

    @property
    def demo_leaders(self) -> List[Dict[str, str]]:
        return list(self.data.get("demo_leaders", []))

    # -- routing ----------------------------------------------------------
    @property
    def units(self) -> Dict[str, Dict[str, str]]:
        return {unit["id"]: unit for unit in self.data["units"]}

    def unit_for_institution(self, institution: Optional[str]) -> Dict[str, str]:
        routing = self.data["institution_routing"]
        lookup = {k.casefold(): v for k, v in routing.get("institutions", {}).items()}
        unit_id = lookup.get((institution or "").strip().casefold(), routing["default_unit"])
        return self.units[unit_id]

    @property
    def topics(self) -> Dict[str, Dict[str, str]]:
        return self.data["topics"]

    def assignment_group(self, institution: Optional[str], topic: str) -> str:
        unit = self.unit_for_institution(institution)
        template = self.topics[topic]["group"]
        return template.replace("{unit}", unit["id"])

    @property
    def service_levels(self) -> Dict[str, Dict[str, Any]]:
        return self.data["service_levels"]

    @property
    def default_urgency(self) -> str:
        """The urgency a request gets when the leader does not say (asked twice)."""
        value = str((self.data.get("request_defaults") or {}).get("urgency") or "")
        return value if value in self.service_levels else list(self.service_levels)[len(self.service_levels) // 2]

    @property
    def meeting_channels(self) -> Dict[str, str]:
        """Meeting channel -> its label on the button ("Fysisk møde")."""
        labels = self.data.get("meeting_channels") or {"fysisk": "Fysisk møde", "telefon": "Telefon", "teams": "Teams"}
        return {key: str(label) for key, label in labels.items() if key in MEETING_CHANNELS}

    # -- the request vocabulary ---------------------------------------------
    def vocabulary(self) -> Any:
        """The words leaders use for a request's details (``vocabulary.yml``): topics for this
        profile's ``topics``, urgency words for its ``service_levels``, words for its meeting
        channels, and the phrases for yes, cancel, correct and no time wish. Checked with
        Danish messages for the trainer (``VocabularyError``); read again when the file changes.
        """
        path = self.directory / VOCABULARY_FILE
        if not path.is_file():
            from af_core.request_vocabulary import VocabularyError

            raise VocabularyError(f"Profilen mangler filen {path}")
        key = (path, path.stat().st_mtime, tuple(self.topics), tuple(self.service_levels),
               tuple(self.meeting_channels))
        with _vocabulary_lock:
            cached = _vocabularies.get(path)
            if cached and cached[0] == key:
                return cached[1]
            from af_core.request_vocabulary import parse_vocabulary  # pure; imports nothing from here

            vocabulary = parse_vocabulary(self.catalogue(VOCABULARY_FILE), self.topics, self.service_levels,
                                          str(path), channels=self.meeting_channels)
            _vocabularies[path] = (key, vocabulary)
            return vocabulary

    # -- catalogues -------------------------------------------------------
    def catalogue(self, file_name: str) -> Any:
        """Load a YAML catalogue (e.g. ``forms.yml``) from the profile folder."""
        path = self.directory / file_name
        if not path.is_file():
            raise ProfileError(f"Profilen mangler filen {path}")
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)


_vocabulary_lock = threading.Lock()
_vocabularies: Dict[Path, Tuple[Any, Any]] = {}


REQUIRED_KEYS = (
    "organisation",
    "contact",
    "intranet_base_url",
    "units",
    "institution_routing",
    "topics",
    "service_levels",
)


def load_profile(directory: Path) -> Profile:
    path = Path(directory) / "profile.yml"
    if not path.is_file():
        raise ProfileError(f"Profilen mangler filen {path}")
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise ProfileError(f"{path} mangler: {', '.join(missing)}")
    profile = Profile(directory=Path(directory), data=data)
    default_unit = data["institution_routing"].get("default_unit")
    if default_unit not in profile.units:
        raise ProfileError(f"{path}: default_unit {default_unit!r} er ikke en af units")
    for name, unit_id in data["institution_routing"].get("institutions", {}).items():
        if unit_id not in profile.units:
            raise ProfileError(f"{path}: institutionen {name!r} peger på ukendt enhed {unit_id!r}")
    return profile


@lru_cache(maxsize=8)
def _cached(directory: str) -> Profile:
    return load_profile(Path(directory))


def get_profile() -> Profile:
    """The profile selected by ``AF_PROFILE`` (loaded once per process)."""
    return _cached(str(get_settings().profile_dir))
