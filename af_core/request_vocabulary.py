"""The words leaders use for the details of a request, read from free text.

The vocabulary is trainer data: ``vocabulary.yml`` in the organisation profile (topics,
meeting channels, urgency, help or meeting, confirm/cancel/deny, correction and "no time
wish" phrases), read by ``Profile.vocabulary()`` (af_core/profile.py) and checked here with
Danish messages for the trainer. This module matches it against what a leader writes, the way
leaders write: without æøå ("loen", "moede"), with a typo in a long word ("telefoon"), in
compounds ("teamsmøde", "lønsedlen", "vikarløn"), with negations ("ikke teams",
"det haster ikke") and with a marked preference ("fysisk, nej hellere telefon").

What stays in Python is Danish grammar, the same for every administration: negations
("ikke"), words that mark a preference ("hellere", "i stedet") and filler ("tak", "bare").

Pure: no Rasa, no I/O.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from af_core.textnorm import edit_distance, fold, is_stopword, skeleton

VOCABULARY_FILE = "vocabulary.yml"
VALUE_TABLES = ("topics", "channels", "urgency", "urgency_when_asked", "request_types")
PHRASE_LISTS = ("confirm", "cancel", "deny", "correction", "no_time_wish", "no_preference")
# Optional: urgency words that say only that it matters, not how soon ("haster"); each must also
# stand under one level in `urgency`. A time frame named with them decides ("det haster
# alligevel ... gerne inden for et par dage" is snart).
WITHOUT_TIME_FRAME = "urgency_without_time_frame"
CHANNELS = ("fysisk", "telefon", "teams")  # the meeting channels ServiceNow knows
REQUEST_TYPES = ("help", "meeting")

_TOKEN_RE = re.compile(r"[0-9a-zæøåéäöü]+")
# Danish inflection endings: "møde" -> "mødet", "mødes"; "lønseddel" -> "lønsedlen" is listed.
# No "-t"/"-et": "ringet" (has called) is not a wish to be called.
_INFLECTIONS = ("", "e", "en", "er", "s", "ne", "ene", "erne", "ens", "es", "n", "r")
_NEGATIONS = frozenset({"ikke", "ik", "ikk", "ingen", "aldrig", "ikk"})
_PREFERENCE_BEFORE = frozenset({"hellere", "snarere", "helst", "nej", "men", "faktisk"})
_PREFERENCE_AFTER = ("i stedet", "hellere", "istedet")

# How sure a token match is: a whole phrase or word beats an inflection, a typo, a compound part.
EXACT, INFLECTED, TYPO, COMPOUND = 4, 3, 2, 1
# A topic named in the sentence that asks for the meeting or help counts this much more.
REQUEST_SENTENCE_WEIGHT = 3.0
_SENTENCE_END_RE = re.compile(r"[!?\n]|\.\s")  # "180.000 kr" is one sentence


class VocabularyError(ValueError):
    """vocabulary.yml is missing or holds an invalid entry (Danish message for the trainer)."""


def loose(word: str) -> str:
    """"løn", "loen" and "lon" all become "lon"; "møde" and "moede" become "mode"."""
    return skeleton(fold(word))


def tokens(text: str) -> List[str]:
    """Lower-case word tokens; "hr-konsulent" is two tokens, "a20" one."""
    return _TOKEN_RE.findall((text or "").casefold())


def token_spans(text: str) -> List[Tuple[int, int]]:
    """Character spans of ``tokens(text)`` in ``text``."""
    lowered = (text or "").lower()  # same length as the text, unlike casefold ("ß")
    return [m.span() for m in _TOKEN_RE.finditer(lowered)]


@dataclass(frozen=True)
class Match:
    value: str
    start: int  # first token
    end: int  # one past the last token
    strength: int
    phrase: str

    @property
    def negative_phrase(self) -> bool:
        """The phrase itself is a negation ("ikke akut")."""
        return self.phrase.split()[0] in _NEGATIONS


class PhraseTable:
    """Phrases per value, matched on loose tokens."""

    def __init__(self, table: Mapping[str, Sequence[str]], last_part: bool = False, compounds: bool = True):
        # last_part: a word may also END a compound ("vikarløn" is about løn). Only for topics:
        # "lægeerklæring" does not end with a wish to be rung.
        self.last_part = last_part
        self.compounds = compounds  # "stop" must not be read in "stoppet"
        self.values = tuple(table)
        self.entries: List[Tuple[str, Tuple[str, ...], str]] = []
        for value, phrases in table.items():
            for phrase in phrases:
                parts = tuple(loose(t) for t in tokens(str(phrase)))
                if parts:
                    self.entries.append((value, parts, str(phrase)))
        self.single = {}
        for value, parts, phrase in self.entries:
            if len(parts) == 1:
                self.single.setdefault(parts[0], (value, phrase))

    def find(self, text: str, claimed: Optional[Dict[int, int]] = None) -> List[Match]:
        """Every match in ``text``; overlapping weaker or shorter matches are dropped."""
        words = [loose(t) for t in tokens(text)]
        found: List[Match] = []
        for value, parts, phrase in self.entries:
            n = len(parts)
            for i in range(len(words) - n + 1):
                strength = _window_strength(words[i : i + n], parts)
                if strength:
                    found.append(Match(value, i, i + n, strength, phrase))
        # compounds: a known word as the first or last part of a longer word
        for i, word in enumerate(words if self.compounds else ()):
            if any(m.start <= i < m.end for m in found):
                continue
            if claimed and claimed.get(i, 0) > COMPOUND:
                continue  # the word is itself a word of another table ("mødeplan" is not a meeting)
            for value, parts, phrase in self.entries:
                if len(parts) != 1:
                    continue
                key = parts[0]
                if len(word) - len(key) >= 3 and (
                    (len(key) >= 3 and word.startswith(key))
                    or (self.last_part and len(key) >= 4 and word.endswith(key))
                ):
                    found.append(Match(value, i, i + 1, COMPOUND, phrase))
        return _non_overlapping(found)

    def strengths(self, text: str) -> Dict[int, int]:
        """Token position -> strongest non-compound match (used to block compound reads elsewhere)."""
        out: Dict[int, int] = {}
        for match in self.find(text):
            if match.strength > COMPOUND:
                for i in range(match.start, match.end):
                    out[i] = max(out.get(i, 0), match.strength)
        return out


def _window_strength(window: Sequence[str], parts: Sequence[str]) -> int:
    if list(window) == list(parts):
        return EXACT
    *head, last = parts
    if list(window[:-1]) != list(head):
        return 0
    word = window[-1]
    if word.startswith(last) and word[len(last):] in _INFLECTIONS:
        return INFLECTED
    # A typo only in a one-word phrase ("ikke rigtigt" is no typo of "ikke vigtigt"), never from
    # an everyday word ("medarbejder" is no typo of "merarbejde").
    if not head and len(last) >= 6 and abs(len(word) - len(last)) <= 2 and not is_stopword(word):
        limit = 2 if len(last) >= 10 else 1
        if edit_distance(word, last, limit) <= limit:
            return TYPO
    return 0


def _non_overlapping(found: List[Match]) -> List[Match]:
    found.sort(key=lambda m: (-(m.end - m.start), -m.strength, m.start))
    kept: List[Match] = []
    for match in found:
        same_span = [k for k in kept if k.start == match.start and k.end == match.end]
        if same_span and match.strength == COMPOUND:
            # "teamsmøde" may be read twice as a compound (first and last part) in different tables
            if any(k.value == match.value for k in same_span):
                continue
        elif any(not (match.end <= k.start or match.start >= k.end) for k in kept):
            continue
        kept.append(match)
    return sorted(kept, key=lambda m: m.start)


@dataclass
class Vocabulary:
    topics: PhraseTable
    channels: PhraseTable
    urgency: PhraseTable
    urgency_when_asked: PhraseTable
    request_types: PhraseTable
    phrases: Dict[str, PhraseTable]
    # WITHOUT_TIME_FRAME: the phrases (as loose keys) and the urgency level they stand under
    without_time_frame: frozenset = frozenset()
    without_time_frame_level: Optional[str] = None

    # -- the details ----------------------------------------------------------
    def _claims(self, text: str, table: PhraseTable) -> Dict[int, int]:
        """Token positions read as a whole word by the other detail tables."""
        claims: Dict[int, int] = {}
        for other in (self.topics, self.channels, self.urgency, self.request_types):
            if other is table:
                continue
            for position, strength in other.strengths(text).items():
                claims[position] = max(claims.get(position, 0), strength)
        return claims

    def choose(self, text: str, table: PhraseTable) -> Optional[str]:
        """The value the leader means, or None when none or two competing values are named.

        Negated mentions do not count ("ikke teams, telefon"). Of two different values only a
        marked preference decides ("fysisk, nej hellere telefon"); a negative phrase ("ikke akut")
        gives way to a positive one ("... men inden for et par dage").
        """
        words = tokens(text)
        found = table.find(text, self._claims(text, table))
        matches = _unnegated(words, found)
        values = {m.value for m in matches}
        if len(values) <= 1:
            return next(iter(values), None)
        preferred = [m for m in matches if _preferred(words, m)]
        if len({m.value for m in preferred}) == 1:
            return preferred[-1].value
        positive = {m.value for m in matches if not m.negative_phrase}
        if len(positive) == 1 and len(values) == 2:
            return next(iter(positive))
        return None

    def topic(self, text: str) -> Optional[str]:
        """The topic; of two named without a preference, the one named most (whole words count
        double), else the first: a request names its matter first ("kan I rette vagterne ...
        lønnen lukker fredag")."""
        value = self.choose(text, self.topics)
        if value is not None:
            return value
        words = tokens(text)
        found = self.mentions(text, self.topics)
        matches = _unnegated(words, found)
        if not matches:
            return None
        asking = self._request_sentences(text)
        weight: Dict[str, float] = {}
        for match in matches:
            value = 1.0 if match.strength > COMPOUND else 0.5
            if any(start <= match.start < end for start, end in asking):
                # "... Kan jeg få et møde med en økonomikonsulent?" after a long story about
                # barsel and vikarer: the sentence that asks says what the request is about.
                value *= REQUEST_SENTENCE_WEIGHT
            weight[match.value] = weight.get(match.value, 0.0) + value
        best = max(weight.values())
        return next(m.value for m in matches if weight[m.value] == best)

    def _request_sentences(self, text: str) -> List[Tuple[int, int]]:
        """Token ranges of the sentences that name the request itself ("møde", "ring", ...),
        when the text has more than one sentence."""
        kinds = [m.start for m in self.mentions(text, self.request_types)]
        if not kinds:
            return []
        spans = token_spans(text)
        ranges: List[Tuple[int, int]] = []
        first = 0
        for index in range(1, len(spans)):
            if _SENTENCE_END_RE.search(text[spans[index - 1][1]:spans[index][0]]):
                ranges.append((first, index))
                first = index
        ranges.append((first, len(spans)))
        if len(ranges) < 2:
            return []
        return [(a, b) for a, b in ranges if any(a <= k < b for k in kinds)]

    def negates_a_topic(self, text: str) -> bool:
        """A topic is named only to say it is not that one ("ikke løn, ...")."""
        found = self.mentions(text, self.topics)
        return len(_unnegated(tokens(text), found)) < len(found)

    def topic_only_in_compounds(self, text: str) -> bool:
        """Every topic word found is only part of a longer word ("personalemøde")."""
        matches = self.mentions(text, self.topics)
        return bool(matches) and all(m.strength == COMPOUND for m in matches)

    def asks_for_a_call(self, text: str) -> bool:
        """A phrase of several words for a meeting or call ("ring mig op", "kan i ringe", "et møde
        med"), not just the word "møde"."""
        words = tokens(text)
        return any(
            m.value == "meeting" and len(m.phrase.split()) >= 2 and not _negated(words, m)
            for m in self.mentions(text, self.request_types)
        )

    def channel(self, text: str) -> Optional[str]:
        return self.choose(text, self.channels)

    def urgency_level(self, text: str, asked: bool = False) -> Optional[str]:
        """How urgent; short answers ("lige meget", "i morgen", "ja") count only as the whole
        answer to the urgency question."""
        value = self.choose(text, self.urgency)
        if value is None:
            value = self._time_frame_over_bare_haste(text)
        if value is None and asked and self._only(self.urgency_when_asked, text):
            value = self.choose(text, self.urgency_when_asked)
        return value

    def _time_frame_over_bare_haste(self, text: str) -> Optional[str]:
        """"det haster alligevel ... gerne inden for et par dage": the bare "haster" says only
        that it matters; the time frame says how soon. Only for the level of the words in
        ``urgency_without_time_frame`` against one other level."""
        bare = self.without_time_frame_level
        if bare is None:
            return None
        words = tokens(text)
        found = self.mentions(text, self.urgency)
        matches = _unnegated(words, found)
        levels = {m.value for m in matches}
        if bare not in levels or len(levels) != 2:
            return None
        if all(phrase_key(m.phrase) in self.without_time_frame for m in matches if m.value == bare):
            return next(level for level in levels if level != bare)
        return None

    def request_type(self, text: str) -> Optional[str]:
        return self.choose(text, self.request_types)

    def mentions(self, text: str, table: PhraseTable) -> List[Match]:
        return table.find(text, self._claims(text, table))

    # -- whole answers ----------------------------------------------------------
    def says(self, kind: str, text: str) -> bool:
        """The message contains a phrase of ``kind`` (cancel, correction, ...)."""
        return bool(self.phrases[kind].find(text))

    def is_only(self, kind: str, text: str, extra: Iterable[str] = ()) -> bool:
        """The message is nothing but phrases of ``kind`` (and filler): "ja tak!", "ok, send den"."""
        return self._only(self.phrases[kind], text, extra)

    @staticmethod
    def _only(table: PhraseTable, text: str, extra: Iterable[str] = ()) -> bool:
        words = tokens(text)
        if not words:
            return False
        matches = table.find(text)
        covered = set()
        for match in matches:
            covered.update(range(match.start, match.end))
        filler = _FILLER | {loose(w) for w in extra}
        return bool(matches) and all(i in covered or loose(w) in filler for i, w in enumerate(words))

    def detail_positions(self, text: str) -> set:
        """Token positions that name a detail (topic, channel, urgency, type) or a phrase of any list."""
        positions = set()
        for table in (self.topics, self.channels, self.urgency, self.urgency_when_asked, self.request_types,
                      *self.phrases.values()):
            for match in table.find(text):
                positions.update(range(match.start, match.end))
        return positions


_FILLER = frozenset(
    loose(w)
    for w in "tak mange bare så jamen jo da nu lige gerne den det du i også og altså hej hmm okay mvh".split()
)


def _unnegated(words: Sequence[str], found: Sequence[Match]) -> List[Match]:
    """The matches that are not negated ("ikke teams, telefon" keeps telefon)."""
    return [m for i, m in enumerate(found) if not _negated(words, m, found[i - 1].end if i else 0)]


def _negated(words: Sequence[str], match: Match, previous_end: int = 0) -> bool:
    """A negation in the two words before the match, after any earlier match ("ikke teams";
    but in "vi ikke mødes, kan I ikke bare rette dem" the "ikke" belongs to "mødes")."""
    if match.negative_phrase:
        return False
    before = [loose(w) for w in words[max(0, previous_end, match.start - 2) : match.start]]
    if before[-2:] == ["stedet", "for"]:
        return True  # "telefon i stedet for teams"
    return any(w in {loose(n) for n in _NEGATIONS} for w in before)


def _preferred(words: Sequence[str], match: Match) -> bool:
    before = {loose(w) for w in words[max(0, match.start - 3) : match.start]}
    if before & {loose(w) for w in _PREFERENCE_BEFORE}:
        return True
    after = " ".join(words[match.end : match.end + 2])
    return any(after.startswith(p) for p in _PREFERENCE_AFTER)


# ---------------------------------------------------------------------------
# Loading and checking the trainer's file
# ---------------------------------------------------------------------------
def phrase_key(phrase: object) -> str:
    """How a phrase is compared: "Det haster", "det  haster" and "det hasteR" are one phrase."""
    return " ".join(loose(t) for t in tokens(str(phrase)))


def parse_vocabulary(data: object, topics: Iterable[str], urgencies: Iterable[str], source: str,
                     channels: Iterable[str] = CHANNELS) -> Vocabulary:
    """Check the trainer's vocabulary against the profile's topics, urgency levels and meeting
    channels; a ``VocabularyError`` says in Danish what is wrong and where."""
    if not isinstance(data, dict):
        raise VocabularyError(f"{source}: filen skal have afsnittene {', '.join(VALUE_TABLES + PHRASE_LISTS)}")
    allowed = {
        "topics": set(topics),
        "channels": set(channels),
        "urgency": set(urgencies),
        "urgency_when_asked": set(urgencies),
        "request_types": set(REQUEST_TYPES),
    }
    tables: Dict[str, PhraseTable] = {}
    for name in VALUE_TABLES:
        block = data.get(name)
        if not isinstance(block, dict) or not block:
            raise VocabularyError(f"{source}: afsnittet '{name}' mangler")
        seen: Dict[str, str] = {}
        for value, phrases in block.items():
            if value not in allowed[name]:
                raise VocabularyError(
                    f"{source}: '{value}' under '{name}' skal være en af {', '.join(sorted(allowed[name]))}"
                )
            if not isinstance(phrases, list) or not phrases:
                raise VocabularyError(f"{source}: '{name}: {value}' skal være en liste af ord")
            for phrase in phrases:
                if isinstance(phrase, bool) or not isinstance(phrase, (str, int)) or not tokens(str(phrase)):
                    raise VocabularyError(f"{source}: '{name}: {value}' har et tomt ord")
                key = phrase_key(phrase)
                if key in seen and seen[key] != value:
                    raise VocabularyError(
                        f"{source}: '{phrase}' står både under '{seen[key]}' og '{value}' i '{name}'"
                    )
                seen[key] = value
        tables[name] = PhraseTable(block, last_part=name == "topics")
    phrases: Dict[str, PhraseTable] = {}
    for name in PHRASE_LISTS:
        items = data.get(name)
        if not isinstance(items, list) or not items:
            raise VocabularyError(f"{source}: listen '{name}' mangler")
        for item in items:
            if isinstance(item, bool):
                # YAML reads yes/no/on/off without quotes as true/false
                raise VocabularyError(
                    f"{source}: listen '{name}' har et ord, YAML læser som {'ja' if item else 'nej'}-værdi. "
                    "Sæt anførselstegn om ord som yes, no, on og off, fx - \"yes\"")
        phrases[name] = PhraseTable({name: [str(i) for i in items]}, compounds=False)
    bare, bare_level = _without_time_frame(data, tables["urgency"], source)
    return Vocabulary(
        topics=tables["topics"], channels=tables["channels"], urgency=tables["urgency"],
        urgency_when_asked=tables["urgency_when_asked"], request_types=tables["request_types"], phrases=phrases,
        without_time_frame=bare, without_time_frame_level=bare_level,
    )


def _without_time_frame(data: Mapping[str, object], urgency: PhraseTable, source: str) -> Tuple[frozenset, Optional[str]]:
    items = data.get(WITHOUT_TIME_FRAME)
    if items is None:
        return frozenset(), None
    if not isinstance(items, list) or not items:
        raise VocabularyError(f"{source}: '{WITHOUT_TIME_FRAME}' skal være en liste af ord (eller slettes helt)")
    level_of = {phrase_key(phrase): value for value, _, phrase in urgency.entries}
    levels = set()
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)) or not tokens(str(item)):
            raise VocabularyError(f"{source}: listen '{WITHOUT_TIME_FRAME}' har et tomt ord")
        level = level_of.get(phrase_key(item))
        if level is None:
            raise VocabularyError(
                f"{source}: '{item}' under '{WITHOUT_TIME_FRAME}' skal også stå under en af hastegraderne i 'urgency'")
        levels.add(level)
    if len(levels) > 1:
        raise VocabularyError(
            f"{source}: ordene under '{WITHOUT_TIME_FRAME}' skal stå under én og samme hastegrad i 'urgency' "
            f"(de står under {', '.join(sorted(levels))})")
    return frozenset(phrase_key(item) for item in items), next(iter(levels))


def load_vocabulary(profile) -> Vocabulary:
    """The vocabulary of ``profile`` (``Profile.vocabulary()``: read again when the file changes)."""
    return profile.vocabulary()
