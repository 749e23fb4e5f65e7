"""Held-out evaluation of form retrieval: does a leader's question end at the right form?

Every question in tests/heldout/form_questions.yml goes through the same path as in the
chat: the trained model's NLU parse (intent, incl. the fallback threshold) and then the
action the intent leads to (``action_find_form``, or ``action_answer_faq``, which falls back
to a form). The forms the bot shows, in order, are its ranking:

* one clear form: that form (also when a rule answer links its related form, or a list
  of rule topics ends with the one form that clearly fits);
* unsure: the two or three forms offered as buttons;
* anything else (another intent, "det forstod jeg ikke", a rule answer, no fit): nothing.

top-1 = the first form shown is the expected one; top-3 = it is among those shown.
The search alone (ignoring the intent) is reported too, to tell NLU misses from search misses.

    python scripts/eval_forms.py                 # used by `make test`; needs the trained model
    python scripts/eval_forms.py --search-only   # no model: the catalogue search alone

Writes results/forms-eval.json. Exits 1 when top-1 is below MIN_TOP1 (0.90).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HELDOUT = ROOT / "tests" / "heldout" / "form_questions.yml"
RESULTS_FILE = ROOT / "results" / "forms-eval.json"
MIN_TOP1 = 0.90

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load_questions(path: Path = HELDOUT) -> List[Dict[str, str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    questions = [{"text": str(q["text"]), "form": str(q["form"])} for q in data["questions"]]
    if not questions:
        raise SystemExit(f"{path}: ingen spørgsmål")
    return questions


def bot_ranking(intent: Optional[str], text: str, profile) -> Dict[str, Any]:
    """The forms the bot shows for ``text`` once NLU has said ``intent`` (None: search only)."""
    from actions import faq, forms_lookup

    if intent is None or intent == "find_form":
        plan = forms_lookup.plan_form_reply(text, None, profile)
    elif intent == "ask_question":
        plan = faq.plan_faq_reply(text, None, profile)
    else:
        return {"kind": f"intent:{intent}", "forms": []}
    if plan.get("form_id"):
        forms = [plan["form_id"]]
    elif plan.get("related_forms"):  # a rule answer that links its form(s)
        forms = list(plan["related_forms"])
    elif plan.get("offered_forms"):  # rule topics offered as buttons, plus the one clear form
        forms = list(plan["offered_forms"])
    else:
        forms = list(plan.get("candidates") or []) if plan["kind"] == "unsure" and "form_id" in plan else []
    return {"kind": plan["kind"], "forms": forms}


async def _parse_all(model_path: Path, texts: Sequence[str]) -> List[Dict[str, Any]]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model_path))
    return [await agent.parse_message(text) for text in texts]


def parse_all(model_path: Path, texts: Sequence[str]) -> List[Dict[str, Any]]:
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)
    logging.disable(logging.WARNING)
    try:
        return asyncio.run(_parse_all(model_path, texts))
    finally:
        logging.disable(logging.NOTSET)


def score(rows: Sequence[Dict[str, Any]], key: str) -> Dict[str, float]:
    n = len(rows)
    top1 = sum(1 for r in rows if r[key][:1] == [r["expected"]])
    top3 = sum(1 for r in rows if r["expected"] in r[key][:3])
    return {"top1": round(top1 / n, 4), "top3": round(top3 / n, 4), "n": n}


def current_model() -> Path:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "model.py"), "path"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return Path(out.stdout.strip())


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--search-only", action="store_true", help="skip the NLU model (search alone)")
    parser.add_argument("--model", type=Path, help="model file (default: the one for the current data)")
    parser.add_argument("--min-top1", type=float, default=MIN_TOP1)
    parser.add_argument("--out", type=Path, default=RESULTS_FILE)
    args = parser.parse_args(argv)

    from actions.profile import get_profile

    profile = get_profile()
    questions = load_questions()
    parses: List[Optional[Dict[str, Any]]] = [None] * len(questions)
    model_path = None
    if not args.search_only:
        model_path = args.model or current_model()
        if not model_path.exists():
            print(f"FEJL: ingen trænet model ({model_path}). Kør `make model` eller brug --search-only.",
                  file=sys.stderr)
            return 2
        parses = parse_all(model_path, [q["text"] for q in questions])

    rows = []
    for question, parsed in zip(questions, parses):
        search = bot_ranking(None, question["text"], profile)
        row = {"text": question["text"], "expected": question["form"], "search": search["forms"],
               "search_kind": search["kind"]}
        if parsed is not None:
            intent = (parsed.get("intent") or {}).get("name")
            bot = bot_ranking(intent, question["text"], profile)
            row.update(intent=intent, confidence=round(float((parsed.get("intent") or {}).get("confidence") or 0), 3),
                       bot=bot["forms"], bot_kind=bot["kind"])
        rows.append(row)

    report: Dict[str, Any] = {"questions": len(rows), "min_top1": args.min_top1,
                              "search_only": score(rows, "search")}
    key = "search" if args.search_only else "bot"
    if not args.search_only:
        report["model"] = model_path.name
        report["bot"] = score(rows, "bot")
        report["intent_find_form"] = round(sum(r["intent"] == "find_form" for r in rows) / len(rows), 4)
    report["gate"] = key
    report["misses"] = [r for r in rows if r[key][:1] != [r["expected"]]]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")

    print(f"Blanketsøgning på {len(rows)} spørgsmål, der ikke er i træningsdata:")
    print(f"  kun søgning:            top-1 {report['search_only']['top1']:.1%}  top-3 {report['search_only']['top3']:.1%}")
    if not args.search_only:
        print(f"  som i chatten (NLU+søgning): top-1 {report['bot']['top1']:.1%}  top-3 {report['bot']['top3']:.1%}"
              f"  (intent find_form: {report['intent_find_form']:.1%})")
    for miss in report["misses"]:
        got = miss[key][:3] or [miss.get("bot_kind") or miss["search_kind"]]
        print(f"  forkert: {miss['text']!r}: ventede {miss['expected']}, fik {', '.join(got)}"
              + (f" [intent {miss['intent']}]" if "intent" in miss else ""))
    print(f"Resultat skrevet til {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    top1 = report["search_only" if args.search_only else "bot"]["top1"]
    if top1 < args.min_top1:
        print(f"FEJL: top-1 {top1:.1%} er under kravet {args.min_top1:.0%}.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
