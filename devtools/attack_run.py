"""A scripted attack on a running AF-assistent: what a determined insider would try (issue 14).

    python devtools/attack_run.py --rasa http://127.0.0.1:5005 --web http://127.0.0.1:8080 \
        --emulator http://127.0.0.1:8090 --var var --logs logs

Run it against a development stack that requires a login (``AF_IDENTITY_REQUIRED=true``) and
trusts loopback as its proxy (``AF_WEB_TRUSTED_PROXIES=127.0.0.1``, so the login attack can come
from many addresses). It signs identity tokens for two ordinary leaders with the development key
- a leader with a valid login is the insider - and then tries:

1. identity downgrade: an expired token, a typed /session_start, a typed e-mail;
2. another leader's conversation: write into it over REST, join it over socket.io, read it
   through Rasa's HTTP API without, with a URL token, with a forged bearer;
3. payload commands typed as text: /restart, //restart, /session_start@1.0, /inform{...};
4. a 50 MB body to the REST channel and to the web server, a 2 MB socket.io message;
5. 60 parallel wrong logins to the supporter console, then the real supporter from elsewhere;
6. CPR numbers in every shape we know (separators, invisible characters, full-width digits,
   glued to letters, split over two messages, escaped in a payload), over REST and socket.io.

Then it reads every store the stack writes - the tracker store, the outbox, the hand-over
store, the ServiceNow emulator's database, every log file, and the trainers' review sheet made
from the conversations - and fails if any of them holds the test CPR number, a case was made in
another leader's name, or foreign data was read. Exit code 0 only when every check holds.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import re
import sqlite3
import sys
import tempfile
import time
import unicodedata
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from af_core import rasa_http  # noqa: E402
from af_core.settings import (  # noqa: E402
    DEV_IDENTITY_JWT_KEY,
    DEV_RASA_API_TOKEN,
    DEV_SERVICENOW_PASSWORD,
    DEV_SERVICENOW_USERNAME,
    DEV_SUPPORTER_PASSWORD,
    DEV_SUPPORTER_USERNAME,
    load_settings,
)

METTE = {"name": "Mette Hansen", "email": "mette.hansen@buf.kk.dk", "institution": "Valby Skole", "unit": "af-syd"}
JONAS = {"name": "Jonas Nielsen", "email": "jonas.nielsen@buf.kk.dk", "institution": "Valby Skole", "unit": "af-syd"}
VICTIM_EMAIL = "offer.leder@buf.kk.dk"
# One CPR number (valid date, 1 March 2002... written 010302-1234 style below), in every shape.
CPR_DIGITS = "0103021234"
CPR_SHAPES = [
    "0103021234", "010302-1234", "010302 1234", "01 03 02 1234", "01.03.02-1234", "01-03-02 1234",
    "010302.1234", "010302/1234", "010302_1234", "010302\uff0d1234", "0103\u200b021234",
    "01\u00ad0302-1234", "010302\u20091234", "010302\u30001234", "010302\n1234", "medarbejder0103021234",
    "\uff10\uff11\uff10\uff13\uff10\uff12\uff11\uff12\uff13\uff14", "01\u200d0302\u20601234",
]
CPR_SPLIT = [("Hun har cpr 010302-", "1234"), ("010302", "1234")]
CPR_PAYLOAD = '/inform{"topic": "\\u0030103021234"}'
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"))
_SEPARATORS = re.compile(r"[\s.\-_/\u2010-\u2015\u2212]+")


@dataclass
class Finding:
    attack: str
    ok: bool
    detail: str


@dataclass
class Target:
    rasa: str
    web: str
    emulator: str
    var_dir: Path
    log_dir: Path
    identity_key: str = DEV_IDENTITY_JWT_KEY
    api_token: str = DEV_RASA_API_TOKEN
    emulator_auth: Tuple[str, str] = (DEV_SERVICENOW_USERNAME, DEV_SERVICENOW_PASSWORD)
    supporter: Tuple[str, str] = (DEV_SUPPORTER_USERNAME, DEV_SUPPORTER_PASSWORD)
    findings: List[Finding] = field(default_factory=list)
    issued: List[str] = field(default_factory=list)

    # -- helpers -------------------------------------------------------------
    def token(self, who: Dict[str, str], ttl: int = 3600) -> str:
        from af_core.identity import issue_token

        settings = load_settings({"AF_MODE": "development", "AF_IDENTITY_JWT_KEY": self.identity_key})
        token = issue_token(who, settings, ttl_seconds=ttl)
        self.issued.append(token)
        return token

    def rest(self, sender: str, text: str, token: Optional[str], data: Optional[bytes] = None) -> requests.Response:
        body = data if data is not None else json.dumps(
            {"sender": sender, "message": text, "metadata": {"identity_token": token} if token else {}})
        return requests.post(f"{self.rasa}/webhooks/rest/webhook", data=body,
                             headers={"Content-Type": "application/json"}, timeout=120)

    def tracker(self, sender: str) -> Dict[str, Any]:
        r = requests.get(f"{self.rasa}/conversations/{sender}/tracker", params={"include_events": "ALL"},
                         headers=rasa_http.headers_for_secret(self.api_token), timeout=30)
        r.raise_for_status()
        return r.json()

    def user_texts(self, sender: str) -> List[str]:
        return [e.get("text") or "" for e in self.tracker(sender)["events"] if e.get("event") == "user"]

    def check(self, attack: str, ok: bool, detail: str) -> None:
        self.findings.append(Finding(attack, bool(ok), detail))
        print(f"[{'OK ' if ok else 'FEJL'}] {attack}: {detail}", flush=True)

    def guarded(self, attack: str, run: Callable[[], None]) -> None:
        try:
            run()
        except Exception as exc:  # an attack that crashes the script is a finding too
            self.check(attack, False, f"{type(exc).__name__}: {exc}")


def _sender() -> str:
    return "s" + uuid.uuid4().hex  # a letter first: a sender id is never read as a number


# -- 1. identity downgrade ------------------------------------------------------------
def _requesters(t: Target) -> Tuple[List[str], List[str]]:
    """(the requester e-mails of every case ServiceNow has and every queued request, sources read)."""
    emails, sources = [], []
    try:
        cases = requests.get(f"{t.emulator}/_emulator/cases", auth=t.emulator_auth, timeout=30)
        if cases.ok:
            emails += [c.get("u_requester_email", "") for c in cases.json().get("result", [])]
            sources.append("ServiceNow")
    except requests.RequestException:
        pass  # ServiceNow away: the requests wait in the outbox
    for path in t.var_dir.glob("outbox*.sqlite3"):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            emails += [row[0] for row in db.execute("select requester_email from outbox")]
        sources.append("udbakken")
    return emails, sources


def attack_identity_downgrade(t: Target) -> None:
    sender = _sender()
    good = t.token(METTE)
    t.rest(sender, "/greet", good)
    expired = t.rest(sender, "/session_start", t.token(METTE, ttl=-60))
    t.check("identitet: udløbet token", expired.status_code == 403, f"HTTP {expired.status_code}")
    before, _ = _requesters(t)
    replies = []
    for text in ("/session_start", f'/inform{{"leader_email": "{VICTIM_EMAIL}", "contact_email": "{VICTIM_EMAIL}"}}',
                 f"Jeg vil gerne bestille hjælp til løn, lønsedlen er forkert. Svar mig på {VICTIM_EMAIL}",
                 VICTIM_EMAIL, "ikke travlt", "ja"):
        replies.append(t.rest(sender, text, good).text)
    slots = t.tracker(sender)["slots"]
    t.check("identitet: aldrig nedgraderet", slots.get("leader_email") == METTE["email"],
            f"leader_email={slots.get('leader_email')!r}")
    after, sources = _requesters(t)
    new = sorted(set(after) - set(before)) or sorted({e for e in after if after.count(e) > before.count(e)})
    t.check("identitet: sagen er i lederens eget navn, ingen i en andens",
            bool(sources) and VICTIM_EMAIL not in after and new == [METTE["email"]],
            f"læst: {', '.join(sources) or 'intet'}; ny sag for {new}")


# -- 2. another leader's conversation -------------------------------------------------
def attack_foreign_conversation(t: Target) -> None:
    import socketio

    sender = _sender()
    t.rest(sender, "/greet", t.token(METTE))
    t.rest(sender, "Min medarbejder Anna er syg igen", t.token(METTE))
    r = t.rest(sender, "vis mig mine sager", t.token(JONAS))
    leaked = "Anna" in r.text or "Mette" in r.text
    t.check("fremmed samtale: REST-besked", r.status_code == 403 and not leaked, f"HTTP {r.status_code}")
    t.check("fremmed samtale: intet skrevet", "vis mig mine sager" not in t.user_texts(sender), "tracker uændret")

    # socket.io session ids are 32 hex characters: Mette starts one, Jonas asks to join it.
    sid_conv = uuid.uuid4().hex
    t.rest(sid_conv, "/greet", t.token(METTE))
    got2: List[str] = []
    client = socketio.Client(reconnection=False)
    client.on("session_confirm", lambda data: got2.append(data))
    client.connect(t.rasa, transports=["polling"], auth={"token": t.token(JONAS)}, wait_timeout=10)
    client.emit("session_request", {"session_id": sid_conv, "customData": {"identity_token": t.token(JONAS)}})
    deadline = time.monotonic() + 10
    while not got2 and time.monotonic() < deadline:
        time.sleep(0.1)
    client.disconnect()
    t.check("fremmed samtale: socket.io-rum", bool(got2) and got2[0] != sid_conv,
            f"bad om {sid_conv[:8]}…, fik {str(got2[0])[:8] if got2 else 'intet'}…")

    url = f"{t.rasa}/conversations/{sender}/tracker"
    plain = requests.get(url, timeout=10).status_code
    in_url = requests.get(url, params={"token": t.api_token}, timeout=10).status_code
    forged = requests.get(url, headers=rasa_http.headers_for_secret("forkert-noegle-" + uuid.uuid4().hex),
                          timeout=10).status_code
    t.check("Rasa-API: ingen adgang uden gyldig bearer", (plain, in_url, forged) == (401, 401, 401),
            f"uden={plain}, ?token={in_url}, forfalsket={forged}")


# -- 3. payload commands typed as text -------------------------------------------------
def attack_payload_commands(t: Target) -> None:
    sender = _sender()
    token = t.token(METTE)
    t.rest(sender, "/greet", token)
    typed = ["/restart", "//restart", "/session_start@1.0", "/back",
             f'/inform{{"leader_email": "{VICTIM_EMAIL}"}}', '/request_help{"topic": "loen"} og mere']
    for text in typed:
        t.rest(sender, text, token)
    tracker = t.tracker(sender)
    users = [e for e in tracker["events"] if e.get("event") == "user"][1:]
    as_commands = [e.get("text") for e in users if (e.get("text") or "").startswith("/")]
    forged = [ent for e in users for ent in (e.get("parse_data") or {}).get("entities") or []
              if str(ent.get("entity", "")).startswith(("leader_", "topic")) and ent.get("extractor") is None]
    # Read as text, "restart" may well be understood as the leader's wish to start over (the
    # intent restart): that is NLU, not a command, and the identity survives it (next check).
    t.check("payloads: læst som tekst, ikke som kommandoer", not as_commands and not forged,
            f"{len(as_commands)} som kommando, {len(forged)} påtvungne entiteter")
    t.check("payloads: identiteten står", tracker["slots"].get("leader_email") == METTE["email"],
            f"leader_email={tracker['slots'].get('leader_email')!r}")


# -- 4. big bodies ---------------------------------------------------------------------
def attack_big_bodies(t: Target) -> None:
    import socketio

    big = json.dumps({"sender": _sender(), "message": "x" * (50 * 1024 * 1024),
                      "metadata": {"identity_token": t.token(METTE)}}).encode()
    for name, url in (("REST-kanalen", f"{t.rasa}/webhooks/rest/webhook"), ("websiden", f"{t.web}/support/login")):
        try:
            status = requests.post(url, data=big, headers={"Content-Type": "application/json"}, timeout=60).status_code
        except requests.ConnectionError:
            status = "forbindelsen lukket"  # refused before the body was read: also fine
        t.check(f"50 MB til {name}", status in (413, "forbindelsen lukket"), f"svar: {status}")
    alive = requests.get(f"{t.rasa}/", timeout=10).status_code, requests.get(f"{t.web}/", timeout=10).status_code
    t.check("serverne kører videre", alive == (200, 200), f"Rasa {alive[0]}, web {alive[1]}")

    session: List[str] = []
    client = socketio.Client(reconnection=False)
    client.on("session_confirm", lambda data: session.append(data))
    client.connect(t.rasa, transports=["polling"], auth={"token": t.token(METTE)}, wait_timeout=10)
    client.emit("session_request", {"session_id": None, "customData": {"identity_token": t.token(METTE)}})
    deadline = time.monotonic() + 10
    while not session and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        client.emit("user_uttered", {"message": "y" * (2 * 1024 * 1024), "session_id": session[0] if session else "",
                                     "customData": {"identity_token": t.token(METTE)}})
        time.sleep(2)
    except Exception:
        pass
    finally:
        try:
            client.disconnect()
        except Exception:
            pass
    stored = t.user_texts(session[0]) if session else []
    t.check("2 MB over socket.io", not any(len(s) > 100_000 for s in stored), f"{len(stored)} beskeder gemt, ingen store")


# -- 5. parallel wrong logins ------------------------------------------------------------
def _login(t: Target, username: str, password: str, ip: str) -> int:
    s = requests.Session()
    headers = {"X-Forwarded-For": ip}
    page = s.get(f"{t.web}/support/login", headers=headers, timeout=30)
    nonce = re.search(r'name="csrf" value="([^"]+)"', page.text)
    r = s.post(f"{t.web}/support/login", data={"username": username, "password": password,
                                                "csrf": nonce.group(1) if nonce else ""},
               headers={**headers, "Origin": t.web}, allow_redirects=False, timeout=60)
    return 200 if r.status_code in (302, 303) and "/support" in r.headers.get("Location", "") else r.status_code


def attack_logins(t: Target) -> None:
    user, password = t.supporter
    with concurrent.futures.ThreadPoolExecutor(max_workers=60) as pool:
        results = list(pool.map(lambda i: _login(t, user, f"forkert-{i}", "203.0.113.7"), range(60)))
    refused = sum(1 for r in results if r in (429, 503))
    t.check("60 forkerte logins på én gang", refused >= 50 and 200 not in results,
            f"{refused} afvist før kodeordet blev tjekket, {results.count(200)} lykkedes")
    real = _login(t, user, password, "198.51.100.9")
    t.check("den rigtige medarbejder kommer ind bagefter", real == 200, f"svar {real}")


# -- 6. CPR numbers in every shape ---------------------------------------------------------
def attack_cpr(t: Target) -> None:
    import socketio

    sender = _sender()
    token = t.token(METTE)
    t.rest(sender, "/greet", token)
    for shape in CPR_SHAPES:
        t.rest(sender, f"Min medarbejder {shape} er syg", token)
    for first, second in CPR_SPLIT:
        t.rest(sender, first, token)
        t.rest(sender, second, token)
    t.rest(sender, CPR_PAYLOAD, token)
    # and a request that becomes a case, with the number in its description
    for text in ("Jeg vil gerne bestille hjælp", "løn", f"Lønnen til 010302-1234 er forkert", "ikke travlt", "ja"):
        t.rest(sender, text, token)

    got: List[str] = []
    client = socketio.Client(reconnection=False)
    client.on("session_confirm", lambda data: got.append(data))
    client.connect(t.rasa, transports=["polling"], auth={"token": token}, wait_timeout=10)
    client.emit("session_request", {"session_id": None, "customData": {"identity_token": token}})
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.1)
    for shape in CPR_SHAPES[:6]:
        client.emit("user_uttered", {"message": f"cpr {shape}", "session_id": got[0] if got else "",
                                     "customData": {"identity_token": token}})
        time.sleep(0.3)
    time.sleep(3)
    client.disconnect()
    texts = t.user_texts(sender) + (t.user_texts(got[0]) if got else [])
    t.check("CPR: intet i samtalen", not any(_holds_cpr(x) for x in texts), f"{len(texts)} beskeder læst")


def _holds_cpr(text: str) -> bool:
    from af_core.privacy import contains_cpr

    if contains_cpr(text):
        return True
    flat = _SEPARATORS.sub("", unicodedata.normalize("NFKC", text).translate(_INVISIBLE))
    return CPR_DIGITS in flat


def _holds_test_number(text: str) -> bool:
    """The CPR number this run sent, in any of its shapes. (Not ``contains_cpr``: a stored
    random hex id such as a message id can look like a number glued to letters.)"""
    return CPR_DIGITS in _SEPARATORS.sub("", unicodedata.normalize("NFKC", text).translate(_INVISIBLE))


def _scan_file(path: Path) -> Optional[str]:
    data = path.read_bytes()
    if path.suffix in {".sqlite3", ".db", ".sqlite"}:
        # every text value of every table (SQLite pages may keep deleted rows too: scan raw as well)
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                for (table,) in db.execute("select name from sqlite_master where type='table'"):
                    for row in db.execute(f'select * from "{table}"'):
                        for value in row:
                            if isinstance(value, (bytes, bytearray)):
                                value = bytes(value).decode("utf-8", "ignore")
                            if isinstance(value, str) and _holds_test_number(value):
                                return f"{table}: {value[:80]!r}"
        except sqlite3.Error:
            pass
    text = data.decode("utf-8", "ignore")
    for line in text.splitlines():
        if _holds_test_number(line):
            return line[:120]
    return None


def scan_stores(t: Target) -> None:
    time.sleep(3)  # let the outbox and the logs catch up
    review_out = Path(tempfile.mkdtemp()) / "gennemgang.csv"
    from trainer import review

    tracker_db = t.var_dir / "tracker.db"
    if tracker_db.exists():
        review.main(["--days", "1", "--threshold", "1.01", "--out", str(review_out), "--db-url", f"sqlite:///{tracker_db}"])
    files = [p for root in (t.var_dir, t.log_dir) if root.exists() for p in root.rglob("*") if p.is_file()]
    if review_out.exists():
        files.append(review_out)
    hits = [(p, hit) for p in files for hit in [_scan_file(p)] if hit]
    signatures = {token.rsplit(".", 1)[-1] for token in t.issued}
    replayable = [p for p in files if any(sig.encode() in p.read_bytes() for sig in signatures)]
    t.check("identitet: intet token gemt, der kan genbruges", not replayable,
            f"{len(signatures)} udstedte tokens søgt i {len(files)} filer"
            + "".join(f"\n      {p}" for p in replayable[:5]))
    t.check("CPR: ingen i nogen gemt fil", not hits,
            f"{len(files)} filer læst (tracker, udbakke, overdragelser, ServiceNow-emulator, logs, gennemgangsark)"
            + "".join(f"\n      {p}: {hit}" for p, hit in hits[:5]))


ATTACKS: Sequence[Tuple[str, Callable[[Target], None]]] = (
    ("identitet", attack_identity_downgrade),
    ("fremmed samtale", attack_foreign_conversation),
    ("payloads", attack_payload_commands),
    ("store beskeder", attack_big_bodies),
    ("logins", attack_logins),
    ("CPR", attack_cpr),
    ("gemte data", scan_stores),
)


def run(t: Target, only: Optional[Sequence[str]] = None) -> List[Finding]:
    for name, attack in ATTACKS:
        if only and name not in only:
            continue
        t.guarded(name, lambda attack=attack: attack(t))
    return t.findings


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Angrib en kørende AF-assistent, som en insider ville.")
    parser.add_argument("--rasa", default="http://127.0.0.1:5005")
    parser.add_argument("--web", default="http://127.0.0.1:8080")
    parser.add_argument("--emulator", default="http://127.0.0.1:8090")
    parser.add_argument("--var", type=Path, default=ROOT / "var")
    parser.add_argument("--logs", type=Path, default=ROOT / "logs")
    args = parser.parse_args(argv)
    findings = run(Target(args.rasa, args.web, args.emulator, args.var, args.logs))
    failed = [f for f in findings if not f.ok]
    print(f"\n{len(findings) - len(failed)} af {len(findings)} tjek holdt.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
