"""Who is to act? Danish sentence shapes that settle what DIET confuses (pure, no Rasa).

DIET reads words, not sentences. "Vores Amalie skal fastansættes. Hvordan gør jeg det?" and
"Kan I fastansætte Amalie?" share the words and differ in who acts: the leader (a form) or AF
(an order for help). Leaders' own phrasing showed these confusions again and again on the
development sets (docs/nlu.md), so after DIET the NLU component
``nlu_components.intent_cues.IntentShapeArbiter`` looks for the sentence shapes that decide them:

* STATUS   -- "status på", "hvor langt er", "har I modtaget/fået min ...", "hvornår får jeg svar";
* PERSON   -- "et menneske", "en af jeres medarbejdere", "overført til en medarbejder";
* MEETING  -- "ring mig op", "kan I ringe", "et møde med", "teamsmøde", "komme ud til os";
* FORM     -- "blanket", "skema", "hvad skal jeg udfylde", "hvordan gør/melder jeg", "hvor finder jeg";
* RULE     -- "må jeg/man", "har man ret til", "er det rigtigt at", "hvad siger reglerne", "fristen";
* REQUEST  -- "kan I rette/tjekke/se på/lave ...", "lav venligst", "jeg skal bede jer om".

When exactly one shape is found (or one that outranks the others: STATUS, then PERSON, then
MEETING; FORM outranks RULE), and DIET's best guess is another intent of the confusable
group, the intent becomes the shape's intent. Everything else is DIET's. The text is folded
(æ -> ae, ø -> oe, å -> aa) first, so leaders without Danish letters match too.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence

from af_core.textnorm import fold

# Folded text: æ -> ae, ø -> oe, å -> aa; a leader who writes "o" for "ø" gets "o" (both allowed).
_OE, _AA, _AE = "(?:oe|o)", "(?:aa|a)", "(?:ae|a)"

SHAPES: Dict[str, Sequence[str]] = {
    "case_status": (
        r"\bstatus\b",
        r"\bhvor langt er\b",
        rf"\bhar (?:i|af|nogen|du|jeres \w+) (?:modtaget|f{_AA}et|set|kigget|behandlet|svaret|h{_OE}rt|fat i)\b",
        r"\bhvad (?:sker|er der sket|skete) (?:der )?med (?:min|mit|mine|den|det|vores|sagen)\b",
        rf"\bhvorn{_AA}r (?:f{_AA}r|h{_OE}rer) (?:jeg|vi) (?:svar|noget)\b",
        rf"\ber der nogen,? der (?:arbejder|kigger|ser) p{_AA}\b",
        rf"\bhvordan g{_AA}r det med (?:min|mit|den|det|vores|sagen)\b",
        rf"\ber (?:den|sagen|min sag|det) (?:blevet )?(?:behandlet|f{_AE}rdig|godkendt|modtaget|ordnet)\b",
        r"\b(?:min|mit|mine|vores) (?:sag|sager|henvendelse|henvendelser|bestilling|anmodning)\b.{0,60}"
        rf"\b(?:blevet|f{_AE}rdig|behandlet|godkendt|sendt|modtaget)\b",
        # "er mit teamsmøde blevet bekræftet?": a meeting already asked for
        rf"\b(?:min|mit|vores) \w*m{_OE}de\b.{{0,40}}\b(?:blevet|bekr{_AE}ftet|aftalt|booket|godkendt)\b",
        rf"\b(?:har|havde) (?:endnu )?(?:ikke|intet) (?:h{_OE}rt|f{_AA}et svar)\b",
    ),
    "human_handoff": (
        r"\bmenneske\b",
        r"\b(?:rigtig|levende) person\b",
        r"\ben af jeres medarbejdere\b",
        rf"\b(?:overf{_OE}rt|overdraget|stillet videre|sat over) til\b",
        r"\bgiv mig en medarbejder\b",
        rf"\b(?:skrive|chatte|snakke|tale) med en (?:rigtig|person|af jer)\b",
        r"\bher i chatten\b.{0,40}\bmedarbejder",
    ),
    "book_meeting": (
        r"\bring(?:e|er)? (?:mig|til mig)(?: op)?\b",
        r"\bringes op\b",
        r"\bkan (?:i|nogen|en|jeg blive) \w*\s?(?:\w+ )?ringe(?:t)?\b",
        rf"\b(?:teams|telefon|video|online)m{_OE}de\b",
        rf"\bet m{_OE}de med\b",
        rf"\bm{_OE}des med\b",
        rf"\bbooke? (?:et|en) (?:m{_OE}de|tid)\b",
        r"\bkom(?:me|mer) (?:ud|forbi)\b",
        r"\ben tid hos\b",
        r"\bet call\b",
        r"\b(?:en snak|snakke|tale) med en \w*konsulent\b",
        r"\bkom(?:me|mer)? (?:ind|over) (?:til|hos) (?:jer|af)\b",  # "kan man komme ind til jer"
        r"\b(?:et|en|lave et|holde et) (?:meeting|call)\b",
    ),
    "find_form": (
        r"\bblanket",
        r"\bskema(?:et|er)?\b",
        r"\bformular",
        rf"\bhvad skal (?:jeg|vi) (?:g{_OE}re|udfylde|bruge|indberette|sende|foretage)\b",
        rf"\bhvad g{_OE}r (?:jeg|vi)\b",
        rf"\bhvordan (?:g{_OE}r|f{_AA}r|melder|registrerer|indberetter|opretter|ans{_AE}tter|afslutter|s{_OE}ger|giver|"
        rf"s{_AE}tter|f{_OE}rer|s{_OE}rger|k{_OE}ber|bestiller|ans{_OE}ger) (?:jeg|vi)\b",
        # "hvordan får hun pengene igen": the leader asks how it is done, for an employee
        rf"\bhvordan (?:f{_AA}r|kan|skal) (?:hun|han|de|medarbejderen|den ansatte|personen) "
        rf"(?:\w+ )?(?:pengene|penge|betalt|refunderet|udbetalt|dem|dækket)\b",
        rf"\bhvordan (?:ans{_OE}ges|s{_OE}ges|meldes|indberettes|registreres)\b",
        rf"\bhvordan f{_AA}r (?:man|en|et|min|mit|vores)\b",  # "hvordan får en ny forhandler lagt ind"
        r"\bhvordan\W*$",  # "hun skal ha mere i løn fra 1. april, hvordan"
        r"\bhvor (?:finder|registrerer|indberetter|melder|laver|opretter|bestiller|sender|s(?:oe|o)ger) (?:jeg|vi|man)\b",
    ),
    "ask_question": (
        rf"^\W*(?:m{_AA}|kan) (?:jeg|man|vi|en leder) (?:godt )?(?:bede|kr{_AE}ve|give|sende|flytte|n{_OE}gte|"
        rf"afvise|have|dele|gemme|overf{_OE}re|tr{_AE}kke|forlange)\b",
        rf"^\W*m{_AA} (?:man|en|hun|han|de|medarbejderen|tr)\b",
        r"\bhar (?:man|en \w+|medarbejderen|medarbejderne|hun|han|de|vi|jeg)(?: \w+)? (?:ret|krav)\b",
        r"\ber det rigtigt,? at\b",
        r"\bhvad siger reglerne\b",
        r"\breglerne? (?:for|om)\b",
        rf"\bhvorn{_AA}r (?:skal|bliver|udbetales|kommer l{_OE}nnen|er der l{_OE}n|er l{_OE}ndag)\b",
        # "kan hun få kilometerpenge", "skal hun have noget udbetalt": what an employee is owed
        rf"\b(?:kan|skal) (?:hun|han|de|medarbejderen) (?:f{_AA}|have|ha) (?:noget |nogen |et |en )?\w*"
        rf"(?:penge|udbetalt|godtg{_OE}relse|till{_AE}g|refusion|betaling)\b",
        r"\bkan man\b",
        rf"\bg{_AE}lder (?:det|reglerne)\b",
        r"\bfristen\b",
        r"\bberettiget\b",
        rf"\bhvordan (?:l{_AE}ser|forst{_AA}r|beregner|regner|udregner) (?:man|jeg)\b",
    ),
    "request_help": (
        rf"\b(?:kan|vil|kunne) (?:i|af|nogen|en af jer)(?: \w+){{0,3}}? (?:rette|tjekke|se p{_AA}|kigge|ordne|lave|"
        rf"oprette|flytte|unders{_OE}ge|registrere|udregne|gennemg{_AA}|s{_OE}rge|{_AE}ndre|indberette|overf{_OE}re|"
        rf"betale|bestille|opdatere|slette|beregne|finde ud af|l{_AE}gge|tage sig af|hj{_AE}lpe med at)\b",
        # "kan I få det rettet", "vil I sørge for at hun bliver efterbetalt"
        rf"\b(?:kan|vil|kunne) (?:i|af|nogen)(?: \w+){{0,2}}? f{_AA} (?:\w+ ){{0,3}}?(?:rettet|ordnet|lavet|tjekket|"
        rf"opdateret|{_AE}ndret|udbetalt|efterbetalt|registreret|oprettet|flyttet|overf{_OE}rt)\b",
        r"\blav venligst\b",
        r"\bbede (?:jer|om at i|om,? at i)\b",
        r"\bjeg har brug for,? at i\b",
    ),
}
# When several shapes are found, these win over the ones after them; other combinations
# (a form word in an order, a rule in an order) are left to DIET.
OUTRANKS = ("case_status", "human_handoff", "book_meeting")
CONFUSABLE = frozenset(
    {"find_form", "ask_question", "request_help", "book_meeting", "case_status", "out_of_scope", "nlu_fallback",
     "inform"}
)
# A message of this many words is never small talk, however sure DIET is ("ok. kan i ringe mig op om
# det, jeg har en konkret sag ..." is not a thank-you).
LONG_MESSAGE_WORDS = 6
NEVER_OVERRULED = frozenset({"restart", "bot_challenge"})
# Intents DIET confuses with the group only when unsure ("har nogen kigget paa min bestilling" -> cancel).
CONFUSABLE_WHEN_UNSURE = frozenset({"cancel", "deny", "inform", "rate", "ask_capabilities", "human_handoff", "thank"})
UNSURE = 0.8
# out_of_scope keeps its intent unless the shape is one AF acts on ("kan I rette ..." is never out of scope).
FROM_OUT_OF_SCOPE = frozenset({"case_status", "human_handoff", "book_meeting", "request_help"})
CONFIDENCE = 0.9  # the intent a shape decides is sure enough that no fallback undoes it

_COMPILED = {intent: [re.compile(p) for p in patterns] for intent, patterns in SHAPES.items()}
# A whole message that only says "send it": DIET has read "send den" as cancel (its examples
# hold "send den ikke"). Rasa's cancel rule would drop the request the leader just confirmed.
_ONLY_SEND = re.compile(r"^\W*(?:ja\W*)?(?:tak\W*)?(?:send|opret)(?: (?:den|det|sagen|bestillingen))?"
                        r"(?: bare| gerne| nu| afsted| af sted)?\W*$")
OVERRULED_BY_SEND = frozenset({"cancel", "deny", "nlu_fallback"})
# An unsure "glem det" read into a long message that names no shape ("min pædagog vil gerne prøve
# noget andet i et år ...") would drop whatever the leader is ordering: better not understood
# (the fallback tries the catalogue and offers help) than cancelled.
NOT_CANCELLED_WHEN_UNSURE = frozenset({"cancel", "deny"})
LONG_FOR_CANCEL_WORDS = 8


def shapes(text: str) -> List[str]:
    folded = " ".join(fold(text or "").split())
    return [intent for intent, patterns in _COMPILED.items() if any(p.search(folded) for p in patterns)]


def _settle(found: Sequence[str], text: str = "") -> Optional[str]:
    chosen = next((shape for shape in OUTRANKS if shape in found), None)
    if chosen is None:
        if set(found) == {"find_form", "ask_question"}:
            chosen = "find_form"
        elif len(found) == 1:
            chosen = found[0]
        elif set(found) == {"find_form", "request_help"} and text:
            # "kan i faa udbetalt merarbejde ..., selvom jeg sendte blanketten": the order comes
            # first, the form is the story; "hvilken blanket ..., eller kan I ..." the other way.
            chosen = min(found, key=lambda shape: _first_match(shape, text))
    return chosen


def _first_match(intent: str, text: str) -> int:
    folded = " ".join(fold(text or "").split())
    starts = [m.start() for p in _COMPILED[intent] for m in [p.search(folded)] if m]
    return min(starts) if starts else len(folded)


_SENTENCE_RE = re.compile(r"[^.!?\n]+[.!?]*")


def _last_question(text: str) -> str:
    """The last sentence that ends in a question mark, else the last sentence."""
    sentences = [m.group(0).strip() for m in _SENTENCE_RE.finditer(text or "") if m.group(0).strip()]
    questions = [s for s in sentences if s.endswith("?")]
    return (questions or sentences or [""])[-1]


def decide(text: str, intent: Optional[str], confidence: float) -> Optional[str]:
    """The intent the sentence shape settles, or None to keep DIET's."""
    if not text or text.lstrip().startswith("/"):
        return None
    if intent in OVERRULED_BY_SEND and _ONLY_SEND.match(" ".join(fold(text).split())):
        return "affirm"
    long_message = len(text.split()) >= LONG_MESSAGE_WORDS
    if intent in NEVER_OVERRULED or (
        intent not in CONFUSABLE
        and not (intent in CONFUSABLE_WHEN_UNSURE and confidence < UNSURE)
        and not long_message
    ):
        return None
    found = shapes(text)
    if not found:
        if (intent in NOT_CANCELLED_WHEN_UNSURE and confidence < UNSURE
                and len(text.split()) >= LONG_FOR_CANCEL_WORDS):
            return "nlu_fallback"
        return None
    chosen = _settle(found)
    if chosen is None and len(found) > 1:
        # A long story names a form it sent and ends with what it asks for ("... tillægget er
        # ikke kommet med. Kan I få det rettet?"): the sentence that asks decides; within one
        # sentence, what comes first.
        question = _last_question(text)
        chosen = _settle(shapes(question), question) or _settle(found, text)
    if chosen is None or (chosen == intent and confidence >= CONFIDENCE):
        return None  # nothing to settle; an unsure DIET that agrees with the shape is made sure
    if intent == "out_of_scope" and chosen not in FROM_OUT_OF_SCOPE:
        return None
    return chosen
