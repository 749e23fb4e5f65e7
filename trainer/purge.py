"""Delete old conversations (retention), for an operator to schedule.

    python -m trainer.purge [--days N] [--dry-run] [--db-url URL]

A conversation (all events of one sender id in Rasa's tracker store) is
deleted when its LAST event is older than ``settings.retention_days`` (default
90). A conversation that is still going on is kept whole, however old its
first message is.

What is purged:

* the tracker store (Rasa's SQLTrackerStore, table ``events``): SQLite at
  ``settings.tracker_db_path`` or PostgreSQL when ``AF_TRACKER_STORE=postgres``.
  SQLite is opened with ``secure_delete`` and vacuumed afterwards, so the
  deleted messages do not linger in free pages of the file;
* the outbox's delivered entries (receipts; the payload is already cleared on
  delivery) delivered before the limit – in the SQLite file, or in PostgreSQL
  (``af_outbox``) when ``AF_TRACKER_STORE=postgres``. Entries not yet delivered are kept:
  they are orders ServiceNow has not received. (The outbox worker itself also
  removes receipts after a week.)
* ended hand-overs to a supporter (names, e-mails, words), audit entries and
  transcript reads older than the limit, in the hand-over store (SQLite, or
  PostgreSQL when ``AF_TRACKER_STORE=postgres``); waiting and active chats stay;
* our log files under ``settings.log_dir`` not written to for longer than the
  limit.

What is NOT purged: cases in ServiceNow (the municipality's case system of
record keeps them under its own retention rules), and the development
emulator's database (test data; delete ``var/`` to clear it).

Exit code 0 on success, 1 on an error (message in Danish on stderr).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Union

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from af_core.settings import ConfigError, Settings, get_settings  # noqa: E402

DAY_SECONDS = 24 * 3600
# Where `make review` writes the trainers' sheets (trainer/review.py).
REVIEW_DIR = ROOT / "review"
BATCH_SIZE = 500


@dataclass
class TrackerPurge:
    conversations: int
    events: int


def tracker_db_url(settings: Settings) -> "Union[str, object]":
    """The SQLAlchemy URL of the tracker store the Rasa server uses."""
    import sqlalchemy as sa

    if settings.tracker_store == "postgres":
        return sa.engine.URL.create(
            "postgresql",
            username=settings.postgres_user,
            password=settings.postgres_password or None,
            host=settings.postgres_host,
            port=settings.postgres_port,
            database=settings.postgres_db,
        )
    return f"sqlite:///{settings.tracker_db_path}"


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def purge_tracker_store(db_url, cutoff: float, dry_run: bool = False, vacuum: bool = True) -> TrackerPurge:
    """Delete every conversation whose last event is older than ``cutoff`` (epoch seconds)."""
    import sqlalchemy as sa

    is_sqlite = str(db_url).startswith("sqlite")
    if is_sqlite:
        path = str(db_url).split(":///", 1)[1]
        if not Path(path).exists():  # nothing stored yet; do not create an empty file
            return TrackerPurge(0, 0)
    engine = sa.create_engine(db_url, future=True)
    if is_sqlite:

        @sa.event.listens_for(engine, "connect")
        def _secure_delete(dbapi_connection, _record):  # overwrite deleted content with zeros
            dbapi_connection.execute("PRAGMA secure_delete = ON")

    try:
        if not sa.inspect(engine).has_table("events"):
            return TrackerPurge(0, 0)
        old_query = sa.text(
            "SELECT sender_id, COUNT(*) FROM events GROUP BY sender_id HAVING MAX(timestamp) < :cutoff"
        )
        with engine.connect() as conn:
            rows = conn.execute(old_query, {"cutoff": cutoff}).all()
        senders: List[str] = [row[0] for row in rows]
        if dry_run or not senders:
            return TrackerPurge(len(senders), sum(row[1] for row in rows))
        # The NOT IN guard keeps a conversation that got a new event after we
        # listed it (a leader came back between the SELECT and the DELETE).
        delete = sa.text(
            "DELETE FROM events WHERE sender_id IN :senders AND sender_id NOT IN "
            "(SELECT sender_id FROM events WHERE timestamp >= :cutoff)"
        ).bindparams(sa.bindparam("senders", expanding=True))
        count_gone = sa.text(
            "SELECT COUNT(DISTINCT sender_id) FROM events WHERE sender_id IN :senders"
        ).bindparams(sa.bindparam("senders", expanding=True))
        events = conversations = 0
        for chunk in _chunks(senders, BATCH_SIZE):
            with engine.begin() as conn:
                result = conn.execute(delete, {"senders": list(chunk), "cutoff": cutoff})
                events += result.rowcount or 0
                conversations += len(chunk) - conn.execute(count_gone, {"senders": list(chunk)}).scalar_one()
        if is_sqlite and vacuum:
            try:
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(sa.text("VACUUM"))
            except sa.exc.OperationalError as exc:  # the Rasa server holds a write lock right now
                print(f"Advarsel: VACUUM kunne ikke køre ({exc.orig}); prøv igen senere.", file=sys.stderr)
        return TrackerPurge(conversations, events)
    finally:
        engine.dispose()


def purge_outbox(settings: Settings, cutoff: float, dry_run: bool, now: Optional[float] = None) -> int:
    """Delivered outbox entries (receipts without payload) delivered before ``cutoff``, in the
    outbox the action servers use (SQLite, or PostgreSQL in the scaled deployment).

    Entries not yet delivered are kept: they are orders ServiceNow has not got.
    """
    from af_core.outbox import Outbox

    outbox = Outbox.for_settings(settings)
    if not outbox.exists():  # no outbox yet; do not create one
        return 0
    if dry_run:
        return outbox.count_delivered(cutoff)
    now = time.time() if now is None else now
    return int(outbox.purge_delivered(older_than_seconds=max(0.0, now - cutoff)))


def purge_handoffs(settings: Settings, cutoff: float, dry_run: bool) -> int:
    """Ended hand-overs to a supporter (names, e-mails, words) and old audit entries, in the
    store the web servers use (SQLite, or PostgreSQL in the scaled deployment)."""
    from af_core.handoff_store import database_for_settings, get_store

    if not database_for_settings(settings).has_table("handoffs"):  # nothing yet; do not create it
        return 0
    store = get_store(settings)
    return store.count_purgeable(cutoff) if dry_run else int(store.purge(cutoff))


def purge_logs(log_dir: Path, cutoff: float, dry_run: bool) -> int:
    """Log files (and rotated log files) not modified since ``cutoff``."""
    if not log_dir.is_dir():
        return 0
    gone = 0
    for path in sorted(log_dir.iterdir()):
        if not path.is_file() or ".log" not in path.name:
            continue
        if path.stat().st_mtime < cutoff:
            gone += 1
            if not dry_run:
                path.unlink()
    return gone


def purge_review_files(review_dir: Path, cutoff: float, dry_run: bool) -> int:
    """The trainers' review sheets (leaders' messages, masked) not modified since ``cutoff``."""
    if not review_dir.is_dir():
        return 0
    gone = 0
    for path in sorted(review_dir.iterdir()):
        if path.is_file() and path.suffix.lower() in {".csv", ".yml", ".yaml", ".xlsx"} and path.stat().st_mtime < cutoff:
            gone += 1
            if not dry_run:
                path.unlink()
    return gone


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def main(argv: Optional[Sequence[str]] = None, settings: Optional[Settings] = None, now: Optional[float] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make purge",
        description="Sletter samtaler, leverede outbox-poster og logfiler, der er ældre end opbevaringsfristen.",
    )
    parser.add_argument("--days", type=int, default=None, help="opbevaringsfrist i dage (standard: AF_RETENTION_DAYS)")
    parser.add_argument("--dry-run", action="store_true", help="vis kun, hvad der ville blive slettet")
    parser.add_argument("--db-url", default=None, help="SQLAlchemy-URL til tracker store (standard: fra indstillingerne)")
    parser.add_argument("--no-logs", action="store_true", help="rør ikke logfilerne")
    parser.add_argument("--review-dir", type=Path, default=None,
                        help="mappen med trænernes gennemgangsark (standard: review/)")
    args = parser.parse_args(argv)
    try:
        settings = settings or get_settings()
    except ConfigError as exc:
        print(f"FEJL i konfigurationen: {exc}", file=sys.stderr)
        return 1
    days = settings.retention_days if args.days is None else args.days
    if days < 1:
        print("FEJL: --days skal være mindst 1", file=sys.stderr)
        return 1
    now = time.time() if now is None else now
    cutoff = now - days * DAY_SECONDS
    verb = "ville blive slettet" if args.dry_run else "slettet"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(cutoff))
    print(f"Opbevaringsfrist: {_n(days, 'dag', 'dage')} (alt med sidste aktivitet før {when}).")
    try:
        tracker = purge_tracker_store(args.db_url or tracker_db_url(settings), cutoff, dry_run=args.dry_run)
        print(f"Tracker store: {_n(tracker.conversations, 'samtale', 'samtaler')} "
              f"({_n(tracker.events, 'hændelse', 'hændelser')}) {verb}.")
        outbox = purge_outbox(settings, cutoff, args.dry_run, now=now)
        print(f"Udbakke: {_n(outbox, 'leveret post', 'leverede poster')} {verb} (ikke-leverede bestillinger bliver).")
        handoffs = purge_handoffs(settings, cutoff, args.dry_run)
        print(f"Overdragelser til medarbejdere: {_n(handoffs, 'afsluttet samtale', 'afsluttede samtaler')} {verb}.")
        review = purge_review_files(args.review_dir or REVIEW_DIR, cutoff, args.dry_run)
        print(f"Gennemgangsark til trænerne: {_n(review, 'fil', 'filer')} {verb}.")
        if not args.no_logs:
            print(f"Logfiler: {_n(purge_logs(settings.log_dir, cutoff, args.dry_run), 'fil', 'filer')} {verb}.")
    except Exception as exc:  # an operator's cron job: one clear line, non-zero exit
        print(f"FEJL under oprydningen: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("ServiceNow: sagerne bliver i ServiceNow og følger kommunens egne slettefrister.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
