"""Held-out NLU evaluation: how well does the pipeline in config.yml understand leaders?

Splits ALL examples in data/nlu/ into train (80 %) and test (20 %), stratified by
intent with a fixed seed, trains an NLU-only model on the train part (skipped when a
model for the same split + config + domain already exists), parses every test
example in-process and reports per-intent precision/recall/F1, macro/weighted F1,
accuracy, how often the fallback would fire, entity F1 and parse latency.

    python devtools/nlu_eval.py                  # used by `make test`
    python devtools/nlu_eval.py --min-f1 0.9     # stricter gate
    python devtools/nlu_eval.py --config config/pipelines/b.yml

Writes results/nlu-eval.json. Exits 1 when the weighted intent F1 is below the
minimum (MIN_WEIGHTED_F1), so a data or config change that makes the assistant
understand leaders worse fails the build.

Like the FallbackClassifier-aware `rasa test nlu`, intent scores use the classifier's
own best guess (the fallback is undone); the share of test messages where the
fallback would have answered "det forstod jeg ikke" is reported separately.

The functions here are reused by devtools/compare_pipelines.py.
"""
from __future__ import annotations

import argparse
import asyncio
import fcntl
import hashlib
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
NLU_DIR = ROOT / "data" / "nlu"
DOMAIN_DIR = ROOT / "domain"
SPLIT_DIR = ROOT / "var" / "nlu-split"
MODEL_DIR = ROOT / "var" / "nlu-eval"
RESULTS_FILE = ROOT / "results" / "nlu-eval.json"
TRAIN_LOCK = ROOT / "var" / "train.lock"  # the same lock `make model` takes

# The gate. Set just below what the current data and pipeline reach (see docs/nlu.md,
# "NLU-evaluering"): 0.777 on 2026-11-30 after the third round of data fixes (216 test
# examples, 18 intents; the three rounds measured 0.768, 0.757, 0.777 - a data change moves
# the split and the figure by about 0.01-0.02). Raise it when the data gets better; never
# lower it without saying why in docs/nlu.md.
MIN_WEIGHTED_F1 = 0.76
TRAIN_FRACTION = 0.8
SEED = 42

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# ---------------------------------------------------------------- data and split


def load_nlu(path: Path = NLU_DIR):
    """All NLU training data in a folder (intents, entities, synonyms, regexes, lookups)."""
    from rasa.shared.nlu.training_data.loading import load_data

    return load_data(str(path))


def split(data, train_fraction: float = TRAIN_FRACTION, seed: int = SEED):
    """Stratified (per intent) train/test split; the same input always gives the same split."""
    return data.train_test_split(train_frac=train_fraction, random_seed=seed)


def fingerprint(parts: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def domain_bytes(domain_dir: Path = DOMAIN_DIR) -> list[bytes]:
    if domain_dir.is_file():
        return [domain_dir.read_bytes()]
    return [p.read_bytes() for p in sorted(domain_dir.rglob("*.yml"))]


def rasa_version() -> str:
    import rasa

    return rasa.__version__


def write_split(train, test, split_dir: Path) -> tuple[Path, Path]:
    split_dir.mkdir(parents=True, exist_ok=True)
    train_file, test_file = split_dir / "train.yml", split_dir / "test.yml"
    train_file.write_text(train.nlu_as_yaml(), encoding="utf-8")
    test_file.write_text(test.nlu_as_yaml(), encoding="utf-8")
    return train_file, test_file


# ---------------------------------------------------------------- training


def train_nlu(
    config: Path,
    train_file: Path,
    name: str,
    out_dir: Path = MODEL_DIR,
    domain: Path = DOMAIN_DIR,
    nice: int = 0,
) -> tuple[Path, Optional[float]]:
    """Train an NLU-only model unless `out_dir/name.tar.gz` exists.

    Returns the model path and the training wall time in seconds (None when cached).
    Holds var/train.lock while training so it never runs beside `make model`.
    """
    target = out_dir / f"{name}.tar.gz"
    if target.exists():
        return target, None
    out_dir.mkdir(parents=True, exist_ok=True)
    TRAIN_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(TRAIN_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target, None
        rasa = Path(sys.executable).with_name("rasa")
        command = [
            str(rasa), "train", "nlu",
            "--config", str(config), "--domain", str(domain), "--nlu", str(train_file),
            "--out", str(out_dir), "--fixed-model-name", name,
        ]
        if nice:
            command = ["nice", "-n", str(nice), *command]
        print(f"Træner NLU-model {name} ({config.name}) ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        result = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seconds = time.monotonic() - started
        if result.returncode != 0 or not target.exists():
            sys.stderr.write(result.stderr[-4000:])
            raise RuntimeError(f"NLU training failed for {config} (exit {result.returncode})")
    return target, seconds


# ---------------------------------------------------------------- prediction


@dataclass
class Prediction:
    text: str
    expected: str
    predicted: str
    confidence: float
    fallback: bool  # would the FallbackClassifier have answered "det forstod jeg ikke"?
    expected_entities: list[tuple[int, int, str]] = field(default_factory=list)
    predicted_entities: list[tuple[int, int, str]] = field(default_factory=list)
    expected_response: Optional[str] = None
    predicted_response: Optional[str] = None
    seconds: float = 0.0


def _entity_triples(entities: Sequence[dict[str, Any]]) -> list[tuple[int, int, str]]:
    return sorted((e["start"], e["end"], e["entity"]) for e in entities or [])


async def _predict(model_path: Path, examples: Sequence[Any]) -> list[Prediction]:
    from rasa.core.agent import Agent
    from rasa.nlu.classifiers import fallback_classifier
    from rasa.shared.nlu.constants import INTENT_RESPONSE_KEY

    agent = Agent.load(str(model_path))
    predictions = []
    for example in examples:
        text = example.get("text")
        started = time.perf_counter()
        result = await agent.parse_message(text)
        seconds = time.perf_counter() - started
        fallback = fallback_classifier.is_fallback_classifier_prediction(result)
        if fallback:
            result = fallback_classifier.undo_fallback_prediction(result)
        intent = result.get("intent") or {}
        expected_response = example.get(INTENT_RESPONSE_KEY)
        predicted_response = None
        if expected_response:
            selector = (result.get("response_selector") or {}).get(example.get("intent")) or {}
            predicted_response = (selector.get("response") or {}).get("intent_response_key")
        predictions.append(
            Prediction(
                text=text,
                expected=example.get("intent"),
                predicted=intent.get("name") or "",
                confidence=float(intent.get("confidence") or 0.0),
                fallback=fallback,
                expected_entities=_entity_triples(example.get("entities")),
                predicted_entities=_entity_triples(result.get("entities")),
                expected_response=expected_response,
                predicted_response=predicted_response,
                seconds=seconds,
            )
        )
    return predictions


def predict(model_path: Path, examples: Sequence[Any]) -> list[Prediction]:
    """Parse each example with the trained model, in-process (no server)."""
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # otherwise every parse is logged at debug level
    logging.disable(logging.WARNING)
    try:
        return asyncio.run(_predict(model_path, examples))
    finally:
        logging.disable(logging.NOTSET)


# ---------------------------------------------------------------- metrics


def intent_report(predictions: Sequence[Prediction]) -> dict[str, Any]:
    """Per-intent precision/recall/F1 plus accuracy, macro and weighted F1."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    expected = [p.expected for p in predictions]
    predicted = [p.predicted for p in predictions]
    labels = sorted(set(expected))
    precision, recall, f1, support = precision_recall_fscore_support(
        expected, predicted, labels=labels, zero_division=0
    )
    per_intent = {
        label: {
            "precision": round(float(precision[i]), 4),
            "recall": round(float(recall[i]), 4),
            "f1": round(float(f1[i]), 4),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }
    _, _, macro_f1, _ = precision_recall_fscore_support(
        expected, predicted, labels=labels, average="macro", zero_division=0
    )
    _, _, weighted_f1, _ = precision_recall_fscore_support(
        expected, predicted, labels=labels, average="weighted", zero_division=0
    )
    understood = sum(1 for p in predictions if p.expected == p.predicted and not p.fallback)
    return {
        "examples": len(predictions),
        "accuracy": round(float(accuracy_score(expected, predicted)), 4),
        "macro_f1": round(float(macro_f1), 4),
        "weighted_f1": round(float(weighted_f1), 4),
        # What a leader would notice: the fallback fires ("det forstod jeg ikke").
        "fallback_rate": round(sum(p.fallback for p in predictions) / max(len(predictions), 1), 4),
        # Right intent AND confident enough to act on it.
        "understood_rate": round(understood / max(len(predictions), 1), 4),
        "per_intent": per_intent,
    }


def entity_report(predictions: Sequence[Prediction]) -> Optional[dict[str, Any]]:
    """Exact-span entity precision/recall/F1 (None when the test set has no entities)."""
    expected = sum(len(p.expected_entities) for p in predictions)
    if expected == 0:
        return None
    found = sum(len(p.predicted_entities) for p in predictions)
    correct = sum(len(set(p.expected_entities) & set(p.predicted_entities)) for p in predictions)
    precision = correct / found if found else 0.0
    recall = correct / expected
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "support": expected}


def response_report(predictions: Sequence[Prediction]) -> Optional[dict[str, Any]]:
    """Accuracy of the response selector on retrieval intents (None when there are none)."""
    relevant = [p for p in predictions if p.expected_response]
    if not relevant:
        return None
    correct = sum(p.expected_response == p.predicted_response for p in relevant)
    return {"accuracy": round(correct / len(relevant), 4), "support": len(relevant)}


def latency_report(predictions: Sequence[Prediction]) -> dict[str, float]:
    times = sorted(p.seconds * 1000 for p in predictions) or [0.0]
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return {"median_ms": round(statistics.median(times), 1), "p95_ms": round(p95, 1)}


def errors(predictions: Sequence[Prediction]) -> list[dict[str, Any]]:
    return [
        {"text": p.text, "expected": p.expected, "predicted": p.predicted, "confidence": round(p.confidence, 3)}
        for p in predictions
        if p.expected != p.predicted
    ]


def format_table(report: dict[str, Any]) -> str:
    lines = [f"{'intent':24} {'præcision':>9} {'recall':>7} {'F1':>6} {'antal':>6}"]
    for intent, row in sorted(report["per_intent"].items(), key=lambda item: item[1]["f1"]):
        lines.append(
            f"{intent:24} {row['precision']:9.2f} {row['recall']:7.2f} {row['f1']:6.2f} {row['support']:6d}"
        )
    lines.append(
        f"accuracy {report['accuracy']:.3f} · macro-F1 {report['macro_f1']:.3f} · "
        f"vægtet F1 {report['weighted_f1']:.3f} · fallback {report['fallback_rate']:.1%} · "
        f"{report['examples']} testeksempler"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def evaluate(config: Path, nice: int = 0) -> dict[str, Any]:
    """Split, train (cached) and evaluate one pipeline on the held-out split."""
    data = load_nlu()
    train, test = split(data)
    train_yaml = train.nlu_as_yaml()
    name = "nlu-" + fingerprint(
        [train_yaml.encode(), config.read_bytes(), *domain_bytes(), rasa_version().encode()]
    )
    train_file, _ = write_split(train, test, SPLIT_DIR / name)
    model, train_seconds = train_nlu(config, train_file, name, nice=nice)
    predictions = predict(model, test.nlu_examples)
    return {
        "config": str(config.relative_to(ROOT)) if config.is_relative_to(ROOT) else str(config),
        "model": str(model.relative_to(ROOT)),
        "train_fraction": TRAIN_FRACTION,
        "seed": SEED,
        "train_examples": len(train.nlu_examples),
        "test_examples": len(test.nlu_examples),
        "train_seconds": round(train_seconds, 1) if train_seconds is not None else None,
        "intents": intent_report(predictions),
        "entities": entity_report(predictions),
        "responses": response_report(predictions),
        "latency": latency_report(predictions),
        "errors": errors(predictions),
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config.yml")
    parser.add_argument("--min-f1", type=float, default=MIN_WEIGHTED_F1, help="minimum weighted intent F1")
    parser.add_argument("--out", type=Path, default=RESULTS_FILE)
    args = parser.parse_args(argv)

    result = evaluate(args.config.resolve())
    result["min_weighted_f1"] = args.min_f1
    intents = result["intents"]
    result["passed"] = intents["weighted_f1"] >= args.min_f1

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")

    print(format_table(intents))
    if result["entities"]:
        e = result["entities"]
        print(f"entiteter: præcision {e['precision']:.2f} · recall {e['recall']:.2f} · F1 {e['f1']:.2f} ({e['support']})")
    if result["responses"]:
        r = result["responses"]
        print(f"svarvælger (FAQ): accuracy {r['accuracy']:.2f} ({r['support']})")
    print(f"svartid pr. besked: median {result['latency']['median_ms']} ms · p95 {result['latency']['p95_ms']} ms")
    for err in result["errors"][:15]:
        print(f"  fejl: {err['text']!r} forventet {err['expected']}, fik {err['predicted']} ({err['confidence']:.2f})")
    print(f"Resultat gemt i {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    if not result["passed"]:
        print(f"FEJL: vægtet F1 {intents['weighted_f1']:.3f} er under minimum {args.min_f1:.3f}.", file=sys.stderr)
        return 1
    print(f"OK: vægtet F1 {intents['weighted_f1']:.3f} ≥ minimum {args.min_f1:.3f}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
