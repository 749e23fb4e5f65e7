"""Durable outbox for cases that could not be created in ServiceNow yet.

Every request is written here *before* the first call to ServiceNow (so not even
a crash of the action server loses it) and marked delivered once ServiceNow has
the case. The worker (``python -m actions.outbox``) delivers what is left, every
``AF_OUTBOX_INTERVAL_SECONDS``, with the client's idempotency rules: it always
looks a request up by ``correlation_id`` before POSTing it.

Entries are *claimed* with a lease before delivery, so the action server and the
worker (or two workers) never deliver the same entry at the same time.

Importing this module has no side effects (rasa-sdk imports every module in
``actions/``); the database is opened on first use.
"""
from __future__ import annotations

import json
import logging
import signal
import sqlite3
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

log = logging.getLogger(__name__)

MAX_RETRY_DELAY_SECONDS = 900.0
DELIVERED_KEEP_SECONDS = 7 * 24 * 3600  # minimal receipts (no payload) for a week

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    correlation_id TEXT PRIMARY KEY,
    correlation_display TEXT NOT NULL,
    requester_email TEXT NOT NULL,
    request_type TEXT NOT NULL DEFAULT '',
    topic TEXT NOT NULL DEFAULT '',
    short_description TEXT NOT NULL DEFAULT '',
    payload TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    claimed_until REAL NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    number TEXT NOT NULL DEFAULT '',
    sys_id TEXT NOT NULL DEFAULT '',
    delivered_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX IF NOT EXISTS outbox_email ON outbox(requester_email, status);
"""


@dataclass(frozen=True)
class OutboxEntry:
    correlation_id: str
    correlation_display: str
    requester_email: str
    request_type: str
    topic: str
    short_description: str
    record: Dict[str, Any]
    attempts: int
    created_at: float
    last_error: str


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    remaining: int = 0


class Outbox:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._ready = False
        self._lock = threading.Lock()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    with sqlite3.connect(str(self.path), timeout=30) as db:
                        db.execute("PRAGMA journal_mode=WAL")
                        db.executescript(_SCHEMA)
                    self._ready = True
        db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    # -- writing ------------------------------------------------------------
    def add(self, record: Dict[str, Any], *, correlation_id: str, correlation_display: str, requester_email: str,
            request_type: str = "", topic: str = "", short_description: str = "",
            lease_seconds: float = 0.0) -> None:
        """Store a request durably. With a lease, the caller delivers it first; the
        worker only picks it up when the lease runs out (or it is released)."""
        now = time.time()
        with self._connect() as db:
            db.execute(
                "INSERT OR IGNORE INTO outbox(correlation_id, correlation_display, requester_email, request_type,"
                " topic, short_description, payload, created_at, next_attempt_at, claimed_until)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (correlation_id, correlation_display, requester_email, request_type, topic, short_description,
                 json.dumps(record, ensure_ascii=False), now, now, now + lease_seconds),
            )

    def claim_due(self, limit: int, lease_seconds: float) -> List[OutboxEntry]:
        """Atomically claim up to ``limit`` pending entries that are due and not claimed."""
        now = time.time()
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                rows = db.execute(
                    "SELECT correlation_id, correlation_display, requester_email, request_type, topic,"
                    " short_description, payload, attempts, created_at, last_error FROM outbox"
                    " WHERE status='pending' AND next_attempt_at<=? AND claimed_until<=?"
                    " ORDER BY created_at LIMIT ?",
                    (now, now, int(limit)),
                ).fetchall()
                db.executemany(
                    "UPDATE outbox SET claimed_until=? WHERE correlation_id=?",
                    [(now + lease_seconds, row[0]) for row in rows],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return [
            OutboxEntry(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8], r[9]) for r in rows
        ]

    def mark_delivered(self, correlation_id: str, number: str, sys_id: str) -> None:
        """Delivered: drop the payload (personal data), keep a small receipt."""
        with self._connect() as db:
            db.execute(
                "UPDATE outbox SET status='delivered', payload=NULL, number=?, sys_id=?, delivered_at=?,"
                " claimed_until=0, last_error='' WHERE correlation_id=?",
                (number, sys_id, time.time(), correlation_id),
            )

    def release(self, correlation_id: str, error: str, delay_seconds: float, attempted: bool = True) -> None:
        """Delivery failed (or was not tried): try again after ``delay_seconds``."""
        with self._connect() as db:
            db.execute(
                "UPDATE outbox SET attempts=attempts+?, last_error=?, next_attempt_at=?, claimed_until=0"
                " WHERE correlation_id=? AND status='pending'",
                (1 if attempted else 0, error[:500], time.time() + delay_seconds, correlation_id),
            )

    def purge_delivered(self, older_than_seconds: float = DELIVERED_KEEP_SECONDS) -> int:
        with self._connect() as db:
            cursor = db.execute(
                "DELETE FROM outbox WHERE status='delivered' AND delivered_at<?", (time.time() - older_than_seconds,)
            )
            return cursor.rowcount

    # -- reading ------------------------------------------------------------
    def pending(self, requester_email: Optional[str] = None) -> List[OutboxEntry]:
        """Entries not yet delivered (newest first), optionally for one leader."""
        sql = ("SELECT correlation_id, correlation_display, requester_email, request_type, topic,"
               " short_description, payload, attempts, created_at, last_error FROM outbox WHERE status='pending'")
        args: tuple = ()
        if requester_email is not None:
            sql += " AND requester_email=?"
            args = (requester_email,)
        with self._connect() as db:
            rows = db.execute(sql + " ORDER BY created_at DESC", args).fetchall()
        return [OutboxEntry(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8], r[9]) for r in rows]

    def count_pending(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM outbox WHERE status='pending'").fetchone()[0]

    def receipt(self, correlation_id: str) -> Optional[Dict[str, Any]]:
        with self._connect() as db:
            row = db.execute(
                "SELECT status, number, sys_id, attempts FROM outbox WHERE correlation_id=?", (correlation_id,)
            ).fetchone()
        if row is None:
            return None
        return {"status": row[0], "number": row[1], "sys_id": row[2], "attempts": row[3]}


def retry_delay(attempts: int, interval_seconds: float) -> float:
    """Per-entry backoff: interval, 2x, 4x, ... capped at 15 minutes."""
    return min(interval_seconds * (2 ** min(max(attempts, 0), 10)), MAX_RETRY_DELAY_SECONDS)


def deliver_due(outbox: Outbox, client, interval_seconds: float, limit: int = 50) -> DeliveryReport:
    """Deliver the entries that are due. Stops early when ServiceNow is unavailable."""
    from actions.servicenow_client import ServiceNowAuthError, ServiceNowError, ServiceNowUnavailable

    report = DeliveryReport()
    lease = client.max_operation_seconds() + 30
    entries = outbox.claim_due(limit, lease)
    for index, entry in enumerate(entries):
        try:
            result = client.create_record(entry.record, lookup_first=True)
        except ServiceNowError as exc:
            report.failed += 1
            outbox.release(entry.correlation_id, str(exc), retry_delay(entry.attempts, interval_seconds))
            if isinstance(exc, (ServiceNowUnavailable, ServiceNowAuthError)):
                for later in entries[index + 1:]:  # do not hammer a system that is down
                    outbox.release(later.correlation_id, "ikke forsøgt: ServiceNow svarer ikke",
                                   retry_delay(later.attempts, interval_seconds), attempted=False)
                break
            log.error("Udbakke: %s (%s) kunne ikke leveres: %s", entry.correlation_display, entry.correlation_id, exc)
        except Exception as exc:  # never lose an entry to a bug: release it and go on
            report.failed += 1
            log.exception("Udbakke: uventet fejl for %s", entry.correlation_id)
            outbox.release(entry.correlation_id, f"uventet fejl: {exc}", retry_delay(entry.attempts, interval_seconds))
        else:
            report.delivered += 1
            outbox.mark_delivered(entry.correlation_id, result.get("number", ""), result.get("sys_id", ""))
            log.info("Udbakke: %s oprettet i ServiceNow som %s", entry.correlation_display, result.get("number"))
    report.remaining = outbox.count_pending()
    return report


def run_worker(stop: threading.Event, settings=None, client=None, outbox: Optional[Outbox] = None) -> None:
    """The delivery loop: runs until ``stop`` is set."""
    from actions.servicenow_client import ServiceNowClient
    from actions.settings import get_settings

    settings = settings or get_settings()
    client = client or ServiceNowClient(settings)
    outbox = outbox or Outbox(settings.outbox_path)
    last_purge = 0.0
    while not stop.is_set():
        try:
            report = deliver_due(outbox, client, settings.outbox_interval_seconds)
            if report.delivered or report.failed:
                log.info("Udbakke: %d leveret, %d fejlede, %d venter", report.delivered, report.failed,
                         report.remaining)
            if time.time() - last_purge > 3600:
                outbox.purge_delivered()
                last_purge = time.time()
        except Exception:
            log.exception("Udbakke: fejl i leveringsløkken")
        stop.wait(settings.outbox_interval_seconds)


def main() -> int:
    from actions.settings import ConfigError, get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = get_settings()
    except ConfigError as exc:
        print(f"Konfigurationsfejl: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    outbox = Outbox(settings.outbox_path)
    print(
        f"Udbakken leverer til ServiceNow ({settings.servicenow_url or 'SERVICENOW_URL er ikke sat'}) "
        f"med {settings.outbox_interval_seconds:g} sekunders mellemrum fra {settings.outbox_path}; "
        f"{outbox.count_pending()} henvendelser venter.",
        flush=True,
    )
    run_worker(stop, settings=settings, outbox=outbox)
    print("Udbakken er stoppet.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
