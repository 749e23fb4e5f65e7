"""Benchmark AF-assistenten against Rasa's own demo bot, on this machine, in one run.

    python devtools/bench.py                 # the full run (~20 min on 2 cores): `make bench`
    python devtools/bench.py --quick         # short regimes, no training: for development
    python devtools/bench.py --skip-training # full load, but reuse models that exist

What it does (docs/benchmarks.md explains the figures):

1. Training (holds var/train.lock, the lock `make model` takes): our full training from an
   empty cache in a copy of the project, an incremental retrain after adding one NLU
   example, model size; the anchor is `rasa init --no-prompt` (the demo bot) trained the
   same way.
2. For each bot (ours with the ServiceNow emulator + action server; the demo bot): cold
   start (command -> model loaded), NLU parse latency over HTTP, then the same load:
   closed loop (leaders without pause: saturation), and 100 and 200 leaders pausing ~3 s.
   Simulated leaders replay scripted conversations over REST and socket.io (polling
   transport); a reply's latency is message sent -> the turn's last bot message received.
   Ours: greeting, form question, rule question, a meeting request through to a case in
   the emulator, a status question. Peak memory and CPU seconds of every server process.
3. NLU accuracy on the held-out split (devtools/nlu_eval.py): config.yml vs Rasa's default
   pipeline (config/pipelines/b_rasa_default.yml), with in-process parse latency.

Writes results/bench.json, docs/benchmarks.md and (the committed copy) docs/benchmarks.json.
Only loopback; every loop is bounded.
"""
from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import psutil  # noqa: E402

from af_core import rasa_http  # noqa: E402

RASA_BIN = str(Path(sys.executable).with_name("rasa"))
TRAIN_LOCK = ROOT / "var" / "train.lock"
RESULTS = ROOT / "results" / "bench.json"
DOC = ROOT / "docs" / "benchmarks.md"
REPLY_TIMEOUT = 30.0
TARGETS = {"saturation_ratio": 2.0, "p95_200_ms": 300.0, "full_training_s": 300.0, "cold_start_s": 30.0}

# What a leader writes, turn by turn (one conversation). Button payloads are what the
# page sends when a leader clicks; the rest is typed.
OURS_SCRIPT = [
    "hej",
    "hvor finder jeg blanketten til lønændring",
    "hvor mange omsorgsdage har en medarbejder",
    "Jeg vil gerne have et Teams-møde om løn, det haster",
    "i morgen 10:00",
    "Min kollega har fået forkert tillæg i tre måneder og vil gerne have det rettet",
    "ja",
    "hvad er status på min sag",
]
# What must be in the reply to the turn (checked once, in the calibration conversation).
OURS_CHECKS = {6: ("Din sag er oprettet", "Jeg har modtaget din henvendelse")}
ANCHOR_SCRIPT = ["hello", "I am sad", "yes", "are you a bot?", "I am great", "goodbye"]
ANCHOR_CHECKS = {3: ("I am a bot",)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pct(values: List[float], q: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q / 100 * (len(ordered) - 1)))))
    return round(ordered[index] * 1000, 1)


def log(text: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {text}", flush=True)


# ------------------------------------------------------------------ processes


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path


class Sampler(threading.Thread):
    """Peak RSS (process + children) and CPU seconds of each server process."""

    def __init__(self, procs: List[Proc]):
        super().__init__(daemon=True)
        self.procs = procs
        self.stop_event = threading.Event()
        self.peak: Dict[str, int] = {p.name: 0 for p in procs}
        self.cpu0 = {p.name: self._cpu(p) for p in procs}
        self.cpu_self0 = sum(psutil.Process().cpu_times()[:2])

    @staticmethod
    def _tree(proc: Proc) -> List[psutil.Process]:
        try:
            root = psutil.Process(proc.popen.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def _cpu(self, proc: Proc) -> float:
        total = 0.0
        for p in self._tree(proc):
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def run(self) -> None:
        while not self.stop_event.wait(0.5):
            for proc in self.procs:
                rss = 0
                for p in self._tree(proc):
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak[proc.name] = max(self.peak[proc.name], rss)

    def finish(self) -> Dict[str, Any]:
        self.stop_event.set()
        self.join(2)
        return {
            "peak_rss_mb": {k: round(v / 2**20) for k, v in self.peak.items()},
            "cpu_seconds": {p.name: round(self._cpu(p) - self.cpu0[p.name], 1) for p in self.procs},
            "load_generator_cpu_seconds": round(sum(psutil.Process().cpu_times()[:2]) - self.cpu_self0, 1),
        }


def spawn(name: str, args: List[str], env: Dict[str, str], cwd: Path, logs: Path) -> Proc:
    out = logs / f"{name}.log"
    popen = subprocess.Popen(args, cwd=cwd, env=env, stdout=open(out, "ab"), stderr=subprocess.STDOUT,
                             start_new_session=True)
    return Proc(name, popen, out)


def stop(procs: List[Proc]) -> None:
    for proc in procs:
        if proc.popen.poll() is None:
            try:
                os.killpg(proc.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for proc in procs:
        try:
            proc.popen.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait()


def wait_http(url: str, proc: Proc, timeout: float, ok: Callable[[Any], bool] = lambda r: True,
              headers: Optional[Dict[str, str]] = None) -> float:
    """Seconds until ``url`` answers 200 (and ``ok``); fails when the process dies."""
    import requests

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} stopped during start-up:\n{proc.log.read_text(errors='replace')[-3000:]}")
        try:
            response = requests.get(url, timeout=2, headers=headers)
            if response.status_code == 200 and ok(response):
                return time.monotonic() - started
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} was not ready within {timeout} s")


# ------------------------------------------------------------------ the bots


@dataclass
class Bot:
    name: str
    title: str
    script: List[str]
    checks: Dict[int, tuple]
    rasa_urls: List[str]
    api_token: str
    af_channel: bool  # our socket.io channel (session persistence + identity) or Rasa's stock one
    procs: List[Proc] = field(default_factory=list)
    token_for: Callable[[int], str] = lambda i: ""
    expected_counts: List[int] = field(default_factory=list)
    action_calls: List[List[str]] = field(default_factory=list)  # custom actions per turn (calibration)
    cold_start_s: Optional[float] = None
    model: str = ""
    cleanup: List[Callable[[], None]] = field(default_factory=list)


def start_ours(model: Path, work: Path, replicas: int, tf_threads: Optional[int], tag: str) -> Bot:
    from af_core.identity import issue_token
    from af_core.settings import load_settings

    logs = work / f"logs-{tag}"
    logs.mkdir(parents=True, exist_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AF_", "RASA_", "SERVICENOW_"))}
    emulator_port = free_port()
    base.update({
        "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "AF_MODE": "development",
        "AF_VAR_DIR": str(work / f"var-{tag}"), "AF_LOG_DIR": str(logs), "AF_START_EMULATOR": "false",
        "AF_EMULATOR_PORT": str(emulator_port), "SERVICENOW_URL": f"http://127.0.0.1:{emulator_port}",
    })
    if tf_threads:
        base["TF_INTRA_OP_PARALLELISM_THREADS"] = str(tf_threads)
        base["TF_INTER_OP_PARALLELISM_THREADS"] = str(tf_threads)
    cleanup: List[Callable[[], None]] = []
    if replicas > 1:
        database = f"af_bench_{os.getpid()}_{tag}"
        admin_sql(f'CREATE DATABASE "{database}"')
        cleanup.append(lambda: admin_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        base.update({"AF_TRACKER_STORE": "postgres", "AF_POSTGRES_DB": database, "AF_POSTGRES_USER": "postgres",
                     "AF_LOCK_STORE": "redis"})
    settings = load_settings(base)
    procs = [spawn("emulator", [sys.executable, "-m", "servicenow_emulator"], base, ROOT, logs)]
    rasa_urls = []
    started = time.monotonic()
    for i in range(replicas):
        actions_port, rasa_port = free_port(), free_port()
        env = dict(base, AF_ACTIONS_PORT=str(actions_port), AF_RASA_PORT=str(rasa_port),
                   AF_ACTIONS_URL=f"http://127.0.0.1:{actions_port}/webhook")
        procs.append(spawn(f"actions-{i + 1}", [sys.executable, "scripts/action_server.py"], env, ROOT, logs))
        procs.append(spawn(f"rasa-{i + 1}", [sys.executable, "scripts/rasa_replica.py", str(model)], env, ROOT, logs))
        rasa_urls.append(f"http://127.0.0.1:{rasa_port}")
    bot = Bot("ours", "AF-assistenten", OURS_SCRIPT, OURS_CHECKS, rasa_urls, settings.rasa_api_token, True,
              procs, model=str(model), cleanup=cleanup)
    try:
        for proc in procs:
            if proc.name.startswith("rasa"):
                url = rasa_urls[int(proc.name.split("-")[1]) - 1]
                wait_http(f"{url}/status", proc, 300, lambda r: bool(r.json().get("model_file")),
                          headers=rasa_http.headers_for_secret(settings.rasa_api_token))
        bot.cold_start_s = round(time.monotonic() - started, 1)
        time.sleep(1.0)  # the action servers start faster than Rasa; give the emulator a moment too
    except BaseException:
        shutdown(bot)
        raise
    bot.token_for = lambda i: issue_token(
        {"name": f"Leder {i}", "email": f"leder{i}@buf.kk.dk", "institution": "Valby Skole"}, settings)
    return bot


def start_anchor(demo: Path, work: Path, tf_threads: Optional[int]) -> Bot:
    logs = work / "logs-anchor"
    logs.mkdir(parents=True, exist_ok=True)
    (demo / "bench-credentials.yml").write_text(
        "rest: {}\nsocketio:\n  user_message_evt: user_uttered\n  bot_message_evt: bot_uttered\n"
        "  session_persistence: false\n", encoding="utf-8")
    model = sorted((demo / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)[-1]
    port, token = free_port(), uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AF_", "RASA_", "SERVICENOW_"))}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if tf_threads:
        env["TF_INTRA_OP_PARALLELISM_THREADS"] = str(tf_threads)
        env["TF_INTER_OP_PARALLELISM_THREADS"] = str(tf_threads)
    started = time.monotonic()
    proc = spawn("rasa-demo", [RASA_BIN, "run", "--enable-api", "--jwt-secret", token, "--jwt-method", rasa_http.ALGORITHM, "--port", str(port),
                               "-i", "127.0.0.1", "--credentials", "bench-credentials.yml", "-m", str(model)],
                 env, demo, logs)
    bot = Bot("anchor", "rasa init demo bot", ANCHOR_SCRIPT, ANCHOR_CHECKS, [f"http://127.0.0.1:{port}"], token,
              False, [proc], model=str(model))
    try:
        wait_http(f"{bot.rasa_urls[0]}/status", proc, 300, lambda r: bool(r.json().get("model_file")),
                  headers=rasa_http.headers_for_secret(token))
    except BaseException:
        shutdown(bot)
        raise
    bot.cold_start_s = round(time.monotonic() - started, 1)
    return bot


def shutdown(bot: Bot) -> None:
    stop(bot.procs)
    for step in bot.cleanup:
        try:
            step()
        except Exception as exc:  # noqa: BLE001
            log(f"cleanup failed: {exc}")


def stores_reachable() -> bool:
    for port in (5432, 6379):
        with socket.socket() as sock:
            sock.settimeout(1)
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return False
    return True


def admin_sql(statement: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


# ------------------------------------------------------------------ simulated leaders


@dataclass
class Stats:
    latencies: Dict[str, List[float]] = field(default_factory=lambda: {"rest": [], "socketio": []})
    errors: Dict[str, int] = field(default_factory=lambda: {"rest": 0, "socketio": 0})
    error_examples: List[str] = field(default_factory=list)
    conversations: int = 0
    done_at: List[float] = field(default_factory=list)  # monotonic time each reply was complete
    background: set = field(default_factory=set)  # socket.io disconnects (a long-poll may take 25 s)

    def ok(self, transport: str, seconds: float) -> None:
        self.latencies[transport].append(seconds)
        self.done_at.append(time.monotonic())

    def fail(self, transport: str, why: str) -> None:
        self.errors[transport] += 1
        if len(self.error_examples) < 5:
            self.error_examples.append(f"{transport}: {why}"[:200])


async def rest_turn(session: aiohttp.ClientSession, bot: Bot, url: str, sender: str, text: str,
                    token: str) -> List[Dict]:
    body: Dict[str, Any] = {"sender": sender, "message": text}
    if token:
        body["metadata"] = {"identity_token": token}
    async with session.post(f"{url}/webhooks/rest/webhook", json=body,
                            timeout=aiohttp.ClientTimeout(total=REPLY_TIMEOUT)) as response:
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        return await response.json()


async def rest_leader(bot: Bot, index: int, pause: float, deadline: float, stats: Stats,
                      session: aiohttp.ClientSession) -> None:
    url = bot.rasa_urls[index % len(bot.rasa_urls)]  # a leader stays on one replica (sticky)
    token = bot.token_for(index) if bot.af_channel else ""
    conversation = 0
    while time.monotonic() < deadline:
        conversation += 1
        sender = f"bench-{index}-{conversation}-{uuid.uuid4().hex[:8]}"
        for text in bot.script:
            if time.monotonic() >= deadline:
                return
            started = time.perf_counter()
            try:
                messages = await rest_turn(session, bot, url, sender, text, token)
                if not messages:
                    raise RuntimeError(f"no reply to {text!r}")
                stats.ok("rest", time.perf_counter() - started)
            except Exception as exc:  # noqa: BLE001 - every failure is an error in the figures
                stats.fail("rest", f"{type(exc).__name__}: {exc}")
            if pause:
                await asyncio.sleep(random.uniform(0.8 * pause, 1.2 * pause))
        stats.conversations += 1


async def socketio_leader(bot: Bot, index: int, pause: float, deadline: float, stats: Stats) -> None:
    import socketio

    url = bot.rasa_urls[index % len(bot.rasa_urls)]
    token = bot.token_for(index) if bot.af_channel else ""
    while time.monotonic() < deadline:
        client = socketio.AsyncClient(reconnection=False)
        inbox: asyncio.Queue = asyncio.Queue()
        confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
        client.on("bot_uttered", lambda data: inbox.put_nowait(data))
        client.on("session_confirm", lambda sid: confirmed.done() or confirmed.set_result(sid))
        try:
            await client.connect(url, transports=["polling"], socketio_path="/socket.io",
                                 auth={"token": token} if token else None, wait_timeout=REPLY_TIMEOUT)
            session_id = None
            if bot.af_channel:
                await client.emit("session_request", {"session_id": uuid.uuid4().hex})
                session_id = await asyncio.wait_for(confirmed, REPLY_TIMEOUT)
        except Exception as exc:  # noqa: BLE001
            stats.fail("socketio", f"connect: {type(exc).__name__}: {exc}")
            await client.disconnect()
            await asyncio.sleep(pause or 0.5)
            continue
        try:
            for turn, text in enumerate(bot.script):
                if time.monotonic() >= deadline:
                    return
                payload: Dict[str, Any] = {"message": text}
                if bot.af_channel:
                    payload.update({"session_id": session_id, "customData": {"identity_token": token}})
                started = time.perf_counter()
                try:
                    await client.emit("user_uttered", payload)
                    for _ in range(max(1, bot.expected_counts[turn])):
                        await asyncio.wait_for(inbox.get(), REPLY_TIMEOUT)
                    stats.ok("socketio", time.perf_counter() - started)
                except Exception as exc:  # noqa: BLE001
                    stats.fail("socketio", f"turn {turn}: {type(exc).__name__}: {exc}")
                    break
                if pause:
                    await asyncio.sleep(random.uniform(0.8 * pause, 1.2 * pause))
            else:
                stats.conversations += 1
        finally:
            # Do not wait for the polling transport to wind down: the leader goes on at once.
            task = asyncio.ensure_future(client.disconnect())
            stats.background.add(task)
            task.add_done_callback(stats.background.discard)


async def run_load(bot: Bot, leaders: int, pause: float, seconds: float, socketio_share: float) -> Dict[str, Any]:
    stats = Stats()
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    sampler = Sampler(bot.procs)
    sampler.start()
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        deadline = started + seconds
        n_sio = int(round(leaders * socketio_share))
        tasks = []
        for i in range(leaders):
            async def leader(i=i):
                if pause:  # stagger the start over one pause, as leaders do not all start at once
                    await asyncio.sleep(random.uniform(0, pause))
                if i < n_sio:
                    await socketio_leader(bot, i, pause, deadline, stats)
                else:
                    await rest_leader(bot, i, pause, deadline, stats, session)
            tasks.append(asyncio.create_task(leader()))
        # Leaders stop at the deadline; a reply in flight then may still finish (bounded).
        await asyncio.wait(tasks, timeout=seconds + REPLY_TIMEOUT + 5)
        for task in [*tasks, *stats.background]:
            task.cancel()
        await asyncio.gather(*tasks, *stats.background, return_exceptions=True)
        elapsed = time.monotonic() - started
    usage = sampler.finish()
    everything = stats.latencies["rest"] + stats.latencies["socketio"]
    result = {
        "leaders": leaders, "pause_s": pause, "seconds": round(elapsed, 1), "socketio_leaders": n_sio,
        "messages": len(everything),
        # throughput inside the measured window only
        "msgs_per_s": round(sum(1 for t in stats.done_at if t <= deadline) / seconds, 1),
        "p50_ms": pct(everything, 50), "p95_ms": pct(everything, 95), "p99_ms": pct(everything, 99),
        "max_ms": pct(everything, 100),
        "errors": sum(stats.errors.values()), "errors_by_transport": stats.errors,
        "error_examples": stats.error_examples, "conversations": stats.conversations,
        "by_transport": {t: {"messages": len(v), "p50_ms": pct(v, 50), "p95_ms": pct(v, 95)}
                         for t, v in stats.latencies.items()},
        **usage,
    }
    # CPU per message is the figure that survives a shared, busy machine: wall-clock
    # latency also counts the time other people's processes hold the cores.
    messages = max(1, len(everything))
    rasa_cpu = sum(v for k, v in usage["cpu_seconds"].items() if k.startswith("rasa"))
    all_cpu = sum(usage["cpu_seconds"].values())
    result["rasa_cpu_ms_per_msg"] = round(1000 * rasa_cpu / messages, 1)
    result["server_cpu_ms_per_msg"] = round(1000 * all_cpu / messages, 1)
    return result


async def calibrate(bot: Bot) -> None:
    """One conversation over REST: how many messages each turn gets, and are the replies right."""
    async with aiohttp.ClientSession() as session:
        sender = f"bench-calibrate-{uuid.uuid4().hex[:8]}"
        token = bot.token_for(10_000) if bot.af_channel else ""
        counts = []
        for turn, text in enumerate(bot.script):
            messages = await rest_turn(session, bot, bot.rasa_urls[0], sender, text, token)
            counts.append(len(messages))
            if turn in bot.checks:
                joined = " ".join(m.get("text", "") for m in messages)
                if not any(expected in joined for expected in bot.checks[turn]):
                    raise RuntimeError(f"{bot.name}: the reply to {text!r} was {joined!r}")
        bot.expected_counts = counts
        bot.action_calls = await action_calls(session, bot, sender)


async def action_calls(session: aiohttp.ClientSession, bot: Bot, sender: str) -> List[List[str]]:
    """The calls to the action server in each turn of the calibration conversation (its events)."""
    async with session.get(f"{bot.rasa_urls[0]}/domain", headers={
            **rasa_http.headers_for_secret(bot.api_token), "Accept": "application/json"}) as response:
        domain = await response.json()
    async with session.get(f"{bot.rasa_urls[0]}/conversations/{sender}/tracker",
                           headers=rasa_http.headers_for_secret(bot.api_token)) as response:
        events = (await response.json()).get("events") or []
    return calls_per_turn(events, domain)


def calls_per_turn(events: List[Dict[str, Any]], domain: Dict[str, Any]) -> List[List[str]]:
    """Which custom actions Rasa asked the action server for, turn by turn. A custom action is one
    event; a form is not (Rasa runs it), but each time it runs it calls ``validate_<form>`` and,
    for the slot it asks for next, ``action_ask_<slot>`` when those are custom actions. Custom
    actions before the first message (the session start) count in the first turn."""
    # The domain's "actions" are exactly the action server's: Rasa's own actions are listed there
    # only when the action server overrides them (ours: action_session_start); responses and forms
    # are listed apart.
    actions = set(domain.get("actions") or [])
    forms = set(domain.get("forms") or {})
    before_first: List[str] = []
    turns: List[List[str]] = []
    form_running: Optional[str] = None
    for event in events:
        kind, name = event.get("event"), event.get("name")
        current = turns[-1] if turns else before_first
        if kind == "user":
            turns.append(before_first if not turns else [])
            form_running = None
        elif kind == "action" and name in forms:
            if f"validate_{name}" in actions:
                current.append(f"validate_{name}")
            form_running = name
        elif kind == "action":
            form_running = None
            if name in actions:
                current.append(name)
        elif kind == "slot" and name == "requested_slot" and form_running and event.get("value"):
            slot = event["value"]
            for ask in (f"action_ask_{form_running}_{slot}", f"action_ask_{slot}"):
                if ask in actions:
                    current.append(ask)
                    break
    return turns


async def parse_latency(bot: Bot, rounds: int) -> Dict[str, Any]:
    texts = [t for t in bot.script if not t.startswith("/")]
    seconds = []
    async with aiohttp.ClientSession() as session:
        for i in range(rounds):
            started = time.perf_counter()
            async with session.post(f"{bot.rasa_urls[0]}/model/parse", headers=rasa_http.headers_for_secret(bot.api_token),
                                    json={"text": texts[i % len(texts)]}) as response:
                await response.read()
            seconds.append(time.perf_counter() - started)
    return {"requests": rounds, "p50_ms": pct(seconds, 50), "p95_ms": pct(seconds, 95)}


def measure_bot(bot: Bot, regimes: List[Dict[str, Any]], socketio_share: float, parse_rounds: int) -> Dict[str, Any]:
    asyncio.run(calibrate(bot))
    result: Dict[str, Any] = {"title": bot.title, "model": bot.model, "cold_start_s": bot.cold_start_s,
                              "replicas": len(bot.rasa_urls), "turns_per_conversation": len(bot.script),
                              "bot_messages_per_turn": bot.expected_counts,
                              "action_calls_by_turn": bot.action_calls,
                              "action_calls_per_message": round(
                                  sum(len(t) for t in bot.action_calls) / max(len(bot.script), 1), 2)}
    result["nlu_parse_http"] = asyncio.run(parse_latency(bot, parse_rounds))
    result["regimes"] = {}
    for regime in regimes:
        log(f"  {bot.name}: {regime['name']} ({regime['leaders']} leaders, pause {regime['pause']} s, "
            f"{regime['seconds']} s)")
        outcome = asyncio.run(run_load(bot, regime["leaders"], regime["pause"], regime["seconds"], socketio_share))
        log(f"    {outcome['msgs_per_s']} msg/s, p50 {outcome['p50_ms']} p95 {outcome['p95_ms']} "
            f"p99 {outcome['p99_ms']} ms, errors {outcome['errors']}, peak {outcome['peak_rss_mb']}")
        result["regimes"][regime["name"]] = outcome
        time.sleep(2)
    return result


# ------------------------------------------------------------------ training


def copy_project(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.yml", "domain", "data"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name)
        else:
            shutil.copy(source, target / name)


def timed_train(args: List[str], cwd: Path, cache: Path) -> float:
    env = dict(os.environ, RASA_CACHE_DIRECTORY=str(cache), TF_CPP_MIN_LOG_LEVEL="2")
    started = time.monotonic()
    result = subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return round(time.monotonic() - started, 1)


def training(work: Path, skip: bool) -> Dict[str, Any]:
    """Full and incremental training of ours, and `rasa init` for the anchor (under the train lock)."""
    result: Dict[str, Any] = {}
    demo = work / "demo"
    TRAIN_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(TRAIN_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        log("training: the anchor (rasa init --no-prompt)")
        demo.mkdir(parents=True, exist_ok=True)  # rasa init wants the folder to exist
        seconds = timed_train([RASA_BIN, "init", "--no-prompt", "--init-dir", str(demo)], work, work / "cache-demo")
        result["anchor_init_and_train_s"] = seconds
        demo_model = sorted((demo / "models").glob("*.tar.gz"))[-1]
        result["anchor_model_mb"] = round(demo_model.stat().st_size / 2**20, 1)
        if skip:
            return result
        project = work / "project"
        copy_project(project)
        log("training: ours, full, empty cache")
        result["ours_full_s"] = timed_train(
            [RASA_BIN, "train", "--config", "config.yml", "--domain", "domain", "--data", "data", "--out", "models",
             "--fixed-model-name", "full"], project, work / "cache-ours")
        result["ours_model_mb"] = round((project / "models" / "full.tar.gz").stat().st_size / 2**20, 1)
        # A trainer adds one example: Rasa's cache reuses what did not change.
        extra = project / "data" / "nlu" / "zz_bench_extra.yml"
        extra.write_text('version: "3.1"\nnlu:\n  - intent: greet\n    examples: |\n      - goddag med dig\n',
                         encoding="utf-8")
        log("training: ours, incremental (one NLU example added)")
        result["ours_incremental_s"] = timed_train(
            [RASA_BIN, "train", "--config", "config.yml", "--domain", "domain", "--data", "data", "--out", "models",
             "--fixed-model-name", "incremental"], project, work / "cache-ours")
        result["ours_model_path"] = str(project / "models" / "full.tar.gz")
    return result


def nlu_accuracy() -> Dict[str, Any]:
    """Held-out accuracy and in-process parse latency: config.yml vs Rasa's default pipeline."""
    from devtools import nlu_eval

    out: Dict[str, Any] = {}
    for name, config in (("ours", ROOT / "config.yml"),
                         ("rasa_default", ROOT / "config" / "pipelines" / "b_rasa_default.yml")):
        log(f"NLU held-out evaluation: {name}")
        report = nlu_eval.evaluate(config)
        out[name] = {"config": report["config"], "accuracy": report["intents"]["accuracy"],
                     "weighted_f1": report["intents"]["weighted_f1"], "latency": report["latency"],
                     "train_seconds_if_trained_now": report["train_seconds"],
                     "test_examples": report["test_examples"]}
    return out


# ------------------------------------------------------------------ report


def machine() -> Dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import rasa

    return {"cpu": cpu, "cores": psutil.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "os": platform.platform(), "python": platform.python_version(), "rasa": rasa.__version__,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def ratios(result: Dict[str, Any], bot_name: str = "ours") -> Dict[str, Any]:
    ours, anchor = result["bots"].get(bot_name), result["bots"].get("anchor")
    if not ours or not anchor:
        return {}
    out = {}
    for regime in ours["regimes"]:
        if regime in anchor["regimes"]:
            o, a = ours["regimes"][regime], anchor["regimes"][regime]
            out[regime] = {"msgs_per_s": round(o["msgs_per_s"] / a["msgs_per_s"], 2) if a["msgs_per_s"] else None,
                           "p95": round(o["p95_ms"] / a["p95_ms"], 2) if o["p95_ms"] and a["p95_ms"] else None,
                           "cpu_per_msg": round(o["server_cpu_ms_per_msg"] / a["server_cpu_ms_per_msg"], 2)
                           if a.get("server_cpu_ms_per_msg") else None}
    return out


def verdicts(result: Dict[str, Any]) -> Dict[str, Any]:
    ours = result["bots"].get("ours", {}).get("regimes", {})
    r = result.get("ratios", {})
    training_s = result.get("training", {}).get("ours_full_s")
    cold = result["bots"].get("ours", {}).get("cold_start_s")
    sat = r.get("closed_loop", {}).get("msgs_per_s")
    p95 = ours.get("leaders_200", {}).get("p95_ms")
    return {
        "saturation_at_least_2x_anchor": None if sat is None else sat >= TARGETS["saturation_ratio"],
        "p95_200_leaders_under_300ms_zero_errors": None if p95 is None else (
            p95 < TARGETS["p95_200_ms"] and ours["leaders_200"]["errors"] == 0),
        "full_training_under_5_min": None if training_s is None else training_s < TARGETS["full_training_s"],
        "cold_start_under_30_s": None if cold is None else cold < TARGETS["cold_start_s"],
    }


def fmt(value: Any) -> str:
    return "–" if value is None else str(value)


def markdown(result: Dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `devtools/bench.py` (`make bench`); the raw figures are in `results/bench.json` "
        "(committed copy: `docs/benchmarks.json`).",
        "What the numbers mean, what was found and what each change bought: see the notes below the tables.",
        "",
        f"Run: {result['started']} ({result['mode']}), {result['duration_s']} s. Machine: {m['cpu']}, "
        f"{m['cores']} cores, {m['memory_gb']} GiB, {m['os']}, Python {m['python']}, Rasa {m['rasa']}; "
        f"load average at start {m['load_average_at_start']} (the machine is shared).",
        "",
        "## Load",
        "",
        "| bot | regime | leaders | pause | msg/s | p50 ms | p95 ms | p99 ms | errors | server CPU ms/msg (Rasa) "
        "| peak RSS MB (per process) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, bot in result["bots"].items():
        for regime, r in bot["regimes"].items():
            rss = ", ".join(f"{k} {v}" for k, v in r["peak_rss_mb"].items())
            lines.append(f"| {bot['title']} ({bot['replicas']} Rasa) | {regime} | {r['leaders']} | {r['pause_s']} s | "
                         f"{r['msgs_per_s']} | {fmt(r['p50_ms'])} | {fmt(r['p95_ms'])} | {fmt(r['p99_ms'])} | "
                         f"{r['errors']} | {r.get('server_cpu_ms_per_msg')} ({r.get('rasa_cpu_ms_per_msg')}) | {rss} |")
    lines += ["", "| ours / anchor | regime | msg/s | p95 | server CPU per message |", "|---|---|---|---|---|"]
    for name, table in [("ours", result.get("ratios", {}))] + list(result.get("variant_ratios", {}).items()):
        for regime, r in table.items():
            lines.append(f"| {name} | {regime} | {fmt(r['msgs_per_s'])} | {fmt(r['p95'])} | {fmt(r.get('cpu_per_msg'))} |")
    by_turn = result["bots"].get("ours", {}).get("action_calls_by_turn")
    if by_turn:
        lines += ["", "Calls to the action server in each turn of our calibration conversation "
                  "(what Rasa asked the action server for, read from the conversation's events):", ""]
        for text, calls in zip(OURS_SCRIPT, by_turn):
            lines.append(f"- `{text[:60]}`: {', '.join(calls) if calls else 'none'}")
    lines += ["", "## Start, NLU and training", "", "| measure | ours | anchor |", "|---|---|---|"]
    bots = result["bots"]
    o, a = bots.get("ours", {}), bots.get("anchor", {})
    lines.append(f"| cold start (command → model loaded), s | {fmt(o.get('cold_start_s'))} | {fmt(a.get('cold_start_s'))} |")
    lines.append(f"| NLU parse over HTTP p50 / p95, ms | {fmt(o.get('nlu_parse_http', {}).get('p50_ms'))} / "
                 f"{fmt(o.get('nlu_parse_http', {}).get('p95_ms'))} | {fmt(a.get('nlu_parse_http', {}).get('p50_ms'))} / "
                 f"{fmt(a.get('nlu_parse_http', {}).get('p95_ms'))} |")
    lines.append(f"| calls to the action server per message (calibration conversation) | "
                 f"{fmt(o.get('action_calls_per_message'))} | {fmt(a.get('action_calls_per_message'))} |")
    t = result.get("training", {})
    lines.append(f"| full training, s | {fmt(t.get('ours_full_s'))} | {fmt(t.get('anchor_init_and_train_s'))} (rasa init) |")
    lines.append(f"| incremental training (one NLU example), s | {fmt(t.get('ours_incremental_s'))} | – |")
    lines.append(f"| model size, MB | {fmt(t.get('ours_model_mb'))} | {fmt(t.get('anchor_model_mb'))} |")
    nlu = result.get("nlu", {})
    if nlu:
        lines += ["", "| NLU on our held-out split | accuracy | weighted F1 | parse p50 / p95 ms (in-process) |",
                  "|---|---|---|---|"]
        for name, n in nlu.items():
            lines.append(f"| {name} (`{n['config']}`) | {n['accuracy']} | {n['weighted_f1']} | "
                         f"{n['latency'].get('median_ms')} / {n['latency'].get('p95_ms')} |")
    lines += ["", "## Targets", "", "| target | met |", "|---|---|"]
    for key, value in result.get("verdicts", {}).items():
        lines.append(f"| {key.replace('_', ' ')} | {fmt(value)} |")
    lines.append("")
    return "\n".join(lines)


def write_doc(result: Dict[str, Any]) -> None:
    """Replace the generated part of docs/benchmarks.md, keep the hand-written notes after it."""
    marker = "<!-- notes: hand-written below, kept by devtools/bench.py -->"
    notes = ""
    if DOC.exists() and marker in DOC.read_text(encoding="utf-8"):
        notes = DOC.read_text(encoding="utf-8").split(marker, 1)[1]
    DOC.write_text(markdown(result) + "\n" + marker + notes, encoding="utf-8")


# ------------------------------------------------------------------ main


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short regimes, no training (development)")
    parser.add_argument("--skip-training", action="store_true", help="use existing models, do not time training")
    parser.add_argument("--bots", default="ours,anchor", help="comma list: ours, anchor")
    parser.add_argument("--replicas", type=int, default=2, help="Rasa replicas for ours (2+: PostgreSQL + Redis)")
    parser.add_argument("--tf-threads", type=int, default=1, help="TF intra/inter-op threads for ours (0: TF default)")
    parser.add_argument("--anchor-tf-threads", type=int, default=0, help="the same for the anchor (0: as shipped)")
    parser.add_argument("--model", type=Path, help="our model (default: the one for the current data, else newest)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=MODEL",
                        help="also measure ours with another model (e.g. a candidate config), same load")
    parser.add_argument("--socketio-share", type=float, default=0.2, help="share of leaders on socket.io")
    parser.add_argument("--closed-loop-leaders", type=int, default=8)
    parser.add_argument("--regimes", default="closed_loop,leaders_100,leaders_200")
    parser.add_argument("--seconds", type=float, help="seconds per regime (default 45, --quick 15)")
    parser.add_argument("--no-nlu-eval", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)

    seconds = args.seconds or (15.0 if args.quick else 45.0)
    all_regimes = {
        "closed_loop": {"name": "closed_loop", "leaders": args.closed_loop_leaders, "pause": 0.0, "seconds": seconds},
        "leaders_100": {"name": "leaders_100", "leaders": 100, "pause": 3.0, "seconds": seconds},
        "leaders_200": {"name": "leaders_200", "leaders": 200, "pause": 3.0, "seconds": seconds},
    }
    regimes = [all_regimes[name] for name in args.regimes.split(",") if name]
    bots_wanted = [b for b in args.bots.split(",") if b]
    started = time.monotonic()
    result: Dict[str, Any] = {"started": datetime.now().isoformat(timespec="seconds"),
                              "mode": "quick" if args.quick else "full", "machine": machine(),
                              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                              "bots": {}}
    work = Path(tempfile.mkdtemp(prefix="af-bench-"))
    log(f"work folder {work}")
    try:
        demo_cache = ROOT / "var" / "bench" / "demo"
        if args.quick or args.skip_training:
            if "anchor" in bots_wanted and not list((demo_cache / "models").glob("*.tar.gz")):
                result["training"] = training(work, skip=True)
                shutil.rmtree(demo_cache, ignore_errors=True)
                shutil.copytree(work / "demo", demo_cache)
        else:
            result["training"] = training(work, skip=False)
            shutil.rmtree(demo_cache, ignore_errors=True)
            shutil.copytree(work / "demo", demo_cache)
        if args.replicas > 1 and not stores_reachable():
            log("PostgreSQL/Redis are not reachable on loopback: ours runs as ONE Rasa replica (SQLite)")
            args.replicas = 1
            result["settings"]["replicas"] = 1
        model = args.model
        if model is None:
            from scripts.rasa_replica import default_model

            model = default_model()
        log(f"our model: {model}")
        variants = dict(v.split("=", 1) for v in args.variant)
        for name in bots_wanted + list(variants):
            log(f"starting {name}")
            if name in variants:
                bot = start_ours(Path(variants[name]), work, args.replicas, args.tf_threads or None, name)
                bot.name, bot.title = name, f"AF-assistenten, {name}"
            elif name == "ours":
                bot = start_ours(model, work, args.replicas, args.tf_threads or None, "ours")
            else:
                bot = start_anchor(demo_cache, work, args.anchor_tf_threads or None)
            log(f"  ready after {bot.cold_start_s} s")
            try:
                result["bots"][name] = measure_bot(bot, regimes, args.socketio_share, 50 if args.quick else 200)
            finally:
                shutdown(bot)
            time.sleep(3)
        if not args.no_nlu_eval and not args.quick:
            result["nlu"] = nlu_accuracy()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["duration_s"] = round(time.monotonic() - started)
    result["ratios"] = ratios(result)
    result["variant_ratios"] = {name: ratios(result, name) for name in result["bots"] if name not in ("ours", "anchor")}
    result["verdicts"] = verdicts(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    if not args.no_doc:
        write_doc(result)
        # results/ is not committed; the figures behind docs/benchmarks.md are, next to it.
        DOC.with_suffix(".json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    print(markdown(result))
    log(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
