"""Held-out evaluation of form retrieval: does a leader's question end at the right form?

Every question in tests/heldout/form_questions.yml goes through the path the running bot takes:

1. the trained model's NLU parse (intent, incl. the fallback threshold);
2. the trained model's dialogue policies choose the next action, at the point where a leader
   asks a first question (after the greeting the chat page triggers with /greet);
3. that action's own reply logic, as pure functions shared with the action server:
   ``action_find_form`` and ``action_answer_faq`` (which falls back to a form) rank the
   catalogue; ``action_handle_fallback``, ``action_out_of_scope`` and an unrequested
   ``action_store_rating`` answer only when ``second_chance.catalogue_hint`` fires;
   ``action_human_handoff`` only when ``second_chance.handoff_guard`` fires;
   any other action shows no form.

The forms the bot shows, in order, are its ranking:

* one clear form: that form (also when a rule answer links its related form, or a list
  of rule topics ends with the one form that clearly fits, or a hint suggests it);
* unsure: the two or three forms offered as buttons;
* anything else (another action, "det forstod jeg ikke", a rule answer, no fit): nothing.

top-1 = the first form shown is the expected one; top-3 = it is among those shown.
The search alone (ignoring NLU and dialogue) is reported too, to tell NLU misses from search
misses, and every batch of the set on its own (later batches were written blind to the
changes made after the previous measurement).

    python devtools/eval_forms.py                 # used by `make test`; needs the trained model
    python devtools/eval_forms.py --search-only   # no model: the catalogue search alone

Writes results/forms-eval.json. Exits 1 when top-1 is below MIN_TOP1 (0.90).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
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


BATCH_RE = re.compile(r"^\s*#\s*-+\s*batch\s+(\d+)", re.IGNORECASE)


def load_questions(path: Path = HELDOUT) -> List[Dict[str, Any]]:
    """The questions, each with the batch it was written in (from the "# ---- batch N" comments)."""
    raw = path.read_text(encoding="utf-8")
    data = yaml.safe_load(raw)
    questions = [{"text": str(q["text"]), "form": str(q["form"])} for q in data["questions"]]
    if not questions:
        raise SystemExit(f"{path}: ingen spørgsmål")
    batch, index = 1, 0
    for line in raw.splitlines():
        marker = BATCH_RE.match(line)
        if marker:
            batch = int(marker.group(1))
        elif line.lstrip().startswith("- {text:") and index < len(questions):
            questions[index]["batch"] = batch
            index += 1
    for question in questions[index:]:
        question["batch"] = batch
    return questions


# Actions whose reply is only a second chance from the catalogues (else no form).
HINT_ACTIONS = ("action_handle_fallback", "action_out_of_scope", "action_store_rating")


def bot_ranking(action: Optional[str], text: str, profile, confidence: Optional[float] = None) -> Dict[str, Any]:
    """The forms the bot shows for ``text`` when the dialogue runs ``action`` (None: search only)."""
    from af_core import faq_replies, form_replies, second_chance

    if action is None or action == "action_find_form":
        plan = form_replies.plan_form_reply(text, None, profile)
    elif action == "action_answer_faq":
        plan = faq_replies.plan_faq_reply(text, None, profile)
    elif action in HINT_ACTIONS:
        # action_store_rating hints only when no rating was asked for: true at a first question.
        plan = second_chance.catalogue_hint(text, profile)
    elif action == "action_human_handoff":
        plan = second_chance.handoff_guard(text, confidence, profile)
    else:
        plan = None
    if plan is None:
        return {"kind": f"action:{action}", "forms": []}
    if plan.get("form_id"):
        forms = [plan["form_id"]]
    elif plan.get("related_forms"):  # a rule answer that links its form(s)
        forms = list(plan["related_forms"])
    elif plan.get("offered_forms"):  # rule topics offered as buttons, plus the one clear form
        forms = list(plan["offered_forms"])
    else:
        forms = list(plan.get("candidates") or []) if plan["kind"] == "unsure" and "form_id" in plan else []
    return {"kind": plan["kind"], "forms": forms}


def _opening_events(parsed: Dict[str, Any]) -> List[Any]:
    """A new conversation as the chat page starts it (/greet, greeting), then the question."""
    from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered

    greet = {"name": "greet", "confidence": 1.0}
    return [
        ActionExecuted("action_session_start"),
        SessionStarted(),
        ActionExecuted("action_listen"),
        UserUttered("/greet", intent=greet, parse_data={"intent": greet, "entities": [], "text": "/greet"}),
        ActionExecuted("utter_greet"),
        ActionExecuted("action_listen"),
        UserUttered(parsed.get("text"), intent=parsed.get("intent"), entities=parsed.get("entities") or [],
                    parse_data=parsed),
    ]


async def _parse_all(model_path: Path, texts: Sequence[str]) -> List[Dict[str, Any]]:
    """NLU parse of each text plus the action the dialogue policies choose next."""
    from rasa.core.agent import Agent
    from rasa.shared.core.trackers import DialogueStateTracker

    agent = Agent.load(str(model_path))
    results = []
    for number, text in enumerate(texts):
        parsed = await agent.parse_message(text)
        tracker = DialogueStateTracker.from_events(f"eval-{number}", _opening_events(parsed),
                                                   slots=agent.domain.slots)
        prediction = agent.processor.predict_next_with_tracker(tracker)
        best = max(prediction["scores"], key=lambda s: s["score"])
        results.append({**parsed, "next_action": best["action"], "policy": prediction["policy"]})
    return results


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

    from af_core.profile import get_profile

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
        row["batch"] = question["batch"]
        if parsed is not None:
            intent = (parsed.get("intent") or {}).get("name")
            confidence = float((parsed.get("intent") or {}).get("confidence") or 0)
            action = parsed["next_action"]
            bot = bot_ranking(action, question["text"], profile, confidence)
            row.update(intent=intent, confidence=round(confidence, 3), action=action,
                       bot=bot["forms"], bot_kind=bot["kind"])
        rows.append(row)

    report: Dict[str, Any] = {"questions": len(rows), "min_top1": args.min_top1,
                              "search_only": score(rows, "search")}
    key = "search" if args.search_only else "bot"
    if not args.search_only:
        report["model"] = model_path.name
        report["bot"] = score(rows, "bot")
        report["intent_find_form"] = round(sum(r["intent"] == "find_form" for r in rows) / len(rows), 4)
        report["second_chance"] = sum(1 for r in rows if r["bot_kind"] in ("hint", "handoff_guard"))
    report["batches"] = {
        str(b): score([r for r in rows if r["batch"] == b], key) for b in sorted({r["batch"] for r in rows})
    }
    report["gate"] = key
    report["misses"] = [r for r in rows if r[key][:1] != [r["expected"]]]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")

    print(f"Blanketsøgning på {len(rows)} spørgsmål, der ikke er i træningsdata:")
    print(f"  kun søgning:            top-1 {report['search_only']['top1']:.1%}  top-3 {report['search_only']['top3']:.1%}")
    if not args.search_only:
        print(f"  som i chatten (NLU+søgning): top-1 {report['bot']['top1']:.1%}  top-3 {report['bot']['top3']:.1%}"
              f"  (intent find_form: {report['intent_find_form']:.1%}; "
              f"svar fra anden chance: {report['second_chance']})")
    print("  pr. batch: " + ", ".join(f"b{b} ({v['n']}) top-1 {v['top1']:.1%}" for b, v in report["batches"].items()))
    for miss in report["misses"]:
        got = miss[key][:3] or [miss.get("bot_kind") or miss["search_kind"]]
        print(f"  forkert: {miss['text']!r}: ventede {miss['expected']}, fik {', '.join(got)}"
              + (f" [intent {miss['intent']} {miss['confidence']}, {miss['action']}]" if "intent" in miss else ""))
    print(f"Resultat skrevet til {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    top1 = report["search_only" if args.search_only else "bot"]["top1"]
    if top1 < args.min_top1:
        print(f"FEJL: top-1 {top1:.1%} er under kravet {args.min_top1:.0%}.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
