"""Add a new form or a new rule topic (FAQ) to the catalogue, in the YAML file itself.

The same fields as an edit (``trainer.editing.FIELDS``) plus the id: the trainer may choose it
(checked against the catalogue's id rule, ``af_core.catalogue.ID_RE``, and the ids already in the
file), or leave it empty and get one made from the title ("Anmeldelse af arbejdsskade" ->
``anmeldelse_arbejdsskade``; ``_2``, ``_3`` … when it is taken).

The entry is written after the last entry of the list, field by field in the order the
catalogues use, with the same renderers as an edit (long texts folded, one word a line), so
``git diff`` shows one plain added block and every other line stays as it was. Before anything
is written the whole new file goes through the assistant's own validators
(``trainer.editing._validate_catalogue``: ``parse_forms``, or ``parse_faq`` +
``check_related_forms``) and is read back: the new entry must say what the trainer wrote, and
every other entry must be unchanged. The write happens under the workbench's write lock.

A new entry needs no new model: the chat searches the catalogue itself (``af_core.catalogue``
re-reads the file when it changes, and the domain's ``form_id``/``faq_id`` slots are free text),
so it is found as soon as the leader's message is understood as a form or rule question. On top
of the validators ``preview`` and ``create`` give advice the project's tests rely on (tests/
test_forms_lookup.py, tests/test_faq.py): enough words, a short "when", 2-4 sentences, a test
story for a rule topic, and whether the catalogue search finds the entry by its own title.
"""
from __future__ import annotations

import json
import re
import unicodedata
from typing import Any, Dict, List, Optional, Sequence

import yaml

from trainer import editing
from trainer.files import Conflict, TrainerError, digest, read_text, shown, write_lock, write_text
from trainer.project import Project

KINDS = ("form", "faq")
NOUNS = {"form": "blanketten", "faq": "regelemnet"}
NEW_TITLES = {"form": "Ny blanket", "faq": "Nyt regelemne"}
MAX_ID = 60
SUGGESTED_ID = 40  # a made id is cut at a word boundary near this length
MIN_WORDS = 8  # docs/blanketter-og-faq.md and tests/test_forms_lookup.py
FILLER = {"af", "og", "til", "for", "i", "en", "et", "med", "paa", "om", "ved", "fra", "den", "det", "de"}
ID_HELP = "Id (valgfrit: lad det stå tomt, så laves det af navnet; kun små bogstaver a-z, tal og _)"
_ID_RULE = ("Id'et må kun have små bogstaver a-z, tal og _, og det skal begynde med et bogstav "
            "(fx arbejdsskade).")
_SENTENCE_END = re.compile(r"[.!?](?=\s+[A-ZÆØÅ]|\s*$)")  # "1. september" is no sentence end


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise TrainerError("Der kan kun oprettes blanketter og regelemner her.")


def _id_rule() -> "re.Pattern[str]":
    from af_core.catalogue import ID_RE

    return ID_RE


def _existing_ids(data: Any, kind: str) -> List[str]:
    return [str(e.get("id")) for e in (data or {}).get(editing._list_key(kind)) or []
            if isinstance(e, dict) and e.get("id") is not None]


def _reserved(kind: str) -> List[str]:
    """Ids the chat uses for something else: a form button's payload "none of these"."""
    from af_core.catalogue import NO_FORM_ID

    return [NO_FORM_ID] if kind == "form" else []


def suggest_id(title: str, taken: Sequence[str], kind: str = "form") -> str:
    """An id made from ``title`` that follows the id rule and is not in ``taken``."""
    text = str(title or "").lower()
    for letter, spelled in (("æ", "ae"), ("ø", "oe"), ("å", "aa")):
        text = text.replace(letter, spelled)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = [w for w in re.split(r"[^a-z0-9]+", text) if w]
    meaningful = [w for w in words if w not in FILLER] or words
    while meaningful and not meaningful[0][0].isalpha():
        meaningful = meaningful[1:]
    base = ""
    for word in meaningful:
        longer = f"{base}_{word}" if base else word
        if base and len(longer) > SUGGESTED_ID:
            break
        base = longer[:SUGGESTED_ID]
    base = base.strip("_") or ("blanket" if kind == "form" else "emne")
    taken_set = set(taken)
    candidate, number = base, 2
    while candidate in taken_set:
        candidate, number = f"{base}_{number}", number + 1
    return candidate


def _chosen_id(value: Any, taken: Sequence[str], reserved: Sequence[str], path_name: str) -> Optional[str]:
    chosen = str(value or "").strip()
    if not chosen:
        return None
    if len(chosen) > MAX_ID or not _id_rule().match(chosen):
        raise TrainerError(_ID_RULE + f" Højst {MAX_ID} tegn.")
    if chosen in reserved:
        raise TrainerError(f"Id'et «{chosen}» bruger assistenten selv til noget andet. Vælg et andet.")
    if chosen in taken:
        raise Conflict(f"Id'et «{chosen}» findes allerede i {path_name}. Vælg et andet, eller lad feltet stå tomt.")
    return chosen


def fields(project: Project, kind: str) -> Dict[str, Any]:
    """The empty fields of a new entry, as the page shows them (the id field first)."""
    _check_kind(kind)
    path = editing._file(project, kind)
    empty = {key: [] if shape == "list" else "" for key, _, shape in editing.FIELDS[kind]}
    return {"kind": kind, "id": None, "title": NEW_TITLES[kind], "file": shown(project.root, path), "new": True,
            "fields": [{"name": "id", "label": ID_HELP, "type": "text", "value": ""}]
            + editing._catalogue_fields(project, kind, empty)}


# --------------------------------------------------------------------------- writing the entry
def _layout(lines: List[str], list_key: str, last_id: str) -> Dict[str, int]:
    """Where the list's last entry ends and how the file indents entries and list items."""
    span = editing.entry_span(lines, list_key, last_id)
    field_indent = span.indent + 2
    item_indent = field_indent + 2
    for number in range(span.start + 1, span.end):
        if lines[number].lstrip().startswith("- "):
            item_indent = editing._indent(lines[number])
            break
    return {"end": span.end, "indent": span.indent, "field": field_indent, "item": item_indent}


def _entry_lines(kind: str, entry_id: str, values: Dict[str, Any], layout: Dict[str, int]) -> List[str]:
    lines = [" " * layout["indent"] + "- " + yaml.safe_dump({"id": entry_id}, width=10**6).rstrip("\n")]
    for key, _, shape in editing.FIELDS[kind]:
        value = values.get(key)
        if shape == "list":
            if value:
                lines.extend(editing._list(key, value, layout["field"], layout["item"]))
        elif key == "url":  # double-quoted, as the catalogues write their links ("{intranet}/...")
            lines.append(" " * layout["field"] + f"url: {json.dumps(value, ensure_ascii=False)}")
        else:
            lines.extend(editing._scalar(key, value, layout["field"]))
    return lines


def _plan(project: Project, kind: str, submitted: Dict[str, Any]) -> Dict[str, Any]:
    """The file as it would be with the new entry (nothing written)."""
    _check_kind(kind)
    path = editing._file(project, kind)
    text = read_text(path)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise TrainerError(f"{path.name} kan ikke læses: {exc}") from exc
    taken = _existing_ids(data, kind)
    if not taken:
        raise TrainerError(f"{path.name} har ingen liste at tilføje til. Spørg en udvikler.")
    values = editing._normalised(kind, editing._clean(kind, submitted))
    for key, label, shape in editing.FIELDS[kind]:
        if shape != "list" and not str(values.get(key) or "").strip():
            raise TrainerError(f"Feltet «{label}» skal udfyldes.")
    if not str(values["url"]).startswith(("{intranet}/", "https://")):
        raise TrainerError("Linket skal begynde med {intranet}/ (intranettets adresse) eller https://.")
    chosen = _chosen_id(submitted.get("id"), taken, _reserved(kind), path.name)
    entry_id = chosen or suggest_id(values["title"], taken + _reserved(kind), kind)
    lines = text.splitlines()
    layout = _layout(lines, editing._list_key(kind), taken[-1])
    added = _entry_lines(kind, entry_id, values, layout)
    out = lines[: layout["end"]] + [""] + added + lines[layout["end"]:]
    new_text = "\n".join(out) + "\n"
    new_data, parsed = editing._validate_catalogue(project, kind, new_text, path)
    key = editing._list_key(kind)
    if (new_data.get(key) or [])[:-1] != data.get(key) or \
            editing._normalised(kind, editing._current_entry(new_data, kind, entry_id)) != values:
        raise TrainerError("Den nye post kunne ikke skrives sikkert. Spørg en udvikler.")
    return {"path": path, "text": text, "new_text": new_text, "id": entry_id, "chosen": chosen is not None,
            "values": values, "parsed": parsed, "lines": added}


def advice(project: Project, kind: str, entry_id: str, values: Dict[str, Any], parsed: Sequence[Any]) -> List[str]:
    """What the project's own tests and guide ask of an entry, beyond what the assistant refuses."""
    from af_core import catalogue

    said: List[str] = []
    if kind == "form":
        if len(values["words"]) < MIN_WORDS:
            said.append(f"Skriv gerne mindst {MIN_WORDS} ord og vendinger, ledere bruger (du har "
                        f"{len(values['words'])}). Så finder assistenten blanketten lettere.")
        when = str(values["when"])
        if not when.endswith(".") or len(when.split(".")) > 3:
            said.append("«Hvornår bruger man den?» skal være én kort sætning, der slutter med punktum.")
        index = catalogue.FormCatalogue(tuple(parsed), catalogue.build_form_index(parsed))
    else:
        count = len(_SENTENCE_END.findall(str(values["answer"]).strip()))
        if not 2 <= count <= 4:
            said.append(f"Svaret skal være 2-4 korte sætninger (det har {count}).")
        said.append("Et nyt regelemne skal have en testsamtale: bed en udvikler om at tilføje en til "
                    "tests/stories/test_knowledge.yml. Ellers fejler make test.")
        index = catalogue.FaqCatalogue(tuple(parsed), catalogue.build_faq_index(parsed))
    if not str(values["url"]).startswith("{intranet}/"):
        said.append("Linket peger ikke på intranettet ({intranet}/…). Det må det godt, men testene forventer "
                    "intranet-links, så sig det til en udvikler.")
    best = index.search(str(values["title"])).best
    if best is None or best.id != entry_id:
        other = index.get(best.id).title if best is not None else None
        said.append(f"Skriver en leder «{values['title']}», finder søgningen "
                    + (f"«{other}» i stedet." if other else "ingenting.")
                    + " Tilføj ord og vendinger, der er særlige for den nye.")
    missed = [w for w in values["words"] if (index.search(w).best or _NoHit).id != entry_id]
    if missed:
        said.append("Søgningen finder noget andet for: " + ", ".join(f"«{w}»" for w in missed[:5])
                    + (f" og {len(missed) - 5} flere" if len(missed) > 5 else "") + ".")
    return said


class _NoHit:
    id = None


def preview(project: Project, kind: str, submitted: Dict[str, Any]) -> Dict[str, Any]:
    """How the chat would show the new entry, its id and the advice (nothing is written)."""
    plan = _plan(project, kind, submitted)
    entry = next(e for e in plan["parsed"] if e.id == plan["id"])
    message = editing._chat_message(project, kind, entry, project.domain_responses())
    return {"messages": [message], "id": plan["id"], "file": shown(project.root, plan["path"]),
            "advice": advice(project, kind, plan["id"], plan["values"], plan["parsed"]), "lines": plan["lines"]}


def create(project: Project, kind: str, submitted: Dict[str, Any]) -> Dict[str, Any]:
    """Write the new entry (under the write lock). Returns its id, file, the hash to edit it with,
    the advice and a Danish message."""
    with write_lock(project.root):
        plan = _plan(project, kind, submitted)  # the ids are read again under the lock
        write_text(plan["path"], plan["new_text"])
        lines = read_text(plan["path"]).splitlines()
        block = editing.entry_span(lines, editing._list_key(kind), plan["id"])
        entry_hash = digest("\n".join(lines[block.start:block.end]))
    file = shown(project.root, plan["path"])
    what = ("Assistenten finder den med det samme, når en leder spørger efter en blanket: den søger selv i "
            "blanketkataloget, så du skal ikke træne en ny model." if kind == "form" else
            "Assistenten bruger det med det samme, når en leder stiller et regelspørgsmål om emnet: den søger "
            "selv i regelsvarene, så du skal ikke træne en ny model.")
    return {"id": plan["id"], "kind": kind, "file": file, "hash": entry_hash, "title": plan["values"]["title"],
            "advice": advice(project, kind, plan["id"], plan["values"], plan["parsed"]),
            "message": f"{NEW_TITLES[kind]} «{plan['values']['title']}» er gemt i {file} med id'et {plan['id']}. "
                       + what}
