"""The facade the dialogue uses: what a leader notices when ordering help,
booking a meeting or asking about a case, also when ServiceNow is slow or down."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from af_core import case_service
from af_core.case_service import (
    CaseRequest,
    CaseService,
    CaseServiceUnavailable,
    get_case,
    list_open_cases,
    set_service,
    submit_case,
)
from af_core.outbox import deliver_due
from servicenow_emulator.testing import Admin, start_emulator, test_settings

ROOT = Path(__file__).resolve().parent.parent
METTE = "mette.hansen@buf.kk.dk"
JONAS = "jonas.nielsen@buf.kk.dk"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    emu = start_emulator(tmp_path_factory.mktemp("servicenow"))
    yield emu
    emu.stop()


@pytest.fixture
def admin(emulator):
    admin = Admin(emulator.url)
    admin.clear()
    admin.reset_faults()
    yield admin
    admin.reset_faults()


@pytest.fixture
def service(emulator, admin, tmp_path):
    return CaseService(test_settings(emulator.url, tmp_path))


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def help_request(email: str = METTE, **changes) -> CaseRequest:
    values = dict(
        request_type="help",
        topic="loen",
        urgency="akut",
        description="En vikar har ikke fået løn for november. Hendes CPR er 010203-1234.",
        requester_name="Mette Hansen",
        requester_email=email,
        institution="Valby Skole",
        summary="Lederen spurgte om manglende løn; blanketten passede ikke.",
    )
    values.update(changes)
    return CaseRequest(**values)


def run(coro):
    return asyncio.run(coro)


# -- submitting ------------------------------------------------------------------
def test_help_request_becomes_a_routed_case(service, admin):
    result = run(service.submit_case(help_request()))
    assert result.status == "created"
    assert result.number and result.reference == result.number
    assert (result.unit_name, result.assignment_group, result.promise) == ("AF Syd", "af-syd-loen", "i dag")
    [case] = admin.cases()
    assert case["number"] == result.number
    assert case["u_request_type"] == "help" and case["u_topic"] == "loen"
    assert case["urgency"] == "1"
    assert case["contact_type"] == "chat"
    assert case["assignment_group"] == "af-syd-loen"
    assert case["u_institution"] == "Valby Skole"
    assert case["u_requester_email"] == case["opened_by"] == METTE
    assert len(case["correlation_id"]) == 32 and case["correlation_display"].startswith("AF-")
    assert "vikar har ikke fået løn" in case["description"]
    assert "manglende løn" in case["description"]  # the conversation summary
    assert case["short_description"]


def test_no_cpr_number_reaches_servicenow(service, admin):
    run(service.submit_case(help_request(summary="CPR 0102031234 nævnt", short_description="Løn 010203-1234")))
    [case] = admin.cases()
    for value in case.values():
        assert "010203" not in value


def test_meeting_request_carries_channel_time_and_urgency(service, admin):
    result = run(service.submit_case(help_request(
        JONAS, request_type="meeting", topic="personale", urgency="ingen_hast", institution="Sundby Skole",
        meeting_channel="teams", preferred_time="2026-12-01T10:00:00+01:00")))
    assert (result.unit_name, result.assignment_group) == ("AF Øst", "af-oest-personale")
    assert result.promise == "inden for fem arbejdsdage"
    [case] = admin.cases()
    assert case["u_meeting_channel"] == "teams"
    assert case["u_preferred_time"] == "2026-12-01T10:00:00+01:00"
    assert case["urgency"] == "3"


def test_unknown_institution_goes_to_the_default_unit(service):
    result = run(service.submit_case(help_request(institution="Ukendt Børnehus", urgency="snart")))
    assert (result.unit_name, result.assignment_group) == ("AF Midt", "af-midt-loen")


def test_invalid_request_is_refused_before_servicenow(service, admin):
    with pytest.raises(ValueError):
        run(service.submit_case(help_request(topic="ferie")))
    with pytest.raises(ValueError):
        run(service.submit_case(help_request(email="mette^ORstate=1@buf.kk.dk")))
    assert admin.cases() == []


# -- ServiceNow down: queued, survives a restart, delivered exactly once -----------------
def test_queued_request_survives_restart_and_is_delivered_once(emulator, admin, tmp_path):
    down = CaseService(test_settings(dead_url(), tmp_path, SERVICENOW_MAX_RETRIES="1"))
    result = run(down.submit_case(help_request()))
    assert result.status == "queued" and result.number is None
    assert case_service.REFERENCE_PATTERN.match(result.reference)
    assert (result.unit_name, result.promise) == ("AF Syd", "i dag")
    with pytest.raises(CaseServiceUnavailable):
        run(down.list_open_cases(METTE))
    del down  # "restart": a new process with the same outbox file

    restarted = CaseService(test_settings(emulator.url, tmp_path))
    [queued] = run(restarted.list_open_cases(METTE))
    assert queued.number == result.reference and queued.state == "queued"
    assert run(restarted.get_case(result.reference.lower(), METTE)).state_label == case_service.QUEUED_LABEL
    assert run(restarted.get_case(result.reference, JONAS)) is None

    report = deliver_due(restarted.outbox, restarted.client, 0.05)
    assert report.delivered == 1 and report.remaining == 0
    [case] = admin.cases()
    assert case["correlation_display"] == result.reference
    [listed] = run(restarted.list_open_cases(METTE))
    assert listed.number == case["number"] and listed.state_label == "Ny"
    assert deliver_due(restarted.outbox, restarted.client, 0.05).delivered == 0
    assert len(admin.cases()) == 1


def test_outbox_worker_process_delivers_and_stops_on_sigterm(emulator, admin, tmp_path):
    down = CaseService(test_settings(dead_url(), tmp_path, SERVICENOW_MAX_RETRIES="0"))
    results = [run(down.submit_case(help_request())) for _ in range(3)]
    assert {r.status for r in results} == {"queued"}
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "AF_MODE": "development",
        "AF_VAR_DIR": str(tmp_path),
        "SERVICENOW_URL": emulator.url,
        "AF_OUTBOX_PATH": str(down.outbox.path),
        "AF_OUTBOX_INTERVAL_SECONDS": "0.1",
    }
    worker = subprocess.Popen([sys.executable, "-m", "af_core.outbox"], cwd=str(ROOT), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while down.outbox.count_pending() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert down.outbox.count_pending() == 0
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=10)
    assert worker.returncode == 0, output
    assert "Udbakken" in output
    assert sorted(c["correlation_display"] for c in admin.cases()) == sorted(r.reference for r in results)


# -- reading ------------------------------------------------------------------------
def test_list_and_get_only_the_leaders_own_cases(service, admin):
    first = run(service.submit_case(help_request()))
    second = run(service.submit_case(help_request(topic="indkoeb")))
    foreign = run(service.submit_case(help_request(JONAS)))
    listed = run(service.list_open_cases(METTE))
    assert [c.number for c in listed] == [second.number, first.number]
    assert listed[0].topic == "indkoeb" and listed[0].request_type == "help"
    assert run(service.get_case(foreign.number, METTE)) is None
    assert run(service.get_case(first.number, METTE)).number == first.number
    assert run(service.get_case("AFH12", METTE)) is None
    assert run(service.get_case(f"{foreign.number}^ORnumberISNOTEMPTY", METTE)) is None
    assert run(service.list_open_cases("javascript:gs.getUserName()")) == []


def test_state_labels_are_danish(service):
    created = run(service.submit_case(help_request()))
    case = run(service.get_case(created.number, METTE))
    assert (case.state, case.state_label) == ("1", "Ny")
    sys_id = service.client.get_case_for_leader(created.number, METTE)["sys_id"]
    for state, label in (("2", "Under behandling"), ("3", "Afventer"), ("6", "Løst"), ("7", "Lukket")):
        service.client.update_record(sys_id, {"state": state})
        assert run(service.get_case(created.number, METTE)).state_label == label
    assert run(service.list_open_cases(METTE)) == []  # closed cases are not open


# -- the action server must not block --------------------------------------------------
def test_slow_servicenow_does_not_delay_another_conversation(service, admin):
    run(service.submit_case(help_request(JONAS)))
    admin.faults(latency_ms=1500, methods=["POST"])

    async def two_conversations():
        slow = asyncio.create_task(service.submit_case(help_request()))
        await asyncio.sleep(0.1)  # the slow call is now waiting for ServiceNow
        started = time.monotonic()
        other = await service.list_open_cases(JONAS)  # another leader's conversation
        other_took = time.monotonic() - started
        slow_done_then = slow.done()
        return await slow, other, other_took, slow_done_then

    slow_result, other, other_took, slow_done_then = run(two_conversations())
    assert len(other) == 1
    assert other_took < 0.7, f"the other conversation waited {other_took:.2f}s"
    assert not slow_done_then
    assert slow_result.status == "created"


# -- the module-level interface -----------------------------------------------------------
def test_module_functions_use_the_configured_service(service):
    set_service(service)
    try:
        created = run(submit_case(help_request()))
        assert [c.number for c in run(list_open_cases(METTE, limit=5))] == [created.number]
        assert run(get_case(created.number, METTE)).number == created.number
    finally:
        set_service(None)


def test_a_waiting_leader_is_answered_within_the_budget(emulator, admin, tmp_path):
    settings = test_settings(emulator.url, tmp_path, SERVICENOW_MAX_RETRIES="10", SERVICENOW_BACKOFF_SECONDS="0.4")
    impatient = CaseService(settings, budget_seconds=1.0)
    admin.faults(next_statuses=[503] * 30)
    started = time.monotonic()
    result = run(impatient.submit_case(help_request()))
    assert result.status == "queued"
    assert time.monotonic() - started < 2.5
    assert impatient.outbox.count_pending() == 1
    admin.reset_faults()
    assert deliver_due(impatient.outbox, impatient.client, 0.05).delivered == 1
    assert len(admin.cases()) == 1


def test_production_without_servicenow_url_queues_instead_of_failing(tmp_path):
    from af_core.settings import load_settings
    from tests.production_env import production_env

    settings = load_settings(production_env(AF_VAR_DIR=str(tmp_path), AF_OUTBOX_PATH=str(tmp_path / "outbox.sqlite3")))
    assert settings.servicenow_url == ""
    unconfigured = CaseService(settings)
    result = run(unconfigured.submit_case(help_request()))
    assert result.status == "queued"
    assert unconfigured.outbox.count_pending() == 1
    with pytest.raises(CaseServiceUnavailable):
        run(unconfigured.list_open_cases(METTE))
