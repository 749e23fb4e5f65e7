"""No request lost, none duplicated: 200 requests while ServiceNow misbehaves.

The emulator fails about a third of all calls (429, 500, 502, 503, 504; half of
the failures only after the case was stored, so the answer is lost), adds
latency to every call, and refuses connections for a while in the middle. The
unique index on correlation_id is switched off, so only the client's own
lookup-before-re-POST protects against duplicates.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

from af_core.case_service import CaseRequest, CaseService, correlation_display
from af_core.outbox import Outbox, run_worker
from af_core.servicenow_client import ServiceNowClient
from servicenow_emulator.testing import Admin, start_emulator, test_settings

TOTAL = 200
TOPICS = ("loen", "personale", "indkoeb", "oekonomi", "arbejdstid")
URGENCIES = ("akut", "snart", "ingen_hast")


def _request(i: int) -> CaseRequest:
    return CaseRequest(
        request_type="meeting" if i % 4 == 0 else "help",
        topic=TOPICS[i % len(TOPICS)],
        urgency=URGENCIES[i % len(URGENCIES)],
        description=f"Henvendelse nummer {i}",
        requester_name=f"Leder {i}",
        requester_email=f"leder{i % 17}@buf.kk.dk",
        institution="Valby Skole" if i % 2 else "Sundby Skole",
        meeting_channel="teams" if i % 4 == 0 else None,
        preferred_time="2026-12-01T10:00:00+01:00" if i % 4 == 0 else None,
        correlation_id=f"{i:032x}",
    )


def test_200_requests_under_faults_become_exactly_200_cases(tmp_path):
    emulator = start_emulator(tmp_path, seed=20261130)
    admin = Admin(emulator.url)
    admin.config(enforce_unique_correlation=False)
    settings = test_settings(
        emulator.url, tmp_path,
        SERVICENOW_TIMEOUT_SECONDS="2", SERVICENOW_MAX_RETRIES="3", SERVICENOW_BACKOFF_SECONDS="0.01",
        AF_OUTBOX_INTERVAL_SECONDS="0.05",
    )
    service = CaseService(settings)
    stop = threading.Event()
    worker = threading.Thread(
        target=run_worker, args=(stop,),
        kwargs={"settings": settings, "client": ServiceNowClient(settings), "outbox": Outbox(settings.outbox_path)},
        daemon=True,
    )
    admin.faults(error_rate=0.34, error_statuses=[429, 500, 502, 503, 504], error_phase="mixed",
                 retry_after=0, latency_ms=15)
    started = time.monotonic()
    try:
        worker.start()

        async def submit_all():
            done = 0
            went_down = asyncio.Event()
            limit = asyncio.Semaphore(8)

            async def one(i: int):
                nonlocal done
                async with limit:
                    result = await service.submit_case(_request(i))
                done += 1
                if done == 60 and not went_down.is_set():
                    went_down.set()
                    await asyncio.to_thread(admin.faults, down_seconds=2)
                return result

            return await asyncio.gather(*(one(i) for i in range(TOTAL)))

        results = asyncio.run(submit_all())
        deadline = time.monotonic() + 40
        while service.outbox.count_pending() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join(10)

    try:
        assert service.outbox.count_pending() == 0, "the outbox did not drain"
        cases = admin.cases()
        stats = admin.state()["stats"]
    finally:
        emulator.stop()

    by_cid = {c["correlation_id"]: c for c in cases}
    duplicates = [cid for cid, n in Counter(c["correlation_id"] for c in cases).items() if n > 1]
    assert duplicates == []
    assert len(cases) == TOTAL
    assert set(by_cid) == {f"{i:032x}" for i in range(TOTAL)}
    assert len({c["number"] for c in cases}) == TOTAL

    queued = 0
    for i, result in enumerate(results):
        cid = f"{i:032x}"
        case = by_cid[cid]
        assert case["u_requester_email"] == f"leder{i % 17}@buf.kk.dk"
        if result.status == "created":
            assert result.number == case["number"] == result.reference
        else:
            queued += 1
            assert result.status == "queued" and result.number is None
            assert result.reference == correlation_display(cid) == case["correlation_display"]
            assert service.outbox.receipt(cid)["number"] == case["number"]
    injected = sum(stats["injected"].values())
    assert injected >= 50, stats  # the faults really happened ...
    assert queued >= 1, "the down period should have queued some requests"
    assert time.monotonic() - started < 60
