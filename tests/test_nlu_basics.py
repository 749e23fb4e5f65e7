"""NLU training data quality and the held-out evaluation harness (no model training here)."""
from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml

from devtools import compare_pipelines, nlu_eval
from devtools.nlu_eval import Prediction

ROOT = Path(__file__).resolve().parent.parent
BASIC_INTENTS = {
    "greet", "goodbye", "thank", "affirm", "deny", "bot_challenge",
    "out_of_scope", "restart", "ask_capabilities", "human_handoff",
}
MIN_EXAMPLES = 25


def _examples_by_intent() -> dict[str, list[str]]:
    examples: dict[str, list[str]] = defaultdict(list)
    for path in sorted((ROOT / "data" / "nlu").glob("*.yml")):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
            if "intent" not in block:
                continue
            intent = block["intent"].split("/")[0]
            for line in block.get("examples", "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    # strip entity annotations: [text](entity) / [text]{"entity": ...}
                    text = re.sub(r"\[([^\]]*)\](\([^)]*\)|\{[^}]*\})", r"\1", line[2:])
                    examples[intent].append(text)
    return examples


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\wæøå ]", " ", text.lower()).split())


def test_every_basic_intent_has_enough_examples():
    examples = _examples_by_intent()
    counts = {intent: len(examples.get(intent, [])) for intent in BASIC_INTENTS}
    assert all(n >= MIN_EXAMPLES for n in counts.values()), counts


def test_every_intent_in_nlu_data_has_enough_examples():
    counts = {intent: len(texts) for intent, texts in _examples_by_intent().items()}
    too_few = {intent: n for intent, n in counts.items() if n < MIN_EXAMPLES}
    assert not too_few, f"intents with fewer than {MIN_EXAMPLES} examples: {too_few}"


def test_no_example_is_labelled_with_two_intents():
    owners: dict[str, set[str]] = defaultdict(set)
    for intent, texts in _examples_by_intent().items():
        for text in texts:
            owners[_normalise(text)].add(intent)
    conflicts = {text: sorted(intents) for text, intents in owners.items() if len(intents) > 1}
    assert not conflicts, conflicts


def test_basics_examples_are_not_duplicated_within_an_intent():
    examples = _examples_by_intent()
    duplicates = {
        intent: [t for t, n in Counter(_normalise(t) for t in examples[intent]).items() if n > 1]
        for intent in BASIC_INTENTS
    }
    assert not any(duplicates.values()), duplicates


def test_basics_cover_leader_spelling_without_aeoeaa():
    texts = [t for intent in BASIC_INTENTS for t in _examples_by_intent()[intent]]
    ascii_forms = [t for t in texts if re.search(r"\b\w*(ae|oe|aa)\w*\b", t) and not re.search("[æøå]", t)]
    assert len(ascii_forms) >= 10, ascii_forms


# ---------------------------------------------------------------- the evaluation harness


@pytest.fixture(scope="module")
def nlu_data():
    return nlu_eval.load_nlu()


def test_split_is_deterministic_and_stratified(nlu_data):
    train1, test1 = nlu_eval.split(nlu_data)
    train2, test2 = nlu_eval.split(nlu_data)
    assert train1.nlu_as_yaml() == train2.nlu_as_yaml()
    assert sorted(e.get("text") for e in test1.nlu_examples) == sorted(e.get("text") for e in test2.nlu_examples)
    train_intents = {e.get("intent") for e in train1.nlu_examples}
    test_intents = {e.get("intent") for e in test1.nlu_examples}
    assert test_intents == train_intents == {e.get("intent") for e in nlu_data.nlu_examples}
    share = len(test1.nlu_examples) / len(nlu_data.nlu_examples)
    assert 0.15 <= share <= 0.25
    train_texts = {e.get("text") for e in train1.nlu_examples}
    assert not any(e.get("text") in train_texts for e in test1.nlu_examples), "test examples leaked into train"


def test_folds_test_every_example_once(nlu_data):
    seen: Counter = Counter()
    for _, train, test in compare_pipelines.stratified_folds(nlu_data, 3):
        train_texts = {e.get("text") for e in train.nlu_examples}
        assert not any(e.get("text") in train_texts for e in test)
        assert {e.get("intent") for e in test} == {e.get("intent") for e in nlu_data.nlu_examples}
        seen.update(e.get("text") for e in test)
    assert sum(seen.values()) == len(nlu_data.nlu_examples)


def _p(expected, predicted, fallback=False, entities=(), predicted_entities=()):
    return Prediction(text=f"{expected}->{predicted}", expected=expected, predicted=predicted, confidence=0.9,
                      fallback=fallback, expected_entities=list(entities), predicted_entities=list(predicted_entities))


def test_intent_report_figures():
    predictions = [_p("greet", "greet"), _p("greet", "greet"), _p("greet", "thank"),
                   _p("thank", "thank", fallback=True), _p("deny", "affirm")]
    report = nlu_eval.intent_report(predictions)
    assert report["accuracy"] == pytest.approx(3 / 5, abs=1e-3)
    assert report["per_intent"]["greet"]["recall"] == pytest.approx(2 / 3, abs=1e-3)
    assert report["per_intent"]["thank"]["precision"] == pytest.approx(1 / 2, abs=1e-3)
    assert report["per_intent"]["deny"]["f1"] == 0
    assert "affirm" not in report["per_intent"]  # only intents that occur in the test set
    # weighted by support: greet 3 x 0.8, thank 1 x 2/3, deny 1 x 0
    assert report["weighted_f1"] == pytest.approx((3 * 0.8 + 2 / 3) / 5, abs=1e-3)
    assert report["fallback_rate"] == pytest.approx(1 / 5, abs=1e-3)
    assert report["understood_rate"] == pytest.approx(2 / 5, abs=1e-3)


def test_entity_report_counts_exact_spans():
    predictions = [_p("inform", "inform", entities=[(0, 4, "date")], predicted_entities=[(0, 4, "date")]),
                   _p("inform", "inform", entities=[(5, 9, "time")], predicted_entities=[(5, 8, "time")])]
    report = nlu_eval.entity_report(predictions)
    assert report == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert nlu_eval.entity_report([_p("greet", "greet")]) is None


@pytest.mark.parametrize("weighted_f1, exit_code", [(0.80, 1), (0.90, 0)])
def test_gate_fails_below_minimum_and_writes_results(monkeypatch, tmp_path, weighted_f1, exit_code):
    fake = {
        "intents": {**nlu_eval.intent_report([_p("greet", "greet"), _p("thank", "thank")]), "weighted_f1": weighted_f1},
        "entities": None, "responses": None, "latency": {"median_ms": 1.0, "p95_ms": 2.0}, "errors": [],
    }
    monkeypatch.setattr(nlu_eval, "evaluate", lambda config: dict(fake))
    out = tmp_path / "nlu-eval.json"
    assert nlu_eval.main(["--min-f1", "0.85", "--out", str(out)]) == exit_code
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["passed"] is (exit_code == 0)
    assert written["min_weighted_f1"] == 0.85


def test_choice_prefers_faster_pipeline_only_when_scores_are_equal():
    rows = [
        {"config": "a", "weighted_f1": 0.90, "train_seconds_mean": 100},
        {"config": "b", "weighted_f1": 0.895, "train_seconds_mean": 40},
        {"config": "c", "weighted_f1": 0.85, "train_seconds_mean": 10},
    ]
    assert compare_pipelines.choose(rows)["config"] == "b"
    rows[1]["weighted_f1"] = 0.87
    assert compare_pipelines.choose(rows)["config"] == "a"
