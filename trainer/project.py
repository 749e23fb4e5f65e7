"""The checkout a workbench works on, and the catalogue a trainer chooses from.

``Project.for_settings(settings)``: the trainer root (``settings.trainer_root``), its
organisation profile (``settings.profile_dir`` moved into the trainer root when it lies in
this checkout), its var/ folder and the Python that trains. Reading the catalogue needs
only PyYAML: intents from domain/, forms and rule topics from the profile, responses from
domain/.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from af_core.settings import PROJECT_ROOT, Settings
from trainer.files import TrainerError

TRAINERS_FILE = Path("data") / "nlu" / "fra-traenere.yml"
NOTES_FILE = Path("review") / "oensker-til-kataloget.yml"

# What each intent means, as the trainer reads it (docs/traening.md has the same list).
INTENT_HELP = {
    "find_form": "finde en blanket eller selvbetjening",
    "ask_question": "have svar på et regelspørgsmål (ferie, barsel, omsorgsdage …)",
    "request_help": "bestille hjælp fra AF",
    "book_meeting": "booke et møde med AF",
    "case_status": "vide, hvor langt en sag er",
    "human_handoff": "tale eller skrive med en medarbejder",
    "inform": "give en oplysning midt i en bestilling (emne, hastegrad, tidspunkt)",
    "cancel": "stoppe det, der er i gang («glem det»)",
    "greet": "hilse",
    "goodbye": "sige farvel",
    "thank": "takke",
    "affirm": "sige ja",
    "deny": "sige nej",
    "bot_challenge": "vide, om det er en robot",
    "ask_capabilities": "vide, hvad assistenten kan",
    "out_of_scope": "noget, assistenten ikke skal hjælpe med (IT, bygninger, pædagogik …)",
    "restart": "starte forfra",
    "rate": "give en karakter for hjælpen",
}
HIDDEN_INTENTS = {"nlu_fallback"}


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return {}
    except yaml.YAMLError as exc:
        raise TrainerError(f"{path.name} kan ikke læses: {exc}") from exc


@dataclass(frozen=True)
class Project:
    root: Path
    profile_dir: Path
    var_dir: Path
    python: str
    eval_sets: Tuple[str, ...]
    story_tests: bool

    @classmethod
    def for_settings(cls, settings: Settings) -> "Project":
        root = Path(settings.trainer_root).resolve()
        profile_dir = Path(settings.profile_dir)
        try:
            profile_dir = root / profile_dir.resolve().relative_to(PROJECT_ROOT.resolve())
        except ValueError:
            pass  # a profile outside this checkout (AF_PROFILE=/path): edit it where it is
        python = settings.trainer_python
        if not python:
            venv = root / ".venv" / "bin" / "python"
            own = PROJECT_ROOT / ".venv" / "bin" / "python"
            python = str(venv if venv.exists() else own if own.exists() else Path(sys.executable))
        return cls(root, profile_dir, Path(settings.var_dir) / "traener", python,
                   tuple(settings.trainer_eval_sets), settings.trainer_story_tests)

    # -- places ---------------------------------------------------------------
    @property
    def trainers_file(self) -> Path:
        return self.root / TRAINERS_FILE

    @property
    def notes_file(self) -> Path:
        return self.root / NOTES_FILE

    @property
    def nlu_dir(self) -> Path:
        return self.root / "data" / "nlu"

    @property
    def domain_dir(self) -> Path:
        return self.root / "domain"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def domain_files(self) -> List[Path]:
        return sorted(self.domain_dir.rglob("*.yml")) if self.domain_dir.is_dir() else []

    # -- the catalogue a trainer chooses from ------------------------------------
    def intents(self) -> List[Dict[str, str]]:
        names: List[str] = []
        for path in self.domain_files():
            for item in (_load_yaml(path).get("intents") or []):
                name = next(iter(item)) if isinstance(item, dict) else str(item)
                if name not in names and name not in HIDDEN_INTENTS:
                    names.append(name)
        return [{"id": name, "title": INTENT_HELP.get(name, name)} for name in names]

    def forms(self) -> List[Dict[str, str]]:
        data = _load_yaml(self.profile_dir / "forms.yml")
        return [{"id": str(f.get("id")), "title": str(f.get("title") or f.get("id")), "area": str(f.get("area") or "")}
                for f in (data.get("forms") or []) if isinstance(f, dict) and f.get("id")]

    def faqs(self) -> List[Dict[str, str]]:
        data = _load_yaml(self.profile_dir / "faq.yml")
        return [{"id": str(t.get("id")), "title": str(t.get("title") or t.get("id")), "area": str(t.get("topic") or "")}
                for t in (data.get("topics") or []) if isinstance(t, dict) and t.get("id")]

    def responses(self) -> Dict[str, Tuple[Path, List[Dict[str, Any]]]]:
        """Every response: name -> (file, variations)."""
        found: Dict[str, Tuple[Path, List[Dict[str, Any]]]] = {}
        for path in self.domain_files():
            for name, variations in (_load_yaml(path).get("responses") or {}).items():
                if isinstance(variations, list):
                    found[str(name)] = (path, variations)
        return found

    def domain_responses(self) -> Dict[str, Any]:
        """``{"responses": {...}}`` merged from domain/ (what the action server gets from Rasa)."""
        return {"responses": {name: variations for name, (_, variations) in self.responses().items()}}

    def load_profile(self) -> Any:
        from af_core.profile import load_profile

        return load_profile(self.profile_dir)


def find(items: List[Dict[str, str]], item_id: Optional[str]) -> Optional[Dict[str, str]]:
    return next((item for item in items if item["id"] == item_id), None)
