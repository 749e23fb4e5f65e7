"""What one process does in tests/test_postgres_stores.py: each function runs in its own OS
process (multiprocessing, "spawn": a fresh interpreter, like a server on another host) and
shares nothing with the others but the PostgreSQL database named in ``env``.

Kept apart from the test module so a child imports only what a server would."""
from __future__ import annotations

import asyncio
import time
from typing import Dict, List, Sequence


def _settings(env: Dict[str, str]):
    from af_core.settings import load_settings

    return load_settings(env)


def open_stores(env: Dict[str, str], barrier, results) -> None:
    """A server starting on an empty database: the hand-over store and the outbox make their tables."""
    from af_core.handoff_store import HandoffStore
    from af_core.outbox import Outbox

    settings = _settings(env)
    barrier.wait()
    try:
        HandoffStore.for_settings(settings)
        Outbox.for_settings(settings).count_pending()
        results.put(("ok", ""))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def take_all(env: Dict[str, str], supporter: str, ids: Sequence[int], barrier, results) -> None:
    """A web server whose supporter clicks "take" on every waiting chat, as fast as it can."""
    from af_core.handoff_store import get_store

    store = get_store(_settings(env))
    barrier.wait()
    won = [handoff_id for handoff_id in ids if store.take(handoff_id, supporter, supporter) is not None]
    results.put((supporter, won))


def request_for_leaders(env: Dict[str, str], window: str, emails: Sequence[str], barrier, results) -> None:
    """An action server where each leader asks for a person in this window (conversation)."""
    from af_core.handoff_store import get_store

    store = get_store(_settings(env))
    barrier.wait()
    created: List[str] = []
    for email in emails:
        handoff, new = store.request(f"{window}-{email}", leader_name="Leder", leader_email=email,
                                     leader_institution=None, leader_unit=None, topic=None, wait_seconds=600)
        if new:
            created.append(email)
    results.put((window, created))


def claim_time_outs(env: Dict[str, str], name: str, barrier, results) -> None:
    """A web server's time-out task."""
    from af_core.handoff_store import get_store

    store = get_store(_settings(env))
    barrier.wait()
    claimed: List[int] = []
    for _ in range(20):
        claimed += [h.id for h in store.claim_timed_out()]
    results.put((name, claimed))


def reserve_logins(env: Dict[str, str], name: str, phases: Sequence[Sequence[Dict]], barrier, results) -> None:
    """A web server receiving login attempts: each phase starts at the same moment in every process."""
    from af_core.handoff_store import get_store

    store = get_store(_settings(env))
    outcome: List[List[str]] = []
    for attempts in phases:
        barrier.wait()
        got = []
        for attempt in attempts:
            try:
                reservation = store.reserve_login(nonce_expires_at=time.time() + 600, **attempt)
                got.append(reservation.refused or "ok")
            except Exception as exc:  # noqa: BLE001 - a server answers 500 here; the test counts it
                got.append(f"error: {type(exc).__name__}")
        outcome.append(got)
    results.put((name, outcome))


def deliver(env: Dict[str, str], name: str, deadline: float, barrier, results) -> None:
    """An outbox worker (``python -m af_core.outbox``'s loop) on its own host, until nothing is pending."""
    from af_core.outbox import Outbox, deliver_due
    from af_core.servicenow_client import ServiceNowClient

    settings = _settings(env)
    outbox = Outbox.for_settings(settings)
    client = ServiceNowClient(settings)
    barrier.wait()
    delivered = 0
    while time.time() < deadline:
        report = deliver_due(outbox, client, settings.outbox_interval_seconds)
        delivered += report.delivered
        if report.remaining == 0:
            break
        time.sleep(0.02)
    results.put((name, delivered))


def submit_again(env: Dict[str, str], name: str, requests: Sequence[Dict], barrier, results) -> None:
    """An action server where leaders say "ja" to these requests (some of them already in the outbox)."""
    from af_core.case_service import CaseRequest, CaseService

    service = CaseService(_settings(env))
    barrier.wait()
    answers = []
    for values in requests:
        result = asyncio.run(service.submit_case(CaseRequest(**values)))
        answers.append((values["correlation_id"], result.status, result.number, result.reference))
    results.put((name, answers))


def outbox_server(env: Dict[str, str], role: str, name: str, work, barrier, results) -> None:
    """An outbox worker (``work``: its deadline) or an action server (``work``: the requests)."""
    if role == "worker":
        return deliver(env, name, work, barrier, results)
    return submit_again(env, name, work, barrier, results)
