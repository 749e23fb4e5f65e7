"""Ratings: ask the leader for a 1-5 rating and store it with the conversation.

``action_ask_rating`` runs after a completed request or an answer that helped
(the rules that end those flows call it). It asks once per session: if the
leader already rated or was already asked, it stays silent.

``action_store_rating`` reads the rating from the ``rating`` entity (buttons
send ``/rate{"rating": "4"}``) or from the text ("4 stjerner", "rigtig godt",
"fem"), keeps the rest of the message as the comment (CPR numbers masked) and
stores both as slots, so they are in the tracker store for ``make report``.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple

from af_core.privacy import mask_cpr
from af_core.responses import render
from af_core.textnorm import fold

RATINGS = (5, 4, 3, 2, 1)
# A comment is invited after a rating this low (utter_rating_thanks_low).
INVITE_COMMENT_AT_MOST = 3


def rating_buttons(domain: Dict[str, Any]) -> List[Dict[str, str]]:
    """5 .. 1, labelled by utter_button_rating_<n> (domain/feedback.yml). The payload carries the
    rating as an entity, which Rasa would read as a placeholder in a domain response's button."""
    return [{"title": render(domain, f"utter_button_rating_{n}"), "payload": f'/rate{{"rating": "{n}"}}'}
            for n in RATINGS]


# Folded words and phrases -> rating. Longer phrases are tried first.
_WORDS: Dict[str, int] = {
    "rigtig godt": 5, "rigtig god": 5, "meget godt": 5, "super": 5, "fantastisk": 5, "fremragende": 5,
    "perfekt": 5, "fem": 5, "fire": 4, "godt": 4, "god": 4, "fint": 4, "fin": 4,
    "tre": 3, "middel": 3, "nogenlunde": 3, "okay": 3, "ok": 3, "jo da": 3, "udmaerket": 4, "top": 5,
    "rigtig daarligt": 1, "rigtig daarlig": 1, "meget daarligt": 1, "elendig": 1, "elendigt": 1,
    "vaerdiloest": 1, "vaerdiloes": 1, "daarligt": 2, "daarlig": 2, "skidt": 2, "to": 2, "en": 1, "et": 1,
}
_DIGIT_RE = re.compile(r"(?<![\d,.])([1-5])(?:\s*'?\s*(?:er|stjerner?|ud af 5|af 5|/5))?(?![\d,.]*\d)")
_FILLER_RE = re.compile(
    r"^(?:jeg (?:vil )?giver?(?: dig)?(?: en)?|karakter(?:en)?|det var|det fungerede|hjælpen var|svaret var|min bedømmelse|en solid|solid|en)(?:\s+|$)",
    re.IGNORECASE,
)


def parse_rating(text: str, entity_value: Optional[str] = None) -> Tuple[Optional[int], str]:
    """(rating 1-5 or None, the leader's comment without the rating part)."""
    text = (text or "").strip()
    if text.startswith("/"):  # a button payload carries no comment
        text = ""
    rating = None
    if entity_value is not None:
        try:
            value = int(float(str(entity_value).strip()))
            rating = value if 1 <= value <= 5 else None
        except (ValueError, OverflowError):  # words, or digits too long for a float ("1e400", 370 digits)
            rating = _WORDS.get(fold(str(entity_value)).strip())
    remainder = text  # the message without the rating: is there a comment at all?
    full = text  # what is stored as the comment when there is one
    match = _DIGIT_RE.search(text)
    if match:
        rating = rating or int(match.group(1))
        remainder = full = text[: match.start()] + " " + text[match.end():]
    elif text:
        folded = fold(text)
        for phrase in sorted(_WORDS, key=len, reverse=True):
            if not re.search(rf"\b{re.escape(phrase)}\b", folded):
                continue
            if len(phrase) <= 2 and len(folded.split()) > 3:  # "en"/"to"/"ok" only in short messages
                continue
            rating = rating or _WORDS[phrase]
            words = text.split()
            n = len(phrase.split())
            for i in range(len(words) - n + 1):
                if fold(" ".join(words[i : i + n])).strip(".,!?-–") == phrase:
                    remainder = " ".join(words[:i] + words[i + n:])
                    break
            break
    comment = _tidy(full) if _clean_comment(remainder) else ""
    return rating, comment


def _tidy(comment: str) -> str:
    return mask_cpr(" ".join(comment.split()).strip(" ,.;:-–!"))[0][:500]


def _clean_comment(comment: str) -> str:
    comment = " ".join(comment.split()).strip(" ,.;:-–!")
    comment = _FILLER_RE.sub("", comment).strip(" ,.;:-–!")
    if fold(comment) in {"", "stjerner", "stjerne", "ud af 5", "herfra", "stjerner herfra", "hjaelp", "klaret", "karakter herfra", "karakter"}:
        return ""
    if len(comment) < 3:
        return ""
    return mask_cpr(comment)[0][:500]


def _rating_entity(latest_message: Dict[str, Any]) -> Optional[str]:
    for entity in latest_message.get("entities") or []:
        if entity.get("entity") == "rating" and entity.get("value") not in (None, ""):
            return str(entity["value"])
    return None


# ---------------------------------------------------------------------------
# Rasa actions

try:
    from rasa_sdk import Action
    from rasa_sdk.events import SlotSet
except ImportError:  # pragma: no cover - the action server always has rasa_sdk
    Action = object  # type: ignore


class ActionAskRating(Action):
    def name(self) -> str:
        return "action_ask_rating"

    async def run(self, dispatcher, tracker, domain) -> List[Any]:
        if tracker.get_slot("rating") is not None or tracker.get_slot("rating_requested"):
            return []
        dispatcher.utter_message(response="utter_ask_rating", buttons=rating_buttons(domain))
        return [SlotSet("rating_requested", True)]


class ActionStoreRating(Action):
    def name(self) -> str:
        return "action_store_rating"

    async def run(self, dispatcher, tracker, domain) -> List[Any]:
        latest = tracker.latest_message or {}
        if not tracker.get_slot("rating_requested"):
            # Nobody asked for a rating: a text that clearly names a form or rule topic
            # ("§56", "hun siger op pr. 1. marts") was misread as one. Answer that instead.
            from actions.basics import second_chance

            hinted = await second_chance(dispatcher, tracker, domain)
            if hinted is not None:
                return hinted
        rating, comment = parse_rating(latest.get("text") or "", _rating_entity(latest))
        if rating is None:
            dispatcher.utter_message(response="utter_rating_not_caught", buttons=rating_buttons(domain))
            return [SlotSet("rating_requested", True)]
        if comment:
            response = "utter_rating_thanks_comment"
        elif rating <= INVITE_COMMENT_AT_MOST:
            response = "utter_rating_thanks_low"
        else:
            response = "utter_rating_thanks"
        dispatcher.utter_message(response=response, rating=rating)
        return [
            SlotSet("rating", float(rating)),
            SlotSet("rating_comment", comment or None),
            SlotSet("rating_requested", False),
        ]
