"""The evaluation sets stay what they were when frozen, and the training data never holds them.

A set written by someone who never saw the training data measures how the assistant copes with
leaders' own words -- until its text leaks into data/. This test fails when a set file changes
after it was frozen, or when a training example copies (or nearly copies) one of its messages.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml

from af_core.textsim import cosine, ngrams, normalise
from devtools.eval_leaders import load_eval_set

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT / "tests" / "eval"
FROZEN = dict(line.split()[::-1] for line in (EVAL / "FROZEN.sha256").read_text().splitlines() if line.strip())
_ANNOTATION = re.compile(r"\[([^\]]*)\]\([^)]*\)|\[([^\]]*)\]\{[^}]*\}")


def training_examples():
    for path in sorted((ROOT / "data" / "nlu").glob("*.yml")):
        for item in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
            for line in str(item.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    yield _ANNOTATION.sub(lambda m: m.group(1) or m.group(2), line[2:])


def eval_texts():
    for name in sorted(FROZEN):
        data = yaml.safe_load((EVAL / name).read_text(encoding="utf-8")) or {}
        for message in data.get("messages") or []:
            yield name, str(message["text"])
        for conversation in data.get("conversations") or []:
            for turn in conversation["turns"]:
                yield name, str(turn)


@pytest.mark.parametrize("name", sorted(FROZEN))
def test_each_set_is_unchanged_since_it_was_frozen_and_valid(name):
    assert hashlib.sha256((EVAL / name).read_bytes()).hexdigest() == FROZEN[name]
    loaded = load_eval_set(EVAL / name)
    assert loaded.messages or loaded.conversations  # batch D holds conversations only


def pre_freeze_overlap():
    """Messages two authors wrote alike before the freeze (hashes: the sealed text stays unread)."""
    lines = (EVAL / "PRE_FREEZE_OVERLAP.sha256").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def test_no_evaluation_text_stands_in_the_training_data():
    allowed = pre_freeze_overlap()
    train = {normalise(t): ngrams(t) for t in training_examples()}
    long_train = [(key, grams) for key, grams in train.items() if len(key.split()) >= 8]
    copied, near = [], []
    for name, text in eval_texts():
        key = normalise(text)
        # Short phrases ("hvor langt er min sag") are written alike by people who never met:
        # only a longer message that stands in data/ is a copy.
        if len(key.split()) >= 8 and key in train and hashlib.sha256(key.encode()).hexdigest() not in allowed:
            copied.append(name)
        elif len(key.split()) >= 10:
            grams = ngrams(text)
            if any(cosine(grams, other) >= 0.9 for _, other in long_train):
                near.append(name)
    # Only counts per set: printing the text would show a sealed batch.
    assert not copied, f"copied into data/: {len(copied)} from {sorted(set(copied))}"
    assert not near, f"near copies in data/: {len(near)} from {sorted(set(near))}"
