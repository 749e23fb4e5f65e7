"""The outbox's edge cases (security review): what a leader, AF or an attacker would notice.

1. A lost action reply plus a second "ja" never gives two cases, also when ServiceNow has
   no unique index on correlation_id: the leader gets the same case number.
2. A request ServiceNow rejects (400 and other permanent 4xx) is not retried forever: it is
   kept as a dead letter that AF can see (log, `python -m af_core.outbox --dead`, the report).
3. Retry-After is honoured in both forms, with a cap; retries never run past a deadline, and
   the leader gets an answer within a few seconds.
4. Case numbers and correlation ids are matched in full, with ASCII digits only.

ServiceNow is either the emulator with its unique index switched off, or a loopback fake
(below) that also has no unique index and can answer oddly. Both run on free ports.
Clocks and sleeps are injected, so the long waits cost no real time. The tests that use the
outbox run on both backends: the SQLite file and PostgreSQL (``af_outbox``, tests/pg.py; skipped
with the reason when PostgreSQL is not there). Across processes: tests/test_postgres_stores.py.
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest

from af_core import case_service, outbox as outbox_module, servicenow_client as sn
from af_core.case_service import CaseRequest, CaseService
from af_core.outbox import Outbox, deliver_due
from af_core.servicenow_client import InvalidQueryValue, ServiceNowClient
from servicenow_emulator.testing import Admin, start_emulator, test_settings
from tests.pg import backend, pg, pg_database  # noqa: F401 - fixtures

METTE = "mette.hansen@buf.kk.dk"
CID = "c0ffee" + "0" * 26
ZONE = ZoneInfo("Europe/Copenhagen")


def help_request(**changes) -> CaseRequest:
    values = dict(
        request_type="help", topic="loen", urgency="akut",
        description="En vikar har ikke fået løn for november.",
        requester_name="Mette Hansen", requester_email=METTE, institution="Valby Skole",
        correlation_id=CID,
    )
    values.update(changes)
    return CaseRequest(**values)


def run(coro):
    return asyncio.run(coro)


class VirtualTime:
    """A monotonic clock that sleeping moves forward without waiting."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.sleeps: List[float] = []

    def clock(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += max(seconds, 0.0)


# -- a loopback ServiceNow without a unique index -------------------------------------------
class FakeServiceNow:
    """Just enough of the Table API: POST creates, GET lists with ``field=value`` conditions.

    ``then(method, status, headers, body)`` scripts the next answer to a method; ``slow_post``
    delays every POST; ``number_of`` makes the case number ServiceNow hands out."""

    def __init__(self) -> None:
        self.records: List[Dict[str, str]] = []
        self.calls: List[str] = []
        self.script: List[Tuple[str, int, Dict[str, str], Any]] = []
        self.number_of: Callable[[int], str] = lambda n: f"AFH{n:07d}"
        self.slow_post = 0.0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: Any, headers: Optional[Dict[str, str]] = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _scripted(self, method: str) -> bool:
                with fake.lock:
                    fake.calls.append(method)
                    for index, (wanted, status, headers, body) in enumerate(fake.script):
                        if wanted in (method, "*"):
                            del fake.script[index]
                            break
                    else:
                        return False
                self._send(status, body if body is not None else
                           {"error": {"message": f"HTTP {status}", "detail": None}, "status": "failure"}, headers)
                return True

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self._scripted("POST"):
                    return
                if fake.slow_post:
                    time.sleep(fake.slow_post)
                with fake.lock:
                    record = {k: str(v) for k, v in body.items()}
                    record.update(number=fake.number_of(1001 + len(fake.records)), sys_id=secrets.token_hex(16),
                                  state="1")
                    fake.records.append(record)
                self._send(201, {"result": record})

            def do_GET(self):
                if self._scripted("GET"):
                    return
                query = parse_qs(urlparse(self.path).query).get("sysparm_query", [""])[0]
                conditions = [part.split("=", 1) for part in query.split("^")
                              if "=" in part and "NOT IN" not in part and not part.startswith("ORDERBY")]
                with fake.lock:
                    found = [r for r in fake.records if all(r.get(k) == v for k, v in conditions)]
                self._send(200, {"result": list(reversed(found))})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def then(self, method: str, status: int, headers: Optional[Dict[str, str]] = None, body: Any = None):
        with self.lock:
            self.script.append((method, status, headers or {}, body))

    @property
    def posts(self) -> int:
        return self.calls.count("POST")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    server = FakeServiceNow()
    yield server
    server.stop()


@pytest.fixture
def own_logging():
    """The outbox command installs its process's log handler (af_core.logsetup); put pytest's back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


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
    admin.config(enforce_unique_correlation=False)  # only our own care protects against duplicates
    yield admin
    admin.reset_faults()
    admin.config(enforce_unique_correlation=True)


# == 1. a second "ja" never duplicates a case ===================================================
def test_a_second_yes_after_a_lost_reply_gives_the_same_case(emulator, admin, tmp_path, backend):
    service = CaseService(test_settings(emulator.url, tmp_path, **backend.env))
    first = run(service.submit_case(help_request()))
    second = run(service.submit_case(help_request()))  # Rasa never got the first reply
    [case] = admin.cases()
    assert first.status == second.status == "created"
    assert first.number == second.number == case["number"]


def test_a_second_yes_after_servicenow_stored_the_case_but_the_answer_was_lost(emulator, admin, tmp_path, backend):
    # ServiceNow stores the case, then answers too late: the leader is told "modtaget".
    admin.faults(latency_ms=2500, latency_phase="after", methods=["POST"])
    service = CaseService(test_settings(emulator.url, tmp_path, **backend.env), budget_seconds=0.8)
    first = run(service.submit_case(help_request()))
    assert first.status == "queued"
    admin.reset_faults()
    second = run(service.submit_case(help_request()))
    [case] = admin.cases()
    assert second.status == "created" and second.number == case["number"]
    assert deliver_due(service.outbox, service.client, 0.05).delivered == 0
    assert len(admin.cases()) == 1


def test_two_yes_at_the_same_time_give_one_case_and_the_same_number(emulator, admin, tmp_path, backend):
    admin.faults(latency_ms=300, methods=["POST"])
    service = CaseService(test_settings(emulator.url, tmp_path, **backend.env))

    async def both():
        return await asyncio.gather(service.submit_case(help_request()), service.submit_case(help_request()))

    one, other = run(both())
    [case] = admin.cases()
    assert one.number == other.number == case["number"]


def test_a_second_yes_while_the_worker_delivers_does_not_post_again(fake, tmp_path, backend):
    settings = test_settings(fake.url, tmp_path, **backend.env)
    service = CaseService(settings, budget_seconds=0.3)
    service.outbox.add(service.build_record(help_request()), correlation_id=CID,
                       correlation_display=case_service.correlation_display(CID), requester_email=METTE)
    assert len(service.outbox.claim_due(10, lease_seconds=60)) == 1  # the worker is on it
    result = run(service.submit_case(help_request()))
    assert result.status == "queued" and result.reference == case_service.correlation_display(CID)
    assert fake.posts == 0


def test_a_stored_case_number_in_a_strange_form_is_not_handed_out(fake, tmp_path, backend):
    service = CaseService(test_settings(fake.url, tmp_path, **backend.env))
    first = run(service.submit_case(help_request()))
    with service.outbox._connect() as db:
        db.execute("UPDATE outbox SET number=? WHERE correlation_id=?", (first.number + "\n", CID))
    second = run(service.submit_case(help_request()))
    assert second.number == first.number
    assert len(fake.records) == 1


# == 2. a rejected request becomes a dead letter =================================================
REJECTION = {"error": {"message": "Invalid choice value for field u_topic", "detail": "u_topic"},
             "status": "failure"}


def test_a_rejected_request_is_kept_not_retried_and_visible(fake, tmp_path, caplog, backend):
    caplog.set_level(logging.INFO)
    settings = test_settings(fake.url, tmp_path, **backend.env)
    service = CaseService(settings)
    fake.then("POST", 400, body=REJECTION)
    result = run(service.submit_case(help_request()))
    assert result.status == "queued" and result.number is None
    worker = ServiceNowClient(settings)
    for _ in range(3):
        deliver_due(service.outbox, worker, 0.0)
    assert fake.posts == 1, "a request ServiceNow rejected was sent again"
    assert fake.records == []
    # kept, with everything AF needs to register it by hand ...
    [dead] = service.outbox.dead_letters()
    assert dead.correlation_display == result.reference
    assert "vikar har ikke fået løn" in dead.record["description"]
    assert "400" in dead.last_error and "u_topic" in dead.last_error
    # ... still visible to the leader under the reference she was given ...
    [listed] = run(service.list_open_cases(METTE))
    assert listed.number == result.reference
    # ... and loud in the log.
    assert any(r.levelno >= logging.ERROR and result.reference in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("status", [400, 405, 413, 415, 422])
def test_the_worker_dead_letters_a_permanent_refusal_once(fake, tmp_path, status, backend):
    settings = test_settings(fake.url, tmp_path, **backend.env)
    outbox = Outbox.for_settings(settings)
    outbox.add({"correlation_id": CID, "u_requester_email": METTE}, correlation_id=CID,
               correlation_display="AF-TEST1", requester_email=METTE)
    fake.then("POST", status)
    client = ServiceNowClient(settings)
    report = deliver_due(outbox, client, 0.0)
    assert report.dead == 1 and report.remaining == 0
    deliver_due(outbox, client, 0.0)
    assert fake.posts == 1
    assert [e.correlation_id for e in outbox.dead_letters()] == [CID]


@pytest.mark.parametrize("status", [401, 403, 404, 408, 409, 429, 500])
def test_a_refusal_that_can_pass_later_is_retried(fake, tmp_path, status, backend):
    settings = test_settings(fake.url, tmp_path, **backend.env, SERVICENOW_MAX_RETRIES="0")
    outbox = Outbox.for_settings(settings)
    outbox.add({"correlation_id": CID, "u_requester_email": METTE}, correlation_id=CID,
               correlation_display="AF-TEST1", requester_email=METTE)
    fake.then("POST", status, headers={"Retry-After": "0"})
    client = ServiceNowClient(settings)
    assert deliver_due(outbox, client, 0.0).delivered == 0
    assert outbox.dead_letters() == []
    assert deliver_due(outbox, client, 0.0).delivered == 1
    assert len(fake.records) == 1


def test_af_sends_a_dead_letter_again_once_the_cause_is_fixed(fake, tmp_path, capsys, backend, own_logging):
    # the command logs like the worker: into the test's own directory, not the checkout's logs/
    settings = test_settings(fake.url, tmp_path, **backend.env, AF_LOG_DIR=str(tmp_path / "logs"))
    service = CaseService(settings)
    fake.then("POST", 400, body=REJECTION)
    reference = run(service.submit_case(help_request())).reference
    assert outbox_module.main(["--dead"], settings=settings) == 0
    listing = capsys.readouterr().out
    assert reference in listing and "u_topic" in listing and METTE in listing
    assert outbox_module.main(["--requeue", reference], settings=settings) == 0
    assert (tmp_path / "logs" / "outbox.log").exists()
    assert deliver_due(service.outbox, service.client, 0.0).delivered == 1
    assert len(fake.records) == 1 and service.outbox.dead_letters() == []


def test_af_marks_a_dead_letter_it_registered_by_hand(fake, tmp_path, backend, own_logging):
    # the command logs like the worker: into the test's own directory, not the checkout's logs/
    settings = test_settings(fake.url, tmp_path, **backend.env, AF_LOG_DIR=str(tmp_path / "logs"))
    service = CaseService(settings)
    fake.then("POST", 400, body=REJECTION)
    reference = run(service.submit_case(help_request())).reference
    assert outbox_module.main(["--resolve", reference, "AFH0009999\n"], settings=settings) != 0
    assert outbox_module.main(["--resolve", reference, "AFH0009999"], settings=settings) == 0
    assert service.outbox.dead_letters() == []
    assert service.outbox.receipt(CID)["number"] == "AFH0009999"
    assert run(service.submit_case(help_request())).number == "AFH0009999"  # a late "ja"
    assert fake.posts == 1


def test_the_follow_up_report_counts_and_lists_dead_letters(fake, tmp_path, backend):
    from trainer import report

    settings = test_settings(fake.url, tmp_path, **backend.env)
    service = CaseService(settings)
    fake.then("POST", 400, body=REJECTION)
    dead = run(service.submit_case(help_request())).reference
    run(service.submit_case(help_request(correlation_id="1" * 32)))  # delivered
    figures = report.outbox_figures(settings, ZONE)
    assert figures["dead"] == 1 and figures["pending"] == 0
    [letter] = figures["dead_letters"]
    assert letter["reference"] == dead and letter["topic"] == "loen" and "400" in letter["error"]
    assert METTE not in json.dumps(figures)  # the report is no place for personal data
    page = report.render_html(dict(_empty_report(), outbox=figures), report.catalogue_names(settings.profile_dir))
    assert dead in page and "Afvist af ServiceNow" in page


def test_the_report_does_not_create_a_missing_outbox(tmp_path):
    from trainer import report

    figures = report.outbox_figures(tmp_path / "none.sqlite3", ZONE)
    assert figures == {"pending": 0, "dead": 0, "dead_letters": []}
    assert not (tmp_path / "none.sqlite3").exists()


def test_the_report_does_not_create_a_missing_outbox_in_postgres(pg, tmp_path):
    from trainer import report

    pg.drop_table("af_outbox")
    figures = report.outbox_figures(test_settings("http://127.0.0.1:9", tmp_path, **pg.env), ZONE)
    assert figures == {"pending": 0, "dead": 0, "dead_letters": []}
    assert "af_outbox" not in pg.tables()


def _empty_report() -> Dict[str, Any]:
    import datetime as dt

    from trainer import report

    day = dt.date(2026, 11, 1)
    return report.compute([], day, day, ZONE)


# == 3. Retry-After and the deadline ==============================================================
def test_retry_after_in_seconds_is_honoured(fake, tmp_path):
    virtual = VirtualTime()
    client = ServiceNowClient(test_settings(fake.url, tmp_path), sleep=virtual.sleep, clock=virtual.clock)
    fake.then("POST", 429, headers={"Retry-After": "7"})
    created = client.create_record({"correlation_id": CID})
    assert created["number"] == "AFH0001001"
    assert len(virtual.sleeps) == 1 and 7 <= virtual.sleeps[0] < 8


def test_retry_after_as_an_http_date_is_honoured(fake, tmp_path):
    virtual = VirtualTime()
    now = 1_790_000_000.0
    client = ServiceNowClient(test_settings(fake.url, tmp_path), sleep=virtual.sleep, clock=virtual.clock,
                              wall_clock=lambda: now)
    fake.then("POST", 503, headers={"Retry-After": formatdate(now + 6, usegmt=True)})
    fake.then("POST", 429, headers={"Retry-After": formatdate(now - 60, usegmt=True)})  # already passed
    assert client.create_record({"correlation_id": CID})["number"] == "AFH0001001"
    assert 6 <= virtual.sleeps[0] < 7
    assert virtual.sleeps[1] < 1


@pytest.mark.parametrize("header", ["1e9", "soon", "-5", "nan", "9" * 40])
def test_a_nonsense_retry_after_neither_blocks_nor_stops_delivery(fake, tmp_path, header):
    virtual = VirtualTime()
    client = ServiceNowClient(test_settings(fake.url, tmp_path), sleep=virtual.sleep, clock=virtual.clock)
    fake.then("POST", 429, headers={"Retry-After": header})
    if header == "9" * 40:  # a valid but absurd number of seconds: give up now, the outbox waits (capped)
        with pytest.raises(sn.ServiceNowUnavailable) as err:
            client.create_record({"correlation_id": CID})
        assert err.value.retry_after is not None and err.value.retry_after > 10
        return
    assert client.create_record({"correlation_id": CID})["number"] == "AFH0001001"
    assert sum(virtual.sleeps) < 1


class OutboxClock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_long_retry_after_is_left_to_the_outbox_which_waits_at_most_the_cap(fake, tmp_path, backend):
    settings = test_settings(fake.url, tmp_path, **backend.env)
    clock = OutboxClock()
    virtual = VirtualTime()
    outbox = Outbox.for_settings(settings, clock=clock)
    service = CaseService(settings, outbox=outbox, clock=virtual.clock, sleep=virtual.sleep)
    fake.then("POST", 429, headers={"Retry-After": "86400"})  # "come back tomorrow"
    result = run(service.submit_case(help_request()))
    assert result.status == "queued"
    assert virtual.sleeps == []  # the leader was not kept waiting
    worker = ServiceNowClient(settings, sleep=virtual.sleep, clock=virtual.clock)
    clock.now += outbox_module.MAX_RETRY_DELAY_SECONDS - 5
    assert deliver_due(outbox, worker, 0.05).delivered == 0
    assert fake.posts == 1, "ServiceNow asked us to wait"
    clock.now += 10
    assert deliver_due(outbox, worker, 0.05).delivered == 1  # ... but never longer than the cap


def test_a_worker_round_waits_as_servicenow_asks_for_every_entry(fake, tmp_path, backend):
    settings = test_settings(fake.url, tmp_path, **backend.env, SERVICENOW_MAX_RETRIES="0")
    clock = OutboxClock()
    outbox = Outbox.for_settings(settings, clock=clock)
    for cid in ("a" * 32, "b" * 32):
        outbox.add({"correlation_id": cid, "u_requester_email": METTE}, correlation_id=cid,
                   correlation_display="AF-TEST1", requester_email=METTE)
    fake.then("GET", 429, headers={"Retry-After": "120"})
    client = ServiceNowClient(settings)
    assert deliver_due(outbox, client, 0.05).delivered == 0
    clock.now += 100
    assert deliver_due(outbox, client, 0.05).delivered == 0
    assert len(fake.calls) == 1
    clock.now += 30
    assert deliver_due(outbox, client, 0.05).delivered == 2


def test_a_hanging_servicenow_does_not_keep_the_leader_waiting(fake, tmp_path, backend):
    fake.slow_post = 0.8  # far below SERVICENOW_TIMEOUT_SECONDS, far above the leader's deadline
    settings = test_settings(fake.url, tmp_path, **backend.env, SERVICENOW_TIMEOUT_SECONDS="8")
    service = CaseService(settings, budget_seconds=0.25)
    started = time.monotonic()
    result = run(service.submit_case(help_request()))
    took = time.monotonic() - started
    assert result.status == "queued"
    assert took < 0.6, f"the leader waited {took:.2f}s"
    fake.slow_post = 0.0
    deadline = time.monotonic() + 3
    while not fake.records and time.monotonic() < deadline:  # the slow POST arrives in the end
        time.sleep(0.02)
    assert deliver_due(service.outbox, ServiceNowClient(settings), 0.05).delivered == 1
    assert len(fake.records) == 1  # found by correlation id, not posted twice


def test_the_leader_is_answered_within_a_few_seconds_by_default(fake, tmp_path):
    settings = test_settings(fake.url, tmp_path, SERVICENOW_MAX_RETRIES="10", SERVICENOW_BACKOFF_SECONDS="0.4")
    for _ in range(40):
        fake.then("*", 503)
    virtual = VirtualTime()
    service = CaseService(settings, clock=virtual.clock, sleep=virtual.sleep)
    started = virtual.clock()
    result = run(service.submit_case(help_request()))
    assert result.status == "queued"
    assert virtual.clock() - started <= case_service.INTERACTIVE_BUDGET_SECONDS <= 6


def test_retries_with_backoff_never_exceed_the_deadline(fake, tmp_path):
    settings = test_settings(fake.url, tmp_path, SERVICENOW_MAX_RETRIES="10", SERVICENOW_BACKOFF_SECONDS="0.3")
    for _ in range(40):
        fake.then("*", 429, headers={"Retry-After": "1"})
    virtual = VirtualTime()
    client = ServiceNowClient(settings, budget_seconds=3.0, sleep=virtual.sleep, clock=virtual.clock)
    started = virtual.clock()
    with pytest.raises(sn.ServiceNowUnavailable):
        client.list_cases_for_leader(METTE)
    assert virtual.clock() - started <= 3.0
    assert len(virtual.sleeps) >= 1


# == 4. strict patterns =============================================================================
ARABIC_INDIC = "AFH\u0660\u0660\u0660\u0661\u0662\u0663\u0664"
FULLWIDTH = "AFH\uff10\uff10\uff10\uff11\uff12\uff13\uff14"


@pytest.mark.parametrize("value", ["AFH0001234\n", ARABIC_INDIC, FULLWIDTH, "AFH0001234\n\n", "AFH00012345"])
def test_only_a_whole_ascii_case_number_is_a_case_number(value):
    assert sn.NUMBER_PATTERN.match(value) is None
    assert not sn.is_case_number(value)


def test_a_leader_cannot_look_up_a_number_in_other_digits(fake, tmp_path):
    client = ServiceNowClient(test_settings(fake.url, tmp_path))
    for value in (ARABIC_INDIC, FULLWIDTH):
        with pytest.raises(InvalidQueryValue):
            sn.normalise_number(value)
        assert client.get_case_for_leader(value, METTE) is None
    assert fake.calls == []


def test_correlation_ids_and_query_values_are_matched_whole():
    for value in ("a" * 32 + "\n", "\u0661" * 32):
        with pytest.raises(InvalidQueryValue):
            sn.validate_correlation_id(value)
    with pytest.raises(InvalidQueryValue):
        sn.EncodedQuery().eq("u_requester_email", METTE + "\n")
    with pytest.raises(InvalidQueryValue):
        sn.EncodedQuery().eq("state\n", "1")


@pytest.mark.parametrize("number", ["AFH0001234\n", ARABIC_INDIC, "AFH0001234 Ring 12 34 56 78"])
def test_a_strange_number_from_servicenow_never_reaches_the_leader(fake, tmp_path, number, backend):
    fake.number_of = lambda n: number
    service = CaseService(test_settings(fake.url, tmp_path, **backend.env))
    result = run(service.submit_case(help_request()))
    assert result.status == "queued" and result.number is None
    assert result.reference == case_service.correlation_display(CID)
    assert deliver_due(service.outbox, service.client, 0.0).delivered == 0
    assert fake.posts == 1  # ServiceNow has the case; it is not posted again
    assert run(service.list_open_cases(METTE)) == []
