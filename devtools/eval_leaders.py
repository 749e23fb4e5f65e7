"""Leaders' own words: run an evaluation set against the running assistant and score what it did.

An evaluation set (``tests/eval/*.yml``, format in its header) holds single leader messages with a
label and multi-turn conversations with an expected outcome. Every message and every conversation is
sent through the REST channel of a running stack (``make run`` or the test suite's ``stack``
fixture) as a verified demo leader with an e-mail of its own, so the cases it creates can be found in
the ServiceNow emulator afterwards. What the assistant *did* is read from the conversation's tracker
(the same signals as the trainer's report, ``trainer/conversations.py``) and from the cases in the
emulator -- never from the wording of its replies.

    PYTHONPATH=. .venv/bin/python devtools/eval_leaders.py tests/eval/blind-b.yml   # against make run
    ... --json results/leader-eval.json --show-failures

Scores (see docs/nlu.md):
* messages: handled right overall; per label kind (form, faq, each intent);
  ``form_first`` = the first form the assistant answers with is the right one;
  ``form_offered`` = the right form is the answer or one of the offered choices;
  ``faq_first`` = the rule answer shown (with its intranet link) is the right one;
* conversations: the expected outcome, and for cases exactly one case with the stated fields.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from af_core import rasa_http  # noqa: E402
from trainer.conversations import facts  # noqa: E402

OUTCOMES = ("meeting_case", "help_case", "form_link", "faq_link", "status_answer", "handoff", "no_case")
INTENT_LABELS = (
    "request_help", "book_meeting", "case_status", "human_handoff", "out_of_scope",
    "greet", "goodbye", "thank", "affirm", "deny", "bot_challenge",
)
CASE_FIELDS = {"request_type": "u_request_type", "topic": "u_topic", "channel": "u_meeting_channel"}
URGENCY_NUMBERS = {"akut": "1", "snart": "2", "ingen_hast": "3"}
_BUTTON_ID = re.compile(r'"(form_id|faq_id)"\s*:\s*"([a-z0-9_]+)"')
# Responses that answer small talk (the intent the leader meant shows as the response used).
SMALL_TALK_RESPONSES = {
    "greet": ("utter_greet",),
    "goodbye": ("utter_goodbye",),
    "thank": ("utter_thank",),
    "bot_challenge": ("utter_bot_challenge",),
}


# ---------------------------------------------------------------------------
# The evaluation file
# ---------------------------------------------------------------------------
@dataclass
class EvalSet:
    path: Path
    sha256: str
    messages: List[Dict[str, Any]]
    conversations: List[Dict[str, Any]]

    @property
    def name(self) -> str:
        return self.path.stem


def load_eval_set(path: Path) -> EvalSet:
    raw = Path(path).read_bytes()
    data = yaml.safe_load(raw) or {}
    messages = list(data.get("messages") or [])
    conversations = list(data.get("conversations") or [])
    problems = validate(messages, conversations)
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems[:10]))
    return EvalSet(Path(path), hashlib.sha256(raw).hexdigest(), messages, conversations)


def validate(messages: Sequence[Dict[str, Any]], conversations: Sequence[Dict[str, Any]]) -> List[str]:
    problems = []
    for number, message in enumerate(messages, 1):
        label = str(message.get("label") or "")
        kind, _, value = label.partition(":")
        if not str(message.get("text") or "").strip():
            problems.append(f"message {number}: no text")
        if kind not in ("form", "faq", "intent") or not value:
            problems.append(f"message {number}: label {label!r}")
        elif kind == "intent" and value not in INTENT_LABELS:
            problems.append(f"message {number}: intent {value!r}")
    for conversation in conversations:
        name = conversation.get("name")
        expect = conversation.get("expect") or {}
        if not conversation.get("turns"):
            problems.append(f"conversation {name}: no turns")
        if expect.get("outcome") not in OUTCOMES:
            problems.append(f"conversation {name}: outcome {expect.get('outcome')!r}")
    return problems


# ---------------------------------------------------------------------------
# Talking to the stack
# ---------------------------------------------------------------------------
@dataclass
class Target:
    rasa_url: str
    emulator_url: str
    api_token: str
    token_for: Callable[[str, str], str]  # (name, email) -> signed identity token
    emulator_auth: Tuple[str, str]

    def send(self, sender: str, text: str, token: str) -> List[Dict[str, Any]]:
        response = requests.post(
            f"{self.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text, "metadata": {"identity_token": token}},
            timeout=60,
        )
        response.raise_for_status()
        return response.json()

    def events(self, sender: str) -> List[Dict[str, Any]]:
        response = requests.get(
            f"{self.rasa_url}/conversations/{sender}/tracker",
            headers=rasa_http.headers_for_secret(self.api_token),
            timeout=30,
        )
        response.raise_for_status()
        return response.json().get("events") or []

    def cases_of(self, email: str) -> List[Dict[str, Any]]:
        response = requests.get(f"{self.emulator_url}/_emulator/cases", auth=self.emulator_auth, timeout=10)
        response.raise_for_status()
        return [c for c in response.json()["result"] if (c.get("u_requester_email") or "").lower() == email.lower()]


def target_from_settings(settings: Any = None) -> Target:
    """The stack ``make run`` starts (development mode), from the same settings it reads."""
    from af_core.identity import issue_token
    from af_core.settings import DEV_SERVICENOW_PASSWORD, DEV_SERVICENOW_USERNAME, get_settings

    settings = settings or get_settings()
    host = settings.bind_host
    return Target(
        rasa_url=f"http://{host}:{settings.rasa_port}",
        emulator_url=f"http://{host}:{settings.emulator_port}",
        api_token=settings.rasa_api_token,
        token_for=lambda name, email: issue_token(
            {"name": name, "email": email, "institution": "Valby Skole"}, settings
        ),
        emulator_auth=(DEV_SERVICENOW_USERNAME, DEV_SERVICENOW_PASSWORD),
    )


# ---------------------------------------------------------------------------
# What the assistant did
# ---------------------------------------------------------------------------
def offered_ids(replies: Sequence[Dict[str, Any]], key: str) -> List[str]:
    found = []
    for reply in replies:
        for button in reply.get("buttons") or []:
            for name, value in _BUTTON_ID.findall(str(button.get("payload") or "")):
                if name == key and value not in found:
                    found.append(value)
    return found


def turn_facts(events: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """What happened after the last user message: intent, actions, responses, slots set, forms."""
    last_user = max((i for i, e in enumerate(events) if e.get("event") == "user"), default=-1)
    user = events[last_user] if last_user >= 0 else {}
    after = events[last_user + 1 :]
    actions = [e.get("name") for e in after if e.get("event") == "action"]
    responses = [((e.get("metadata") or {}).get("utter_action")) for e in after if e.get("event") == "bot"]
    slots: Dict[str, Any] = {}
    for event in after:
        if event.get("event") == "slot":
            slots[event.get("name")] = event.get("value")
    loops = [e.get("name") for e in after if e.get("event") == "active_loop"]
    return {
        "intent": ((user.get("parse_data") or {}).get("intent") or {}).get("name"),
        "confidence": ((user.get("parse_data") or {}).get("intent") or {}).get("confidence"),
        "actions": [a for a in actions if a and a != "action_listen"],
        "responses": [r for r in responses if r],
        "slots": slots,
        "loops": loops,
    }


def describe(turn: Dict[str, Any], replies: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """The assistant's answer to one message, in the evaluation's terms."""
    slots = turn["slots"]
    actions = turn["actions"]
    forms_offered = offered_ids(replies, "form_id")
    faqs_offered = offered_ids(replies, "faq_id")
    form = slots.get("form_id") or None
    faq = slots.get("faq_id") or None
    request_type = slots.get("request_type")
    got = "other"
    if form:
        got = f"form:{form}"
    elif faq:
        got = f"faq:{faq}"
    elif "request_form" in turn["loops"] or "request_form" in actions:
        got = {"help": "intent:request_help", "meeting": "intent:book_meeting"}.get(request_type, "request:unknown")
    elif "action_case_status" in actions or "case_status_form" in actions:
        got = "intent:case_status"
    elif any("handoff" in (a or "") for a in actions) or "pause" in turn.get("events", []):
        got = "intent:human_handoff"
    elif "action_out_of_scope" in actions:
        got = "intent:out_of_scope"
    elif forms_offered:
        got = "forms:offered"
    elif faqs_offered:
        got = "faqs:offered"
    elif "action_handle_fallback" in actions:
        got = "fallback"
    else:
        for intent, names in SMALL_TALK_RESPONSES.items():
            if any(r in names for r in turn["responses"]) or any(a in names for a in actions):
                got = f"intent:{intent}"
                break
        else:
            if turn["intent"] in ("affirm", "deny"):
                got = f"intent:{turn['intent']}"
    return {
        "got": got,
        "intent": turn["intent"],
        "confidence": turn["confidence"],
        "form": form,
        "faq": faq,
        "forms_offered": forms_offered,
        "faqs_offered": faqs_offered,
        "actions": actions,
    }


def message_ok(label: str, answer: Dict[str, Any]) -> bool:
    kind, _, value = label.partition(":")
    if kind == "form":
        return answer["form"] == value
    if kind == "faq":
        return answer["faq"] == value
    if value in ("affirm", "deny"):
        # Out of context there is nothing to confirm; the intent is what counts.
        return answer["intent"] == value
    return answer["got"] == label


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------
_SAFE = re.compile(r"[^a-z]+")


def _sender(batch: str, kind: str, number: int) -> str:
    # letters between the numbers: a run of digits could read as a CPR number
    return f"eval-{_SAFE.sub('', batch.lower())}-{kind}{number}-t{time.time_ns() % 10**9}x"


def run_message(target: Target, batch: str, number: int, message: Dict[str, Any]) -> Dict[str, Any]:
    sender = _sender(batch, "m", number)
    email = f"{sender}@buf.kk.dk"
    token = target.token_for("Eva Lund", email)
    replies = target.send(sender, str(message["text"]), token)
    answer = describe(turn_facts(target.events(sender)), replies)
    return {
        "text": message["text"],
        "label": message["label"],
        "ok": message_ok(str(message["label"]), answer),
        "replies": [r.get("text", "") for r in replies],
        **answer,
    }


def case_matches(case: Dict[str, Any], expected: Dict[str, Any]) -> List[str]:
    wrong = []
    for key, value in expected.items():
        if key == "urgency":
            if str(case.get("urgency")) != URGENCY_NUMBERS.get(str(value), str(value)):
                wrong.append(f"urgency {case.get('urgency')} != {value}")
        elif key in CASE_FIELDS:
            if str(case.get(CASE_FIELDS[key]) or "") != str(value):
                wrong.append(f"{key} {case.get(CASE_FIELDS[key])!r} != {value}")
    return wrong


def run_conversation(target: Target, batch: str, number: int, conversation: Dict[str, Any],
                     settle_seconds: float = 3.0) -> Dict[str, Any]:
    sender = _sender(batch, "c", number)
    email = f"{sender}@buf.kk.dk"
    token = target.token_for("Eva Lund", email)
    transcript = []
    for turn in conversation["turns"]:
        replies = target.send(sender, str(turn), token)
        transcript.append({"leader": str(turn), "bot": [r.get("text", "") for r in replies]})
    expect = conversation.get("expect") or {}
    outcome = expect["outcome"]
    cases = target.cases_of(email)
    if outcome.endswith("_case") and not cases:
        # The outbox delivers within a second or two when ServiceNow was slow.
        deadline = time.monotonic() + settle_seconds
        while not cases and time.monotonic() < deadline:
            time.sleep(0.5)
            cases = target.cases_of(email)
    seen = facts(sender, target.events(sender))
    problems: List[str] = []
    if outcome in ("meeting_case", "help_case"):
        wanted = dict(expect.get("case") or {})
        wanted.setdefault("request_type", "meeting" if outcome == "meeting_case" else "help")
        if len(cases) != 1:
            problems.append(f"{len(cases)} cases, not 1")
        else:
            problems.extend(case_matches(cases[0], wanted))
    else:
        if cases:
            problems.append(f"{len(cases)} case(s) created")
        if outcome == "form_link" and expect.get("form") not in seen.forms:
            problems.append(f"form {expect.get('form')} not shown (shown: {seen.forms})")
        if outcome == "faq_link" and expect.get("faq") not in seen.faqs:
            problems.append(f"faq {expect.get('faq')} not shown (shown: {seen.faqs})")
        if outcome == "status_answer" and not seen.status_shown:
            problems.append("no status shown")
        if outcome == "handoff" and not seen.handoff:
            problems.append("not handed over")
    return {
        "name": conversation.get("name"),
        "outcome": outcome,
        "ok": not problems,
        "problems": problems,
        "cases": [{k: c.get(k) for k in ("number", "u_request_type", "u_topic", "urgency", "u_meeting_channel")}
                  for c in cases],
        "transcript": transcript,
    }


def run(target: Target, eval_set: EvalSet, workers: int = 3) -> Dict[str, Any]:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        messages = list(pool.map(lambda item: run_message(target, eval_set.name, *item),
                                 enumerate(eval_set.messages, 1)))
        conversations = list(pool.map(lambda item: run_conversation(target, eval_set.name, *item),
                                      enumerate(eval_set.conversations, 1)))
    return {
        "set": str(eval_set.path.relative_to(ROOT)) if eval_set.path.is_relative_to(ROOT) else str(eval_set.path),
        "sha256": eval_set.sha256,
        "seconds": round(time.monotonic() - started, 1),
        "summary": summarise(messages, conversations),
        "messages": messages,
        "conversations": conversations,
    }


def _rate(items: Sequence[Dict[str, Any]], key: str = "ok") -> Dict[str, Any]:
    n = len(items)
    good = sum(1 for item in items if item.get(key))
    return {"n": n, "right": good, "rate": round(good / n, 3) if n else None}


def summarise(messages: Sequence[Dict[str, Any]], conversations: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    forms = [m for m in messages if m["label"].startswith("form:")]
    for m in forms:
        m["offered_ok"] = m["form"] == m["label"][5:] or m["label"][5:] in m["forms_offered"]
    faqs = [m for m in messages if m["label"].startswith("faq:")]
    for m in faqs:
        m["offered_ok"] = m["faq"] == m["label"][4:] or m["label"][4:] in m["faqs_offered"]
    summary: Dict[str, Any] = {
        "messages": _rate(messages),
        "form_first": _rate(forms),
        "form_offered": _rate(forms, "offered_ok"),
        "faq_first": _rate(faqs),
        "faq_offered": _rate(faqs, "offered_ok"),
        "intents": {},
        "conversations": _rate(conversations),
        "outcomes": {},
    }
    for intent in INTENT_LABELS:
        items = [m for m in messages if m["label"] == f"intent:{intent}"]
        if items:
            summary["intents"][intent] = _rate(items)
    for outcome in OUTCOMES:
        items = [c for c in conversations if c["outcome"] == outcome]
        if items:
            summary["outcomes"][outcome] = _rate(items)
    return summary


def _pct(part: Dict[str, Any]) -> str:
    if not part or not part.get("n"):
        return "–"
    return f"{100 * part['rate']:.1f} % ({part['right']}/{part['n']})"


def table(result: Dict[str, Any]) -> str:
    s = result["summary"]
    rows = [
        ("messages overall", s["messages"]),
        ("first form answer right", s["form_first"]),
        ("right form answered or offered", s["form_offered"]),
        ("rule question -> right page", s["faq_first"]),
        ("right rule topic answered or offered", s["faq_offered"]),
    ]
    rows += [(f"intent {name}", part) for name, part in s["intents"].items()]
    rows.append(("conversations", s["conversations"]))
    rows += [(f"conversation {name}", part) for name, part in s["outcomes"].items()]
    lines = [f"| {result['set']} (sha256 {result['sha256'][:12]}) | result |", "|---|---|"]
    lines += [f"| {name} | {_pct(part)} |" for name, part in rows]
    return "\n".join(lines)


def failures(result: Dict[str, Any]) -> str:
    lines = []
    for m in result["messages"]:
        if not m["ok"]:
            lines.append(f"MSG  {m['label']:<28} got {m['got']:<28} {m['intent']}({(m['confidence'] or 0):.2f}) "
                         f"offered={m['forms_offered'] or m['faqs_offered']} | {m['text'][:140]}")
    for c in result["conversations"]:
        if not c["ok"]:
            lines.append(f"CONV {c['name']} [{c['outcome']}]: {'; '.join(c['problems'])}")
            for step in c["transcript"]:
                lines.append(f"     > {step['leader'][:120]}")
                for text in step["bot"]:
                    lines.append(f"       < {text[:160]!r}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("eval_set", type=Path)
    parser.add_argument("--json", type=Path, help="write the full result here")
    parser.add_argument("--show-failures", action="store_true")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--only", choices=("messages", "conversations"))
    args = parser.parse_args(argv)
    eval_set = load_eval_set(args.eval_set)
    if args.only == "messages":
        eval_set.conversations = []
    elif args.only == "conversations":
        eval_set.messages = []
    result = run(target_from_settings(), eval_set, workers=args.workers)
    print(table(result))
    if args.show_failures:
        print(failures(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
