"""One reviewed message, one decision: an example for an intent, form or rule topic, "ignore",
or a note to AF's catalogue owner.

An example goes where ``make add`` puts it (data/nlu/fra-traenere.yml, grouped by intent,
trainer/add_examples.py's format) after the same checks: a known intent, not already an
example, not nearly the same as one, and a warning when the text is closer to another
intent's examples. A form or rule topic is an example of find_form / ask_question, and the
catalogue search is asked too: if it would not find that form or topic for this text, the
trainer is told to add words to it.

Decisions are remembered by a hash of the normalised text (never the text), so a reviewed
message does not come back in the next review: var/traener/beslutninger.json.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from af_core.textsim import normalise
from trainer import add_examples
from trainer.files import TrainerError, digest, read_text, shown, write_lock, write_text
from trainer.project import Project, find

KINDS = ("intent", "form", "faq", "ignore", "note")
FORM_INTENT, FAQ_INTENT = "find_form", "ask_question"
MAX_TEXT = 500
MAX_NOTE = 1000
# [text](entity) and [text]{"entity": ...}: the text is the example, the markup is not.
_ENTITY = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")
NOTES_HEADER = (
    "# Ønsker til blanketkataloget og regelsvarene fra AF's trænere (træner-værktøjet).\n"
    "# Katalogejeren læser dem og retter profiles/<profil>/forms.yml og faq.yml.\n"
    "# Beskederne er lederes egne ord med CPR-numre fjernet: filen slettes af make purge.\n"
)


def load_examples(nlu_dir: Path) -> List[Tuple[str, str]]:
    """(text, intent) of every training example in data/nlu (entity markup removed), without Rasa."""
    found: List[Tuple[str, str]] = []
    for path in sorted(nlu_dir.rglob("*.yml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise TrainerError(f"{path.name} kan ikke læses: {exc}") from exc
        for item in data.get("nlu") or []:
            if not isinstance(item, dict) or "intent" not in item:
                continue
            for line in str(item.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    found.append((_ENTITY.sub(r"\1", line[2:].strip()), str(item["intent"])))
    return found


def text_key(text: str) -> str:
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()[:24]


class Decisions:
    """What trainers decided about reviewed messages, keyed by a hash of the normalised text."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def all(self) -> Dict[str, Dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, text: str) -> Optional[Dict[str, Any]]:
        return self.all().get(text_key(text))

    def record(self, text: str, decision: Dict[str, Any]) -> None:
        data = self.all()
        data[text_key(text)] = decision
        write_text(self.path, json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True))


def decisions(project: Project) -> Decisions:
    return Decisions(project.var_dir / "beslutninger.json")


# ---------------------------------------------------------------------------------- checks
def _target(project: Project, kind: str, target: str) -> Tuple[str, str]:
    """(intent, Danish name of the choice) for an intent/form/faq choice; TrainerError otherwise."""
    if kind == "intent":
        item = find(project.intents(), target)
        if item is None:
            raise TrainerError(f"«{target}» er ikke en intent, assistenten kender. Vælg en fra listen.")
        return item["id"], f"intenten {item['id']} ({item['title']})"
    if kind == "form":
        item = find(project.forms(), target)
        if item is None:
            raise TrainerError(f"Blanketten «{target}» findes ikke i kataloget. Vælg en fra listen.")
        return FORM_INTENT, f"blanketten «{item['title']}»"
    if kind == "faq":
        item = find(project.faqs(), target)
        if item is None:
            raise TrainerError(f"Regelsvaret «{target}» findes ikke i kataloget. Vælg et fra listen.")
        return FAQ_INTENT, f"regelsvaret «{item['title']}»"
    raise TrainerError("Vælg intent, blanket, regelsvar, «ignorér» eller «mangler i kataloget».")


def clean(text: str) -> str:
    text = add_examples.clean_text(str(text or ""))[:MAX_TEXT].strip()
    if not text:
        raise TrainerError("Beskeden er tom. Skriv den tekst, der skal bruges som eksempel.")
    return text


def _catalogue_check(project: Project, kind: str, target: str, text: str) -> List[str]:
    """Would the catalogue search find the chosen form / rule topic for this text?"""
    if kind not in ("form", "faq"):
        return []
    try:
        profile = project.load_profile()
        if kind == "form":
            from af_core.catalogue import load_form_catalogue

            catalogue = load_form_catalogue(profile)
            title = lambda i: catalogue.get(i).title  # noqa: E731
            noun, where = "blanket", "blanketten"
        else:
            from af_core.catalogue import load_faq_catalogue

            catalogue = load_faq_catalogue(profile)
            title = lambda i: catalogue.get(i).title  # noqa: E731
            noun, where = "regelsvar", "regelsvaret"
        decision = catalogue.search(text)
    except Exception as exc:  # a broken catalogue is reported, not hidden
        return [f"Kataloget kunne ikke læses: {exc}"]
    ids = [hit.id for hit in decision.hits]
    chosen = title(target)
    if decision.kind == "sure" and ids[:1] == [target]:
        return []
    if decision.kind == "unsure" and target in ids:
        return [f"Søgningen er i tvivl: assistenten tilbyder «{chosen}» sammen med "
                f"{len(ids) - 1} andre. Tilføj gerne et ord fra beskeden til {where} under «Ret blanketter og svar»."]
    found = f"den finder «{title(ids[0])}»" if ids else f"den finder ingen {noun}"
    return [f"Søgningen i kataloget finder ikke «{chosen}» for denne besked ({found}). "
            f"Tilføj et ord eller en vending fra beskeden til {where} under «Ret blanketter og svar», "
            "ellers viser assistenten stadig det forkerte."]


def check(project: Project, text: str, kind: str, target: str) -> Dict[str, Any]:
    """What adding ``text`` as an example of the choice would do, without changing anything."""
    text = clean(text)
    intent, label = _target(project, kind, target)
    outcome = add_examples.plan([{"tekst": text, "ret_intent": intent}],
                                [i["id"] for i in project.intents()], load_examples(project.nlu_dir))
    if outcome.errors:
        raise TrainerError(" ".join(outcome.errors))
    skipped = outcome.skipped[0][1] if outcome.skipped else None
    conflict = bool(skipped and skipped.startswith("står allerede som eksempel"))
    warnings = list(outcome.warnings) + _catalogue_check(project, kind, target, text)
    return {"text": text, "intent": intent, "label": label, "skip": skipped, "conflict": conflict,
            "warnings": warnings, "file": str(add_examples.TARGET_NAME)}


# ---------------------------------------------------------------------------------- writes
def _add_example(project: Project, text: str, intent: str) -> None:
    target = project.trainers_file
    merged = add_examples.read_target(target)
    merged.setdefault(intent, []).append(text)
    write_text(target, add_examples.render_target(merged))


def annotate(project: Project, *, original: str, text: str, kind: str, target: str = "", note: str = "",
             user: str, confirm: bool = False, now: Optional[float] = None) -> Dict[str, Any]:
    """Carry out one decision. Returns what happened (``status``: added / exists / ignored / noted /
    needs_confirmation) and Danish ``message``; TrainerError when the choice is not possible."""
    now = time.time() if now is None else now
    if kind not in KINDS:
        raise TrainerError("Vælg intent, blanket, regelsvar, «ignorér» eller «mangler i kataloget».")
    original = str(original or text or "")
    if not original.strip():
        raise TrainerError("Beskeden er tom.")
    decision = {"kind": kind, "target": target or "", "by": user, "at": now}
    with write_lock(project.root):
        if kind == "ignore":
            decisions(project).record(original, decision)
            return {"status": "ignored", "message": "Beskeden er sprunget over. Den kommer ikke med i næste gennemgang."}
        if kind == "note":
            wish = " ".join(str(note or "").split())[:MAX_NOTE]
            if len(wish) < 5:
                raise TrainerError("Skriv kort, hvilken blanket eller hvilket svar der mangler.")
            _add_note(project, clean(text or original), wish, user, now)
            decisions(project).record(original, decision)
            return {"status": "noted", "message": f"Ønsket er skrevet til {shown(project.root, project.notes_file)} "
                                                  "til katalogejeren."}
        result = check(project, text or original, kind, target)
        if result["conflict"]:
            raise TrainerError(f"«{result['text']}» {result['skip']}.")
        if result["skip"]:
            decisions(project).record(original, decision)
            return {**result, "status": "exists",
                    "message": f"Ikke tilføjet: {result['skip']}. Beskeden er markeret som gennemgået."}
        if result["warnings"] and not confirm:
            return {**result, "status": "needs_confirmation",
                    "message": "Læs advarslen. Er du sikker, så vælg «Tilføj alligevel»."}
        _add_example(project, result["text"], result["intent"])
        decisions(project).record(original, decision)
    return {**result, "status": "added",
            "message": f"Tilføjet som eksempel på {result['label']} i {shown(project.root, project.trainers_file)}. "
                       "Træn en ny model, så assistenten lærer det."}


def _add_note(project: Project, text: str, wish: str, user: str, now: float) -> None:
    path = project.notes_file
    try:
        notes = yaml.safe_load(read_text(path)) or []
    except yaml.YAMLError:
        notes = []
    if not isinstance(notes, list):
        notes = []
    notes.append({"dato": dt.datetime.fromtimestamp(now).strftime("%Y-%m-%d %H:%M"), "af": user,
                  "besked": text, "oenske": wish})
    write_text(path, NOTES_HEADER + yaml.safe_dump(notes, allow_unicode=True, sort_keys=False, width=100))


def notes(project: Project) -> List[Dict[str, Any]]:
    try:
        data = yaml.safe_load(read_text(project.notes_file)) or []
    except yaml.YAMLError:
        return []
    return [n for n in data if isinstance(n, dict)] if isinstance(data, list) else []


def trainers_examples(project: Project) -> Dict[str, Any]:
    """The trainers' own examples file as it is now (what ``git diff`` will show)."""
    text = read_text(project.trainers_file)
    return {"file": shown(project.root, project.trainers_file), "hash": digest(text),
            "examples": add_examples.read_target(project.trainers_file)}


def mark_decided(groups: Sequence[Dict[str, Any]], project: Project) -> List[Dict[str, Any]]:
    """The review's groups with each message's earlier decision (if any) attached."""
    known = decisions(project).all()
    for group in groups:
        for message in group["messages"]:
            message["decision"] = known.get(text_key(message["text"]))
    return list(groups)
