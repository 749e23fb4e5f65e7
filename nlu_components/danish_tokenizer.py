"""A whitespace tokenizer that normalises Danish as leaders write it, before featurisation.

Leaders write "oensker en aendring", "medhjaelper", "barselsblanket", "teamsmøde",
"lønseddelspørgsmål" and "fratrædelsee". The featurisers of the pipeline read each token's
*lemma* (``use_lemma`` is on by default in Rasa's CountVectorsFeaturizer), so this tokenizer
keeps the leader's text and offsets untouched and sets the lemma to the word the training data
knows:

1. lower case;
2. æ, ø and å restored from ae/oe/aa where the restored word is known ("aendring" -> "ændring");
3. a known word within one edit (two for long words) for an unknown one ("fratrædelsee");
4. an unknown compound split into two known words, as two tokens with their own offsets
   ("barselsblanket" -> "barsel" + "blanket", "teamsmøde" -> "teams" + "møde").

The vocabulary is the words of the training data, learnt when the model is trained and stored
with it, so a model never depends on files beside it. Entity annotations are respected: a word
inside an annotated entity is never split.
"""
from __future__ import annotations

import itertools
import json
from collections import Counter
from typing import Any, Dict, Iterable, List, Optional, Set, Text, Tuple

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from af_core.textnorm import edit_distance

VOCABULARY_FILE = "vocabulary.json"
MIN_PART = 3  # shortest compound head we trust ("løn", "syg")
MIN_TAIL = 4
LINKS = ("", "s", "e")
_PAIRS = (("ae", "æ"), ("oe", "ø"), ("aa", "å"))


def restorations(word: str) -> Iterable[str]:
    """Every spelling of ``word`` with ae/oe/aa put back as æ/ø/å (at most 4 places)."""
    spots = []
    for ascii_pair, letter in _PAIRS:
        start = 0
        while (index := word.find(ascii_pair, start)) >= 0:
            spots.append((index, ascii_pair, letter))
            start = index + 1
    spots = sorted(spots)[:4]
    for choice in itertools.product((False, True), repeat=len(spots)):
        if not any(choice):
            continue
        out, last = [], 0
        for (index, pair, letter), use in zip(spots, choice):
            if not use or index < last:
                continue
            out.append(word[last:index])
            out.append(letter)
            last = index + len(pair)
        out.append(word[last:])
        yield "".join(out)


class Normaliser:
    """Maps a lower-case word to a known word of the vocabulary, or splits a compound."""

    def __init__(self, counts: Dict[str, int]):
        self.counts = dict(counts)
        self.known: Set[str] = {w for w, n in counts.items() if n >= 1}
        self._by_first: Dict[str, List[str]] = {}
        for word in self.known:
            if len(word) >= 5 and self.counts[word] >= 2:
                self._by_first.setdefault(word[0], []).append(word)
        self._cache: Dict[str, Tuple[str, ...]] = {}

    def word(self, word: str) -> Optional[str]:
        """The known word meant by ``word``, or None."""
        if word in self.known:
            return word
        for candidate in restorations(word):
            if candidate in self.known:
                return candidate
        if len(word) >= 5 and word.isalpha():
            limit = 2 if len(word) >= 9 else 1
            best: List[Tuple[int, int, str]] = []
            for candidate in self._by_first.get(word[0], ()):
                if abs(len(candidate) - len(word)) > limit:
                    continue
                distance = edit_distance(word, candidate, limit)
                if distance <= limit:
                    best.append((distance, -self.counts[candidate], candidate))
            if best:
                best.sort()
                if len(best) == 1 or best[0][:2] != best[1][:2]:
                    return best[0][2]
        return None

    def parts(self, word: str) -> Tuple[Tuple[str, int], ...]:
        """``(lemma, where it starts in word)`` for ``word``: one known word, two for a compound,
        or the word itself."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        known = self.word(word)
        result: Tuple[Tuple[str, int], ...] = ((known or word, 0),)
        if known is None and len(word) >= MIN_PART + MIN_TAIL and word.isalpha():
            split = self._split(word)
            if split:
                result = split
        if len(self._cache) < 100_000:
            self._cache[word] = result
        return result

    def _split(self, word: str) -> Optional[Tuple[Tuple[str, int], ...]]:
        best = None
        for i in range(MIN_PART, len(word) - MIN_TAIL + 1):
            head = self._exact(word[:i])
            if not head:
                continue
            for link in LINKS:
                if not word.startswith(link, i):
                    continue
                tail_text = word[i + len(link):]
                if len(tail_text) < MIN_TAIL:
                    continue
                tail = self._exact(tail_text)
                if tail:
                    score = len(head) + len(tail)
                    if best is None or score > best[0]:
                        best = (score, i + len(link), head, tail)
        if best is None:
            return None
        return (best[2], 0), (best[3], best[1])

    def _exact(self, text: str) -> Optional[str]:
        if text in self.known:
            return text
        for candidate in restorations(text):
            if candidate in self.known:
                return candidate
        return None


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=True)
class DanishNormalisingTokenizer(WhitespaceTokenizer, GraphComponent):
    """WhitespaceTokenizer + Danish normalisation of the lemmas (see the module docstring)."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {**WhitespaceTokenizer.get_default_config(), "split_compounds": True}

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 counts: Optional[Dict[str, int]] = None) -> None:
        super().__init__(config)
        self._model_storage = model_storage
        self._resource = resource
        self.normaliser = Normaliser(counts or {})

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "DanishNormalisingTokenizer":
        return cls(config, model_storage, resource)

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "DanishNormalisingTokenizer":
        counts: Dict[str, int] = {}
        try:
            with model_storage.read_from(resource) as directory:
                counts = json.loads((directory / VOCABULARY_FILE).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError):
            pass  # not trained yet: plain whitespace tokens
        return cls(config, model_storage, resource, counts)

    def train(self, training_data: TrainingData) -> Resource:
        counts: Counter = Counter()
        for example in training_data.training_examples:
            text = example.get(TEXT)
            if not text or text.startswith("/"):
                continue
            for token in WhitespaceTokenizer.tokenize(self, example, TEXT):
                word = token.text.lower()
                if len(word) >= 2 and not word.isdigit():
                    counts[word] += 1
        with self._model_storage.write_to(self._resource) as directory:
            (directory / VOCABULARY_FILE).write_text(json.dumps(dict(counts), ensure_ascii=False), encoding="utf-8")
        self.normaliser = Normaliser(dict(counts))
        return self._resource

    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        tokens = super().tokenize(message, attribute)
        if attribute != TEXT or not self.normaliser.known:
            return tokens
        protected = [(e.get("start", 0), e.get("end", 0)) for e in message.get(ENTITIES) or []]
        out: List[Token] = []
        for token in tokens:
            word = token.text.lower()
            lemmas = self.normaliser.parts(word)
            inside_entity = any(start < token.end and token.start < end for start, end in protected)
            if len(lemmas) == 2 and self._config.get("split_compounds", True) and not inside_entity:
                (head, _), (tail, cut) = lemmas
                out.append(Token(token.text[:cut], token.start, lemma=head))
                out.append(Token(token.text[cut:], token.start + cut, lemma=tail))
            else:
                out.append(Token(token.text, token.start, lemma=lemmas[0][0]))
        return out
