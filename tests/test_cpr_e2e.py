"""CPR numbers sent through the running stack are stored nowhere.

Messages with CPR numbers in several forms go through the REST channel (also
as the free-text description of a real order that becomes a case), then the
tracker store, the log files, the outbox and the ServiceNow emulator's
database (every file under the stack's var/ and logs/) are searched: the
numbers are nowhere, and the mask is there instead.

Uses the session-scoped ``stack`` fixture from tests/conftest.py.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List

import pytest

from af_core.privacy import CPR_MASK

LEADER = {"name": "Cecilie Privat", "email": "cecilie.privat.cpr@buf.kk.dk", "institution": "Valby Skole"}

# (as written by the leader, the ten digits). All have real dates; several
# fail modulus 11 (numbers issued since 2007 may).
CPR_FORMS = [
    ("150384-1231", "1503841231"),
    ("2107901239", "2107901239"),
    ("030561 4327", "0305614327"),
    ("11 02 75 - 2223", "1102752223"),
    ("24.12.88-3314", "2412883314"),
    ("0101074321", "0101074321"),  # 2007, fails modulus 11
    ("290296-1112", "2902961112"),  # leap day
]
MESSAGES = [
    "Hej, min medarbejder har cpr {cpr} og er syg",
    "CPR: {cpr}",
    "{cpr}",
    "Jeg skal bruge en blanket til barsel for {cpr}",
    "hvor mange omsorgsdage har {cpr}?",
]


def _texts(messages: Iterable[Dict[str, Any]]) -> str:
    return " ".join(m.get("text") or "" for m in messages)


def _files(stack) -> List[Path]:
    roots = [stack.var_dir, stack.log_dir, Path(stack.var_dir).parent]
    seen, files = set(), []
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file() and path not in seen and not path.name.endswith(".tar.gz"):
                seen.add(path)
                files.append(path)
    return files


def _needles(written: str, digits: str) -> List[bytes]:
    forms = {written, digits, f"{digits[:6]}-{digits[6:]}", f"{digits[:6]} {digits[6:]}"}
    return [form.encode() for form in forms]


def _leaks(stack, numbers) -> List[str]:
    found = []
    for path in _files(stack):
        data = path.read_bytes()
        for written, digits in numbers:
            for needle in _needles(written, digits):
                if needle in data:
                    found.append(f"{path.name}: {needle.decode()}")
    return found


def _order_with_description(stack, sender: str, token: str, description: str) -> List[Dict[str, Any]]:
    """Walk the 'bestil hjælp' flow by its buttons; answer the free-text question with the description."""
    stack.send(sender, "/greet", token=token)  # the widget's opening: the main menu
    replies = stack.send(sender, "/request_help", token=token)
    described = False
    for _ in range(10):
        buttons = [b for m in replies for b in m.get("buttons", [])]
        payloads = [b.get("payload", "") for b in buttons]
        titles = " ".join(b.get("title", "") for b in buttons).lower()
        if described and "/affirm" in payloads and "send" in titles:
            return stack.send(sender, "/affirm", token=token)
        informs = [p for p in payloads if p.startswith("/inform")]
        if informs and not described:
            replies = stack.send(sender, informs[0], token=token)
            continue
        replies = stack.send(sender, description, token=token)
        described = True
    pytest.fail(f"Bestillingen nåede ikke frem til bekræftelsen: {_texts(replies)}")


def _db_bytes(db: Path) -> bytes:
    """A SQLite database and its -wal/-journal files (recent commits may still be in the WAL)."""
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


def _emulator_bytes(stack) -> bytes:
    return _db_bytes(stack.settings.emulator_db_path)


def test_cpr_numbers_in_chat_messages_are_nowhere_on_disk(stack):
    token = stack.token_for(**LEADER)
    sent = 0
    for index, (written, _digits) in enumerate(CPR_FORMS):
        sender = stack.new_sender(f"cpr{index}")
        for template in MESSAGES:
            replies = stack.send(sender, template.format(cpr=written), token=token)
            # (That every message gets an answer is tests/test_fuzz.py's job.)
            assert written not in _texts(replies)
            sent += 1
    time.sleep(1)  # let the log handlers flush

    tracker_db = stack.settings.tracker_db_path
    assert tracker_db.exists()
    assert CPR_MASK.encode() in _db_bytes(tracker_db), "beskederne skulle ligge i tracker store med masken"
    leaks = _leaks(stack, CPR_FORMS)
    assert not leaks, f"CPR-numre fundet efter {sent} beskeder: {leaks[:20]}"


def test_cpr_numbers_in_an_order_do_not_reach_servicenow_or_the_outbox(stack):
    token = stack.token_for(**LEADER)
    order_sender = stack.new_sender("cprorder")
    numbers = CPR_FORMS[:3]
    description = "Lønnen til vores pædagog " + " og ".join(w for w, _ in numbers) + " er forkert i november"
    confirmation = _order_with_description(stack, order_sender, token, description)
    assert re.search(r"AFH\d+|modtaget|sendt", _texts(confirmation), re.IGNORECASE), _texts(confirmation)

    # Wait for the case (the outbox worker delivers every second in the test stack).
    deadline = time.monotonic() + 30
    while LEADER["email"].encode() not in _emulator_bytes(stack):
        if time.monotonic() > deadline:
            pytest.fail("Sagen nåede ikke frem til ServiceNow-emulatoren")
        time.sleep(0.5)
    time.sleep(1)
    assert b"CPR-nummer fjernet" in _emulator_bytes(stack), "sagens beskrivelse skulle have masken"
    leaks = _leaks(stack, numbers)
    assert not leaks, f"CPR-numre fundet: {leaks[:20]}"


def test_the_tracker_api_shows_only_the_mask(stack):
    token = stack.token_for(**LEADER)
    sender = stack.new_sender("cprapi")
    stack.send(sender, "Min medarbejder 150384-1231 er syg", token=token)
    events = stack.tracker(sender)["events"]
    user_texts = [e.get("text") or "" for e in events if e.get("event") == "user"]
    assert any(CPR_MASK in t for t in user_texts), user_texts
    assert not any("150384" in str(e) for e in events)


def test_the_bot_tells_the_leader_that_the_number_was_removed(stack):
    token = stack.token_for(**LEADER)
    sender = stack.new_sender("cprtell")
    stack.send(sender, "hej", token=token)
    replies = stack.send(sender, "Jeg skal bruge en blanket til vikar for 150384-1231", token=token)
    text = _texts(replies)
    # Kindly told that the number was removed (channels.inbound.cpr_notice, domain/channel.yml) ...
    assert re.search(r"fjernet.{0,40}CPR|CPR.{0,40}fjernet", text, re.IGNORECASE | re.DOTALL), text
    # ... and the request carries on: there is more than the notice.
    assert len([m for m in replies if m.get("text") or m.get("buttons")]) >= 2, replies
