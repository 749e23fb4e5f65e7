"""A second chance from the catalogues when NLU did not see a form or rule question.

NLU sometimes reads a clear form question as something else: "vi skal desværre afskedige
en medarbejder" as ``deny``, "hvordan bestiller jeg legetøj" as ``out_of_scope``, or the
leader's own staff ("en medarbejder ønsker tjenestefri") as a wish to talk to an AF person.
Before the assistant says "det forstod jeg ikke", "det kan jeg ikke hjælpe med" or puts the
leader in a queue, it asks the catalogues whether the text clearly names a form
(``form_replies.form_hint``) or a rule topic (``faq_replies.faq_hint``). Both hints have strict
thresholds, measured on the other intents' training examples (see those modules).

Used by ``action_handle_fallback`` / ``action_out_of_scope`` (actions/basics.py),
``action_human_handoff`` (actions/handoff.py) and ``action_store_rating`` (actions/feedback.py),
and by devtools/eval_forms.py, which counts only what these functions would really answer.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Optional

from af_core.catalogue import load_faq_catalogue
from af_core.faq_replies import faq_hint
from af_core.form_replies import form_hint, is_payload, read_about_button
from af_core.profile import Profile, get_profile

# action_human_handoff answers a form instead of queueing only when NLU was unsure that the
# leader asked for a person: below this confidence. 16 fresh requests for a person (written for
# this check, not in the training data) scored 0.63-1.0 with the model of 30.11.2026, 14 of them
# >= 0.95, and every one of them contains a word of _PERSON_RE, which blocks the guard anyway.
# Form questions misread as hand-over scored 0.63-0.95.
HANDOFF_GUARD_CONFIDENCE = 0.9

# Words that ask for a person at AF. A message with any of them always goes to the person,
# however low the confidence and whatever form it mentions.
_PERSON_RE = re.compile(
    r"\b(menneske\w*|person\w*|supporter\w*|konsulent\w*|sagsbehandler\w*|kontaktperson\w*|"
    r"levende|rigtig\w*|chat\w*|tale|snakke?|skrive|ring\w*|telefon\w*|stil\w* (?:mig )?(?:om|videre)|"
    r"forbind (?:mig|os)|overf[oø]r (?:mig|os)|overtag\w*|tage over|fat i|fra af|af-\w+)\b",
    re.IGNORECASE,
)



def catalogue_hint(text: str, profile: Optional[Profile] = None) -> Optional[Dict[str, Any]]:
    """A plan answering a clear form (first) or rule topic that NLU missed; None if neither is clear."""
    if not text or is_payload(text):
        return None
    profile = profile or get_profile()
    form_plan = form_hint(text, profile)
    faq_plan = faq_hint(text, profile)
    if form_plan and faq_plan:
        # Both clear ("sygesamtale med en sygemeldt"): the form, and the rule answer one tap away.
        topic = load_faq_catalogue(profile).get(faq_plan["faq_id"])
        last = dict(form_plan["messages"][-1])
        last["buttons"] = list(last.get("buttons") or []) + [read_about_button(topic)]
        return {**form_plan, "suggested_faq": topic.id, "messages": form_plan["messages"][:-1] + [last]}
    return form_plan or faq_plan


def asks_for_person(text: str) -> bool:
    return bool(_PERSON_RE.search(text or ""))


def handoff_guard(text: str, confidence: Optional[float], profile: Optional[Profile] = None) -> Optional[Dict[str, Any]]:
    """For ``action_human_handoff``: a plan answering the form instead of queueing the leader,
    when NLU was unsure (confidence below HANDOFF_GUARD_CONFIDENCE), the text does not ask for a
    person, and it clearly names a form or rule topic. The person is offered as a button.
    None: hand over as asked (buttons, payloads, unknown confidence, anything unclear).
    """
    if not text or is_payload(text) or confidence is None:
        return None
    if confidence >= HANDOFF_GUARD_CONFIDENCE or asks_for_person(text):
        return None
    plan = catalogue_hint(text, profile)
    if plan is None:
        return None
    messages = [dict(m) for m in plan["messages"]]
    messages.append({"response": "utter_offer_person"})  # its button (/human_handoff) is in the domain
    return {**plan, "kind": "handoff_guard", "messages": messages}
