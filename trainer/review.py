"""`make review`: export what the assistant handled badly, for AF's trainers to label.

Reads the conversations of the last N days from the tracker store and collects
the leaders' messages that

* hit the fallback ("det forstod jeg ikke"),
* were understood with low confidence (below --threshold),
* came just before the leader asked for a person (or a supporter took over),
* were the last thing the leader wrote in a form they never finished,
* were rule questions whose answer the leader said "nej" to ("Hjalp det svar dig?").

Button clicks are left out. Identical messages (after folding case, æøå and
spacing) become one row with a count; similar messages (character n-gram
cosine >= --similarity) share a group number, so a trainer labels a group at a
time. CPR numbers are masked.

Output: review/til-gennemgang-<date>.csv (semicolon-separated, UTF-8 with BOM,
so Excel opens it with æøå). The trainer fills in the column `ret_intent` and
then runs `make add FILE=...` (trainer/add_examples.py). The trainer's workbench in the
browser (web/workbench.py) shows the same findings through ``groups()``.

    python trainer/review.py [--days 14] [--threshold 0.6] [--out FILE]
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from af_core.textsim import cluster, normalise  # noqa: E402
from trainer import conversations as conv_mod  # noqa: E402

REVIEW_DIR = ROOT / "review"
COLUMNS = [
    "gruppe", "antal", "tekst", "forudsagt_intent", "sikkerhed", "aarsag", "ret_intent", "kommentar",
    "senest_set", "samtaler",
]
REASONS = {
    "fallback": "ikke forstået",
    "low_confidence": "usikker",
    "handoff": "før medarbejder",
    "abandoned": "opgivet midt i",
    "not_helped": "svaret hjalp ikke",
}
# Messages that only ask for a person or cancel are not worth training on.
SKIP_INTENTS_FOR_CONTEXT = {"human_handoff", "cancel", "restart", "greet", "goodbye", "thank"}


@dataclass
class Finding:
    text: str
    predicted: str
    confidence: float
    reason: str
    timestamp: float
    sender_id: str


def findings(conversations: Sequence[conv_mod.Conversation], threshold: float, abandoned_after: float,
             now: float) -> List[Finding]:
    found: List[Finding] = []
    for conv in conversations:
        typed = [m for m in conv.messages if not m.payload and m.text.strip()]
        seen = set()

        def add(message: conv_mod.UserMessage, reason: str) -> None:
            if id(message) in seen:
                return
            seen.add(id(message))
            found.append(Finding(message.text, message.predicted, message.confidence, reason,
                                 message.timestamp, conv.sender_id))

        for message in typed:
            if message.fallback:
                add(message, "fallback")
            elif message.confidence < threshold:
                add(message, "low_confidence")
        context = [m for m in typed if m.intent not in SKIP_INTENTS_FOR_CONTEXT]
        if conv.handoff and context:
            add(context[-1], "handoff")
        if conv.open_form and now - conv.last_timestamp >= abandoned_after and context:
            add(context[-1], "abandoned")
        for question in not_helped(conv):
            add(question, "not_helped")
    return found


def not_helped(conv: conv_mod.Conversation) -> List[conv_mod.UserMessage]:
    """The typed questions whose rule answer (action_answer_faq) the leader said "nej" to next."""
    found: List[conv_mod.UserMessage] = []
    user_index, last_typed, answered = -1, None, None
    for event in conv.events:
        kind = event.get("event")
        if kind == "user":
            user_index += 1
            if user_index >= len(conv.messages):
                break
            message = conv.messages[user_index]
            if answered is not None:
                if message.intent == "deny" and answered not in found:
                    found.append(answered)
                answered = None  # only the leader's very next message answers "Hjalp det?"
            if not message.payload and message.text.strip():
                last_typed = message
        elif kind == "action" and event.get("name") == "action_answer_faq" and last_typed is not None:
            answered = last_typed
    return found


def groups(found: Sequence[Finding], similarity: float) -> List[Dict[str, Any]]:
    """Distinct (normalised) texts, grouped by similarity, biggest groups first:
    ``[{"group": 1, "messages": [{"text", "count", "predicted", "confidence", "reasons",
    "latest", "senders", "newest": {"sender", "at"}}, ...]}, ...]``."""
    by_text: Dict[str, List[Finding]] = {}
    for finding in found:
        by_text.setdefault(normalise(finding.text), []).append(finding)
    distinct = sorted(by_text.values(), key=lambda items: (-len(items), normalise(items[0].text)))
    texts = [items[0].text for items in distinct]
    clusters = cluster(texts, threshold=similarity)
    clusters.sort(key=lambda members: (-sum(len(distinct[i]) for i in members), members[0]))
    out: List[Dict[str, Any]] = []
    for number, members in enumerate(clusters, start=1):
        messages = []
        for index in members:
            items = distinct[index]
            first = max(items, key=lambda f: f.timestamp)  # shown as the newest spelling
            messages.append({
                "text": first.text,
                "count": len(items),
                "predicted": first.predicted,
                "confidence": min(f.confidence for f in items),
                "reasons": sorted({f.reason for f in items}, key=list(REASONS).index),
                "latest": max(f.timestamp for f in items),
                "senders": len({f.sender_id for f in items}),
                "newest": {"sender": first.sender_id, "at": first.timestamp},
            })
        out.append({"group": number, "messages": messages})
    return out


def rows(found: Sequence[Finding], similarity: float) -> List[Dict[str, str]]:
    """One row per distinct (normalised) text, grouped by similarity, biggest groups first."""
    out: List[Dict[str, str]] = []
    for group in groups(found, similarity):
        for message in group["messages"]:
            out.append(
                {
                    "gruppe": str(group["group"]),
                    "antal": str(message["count"]),
                    "tekst": message["text"],
                    "forudsagt_intent": message["predicted"],
                    "sikkerhed": f"{message['confidence']:.2f}".replace(".", ","),
                    "aarsag": ", ".join(REASONS[r] for r in message["reasons"]),
                    "ret_intent": "",
                    "kommentar": "",
                    "senest_set": dt.datetime.fromtimestamp(message["latest"]).strftime("%Y-%m-%d %H:%M"),
                    "samtaler": str(message["senders"]),
                }
            )
    return out


# A cell Excel would run as a formula: "=HYPERLINK(...)", "+1", "-2+3", "@SUM(...)", or one
# starting with a tab or carriage return. A leader's text must stay text in the trainer's sheet.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """``value`` as text Excel shows but never evaluates (OWASP: a leading apostrophe)."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def write_csv(path: Path, table: Sequence[Dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, delimiter=";")
        writer.writeheader()
        writer.writerows({key: safe_cell(value) for key, value in row.items()} for row in table)


def domain_intents(domain_dir: Path) -> List[str]:
    import yaml

    intents: List[str] = []
    files = [domain_dir] if domain_dir.is_file() else sorted(domain_dir.rglob("*.yml"))
    for path in files:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for item in data.get("intents") or []:
            name = next(iter(item)) if isinstance(item, dict) else str(item)
            if name not in intents:
                intents.append(name)
    return intents


def main(argv: Optional[Sequence[str]] = None) -> int:
    from af_core.settings import ConfigError, get_settings

    parser = argparse.ArgumentParser(description="Eksportér det, assistenten havde svært ved, til gennemgang.")
    parser.add_argument("--days", type=int, default=14, help="hvor mange dage tilbage (standard 14)")
    parser.add_argument("--threshold", type=float, default=0.6,
                        help="beskeder forstået med lavere sikkerhed end dette kommer med (standard 0,6)")
    parser.add_argument("--similarity", type=float, default=0.5, help="hvor ens tekster skal være for at dele gruppe")
    parser.add_argument("--abandoned-minutes", type=int, default=60,
                        help="en påbegyndt bestilling regnes for opgivet efter så mange minutters stilhed")
    parser.add_argument("--out", type=Path, help="filnavn (standard review/til-gennemgang-<dato>.csv)")
    parser.add_argument("--db-url", help="tracker store (standard: som Rasa-serveren bruger)")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    try:
        db_url = args.db_url or conv_mod.tracker_url(get_settings())
    except ConfigError as exc:
        print(f"FEJL i opsætningen: {exc}", file=sys.stderr)
        return 1
    now = time.time()
    try:
        by_sender = conv_mod.load_events(db_url, since=now - args.days * 86400)
    except Exception as exc:  # a missing or unreachable database: say it plainly
        print(f"FEJL: kunne ikke læse samtalerne: {exc}", file=sys.stderr)
        return 1
    convs = conv_mod.with_user_messages(conv_mod.conversations(by_sender))
    found = findings(convs, args.threshold, args.abandoned_minutes * 60, now)
    table = rows(found, args.similarity)
    out = args.out or args.root / "review" / f"til-gennemgang-{dt.date.today().isoformat()}.csv"
    write_csv(out, table)

    shown = out.relative_to(args.root) if out.is_relative_to(args.root) else out
    counts = {reason: sum(1 for f in found if f.reason == reason) for reason in REASONS}
    print(f"Gennemgået {len(convs)} samtaler fra de sidste {args.days} dage.")
    print(
        f"Fundet: {counts['fallback']} ikke forstået, {counts['low_confidence']} usikre, "
        f"{counts['handoff']} før en medarbejder tog over, {counts['abandoned']} opgivet midt i en bestilling, "
        f"{counts['not_helped']} hvor svaret ikke hjalp."
    )
    if not table:
        print("Der er intet at gennemgå lige nu. Godt!")
    else:
        groups = len({row["gruppe"] for row in table})
        print(f"{len(table)} forskellige beskeder i {groups} grupper er skrevet til {shown}")
        print("Udfyld kolonnen ret_intent (lad den stå tom for at springe en besked over), og kør så:")
        print(f"  make add FILE={shown}")
        intents = [i for i in domain_intents(args.root / "domain") if i != "nlu_fallback"]
        print("Mulige intents: " + ", ".join(intents))
    return 0


if __name__ == "__main__":
    sys.exit(main())
