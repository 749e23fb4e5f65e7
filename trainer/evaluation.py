"""A model on the frozen evaluation sets, in-process: what the chat would answer, message by message.

Runs in the workbench's child process (``python -m trainer.tools``), because it loads Rasa.
Every message of the sets in ``Project.eval_sets`` goes the bot's own path, as
devtools/eval_forms.py does: the model's NLU parse, the dialogue policies' next action at the
start of a conversation, and that action's own catalogue logic (actions.forms_lookup,
actions.faq, af_core.second_chance). The answer is judged as devtools/eval_leaders.py judges
it against a running stack: a form label needs that form first, a rule label that rule topic,
an intent label that kind of answer (affirm/deny: the intent).

The result has the shape trainer/retrain.py's ``compare`` reads (``intents`` from
devtools/nlu_eval.py's ``intent_report`` with one "intent" per label – ``form:vikar``,
``faq:ferie``, ``intent:case_status`` – and ``predictions``), so the verdict is the same code
``make retrain`` uses. Results are cached per model, sets and catalogue (var/traener/maalinger/).

The sealed batches (blind-c's messages, blind-d) are refused: showing their messages would
unseal them (tests/eval/README.md).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import yaml

from trainer.files import TrainerError, write_text
from trainer.project import Project

SEALED = ("tests/eval/blind-c.yml", "tests/eval/blind-d.yml")
EVAL_VERSION = "1"
# The gate only stops a clearly broken model: the model in service on 3 December 2026
# (af-6642c27d04ec4516) reached weighted F1 0.955 on the four development sets (1,144 messages,
# 95.1 % right; forms top-1 161/178 as devtools/eval_forms.py counts). Better/worse is decided
# against the model in service by trainer/retrain.py's compare.
MIN_WEIGHTED_F1 = 0.85
INTENT_ANSWERS = {
    "utter_greet": "intent:greet",
    "utter_goodbye": "intent:goodbye",
    "utter_thank": "intent:thank",
    "utter_bot_challenge": "intent:bot_challenge",
    "utter_capabilities": "intent:ask_capabilities",
    "action_restart": "intent:restart",
    "case_status_form": "intent:case_status",
    "action_case_status": "intent:case_status",
    "action_out_of_scope": "intent:out_of_scope",
    "action_human_handoff": "intent:human_handoff",
    "action_handle_fallback": "fallback",
}


def load_items(project: Project) -> List[Dict[str, str]]:
    """Every labelled message of the configured sets: ``{"set", "text", "label"}``."""
    items: List[Dict[str, str]] = []
    for name in project.eval_sets:
        if name.replace("\\", "/") in SEALED:
            raise TrainerError(f"{name} er et forseglet testsæt og må ikke vises besked for besked.")
        path = project.root / name
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise TrainerError(f"Testsættet {name} findes ikke.") from exc
        for question in data.get("questions") or []:  # tests/heldout/form_questions.yml
            items.append({"set": name, "text": str(question["text"]), "label": f"form:{question['form']}"})
        for message in data.get("messages") or []:  # tests/eval/*.yml
            items.append({"set": name, "text": str(message["text"]), "label": str(message["label"])})
    if not items:
        raise TrainerError("Der er ingen testbeskeder i de valgte testsæt.")
    return items


def cache_key(project: Project, model_name: str) -> str:
    digest = hashlib.sha256(f"{EVAL_VERSION}\0{model_name}\0".encode())
    for name in project.eval_sets:
        digest.update(name.encode() + b"\0" + (project.root / name).read_bytes() + b"\0")
    for path in sorted(project.profile_dir.glob("*.yml")):  # the catalogue answers, too
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cache_path(project: Project, model_name: str) -> Path:
    stem = model_name[: -len(".tar.gz")] if model_name.endswith(".tar.gz") else model_name
    return project.var_dir / "maalinger" / f"{stem}-{cache_key(project, model_name)}.json"


def cached(project: Project, model_name: str) -> Optional[Dict[str, Any]]:
    try:
        return json.loads(cache_path(project, model_name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------ what the bot answers
def answer(action: str, text: str, parsed: Dict[str, Any], profile: Any) -> Dict[str, Any]:
    """The chat's answer to a first message, in the evaluation's terms."""
    from af_core import faq_replies, form_replies, second_chance
    from devtools.eval_forms import bot_ranking

    intent = parsed.get("intent") or {}
    nlu_intent, confidence = intent.get("name") or "", float(intent.get("confidence") or 0.0)
    plan: Optional[Dict[str, Any]] = None
    if action == "action_find_form":
        plan = form_replies.plan_form_reply(text, None, profile)
    elif action == "action_answer_faq":
        plan = faq_replies.plan_faq_reply(text, None, profile)
    elif action in ("action_handle_fallback", "action_out_of_scope", "action_store_rating"):
        plan = second_chance.catalogue_hint(text, profile)
    elif action == "action_human_handoff":
        plan = second_chance.handoff_guard(text, confidence, profile)
    forms = bot_ranking(action, text, profile, confidence)["forms"]
    faq_id = (plan or {}).get("faq_id") or None
    if faq_id:
        got = f"faq:{faq_id}"
    elif forms and (plan or {}).get("form_id"):
        got = f"form:{forms[0]}"
    elif plan and plan.get("kind") == "unsure":
        got = "forms:offered" if action == "action_find_form" else "faqs:offered"
    elif plan and plan.get("kind") in ("none", "prompt"):
        got = "none"
    elif action == "request_form" or action.startswith("request"):
        got = f"intent:{nlu_intent}" if nlu_intent in ("request_help", "book_meeting") else "request"
    else:
        got = INTENT_ANSWERS.get(action, f"action:{action}")
    return {"got": got, "forms": forms, "faq": faq_id, "intent": nlu_intent, "confidence": confidence,
            "action": action}


def judge(label: str, said: Dict[str, Any]) -> Dict[str, Any]:
    """Right or wrong (devtools/eval_leaders.message_ok's rules), and the label it answered with."""
    kind, _, value = label.partition(":")
    if kind == "form":
        ok = said["forms"][:1] == [value]
        got = f"form:{said['forms'][0]}" if said["forms"] else said["got"]
    elif kind == "faq":
        ok = said["faq"] == value
        got = said["got"]
    elif value in ("affirm", "deny"):
        ok = said["intent"] == value
        got = f"intent:{said['intent']}"
    else:
        ok = said["got"] == label
        got = said["got"]
    return {"ok": ok, "predicted": label if ok else got}


async def _answers(model_path: Path, items: Sequence[Dict[str, str]], profile: Any,
                   progress: Callable[[float], None]) -> List[Dict[str, Any]]:
    from rasa.core.agent import Agent
    from rasa.shared.core.trackers import DialogueStateTracker

    from devtools.eval_forms import _opening_events

    agent = Agent.load(str(model_path))
    progress(0.3)
    found = []
    for number, item in enumerate(items):
        parsed = await agent.parse_message(item["text"])
        tracker = DialogueStateTracker.from_events(f"wb-{number}", _opening_events(parsed), slots=agent.domain.slots)
        prediction = agent.processor.predict_next_with_tracker(tracker)
        action = max(prediction["scores"], key=lambda s: s["score"])["action"]
        said = answer(action, item["text"], parsed, profile)
        found.append({**item, **said, **judge(item["label"], said)})
        if number % 25 == 0:
            progress(0.3 + 0.7 * number / max(len(items), 1))
    return found


def measure(project: Project, model_path: Path, progress: Callable[[float], None] = lambda f: None,
            use_cache: bool = True) -> Dict[str, Any]:
    """The model's figures on the frozen sets (cached per model, sets and catalogue)."""
    if use_cache:
        known = cached(project, model_path.name)
        if known is not None:
            progress(1.0)
            return known
    from rasa.utils.log_utils import configure_structlog

    from devtools import nlu_eval

    items = load_items(project)
    profile = project.load_profile()
    configure_structlog(logging.WARNING)
    logging.disable(logging.WARNING)
    try:
        rows = asyncio.run(_answers(model_path, items, profile, progress))
    finally:
        logging.disable(logging.NOTSET)
    predictions = [nlu_eval.Prediction(text=r["text"], expected=r["label"], predicted=r["predicted"],
                                       confidence=r["confidence"], fallback=r["got"] == "fallback") for r in rows]
    sets: Dict[str, Dict[str, int]] = {}
    for row in rows:
        part = sets.setdefault(row["set"], {"n": 0, "right": 0})
        part["n"] += 1
        part["right"] += int(row["ok"])
    figures = {
        "model": model_path.name,
        "sets": sets,
        "test_examples": len(rows),
        "min_weighted_f1": MIN_WEIGHTED_F1,
        "intents": nlu_eval.intent_report(predictions),
        "predictions": [{"text": r["text"], "set": r["set"], "expected": r["label"], "predicted": r["predicted"],
                         "fallback": r["got"] == "fallback"} for r in rows],
    }
    write_text(cache_path(project, model_path.name), json.dumps(figures, ensure_ascii=False))
    progress(1.0)
    return figures


# ------------------------------------------------------------------------ comparing two models
def differences(candidate: Dict[str, Any], serving: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Per set and per label (intent/form/rule topic), and the messages that got better or worse."""
    old_rows = {(r["set"], r["text"]): r for r in (serving or {}).get("predictions", [])}
    better, worse = [], []
    for row in candidate.get("predictions", []):
        old = old_rows.get((row["set"], row["text"]))
        if old is None:
            continue
        now_ok, was_ok = row["expected"] == row["predicted"], old["expected"] == old["predicted"]
        entry = {"text": row["text"], "set": row["set"], "expected": row["expected"],
                 "new": row["predicted"], "old": old["predicted"]}
        if now_ok and not was_ok:
            better.append(entry)
        elif was_ok and not now_ok:
            worse.append(entry)
    labels = []
    new_per = candidate["intents"]["per_intent"]
    old_per = ((serving or {}).get("intents") or {}).get("per_intent") or {}
    for name, row in new_per.items():
        old = old_per.get(name)
        labels.append({"label": name, "support": row["support"], "new_f1": row["f1"],
                       "old_f1": old["f1"] if old else None,
                       "change": round(row["f1"] - old["f1"], 4) if old else None})
    labels.sort(key=lambda r: (r["change"] if r["change"] is not None else 0.0, r["label"]))
    sets = []
    for name, part in candidate.get("sets", {}).items():
        old = ((serving or {}).get("sets") or {}).get(name)
        sets.append({"set": name, "n": part["n"], "new_right": part["right"],
                     "old_right": old["right"] if old else None})
    return {"better": better, "worse": worse, "labels": labels, "sets": sets}
