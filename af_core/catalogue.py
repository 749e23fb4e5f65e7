"""The trainers' two catalogues: forms ("blanketter", ``forms.yml``) and rule topics (FAQ, ``faq.yml``).

Both live in the organisation profile (trainer-maintained YAML). This module reads and checks
them (Danish errors a trainer can act on), caches them until the file changes, and ranks them
for a leader's text with ``af_core.catalogue_search``. What the assistant SAYS about a hit is in
``af_core.form_replies`` and ``af_core.faq_replies``; the Rasa actions are in ``actions/``.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from af_core.catalogue_search import CatalogueIndex, Decision, Field, decide
from af_core.profile import Profile, ProfileError, get_profile

# ---------------------------------------------------------------------------
# Forms

FORMS_FILE = "forms.yml"
ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")

# Tuned on tests/test_forms_lookup.py and the training examples (not on the held-out set).
FORM_MIN_SCORE = 1.0  # below this nothing fits
FORM_SURE_RATIO = 1.2  # the best form must beat the runner-up by this factor to answer directly (1.3 until
# 2.12.2026: 1.2 answered 7 more of 287 development-set questions right and 2 more wrong, and on the
# held-out split 4 more right and 1 more wrong; docs/nlu.md)
NO_FORM_ID = "ingen"  # button payload "none of these"
FORM_TITLE_WEIGHT = 0.7  # words only in a form's title weigh less than its trainer-written words (1.0)


@dataclass(frozen=True)
class Form:
    id: str
    title: str
    url: str  # already expanded ({intranet} replaced)
    area: str
    when: str
    words: Tuple[str, ...]


@dataclass(frozen=True)
class FormCatalogue:
    forms: Tuple[Form, ...]
    index: CatalogueIndex

    def get(self, form_id: str) -> Optional[Form]:
        return next((f for f in self.forms if f.id == form_id), None)

    def search(self, text: str) -> Decision:
        return decide(self.index.search(text), FORM_MIN_SCORE, FORM_SURE_RATIO)


def text_field(entry: Dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(f"{where}: feltet '{key}' mangler eller er tomt")
    return value.strip()


def validated_entries(
    data: Any, profile: Profile, source: str, *, list_key: str, noun: str, at_least: str, area_key: str
) -> Iterator[Tuple[Dict[str, Any], str, str, str, Tuple[str, ...]]]:
    """The checks every trainer catalogue shares (forms.yml, faq.yml), with Danish errors.

    Yields ``(entry, id, where, area, words)`` for each entry; ``where`` names it in errors.
    """
    if not isinstance(data, dict) or not isinstance(data.get(list_key), list) or not data[list_key]:
        raise ProfileError(f"{source}: skal have en liste '{list_key}' med mindst {at_least}")
    areas = set(profile.topics)
    seen = set()
    for number, entry in enumerate(data[list_key], start=1):
        where = f"{source}, {noun} nr. {number}"
        if not isinstance(entry, dict):
            raise ProfileError(f"{where}: skal være en samling af felter (id, title, ...)")
        entry_id = text_field(entry, "id", where)
        where = f"{source}, {noun} '{entry_id}'"
        if not ID_RE.match(entry_id):
            raise ProfileError(f"{where}: id må kun have små bogstaver a-z, tal og _")
        if entry_id in seen:
            raise ProfileError(f"{where}: id findes to gange")
        seen.add(entry_id)
        area = text_field(entry, area_key, where)
        if area not in areas:
            raise ProfileError(f"{where}: {area_key} skal være en af {', '.join(sorted(areas))}")
        words = entry.get("words") or []
        if not isinstance(words, list) or not all(isinstance(w, (str, int)) for w in words):
            raise ProfileError(f"{where}: words skal være en liste af ord og vendinger")
        yield entry, entry_id, where, area, tuple(str(w).strip() for w in words if str(w).strip())


def parse_forms(data: Any, profile: Profile, source: str = FORMS_FILE) -> Tuple[Form, ...]:
    """Validate the catalogue data and return the forms (links expanded)."""
    return tuple(
        Form(
            id=form_id,
            title=text_field(entry, "title", where),
            url=profile.link(text_field(entry, "url", where)),
            area=area,
            when=text_field(entry, "when", where),
            words=words,
        )
        for entry, form_id, where, area, words in validated_entries(
            data, profile, source, list_key="forms", noun="blanket", at_least="én blanket", area_key="area"
        )
    )


def build_form_index(forms: Sequence[Form]) -> CatalogueIndex:
    entries = []
    for form in forms:
        # Titles name the KIND of form with generic words ("Ansættelse af vikar ..."), so a title
        # word counts less than the trainer's own words: "ansættelse af en ny medarbejder" is the
        # permanent hire (a word of 'ansaettelse'), not a tie with the title of 'vikar'.
        fields = [Field(form.title, FORM_TITLE_WEIGHT, phrase=True), Field(form.when, 0.4)]
        fields.extend(Field(word, 1.0, phrase=True) for word in form.words)
        entries.append((form.id, fields))
    return CatalogueIndex(entries)


class _FileCache:
    """One catalogue per file, read again when the file changes, so a trainer's edit takes effect
    without a restart. Each catalogue has its own lock: loading the FAQ reads the forms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: Dict[Path, Tuple[float, Any]] = {}

    def get(self, path: Path, build: Callable[[], Any]) -> Any:
        mtime = path.stat().st_mtime if path.exists() else -1.0
        with self._lock:
            cached = self._entries.get(path)
            if cached and cached[0] == mtime:
                return cached[1]
            value = build()
            self._entries[path] = (mtime, value)
            return value


_forms = _FileCache()


def load_form_catalogue(profile: Optional[Profile] = None) -> FormCatalogue:
    """The form catalogue of ``profile`` (default: the active one); re-read when the file changes."""
    profile = profile or get_profile()
    path = profile.directory / FORMS_FILE

    def build() -> FormCatalogue:
        forms = parse_forms(profile.catalogue(FORMS_FILE), profile, str(path))
        return FormCatalogue(forms, build_form_index(forms))

    return _forms.get(path, build)


def search_forms(text: str, profile: Optional[Profile] = None) -> Decision:
    """Ranked decision for a leader's form question (the code path the bot uses)."""
    return load_form_catalogue(profile).search(text)


# ---------------------------------------------------------------------------
# Rule topics (FAQ)

FAQ_FILE = "faq.yml"
FAQ_MIN_SCORE = 1.0
# Measured 3 December 2026 on the rule questions of the development sets (tests/eval:
# dev-outside, A, B; 180 questions): title 1.0 / lead 1.3 answered 166 right, 3 wrong and
# offered choices for 11; title 1.5 / lead 1.2 answers 172 right, 3 wrong, 5 offered.
# A topic's title names it ("Omsorgsdage", "Sygesamtale"); a leader who uses that word
# means that topic more often than one who shares a general word with its examples.
FAQ_SURE_RATIO = 1.2
FAQ_TITLE_WEIGHT = 1.5


@dataclass(frozen=True)
class FaqTopic:
    id: str
    title: str
    topic: str  # loen, personale, ... (for the follow-up offer)
    url: str  # expanded
    answer: str
    words: Tuple[str, ...]
    forms: Tuple[str, ...] = ()  # related form ids (shown with a link under the answer)


@dataclass(frozen=True)
class FaqCatalogue:
    topics: Tuple[FaqTopic, ...]
    index: CatalogueIndex

    def get(self, faq_id: str) -> Optional[FaqTopic]:
        return next((t for t in self.topics if t.id == faq_id), None)

    def search(self, text: str) -> Decision:
        return decide(self.index.search(text), FAQ_MIN_SCORE, FAQ_SURE_RATIO)


def parse_faq(data: Any, profile: Profile, source: str = FAQ_FILE) -> Tuple[FaqTopic, ...]:
    topics: List[FaqTopic] = []
    for entry, faq_id, where, topic, words in validated_entries(
        data, profile, source, list_key="topics", noun="emne", at_least="ét emne", area_key="topic"
    ):
        forms = entry.get("forms") or []
        if not isinstance(forms, list) or not all(isinstance(f, str) for f in forms):
            raise ProfileError(f"{where}: forms skal være en liste af blanket-id'er fra forms.yml")
        topics.append(
            FaqTopic(
                id=faq_id,
                title=text_field(entry, "title", where),
                topic=topic,
                url=profile.link(text_field(entry, "url", where)),
                answer=" ".join(text_field(entry, "answer", where).split()),
                words=words,
                forms=tuple(forms),
            )
        )
    return tuple(topics)


def check_related_forms(topics, form_catalogue, source: str = FAQ_FILE) -> None:
    for topic in topics:
        for form_id in topic.forms:
            if form_catalogue.get(form_id) is None:
                raise ProfileError(f"{source}, emne '{topic.id}': blanketten '{form_id}' findes ikke i forms.yml")


def build_faq_index(topics) -> CatalogueIndex:
    entries = []
    for topic in topics:
        fields = [Field(topic.title, FAQ_TITLE_WEIGHT, phrase=True), Field(topic.answer, 0.3)]
        fields.extend(Field(word, 1.0, phrase=True) for word in topic.words)
        entries.append((topic.id, fields))
    return CatalogueIndex(entries)


_topics = _FileCache()


def load_faq_catalogue(profile: Optional[Profile] = None) -> FaqCatalogue:
    """The FAQ catalogue of ``profile``; re-read when the file changes."""
    profile = profile or get_profile()
    path = profile.directory / FAQ_FILE

    def build() -> FaqCatalogue:
        topics = parse_faq(profile.catalogue(FAQ_FILE), profile, str(path))
        check_related_forms(topics, load_form_catalogue(profile), str(path))
        return FaqCatalogue(topics, build_faq_index(topics))

    return _topics.get(path, build)


def search_faq(text: str, profile: Optional[Profile] = None) -> Decision:
    return load_faq_catalogue(profile).search(text)


def clear_hit(catalogue: Any, text: str, min_score: float) -> Any:
    """The form or rule topic ``text`` names beyond doubt: one sure hit scoring at least
    ``min_score`` (the strict thresholds of the hints), else None."""
    decision = catalogue.search(text)
    if decision.kind != "sure" or decision.hits[0].score < min_score:
        return None
    return catalogue.get(decision.hits[0].id)
