"""Durable outbox for cases that could not be created in ServiceNow yet.

Every request is written here *before* the first call to ServiceNow (so not even
a crash of the action server loses it) and marked delivered once ServiceNow has
the case. The worker (``python -m af_core.outbox``) delivers what is left, every
``AF_OUTBOX_INTERVAL_SECONDS``, with the client's idempotency rules: it always
looks a request up by ``correlation_id`` before POSTing it.

Entries are *claimed* with a lease before delivery, so the action server and the
worker (or two workers) never deliver the same entry at the same time. A lease is
longer than the client's enforced deadline for one operation, and the worker claims
one entry at a time, just before it delivers it, so a lease never runs out mid-call.

States: ``pending`` (waiting; retried with backoff, and never before a ``Retry-After``
ServiceNow sent, capped at ``MAX_RETRY_DELAY_SECONDS``), ``delivered`` (only a small
receipt is kept) and ``dead``: ServiceNow rejected the request itself
(``ServiceNowRejected``, e.g. HTTP 400). A dead letter is never retried by itself and
never deleted; AF sees it in the log, with ``python -m af_core.outbox --dead`` and in
the follow-up report, and sends it again (``--requeue``) once the cause is fixed, or
marks it registered by hand (``--resolve``). See docs/servicenow.md.

Where: the SQLite file ``settings.outbox_path`` (the embedded default), or – in the
scaled deployment (``AF_TRACKER_STORE=postgres``) – the table ``af_outbox`` in the
tracker store's PostgreSQL database (``af_core/db.py``), shared by every action server
and outbox worker on any host. Claims are then row locks (``SELECT ... FOR UPDATE SKIP
LOCKED``) and conditional updates, so several workers may run: each entry is delivered
by one of them at a time.

Importing this module has no side effects (rasa-sdk imports every module in
``actions/``); the database is opened on first use.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

from af_core.db import Connection, Database, DatabaseError, SqliteDatabase, database_for

log = logging.getLogger(__name__)

MAX_RETRY_DELAY_SECONDS = 900.0  # also the cap on a Retry-After ServiceNow sends
DELIVERED_KEEP_SECONDS = 7 * 24 * 3600  # minimal receipts (no payload) for a week

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
_ENTRY_COLUMNS = ("correlation_id, correlation_display, requester_email, request_type, topic,"
                  " short_description, payload, attempts, created_at, last_error")

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
TABLES = ("outbox",)


def sqlite_database(path: Path) -> SqliteDatabase:
    return SqliteDatabase(path, TABLES, timeout=30.0, pragmas=("synchronous=FULL",))


def database_for_settings(settings: Any) -> Database:
    """The outbox's database for ``settings``: PostgreSQL in the scaled deployment."""
    return database_for(settings, settings.outbox_path, TABLES, timeout=30.0, pragmas=("synchronous=FULL",))


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
    failed: int = 0  # includes the dead letters
    remaining: int = 0
    dead: int = 0  # rejected by ServiceNow in this round: kept, not retried


def _entry(row) -> OutboxEntry:
    return OutboxEntry(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6] or "{}"),
                       row[7], row[8], row[9])


def delay_for(retry_after: Optional[float], delay_seconds: float) -> float:
    """Our own delay, but never shorter than what ServiceNow asked for (capped)."""
    if retry_after is None:
        return delay_seconds
    return max(delay_seconds, min(max(retry_after, 0.0), MAX_RETRY_DELAY_SECONDS))


class Outbox:
    def __init__(self, target: Union[Path, str, Database], clock: Callable[[], float] = time.time):
        """``target``: a SQLite file, or a ``Database`` (``Outbox.for_settings``).
        ``clock``: wall-clock seconds (tests inject one to skip long waits). Leases compare
        this clock across processes, so hosts that share a PostgreSQL outbox keep time (NTP)."""
        self.db = target if isinstance(target, Database) else sqlite_database(Path(target))
        self.path: Optional[Path] = getattr(self.db, "path", None)  # the SQLite file, if any
        self.clock = clock
        self._ready = False
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Any, clock: Callable[[], float] = time.time) -> "Outbox":
        """The outbox of ``settings``: PostgreSQL when ``settings.tracker_store == "postgres"``."""
        return cls(database_for_settings(settings), clock=clock)

    def exists(self) -> bool:
        """Whether anything was ever queued here (nothing is created to find out)."""
        return self._ready or self.db.has_table("outbox")

    def describe(self) -> str:
        return self.db.describe()

    def _ensure(self) -> None:
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self.db.ensure_schema(_SCHEMA)
                    self._ready = True

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        self._ensure()
        with self.db.connect() as db:
            yield db

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        self._ensure()
        with self.db.transaction() as db:
            yield db

    # -- writing ------------------------------------------------------------
    def add(self, record: Dict[str, Any], *, correlation_id: str, correlation_display: str, requester_email: str,
            request_type: str = "", topic: str = "", short_description: str = "",
            lease_seconds: float = 0.0) -> bool:
        """Store a request durably. With a lease, the caller delivers it first; the
        worker only picks it up when the lease runs out (or it is released).

        Returns False when an entry with this ``correlation_id`` was already there (in
        any state): then nothing is changed, and the caller must not simply POST again
        (the request may be delivered, or being delivered right now)."""
        now = self.clock()
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO outbox(correlation_id, correlation_display, requester_email, request_type,"
                " topic, short_description, payload, created_at, next_attempt_at, claimed_until)"
                " VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(correlation_id) DO NOTHING",
                (correlation_id, correlation_display, requester_email, request_type, topic, short_description,
                 json.dumps(record, ensure_ascii=False), now, now, now + lease_seconds),
            )
            return cursor.rowcount == 1

    def claim(self, correlation_id: str, lease_seconds: float) -> Optional[OutboxEntry]:
        """Claim one pending entry, due or not, if nobody holds it; None otherwise."""
        now = self.clock()
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE outbox SET claimed_until=? WHERE correlation_id=? AND status='pending' AND claimed_until<=?",
                (now + lease_seconds, correlation_id, now),
            )
            if cursor.rowcount != 1:
                return None
            row = db.execute(f"SELECT {_ENTRY_COLUMNS} FROM outbox WHERE correlation_id=?",
                             (correlation_id,)).fetchone()
        return _entry(row) if row else None

    def claim_due(self, limit: int, lease_seconds: float, exclude: Sequence[str] = ()) -> List[OutboxEntry]:
        """Atomically claim up to ``limit`` pending entries that are due and not claimed
        (leaving out the correlation ids in ``exclude``)."""
        now = self.clock()
        skip = "".join(" AND correlation_id<>?" for _ in exclude)
        # SQLite: BEGIN IMMEDIATE (one writer). PostgreSQL: the rows are locked until the
        # claim commits, and rows another worker is claiming right now are skipped.
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM outbox"
                f" WHERE status='pending' AND next_attempt_at<=? AND claimed_until<=?{skip}"
                f" ORDER BY created_at LIMIT ?{db.for_update_skip_locked}",
                (now, now, *exclude, int(limit)),
            ).fetchall()
            db.executemany(
                "UPDATE outbox SET claimed_until=? WHERE correlation_id=?",
                [(now + lease_seconds, row[0]) for row in rows],
            )
        return [_entry(r) for r in rows]

    def mark_delivered(self, correlation_id: str, number: str, sys_id: str) -> None:
        """Delivered: drop the payload (personal data), keep a small receipt."""
        with self._connect() as db:
            db.execute(
                "UPDATE outbox SET status='delivered', payload=NULL, number=?, sys_id=?, delivered_at=?,"
                " claimed_until=0, last_error='' WHERE correlation_id=?",
                (number, sys_id, self.clock(), correlation_id),
            )

    def release(self, correlation_id: str, error: str, delay_seconds: float, attempted: bool = True) -> None:
        """Delivery failed (or was not tried): try again after ``delay_seconds``."""
        with self._connect() as db:
            db.execute(
                "UPDATE outbox SET attempts=attempts+?, last_error=?, next_attempt_at=?, claimed_until=0"
                " WHERE correlation_id=? AND status='pending'",
                (1 if attempted else 0, error[:500], self.clock() + delay_seconds, correlation_id),
            )

    def postpone_due(self, error: str, delay_seconds: float) -> int:
        """Push every due, unclaimed pending entry back by ``delay_seconds`` (not attempted):
        ServiceNow is down or asked us to wait, so the rest of the round is not tried."""
        now = self.clock()
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE outbox SET last_error=?, next_attempt_at=?"
                " WHERE status='pending' AND next_attempt_at<=? AND claimed_until<=?",
                (error[:500], now + delay_seconds, now, now),
            )
            return cursor.rowcount

    def mark_dead(self, correlation_id: str, error: str) -> None:
        """ServiceNow rejected the request itself: keep everything, never retry by itself."""
        with self._connect() as db:
            db.execute(
                "UPDATE outbox SET status='dead', attempts=attempts+1, last_error=?, claimed_until=0"
                " WHERE correlation_id=? AND status='pending'",
                (error[:500], correlation_id),
            )

    def requeue_dead(self, correlation_id: Optional[str] = None) -> int:
        """Send dead letters again (all, or one): they become pending and due now."""
        sql = "UPDATE outbox SET status='pending', next_attempt_at=?, claimed_until=0 WHERE status='dead'"
        args: tuple = (self.clock(),)
        if correlation_id is not None:
            sql += " AND correlation_id=?"
            args += (correlation_id,)
        with self._connect() as db:
            return db.execute(sql, args).rowcount

    def count_delivered(self, before: float) -> int:
        """Receipts delivered before ``before`` (what ``purge_delivered`` would delete)."""
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM outbox WHERE status='delivered' AND delivered_at<?",
                                  (before,)).fetchone()[0])

    def purge_delivered(self, older_than_seconds: float = DELIVERED_KEEP_SECONDS) -> int:
        with self._connect() as db:
            cursor = db.execute(
                "DELETE FROM outbox WHERE status='delivered' AND delivered_at<?", (self.clock() - older_than_seconds,)
            )
            return cursor.rowcount

    # -- reading ------------------------------------------------------------
    def pending(self, requester_email: Optional[str] = None, include_dead: bool = False) -> List[OutboxEntry]:
        """Entries not yet delivered (newest first), optionally for one leader; with
        ``include_dead`` also the dead letters (what a leader still waits for)."""
        sql = f"SELECT {_ENTRY_COLUMNS} FROM outbox WHERE status IN (?, ?)"
        args: tuple = (PENDING, DEAD if include_dead else PENDING)
        if requester_email is not None:
            sql += " AND requester_email=?"
            args += (requester_email,)
        with self._connect() as db:
            rows = db.execute(sql + " ORDER BY created_at DESC", args).fetchall()
        return [_entry(r) for r in rows]

    def dead_letters(self) -> List[OutboxEntry]:
        """Requests ServiceNow rejected, oldest first."""
        with self._connect() as db:
            rows = db.execute(f"SELECT {_ENTRY_COLUMNS} FROM outbox WHERE status='dead' ORDER BY created_at",
                              ()).fetchall()
        return [_entry(r) for r in rows]

    def find(self, reference: str, status: Optional[str] = None) -> List[OutboxEntry]:
        """Entries with this correlation id or reference (``AF-XXXXX``), newest first."""
        sql = f"SELECT {_ENTRY_COLUMNS} FROM outbox WHERE (correlation_id=? OR correlation_display=?)"
        args: tuple = (reference, reference.strip().upper())
        if status is not None:
            sql += " AND status=?"
            args += (status,)
        with self._connect() as db:
            rows = db.execute(sql + " ORDER BY created_at DESC", args).fetchall()
        return [_entry(r) for r in rows]

    def count_pending(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM outbox WHERE status='pending'").fetchone()[0]

    def count_dead(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM outbox WHERE status='dead'").fetchone()[0]

    def import_from(self, other: "Outbox") -> int:
        """Copy the requests ``other`` has not delivered (pending and dead) into this outbox, e.g.
        from a single host's SQLite file into PostgreSQL when moving to the scaled deployment.
        Requests already here are left alone, so it can be run again. Returns how many were copied."""
        if not other.exists():
            return 0
        columns = ("correlation_id, correlation_display, requester_email, request_type, topic, short_description,"
                   " payload, status, attempts, created_at, next_attempt_at, last_error")
        with other._connect() as source:
            rows = source.execute(f"SELECT {columns} FROM outbox WHERE status IN (?, ?) ORDER BY created_at",
                                  (PENDING, DEAD)).fetchall()
        copied = 0
        with self._connect() as db:
            for row in rows:
                copied += db.execute(
                    f"INSERT INTO outbox({columns}, claimed_until) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,0)"
                    " ON CONFLICT(correlation_id) DO NOTHING", tuple(row),
                ).rowcount
        return copied

    def missing_from(self, other: "Outbox") -> int:
        """How many of ``other``'s undelivered requests are not in this outbox (nothing is created)."""
        if not other.exists() or other.db.key == self.db.key:
            return 0
        waiting = [entry.correlation_id for entry in other.pending(include_dead=True)]
        return sum(1 for cid in waiting if self.receipt(cid) is None)

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
    """Deliver the entries that are due, one claim at a time. Stops early when ServiceNow
    is unavailable (and then leaves the rest of the round for later)."""
    from af_core.servicenow_client import (
        ServiceNowAuthError,
        ServiceNowError,
        ServiceNowRejected,
        ServiceNowUnavailable,
    )

    report = DeliveryReport()
    lease = client.max_operation_seconds() + 30
    tried: List[str] = []  # each entry at most once per round
    for _ in range(max(int(limit), 0)):
        claimed = outbox.claim_due(1, lease, exclude=tried)
        if not claimed:
            break
        entry = claimed[0]
        tried.append(entry.correlation_id)
        try:
            result = client.create_record(entry.record, lookup_first=True)
        except ServiceNowRejected as exc:
            report.failed += 1
            report.dead += 1
            outbox.mark_dead(entry.correlation_id, rejection_text(exc))
            log_dead_letter(entry.correlation_display, entry.correlation_id, exc)
        except ServiceNowError as exc:
            report.failed += 1
            stop = isinstance(exc, (ServiceNowUnavailable, ServiceNowAuthError))
            if stop:  # do not hammer a system that is down, or that asked us to wait
                outbox.postpone_due("ikke forsøgt: ServiceNow svarer ikke",
                                    delay_for(exc.retry_after, interval_seconds))
            delay = delay_for(exc.retry_after, retry_delay(entry.attempts, interval_seconds))
            outbox.release(entry.correlation_id, str(exc), delay)
            if stop:
                break
            log.error("Udbakke: %s (%s) kunne ikke leveres: %s", entry.correlation_display, entry.correlation_id, exc)
        except Exception as exc:  # never lose an entry to a bug: release it and go on
            report.failed += 1
            log.exception("Udbakke: uventet fejl for %s", entry.correlation_id)
            outbox.release(entry.correlation_id, f"uventet fejl: {exc}", retry_delay(entry.attempts, interval_seconds))
        else:
            report.delivered += 1
            number = mark_delivered_checked(outbox, entry.correlation_id, entry.correlation_display, result)
            log.info("Udbakke: %s oprettet i ServiceNow som %s", entry.correlation_display, number)
    report.remaining = outbox.count_pending()
    return report


def rejection_text(exc) -> str:
    """What AF reads about a rejection: the status and ServiceNow's own words."""
    detail = f" ({exc.detail})" if getattr(exc, "detail", None) else ""
    return f"HTTP {exc.status}: {exc}{detail}"


def log_dead_letter(display: str, correlation_id: str, exc) -> None:
    log.error(
        "Udbakke: ServiceNow afviste henvendelsen %s (%s): %s. Den sendes ikke igen af sig selv og "
        "ligger i udbakken som afvist. Se den med 'python -m af_core.outbox --dead' (docs/servicenow.md).",
        display, correlation_id, rejection_text(exc),
    )


def mark_delivered_checked(outbox: Outbox, correlation_id: str, display: str, result: Dict[str, Any]) -> str:
    """Store the receipt, keeping only a case number and sys_id in their exact form.
    Returns the stored number ('' when ServiceNow's was malformed)."""
    from af_core.servicenow_client import is_case_number, is_sys_id

    number, sys_id = result.get("number", ""), result.get("sys_id", "")
    if not is_case_number(number):
        log.error("Udbakke: ServiceNow oprettede %s (%s), men sagsnummeret har en ukendt form: %r. "
                  "Lederen får referencen %s.", display, correlation_id, str(number)[:40], display)
        number = ""
    outbox.mark_delivered(correlation_id, number, sys_id if is_sys_id(sys_id) else "")
    return number


def run_worker(stop: threading.Event, settings=None, client=None, outbox: Optional[Outbox] = None) -> None:
    """The delivery loop: runs until ``stop`` is set."""
    from af_core.servicenow_client import ServiceNowClient
    from af_core.settings import get_settings

    settings = settings or get_settings()
    client = client or ServiceNowClient(settings)
    outbox = outbox or Outbox.for_settings(settings)
    last_purge = 0.0
    while not stop.is_set():
        try:
            report = deliver_due(outbox, client, settings.outbox_interval_seconds)
            if report.delivered or report.failed:
                log.info("Udbakke: %d leveret, %d fejlede (%d afvist), %d venter", report.delivered,
                         report.failed, report.dead, report.remaining)
            if outbox.clock() - last_purge > 3600:
                outbox.purge_delivered()
                last_purge = outbox.clock()
        except Exception:
            log.exception("Udbakke: fejl i leveringsløkken")
        stop.wait(settings.outbox_interval_seconds)


def _printable(value: Any) -> str:
    """Text for the terminal: no control characters (escape sequences) from a request."""
    return "".join(ch if ch.isprintable() else " " for ch in str(value))


def _time_text(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def print_dead_letters(outbox: Outbox) -> None:
    dead = outbox.dead_letters()
    if not dead:
        print("Ingen afviste henvendelser i udbakken.")
        return
    print(f"{len(dead)} henvendelse(r) er afvist af ServiceNow og venter på AF:")
    for entry in dead:
        print(f"\n{entry.correlation_display}  modtaget {_time_text(entry.created_at)}  "
              f"({_printable(entry.request_type or '?')}, {_printable(entry.topic or '?')})")
        print(f"  Leder: {_printable(entry.record.get('u_requester_name', ''))} <{_printable(entry.requester_email)}>, "
              f"{_printable(entry.record.get('u_institution', ''))}")
        print(f"  Titel: {_printable(entry.short_description)}")
        print(f"  ServiceNow svarede: {_printable(entry.last_error)}")
        description = str(entry.record.get("description", "")).strip()
        if description:
            print("  Beskrivelse:")
            for line in description.splitlines():
                print(f"    {_printable(line)}")
    print("\nNår årsagen er rettet: python -m af_core.outbox --requeue AF-XXXXX (eller --requeue alle).")
    print("Har AF oprettet sagen i hånden: python -m af_core.outbox --resolve AF-XXXXX AFH0001234.")


def _one_dead(outbox: Outbox, reference: str) -> Optional[OutboxEntry]:
    found = outbox.find(reference, status=DEAD)
    if len(found) != 1:
        print(f"Fandt {'ingen' if not found else 'flere'} afviste henvendelser med referencen {reference}.",
              file=sys.stderr)
        return None
    return found[0]


def main(argv: Optional[Sequence[str]] = None, settings=None) -> int:
    from af_core.settings import ConfigError, get_settings

    parser = argparse.ArgumentParser(
        prog="python -m af_core.outbox",
        description="Udbakken: leverer henvendelser til ServiceNow. Uden tilvalg kører den, til den stoppes.",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--dead", action="store_true", help="vis henvendelser, som ServiceNow har afvist, og stop")
    group.add_argument("--requeue", metavar="REFERENCE",
                       help="send en afvist henvendelse (AF-XXXXX, eller 'alle') igen, når årsagen er rettet")
    group.add_argument("--resolve", nargs=2, metavar=("REFERENCE", "SAGSNUMMER"),
                       help="AF har oprettet den afviste henvendelse i hånden som SAGSNUMMER (fx AFH0001234)")
    group.add_argument("--check", action="store_true",
                       help="tjek at udbakkens database svarer, og stop (til sundhedstjek)")
    group.add_argument("--import-sqlite", nargs="?", const="", metavar="FIL",
                       help="flyt ikke-leverede henvendelser fra en SQLite-udbakke (standard: AF_OUTBOX_PATH) "
                            "til PostgreSQL ved skift til den skalerede opsætning")
    args = parser.parse_args(argv)

    if settings is None:
        try:
            settings = get_settings()
        except ConfigError as exc:
            print(f"Konfigurationsfejl: {exc}", file=sys.stderr)
            return 2
    from af_core.logsetup import configure_logging

    configure_logging(settings, "outbox")  # logs/outbox.log, or masked JSON on stdout in a container
    try:
        return _command(args, settings, Outbox.for_settings(settings))
    except DatabaseError as exc:
        print(f"Udbakken kan ikke nås: {exc}", file=sys.stderr)
        return 1


def _command(args, settings, outbox: Outbox) -> int:
    from af_core.servicenow_client import is_case_number

    if args.check:
        print(f"Udbakken svarer ({outbox.describe()}): {outbox.count_pending()} henvendelser venter.")
        return 0
    if args.import_sqlite is not None:
        source = Outbox(Path(args.import_sqlite) if args.import_sqlite else settings.outbox_path)
        if source.db.key == outbox.db.key:
            print("Udbakken er allerede SQLite-filen; der er intet at flytte. --import-sqlite bruges, når "
                  "AF_TRACKER_STORE=postgres.", file=sys.stderr)
            return 2
        if not source.exists():
            print(f"Der er ingen udbakke i {source.describe()}.", file=sys.stderr)
            return 1
        copied = outbox.import_from(source)
        print(f"{copied} ikke-leverede henvendelse(r) flyttet fra {source.describe()} til {outbox.describe()} "
              "(dem, der allerede var der, er ikke rørt). Når udbakken har leveret dem, kan filen slettes.")
        return 0
    if args.dead:
        print_dead_letters(outbox)
        return 0
    if args.requeue:
        if args.requeue.strip().lower() in ("alle", "all"):
            count = outbox.requeue_dead()
        else:
            entry = _one_dead(outbox, args.requeue)
            if entry is None:
                return 1
            count = outbox.requeue_dead(entry.correlation_id)
        print(f"{count} afvist(e) henvendelse(r) sendes igen ved udbakkens næste runde.")
        return 0
    if args.resolve:
        reference, number = args.resolve
        if not is_case_number(number):
            print(f"{number!r} er ikke et sagsnummer (AFH og 7 cifre, fx AFH0001234).", file=sys.stderr)
            return 2
        entry = _one_dead(outbox, reference)
        if entry is None:
            return 1
        outbox.mark_delivered(entry.correlation_id, number, "")
        print(f"{entry.correlation_display} er registreret som {number}; indholdet er slettet fra udbakken.")
        return 0

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    left_behind = outbox.missing_from(Outbox(settings.outbox_path)) if outbox.path is None else 0
    if left_behind:
        print(f"ADVARSEL: {left_behind} ikke-leverede henvendelse(r) ligger stadig i SQLite-filen {settings.outbox_path} "
              f"og ikke i {outbox.describe()}. Flyt dem med: python -m af_core.outbox --import-sqlite", flush=True)
    dead = outbox.count_dead()
    print(
        f"Udbakken leverer til ServiceNow ({settings.servicenow_url or 'SERVICENOW_URL er ikke sat'}) "
        f"med {settings.outbox_interval_seconds:g} sekunders mellemrum fra {outbox.describe()}; "
        f"{outbox.count_pending()} henvendelser venter."
        + (f" {dead} er afvist af ServiceNow og venter på AF (python -m af_core.outbox --dead)." if dead else ""),
        flush=True,
    )
    run_worker(stop, settings=settings, outbox=outbox)
    print("Udbakken er stoppet.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
