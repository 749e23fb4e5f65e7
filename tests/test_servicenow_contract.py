"""Contract tests: the ServiceNow client against the local Table API emulator.

The emulator runs in a thread on a free loopback port with a temporary SQLite
file. Each test starts from an empty table and no faults.
"""
from __future__ import annotations

import time
import uuid

import pytest
import requests

from af_core import servicenow_client as sn
from af_core.servicenow_client import (
    InvalidQueryValue,
    ServiceNowAuthError,
    ServiceNowClient,
    ServiceNowError,
    ServiceNowUnavailable,
)
from af_core.settings import DEV_SERVICENOW_CLIENT_ID, DEV_SERVICENOW_CLIENT_SECRET
from servicenow_emulator.testing import TABLE, Admin, start_emulator, test_settings

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
    admin.config(enforce_unique_correlation=True, access_token_seconds=1800)
    yield admin
    admin.reset_faults()


@pytest.fixture
def settings(emulator, tmp_path):
    return test_settings(emulator.url, tmp_path)


@pytest.fixture
def client(settings, admin):
    client = ServiceNowClient(settings)
    yield client
    client.close()


def record(email: str = METTE, **extra) -> dict:
    values = {
        "short_description": "Hjælp: løn – Valby Skole",
        "description": "Lønnen for en vikar mangler",
        "u_request_type": "help",
        "u_topic": "loen",
        "urgency": "2",
        "u_requester_email": email,
        "opened_by": email,
        "u_institution": "Valby Skole",
        "assignment_group": "af-syd-loen",
        "contact_type": "chat",
        "correlation_id": uuid.uuid4().hex,
        "correlation_display": "AF-TEST1",
    }
    values.update(extra)
    return values


def raw_get(emulator, path: str = "", **params):
    from af_core.settings import DEV_SERVICENOW_PASSWORD, DEV_SERVICENOW_USERNAME

    return requests.get(
        f"{emulator.url}/api/now/table/{TABLE}{path}", params=params,
        auth=(DEV_SERVICENOW_USERNAME, DEV_SERVICENOW_PASSWORD), timeout=5,
    )


# -- create / read / list ------------------------------------------------------
def test_create_returns_number_sys_id_and_stored_fields(client, admin):
    created = client.create_record(record(comments="Oprettet af AF-assistenten"))
    assert sn.NUMBER_PATTERN.match(created["number"])
    assert sn.SYS_ID_PATTERN.match(created["sys_id"])
    assert created["state"] == "1"
    assert created["contact_type"] == "chat"
    assert "AF-assistenten" in created["comments"]
    assert time.strptime(created["sys_created_on"], "%Y-%m-%d %H:%M:%S")
    stored = admin.cases()
    assert [c["number"] for c in stored] == [created["number"]]
    assert stored[0]["u_requester_email"] == METTE
    second = client.create_record(record())
    assert int(second["number"][3:]) == int(created["number"][3:]) + 1


def test_read_one_and_leader_lookup(client):
    created = client.create_record(record())
    assert client.get_record(created["sys_id"])["number"] == created["number"]
    mine = client.get_case_for_leader(created["number"].lower(), METTE.upper())
    assert mine is not None and mine["number"] == created["number"]
    assert client.get_case_for_leader(created["number"], JONAS) is None
    assert client.get_case_for_leader("AFH9999999", METTE) is None
    assert client.get_record(uuid.uuid4().hex) is None


def test_list_for_leader_newest_first_only_own_and_limited(client):
    mine = [client.create_record(record())["number"] for _ in range(3)]
    client.create_record(record(JONAS))
    closed = client.create_record(record())
    client.update_record(closed["sys_id"], {"state": "7"})
    listed = client.list_cases_for_leader(METTE, limit=5)
    assert [c["number"] for c in listed] == list(reversed(mine))
    assert all(c["u_requester_email"] == METTE for c in listed)
    assert "description" not in listed[0]  # only the summary fields are fetched
    assert len(client.list_cases_for_leader(METTE, limit=2)) == 2
    assert [c["number"] for c in client.list_cases_for_leader(METTE, limit=5, open_only=False)][0] == closed["number"]


def test_list_paging_headers(client, emulator):
    for _ in range(3):
        client.create_record(record())
    response = raw_get(emulator, sysparm_query=f"u_requester_email={METTE}", sysparm_limit="2",
                       sysparm_offset="2", sysparm_fields="number")
    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "3"
    assert 'rel="first"' in response.headers["Link"] and 'rel="prev"' in response.headers["Link"]
    assert len(response.json()["result"]) == 1
    assert set(response.json()["result"][0]) == {"number"}


# -- auth ---------------------------------------------------------------------
def test_wrong_password_is_401_with_servicenow_envelope(emulator, tmp_path, admin):
    bad = ServiceNowClient(test_settings(emulator.url, tmp_path, SERVICENOW_PASSWORD="forkert-kode"))
    with pytest.raises(ServiceNowAuthError) as err:
        bad.list_cases_for_leader(METTE)
    assert err.value.status == 401
    response = requests.get(f"{emulator.url}/api/now/table/{TABLE}", timeout=5)
    assert response.status_code == 401
    assert response.json()["status"] == "failure"
    assert response.json()["error"]["message"] == "User Not Authenticated"
    assert admin.cases() == []


def test_oauth_token_is_cached_and_refreshed_before_expiry(emulator, tmp_path, admin):
    admin.config(access_token_seconds=3)
    oauth = ServiceNowClient(test_settings(
        emulator.url, tmp_path,
        SERVICENOW_CLIENT_ID=DEV_SERVICENOW_CLIENT_ID, SERVICENOW_CLIENT_SECRET=DEV_SERVICENOW_CLIENT_SECRET,
    ))
    assert oauth.settings.servicenow_auth == "oauth"
    before = admin.state()["stats"]["token_requests"]
    created = oauth.create_record(record())
    oauth.list_cases_for_leader(METTE)
    assert admin.state()["stats"]["token_requests"] == before + 1  # cached
    time.sleep(3.2)  # the access token has expired at the emulator
    statuses_before = admin.state()["stats"]["statuses"].get("401", 0)
    assert oauth.get_case_for_leader(created["number"], METTE) is not None
    state = admin.state()["stats"]
    assert state["token_requests"] == before + 2  # refreshed ...
    assert state["statuses"].get("401", 0) == statuses_before  # ... before ServiceNow had to refuse it


def test_oauth_token_endpoint_wants_form_encoding_and_valid_client(emulator, tmp_path):
    response = requests.post(f"{emulator.url}/oauth_token.do", json={
        "grant_type": "client_credentials", "client_id": DEV_SERVICENOW_CLIENT_ID,
        "client_secret": DEV_SERVICENOW_CLIENT_SECRET}, timeout=5)
    assert response.status_code == 400
    bad = ServiceNowClient(test_settings(
        emulator.url, tmp_path, SERVICENOW_CLIENT_ID=DEV_SERVICENOW_CLIENT_ID,
        SERVICENOW_CLIENT_SECRET="forkert-hemmelighed"))
    with pytest.raises(ServiceNowAuthError):
        bad.list_cases_for_leader(METTE)


# -- ACL-style 404 --------------------------------------------------------------
def test_acl_hidden_record_looks_exactly_like_a_missing_one(client, admin, emulator):
    created = client.create_record(record())
    admin.hide(created["sys_id"])
    assert client.get_record(created["sys_id"]) is None
    assert client.get_case_for_leader(created["number"], METTE) is None
    hidden = raw_get(emulator, f"/{created['sys_id']}")
    missing = raw_get(emulator, f"/{uuid.uuid4().hex}")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    assert hidden.json()["error"]["detail"] == "Record doesn't exist or ACL restricts the record retrieval"


# -- 429, 5xx, timeouts -------------------------------------------------------------
def test_429_honours_retry_after(client, admin):
    admin.faults(next_statuses=[429], retry_after=1)
    started = time.monotonic()
    created = client.create_record(record())
    assert time.monotonic() - started >= 1.0
    assert [c["number"] for c in admin.cases()] == [created["number"]]


def test_gateway_errors_are_retried(client, admin):
    admin.faults(next_statuses=[503, 502])
    assert len(client.list_cases_for_leader(METTE)) == 0
    admin.faults(next_statuses=[504, 503])
    created = client.create_record(record())
    assert len(admin.cases()) == 1 and admin.cases()[0]["number"] == created["number"]


def test_persistent_5xx_gives_up_without_creating(client, admin, settings):
    admin.faults(next_statuses=[503] * (settings.servicenow_max_retries + 1))
    with pytest.raises(ServiceNowUnavailable):
        client.create_record(record())
    assert admin.cases() == []
    admin.faults(next_statuses=[500])
    with pytest.raises(ServiceNowError) as err:
        client.list_cases_for_leader(METTE)
    assert err.value.status == 500 and not isinstance(err.value, ServiceNowUnavailable)


def test_gateway_error_after_commit_does_not_duplicate(client, admin):
    admin.config(enforce_unique_correlation=False)  # prove the client's own lookup, not the index
    admin.faults(next_statuses=[504], next_phase="after")  # processed, but the answer is lost
    values = record()
    created = client.create_record(values)
    cases = admin.cases()
    assert len(cases) == 1
    assert cases[0]["number"] == created["number"]
    assert cases[0]["correlation_id"] == values["correlation_id"]


def test_timeout_after_commit_does_not_duplicate(emulator, tmp_path, admin):
    admin.config(enforce_unique_correlation=False)
    admin.faults(latency_ms=1200, latency_phase="after", methods=["POST"])
    quick = ServiceNowClient(test_settings(emulator.url, tmp_path, SERVICENOW_TIMEOUT_SECONDS="0.4"))
    values = record()
    created = quick.create_record(values)
    cases = admin.cases()
    assert len(cases) == 1 and cases[0]["number"] == created["number"]


def test_reads_time_out_within_bounds(emulator, tmp_path, admin):
    admin.faults(latency_ms=1500, methods=["GET"])
    quick = ServiceNowClient(test_settings(emulator.url, tmp_path, SERVICENOW_TIMEOUT_SECONDS="0.3",
                                           SERVICENOW_MAX_RETRIES="1"))
    started = time.monotonic()
    with pytest.raises(ServiceNowUnavailable):
        quick.list_cases_for_leader(METTE)
    assert time.monotonic() - started < 1.5


def test_unique_correlation_conflict_returns_the_existing_case(client, admin):
    values = record()
    first = client.create_record(values)
    again = client.create_record(dict(values))  # e.g. a second process delivering the same request
    assert again["number"] == first["number"]
    assert len(admin.cases()) == 1


def test_connection_refused_is_unavailable(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = ServiceNowClient(test_settings(f"http://127.0.0.1:{port}", tmp_path))
    with pytest.raises(ServiceNowUnavailable):
        dead.list_cases_for_leader(METTE)
    with pytest.raises(ServiceNowUnavailable):
        dead.create_record(record())


# -- injection --------------------------------------------------------------------
INJECTED_EMAILS = [
    f"{METTE}^ORu_requester_email={JONAS}",
    f"{METTE}^NQu_requester_email={JONAS}",
    f"{METTE}^NQnumberLIKEAFH",
    "javascript:gs.getUserName()",
    f"javascript:'{JONAS}'",
    f"{METTE},{JONAS}",
    f"x@y.dk^ORu_requester_emailISNOTEMPTY",
    " ",
]
INJECTED_NUMBERS = [
    "AFH0001001^ORnumberISNOTEMPTY",
    "AFH0001001^NQnumberLIKEAFH",
    "javascript:gs.getUserID()",
    "AFH000100",
    "AFH0001001=",
]


def test_the_emulator_would_leak_if_injections_reached_the_query(client, emulator):
    # Proves the injection tests below are meaningful: ^OR/^NQ work in the emulator.
    client.create_record(record(JONAS))
    leaked = raw_get(emulator, sysparm_query=f"u_requester_email={METTE}^ORu_requester_email={JONAS}")
    assert [r["u_requester_email"] for r in leaked.json()["result"]] == [JONAS]
    leaked = raw_get(emulator, sysparm_query=f"u_requester_email={METTE}^NQnumberLIKEAFH")
    assert len(leaked.json()["result"]) == 1


@pytest.mark.parametrize("email", INJECTED_EMAILS)
def test_injected_email_cannot_reach_other_leaders_cases(client, email):
    foreign = client.create_record(record(JONAS))
    with pytest.raises(InvalidQueryValue):
        client.list_cases_for_leader(email)
    assert client.get_case_for_leader(foreign["number"], email) is None


@pytest.mark.parametrize("number", INJECTED_NUMBERS)
def test_injected_number_cannot_reach_other_leaders_cases(client, number):
    client.create_record(record(JONAS))
    assert client.get_case_for_leader(number, METTE) is None
    with pytest.raises(InvalidQueryValue):
        sn.normalise_number(number)


def test_dropped_condition_does_not_leak(client, monkeypatch):
    # If the instance named the e-mail field differently, ServiceNow would silently
    # drop the condition and return everybody's cases; the client filters again.
    client.create_record(record(JONAS))
    monkeypatch.setattr(sn, "F_REQUESTER_EMAIL", "u_requester_mail")
    assert client.list_cases_for_leader(METTE) == []


def test_query_builder_refuses_free_text():
    with pytest.raises(InvalidQueryValue):
        sn.EncodedQuery().eq("u_requester_email", "a@b.dk^ORstate=1")
    with pytest.raises(InvalidQueryValue):
        sn.EncodedQuery().eq("state^OR", "1")
    assert str(sn.EncodedQuery().eq("state", "1").order_by_desc("number")) == "state=1^ORDERBYDESCnumber"
