"""End to end: a leader books a meeting through the REST channel; the case lands in the emulator.

Uses the ``stack`` fixture (tests/conftest.py): emulator, action server, outbox
worker, Rasa server on free loopback ports, development mode.
"""
from datetime import datetime
from zoneinfo import ZoneInfo

from af_core import danish_time
from af_core.af_calendar import closing_reason
from af_core.profile import load_profile
from servicenow_emulator.testing import Admin


def _texts(messages):
    return "\n".join(m.get("text", "") for m in messages)


def _history(stack, sender, last=25):
    """The tail of the conversation, for assertion messages."""
    events = stack.tracker(sender)["events"][-last:]
    return "\n".join(
        f"{e.get('event')}: {e.get('name') or e.get('text') or ''} "
        f"{(e.get('parse_data') or {}).get('intent', {}).get('name', '')} {e.get('value', '') if e.get('event') == 'slot' else ''}"
        for e in events
    )


def _next_slot_text(stack):
    """A time inside opening hours, written the way the assistant itself writes it."""
    profile = load_profile(stack.settings.profile_dir)
    now = datetime.now(ZoneInfo(profile.timezone))
    slot = danish_time.suggest_times(now, profile.opening_hours, profile.timezone, count=2,
                                     closed=closing_reason(profile))[1]
    return slot, danish_time.render_datetime(slot, now)


def test_meeting_request_creates_a_case_with_the_right_fields_and_status_shows_only_own_cases(stack):
    sender = stack.new_sender("e2e-meeting")
    token = stack.token_for()  # Mette Hansen, Valby Skole -> AF Syd

    # Everything in the first message: straight to the summary; the time is a wish, not a question.
    reply = _texts(stack.send(sender, "Jeg vil gerne have et Teams-møde om løn, det haster", token=token))
    assert "Her er din bestilling" in reply and "• Mødeform: Teams" in reply
    assert "intet ønske – AF foreslår et tidspunkt" in reply

    # The leader adds a time wish from the summary, with one of the suggestions ...
    reply = _texts(stack.send(sender, '/inform{"correction_field":"preferred_time"}', token=token))
    assert "Har du et ønske til tidspunktet?" in reply
    slot, slot_text = _next_slot_text(stack)
    reply = _texts(stack.send(sender, slot_text, token=token))
    assert "Her er din bestilling" in reply and slot_text in reply

    # ... and a few words, which become the description.
    reply = _texts(stack.send(sender, "En pædagog mangler sit tillæg for weekendarbejde i oktober", token=token))
    assert "det har jeg skrevet i beskrivelsen" in reply and "weekendarbejde" in reply

    reply = _texts(stack.send(sender, "ja", token=token))
    assert "Din sag er oprettet med nummeret AFH" in reply, reply
    assert "AF Syd" in reply and "i dag" in reply
    number = reply.split("nummeret ")[1].split(".")[0]

    cases = [c for c in Admin(stack.emulator_url).cases() if c["number"] == number]
    assert len(cases) == 1
    case = cases[0]
    assert case["u_request_type"] == "meeting"
    assert case["u_topic"] == "loen"
    assert case["urgency"] == "1"
    assert case["u_meeting_channel"] == "teams"
    assert datetime.fromisoformat(case["u_preferred_time"]) == slot
    assert case["u_requester_email"] == "mette.hansen@buf.kk.dk"
    assert case["u_institution"] == "Valby Skole"
    assert case["assignment_group"] == "af-syd-loen"
    assert case["contact_type"] == "chat"
    assert "weekendarbejde" in case["description"]
    assert len(case["correlation_id"]) == 32

    # A second "ja" after the case exists creates nothing new.
    reply = _texts(stack.send(sender, "ja", token=token))
    assert "allerede sendt" in reply, _history(stack, sender)
    assert len([c for c in Admin(stack.emulator_url).cases() if c["correlation_id"] == case["correlation_id"]]) == 1

    # Status: Mette sees her case ...
    reply = _texts(stack.send(sender, f"hvad er status på {number}", token=token))
    assert number in reply and "Status:" in reply, _history(stack, sender)
    reply = _texts(stack.send(sender, "hvad sker der med mine sager", token=token))
    assert number in reply

    # ... another leader asking for the same number gets the same answer as for a made-up one.
    other = stack.new_sender("e2e-other")
    jonas = stack.token_for(name="Jonas Nielsen", email="jonas.nielsen@buf.kk.dk",
                            institution="Børnehuset Mælkebøtten")
    foreign = _texts(stack.send(other, f"status på {number}", token=jonas))
    unknown = _texts(stack.send(other, "status på AFH9999999", token=jonas))
    injected = _texts(stack.send(other, f"status på {number}^ORu_requester_email!=x", token=jonas))
    assert number not in foreign
    assert foreign == unknown == injected
    assert "Jeg kan ikke finde en sag med det nummer" in foreign


def test_a_help_request_the_leader_cancels_creates_nothing(stack):
    """(Without a login the e-mail is asked for instead: tests/test_request_dialogue.py; the stack
    requires a login, as production does.)"""
    admin = Admin(stack.emulator_url)
    before = len(admin.cases())
    sender = stack.new_sender("e2e-cancel")
    token = stack.token_for()
    reply = _texts(stack.send(sender, "jeg har brug for hjælp til budgettet, det kan godt vente", token=token))
    assert "e-mailadresse" not in reply  # the login says who the leader is
    stack.send(sender, "Vi skal have lagt næste års budget for SFO'en", token=token)
    reply = _texts(stack.send(sender, "glem det", token=token))
    assert "ikke oprettet noget" in reply
    assert len(admin.cases()) == before
