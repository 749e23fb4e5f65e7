"""Edit a form, a rule answer or a response's wording, field by field, in the YAML files themselves.

Only the lines of the fields that changed are rewritten; every other line (comments such as
``# EKSEMPEL``, anchors, other entries) stays as it was, so ``git diff`` shows exactly the
trainer's change. Before anything is written the whole new file is checked by the validators
the assistant itself uses when it loads the file (``af_core.catalogue.parse_forms``,
``af_core.catalogue.parse_faq`` + ``check_related_forms``; for responses: the placeholders the
actions fill stay the same), and read back to make sure it says what the trainer meant.

Two trainers at once: ``load`` returns a hash of the entry's lines as they are; ``save`` takes
the write lock, compares that hash with the entry's lines now, and refuses (``Conflict``) when
somebody saved a change in between, so nobody overwrites what they never saw. Different
entries of the same file can be edited at the same time.
"""
from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from trainer.files import Conflict, NotFound, TrainerError, digest, read_text, shown, write_lock, write_text
from trainer.project import Project

KINDS = ("form", "faq", "response")
NOUNS = {"form": "blanketten", "faq": "regelsvaret", "response": "svaret"}
MAX_FIELD = 4000
MAX_RESPONSE = 1000
_ENTRY = re.compile(r"^(?P<indent> *)-\s+id:\s*[\"']?(?P<id>[A-Za-z0-9_]+)[\"']?\s*(?:#.*)?$")
_KEY = re.compile(r"^(?P<indent> *)(?:-\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?P<rest>.*)$")
_PLACEHOLDER = re.compile(r"{([^\n{}]+?)}")

# The fields a trainer may change, in the order the page shows them.
FIELDS = {
    "form": [
        ("title", "Navn (det, lederen ser)", "text"),
        ("url", "Link", "text"),
        ("area", "Område (bruges, når lederen vil have hjælp)", "area"),
        ("when", "Hvornår bruger man den? (én kort sætning)", "textarea"),
        ("words", "Ord og vendinger, ledere bruger (ét pr. linje)", "list"),
    ],
    "faq": [
        ("title", "Overskrift (det, lederen ser på en knap)", "text"),
        ("topic", "Område (hvis svaret ikke hjælper, tilbydes hjælp om det)", "area"),
        ("url", "Link til de fulde regler", "text"),
        ("answer", "Svaret (2-4 korte sætninger, du-form)", "textarea"),
        ("words", "Ord og vendinger, ledere bruger (ét pr. linje)", "list"),
        ("forms", "Blanketter, der hører til (id'er, ét pr. linje; valgfrit)", "list"),
    ],
}
FOLDED = {"when", "answer"}  # long texts are written folded (>-), as the catalogues do
OPTIONAL_LISTS = {"forms"}


# --------------------------------------------------------------------------- finding lines
@dataclass
class Span:
    start: int  # first line (index)
    end: int  # one past the last line
    indent: int


def _meaningful_end(lines: List[str], start: int, end: int) -> int:
    """``end`` moved back over trailing blank and comment-only lines (they stay where they are)."""
    while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    return end


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def entry_span(lines: List[str], list_key: str, entry_id: str) -> Span:
    """The lines of ``- id: entry_id`` in the list ``list_key:`` of a catalogue file."""
    in_list = False
    for number, line in enumerate(lines):
        if re.match(rf"^{list_key}:\s*(#.*)?$", line):
            in_list = True
            continue
        if not in_list:
            continue
        if line.strip() and not line.startswith((" ", "-", "#")):
            break  # the next top-level key
        found = _ENTRY.match(line)
        if found and found.group("id") == entry_id:
            indent = len(found.group("indent"))
            end = number + 1
            while end < len(lines):
                nxt = lines[end]
                if nxt.strip() and not nxt.lstrip().startswith("#") and _indent(nxt) <= indent:
                    break
                end += 1
            return Span(number, _meaningful_end(lines, number, end), indent)
    raise NotFound(f"«{entry_id}» findes ikke i filen.")


def response_span(lines: List[str], name: str) -> Span:
    in_responses = False
    for number, line in enumerate(lines):
        if re.match(r"^responses:\s*(#.*)?$", line):
            in_responses = True
            continue
        if not in_responses:
            continue
        if line.strip() and not line.startswith((" ", "#")):
            break
        found = _KEY.match(line)
        if found and found.group("key") == name and not found.group("rest").strip():
            indent = len(found.group("indent"))
            end = number + 1
            while end < len(lines):
                nxt = lines[end]
                if nxt.strip() and not nxt.lstrip().startswith("#") and _indent(nxt) <= indent:
                    break
                end += 1
            return Span(number, _meaningful_end(lines, number, end), indent)
    raise NotFound(f"Svaret «{name}» findes ikke.")


def field_spans(lines: List[str], block: Span) -> Dict[str, Span]:
    """Each key's lines inside an entry (the first line's ``- id:`` counts as the key ``id``)."""
    field_indent = block.indent + 2
    spans: Dict[str, Span] = {}
    current: Optional[Tuple[str, int]] = None
    for number in range(block.start, block.end):
        line = lines[number]
        found = _KEY.match(line)
        starts = found and (_indent(line) == field_indent or (number == block.start and line.lstrip().startswith("-")))
        if starts:
            if current:
                spans[current[0]] = Span(current[1], _meaningful_end(lines, current[1], number), field_indent)
            current = (found.group("key"), number)
    if current:
        spans[current[0]] = Span(current[1], _meaningful_end(lines, current[1], block.end), field_indent)
    return spans


# --------------------------------------------------------------------------- writing values
def _scalar(key: str, value: str, indent: int) -> List[str]:
    pad = " " * indent
    if key in FOLDED and "\n" not in value and len(value) > 90:
        body = textwrap.wrap(value, width=100 - indent - 2, break_long_words=False, break_on_hyphens=False)
        return [f"{pad}{key}: >-"] + [f"{pad}  {line}" for line in body]
    dumped = yaml.safe_dump({key: value}, allow_unicode=True, width=10**6, default_flow_style=False).rstrip("\n")
    if "\n" in dumped:  # a multi-line text: one JSON string is a valid YAML double-quoted scalar
        dumped = f"{key}: {json.dumps(value, ensure_ascii=False)}"
    return [pad + dumped]


def _list(key: str, values: List[str], indent: int, item_indent: int) -> List[str]:
    lines = [" " * indent + f"{key}:"]
    for value in values:
        item = yaml.safe_dump([value], allow_unicode=True, width=10**6, default_flow_style=False).rstrip("\n")
        lines.append(" " * item_indent + item)
    return lines


def _item_indent(lines: List[str], span: Optional[Span], default: int) -> int:
    if span is not None:
        for line in lines[span.start + 1: span.end]:
            if line.lstrip().startswith("- "):
                return _indent(line)
    return default


# --------------------------------------------------------------------------- the entries
def _file(project: Project, kind: str) -> Path:
    return project.profile_dir / ("forms.yml" if kind == "form" else "faq.yml")


def _list_key(kind: str) -> str:
    return "forms" if kind == "form" else "topics"


def _areas(project: Project) -> List[str]:
    return list(project.load_profile().topics)


def _clean(kind: str, fields: Dict[str, Any]) -> Dict[str, Any]:
    """The submitted fields as the file should hold them (texts trimmed, lists one item a line)."""
    clean: Dict[str, Any] = {}
    for key, _, shape in FIELDS[kind]:
        if key not in fields:
            continue
        value = fields[key]
        if shape == "list":
            items = value if isinstance(value, list) else str(value or "").splitlines()
            clean[key] = [" ".join(str(i).split()) for i in items if str(i).strip()][:300]
        else:
            text = str(value or "")[:MAX_FIELD]
            clean[key] = " ".join(text.split()) if key in FOLDED or shape != "textarea" else text.strip()
    return clean


def _current_entry(data: Any, kind: str, entry_id: str) -> Dict[str, Any]:
    for entry in (data or {}).get(_list_key(kind)) or []:
        if isinstance(entry, dict) and str(entry.get("id")) == entry_id:
            return entry
    raise NotFound(f"«{entry_id}» findes ikke i kataloget.")


def _normalised(kind: str, entry: Dict[str, Any]) -> Dict[str, Any]:
    return _clean(kind, {key: entry.get(key) if entry.get(key) is not None else ([] if shape == "list" else "")
                         for key, _, shape in FIELDS[kind]})


def _validate_catalogue(project: Project, kind: str, text: str, path: Path) -> Any:
    """The new file, through the assistant's own validators. Returns the parsed entries."""
    from af_core import catalogue
    from af_core.profile import ProfileError

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TrainerError(f"Filen ville ikke kunne læses: {exc}") from exc
    profile = project.load_profile()
    try:
        if kind == "form":
            return data, catalogue.parse_forms(data, profile, path.name)
        topics = catalogue.parse_faq(data, profile, path.name)
        catalogue.check_related_forms(topics, catalogue.load_form_catalogue(profile), path.name)
        return data, topics
    except ProfileError as exc:
        raise TrainerError(str(exc)) from exc


def _apply(lines: List[str], block: Span, kind: str, new: Dict[str, Any], old: Dict[str, Any]) -> Tuple[List[str], List[str]]:
    """(the file's new lines, the fields that changed): only changed fields are rewritten."""
    spans = field_spans(lines, block)
    field_indent = block.indent + 2
    changed = [key for key in new if new[key] != old.get(key)]
    replacements: List[Tuple[int, int, List[str]]] = []
    append: List[str] = []
    for key in changed:
        span = spans.get(key)
        shape = next(s for k, _, s in FIELDS[kind] if k == key)
        value = new[key]
        if shape == "list":
            rendered = [] if (not value and key in OPTIONAL_LISTS) else _list(
                key, value, field_indent, _item_indent(lines, span, field_indent + 2))
        else:
            rendered = _scalar(key, value, field_indent)
        if span is None:
            append.extend(rendered)
        else:
            replacements.append((span.start, span.end, rendered))
    out = list(lines)
    for start, end, rendered in sorted(replacements, reverse=True):
        out[start:end] = rendered
    if append:
        end = block.end + sum(len(r) - (e - s) for s, e, r in replacements)
        out[end:end] = append
    return out, changed


def _catalogue_fields(project: Project, kind: str, values: Dict[str, Any]) -> List[Dict[str, Any]]:
    areas = _areas(project)
    fields = []
    for key, label, shape in FIELDS[kind]:
        value = values.get(key)
        fields.append({"name": key, "label": label, "type": "select" if shape == "area" else shape,
                       "options": areas if shape == "area" else None,
                       "value": "\n".join(value) if shape == "list" else value})
    return fields


# --------------------------------------------------------------------------- responses
def _response_file(project: Project, name: str) -> Path:
    found = project.responses().get(name)
    if found is None:
        raise NotFound(f"Svaret «{name}» findes ikke.")
    return found[0]


def _variation_text_spans(lines: List[str], block: Span) -> List[Optional[Span]]:
    """For each variation (``- text: ...`` or ``- custom: ...``) of a response: its text's lines."""
    variations: List[Tuple[int, int]] = []
    item_indent = None
    for number in range(block.start + 1, block.end):
        line = lines[number]
        if line.lstrip().startswith("- ") and (item_indent is None or _indent(line) == item_indent):
            item_indent = _indent(line)
            variations.append((number, _indent(line)))
    spans: List[Optional[Span]] = []
    for index, (start, indent) in enumerate(variations):
        end = variations[index + 1][0] if index + 1 < len(variations) else block.end
        found = None
        for number in range(start, end):
            line = lines[number]
            key = _KEY.match(line)
            key_indent = indent + 2
            if key and key.group("key") == "text" and (number == start or _indent(line) == key_indent):
                stop = number + 1
                while stop < end and (not lines[stop].strip() or _indent(lines[stop]) > key_indent):
                    stop += 1
                found = Span(number, _meaningful_end(lines, number, stop), key_indent)
                break
        spans.append(found)
    return spans


def _render_text_line(line: str, value: str, indent: int) -> List[str]:
    """The new ``text:`` line(s), keeping a leading ``- `` when the text opened the variation."""
    prefix = line[: _indent(line)] + ("- " if line.lstrip().startswith("- ") else "")
    if "\n" in value and not any(l != l.strip() for l in value.split("\n") if l):
        body = [" " * (indent + 2) + l if l else "" for l in value.split("\n")]
        return [f"{prefix}text: |-"] + body
    return [f"{prefix}text: {json.dumps(value, ensure_ascii=False)}"]


def check_response_text(old: str, new: str) -> None:
    """The rules for a response's wording (the same the actions rely on when they fill it)."""
    if not new.strip():
        raise TrainerError("Teksten må ikke være tom.")
    if len(new) > MAX_RESPONSE:
        raise TrainerError(f"Teksten er for lang (højst {MAX_RESPONSE} tegn).")
    stripped = _PLACEHOLDER.sub("", new)
    if "{" in stripped or "}" in stripped:
        raise TrainerError("En krøllet parentes { eller } står alene. Ord i {krøllede parenteser} fyldes ud af "
                           "assistenten: lad dem stå, som de var.")
    before, after = set(_PLACEHOLDER.findall(old or "")), set(_PLACEHOLDER.findall(new))
    if after - before:
        raise TrainerError("Assistenten kender ikke " + ", ".join(f"{{{p}}}" for p in sorted(after - before))
                           + ". Brug kun de ord i krøllede parenteser, der stod der før.")
    if before - after:
        raise TrainerError("Du har fjernet " + ", ".join(f"{{{p}}}" for p in sorted(before - after))
                           + ". Det fylder assistenten ud (fx lederens navn eller et link): lad det stå.")


# --------------------------------------------------------------------------- the three operations
def load(project: Project, kind: str, item_id: str) -> Dict[str, Any]:
    """The entry's fields as the page shows them, and the hash to send back with a change."""
    if kind == "response":
        path = _response_file(project, item_id)
        lines = read_text(path).splitlines()
        block = response_span(lines, item_id)
        variations = project.responses()[item_id][1]
        fields = []
        for index, variation in enumerate(variations):
            if isinstance(variation, dict) and isinstance(variation.get("text"), str):
                buttons = [b.get("title") for b in variation.get("buttons") or [] if isinstance(b, dict)]
                fields.append({"name": f"text_{index}", "label": "Tekst" if len(variations) == 1 else
                               f"Tekst, udgave {index + 1}", "type": "textarea", "value": variation["text"],
                               "buttons": buttons})
        if not fields:
            raise TrainerError(f"Svaret «{item_id}» har ingen tekst, der kan rettes her.")
        return {"kind": kind, "id": item_id, "title": item_id, "file": shown(project.root, path), "fields": fields,
                "hash": digest("\n".join(lines[block.start:block.end]))}
    path = _file(project, kind)
    text = read_text(path)
    lines = text.splitlines()
    block = entry_span(lines, _list_key(kind), item_id)
    entry = _current_entry(yaml.safe_load(text), kind, item_id)
    values = _normalised(kind, entry)
    return {"kind": kind, "id": item_id, "title": str(entry.get("title") or item_id),
            "file": shown(project.root, path), "fields": _catalogue_fields(project, kind, values),
            "hash": digest("\n".join(lines[block.start:block.end]))}


def _block_hash(project: Project, kind: str, item_id: str) -> str:
    if kind == "response":
        lines = read_text(_response_file(project, item_id)).splitlines()
        block = response_span(lines, item_id)
    else:
        lines = read_text(_file(project, kind)).splitlines()
        block = entry_span(lines, _list_key(kind), item_id)
    return digest("\n".join(lines[block.start:block.end]))


def _planned(project: Project, kind: str, item_id: str, fields: Dict[str, Any]) -> Dict[str, Any]:
    """The file as it would be with the change: path, old text, new text, changed fields, block hash."""
    if kind == "response":
        path = _response_file(project, item_id)
        text = read_text(path)
        lines = text.splitlines()
        block = response_span(lines, item_id)
        spans = _variation_text_spans(lines, block)
        variations = project.responses()[item_id][1]
        out, changed = list(lines), []
        for index in reversed(range(len(spans))):
            key = f"text_{index}"
            if key not in fields or spans[index] is None:
                continue
            old = str(variations[index].get("text") or "")
            new = str(fields[key] or "").replace("\r\n", "\n").strip()
            if new == old.strip():
                continue
            check_response_text(old, new)
            span = spans[index]
            out[span.start:span.end] = _render_text_line(lines[span.start], new, span.indent)
            changed.append(key)
        new_text = "\n".join(out) + ("\n" if text.endswith("\n") else "")
        if changed:
            try:
                data = yaml.safe_load(new_text)
            except yaml.YAMLError as exc:
                raise TrainerError(f"Filen ville ikke kunne læses: {exc}") from exc
            now = (data.get("responses") or {}).get(item_id) or []
            for key in changed:
                index = int(key.split("_")[1])
                if str(now[index].get("text")) != str(fields[key]).replace("\r\n", "\n").strip():
                    raise TrainerError("Ændringen kunne ikke skrives sikkert. Spørg en udvikler.")
        return {"path": path, "text": text, "new_text": new_text, "changed": sorted(changed),
                "hash": digest("\n".join(lines[block.start:block.end])), "data": None}
    path = _file(project, kind)
    text = read_text(path)
    lines = text.splitlines()
    block = entry_span(lines, _list_key(kind), item_id)
    old = _normalised(kind, _current_entry(yaml.safe_load(text), kind, item_id))
    new = {**old, **_clean(kind, fields)}
    for key, label, shape in FIELDS[kind]:
        if shape != "list" and not str(new.get(key) or "").strip():
            raise TrainerError(f"Feltet «{label}» skal udfyldes.")
    if "url" in new and new["url"] != old.get("url") and not str(new["url"]).startswith(("{intranet}/", "https://")):
        raise TrainerError("Linket skal begynde med {intranet}/ (intranettets adresse) eller https://.")
    out, changed = _apply(lines, block, kind, new, old)
    new_text = "\n".join(out) + ("\n" if text.endswith("\n") else "")
    data, parsed = _validate_catalogue(project, kind, new_text, path)
    if _normalised(kind, _current_entry(data, kind, item_id)) != new:
        raise TrainerError("Ændringen kunne ikke skrives sikkert. Spørg en udvikler.")
    return {"path": path, "text": text, "new_text": new_text, "changed": changed,
            "hash": digest("\n".join(lines[block.start:block.end])), "data": data, "parsed": parsed}


def preview(project: Project, kind: str, item_id: str, fields: Dict[str, Any]) -> Dict[str, Any]:
    """How the chat would show the entry with the change (nothing is written). TrainerError when
    the change breaks a rule."""
    plan = _planned(project, kind, item_id, fields)
    domain = project.domain_responses()
    if kind == "response":
        texts = [str(fields.get(f"text_{i}", v.get("text", ""))) for i, v in
                 enumerate(project.responses()[item_id][1]) if isinstance(v, dict) and "text" in v]
        buttons = [b.get("title") for v in project.responses()[item_id][1][:1] if isinstance(v, dict)
                   for b in v.get("buttons") or [] if isinstance(b, dict)]
        return {"messages": [{"text": t, "buttons": buttons} for t in texts[:1]], "changed": plan["changed"]}
    entry = next(e for e in plan["parsed"] if e.id == item_id)
    return {"messages": [_chat_message(project, kind, entry, domain)], "changed": plan["changed"]}


def _chat_message(project: Project, kind: str, entry: Any, domain: Dict[str, Any]) -> Dict[str, Any]:
    from af_core.faq_replies import answer_message
    from af_core.form_replies import form_message
    from af_core.responses import render

    def rendered(message: Dict[str, Any]) -> str:
        values = dict(message.get("values") or {})
        for key, parts in (message.get("parts") or {}).items():
            values[key] = "".join("\n" + render(domain, p["response"], **p["values"]) for p in parts)
        return render(domain, message["response"], **values)

    try:
        if kind == "form":
            return {"text": rendered(form_message(entry)), "buttons": []}
        profile = project.load_profile()
        text = rendered(answer_message(entry, profile))
        return {"text": text, "buttons": ["Ja", "Nej"]}
    except Exception:  # the wording lives in the domain; show the plain parts if it cannot be read
        if kind == "form":
            return {"text": f"{entry.title}\n{entry.when}\n{entry.url}", "buttons": []}
        return {"text": f"{entry.answer}\n{entry.url}", "buttons": ["Ja", "Nej"]}


def save(project: Project, kind: str, item_id: str, fields: Dict[str, Any], expected_hash: str) -> Dict[str, Any]:
    """Write the change, if the entry is still as the trainer loaded it (else Conflict)."""
    with write_lock(project.root):
        if _block_hash(project, kind, item_id) != expected_hash:  # before any check of the new text
            raise Conflict(f"En anden har gemt en ændring af {NOUNS[kind]} «{item_id}», mens du rettede. "
                           "Din ændring er ikke gemt. Åbn den igen for at se den nye udgave, og ret så igen.")
        plan = _planned(project, kind, item_id, fields)
        if plan["hash"] != expected_hash:  # pragma: no cover - the lock is held since the first check
            raise Conflict(f"En anden har gemt en ændring af {NOUNS[kind]} «{item_id}», mens du rettede. "
                           "Din ændring er ikke gemt. Åbn den igen for at se den nye udgave, og ret så igen.")
        if not plan["changed"]:
            return {"changed": [], "file": shown(project.root, plan["path"]), "hash": plan["hash"],
                    "message": "Der var ingen ændringer at gemme."}
        write_text(plan["path"], plan["new_text"])
        fresh = load(project, kind, item_id)
    what = "Virker med det samme i chatten." if kind != "response" else \
        "Træn en ny model og sæt den i drift, så bruger assistenten den nye tekst."
    return {"changed": plan["changed"], "file": shown(project.root, plan["path"]), "hash": fresh["hash"],
            "message": f"Gemt i {shown(project.root, plan['path'])}. {what}"}
