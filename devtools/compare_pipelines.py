"""Compare NLU pipelines with stratified k-fold cross-validation and pick one by measurement.

Candidates: config.yml (what the assistant runs today) plus every config/pipelines/*.yml.
For each fold every candidate is trained on the other folds (NLU only, `nice`d, under
the shared training lock, cached by data + config hash) and parses the held-out fold
in-process. Predictions from all folds are pooled, so every example is tested once.

    python devtools/compare_pipelines.py                 # 3 folds, all candidates
    python devtools/compare_pipelines.py --folds 5 --only config.yml config/pipelines/b_rasa_default.yml

Prints a Markdown table for docs/nlu.md ("Valg af pipeline") and writes
results/pipeline-comparison.json. The suggested choice is the highest weighted intent
F1; candidates within 0.01 of the best count as equal, and then the one that trains
fastest wins (CPU is scarce: `make test` trains on every data change).

Run it rarely (it trains folds x candidates models); never in `make test`. It runs the
training itself under `nice -n 10`; do not wrap the script in another `nice` (the
trainings would end up at nice 19 and starve on a busy machine).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from devtools.nlu_eval import (
    DOMAIN_DIR,
    ROOT,
    SEED,
    Prediction,
    domain_bytes,
    entity_report,
    fingerprint,
    intent_report,
    latency_report,
    load_nlu,
    predict,
    rasa_version,
    response_report,
    train_nlu,
)

PIPELINE_DIR = ROOT / "config" / "pipelines"
WORK_DIR = ROOT / "var" / "pipeline-cv"
RESULTS_FILE = ROOT / "results" / "pipeline-comparison.json"
EQUAL_WITHIN = 0.01


def candidates(only: Optional[Sequence[str]] = None) -> list[Path]:
    paths = [ROOT / "config.yml", *sorted(PIPELINE_DIR.glob("*.yml"))]
    if only:
        wanted = {(ROOT / p).resolve() for p in only}
        paths = [p for p in paths if p.resolve() in wanted]
    return paths


def stratified_folds(data, folds: int, seed: int = SEED):
    """Yield (fold, train TrainingData, test examples) for a stratified k-fold split.

    Strata are the full intent (retrieval intents by their response key), so every
    fold sees every intent. Synonyms, regexes and lookup tables go to every train part.
    """
    from rasa.shared.nlu.training_data.training_data import TrainingData
    from sklearn.model_selection import StratifiedKFold

    examples = list(data.nlu_examples)
    labels = [e.get_full_intent() for e in examples]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (train_idx, test_idx) in enumerate(splitter.split(examples, labels)):
        train = TrainingData(
            [examples[i] for i in train_idx],
            entity_synonyms=data.entity_synonyms,
            regex_features=data.regex_features,
            lookup_tables=data.lookup_tables,
        )
        yield fold, train, [examples[i] for i in test_idx]


def label(config: Path) -> str:
    return str(config.relative_to(ROOT))


def describe(config: Path) -> str:
    """First comment line of a pipeline file: what makes this candidate different."""
    for line in config.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def summarise(config: Path, predictions: list[Prediction], train_seconds: list[float], sizes: list[int]) -> dict[str, Any]:
    intents = intent_report(predictions)
    return {
        "config": label(config),
        "description": describe(config),
        "weighted_f1": intents["weighted_f1"],
        "macro_f1": intents["macro_f1"],
        "accuracy": intents["accuracy"],
        "fallback_rate": intents["fallback_rate"],
        "understood_rate": intents["understood_rate"],
        "per_intent_f1": {k: v["f1"] for k, v in intents["per_intent"].items()},
        "entities": entity_report(predictions),
        "responses": response_report(predictions),
        "train_seconds_mean": round(statistics.mean(train_seconds), 1) if train_seconds else None,
        "latency": latency_report(predictions),
        "model_mb": round(statistics.mean(sizes) / 1e6, 1) if sizes else None,
        "examples": len(predictions),
    }


def choose(rows: list[dict[str, Any]]) -> dict[str, Any]:
    best = max(r["weighted_f1"] for r in rows)
    equal = [r for r in rows if r["weighted_f1"] >= best - EQUAL_WITHIN]
    return min(equal, key=lambda r: (r["train_seconds_mean"] or float("inf"), -r["weighted_f1"]))


def markdown(rows: list[dict[str, Any]], folds: int) -> str:
    lines = [
        f"| pipeline | vægtet F1 | makro-F1 | accuracy | fallback | entitet-F1 | træning (s/fold) | svartid median/p95 (ms) | model (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: -r["weighted_f1"]):
        ent = f"{r['entities']['f1']:.3f}" if r["entities"] else "–"
        lines.append(
            f"| `{r['config']}` | {r['weighted_f1']:.3f} | {r['macro_f1']:.3f} | {r['accuracy']:.3f} | "
            f"{r['fallback_rate']:.1%} | {ent} | {r['train_seconds_mean']} | "
            f"{r['latency']['median_ms']}/{r['latency']['p95_ms']} | {r['model_mb']} |"
        )
    lines.append(f"\n{folds}-fold stratificeret krydsvalidering, {rows[0]['examples']} eksempler, seed {SEED}.")
    return "\n".join(lines)


def write_result(out: Path, configs, predictions, train_seconds, sizes, folds: int, folds_done: int, started: float) -> dict[str, Any]:
    rows = [summarise(c, predictions[c], train_seconds[c], sizes[c]) for c in configs]
    result = {
        "folds": folds,
        "folds_done": folds_done,
        "seed": SEED,
        "examples": rows[0]["examples"],
        "intents": sorted({p.expected for p in predictions[configs[0]]}),
        "wall_seconds": round(time.monotonic() - started),
        "pipelines": rows,
        "chosen": choose(rows)["config"],
        "markdown": markdown(rows, folds) + ("" if folds_done == folds else f" Kun {folds_done} af {folds} folds kørt."),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--nice", type=int, default=10, help="nice level for training (CPU is shared)")
    parser.add_argument("--only", nargs="*", help="config files to compare (default: all candidates)")
    parser.add_argument("--out", type=Path, default=RESULTS_FILE)
    args = parser.parse_args(argv)

    configs = candidates(args.only)
    if len(configs) < 2:
        print("Mindst to pipelines skal sammenlignes.", file=sys.stderr)
        return 2
    data = load_nlu()
    common = [*domain_bytes(DOMAIN_DIR), rasa_version().encode()]
    predictions: dict[Path, list[Prediction]] = {c: [] for c in configs}
    train_seconds: dict[Path, list[float]] = {c: [] for c in configs}
    sizes: dict[Path, list[int]] = {c: [] for c in configs}
    started = time.monotonic()

    for fold, train, test_examples in stratified_folds(data, args.folds):
        train_yaml = train.nlu_as_yaml()
        for config in configs:
            name = "cv-" + fingerprint([train_yaml.encode(), config.read_bytes(), *common])
            fold_dir = WORK_DIR / name
            fold_dir.mkdir(parents=True, exist_ok=True)
            train_file = fold_dir / "train.yml"
            train_file.write_text(train_yaml, encoding="utf-8")
            model, seconds = train_nlu(config, train_file, name, out_dir=WORK_DIR, nice=args.nice)
            if seconds is None:  # cached: reuse the time measured when it was trained
                timing = fold_dir / "train_seconds.txt"
                seconds = float(timing.read_text()) if timing.exists() else None
            else:
                (fold_dir / "train_seconds.txt").write_text(f"{seconds:.1f}")
            if seconds is not None:
                train_seconds[config].append(seconds)
            sizes[config].append(model.stat().st_size)
            fold_predictions = predict(model, test_examples)
            predictions[config].extend(fold_predictions)
            f1 = intent_report(fold_predictions)["weighted_f1"]
            print(f"fold {fold + 1}/{args.folds} {label(config):40} vægtet F1 {f1:.3f}", flush=True)
        # Written after every fold, so an interrupted run still leaves the completed folds.
        result = write_result(args.out, configs, predictions, train_seconds, sizes, args.folds, fold + 1, started)

    table, chosen = result["markdown"], result["chosen"]
    chosen = next(r for r in result["pipelines"] if r["config"] == chosen)
    print()
    print(table)
    print(f"\nValg: {chosen['config']} (højeste vægtede F1; inden for {EQUAL_WITHIN} vinder den hurtigste træning)")
    print(f"Resultat gemt i {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
