"""The hand-over queue shared by the action server and the web server.

One small database holds the tables below: the SQLite file ``settings.handoff_db_path``
(default ``var/handoff.sqlite3``), or – in the scaled deployment
(``AF_TRACKER_STORE=postgres``) – the tracker store's PostgreSQL database, as
``af_handoffs``, ``af_sessions``, ... (``af_core/db.py``), so action servers and web
servers on different hosts share it:

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
* ``transcript_reads`` – which supporter read which hand-over's transcript, when
  and how often (never the text itself). Reads in a row are one entry with a count.
* ``login_attempts`` and ``login_nonces`` – the console's login throttling
  (reserved *before* the password is hashed, shared by every web server process)
  and the login forms already used. Both only hold the last few minutes.

At most one open hand-over per leader (verified e-mail), and per conversation.

Every state change is a single conditional ``UPDATE`` so two processes (or
two supporters) can never both take the same chat. The few multi-step checks
(``request``: one open hand-over per leader; ``reserve_login``; ``record_read``)
run in ``Database.transaction``: ``BEGIN IMMEDIATE`` on SQLite, an advisory lock
on PostgreSQL. It does not import rasa-sdk: the web server uses it too. Call the
methods from a thread (``asyncio.to_thread``) in async code.

See docs/handoff.md for the whole design.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ContextManager, Dict, List, Optional, Tuple, Union
from zoneinfo import ZoneInfo

from af_core.db import Connection, Database, SqliteDatabase, database_for

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
    resumed_at REAL,
    case_correlation TEXT,
    retry_at REAL
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
CREATE TABLE IF NOT EXISTS transcript_reads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    supporter TEXT NOT NULL,
    handoff_id INTEGER NOT NULL,
    conversation_id TEXT NOT NULL,
    first_at REAL NOT NULL,
    last_at REAL NOT NULL,
    reads INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS transcript_reads_by ON transcript_reads(supporter, handoff_id, last_at);
CREATE TABLE IF NOT EXISTS login_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    ip TEXT NOT NULL,
    username TEXT NOT NULL,
    device TEXT,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS login_attempts_at ON login_attempts(at);
CREATE INDEX IF NOT EXISTS login_attempts_ip ON login_attempts(ip, at);
CREATE INDEX IF NOT EXISTS login_attempts_user ON login_attempts(username, at);
CREATE TABLE IF NOT EXISTS login_nonces (
    nonce_hash TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
"""

# Columns added after the first release: (name, type) – added to older stores at start.
_ADDED_COLUMNS = (("resumed_at", "REAL"), ("case_correlation", "TEXT"), ("retry_at", "REAL"))
TABLES = ("handoffs", "sessions", "audit", "transcript_reads", "login_attempts", "login_nonces")


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
    # A random id per hand-over: the correlation id of its case, so a retried or doubled
    # time-out (several web servers) makes the same case in ServiceNow and the outbox.
    case_correlation: Optional[str] = None
    retry_at: Optional[float] = None

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Session:
    username: str
    display_name: str
    csrf: str
    expires_at: float


@dataclass(frozen=True)
class TranscriptRead:
    supporter: str
    handoff_id: int
    conversation_id: str
    first_at: float
    last_at: float
    reads: int


@dataclass(frozen=True)
class LoginLimits:
    """How many login attempts (failed, or still being checked) are allowed within the window.

    * ``per_device`` – from a browser that has logged in as this supporter before (signed
      cookie): it is judged only by its own attempts, so nobody else can lock it out.
    * otherwise all of: ``per_ip`` (any user names from one address), ``per_ip_user`` (one user
      name from one address) and ``per_user`` (one user name from every address together: a
      guess spread over many addresses).
    A block ends by itself when the oldest counted attempt is older than the window.
    """

    window_seconds: float = 600.0
    per_ip: int = 20
    per_ip_user: int = 5
    per_user: int = 10
    per_device: int = 5


@dataclass(frozen=True)
class LoginReservation:
    attempt_id: Optional[int]
    refused: Optional[str] = None  # None, "throttled" or "nonce" (the login form was used before)
    retry_after: float = 0.0


@dataclass(frozen=True)
class AuditEntry:
    at: float
    supporter: Optional[str]
    action: str
    handoff_id: Optional[int]
    conversation_id: Optional[str]
    detail: Optional[str]


def _row_to_handoff(row: Any) -> Handoff:
    return Handoff(**{key: row[key] for key in row.keys()})


def sqlite_database(path: Path) -> SqliteDatabase:
    return SqliteDatabase(path, TABLES, timeout=10.0)


def database_for_settings(settings: Any) -> Database:
    """The hand-over store's database for ``settings``: PostgreSQL in the scaled deployment."""
    return database_for(settings, settings.handoff_db_path, TABLES, timeout=10.0)


class HandoffStore:
    def __init__(self, target: Union[Path, str, Database]) -> None:
        """``target``: a SQLite file, or a ``Database`` (``database_for_settings``). The tables are
        created if they are not there yet."""
        self.db = target if isinstance(target, Database) else sqlite_database(Path(target))
        self.path: Optional[Path] = getattr(self.db, "path", None)  # the SQLite file, if any
        self.db.ensure_schema(_SCHEMA, {"handoffs": _ADDED_COLUMNS})

    @classmethod
    def for_settings(cls, settings: Any) -> "HandoffStore":
        return cls(database_for_settings(settings))

    def _db(self) -> ContextManager[Connection]:
        return self.db.connect()

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
        """Queue the conversation; (the open hand-over, whether it is new).

        One open hand-over per conversation and per leader: when the same leader (verified
        e-mail) already waits or chats in another conversation (another window), that one is
        returned – check ``conversation_id`` – and nothing new is queued."""
        now = time.time() if now is None else now
        email = (leader_email or "").strip().lower() or None
        with self.db.transaction(lock="handoff_request") as db:
            row = db.execute(
                "SELECT * FROM handoffs WHERE conversation_id = ? AND status IN ('waiting', 'active')",
                (conversation_id,),
            ).fetchone()
            if row is None and email:
                row = db.execute(
                    "SELECT * FROM handoffs WHERE status IN ('waiting', 'active') AND LOWER(leader_email) = ?"
                    " ORDER BY id LIMIT 1",
                    (email,),
                ).fetchone()
            created = row is None
            if created:
                new_id = db.insert(
                    "INSERT INTO handoffs (conversation_id, status, leader_name, leader_email,"
                    " leader_institution, leader_unit, topic, requested_at, deadline_at, case_correlation)"
                    " VALUES (?, 'waiting', ?, ?, ?, ?, ?, ?, ?, ?)",
                    (conversation_id, leader_name, email, leader_institution, leader_unit, topic,
                     now, now + wait_seconds, uuid.uuid4().hex),
                )
                row = db.execute("SELECT * FROM handoffs WHERE id = ?", (new_id,)).fetchone()
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

    def claim_not_resumed(self, older_than: float, now: Optional[float] = None) -> List[Handoff]:
        """Like ``not_resumed``, but each is handed to one caller per ``older_than`` seconds (``retry_at``),
        so two web servers do not retry the same conversation at the same time."""
        now = time.time() if now is None else now
        claimed: List[Handoff] = []
        with self._db() as db:
            rows = db.execute(
                "SELECT id FROM handoffs WHERE status IN ('returned', 'closed', 'timed_out') AND resumed_at IS NULL"
                " AND COALESCE(retry_at, ended_at) <= ? ORDER BY ended_at",
                (now - older_than,),
            ).fetchall()
            for (handoff_id,) in rows:
                cursor = db.execute(
                    "UPDATE handoffs SET retry_at = ? WHERE id = ? AND resumed_at IS NULL"
                    " AND COALESCE(retry_at, ended_at) <= ?",
                    (now, handoff_id, now - older_than),
                )
                if cursor.rowcount == 1:
                    row = db.execute("SELECT * FROM handoffs WHERE id = ?", (handoff_id,)).fetchone()
                    claimed.append(_row_to_handoff(row))
        return claimed

    def case_correlation(self, handoff_id: int) -> str:
        """The hand-over's case correlation id (made now for rows from before the column existed)."""
        with self._db() as db:
            db.execute("UPDATE handoffs SET case_correlation = ? WHERE id = ? AND case_correlation IS NULL",
                       (uuid.uuid4().hex, handoff_id))
            row = db.execute("SELECT case_correlation FROM handoffs WHERE id = ?", (handoff_id,)).fetchone()
        if row is None:
            raise KeyError(handoff_id)
        return row[0]

    def recent_timeout_cases(self, leader_email: str, since: float, exclude_id: Optional[int] = None) -> List[str]:
        """Case references of this leader's time-outs ("ønsker at blive kontaktet") since ``since``, newest first."""
        email = (leader_email or "").strip().lower()
        if not email:
            return []
        with self._db() as db:
            rows = db.execute(
                "SELECT case_reference FROM handoffs WHERE status = 'timed_out' AND case_reference IS NOT NULL"
                " AND LOWER(leader_email) = ? AND ended_at >= ? AND id <> ? ORDER BY ended_at DESC, id DESC",
                (email, since, -1 if exclude_id is None else exclude_id),
            ).fetchall()
        seen: List[str] = []
        for (reference,) in rows:
            if reference not in seen:
                seen.append(reference)
        return seen

    def set_case_reference(self, handoff_id: int, reference: str) -> None:
        with self._db() as db:
            db.execute("UPDATE handoffs SET case_reference = ? WHERE id = ?", (reference, handoff_id))

    def set_deadline(self, handoff_id: int, deadline_at: float) -> None:
        """Move a waiting hand-over's deadline (operators; tests use it to let time pass)."""
        with self._db() as db:
            db.execute("UPDATE handoffs SET deadline_at = ? WHERE id = ? AND status = 'waiting'",
                       (deadline_at, handoff_id))

    def count_purgeable(self, before: float) -> int:
        """How many ended hand-overs ``purge(before)`` would delete."""
        with self._db() as db:
            return int(db.execute(
                "SELECT COUNT(*) FROM handoffs WHERE status NOT IN ('waiting', 'active')"
                " AND COALESCE(ended_at, requested_at) < ?", (before,)).fetchone()[0])

    def purge(self, before: float) -> int:
        """Delete ended hand-overs (they hold the leader's name, e-mail and words) and audit entries
        older than ``before``; for the retention job. Returns the number of hand-overs deleted."""
        with self._db() as db:
            cursor = db.execute(
                "DELETE FROM handoffs WHERE status NOT IN ('waiting', 'active') AND COALESCE(ended_at, requested_at) < ?",
                (before,),
            )
            db.execute("DELETE FROM audit WHERE at < ?", (before,))
            db.execute("DELETE FROM transcript_reads WHERE last_at < ?", (before,))
            db.execute("DELETE FROM sessions WHERE expires_at < ?", (before,))
            db.execute("DELETE FROM login_attempts WHERE at < ?", (before,))
            db.execute("DELETE FROM login_nonces WHERE expires_at < ?", (before,))
        return cursor.rowcount

    # -- console sessions and presence -------------------------------------------
    def create_session(self, sid_hash: str, username: str, display_name: str, csrf: str,
                       expires_at: float, now: Optional[float] = None, present: bool = True) -> None:
        """A console session. ``present``: it counts as a supporter on duty (not for a trainer
        who only uses the workbench: leaders must not be queued for nobody)."""
        now = time.time() if now is None else now
        with self._db() as db:
            db.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
            db.execute(
                "INSERT INTO sessions (sid_hash, username, display_name, csrf, created_at, expires_at, last_seen)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (sid_hash, username, display_name, csrf, now, expires_at, now if present else 0.0),
            )

    def touch_session(self, sid_hash: str, now: Optional[float] = None, present: bool = True) -> Optional[Session]:
        """The live session (and, when ``present``, mark the supporter present), or None when
        unknown or expired."""
        now = time.time() if now is None else now
        with self._db() as db:
            row = db.execute("SELECT * FROM sessions WHERE sid_hash = ?", (sid_hash,)).fetchone()
            if row is None:
                return None
            if row["expires_at"] <= now:
                db.execute("DELETE FROM sessions WHERE sid_hash = ?", (sid_hash,))
                return None
            if present:
                db.execute("UPDATE sessions SET last_seen = ? WHERE sid_hash = ?", (now, sid_hash))
        return Session(row["username"], row["display_name"], row["csrf"], row["expires_at"])

    def delete_session(self, sid_hash: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM sessions WHERE sid_hash = ?", (sid_hash,))

    def delete_sessions_for(self, username: str) -> int:
        """End every session of a supporter (removed from the supporters file); how many."""
        with self._db() as db:
            return db.execute("DELETE FROM sessions WHERE username = ?", (username,)).rowcount

    # -- login throttling ------------------------------------------------------------
    def reserve_login(self, *, ip: str, username: str, device: Optional[str], nonce_hash: str,
                      nonce_expires_at: float, limits: LoginLimits = LoginLimits(),
                      now: Optional[float] = None) -> LoginReservation:
        """Count a login attempt *before* its password is checked, and use up its login form.

        One transaction, so parallel attempts are counted one by one: when the limits are reached
        the attempt is refused (``throttled``, with the seconds until it may be tried again) without
        a hash; a login form (nonce) seen before is refused (``nonce``). Otherwise the attempt is
        stored as ``pending`` until ``finish_login``. Rows older than the window are deleted here,
        so the tables stay small."""
        now = time.time() if now is None else now
        since = now - limits.window_seconds
        if device:
            checks = [("device = ?", (device,), limits.per_device)]
        else:
            checks = [
                ("ip = ? AND device IS NULL", (ip,), limits.per_ip),
                ("ip = ? AND username = ? AND device IS NULL", (ip, username), limits.per_ip_user),
                ("username = ? AND device IS NULL", (username,), limits.per_user),
            ]
        # One lock for every reservation: the limits span addresses and user names, and a login
        # is rare enough that the web servers taking turns for a few milliseconds costs nothing.
        with self.db.transaction(lock="login_reservation") as db:
            db.execute("DELETE FROM login_attempts WHERE at < ?", (since,))
            db.execute("DELETE FROM login_nonces WHERE expires_at <= ?", (now,))
            retry_after: Optional[float] = None
            for where, params, limit in checks:
                rows = db.execute(
                    f"SELECT at FROM login_attempts WHERE {where} AND outcome <> 'ok' AND at >= ?"
                    " ORDER BY at DESC LIMIT ?",
                    (*params, since, limit),
                ).fetchall()
                if len(rows) >= limit:
                    # free again when the limit-th newest counted attempt leaves the window
                    wait = max(1.0, rows[-1][0] + limits.window_seconds - now)
                    retry_after = max(retry_after or 0.0, wait)
            if retry_after is not None:
                reservation = LoginReservation(None, "throttled", retry_after)
            elif db.execute("SELECT 1 FROM login_nonces WHERE nonce_hash = ?", (nonce_hash,)).fetchone():
                reservation = LoginReservation(None, "nonce")
            else:
                db.execute("INSERT INTO login_nonces (nonce_hash, expires_at) VALUES (?, ?)",
                           (nonce_hash, nonce_expires_at))
                attempt_id = db.insert(
                    "INSERT INTO login_attempts (at, ip, username, device, outcome) VALUES (?, ?, ?, ?, 'pending')",
                    (now, ip, username, device),
                )
                reservation = LoginReservation(attempt_id)
        return reservation

    def finish_login(self, attempt_id: int, ok: bool) -> None:
        """The password was checked. A right one no longer counts, and clears that browser's or
        address's earlier failures for the user name; a wrong one keeps counting until it ages out."""
        with self._db() as db:
            row = db.execute("SELECT ip, username, device FROM login_attempts WHERE id = ?", (attempt_id,)).fetchone()
            if row is None:
                return
            db.execute("UPDATE login_attempts SET outcome = ? WHERE id = ?", ("ok" if ok else "failed", attempt_id))
            if ok:
                if row["device"]:
                    db.execute("DELETE FROM login_attempts WHERE device = ? AND outcome = 'failed'", (row["device"],))
                else:
                    db.execute(
                        "DELETE FROM login_attempts WHERE ip = ? AND username = ? AND device IS NULL"
                        " AND outcome = 'failed'",
                        (row["ip"], row["username"]),
                    )

    def cancel_login(self, attempt_id: int) -> None:
        """The attempt was never checked (too many hashes at once): it does not count."""
        with self._db() as db:
            db.execute("DELETE FROM login_attempts WHERE id = ?", (attempt_id,))

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

    def record_read(self, supporter: str, handoff: Handoff, now: Optional[float] = None,
                    coalesce_seconds: float = 300.0) -> None:
        """A supporter read a hand-over's transcript. The console polls while a chat is open, so reads
        by the same supporter of the same chat with less than ``coalesce_seconds`` between them are one
        entry (first and last time, and how many reads)."""
        now = time.time() if now is None else now
        with self.db.transaction(lock=f"transcript_read:{supporter}:{handoff.id}") as db:
            cursor = db.execute(
                "UPDATE transcript_reads SET last_at = ?, reads = reads + 1 WHERE id = ("
                "SELECT id FROM transcript_reads WHERE supporter = ? AND handoff_id = ? AND last_at >= ?"
                " ORDER BY id DESC LIMIT 1)",
                (now, supporter, handoff.id, now - coalesce_seconds),
            )
            if cursor.rowcount == 0:
                db.execute(
                    "INSERT INTO transcript_reads (supporter, handoff_id, conversation_id, first_at, last_at, reads)"
                    " VALUES (?, ?, ?, ?, ?, 1)",
                    (supporter, handoff.id, handoff.conversation_id, now, now),
                )

    def transcript_reads(self, limit: int = 100, handoff_id: Optional[int] = None) -> List[TranscriptRead]:
        """Who read which transcript, the latest first."""
        where, params = ("WHERE handoff_id = ?", (handoff_id,)) if handoff_id is not None else ("", ())
        with self._db() as db:
            rows = db.execute(
                "SELECT supporter, handoff_id, conversation_id, first_at, last_at, reads FROM transcript_reads"
                f" {where} ORDER BY last_at DESC, id DESC LIMIT ?",
                (*params, max(1, min(int(limit), 10000))),
            ).fetchall()
        return [TranscriptRead(*tuple(r)) for r in rows]


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
    """The process-wide store for ``settings`` (default: this process's settings): the SQLite
    file, or PostgreSQL when ``settings.tracker_store == "postgres"``."""
    if settings is None:
        from af_core.settings import get_settings

        settings = get_settings()
    database = database_for_settings(settings)
    if database.key not in _stores:
        _stores[database.key] = HandoffStore(database)
    return _stores[database.key]
