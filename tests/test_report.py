"""`make report`: every figure, from a tracker store with known conversations.

The store is written by Rasa's own SQLTrackerStore (tests/tracker_builder.py),
so the rows are exactly what the running assistant writes.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from zoneinfo import ZoneInfo

import pytest

from tests.pg import pg, pg_database  # noqa: F401 - fixtures
from tests.tracker_builder import Conv, write_store
from trainer import conversations as conv_mod, report

ZONE = ZoneInfo("Europe/Copenhagen")
FIRST, LAST = dt.date(2026, 11, 1), dt.date(2026, 11, 3)


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> float:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=ZONE).timestamp()


def known_conversations():
    a = Conv("leder-a", at(2, 9)).form_shown("blanket til vikar", "vikar").rated(5, "super hurtigt")
    # Same leader, a new session two hours later: counts as a second conversation.
    a.new_session(2 * 3600).faq_answered("hvad siger ferieloven", "ferieloven") \
        .form_shown("vikar igen", "vikar").form_shown("ny fast pædagog", "ansaettelse")
    b = Conv("leder-b", at(2, 10)).fallback("kan jeg få 0102031234 slettet", "find_form", 0.31) \
        .fallback("Kan jeg  få 0102031234 slettet?", "find_form", 0.28) \
        .user("jeg vil tale med en person", "human_handoff").action("action_human_handoff").pause()
    c = Conv("leder-c", at(3, 23, 30)).case_created("meeting", "loen", "akut", "AFH0001001") \
        .rated(2, "for mange spørgsmål")
    d = Conv("leder-d", at(3, 12)).case_created("help", "personale", "snart", "AFH0001002") \
        .user("kan jeg ikke bare tale med en", "human_handoff").action("action_human_handoff") \
        .rated(4).rated(3)  # corrected: counts once, as 3
    e = Conv("leder-e", at(1, 8)).user("hej", "greet").action("utter_greet").listen() \
        .fallback("hvornår er der frokost", "out_of_scope", 0.2)
    outside_after = Conv("leder-f", at(4, 0, 30)).form_shown("vikar", "vikar").rated(1)
    outside_before = Conv("leder-g", at(31, 23, 50, month=10)).fallback("uden for perioden", "greet", 0.1)
    silent = Conv("leder-h", at(2, 14))  # opened the chat, never wrote
    return [a, b, c, d, e, outside_after, outside_before, silent]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_store(tmp_path_factory.mktemp("report") / "tracker.db", known_conversations())


@pytest.fixture(scope="module")
def figures(store):
    start, end = report.period_bounds(FIRST, LAST, ZONE)
    events = conv_mod.load_events(store, since=start - 86400, until=end + 86400)
    return report.compute(conv_mod.conversations(events), FIRST, LAST, ZONE)


def test_every_figure(figures):
    assert figures["period"] == {"from": "2026-11-01", "to": "2026-11-03", "timezone": "Europe/Copenhagen"}
    # a (2 sessions), b, c, d, e; not f/g (outside the period, by local time), not h (never wrote)
    assert figures["conversations"] == {
        "total": 6,
        "per_day": {"2026-11-01": 1, "2026-11-02": 3, "2026-11-03": 2},
    }
    # a's two sessions and c got something without a person; d got a case but asked for a person
    assert figures["resolved_without_person"] == {"count": 3, "share": 0.5}
    # b and d asked for a person; only in b did a supporter take over (pause)
    assert figures["handoffs"] == {"count": 2, "share": 0.3333, "taken_over": 1}
    assert figures["cases"] == {
        "total": 2,
        "by_type": {"help": 1, "meeting": 1},
        "by_topic": {"loen": 1, "personale": 1},
        "by_urgency": {"akut": 1, "snart": 1},
    }
    # typed messages: a 2+3, b 3, c 3, d 5, e 2 = 18; not understood: b twice, e once
    assert figures["fallback"] == {"messages": 18, "fallbacks": 3, "rate": 0.1667}
    assert figures["ratings"] == {
        "count": 3,
        "average": 3.33,
        "distribution": {"1": 0, "2": 1, "3": 1, "4": 0, "5": 1},
        "per_day": {"2026-11-02": {"count": 1, "average": 5.0}, "2026-11-03": {"count": 2, "average": 2.5}},
        "comments": [
            {"day": "2026-11-02", "rating": 5, "comment": "super hurtigt"},
            {"day": "2026-11-03", "rating": 2, "comment": "for mange spørgsmål"},
        ],
    }
    # forms count once per conversation: vikar in both of a's sessions
    assert figures["top_forms"] == [{"id": "vikar", "count": 2}, {"id": "ansaettelse", "count": 1}]
    assert figures["top_faq"] == [{"id": "ferieloven", "count": 1}]
    assert figures["top_unrecognised"] == [
        {"text": "kan jeg få [CPR-nummer fjernet] slettet", "count": 2},
        {"text": "hvornår er der frokost", "count": 1},
    ]


def test_no_cpr_number_anywhere(figures):
    assert "0102031234" not in json.dumps(figures)


def test_command_writes_json_and_self_contained_html(store, tmp_path, capsys):
    code = report.main(["--from", "2026-11-01", "--to", "2026-11-03", "--db-url", store, "--out-dir", str(tmp_path)])
    assert code == 0
    data = json.loads((tmp_path / "rapport-2026-11-01-2026-11-03.json").read_text(encoding="utf-8"))
    assert data["conversations"]["total"] == 6 and data["ratings"]["average"] == 3.33
    page = (tmp_path / "rapport-2026-11-01-2026-11-03.html").read_text(encoding="utf-8")
    # the charts: conversations per day, rating over time, distribution, cases x3, forms, FAQ
    assert page.count("<svg") == 8
    for title in ("Samtaler pr. dag", "Gennemsnitlig bedømmelse pr. dag", "Sager efter emne", "Sager efter hastegrad",
                  "Sager efter type", "Mest brugte blanketter", "Mest brugte svar"):
        assert title in page
    assert page.count("<rect") >= 3 + 2 + 2 + 2 + 2 + 3  # day bars + case/forms bars
    assert "<polyline" in page  # the rating line (two days with ratings)
    # names from the profile, not ids; Danish number formats
    assert "løn" in page and "akut" in page and "3,33 af 5" in page and "50,0 %" in page
    assert "0102031234" not in page and "[CPR-nummer fjernet]" in page
    # self-contained: nothing fetched from elsewhere
    assert not re.search(r"<script|<link|<img|src=|@import|url\(", page)
    assert "rapport-2026-11-01-2026-11-03.html" in capsys.readouterr().out


def test_bad_dates_are_refused_in_danish(store, tmp_path, capsys):
    assert report.main(["--from", "1/11", "--to", "2026-11-03", "--db-url", store, "--out-dir", str(tmp_path)]) == 2
    assert "ÅÅÅÅ-MM-DD" in capsys.readouterr().err


def test_empty_period_gives_zeroes(store):
    events = conv_mod.load_events(store)
    figures = report.compute(conv_mod.conversations(events), dt.date(2026, 12, 1), dt.date(2026, 12, 2), ZONE)
    assert figures["conversations"]["total"] == 0
    assert figures["resolved_without_person"]["share"] == 0.0
    assert figures["ratings"]["average"] is None
    page = report.render_html(figures, report.catalogue_names(report.ROOT / "profiles" / "buf"))
    assert "Ingen i perioden" in page


def test_the_command_reads_the_outbox_in_postgres_in_the_scaled_deployment(store, tmp_path, monkeypatch, capsys, pg):
    """With AF_TRACKER_STORE=postgres the outbox is af_outbox in PostgreSQL (tests/pg.py): the report
    counts its dead letters there, not in a SQLite file."""
    from af_core import settings as settings_module
    from af_core.outbox import Outbox

    settings = settings_module.load_settings({"AF_MODE": "development", "AF_VAR_DIR": str(tmp_path / "var"), **pg.env})
    monkeypatch.setattr(settings_module, "get_settings", lambda: settings)
    outbox = Outbox.for_settings(settings)
    outbox.add({"description": "Mette Hansens vikar"}, correlation_id="d" * 32, correlation_display="AF-DEAD1",
               requester_email="mette@buf.kk.dk", request_type="help", topic="loen")
    outbox.mark_dead("d" * 32, "HTTP 400: Invalid choice value")
    code = report.main(["--from", "2026-11-01", "--to", "2026-11-03", "--db-url", store, "--out-dir", str(tmp_path)])
    assert code == 0
    data = json.loads((tmp_path / "rapport-2026-11-01-2026-11-03.json").read_text(encoding="utf-8"))
    assert data["outbox"]["dead"] == 1 and data["outbox"]["dead_letters"][0]["reference"] == "AF-DEAD1"
    assert "OBS: 1 henvendelse(r) er afvist af ServiceNow" in capsys.readouterr().out
    assert not settings.outbox_path.exists()


def test_the_report_is_written_when_the_outbox_in_postgres_cannot_be_opened(store, tmp_path, monkeypatch, capsys):
    """The conversation figures do not depend on the outbox: an outbox that cannot be opened (here:
    an image without the PostgreSQL driver) is a warning, not a failed report."""
    from af_core import db, settings as settings_module

    settings = settings_module.load_settings({"AF_MODE": "development", "AF_VAR_DIR": str(tmp_path / "var"),
                                              "AF_TRACKER_STORE": "postgres"})
    monkeypatch.setattr(settings_module, "get_settings", lambda: settings)

    def no_driver(*args, **kwargs):
        raise db.DatabaseError("psycopg2 er ikke installeret")

    monkeypatch.setattr(db.PostgresDatabase, "__init__", no_driver)
    code = report.main(["--from", "2026-11-01", "--to", "2026-11-03", "--db-url", store, "--out-dir", str(tmp_path)])
    assert code == 0 and (tmp_path / "rapport-2026-11-01-2026-11-03.html").exists()
    assert "ADVARSEL: kunne ikke læse udbakken (PostgreSQL, af_outbox): psycopg2" in capsys.readouterr().err
