"""The main menu's buttons, shared by the action server and the web server.

Kept free of rasa_sdk imports so the web process can use it. The same
choices stand in domain/basics.yml (utter_greet), which Rasa cannot import.
"""
from typing import Dict, List

MAIN_MENU: List[Dict[str, str]] = [
    {"title": "Find en blanket", "payload": "/find_form"},
    {"title": "Stil et spørgsmål om regler", "payload": "/ask_question"},
    {"title": "Bestil hjælp", "payload": "/request_help"},
    {"title": "Book et møde med AF", "payload": "/book_meeting"},
    {"title": "Status på min sag", "payload": "/case_status"},
    {"title": "Tal med en medarbejder", "payload": "/human_handoff"},
]

# After a supporter hands the chat back, offering a person again would be odd.
MENU_WITHOUT_PERSON = [button for button in MAIN_MENU if button["payload"] != "/human_handoff"]
