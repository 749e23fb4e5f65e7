"""Case status: own open cases, newest first, max five; a number only if it is the leader's."""
import asyncio
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import case_status as cs, requests_form as rf
from af_core import case_service as real
from af_core.profile import load_profile
from tests.domain_helpers import DOMAIN, all_shown

ROOT = Path(__file__).resolve().parent.parent
PROFILE = load_profile(ROOT / "profiles" / "buf")
METTE = "mette.hansen@buf.kk.dk"


def _case(number, updated="2026-11-30 08:00:00", state="2", label="Under behandling", short="Møde (Teams): løn – Valby Skole"):
    return real.CaseSummary(number, short, state, label, updated, "meeting", "loen")


class FakeCases:
    """Stands in for af_core.case_service: Mette owns AFH0001001..; Jonas owns AFH0009999."""

    CaseServiceUnavailable = real.CaseServiceUnavailable

    def __init__(self, cases: Optional[Dict[str, List[real.CaseSummary]]] = None, down: bool = False):
        self.cases = cases if cases is not None else {
            METTE: [_case(f"AFH000100{i}", updated=f"2026-11-{30 - i:02d} 08:00:00") for i in range(7, 0, -1)],
            "jonas.nielsen@buf.kk.dk": [_case("AFH0009999")],
        }
        self.down = down
        self.calls: List[tuple] = []

    async def list_open_cases(self, email, limit=5):
        self.calls.append(("list", email, limit))
        if self.down:
            raise real.CaseServiceUnavailable("nede")
        return self.cases.get(email, [])[:limit]

    async def get_case(self, number, email):
        self.calls.append(("get", number, email))
        if self.down:
            raise real.CaseServiceUnavailable("nede")
        return next((c for c in self.cases.get(email, []) if c.number == number), None)


@pytest.fixture(autouse=True)
def profile(monkeypatch):
    monkeypatch.setattr(cs, "get_profile", lambda: PROFILE)


def _run_status(text, fake, slots=None, extra_user_events=()):
    events = [{"event": "user", "text": text, "parse_data": {"intent": {"name": "case_status"}, "entities": []}}]
    events += list(extra_user_events)
    latest = events[-1]["parse_data"]
    slots = {"leader_email": METTE, **(slots or {})}
    tracker = Tracker("leder-1", slots, latest, events, False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    asyncio.run(cs.ActionCaseStatus().run(dispatcher, tracker, DOMAIN))
    return dispatcher.messages


def _status(text, fake, slots=None, extra_user_events=()):
    """What the leader reads (the responses filled in as Rasa fills them)."""
    return all_shown(_run_status(text, fake, slots, extra_user_events))


def test_lists_own_open_cases_newest_first_at_most_five_in_danish(monkeypatch):
    fake = FakeCases()
    monkeypatch.setattr(cs, "_case_service", lambda: fake)
    text = _status("hvad sker der med min sag?", fake)
    assert fake.calls == [("list", METTE, 5)]
    assert "Dine 5 nyeste åbne sager (nyeste først):" in text
    assert [m["response"] for m in _run_status("mine sager", fake)] == ["utter_case_list"]
    numbers = [line.split()[1] for line in text.splitlines() if line.startswith("• ")]
    assert numbers == ["AFH0001007", "AFH0001006", "AFH0001005", "AFH0001004", "AFH0001003"]
    assert "Status: Under behandling." in text
    # ServiceNow's UTC time shown as local Danish time
    assert "Senest opdateret mandag den 23. november kl. 9.00" in text


def test_no_open_cases_offers_to_order_help(monkeypatch):
    fake = FakeCases(cases={})
    monkeypatch.setattr(cs, "_case_service", lambda: fake)
    messages = _run_status("mine sager", fake)
    assert [m["response"] for m in messages] == ["utter_no_open_cases"]
    assert "ingen åbne sager" in _status("mine sager", fake)


def test_own_case_number_shows_that_case(monkeypatch):
    fake = FakeCases()
    monkeypatch.setattr(cs, "_case_service", lambda: fake)
    text = _status("hvad er status på afh0001003?", fake)
    assert fake.calls == [("get", "AFH0001003", METTE)]
    assert "AFH0001003" in text and "Under behandling" in text


def test_short_number_is_read_as_a_case_number(monkeypatch):
    fake = FakeCases()
    monkeypatch.setattr(cs, "_case_service", lambda: fake)
    assert "AFH0001002" in _status("status på sag 1002", fake)


@pytest.mark.parametrize(
    "question",
    [
        "status på AFH0009999",  # Jonas' case
        "status på AFH0004242",  # does not exist
        "status på AFH12",  # malformed
        "status på AFH0001001^ORrequester_email!=x",  # injection attempt
        "status på AFH0001001^NQnumberISNOTEMPTY",
        "status på javascript:gs.getUserName()",
        "hvad med sag 12345678901",
    ],
)
def test_foreign_unknown_malformed_and_injected_numbers_get_the_same_answer(monkeypatch, question):
    fake = FakeCases()
    monkeypatch.setattr(cs, "_case_service", lambda: fake)
    reference = _status("status på AFH0004242", FakeCases())
    text = _status(question, fake)
    assert text == reference
    assert [m["response"] for m in _run_status(question, FakeCases())] == ["utter_case_not_found"]
    assert "AFH0009999" not in text and "AFH0001001 –" not in text
    # nothing with query syntax ever reaches the facade
    for call in fake.calls:
        assert call[0] == "get" and cs.CASE_NUMBER.match(call[1])


def test_servicenow_down_gives_a_clear_danish_message_with_the_phone(monkeypatch):
    fake = FakeCases(down=True)
    monkeypatch.setattr(cs, "_case_service", lambda: fake)
    for question in ("mine sager", "status på AFH0001001"):
        text = _status(question, fake)
        assert [m["response"] for m in _run_status(question, fake)] == ["utter_case_status_unavailable"]
        assert "sagssystemet ikke svarer" in text
        assert PROFILE.phone in text


def test_without_verified_identity_the_typed_contact_email_is_used(monkeypatch):
    from af_core.settings import get_settings

    monkeypatch.setenv("AF_MODE", "development")  # only where no login is required
    get_settings.cache_clear()
    fake = FakeCases()
    monkeypatch.setattr(cs, "_case_service", lambda: fake)
    email_answer = {"event": "user", "text": "mette.hansen@buf.kk.dk",
                    "parse_data": {"intent": {"name": "inform"}, "entities": []}}
    text = _status("status på AFH0001004", fake, slots={"leader_email": None, "contact_email": METTE},
                   extra_user_events=[email_answer])
    # the number came in the question, before the e-mail answer
    assert fake.calls == [("get", "AFH0001004", METTE)]
    assert "AFH0001004" in text


def test_verified_email_wins_over_a_typed_one(monkeypatch):
    fake = FakeCases()
    monkeypatch.setattr(cs, "_case_service", lambda: fake)
    _status("mine sager", fake, slots={"contact_email": "jonas.nielsen@buf.kk.dk"})
    assert fake.calls == [("list", METTE, 5)]


def test_no_email_at_all_says_so_without_calling_servicenow(monkeypatch):
    fake = FakeCases()
    monkeypatch.setattr(cs, "_case_service", lambda: fake)
    text = _status("mine sager", fake, slots={"leader_email": None})
    assert fake.calls == []
    assert PROFILE.phone in text


def test_status_form_asks_for_email_only_without_any_identity(monkeypatch):
    from af_core.settings import get_settings

    monkeypatch.setenv("AF_MODE", "development")  # only where no login is required
    get_settings.cache_clear()
    form = cs.ValidateCaseStatusForm()
    dispatcher = CollectingDispatcher()

    def required(slots):
        tracker = Tracker("x", slots, {}, [], False, None, {}, "action_listen")
        return asyncio.run(form.required_slots(["contact_email"], dispatcher, tracker, {}))

    assert required({"leader_email": METTE}) == []
    assert required({"leader_email": None}) == ["contact_email"]


def test_case_number_candidates():
    assert cs.case_number_candidate("hvad med AFH 0001001?") == "AFH0001001"
    assert cs.case_number_candidate("min mail er a@b.dk") is None
    assert cs.case_number_candidate("hvad sker der med min sag") is None
    assert cs.case_number_candidate("AF-7K3Q9") == "AF-7K3Q9"
    assert not cs.CASE_NUMBER.match(cs.case_number_candidate("AFH0001001^ORx=y"))


def test_where_a_login_is_required_a_typed_email_looks_up_nothing(monkeypatch, production_settings):
    """Security review (issue 14): with the identity lost, a typed e-mail must not pass
    for one - neither to look up cases nor to be asked for."""
    fake = FakeCases()
    monkeypatch.setattr(cs, "_case_service", lambda: fake)
    text = _status("mine sager", fake, slots={"leader_email": None, "contact_email": "victim@buf.kk.dk"})
    assert fake.calls == []
    assert "kan ikke se, hvem du er" in text
    tracker = Tracker("leder-1", {"leader_email": None}, {}, [], False, None, {}, "action_listen")
    slots = asyncio.run(cs.ValidateCaseStatusForm().required_slots([], CollectingDispatcher(), tracker, {}))
    assert slots == []


def test_one_open_case_and_a_case_without_title_or_time(monkeypatch):
    fake = FakeCases(cases={METTE: [_case("AFH0001001", updated="", short="")]})
    monkeypatch.setattr(cs, "_case_service", lambda: fake)
    assert [m["response"] for m in _run_status("mine sager", fake)] == ["utter_case_list_one"]
    assert _status("mine sager", fake) == (
        "Du har én åben sag:\n• AFH0001001 – uden titel\n  Status: Under behandling. Senest opdateret ukendt.\n"
        "Skriv sagsnummeret, hvis du vil se én bestemt sag.")
