"""What happens to a hand-over after the leader was queued (web server side).

* ``take_over`` – a supporter takes a waiting chat (atomic in the store: one
  winner); the leader is told who they now write with.
* ``send`` – the supporter's message, CPR-masked, delivered to the leader's
  chat window as written by a named AF employee (``transcript.supporter_event``).
* ``hand_back`` – resume the bot; it says it is back and shows the menu.
* ``close`` – resume the bot, tell the leader the supporter closed the
  conversation, optionally create a case with the transcript (CPR masked).
* ``time_out`` – nobody took the chat within ``settings.handoff_wait_seconds``:
  resume the bot, say so honestly, create a "ønsker at blive kontaktet" case
  when we know who the leader is (so the request is never dropped, even if
  they left the page), and offer to book a meeting. Without a verified
  identity we cannot create the case for them, so the bot offers it.
  One case per request: the case carries the hand-over's own correlation id
  (``Handoff.case_correlation``), so a retried time-out – also from another
  web server – finds the same case in ServiceNow and the outbox; and when the
  same leader's earlier time-out case (within ``TIMEOUT_CASE_REUSE_SECONDS``)
  is still open, that case is named again instead of making a new one.

Resuming appends ``resume`` and an ``action_listen`` so the next message of
the leader is handled exactly like a fresh turn (rules match again).
``run_timeouts`` is the web server's background task. See docs/handoff.md.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from af_core import case_service, domain_texts, transcript
from af_core.handoff_store import CLOSED, RETURNED, TIMED_OUT, Handoff, HandoffStore
from af_core.menu import MENU_WITHOUT_PERSON
from af_core.privacy import mask_cpr
from af_core.settings import Settings
from web.rasa_api import RasaApi

log = logging.getLogger(__name__)

MAX_SUPPORTER_MESSAGE = 2000
SWEEP_SECONDS = 1.0
RESUME_RETRY_SECONDS = 10.0
# A leader who asks again after a time-out, while the "ønsker at blive kontaktet" case from then is still
# open, gets that case named again (a working day; AF contacts them about it anyway).
TIMEOUT_CASE_REUSE_SECONDS = 8 * 3600


# What the leader reads when a supporter takes, gives back or closes a conversation, or nobody
# took it in time: responses in domain/channel.yml.
TAKEN = "utter_handoff_taken"
RETURNED_TO_BOT = "utter_handoff_returned"
FINISHED, FINISHED_WITH_CASE = "utter_handoff_finished", "utter_handoff_finished_with_case"
BOT_BACK = "utter_handoff_bot_back"
TIMEOUT_EARLIER_CASE = "utter_handoff_timeout_earlier_case"
TIMEOUT_NEW_CASE = "utter_handoff_timeout_new_case"
TIMEOUT_NO_CASE = "utter_handoff_timeout_no_case"
RESPONSES = (TAKEN, RETURNED_TO_BOT, FINISHED, FINISHED_WITH_CASE, BOT_BACK, TIMEOUT_EARLIER_CASE, TIMEOUT_NEW_CASE,
             TIMEOUT_NO_CASE)


class FlowError(Exception):
    """A hand-over step that cannot be done (Danish message for the supporter)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Flow:
    settings: Settings
    profile: Any
    store: HandoffStore
    api: RasaApi

    # -- helpers -------------------------------------------------------------------
    @staticmethod
    def _resume() -> List[Dict[str, Any]]:
        return [{"event": "resume"}, {"event": "action", "name": "action_listen"}]

    async def _resume_with(self, handoff: Handoff, message: Dict[str, Any]) -> None:
        """Resume the bot and say ``message``; recorded, so a failed resume is retried by ``sweep``."""
        await self.api.append(handoff.conversation_id, self._resume() + [message])
        await asyncio.to_thread(self.store.mark_resumed, handoff.id)

    def _topic_for_case(self, handoff: Handoff, tracker: Dict[str, Any]) -> str:
        topics = self.profile.topics
        slot = (tracker.get("slots") or {}).get("topic")
        if isinstance(slot, str) and slot in topics:
            return slot
        from af_core.request_vocabulary import load_vocabulary  # the profile's request words

        vocabulary = load_vocabulary(self.profile)
        for item in reversed(transcript.entries(tracker)):
            if item["who"] == "leader":
                found = vocabulary.topic(item["text"])
                if found in topics:
                    return found
        return next(iter(topics))  # the profile's first topic; AF re-routes the case if needed

    def _middle_urgency(self) -> str:
        levels = sorted(self.profile.service_levels.items(), key=lambda kv: kv[1].get("urgency", 0))
        return levels[len(levels) // 2][0]

    async def _create_case(self, handoff: Handoff, tracker: Dict[str, Any], short: str, intro: str,
                           urgency: Optional[str] = None) -> case_service.SubmitResult:
        items = transcript.entries(tracker, handoff.leader_name or "Lederen")
        correlation = handoff.case_correlation or await asyncio.to_thread(self.store.case_correlation, handoff.id)
        request = case_service.CaseRequest(
            request_type="help",
            topic=self._topic_for_case(handoff, tracker),
            urgency=urgency or self._middle_urgency(),
            description=intro,
            requester_name=handoff.leader_name or "",
            requester_email=handoff.leader_email or "",
            institution=handoff.leader_institution or "",
            summary=transcript.as_text(items),
            short_description=f"{short} – {handoff.leader_institution or handoff.leader_name or 'leder'}",
            correlation_id=correlation,  # the same request is the same case, however often it is sent
        )
        return await case_service.submit_case(request)

    async def _open_earlier_case(self, handoff: Handoff) -> Optional[str]:
        """The leader's still open case from an earlier time-out, if any (ServiceNow unreachable: the newest)."""
        earlier = await asyncio.to_thread(self.store.recent_timeout_cases, handoff.leader_email or "",
                                          time.time() - TIMEOUT_CASE_REUSE_SECONDS, handoff.id)
        if not earlier:
            return None
        try:
            open_numbers = {c.number for c in await case_service.list_open_cases(handoff.leader_email or "", 20)}
        except Exception:  # cannot ask: do not risk a new case per time-out while ServiceNow is away
            log.warning("Kunne ikke se lederens åbne sager; genbruger %s", earlier[0])
            return earlier[0]
        return next((reference for reference in earlier if reference in open_numbers), None)

    # -- the supporter's steps ----------------------------------------------------------
    async def take_over(self, handoff_id: int, username: str, name: str) -> Handoff:
        handoff = await asyncio.to_thread(self.store.take, handoff_id, username, name)
        if handoff is None:
            current = await asyncio.to_thread(self.store.get, handoff_id)
            if current is None:
                raise FlowError("Samtalen findes ikke.", 404)
            raise FlowError("En anden har allerede taget samtalen, eller den er afsluttet.")
        await asyncio.to_thread(self.store.audit, "take", username, handoff)
        label = transcript.supporter_label(name)
        await self.api.append(handoff.conversation_id, [
            domain_texts.bot_event(TAKEN, supporter=label)
        ])
        return handoff

    async def _own(self, handoff_id: int, username: str) -> Handoff:
        handoff = await asyncio.to_thread(self.store.get, handoff_id)
        if handoff is None:
            raise FlowError("Samtalen findes ikke.", 404)
        if handoff.status != "active" or handoff.supporter != username:
            raise FlowError("Du har ikke denne samtale lige nu.", 403)
        return handoff

    async def send(self, handoff_id: int, username: str, name: str, text: str) -> None:
        handoff = await self._own(handoff_id, username)
        text = (text or "").strip()
        if not text:
            raise FlowError("Skriv en besked først.", 400)
        if len(text) > MAX_SUPPORTER_MESSAGE:
            raise FlowError(f"Beskeden er for lang (højst {MAX_SUPPORTER_MESSAGE} tegn).", 400)
        masked, _ = mask_cpr(text)
        await self.api.append(handoff.conversation_id, [transcript.supporter_event(masked, name, handoff.id)])

    async def hand_back(self, handoff_id: int, username: str, name: str) -> Handoff:
        await self._own(handoff_id, username)
        handoff = await asyncio.to_thread(self.store.finish, handoff_id, username, RETURNED)
        if handoff is None:
            raise FlowError("Samtalen kunne ikke gives tilbage. Prøv igen.")
        await asyncio.to_thread(self.store.audit, "return", username, handoff)
        first = transcript.supporter_label(name).split(" fra ")[0]
        await self._resume_with(handoff, domain_texts.bot_event(RETURNED_TO_BOT, MENU_WITHOUT_PERSON, first_name=first))
        return handoff

    async def close(self, handoff_id: int, username: str, name: str, create_case: bool,
                    note: str = "") -> Dict[str, Optional[str]]:
        current = await self._own(handoff_id, username)
        if create_case and not current.leader_email:
            raise FlowError("Der kan ikke oprettes en sag: lederens e-mail kendes ikke (intet login).", 400)
        tracker = await self.api.tracker(current.conversation_id) if create_case else {}
        handoff = await asyncio.to_thread(self.store.finish, handoff_id, username, CLOSED)
        if handoff is None:
            raise FlowError("Samtalen kunne ikke afsluttes. Prøv igen.")
        reference: Optional[str] = None
        case_error: Optional[str] = None
        if create_case:
            intro = mask_cpr((note or "").strip())[0] or "Sag oprettet fra chatten med en medarbejder fra AF."
            intro += f"\n\nChatten blev afsluttet af {name} ({username})."
            try:
                result = await self._create_case(handoff, tracker, "Chat med AF", intro)
                reference = result.reference
                await asyncio.to_thread(self.store.set_case_reference, handoff.id, reference)
            except (ValueError, case_service.CaseServiceUnavailable) as exc:
                log.warning("Sagen fra chat %s kunne ikke oprettes: %s", handoff.id, exc)
                case_error = "Sagen kunne ikke oprettes. Opret den i ServiceNow."
        await asyncio.to_thread(self.store.audit, "close", username, handoff,
                                f"sag {reference}" if reference else None)
        first = transcript.supporter_label(name).split(" fra ")[0]
        if reference:
            finished = domain_texts.bot_event(FINISHED_WITH_CASE, first_name=first, reference=reference)
        else:
            finished = domain_texts.bot_event(FINISHED, first_name=first)
        await self._resume_with(handoff, finished)
        return {"case_reference": reference, "case_error": case_error}

    # -- nobody came ----------------------------------------------------------------------
    async def time_out(self, handoff: Handoff) -> Optional[str]:
        """Bring the bot back for a hand-over nobody took. Returns the case reference, if any."""
        reference = handoff.case_reference  # set when this is a retry
        promise = ""
        reused = False
        if handoff.leader_email and not reference:
            try:
                reference = await self._open_earlier_case(handoff)
                if reference:
                    reused = True
                    await asyncio.to_thread(self.store.set_case_reference, handoff.id, reference)
            except Exception:
                log.exception("Tidligere henvendelser for chat %s kunne ikke slås op", handoff.id)
        if handoff.leader_email and not reference:
            try:
                tracker = await self.api.tracker(handoff.conversation_id)
                result = await self._create_case(
                    handoff, tracker, "Ønsker at blive kontaktet",
                    "Lederen bad om at tale med en medarbejder i chatten, men ingen nåede at tage chatten. "
                    "Lederen ønsker at blive kontaktet.",
                )
                reference, promise = result.reference, result.promise
                await asyncio.to_thread(self.store.set_case_reference, handoff.id, reference)
            except Exception:  # never leave the leader paused because the case failed
                log.exception("Henvendelsen for chat %s kunne ikke oprettes", handoff.id)
        if handoff.case_reference is None:  # not on retries
            await asyncio.to_thread(self.store.audit, "timeout", None, handoff,
                                    (f"samme sag som før: {reference}" if reused else f"sag {reference}")
                                    if reference else "ingen sag")
        if reused:
            message = domain_texts.bot_event(TIMEOUT_EARLIER_CASE, reference=reference)
        elif reference:
            message = domain_texts.bot_event(TIMEOUT_NEW_CASE, reference=reference,
                                             promise=" " + promise if promise else "")
        else:
            message = domain_texts.bot_event(TIMEOUT_NO_CASE, phone=self.profile.phone)
        await self._resume_with(handoff, message)
        return reference

    async def sweep(self) -> int:
        """Time out every waiting hand-over past its deadline, and retry resumes that failed; how many."""
        due = await asyncio.to_thread(self.store.claim_timed_out)
        due_ids = {h.id for h in due}
        stuck = [h for h in await asyncio.to_thread(self.store.claim_not_resumed, RESUME_RETRY_SECONDS)
                 if h.id not in due_ids]
        for handoff in due + stuck:
            try:
                if handoff.status == TIMED_OUT:
                    await self.time_out(handoff)
                else:
                    await self._resume_with(handoff, domain_texts.bot_event(BOT_BACK, MENU_WITHOUT_PERSON))
            except Exception:
                log.exception("Kunne ikke give chat %s tilbage til assistenten (prøver igen)", handoff.id)
        return len(due) + len(stuck)


async def run_timeouts(flow: Flow, interval: float = SWEEP_SECONDS) -> None:
    """The web server's background task: the bot comes back when nobody takes a chat in time."""
    while True:
        try:
            await flow.sweep()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Tjek af ventende chats fejlede")
        await asyncio.sleep(interval)
