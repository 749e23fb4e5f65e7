"""The scaled topology, natively: two Rasa servers and two action servers that share
a PostgreSQL tracker store and a Redis lock store (docs/deployment.md).

Each Rasa server calls its own action server (as a sidecar would). One leader's
conversation alternates between the two Rasa servers message by message, and is
carried through a whole request (help from AF) that ends as a case in the
ServiceNow emulator: the state survives every switch, exactly one case is made,
and killing one Rasa server (SIGKILL) mid-conversation loses nothing.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth for the `postgres` role) and Redis
on 127.0.0.1:6379, as on the project's machines; skipped with the reason when they
are not reachable. A fresh database af_test_<pid> is made and dropped.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import requests

from af_core import rasa_http

ROOT = Path(__file__).resolve().parent.parent
PG_HOST, PG_PORT, PG_ADMIN = "127.0.0.1", 5432, "postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
STARTUP_TIMEOUT = 300


def _reachable(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _why_not_available() -> str:
    if not _reachable(PG_HOST, PG_PORT):
        return f"PostgreSQL svarer ikke på {PG_HOST}:{PG_PORT}"
    if not _reachable(REDIS_HOST, REDIS_PORT):
        return f"Redis svarer ikke på {REDIS_HOST}:{REDIS_PORT}"
    try:
        import psycopg2

        psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_ADMIN, dbname="postgres", connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - any reason is a reason to skip
        return f"PostgreSQL afviser rollen {PG_ADMIN!r} uden adgangskode: {exc}"
    return ""


REASON = _why_not_available()
pytestmark = pytest.mark.skipif(bool(REASON), reason=f"skaleret opsætning kræver PostgreSQL og Redis: {REASON}")


def _admin_sql(statement: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_ADMIN, dbname="postgres", connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


@dataclass
class Node:
    name: str
    url: str
    process: subprocess.Popen
    log: Path


@dataclass
class Topology:
    rasa: List[Node]
    actions: List[Node]
    emulator_url: str
    api_token: str
    identity_token: str
    tmp: Path
    nodes: List[Node] = field(default_factory=list)

    def send(self, node: Node, sender: str, text: str) -> List[Dict]:
        response = requests.post(
            f"{node.url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text, "metadata": {"identity_token": self.identity_token}},
            timeout=60,
        )
        response.raise_for_status()
        return response.json()

    def tracker(self, node: Node, sender: str) -> Dict:
        response = requests.get(f"{node.url}/conversations/{sender}/tracker",
                                headers=rasa_http.headers_for_secret(self.api_token),
                                timeout=30)
        response.raise_for_status()
        return response.json()

    def logs(self) -> str:
        return "\n".join(f"--- {n.name} ---\n{n.log.read_text(errors='replace')[-3000:]}" for n in self.nodes)


def _wait_ready(node: Node, path: str, topo: Topology, deadline: float, headers: Dict = None) -> None:
    while time.monotonic() < deadline:
        if node.process.poll() is not None:
            pytest.fail(f"{node.name} stoppede under opstart (kode {node.process.returncode})\n{topo.logs()}")
        try:
            response = requests.get(f"{node.url}{path}", headers=headers, timeout=3)
            if response.status_code == 200 and (path != "/status" or response.json().get("model_file")):
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    pytest.fail(f"{node.name} blev ikke klar inden for {STARTUP_TIMEOUT} s\n{topo.logs()}")


def _stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def topology(tmp_path_factory) -> Iterator[Topology]:
    from af_core.identity import issue_token
    from af_core.settings import load_settings
    from servicenow_emulator.testing import start_emulator

    tmp = tmp_path_factory.mktemp("scaled")
    database = f"af_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    _admin_sql(f'CREATE DATABASE "{database}"')
    emulator = start_emulator(tmp, seed=7)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AF_", "RASA_", "SERVICENOW_"))}
    base.update({
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "AF_MODE": "development",
        "AF_VAR_DIR": str(tmp / "var"),  # shared, like the outbox volume in docker-compose.yml
        "AF_START_EMULATOR": "false",
        "SERVICENOW_URL": emulator.url,
        "AF_TRACKER_STORE": "postgres",
        "AF_POSTGRES_HOST": PG_HOST, "AF_POSTGRES_PORT": str(PG_PORT),
        "AF_POSTGRES_DB": database, "AF_POSTGRES_USER": PG_ADMIN,
        "AF_LOCK_STORE": "redis",
        "AF_REDIS_HOST": REDIS_HOST, "AF_REDIS_PORT": str(REDIS_PORT),
    })
    # The shared model store: two names for the trained model, so activating "the other one"
    # is a real switch that every replica must follow (scripts/model_watch.py).
    from scripts import model as model_lookup

    models = tmp / "models"
    models.mkdir()
    trained = model_lookup.model_path()
    if not trained.is_file():
        trained = max(model_lookup.MODELS.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    for name in ("af-a.tar.gz", "af-b.tar.gz"):
        (models / name).symlink_to(trained.resolve())
    base.update({"AF_MODELS_DIR": str(models), "AF_MODEL_POLL_SECONDS": "1"})
    settings = load_settings(base)
    topo = Topology([], [], emulator.url, settings.rasa_api_token,
                    issue_token({"name": "Mette Hansen", "email": "mette.hansen@buf.kk.dk",
                                 "institution": "Valby Skole"}, settings), tmp)

    def spawn(name: str, args: List[str], env: Dict[str, str], port: int) -> Node:
        log = tmp / f"{name}.out"
        process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=open(log, "wb"),
                                   stderr=subprocess.STDOUT, start_new_session=True)
        node = Node(name, f"http://127.0.0.1:{port}", process, log)
        topo.nodes.append(node)
        return node

    try:
        for i in (1, 2):
            actions_port, rasa_port = _free_port(), _free_port()
            env = dict(base, AF_LOG_DIR=str(tmp / f"logs-{i}"), AF_ACTIONS_PORT=str(actions_port),
                       AF_RASA_PORT=str(rasa_port), AF_ACTIONS_URL=f"http://127.0.0.1:{actions_port}/webhook")
            topo.actions.append(spawn(f"actions-{i}", ["scripts/action_server.py"], env, actions_port))
            topo.rasa.append(spawn(f"rasa-{i}", ["scripts/rasa_replica.py", str(models / "af-a.tar.gz")], env,
                                   rasa_port))
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for node in topo.actions:
            _wait_ready(node, "/health", topo, deadline)
        for node in topo.rasa:
            _wait_ready(node, "/status", topo, deadline, headers=rasa_http.headers_for_secret(topo.api_token))
        yield topo
    finally:
        for node in topo.nodes:
            _stop(node.process)
        emulator.stop()
        _admin_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _texts(messages: List[Dict]) -> str:
    return " | ".join(m.get("text", "") for m in messages)


def _cases_with(topo: Topology, marker: str) -> List[Dict]:
    from servicenow_emulator.testing import Admin

    return [case for case in Admin(topo.emulator_url).cases() if marker in str(case)]


def _request_turns(marker: str) -> List[tuple]:
    """A whole 'order help from AF' request, as (message, what the reply must contain)."""
    return [
        ("hej", ""),
        ("/request_help", "Hvad handler"),
        ('/inform{"topic":"personale"}', "Hvor meget haster"),
        # Type, topic and urgency known: the summary, with room for a few words.
        ('/inform{"urgency":"ingen_hast"}', "Skriv gerne et par ord"),
        (f"vi skal ansætte en ny pædagog og er i tvivl om indplaceringen {marker}",
         "det har jeg skrevet i beskrivelsen"),
        ("/affirm", "Din sag er oprettet med nummeret"),
    ]


def _user_texts(tracker: Dict) -> List[str]:
    return [e.get("text") for e in tracker["events"] if e.get("event") == "user"]


def test_conversation_alternating_between_two_servers_keeps_state_and_makes_one_case(topology):
    topo = topology
    sender = f"scaled-{uuid.uuid4().hex[:12]}"
    marker = f"ref{uuid.uuid4().hex[:8]}"
    replies = []
    for i, (text, expected) in enumerate(_request_turns(marker)):
        node = topo.rasa[i % 2]
        messages = topo.send(node, sender, text)
        assert messages, f"{node.name} gav intet svar på {text!r}\n{topo.logs()}"
        if expected:
            assert expected in _texts(messages), f"{node.name} på {text!r}: {_texts(messages)}"
        replies.append(_texts(messages))

    number = re.search(r"nummeret (\S+?)\.", replies[-1]).group(1)
    cases = _cases_with(topo, marker)
    assert len(cases) == 1, f"forventede én sag, fandt {len(cases)}"
    assert number in str(cases[0])
    # Both servers see the same, complete conversation.
    turns = [text for text, _ in _request_turns(marker)]
    for node in topo.rasa:
        assert _user_texts(topo.tracker(node, sender)) == turns
    # The other server answers the status question about the case the first one created.
    status = _texts(topo.send(topo.rasa[len(turns) % 2], sender, f"hvad er status på sag {number}"))
    assert number in status, status
    assert len(_cases_with(topo, marker)) == 1


def test_a_supporter_message_sent_through_either_server_reaches_the_leader(topology):
    """The leader's socket.io connection lives on one Rasa server; the supporter console's
    message may go through the other (Rasa's HTTP API, output_channel=latest, as
    web/rasa_api.py does). The Redis socket.io manager carries it to the leader."""
    from types import SimpleNamespace

    from af_core.transcript import supporter_event
    from tests.test_channels import ChatClient

    topo = topology
    holder, other = topo.rasa
    leader = ChatClient(SimpleNamespace(rasa_url=holder.url), topo.identity_token)
    leader.connect()
    try:
        session_id = leader.start_session()
        leader.say("hej")
        leader.replies()  # the greeting: the conversation's channel is now socket.io, on `holder`

        for node, words in ((other, "skrevet via den anden server"), (holder, "skrevet via samme server")):
            event = supporter_event(f"Hej, det er Sofie. {words}", "Sofie Lund", handoff_id=1)
            response = requests.post(
                f"{node.url}/conversations/{session_id}/tracker/events",
                params={"output_channel": "latest", "execute_side_effects": "true"},
                headers=rasa_http.headers_for_secret(topo.api_token),
                json=[event], timeout=30)
            assert response.status_code == 200, response.text
            got = leader.wait_for("bot_uttered")
            assert words in str(got) and "Sofie" in str(got), f"{got}\n{topo.logs()}"
    finally:
        leader.close()


def _served_models(topo: Topology) -> List[str]:
    return [requests.get(f"{node.url}/status", headers=rasa_http.headers_for_secret(topo.api_token),
                         timeout=10).json().get("model_file") for node in topo.rasa]


def _wait_for_model(topo: Topology, name: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _served_models(topo) == [name] * len(topo.rasa):
            return
        time.sleep(1)
    pytest.fail(f"Ikke alle replicas skiftede til {name}: {_served_models(topo)}\n{topo.logs()}")


def test_an_activated_model_reaches_every_replica_and_so_does_a_rollback(topology):
    """Issue 15: make activate is not one process's business - every Rasa replica follows the
    shared pointer, and keeps answering while it loads."""
    from trainer import serving

    assert _served_models(topology) == ["af-a.tar.gz", "af-a.tar.gz"]
    root = str(topology.tmp)
    activate = ["activate", "--force", "--no-reload", "--root", root, "--model"]
    assert serving.main(activate + ["af-a.tar.gz"]) == 0  # in service already
    assert serving.main(activate + ["af-b.tar.gz"]) == 0
    _wait_for_model(topology, "af-b.tar.gz")
    for node in topology.rasa:  # both answer with the new model
        assert _texts(topology.send(node, f"s{uuid.uuid4().hex}", "hej"))
    assert serving.main(["rollback", "--no-reload", "--root", root]) == 0
    _wait_for_model(topology, "af-a.tar.gz")


def test_killing_one_server_mid_conversation_loses_nothing(topology):
    topo = topology
    sender = f"scaled-kill-{uuid.uuid4().hex[:12]}"
    marker = f"ref{uuid.uuid4().hex[:8]}"
    turns = _request_turns(marker)
    victim, survivor = topo.rasa
    for i, (text, expected) in enumerate(turns[:5]):
        node = (victim, survivor)[i % 2]  # the description (turn 5) goes to the victim
        messages = topo.send(node, sender, text)
        if expected:
            assert expected in _texts(messages), f"{node.name} på {text!r}: {_texts(messages)}"
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(10)
    with pytest.raises(requests.ConnectionError):
        topo.send(victim, sender, "er du der?")

    # The survivor has every event the victim stored, and finishes the request.
    assert _user_texts(topo.tracker(survivor, sender)) == [text for text, _ in turns[:5]]
    confirm = _texts(topo.send(survivor, sender, turns[5][0]))
    assert turns[5][1] in confirm, confirm
    cases = _cases_with(topo, marker)
    assert len(cases) == 1, f"forventede én sag, fandt {len(cases)}"
    assert marker in cases[0].get("description", str(cases[0]))
