"""Which model is in service: `make activate`, `make rollback`, and the model `make run` starts.

Models are hash-named files in models/ (scripts/model.py). The model in service
is named in the small text file models/i-drift; the one before it in
models/i-drift.forrige. Every change is logged in models/drift-historik.log.

    python trainer/serving.py path       # the model to start (models/i-drift, else the one for the current data)
    python trainer/serving.py status     # in service, previous, candidate, with their figures
    python trainer/serving.py activate   # put the candidate (from make retrain) into service
    python trainer/serving.py rollback   # go back to the previous model

activate and rollback also ask a running Rasa server (settings.rasa_url, with
the API token) to load the model (PUT /model), so no restart is needed. If the
server does not run, the model is used the next time `make run` starts.

The trainer's workbench (web/workbench.py) uses the same steps as functions:
``put_in_service`` and ``roll_back`` return a ``Change`` (what happened, as data)
instead of printing, and name who did it (and why) in the history.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

POINTER = "i-drift"
PREVIOUS = "i-drift.forrige"
CANDIDATE = "kandidat.json"
HISTORY = "drift-historik.log"


@contextmanager
def project(root: Path) -> Iterator[Any]:
    """scripts/model.py working on ``root`` (its hash logic is the single source of model names)."""
    from scripts import model

    saved = model.ROOT, model.MODELS
    model.ROOT, model.MODELS = root, root / "models"
    try:
        yield model
    finally:
        model.ROOT, model.MODELS = saved


def current_data_model(root: Path = ROOT) -> Path:
    """The model file name for the data, domain and config as they are now (may not exist)."""
    with project(root) as model:
        return model.model_path()


def _read_name(path: Path) -> Optional[str]:
    try:
        name = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return name or None


def _write_name(path: Path, name: Optional[str]) -> None:
    if name is None:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(name + "\n", encoding="utf-8")
    os.replace(tmp, path)


def in_service(root: Path = ROOT) -> Optional[Path]:
    """The model named in models/i-drift, if that file exists."""
    name = _read_name(root / "models" / POINTER)
    return root / "models" / name if name else None


def previous(root: Path = ROOT) -> Optional[Path]:
    name = _read_name(root / "models" / PREVIOUS)
    return root / "models" / name if name else None


def guess_in_service(root: Path, exclude: Optional[Path] = None) -> Optional[Path]:
    """The model in service; without models/i-drift, the newest other model in models/."""
    named = in_service(root)
    if named is not None:
        return named
    candidates = [p for p in (root / "models").glob("af-*.tar.gz") if exclude is None or p.resolve() != exclude.resolve()]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def start_path(root: Path = ROOT) -> Path:
    """What `make run` should start: the model in service, else the one for the current data."""
    named = in_service(root)
    if named is not None and named.exists():
        return named
    return current_data_model(root)


def eval_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name[: -len(".tar.gz")] + ".eval.json")


def load_eval(model_path: Optional[Path]) -> Optional[Dict[str, Any]]:
    if model_path is None:
        return None
    try:
        return json.loads(eval_path(model_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_candidate(root: Path) -> Optional[Dict[str, Any]]:
    try:
        return json.loads((root / "models" / CANDIDATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def log(root: Path, line: str) -> None:
    with open(root / "models" / HISTORY, "a", encoding="utf-8") as handle:
        handle.write(f"{dt.datetime.now().isoformat(timespec='seconds')} {line}\n")


def reload_server(model_path: Path, timeout: float = 120.0, settings: Any = None) -> str:
    """Ask the running Rasa server to load the model. Returns a Danish sentence about the outcome."""
    import requests

    from af_core import rasa_http
    from af_core.settings import get_settings

    settings = settings or get_settings()
    try:
        response = requests.put(
            f"{settings.rasa_url}/model",
            headers=rasa_http.auth_headers(settings),
            json={"model_file": str(model_path.resolve())},
            timeout=timeout,
        )
    except requests.ConnectionError:
        return "Assistenten kører ikke lige nu. Modellen bruges, næste gang du starter den (make run)."
    except requests.Timeout:
        return "Assistenten svarede ikke i tide. Genstart den (make run), så bruger den den nye model."
    if response.status_code == 204:
        return "Den kørende assistent bruger nu modellen."
    return (f"Den kørende assistent kunne ikke skifte model (svar {response.status_code}). "
            "Genstart den (make run), så bruger den modellen.")


@dataclass(frozen=True)
class Change:
    """What put_in_service / roll_back did. ``code``: activated, already, rolled_back (ok), or
    no_candidate, not_approved, missing, no_previous, previous_missing (nothing changed)."""

    code: str
    model: Optional[str] = None
    previous: Optional[str] = None
    verdict: str = ""

    @property
    def ok(self) -> bool:
        return self.code in ("activated", "already", "rolled_back")


def _who(by: Optional[str], reason: Optional[str]) -> str:
    said = f" af {by}" if by else ""
    if reason:
        said += ": " + " ".join(reason.split())
    return said


def put_in_service(root: Path, model_path: Optional[Path] = None, force: bool = False,
                   by: Optional[str] = None, reason: Optional[str] = None) -> Change:
    """Make ``model_path`` (default: the candidate of make retrain / the workbench) the model in
    service: models/i-drift, which every Rasa replica follows. A candidate that was not approved
    needs ``force``."""
    candidate_info = read_candidate(root)
    if model_path is None:
        if not candidate_info:
            return Change("no_candidate")
        model_path = root / "models" / candidate_info["model"]
        if not candidate_info.get("approved") and not force:
            return Change("not_approved", model_path.name, verdict=candidate_info.get("verdict", ""))
    if not model_path.exists():
        return Change("missing", model_path.name)
    current = in_service(root)
    if current is not None and current.name == model_path.name:
        return Change("already", model_path.name)
    if current is not None:
        _write_name(root / "models" / PREVIOUS, current.name)
    _write_name(root / "models" / POINTER, model_path.name)
    log(root, f"i drift: {model_path.name} (før: {current.name if current else 'ingen'})" + _who(by, reason))
    return Change("activated", model_path.name, current.name if current else None)


def roll_back(root: Path, by: Optional[str] = None, reason: Optional[str] = None) -> Change:
    """Go back to the model that was in service before (models/i-drift.forrige)."""
    before, current = previous(root), in_service(root)
    if before is None:
        return Change("no_previous")
    if not before.exists():
        return Change("previous_missing", before.name)
    _write_name(root / "models" / POINTER, before.name)
    _write_name(root / "models" / PREVIOUS, current.name if current else None)
    log(root, f"rullet tilbage: {before.name} (før: {current.name if current else 'ingen'})" + _who(by, reason))
    return Change("rolled_back", before.name, current.name if current else None)


def activate(root: Path, model_path: Optional[Path], force: bool, reload: bool) -> int:
    change = put_in_service(root, model_path, force)
    if change.code == "no_candidate":
        print("Der er ingen kandidat. Kør først: make retrain", file=sys.stderr)
        return 1
    if change.code == "not_approved":
        print(
            f"Kandidaten {change.model} blev ikke godkendt af make retrain: {change.verdict}\n"
            "Ret træningsdata og kør make retrain igen. (Vil du alligevel, så kør: make activate FORCE=1)",
            file=sys.stderr,
        )
        return 1
    if change.code == "missing":
        print(f"Modellen {change.model} findes ikke i models/. Kør make retrain.", file=sys.stderr)
        return 1
    if change.code == "already":
        print(f"{change.model} er allerede i drift.")
        return 0
    print(f"{change.model} er nu i drift." + (f" Den forrige ({change.previous}) kan du vende tilbage til med make rollback." if change.previous else ""))
    if reload:
        print(reload_server(root / "models" / change.model))
    return 0


def rollback(root: Path, reload: bool) -> int:
    change = roll_back(root)
    if change.code == "no_previous":
        print("Der er ingen tidligere model at vende tilbage til.", file=sys.stderr)
        return 1
    if change.code == "previous_missing":
        print(f"Den tidligere model {change.model} er slettet fra models/. Kan ikke vende tilbage.", file=sys.stderr)
        return 1
    print(f"Tilbage til {change.model}. Den model, der var i drift ({change.previous or 'ingen'}), "
          "kan du sætte i drift igen med make activate.")
    if reload:
        print(reload_server(root / "models" / change.model))
    return 0


def status(root: Path) -> int:
    def describe(label: str, path: Optional[Path]) -> None:
        if path is None:
            print(f"{label}: ingen")
            return
        figures = load_eval(path)
        score = ""
        if figures:
            intents = figures["intents"]
            score = f" – vægtet F1 {intents['weighted_f1']:.3f}, rigtige {intents['accuracy']:.1%}"
        print(f"{label}: {path.name}{'' if path.exists() else ' (filen mangler!)'}{score}")

    if in_service(root) is None:
        print(f"I drift: ingen valgt endnu – make run starter modellen for de nuværende data "
              f"({current_data_model(root).name}). Vælg en med make retrain og make activate.")
    else:
        describe("I drift", in_service(root))
    describe("Forrige", previous(root))
    info = read_candidate(root)
    describe("Kandidat", root / "models" / info["model"] if info else None)
    if info:
        print(f"  {info.get('verdict', '')}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Hvilken model er i drift.")
    parser.add_argument("command", choices=["path", "status", "activate", "rollback"])
    parser.add_argument("--model", type=Path, help="aktivér denne modelfil i stedet for kandidaten")
    parser.add_argument("--force", action="store_true", help="aktivér, selv om make retrain frarådede det")
    parser.add_argument("--no-reload", action="store_true", help="bed ikke den kørende assistent om at skifte model")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root = args.root.resolve()
    (root / "models").mkdir(exist_ok=True)
    if args.command == "path":
        print(start_path(root))
        return 0
    if args.command == "status":
        return status(root)
    if args.command == "activate":
        model_path = None
        if args.model:
            model_path = root / "models" / args.model.name  # the pointer names a file in models/
        return activate(root, model_path, args.force, not args.no_reload)
    return rollback(root, not args.no_reload)


if __name__ == "__main__":
    sys.exit(main())
