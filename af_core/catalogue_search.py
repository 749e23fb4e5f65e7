"""Ranked keyword search over a small trainer-maintained catalogue (forms, FAQ topics).

Each entry is described by weighted texts (title, leaders' words, the "when" line).
A question is split into Danish terms (``af_core.textnorm``) and every entry gets a
score: for each query term, the best match (exact, compound part, typo) against the
entry's terms, weighted by how rare the term is in the catalogue (IDF) and by the field
it sits in. Multi-word phrases from the leaders' words that occur in full get a bonus.

``decide`` turns the ranked hits into what the bot should do: answer with one entry,
offer up to three, or say nothing fits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from af_core import textnorm


@dataclass(frozen=True)
class Field:
    text: str
    weight: float
    phrase: bool = False  # a leader's phrase: all of its words together earn a bonus


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    matched: Tuple[str, ...]  # catalogue terms that matched (for debugging and tests)


@dataclass(frozen=True)
class Decision:
    kind: str  # "sure", "unsure" or "none"
    hits: Tuple[Hit, ...]  # "sure": one hit; "unsure": 2-3 hits; "none": empty

    @property
    def best(self) -> Optional[Hit]:
        return self.hits[0] if self.hits else None


PHRASE_BONUS = 0.6


class CatalogueIndex:
    """An in-memory index over ``entries``: ``[(entry_id, [Field, ...]), ...]``."""

    def __init__(self, entries: Sequence[Tuple[str, Sequence[Field]]]):
        self.ids: List[str] = [entry_id for entry_id, _ in entries]
        self._weights: Dict[str, Dict[str, float]] = {}
        self._phrases: Dict[str, List[Tuple[Tuple[str, ...], float]]] = {}
        df: Dict[str, int] = {}
        for entry_id, fields in entries:
            weights: Dict[str, float] = {}
            phrases: List[Tuple[Tuple[str, ...], float]] = []
            for field in fields:
                field_terms = textnorm.terms(field.text)
                for term in field_terms:
                    weights[term] = max(weights.get(term, 0.0), field.weight)
                if field.phrase and len(set(field_terms)) >= 2:
                    phrases.append((tuple(dict.fromkeys(field_terms)), field.weight))
            self._weights[entry_id] = weights
            self._phrases[entry_id] = phrases
            for term in weights:
                df[term] = df.get(term, 0) + 1
        n = max(len(self.ids), 1)
        self.idf: Dict[str, float] = {t: math.log(1.0 + n / d) for t, d in df.items()}
        self.matcher = textnorm.TermMatcher(df.keys())

    def search(self, text: str, limit: int = 5) -> List[Hit]:
        """Entries ranked by score (best first); entries with score 0 are left out."""
        query = list(dict.fromkeys(textnorm.terms(text)))
        if not query:
            return []
        matches = {q: self.matcher.matches(q) for q in query}
        hits: List[Hit] = []
        for order, entry_id in enumerate(self.ids):
            weights = self._weights[entry_id]
            score = 0.0
            matched_terms: List[str] = []
            for q in query:
                best = 0.0
                best_term = ""
                for vocab_term, quality in matches[q]:
                    field_weight = weights.get(vocab_term)
                    if field_weight:
                        value = quality * field_weight * self.idf[vocab_term]
                        if value > best:
                            best, best_term = value, vocab_term
                if best:
                    score += best
                    matched_terms.append(best_term)
            if not score:
                continue
            present = set(matched_terms)
            for phrase, field_weight in self._phrases[entry_id]:
                if all(term in present for term in phrase):
                    score += PHRASE_BONUS * field_weight * sum(self.idf[t] for t in phrase) / len(phrase)
            hits.append(Hit(entry_id, round(score, 4), tuple(matched_terms)))
        order_of = {entry_id: i for i, entry_id in enumerate(self.ids)}
        hits.sort(key=lambda h: (-h.score, order_of[h.id]))
        return hits[:limit]


def decide(
    hits: Sequence[Hit],
    min_score: float,
    sure_ratio: float,
    offer_ratio: float = 0.5,
    max_offers: int = 3,
) -> Decision:
    """What to do with ranked ``hits``.

    - "none": no hit reaches ``min_score``.
    - "sure": the best hit beats the runner-up by ``sure_ratio`` (or is alone).
    - "unsure": up to ``max_offers`` hits scoring at least ``offer_ratio`` of the best.
    """
    if not hits or hits[0].score < min_score:
        return Decision("none", ())
    top = hits[0]
    if len(hits) == 1 or top.score >= sure_ratio * hits[1].score:
        return Decision("sure", (top,))
    offers = [h for h in hits[:max_offers] if h.score >= offer_ratio * top.score]
    if len(offers) < 2:
        return Decision("sure", (top,))
    return Decision("unsure", tuple(offers))
