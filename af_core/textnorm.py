"""Danish text normalisation for matching leaders' questions against catalogues.

Leaders write fast: with or without æøå ("koersel", "fratraedelse"), with typos
("barsl", "vikr"), in compounds ("vikartimer", "sygerefusion") and in every
inflection ("blanketten", "ansættelser"). This module turns text into comparable
terms:

* ``fold`` – casefold, æ/ø/å -> ae/oe/aa (both spellings then meet), strip accents,
  "§" -> "paragraf".
* ``terms`` – folded words, stopwords dropped, each stemmed with the Snowball
  Danish stemmer (run on the folded word) and reduced to an æøå "skeleton", so
  "kørsel", "koersel" and "korsel" all give the same key.
* ``TermMatcher`` – matches a query term against a vocabulary: exact, compound
  parts (either side), and small edit distances for typos.

Pure functions, no I/O.
"""
from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from typing import Dict, Iterable, List, Sequence, Tuple

import snowballstemmer

_FOLD_TABLE = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "ä": "ae", "ö": "oe", "ü": "u"})
_WORD_RE = re.compile(r"[a-z0-9]+")

# Common Danish function words and chat filler (folded). Words that carry meaning in
# this domain ("op", "ned", "fri", "over") are deliberately NOT here.
STOPWORDS = frozenset(
    """
    a af al alle alt andet andre at bare blev blive bliver da dag de dem den denne der deres det dette dig din dine
    disse du eller en end er et for fordi fra faa faar gaar gerne god goere goer gjort gjorde ham han hans har have
    hej hende hendes her hos hun hvad hvem hvis hvor hvordan hvorfor hvornaar i ikke ind jeg jer jo kan kunne lige
    man mange med meget men mig min mine mit mon maa maaske naar nej noget nogen nogle nu og ogsaa om os paa sig sin
    sine sit skal skulle som saa sammen tak til tror under ud var vi vil ville vores vaeret
    ja okay ok hmm hey hallo hi venlig venlige hilsen mvh please
    ny nye nyt uge ugen uger naeste dage dagen to tre fire fem hold holde holder holdt arbejde arbejder arbejdet arbejdede
    blanket blanketten blanketter blanketterne skema skemaet skemaer formular formularen link linket
    finde finder findes fandt hjaelp hjaelpe hjaelper bruge bruger brugt brug spoerge spoergsmaal
    medarbejder medarbejderen medarbejdere medarbejderne medarb ansat ansatte kollega kollegaen
    regel reglen regler reglerne
    """.split()
)
# "regler" is generic in rule questions: every rule topic is about rules, and a title like
# "Regler for barsel" must not win on that word alone.
# "bruger" is generic in questions ("hvilken blanket bruger jeg");
# catalogue phrases that need them ("ny ansat") still match through their other words.

# A snowball stemmer keeps its working string on the instance, so one shared
# instance breaks when two actions stem at once (they run in asyncio.to_thread):
# every thread gets its own.
_local = threading.local()


def _stemmer() -> "snowballstemmer.basestemmer.BaseStemmer":
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = snowballstemmer.stemmer("danish")
    return stemmer


def fold(text: str) -> str:
    """Casefold and fold Danish letters to ASCII pairs; '§' becomes 'paragraf'."""
    text = (text or "").casefold().replace("§", " paragraf ")
    text = text.translate(_FOLD_TABLE)
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def words(text: str) -> List[str]:
    """Folded word tokens (letters and digits), in order."""
    return _WORD_RE.findall(fold(text))


@lru_cache(maxsize=20000)
def stem(word: str) -> str:
    """Danish stem of a folded word (digits are kept as they are).

    Snowball leaves verb nouns and participles apart ("udbetaling", "udbetalt",
    "udbetale"); a light second pass strips "-ing" and a final "-t" so they meet.
    """
    if word.isdigit() or len(word) <= 3:
        return word
    stemmed = _stemmer().stemWord(word)
    if stemmed.endswith("ing") and len(stemmed) - 3 >= 4:
        stemmed = stemmed[:-3]
    elif stemmed.endswith("t") and len(stemmed) - 1 >= 6:
        stemmed = stemmed[:-1]
    return stemmed


_SKELETON_RE = re.compile(r"ae|oe|aa")
_SKELETON_MAP = {"ae": "a", "oe": "o", "aa": "a"}


def skeleton(word: str) -> str:
    """Collapse folded æ/ø/å pairs to one letter, so "loen" (løn) meets "lon" (lon).

    Leaders without a Danish keyboard write ø as "oe" or "o", å as "aa" or "a", æ as "ae" or "a".
    """
    return _SKELETON_RE.sub(lambda m: _SKELETON_MAP[m.group(0)], word)


_STOP_SKELETONS = frozenset(skeleton(w) for w in STOPWORDS)


def is_stopword(word: str) -> bool:
    """``word`` is folded; it is a stopword in either spelling ("hvornaar", "hvornar").

    The skeleton is only used for words written without æøå pairs, so "ansaette" (ansætte)
    is not mistaken for the stopword "ansatte".
    """
    if word in STOPWORDS:
        return True
    return _SKELETON_RE.search(word) is None and skeleton(word) in _STOP_SKELETONS


@lru_cache(maxsize=20000)
def term(word: str) -> str:
    """The matching key of a folded word: its Danish stem, then the æøå skeleton."""
    return skeleton(stem(word))


# "ferieblanket", "barselsskemaet", "tillaegsskema": the form word adds nothing, the head is the matter.
_FORM_TAILS = ("blanketterne", "blanketten", "blanketter", "blanket", "skemaet", "skemaer", "skema",
               "formularen", "formular")


def _without_form_tail(word: str) -> str:
    for tail in _FORM_TAILS:
        if word.endswith(tail) and len(word) - len(tail) >= 3:
            return word[: -len(tail)]
    return word


def terms(text: str, keep_stopwords: bool = False) -> List[str]:
    """Matching keys of the content words of ``text``."""
    found = []
    for word in words(text):
        word = _without_form_tail(word)
        if keep_stopwords or not is_stopword(word):
            found.append(term(word))
    return found


def edit_distance(a: str, b: str, limit: int = 2) -> int:
    """Damerau-Levenshtein distance (adjacent swaps count 1), capped at ``limit + 1``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: List[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        row_min = cur[0]
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
            row_min = min(row_min, cur[j])
        if row_min > limit:
            return limit + 1
        prev2, prev = prev, cur
    return min(prev[-1], limit + 1)


# How much a match counts, relative to an exact one.
EXACT = 1.0
TYPO_1 = 0.8
TYPO_2 = 0.55
COMPOUND = 0.75
MIN_PART = 3  # shortest compound part we trust ("lon" = løn, "syg", "tid")
_LINKS = ("", "s", "e")  # Danish linking letters in compounds ("barsel-s-orlov")


class TermMatcher:
    """Matches query terms against a fixed vocabulary of stems.

    ``matches(term)`` returns ``[(vocab_stem, weight), ...]``: the exact stem, else
    compound parts / compounds containing the term, else typo neighbours.
    """

    def __init__(self, vocabulary: Iterable[str]):
        self.vocab = frozenset(v for v in vocabulary if v)
        self._long = sorted(v for v in self.vocab if len(v) >= MIN_PART)
        self._cache: Dict[str, Tuple[Tuple[str, float], ...]] = {}

    def matches(self, query_term: str) -> Tuple[Tuple[str, float], ...]:
        cached = self._cache.get(query_term)
        if cached is None:
            cached = tuple(self._compute(query_term))
            if len(self._cache) < 50000:
                self._cache[query_term] = cached
        return cached

    def _compute(self, term: str) -> List[Tuple[str, float]]:
        if term in self.vocab:
            found = [(term, EXACT)]
            # A query compound that is itself known still also counts for its parts
            # ("barselsorlov" is also about "orlov"), but less.
            found.extend((p, COMPOUND * 0.6) for p in self._parts(term) if p != term)
            return found
        found: Dict[str, float] = {}
        if len(term) >= MIN_PART:
            for part in self._parts(term):
                found[part] = max(found.get(part, 0.0), COMPOUND)
            if len(term) >= 5:
                for v in self._long:
                    # the query word is a part of a catalogue compound ("kørsel" in "kørselsgodtgørelse")
                    if len(v) > len(term) + 2 and (v.startswith(term) or v.endswith(term)):
                        found[v] = max(found.get(v, 0.0), COMPOUND * 0.8)
        if not found and len(term) >= 7:
            # an unknown compound that starts or ends with a known word ("barselsblanket")
            for v in self._long:
                if len(v) >= 5 and len(term) - len(v) >= 3 and (term.startswith(v) or term.endswith(v)):
                    found[v] = max(found.get(v, 0.0), COMPOUND * 0.8)
        if len(term) >= 4:
            # typos: one edit in short words, two in long ones; never between two short stems.
            # Also for compounds: a misspelt known compound ("barselsorlv") beats its parts.
            limit = 1 if len(term) < 8 else 2
            for v in self._long:
                if len(v) < 5:
                    continue
                d = edit_distance(term, v, limit)
                if d <= limit:
                    weight = TYPO_1 if d == 1 else TYPO_2
                    found[v] = max(found.get(v, 0.0), weight)
        return sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))

    def _parts(self, term: str) -> List[str]:
        """Known vocabulary stems that ``term`` is built from (head + link + tail)."""
        parts: List[str] = []
        n = len(term)
        for i in range(MIN_PART, n - MIN_PART + 1):
            head = term[:i]
            head_known = self._known_prefix(head)
            if not head_known:
                continue
            for link in _LINKS:
                if not term.startswith(link, i):
                    continue
                tail = term[i + len(link):]
                if len(tail) < 4:
                    continue
                tail_known = self._known(tail) or self._typo_neighbour(tail)
                if tail_known:
                    parts.extend([head_known, tail_known])
        # keep order, drop duplicates
        seen = set()
        return [p for p in parts if not (p in seen or seen.add(p))]

    def _typo_neighbour(self, word: str) -> str:
        """A vocabulary stem one edit away from ``word`` ("vikr" -> "vikar"), else ''."""
        if len(word) < 4:
            return ""
        for v in self._long:
            if len(v) >= 5 and edit_distance(word, v, 1) <= 1:
                return v
        return ""

    def _known(self, word: str) -> str:
        """The vocabulary stem for ``word`` (as is, or stemmed), else ''."""
        if word in self.vocab:
            return word
        stemmed = term(word)
        return stemmed if stemmed in self.vocab and len(stemmed) >= 3 else ""

    def _known_prefix(self, head: str) -> str:
        """``head`` is a known stem, or a known stem plus a dropped final 'e' ("syge" -> "syg")."""
        known = self._known(head)
        if known:
            return known
        if head.endswith("e") and head[:-1] in self.vocab and len(head) - 1 >= 3:
            return head[:-1]
        return ""


def vocabulary_of(texts: Sequence[str]) -> List[str]:
    """All stems of ``texts`` (stopwords included: the matcher decides what counts)."""
    out: List[str] = []
    for text in texts:
        out.extend(terms(text))
    return out
