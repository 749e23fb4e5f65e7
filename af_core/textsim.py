"""Small text-similarity helpers for the trainer tools (review, add examples).

No heavy dependencies: character n-gram profiles of Danish-folded text
(casefold, æ/ø/å -> ae/oe/aa, punctuation dropped, whitespace collapsed),
cosine similarity between them, and a greedy clustering.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Dict, Iterable, List, Sequence, Tuple

from af_core.textnorm import fold

_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalise(text: str) -> str:
    """The form two texts are compared in: folded, punctuation gone, single spaces."""
    return " ".join(_NON_WORD.sub(" ", fold(text or "")).split())


def ngrams(text: str, low: int = 2, high: int = 4) -> Counter:
    """Character n-grams of the normalised text, words padded with spaces."""
    norm = normalise(text)
    grams: Counter = Counter()
    for word in norm.split():
        padded = f" {word} "
        for n in range(low, high + 1):
            for i in range(max(len(padded) - n + 1, 1)):
                grams[padded[i : i + n]] += 1
    return grams


def cosine(a: Counter, b: Counter) -> float:
    if not a or not b:
        return 0.0
    if len(a) > len(b):
        a, b = b, a
    dot = sum(count * b.get(gram, 0) for gram, count in a.items())
    if not dot:
        return 0.0
    return dot / (math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values())))


def similarity(a: str, b: str) -> float:
    """Cosine similarity of two texts' character n-grams (1.0 = same normalised text)."""
    if normalise(a) == normalise(b):
        return 1.0
    return cosine(ngrams(a), ngrams(b))


def cluster(texts: Sequence[str], threshold: float = 0.5) -> List[List[int]]:
    """Greedy single-pass clustering: each text joins the first cluster whose
    first member is at least ``threshold`` similar, else starts a new one.

    Texts are visited in the given order (put the most frequent first), so a
    cluster is named by its most frequent member. Returns lists of indices.
    """
    profiles = [ngrams(t) for t in texts]
    clusters: List[List[int]] = []
    for i, profile in enumerate(profiles):
        for members in clusters:
            if cosine(profile, profiles[members[0]]) >= threshold:
                members.append(i)
                break
        else:
            clusters.append([i])
    return clusters


class IntentIndex:
    """Training examples by intent, for "which intent is this text closest to?"."""

    def __init__(self, examples: Iterable[Tuple[str, str]]):
        self.by_intent: Dict[str, List[Tuple[str, str, Counter]]] = {}
        self.normalised: Dict[str, str] = {}  # normalised text -> intent
        for text, intent in examples:
            norm = normalise(text)
            self.by_intent.setdefault(intent, []).append((text, norm, ngrams(text)))
            self.normalised.setdefault(norm, intent)

    def nearest(self, text: str) -> Tuple[str, str, float]:
        """(intent, example, similarity) of the single most similar example."""
        profile = ngrams(text)
        best = ("", "", 0.0)
        for intent, rows in self.by_intent.items():
            for original, _, grams in rows:
                score = cosine(profile, grams)
                if score > best[2]:
                    best = (intent, original, score)
        return best

    def intent_scores(self, text: str, k: int = 3) -> Dict[str, float]:
        """Mean similarity to each intent's k most similar examples."""
        profile = ngrams(text)
        scores = {}
        for intent, rows in self.by_intent.items():
            top = sorted((cosine(profile, grams) for _, _, grams in rows), reverse=True)[:k]
            scores[intent] = sum(top) / len(top) if top else 0.0
        return scores

    def add(self, text: str, intent: str) -> None:
        norm = normalise(text)
        self.by_intent.setdefault(intent, []).append((text, norm, ngrams(text)))
        self.normalised.setdefault(norm, intent)
