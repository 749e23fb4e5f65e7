"""The main menu's buttons. They are defined once: ``utter_main_menu`` in domain/basics.yml.

Every response with the menu in the domain refers to those buttons (``*main_menu``). The
action server reads them from the domain Rasa sends with every call (``main_menu(domain)``);
the web server, which gets no domain from Rasa, reads domain/basics.yml itself
(``MAIN_MENU``, ``MENU_WITHOUT_PERSON``). Kept free of rasa_sdk imports so the web process
can use it.
"""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import yaml

log = logging.getLogger(__name__)

MENU_RESPONSE = "utter_main_menu"
MENU_FILE = Path(__file__).resolve().parent.parent / "domain" / "basics.yml"
PERSON_PAYLOAD = "/human_handoff"


class MenuError(RuntimeError):
    """The main menu is missing from the domain."""


def _buttons(domain: Mapping[str, Any], source: str) -> List[Dict[str, str]]:
    variations = (domain.get("responses") or {}).get(MENU_RESPONSE) or []
    buttons = variations[0].get("buttons") if variations else None
    if not buttons:
        raise MenuError(f"{source}: svaret {MENU_RESPONSE} med hovedmenuens knapper mangler")
    return [{"title": str(b["title"]), "payload": str(b["payload"])} for b in buttons]


@lru_cache(maxsize=4)
def _from_file(path: str, mtime: float) -> tuple:
    """The file's menu, read again when the file changes (``mtime``)."""
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    return tuple(tuple(button.items()) for button in _buttons(data, path))


def _file_menu() -> List[Dict[str, str]]:
    if not MENU_FILE.is_file():
        # An image without domain/ (the web server's): the hand-back message comes without the
        # menu's buttons rather than the web server not starting. The image should carry domain/.
        log.warning("Hovedmenuen læses fra %s, som ikke findes her: beskeder fra webserveren får ingen menu", MENU_FILE)
        return []
    return [dict(items) for items in _from_file(str(MENU_FILE), MENU_FILE.stat().st_mtime)]


def main_menu(domain: Optional[Mapping[str, Any]] = None) -> List[Dict[str, str]]:
    """The main menu's buttons: from ``domain`` when it has them, else from domain/basics.yml."""
    if domain and MENU_RESPONSE in (domain.get("responses") or {}):
        return _buttons(domain, "domænet")
    return _file_menu()


def menu_without_person(domain: Optional[Mapping[str, Any]] = None) -> List[Dict[str, str]]:
    """After a supporter hands the chat back, offering a person again would be odd."""
    return [button for button in main_menu(domain) if button["payload"] != PERSON_PAYLOAD]


def __getattr__(name: str) -> List[Dict[str, str]]:
    # The web server imports these names; read at import, from the one definition.
    if name == "MAIN_MENU":
        return main_menu()
    if name == "MENU_WITHOUT_PERSON":
        return menu_without_person()
    raise AttributeError(name)
