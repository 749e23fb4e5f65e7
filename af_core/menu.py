"""The main menu's buttons. They are defined once: ``utter_main_menu`` in domain/basics.yml.

Every response with the menu in the domain refers to those buttons (``*main_menu``). The
action server reads them from the domain Rasa sends with every call (``main_menu(domain)``);
the web server, which gets no domain from Rasa, reads it from domain/ through
``af_core.domain_texts`` (``MAIN_MENU``, ``MENU_WITHOUT_PERSON``). Kept free of rasa_sdk imports
so the web process can use it.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping, Optional

from af_core import domain_texts

log = logging.getLogger(__name__)

MENU_RESPONSE = "utter_main_menu"
PERSON_PAYLOAD = "/human_handoff"


class MenuError(RuntimeError):
    """The main menu is missing from the domain."""


def _buttons(domain: Mapping[str, Any], source: str) -> List[Dict[str, str]]:
    variations = (domain.get("responses") or {}).get(MENU_RESPONSE) or []
    buttons = variations[0].get("buttons") if variations else None
    if not buttons:
        raise MenuError(f"{source}: svaret {MENU_RESPONSE} med hovedmenuens knapper mangler")
    return [{"title": str(b["title"]), "payload": str(b["payload"])} for b in buttons]


def _file_menu() -> List[Dict[str, str]]:
    responses = domain_texts.responses()  # domain/*.yml, read again when a file changes
    if not responses:
        # An image without domain/ (the web server's): the hand-back message comes without the
        # menu's buttons rather than the web server not starting. The image should carry domain/.
        log.warning("Hovedmenuen læses fra %s, som ikke findes her: beskeder fra webserveren får ingen menu",
                    domain_texts.DOMAIN_DIR)
        return []
    return _buttons({"responses": responses}, str(domain_texts.DOMAIN_DIR))


def main_menu(domain: Optional[Mapping[str, Any]] = None) -> List[Dict[str, str]]:
    """The main menu's buttons: from ``domain`` when it has them, else from the files in domain/."""
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
