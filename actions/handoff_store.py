"""The hand-over queue shared by the action server and the web server.

One small SQLite database (``settings.handoff_db_path``, default
``var/handoff.sqlite3``) holds:

* ``handoffs`` – one row per time a leader asked for a person: who the leader
  is (from the verified identity slots), what they asked about, when they
  started waiting, the deadline for a supporter to take the chat, and what
  happened (``waiting`` → ``active`` → ``returned``/``closed``, or
  ``waiting`` → ``timed_out``). At most one open (waiting/active) row per
  conversation.
* ``sessions`` – the supporter console's login sessions. A session that was
  used within ``settings.handoff_presence_seconds`` counts as a supporter
  being present (the console polls every couple of seconds while open).
* ``audit`` – who took over which conversation, and when (also logins,
  hand-backs, closes, time-outs).

Every state change is a single conditional ``UPDATE`` so two processes (or
two supporters) can never both take the same chat. It does not import
rasa-sdk: the web server uses it too. Connections are opened per call; call
the methods from a thread (``asyncio.to_thread``) in async code.

See docs/handoff.md for the whole design.
"""
from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple
from zoneinfo import ZoneInfo

WAITING, ACTIVE, RETURNED, CLOSED, TIMED_OUT = "waiting", "active", "returned", "closed", "timed_out"
OPEN_STATES = (WAITING, ACTIVE)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS handoffs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    status TEXT NOT NULL,
    leader_name TEXT,
    leader_email TEXT,
    leader_institution TEXT,
    leader_unit TEXT,
    topic TEXT,
    requested_at REAL NOT NULL,
    deadline_at REAL NOT NULL,
    taken_at REAL,
    supporter TEXT,
    supporter_name TEXT,
    ended_at REAL,
    case_reference TEXT,
    resumed_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS handoffs_one_open
    ON handoffs(conversation_id) WHERE status IN ('waiting', 'active');
CREATE INDEX IF NOT EXISTS handoffs_status ON handoffs(status, requested_at);
CREATE TABLE IF NOT EXISTS sessions (
    sid_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    display_name TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    last_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    supporter TEXT,
    action TEXT NOT NULL,
    handoff_id INTEGER,
    conversation_id TEXT,
    detail TEXT
);
"""


@dataclass(frozen=True)
class Handoff:
    id: int
    conversation_id: str
    status: str
    leader_name: Optional[str]
    leader_email: Optional[str]
    leader_institution: Optional[str]
    leader_unit: Optional[str]
    topic: Optional[str]
    requested_at: float
    deadline_at: float
    taken_at: Optional[float]
    supporter: Optional[str]
    supporter_name: Optional[str]
    ended_at: Optional[float]
    case_reference: Optional[str]
    resumed_at: Optional[float] = None

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Session:
    username: str
    display_name: str
    csrf: str
    expires_at: float


@dataclass(frozen=True)
class AuditEntry:
    at: float
    supporter: Optional[str]
    action: str
    handoff_id: Optional[int]
    conversation_id: Optional[str]
    detail: Optional[str]


def _row_to_handoff(row: sqlite3.Row) -> Handoff:
    return Handoff(**{key: row[key] for key in row.keys()})


class HandoffStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(handoffs)")}
            if "resumed_at" not in columns:  # stores created before the column existed
                db.execute("ALTER TABLE handoffs ADD COLUMN resumed_at REAL")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(str(self.path), timeout=10, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=10000")
            yield db
        finally:
            db.close()

    # -- the queue ------------------------------------------------------------
    def request(
        self,
        conversation_id: str,
        *,
        leader_name: Optional[str],
        leader_email: Optional[str],
        leader_institution: Optional[str],
        leader_unit: Optional[str],
        topic: Optional[str],
        wait_seconds: float,
        now: Optional[float] = None,
    ) -> Tuple[Handoff, bool]:
        """Queue the conversation; (the open hand-over, whether it is new)."""
        now = time.time() if now is None else now
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT * FROM handoffs WHERE conversation_id = ? AND status IN ('waiting', 'active')",
                    (conversation_id,),
                ).fetchone()
                created = row is None
                if created:
                    cursor = db.execute(
                        "INSERT INTO handoffs (conversation_id, status, leader_name, leader_email,"
                        " leader_institution, leader_unit, topic, requested_at, deadline_at)"
                        " VALUES (?, 'waiting', ?, ?, ?, ?, ?, ?, ?)",
                        (conversation_id, leader_name, leader_email, leader_institution, leader_unit, topic,
                         now, now + wait_seconds),
                    )
                    row = db.execute("SELECT * FROM handoffs WHERE id = ?", (cursor.lastrowid,)).fetchone()
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return _row_to_handoff(row), created

    def get(self, handoff_id: int) -> Optional[Handoff]:
        with self._db() as db:
            row = db.execute("SELECT * FROM handoffs WHERE id = ?", (handoff_id,)).fetchone()
        return _row_to_handoff(row) if row else None

    def open_for(self, conversation_id: str) -> Optional[Handoff]:
        with self._db() as db:
            row = db.execute(
                "SELECT * FROM handoffs WHERE conversation_id = ? AND status IN ('waiting', 'active')",
                (conversation_id,),
            ).fetchone()
        return _row_to_handoff(row) if row else None

    def position(self, handoff_id: int) -> int:
        """1 for the first in the queue; 0 when the hand-over is not waiting."""
        with self._db() as db:
            row = db.execute("SELECT status, requested_at, id FROM handoffs WHERE id = ?", (handoff_id,)).fetchone()
            if row is None or row["status"] != WAITING:
                return 0
            ahead = db.execute(
                "SELECT COUNT(*) FROM handoffs WHERE status = 'waiting' AND (requested_at < ? OR"
                " (requested_at = ? AND id < ?))",
                (row["requested_at"], row["requested_at"], row["id"]),
            ).fetchone()[0]
        return ahead + 1

    def list_open(self) -> List[Handoff]:
        """Waiting and active hand-overs, the longest-waiting first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT * FROM handoffs WHERE status IN ('waiting', 'active') ORDER BY requested_at, id"
            ).fetchall()
        return [_row_to_handoff(r) for r in rows]

    def take(self, handoff_id: int, username: str, display_name: str, now: Optional[float] = None) -> Optional[Handoff]:
        """Waiting → active for this supporter. None if someone else was quicker (or it timed out)."""
        now = time.time() if now is None else now
        with self._db() as db:
            cursor = db.execute(
                "UPDATE handoffs SET status = 'active', taken_at = ?, supporter = ?, supporter_name = ?"
                " WHERE id = ? AND status = 'waiting'",
                (now, username, display_name, handoff_id),
            )
            if cursor.rowcount != 1:
                return None
            row = db.execute("SELECT * FROM handoffs WHERE id = ?", (handoff_id,)).fetchone()
        return _row_to_handoff(row)

    def finish(self, handoff_id: int, username: str, status: str, now: Optional[float] = None) -> Optional[Handoff]:
        """Active → returned/closed, only by the supporter who has the chat."""
        if status not in (RETURNED, CLOSED):
            raise ValueError(status)
        now = time.time() if now is None else now
        with self._db() as db:
            cursor = db.execute(
                "UPDATE handoffs SET status = ?, ended_at = ? WHERE id = ? AND status = 'active' AND supporter = ?",
                (status, now, handoff_id, username),
            )
            if cursor.rowcount != 1:
                return None
            row = db.execute("SELECT * FROM handoffs WHERE id = ?", (handoff_id,)).fetchone()
        return _row_to_handoff(row)

    def claim_timed_out(self, now: Optional[float] = None) -> List[Handoff]:
        """Waiting hand-overs past their deadline, marked timed_out; each is returned to exactly one caller."""
        now = time.time() if now is None else now
        claimed: List[Handoff] = []
        with self._db() as db:
            due = db.execute(
                "SELECT id FROM handoffs WHERE status = 'waiting' AND deadline_at <= ? ORDER BY requested_at", (now,)
            ).fetchall()
            for (handoff_id,) in due:
                cursor = db.execute(
                    "UPDATE handoffs SET status = 'timed_out', ended_at = ? WHERE id = ? AND status = 'waiting'",
                    (now, handoff_id),
                )
                if cursor.rowcount == 1:
                    row = db.execute("SELECT * FROM handoffs WHERE id = ?", (handoff_id,)).fetchone()
                    claimed.append(_row_to_handoff(row))
        return claimed

    def mark_resumed(self, handoff_id: int, now: Optional[float] = None) -> None:
        """The bot answers this conversation again (Rasa confirmed the resume)."""
        now = time.time() if now is None else now
        with self._db() as db:
            db.execute("UPDATE handoffs SET resumed_at = ? WHERE id = ?", (now, handoff_id))

    def not_resumed(self, older_than: float, now: Optional[float] = None) -> List[Handoff]:
        """Ended hand-overs whose conversation is still paused because resuming failed (Rasa was away)."""
        now = time.time() if now is None else now
        with self._db() as db:
            rows = db.execute(
                "SELECT * FROM handoffs WHERE status IN ('returned', 'closed', 'timed_out') AND resumed_at IS NULL"
                " AND ended_at <= ? ORDER BY ended_at",
                (now - older_than,),
            ).fetchall()
        return [_row_to_handoff(r) for r in rows]

    def set_case_reference(self, handoff_id: int, reference: str) -> None:
        with self._db() as db:
            db.execute("UPDATE handoffs SET case_reference = ? WHERE id = ?", (reference, handoff_id))

    def set_deadline(self, handoff_id: int, deadline_at: float) -> None:
        """Move a waiting hand-over's deadline (operators; tests use it to let time pass)."""
        with self._db() as db:
            db.execute("UPDATE handoffs SET deadline_at = ? WHERE id = ? AND status = 'waiting'",
                       (deadline_at, handoff_id))

    def purge(self, before: float) -> int:
        """Delete ended hand-overs (they hold the leader's name, e-mail and words) and audit entries
        older than ``before``; for the retention job. Returns the number of hand-overs deleted."""
        with self._db() as db:
            cursor = db.execute(
                "DELETE FROM handoffs WHERE status NOT IN ('waiting', 'active') AND COALESCE(ended_at, requested_at) < ?",
                (before,),
            )
            db.execute("DELETE FROM audit WHERE at < ?", (before,))
            db.execute("DELETE FROM sessions WHERE expires_at < ?", (before,))
        return cursor.rowcount

    # -- console sessions and presence -------------------------------------------
    def create_session(self, sid_hash: str, username: str, display_name: str, csrf: str,
                       expires_at: float, now: Optional[float] = None) -> None:
        now = time.time() if now is None else now
        with self._db() as db:
            db.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
            db.execute(
                "INSERT INTO sessions (sid_hash, username, display_name, csrf, created_at, expires_at, last_seen)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (sid_hash, username, display_name, csrf, now, expires_at, now),
            )

    def touch_session(self, sid_hash: str, now: Optional[float] = None) -> Optional[Session]:
        """The live session (and mark the supporter present), or None when unknown or expired."""
        now = time.time() if now is None else now
        with self._db() as db:
            row = db.execute("SELECT * FROM sessions WHERE sid_hash = ?", (sid_hash,)).fetchone()
            if row is None:
                return None
            if row["expires_at"] <= now:
                db.execute("DELETE FROM sessions WHERE sid_hash = ?", (sid_hash,))
                return None
            db.execute("UPDATE sessions SET last_seen = ? WHERE sid_hash = ?", (now, sid_hash))
        return Session(row["username"], row["display_name"], row["csrf"], row["expires_at"])

    def delete_session(self, sid_hash: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM sessions WHERE sid_hash = ?", (sid_hash,))

    def present_supporters(self, window_seconds: float, now: Optional[float] = None) -> List[str]:
        """Usernames with a live console session used within the window."""
        now = time.time() if now is None else now
        with self._db() as db:
            rows = db.execute(
                "SELECT DISTINCT username FROM sessions WHERE expires_at > ? AND last_seen >= ? ORDER BY username",
                (now, now - window_seconds),
            ).fetchall()
        return [r[0] for r in rows]

    # -- audit log ------------------------------------------------------------------
    def audit(self, action: str, supporter: Optional[str] = None, handoff: Optional[Handoff] = None,
              detail: Optional[str] = None, now: Optional[float] = None) -> None:
        now = time.time() if now is None else now
        with self._db() as db:
            db.execute(
                "INSERT INTO audit (at, supporter, action, handoff_id, conversation_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
                (now, supporter, action, handoff.id if handoff else None,
                 handoff.conversation_id if handoff else None, detail),
            )

    def audit_entries(self, limit: int = 100) -> List[AuditEntry]:
        with self._db() as db:
            rows = db.execute(
                "SELECT at, supporter, action, handoff_id, conversation_id, detail FROM audit ORDER BY id DESC LIMIT ?",
                (max(1, min(int(limit), 1000)),),
            ).fetchall()
        return [AuditEntry(*tuple(r)) for r in rows]


# -- who is on duty -------------------------------------------------------------------
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def within_opening_hours(opening_hours: Dict[str, List[str]], timezone: str, now: Optional[float] = None) -> bool:
    """Whether ``now`` falls inside the profile's opening hours (``{"monday": ["08:00", "15:00"], ...}``)."""
    now = time.time() if now is None else now
    local = datetime.fromtimestamp(now, ZoneInfo(timezone))
    hours = opening_hours.get(_WEEKDAYS[local.weekday()])
    if not hours or len(hours) != 2:
        return False
    opens, closes = (tuple(int(part) for part in str(value).split(":")) for value in hours)
    return opens <= (local.hour, local.minute) < closes


@dataclass(frozen=True)
class Duty:
    on_duty: bool
    reason: str  # "ok" | "closed" (outside opening hours) | "nobody" (no supporter present)
    present: Tuple[str, ...] = ()


def duty_status(settings: Any, profile: Any, store: HandoffStore, now: Optional[float] = None) -> Duty:
    """Is somebody on duty: inside opening hours (unless ``handoff_opening_hours == "always"``) and a
    supporter present in the console."""
    now = time.time() if now is None else now
    if settings.handoff_opening_hours != "always" and not within_opening_hours(
        profile.opening_hours, profile.timezone, now
    ):
        return Duty(False, "closed")
    present = tuple(store.present_supporters(settings.handoff_presence_seconds, now))
    if not present:
        return Duty(False, "nobody")
    return Duty(True, "ok", present)


_stores: Dict[str, HandoffStore] = {}


def get_store(settings: Any = None) -> HandoffStore:
    """The process-wide store for ``settings`` (default: this process's settings)."""
    if settings is None:
        from actions.settings import get_settings

        settings = get_settings()
    key = str(settings.handoff_db_path)
    if key not in _stores:
        _stores[key] = HandoffStore(settings.handoff_db_path)
    return _stores[key]
