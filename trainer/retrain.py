"""`make retrain`: train a candidate model, test it, and say in plain Danish whether it is
better or worse than the model in service — before anything is put into service.

1. `rasa data validate` (stops on errors).
2. Trains the model for the current data (scripts/model.py: hash-named, under the
   training lock). Rasa's training cache reuses every part whose input did not
   change (e.g. the dialogue policies when only NLU examples were added).
3. Rasa test stories (tests/stories) against the candidate (skip with --skip-stories).
4. The held-out NLU evaluation of devtools/nlu_eval.py (same split, seed and
   figures) for the candidate's data; stored next to the model as
   models/<model>.eval.json, so later candidates are compared with it.
5. Compares with the model in service: weighted F1 on each one's held-out split,
   and — fairer — right answers on the test messages both were tested on.
   Writes models/kandidat.json; `make activate` refuses a candidate that was
   not approved here (unless FORCE=1).

    python trainer/retrain.py [--config config.yml] [--skip-stories]

Exit code 0 when the candidate may go into service, 1 when not (or on errors).
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from trainer import serving  # noqa: E402

# Differences in weighted F1 smaller than this are noise (about one test message in a hundred).
TOLERANCE = 0.01
# An intent whose F1 drops more than this is named in the verdict.
INTENT_DROP = 0.1
# Two trainings never answer every test message alike: a few examples more move DIET's
# boundaries, and some messages flip each way. The paired verdict counts the messages that
# got better and worse and calls a difference real only when a sign test (McNemar's exact
# test) says chance would rarely give it: one-sided p below this.
PAIRED_P = 0.05


def _one_sided_p(wins: int, losses: int) -> float:
    """P(at least `losses` of the wins+losses flips go the wrong way) if each flip were a coin toss.
    math.comb is exact for these sizes; scipy.stats.binomtest would give the same number."""
    n = wins + losses
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(losses, n + 1)) / 2 ** n


def _rasa() -> str:
    return str(Path(sys.executable).with_name("rasa"))


def validation(root: Path) -> tuple:
    """(ok, the end of rasa data validate's output) for root's data, domain and config."""
    result = subprocess.run(
        [_rasa(), "data", "validate", "--domain", "domain", "--data", "data", "--config", "config.yml", "--quiet"],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    return result.returncode == 0, result.stdout[-3000:]


def validate(root: Path) -> bool:
    ok, output = validation(root)
    if not ok:
        print(output)
    return ok


def train(root: Path) -> Path:
    """Train (if needed) the model for root's current data (scripts/model.py: hash name, root's training lock)."""
    with serving.project(root) as model:
        return model.ensure()


def story_tests(root: Path, model_path: Path) -> bool:
    stories = root / "tests" / "stories"
    if not stories.is_dir():
        return True
    result = subprocess.run(
        [_rasa(), "test", "core", "--model", str(model_path), "--stories", str(stories),
         "--fail-on-prediction-errors", "--out", str(root / "results" / "stories-kandidat"), "--quiet"],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    if result.returncode != 0:
        print(result.stdout[-3000:])
    return result.returncode == 0


def evaluate(root: Path, config: Path, min_f1: Optional[float] = None) -> Dict[str, Any]:
    """devtools/nlu_eval.py's held-out evaluation for root's data (its split, training cache and figures)."""
    from devtools import nlu_eval

    data = nlu_eval.load_nlu(root / "data" / "nlu")
    train_part, test_part = nlu_eval.split(data)
    name = "nlu-" + nlu_eval.fingerprint(
        [train_part.nlu_as_yaml().encode(), config.read_bytes(), *nlu_eval.domain_bytes(root / "domain"),
         nlu_eval.rasa_version().encode()]
    )
    train_file, _ = nlu_eval.write_split(train_part, test_part, root / "var" / "nlu-split" / name)
    saved_lock = nlu_eval.TRAIN_LOCK
    nlu_eval.TRAIN_LOCK = root / "var" / "train.lock"  # each checkout trains under its own lock
    try:
        model, _ = nlu_eval.train_nlu(config, train_file, name, out_dir=root / "var" / "nlu-eval",
                                      domain=root / "domain")
    finally:
        nlu_eval.TRAIN_LOCK = saved_lock
    predictions = nlu_eval.predict(model, test_part.nlu_examples)
    return {
        "config": config.name,
        "test_examples": len(predictions),
        "min_weighted_f1": nlu_eval.MIN_WEIGHTED_F1 if min_f1 is None else min_f1,
        "intents": nlu_eval.intent_report(predictions),
        "errors": nlu_eval.errors(predictions),
        # every test message, so two models can be compared on the messages both were tested on
        "predictions": [
            {"text": p.text, "expected": p.expected, "predicted": p.predicted, "fallback": p.fallback}
            for p in predictions
        ],
    }


def _correct(row: Dict[str, Any]) -> bool:
    return row["expected"] == row["predicted"]


def compare(candidate: Dict[str, Any], serving_eval: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The verdict, as data: kind ('better', 'same', 'worse', 'first', 'below_gate') and Danish lines."""
    cand = candidate["intents"]
    gate = candidate.get("min_weighted_f1", 0.0)
    lines = [
        f"Den nye model forstår {cand['accuracy']:.0%} af testbeskederne rigtigt "
        f"(vægtet F1 {cand['weighted_f1']:.3f}; kravet er mindst {gate:.2f})."
    ]
    if cand["weighted_f1"] < gate:
        lines.append("Den er UNDER kravet. Sæt den ikke i drift.")
        return {"kind": "below_gate", "approved": False, "lines": lines}
    if not serving_eval:
        lines.append("Modellen i drift er ikke målt på samme måde, så jeg kan ikke sammenligne. "
                     "Den nye model lever op til kravet.")
        return {"kind": "first", "approved": True, "lines": lines}
    old = serving_eval["intents"]
    delta = cand["weighted_f1"] - old["weighted_f1"]
    lines.append(
        f"Modellen i drift forstod {old['accuracy']:.0%} (vægtet F1 {old['weighted_f1']:.3f})."
    )
    old_rows = {r["text"]: r for r in serving_eval.get("predictions", [])}
    shared = [r for r in candidate.get("predictions", []) if r["text"] in old_rows]
    paired_worse = paired_better = False
    if shared:
        new_right = sum(_correct(r) for r in shared)
        old_right = sum(_correct(old_rows[r["text"]]) for r in shared)
        gains = sum(_correct(r) and not _correct(old_rows[r["text"]]) for r in shared)
        losses = sum(_correct(old_rows[r["text"]]) and not _correct(r) for r in shared)
        paired_worse = _one_sided_p(gains, losses) < PAIRED_P
        paired_better = _one_sided_p(losses, gains) < PAIRED_P
        lines.append(
            f"På de {len(shared)} testbeskeder, begge modeller er testet på, svarer den nye rigtigt på "
            f"{new_right} og den gamle på {old_right}: {gains} blev rigtige, {losses} blev forkerte."
        )
        if (gains or losses) and not (paired_worse or paired_better):
            lines.append("Så få ændringer sker også, når man træner to gange på næsten de samme data.")
    worse_intents = [
        name for name, row in cand["per_intent"].items()
        if name in old["per_intent"] and old["per_intent"][name]["f1"] - row["f1"] > INTENT_DROP
    ]
    if worse_intents:
        lines.append("Den forstår dårligere: " + ", ".join(sorted(worse_intents)) + ".")
    if paired_worse or (delta < -TOLERANCE and not paired_better):
        lines.append("Samlet: den nye model er DÅRLIGERE end den i drift. Sæt den ikke i drift – "
                     "se på de eksempler, du har tilføjet.")
        return {"kind": "worse", "approved": False, "lines": lines}
    if paired_better or delta > TOLERANCE:
        lines.append("Samlet: den nye model er BEDRE end den i drift.")
        return {"kind": "better", "approved": True, "lines": lines}
    lines.append("Samlet: den nye model er LIGE SÅ GOD som den i drift (forskellen er så lille, "
                 "at den kan skyldes tilfældigheder).")
    return {"kind": "same", "approved": True, "lines": lines}


def write_candidate(root: Path, info: Dict[str, Any]) -> None:
    """models/kandidat.json: the model `make activate` (and the workbench) may put into service."""
    (root / "models" / serving.CANDIDATE).write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Træn en ny model og sammenlign den med den i drift.")
    parser.add_argument("--config", type=Path, help="pipeline (standard: config.yml)")
    parser.add_argument("--skip-stories", action="store_true", help="spring testsamtalerne over")
    parser.add_argument("--min-f1", type=float, help="mindste vægtede F1 (standard: som make test)")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root = args.root.resolve()
    config = (args.config or root / "config.yml").resolve()

    print("1/4 Tjekker træningsdata ...", flush=True)
    if not validate(root):
        print("FEJL: træningsdata har fejl (se ovenfor). Ret dem og kør make retrain igen.", file=sys.stderr)
        return 1
    print("2/4 Træner den nye model (det kan tage nogle minutter) ...", flush=True)
    candidate = train(root)
    serving_model = serving.guess_in_service(root, exclude=candidate)
    if serving.in_service(root) is None and serving_model is not None:
        # From now on `make run` starts what is in service, not whatever the data trains.
        serving._write_name(root / "models" / serving.POINTER, serving_model.name)
        serving.log(root, f"i drift: {serving_model.name} (fastholdt ved første make retrain)")
    stories_ok = True
    if args.skip_stories:
        print("3/4 Testsamtaler sprunget over.", flush=True)
    else:
        print("3/4 Kører testsamtalerne ...", flush=True)
        stories_ok = story_tests(root, candidate)
    print("4/4 Måler, hvor godt den nye model forstår beskeder, den ikke er trænet på ...", flush=True)
    figures = evaluate(root, config, args.min_f1)
    figures["model"] = candidate.name
    serving.eval_path(candidate).write_text(json.dumps(figures, ensure_ascii=False, indent=2), encoding="utf-8")

    same_model = serving_model is not None and serving_model.name == candidate.name
    verdict = compare(figures, serving.load_eval(serving_model))
    if same_model:
        verdict = {"kind": "same_model", "approved": True, "lines": verdict["lines"][:1] + [
            "Det er den samme model som den i drift: træningsdata er ikke ændret siden."]}
    if not stories_ok:
        verdict["approved"] = False
        verdict["lines"].append("Nogle testsamtaler fejlede (se ovenfor), så den skal ikke i drift endnu.")
    info = {
        "model": candidate.name,
        "in_service": serving_model.name if serving_model else None,
        "kind": verdict["kind"],
        "approved": verdict["approved"],
        "verdict": " ".join(verdict["lines"]),
    }
    write_candidate(root, info)

    print()
    print(f"Ny model: {candidate.name}")
    print(f"I drift:  {serving_model.name if serving_model else 'ingen'}")
    for line in verdict["lines"]:
        print(line)
    if same_model:
        return 0
    if verdict["approved"]:
        print("Vil du sætte den i drift, så kør: make activate")
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
