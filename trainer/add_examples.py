"""`make add FILE=...`: put the trainer's labelled messages into the training data.

Reads a review file (CSV from `make review`, or YAML: a list of
``{tekst: ..., ret_intent: ...}``), and for every row with ``ret_intent`` filled in:

* checks the label is an intent in the domain (stops without changing anything
  when one is not, and says which rows to fix);
* skips the text if the same text already is an example (after folding case,
  æøå and spacing), or is nearly the same (n-gram similarity >= --near) as an
  example of the same intent;
* warns when the text is more like another intent's examples than its own
  (it may confuse the model — consider the label again);
* appends the rest to data/nlu/fra-traenere.yml (one file for everything
  trainers add, grouped by intent) and prints what changed.

Rows with ``ret_intent`` empty, "-" or "ignorer" are skipped. CPR numbers are
masked before anything is written.

    python trainer/add_examples.py review/til-gennemgang-2026-11-30.csv [--dry-run]
"""
from __future__ import annotations

import argparse
import csv
import difflib
import io
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from af_core.privacy import CPR_MASK, mask_cpr  # noqa: E402
from af_core.textsim import IntentIndex, normalise  # noqa: E402
from trainer.review import domain_intents  # noqa: E402

TARGET_NAME = "fra-traenere.yml"
HEADER = (
    'version: "3.1"\n'
    "\n"
    "# Eksempler fra rigtige samtaler, tilføjet af AF's trænere med `make add`.\n"
    "# Du må gerne rette eller slette et eksempel her. Se docs/traening.md.\n"
    "\n"
    "nlu:\n"
)
SKIP_LABELS = {"", "-", "ignorer", "ignore", "spring over"}
NEAR_DUPLICATE = 0.9
# Rasa's example syntax: [text](entity) and {"entity": ...} would be read as annotations.
_ANNOTATION_CHARS = re.compile(r"[\[\]{}]")


@dataclass
class Outcome:
    added: Dict[str, List[str]] = field(default_factory=dict)
    skipped: List[Tuple[str, str]] = field(default_factory=list)  # (text, why)
    warnings: List[str] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.added.values())


@dataclass
class SheetFormat:
    """How a review sheet was saved: what make add tells the trainer it read."""
    encoding: str
    delimiter: str

    def describe(self) -> str:
        names = {"utf-8-sig": "UTF-8 med BOM", "utf-8": "UTF-8", "cp1252": "Windows-1252 (Excel på dansk Windows)"}
        separators = {";": "semikolon", ",": "komma", "\t": "tabulator"}
        return f"{names.get(self.encoding, self.encoding)}, adskilt med {separators.get(self.delimiter, self.delimiter)}"


def _decode(data: bytes) -> Tuple[str, str]:
    """The text of a sheet and its encoding: UTF-8 (with or without BOM) or, as Excel on a
    Danish Windows saves "CSV (semikolonsepareret)", Windows-1252."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "cp1252"


def read_sheet(path: Path) -> Tuple[List[Dict[str, str]], Optional[SheetFormat]]:
    """Rows of a review file (CSV as Excel saves it, or YAML) and, for CSV, how it was saved."""
    if path.suffix.lower() in {".yml", ".yaml"}:
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        if isinstance(data, dict):
            data = data.get("beskeder") or data.get("rows") or []
        rows = [{str(k): "" if v is None else str(v) for k, v in row.items()} for row in data if isinstance(row, dict)]
        return rows, None
    text, encoding = _decode(path.read_bytes())
    first = text.splitlines()[0] if text else ""
    delimiter = max((";", ",", "\t"), key=first.count) if first else ";"
    rows = [
        {(k or "").strip(): (v or "") for k, v in row.items()}
        for row in csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    ]
    return rows, SheetFormat(encoding, delimiter)


def read_rows(path: Path) -> List[Dict[str, str]]:
    """Rows of a review file (CSV with ; , or tab as separator, UTF-8 or Windows-1252, or YAML)."""
    return read_sheet(path)[0]


def clean_text(text: str) -> str:
    text = text or ""
    if text.startswith("'") and text[1:2] in ("=", "+", "-", "@"):
        text = text[1:]  # make review's guard against Excel formulas (trainer/review.py safe_cell)
    text = " ".join(text.split())
    text = mask_cpr(text)[0].replace(CPR_MASK, "cpr-nummer")
    return _ANNOTATION_CHARS.sub("", text).strip()


def load_examples(nlu_dir: Path) -> List[Tuple[str, str]]:
    """(text, intent) of every training example in the folder (entity markup removed)."""
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(nlu_dir))
    return [(ex.get("text"), ex.get("intent")) for ex in data.intent_examples]


def plan(rows: Sequence[Dict[str, str]], intents: Sequence[str], existing: Sequence[Tuple[str, str]],
         near: float = NEAR_DUPLICATE) -> Outcome:
    outcome = Outcome()
    valid = set(intents) - {"nlu_fallback"}
    index = IntentIndex(existing)
    labelled = []
    for number, row in enumerate(rows, start=2):  # row 1 is the header in a spreadsheet
        label = (row.get("ret_intent") or "").strip()
        if label.casefold() in SKIP_LABELS:
            continue
        label = {name.casefold(): name for name in valid}.get(label.casefold(), label)  # "Find_Form" is fine
        text = clean_text(row.get("tekst") or row.get("text") or "")
        if not text:
            outcome.errors.append(f"Række {number}: der er ingen tekst.")
            continue
        if label not in valid:
            close = [i for i in valid if normalise(i) == normalise(label)]
            close = close or difflib.get_close_matches(label.casefold(), sorted(valid), n=1, cutoff=0.75)
            hint = f" Mente du «{close[0]}»?" if close else ""
            outcome.errors.append(f"Række {number}: «{label}» er ikke en intent, assistenten kender.{hint}")
            continue
        labelled.append((number, text, label))
    if outcome.errors:
        return outcome
    for number, text, label in labelled:
        norm = normalise(text)
        if norm in index.normalised:
            other = index.normalised[norm]
            if other == label:
                outcome.skipped.append((text, "findes allerede"))
            else:
                outcome.skipped.append((text, f"står allerede som eksempel på {other} – ret det dér, hvis det er forkert"))
            continue
        nearest_intent, nearest_text, score = index.nearest(text)
        if score >= near and nearest_intent == label:
            outcome.skipped.append((text, f"næsten magen til «{nearest_text}»"))
            continue
        scores = index.intent_scores(text)
        if scores:
            best = max(scores, key=scores.get)
            if best != label and scores[best] > scores.get(label, 0.0):
                outcome.warnings.append(
                    f"«{text}» (sat til {label}) ligner mere eksemplerne på {best} "
                    f"({scores[best]:.2f} mod {scores.get(label, 0.0):.2f}). Tjek, at intenten er rigtig."
                )
        outcome.added.setdefault(label, []).append(text)
        index.add(text, label)
    return outcome


def read_target(path: Path) -> Dict[str, List[str]]:
    """The examples already in the trainers' file, by intent, in file order."""
    if not path.exists():
        return {}
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    result: Dict[str, List[str]] = {}
    for item in data.get("nlu") or []:
        if "intent" not in item:
            continue
        lines = [line.strip() for line in str(item.get("examples") or "").splitlines()]
        result.setdefault(item["intent"], []).extend(line[2:].strip() for line in lines if line.startswith("- "))
    return result


def render_target(examples: Dict[str, List[str]]) -> str:
    parts = [HEADER]
    for intent in sorted(examples):
        if not examples[intent]:
            continue
        parts.append(f"  - intent: {intent}\n    examples: |\n")
        parts.extend(f"      - {text}\n" for text in examples[intent])
    return "".join(parts)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Tilføj de gennemgåede beskeder til træningsdata.")
    parser.add_argument("file", type=Path, help="den udfyldte fil fra make review")
    parser.add_argument("--dry-run", action="store_true", help="vis kun, hvad der ville ske")
    parser.add_argument("--near", type=float, default=NEAR_DUPLICATE, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    path = args.file if args.file.is_absolute() else Path.cwd() / args.file
    if not path.exists():
        print(f"FEJL: filen {args.file} findes ikke.", file=sys.stderr)
        return 1
    nlu_dir = args.root / "data" / "nlu"
    target = nlu_dir / TARGET_NAME
    rows, sheet = read_sheet(path)
    if sheet is not None:
        print(f"Læste {len(rows)} rækker fra {path.name} ({sheet.describe()}).")
    outcome = plan(rows, domain_intents(args.root / "domain"), load_examples(nlu_dir), near=args.near)
    if outcome.errors:
        print("Jeg har ikke ændret noget, fordi nogle rækker skal rettes først:", file=sys.stderr)
        for error in outcome.errors:
            print(f"  - {error}", file=sys.stderr)
        print("Se listen over intents i docs/traening.md.", file=sys.stderr)
        return 1

    for text, why in outcome.skipped:
        print(f"  sprunget over: «{text}» ({why})")
    for warning in outcome.warnings:
        print(f"  ADVARSEL: {warning}")
    if not outcome.count:
        print("Ingen nye eksempler at tilføje. Træningsdata er uændret.")
        return 0
    for intent, texts in sorted(outcome.added.items()):
        print(f"{intent}: +{len(texts)}")
        for text in texts:
            print(f"  + {text}")
    shown = target.relative_to(args.root) if target.is_relative_to(args.root) else target
    if args.dry_run:
        print(f"Prøvekørsel: {outcome.count} eksempler ville blive tilføjet til {shown}. Intet er ændret.")
        return 0
    merged = read_target(target)
    for intent, texts in outcome.added.items():
        merged.setdefault(intent, []).extend(texts)
    target.write_text(render_target(merged), encoding="utf-8")
    print(f"Tilføjet {outcome.count} eksempler til {shown}.")
    print("Næste skridt: make retrain (træner en ny model og sammenligner den med den i drift).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
