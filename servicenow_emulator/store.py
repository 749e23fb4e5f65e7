"""SQLite persistence for the emulator: records, numbers, journal entries."""
from __future__ import annotations

import json
import secrets
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional

# The case type from docs/servicenow.md. Fields not listed here are ignored on
# insert/update and dropped from queries, as ServiceNow does for unknown fields.
CASE_FIELDS = (
    "number",
    "sys_id",
    "short_description",
    "description",
    "u_request_type",
    "u_topic",
    "urgency",
    "u_meeting_channel",
    "u_preferred_time",
    "opened_by",
    "u_requester_email",
    "u_requester_name",
    "u_institution",
    "assignment_group",
    "contact_type",
    "state",
    "correlation_id",
    "correlation_display",
    "comments",
    "work_notes",
    "sys_created_on",
    "sys_updated_on",
    "sys_created_by",
    "sys_updated_by",
    "sys_mod_count",
)
JOURNAL_FIELDS = ("comments", "work_notes")
READ_ONLY_FIELDS = (
    "number",
    "sys_id",
    "sys_created_on",
    "sys_updated_on",
    "sys_created_by",
    "sys_updated_by",
    "sys_mod_count",
)
DEFAULTS = {"state": "1", "urgency": "3", "contact_type": ""}
NUMBER_PREFIX = "AFH"
FIRST_NUMBER = 1001

_JOURNAL_LABEL = {"comments": "Additional comments", "work_notes": "Work notes"}


class DuplicateCorrelationId(Exception):
    """An insert would create a second record with the same correlation_id."""


def now_text() -> str:
    """ServiceNow's date-time format (UTC): ``2026-11-30 09:00:00``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS records (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                table_name TEXT NOT NULL,
                sys_id TEXT NOT NULL UNIQUE,
                correlation_id TEXT NOT NULL DEFAULT '',
                hidden INTEGER NOT NULL DEFAULT 0,
                data TEXT NOT NULL,
                journal TEXT NOT NULL DEFAULT '[]'
            );
            CREATE INDEX IF NOT EXISTS records_table ON records(table_name, seq);
            CREATE TABLE IF NOT EXISTS counters (table_name TEXT PRIMARY KEY, next INTEGER NOT NULL);
            """
        )

    def close(self) -> None:
        self._db.close()

    # -- helpers ----------------------------------------------------------
    @staticmethod
    def _view(data: Dict[str, str], journal: List[Dict[str, str]]) -> Dict[str, str]:
        record = dict(data)
        for name in JOURNAL_FIELDS:
            entries = [e for e in reversed(journal) if e["field"] == name]
            record[name] = "".join(
                f"{e['created_on']} - {e['created_by']} ({_JOURNAL_LABEL[name]})\n{e['value']}\n\n"
                for e in entries
            )
        return record

    def _next_number(self, table: str) -> str:
        row = self._db.execute("SELECT next FROM counters WHERE table_name=?", (table,)).fetchone()
        value = row[0] if row else FIRST_NUMBER
        self._db.execute(
            "INSERT INTO counters(table_name, next) VALUES(?, ?) "
            "ON CONFLICT(table_name) DO UPDATE SET next=excluded.next",
            (table, value + 1),
        )
        return f"{NUMBER_PREFIX}{value:07d}"

    # -- API --------------------------------------------------------------
    def insert(self, table: str, values: Dict[str, object], user: str, unique_correlation: bool) -> Dict[str, str]:
        data = {name: "" for name in CASE_FIELDS if name not in JOURNAL_FIELDS}
        data.update(DEFAULTS)
        journal: List[Dict[str, str]] = []
        stamp = now_text()
        for name, value in values.items():
            if name not in CASE_FIELDS or name in READ_ONLY_FIELDS:
                continue
            text = "" if value is None else str(value)
            if name in JOURNAL_FIELDS:
                if text:
                    journal.append({"field": name, "value": text, "created_on": stamp, "created_by": user})
            else:
                data[name] = text
        correlation_id = data.get("correlation_id", "")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if unique_correlation and correlation_id:
                clash = self._db.execute(
                    "SELECT 1 FROM records WHERE table_name=? AND correlation_id=?", (table, correlation_id)
                ).fetchone()
                if clash:
                    raise DuplicateCorrelationId(correlation_id)
            data.update(
                number=self._next_number(table),
                sys_id=secrets.token_hex(16),
                sys_created_on=stamp,
                sys_updated_on=stamp,
                sys_created_by=user,
                sys_updated_by=user,
                sys_mod_count="0",
            )
            self._db.execute(
                "INSERT INTO records(table_name, sys_id, correlation_id, data, journal) VALUES(?,?,?,?,?)",
                (table, data["sys_id"], correlation_id, json.dumps(data), json.dumps(journal)),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return self._view(data, journal)

    def get(self, table: str, sys_id: str, include_hidden: bool = False) -> Optional[Dict[str, str]]:
        row = self._db.execute(
            "SELECT data, journal, hidden FROM records WHERE table_name=? AND sys_id=?", (table, sys_id)
        ).fetchone()
        if not row or (row[2] and not include_hidden):
            return None
        return self._view(json.loads(row[0]), json.loads(row[1]))

    def all(self, table: Optional[str] = None, include_hidden: bool = False) -> List[Dict[str, str]]:
        sql = "SELECT data, journal, hidden, table_name FROM records"
        args: tuple = ()
        if table is not None:
            sql += " WHERE table_name=?"
            args = (table,)
        rows = self._db.execute(sql + " ORDER BY seq", args).fetchall()
        return [self._view(json.loads(r[0]), json.loads(r[1])) for r in rows if include_hidden or not r[2]]

    def update(self, table: str, sys_id: str, values: Dict[str, object], user: str) -> Optional[Dict[str, str]]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute(
                "SELECT data, journal, hidden FROM records WHERE table_name=? AND sys_id=?", (table, sys_id)
            ).fetchone()
            if not row or row[2]:
                self._db.execute("ROLLBACK")
                return None
            data, journal = json.loads(row[0]), json.loads(row[1])
            stamp = now_text()
            for name, value in values.items():
                if name not in CASE_FIELDS or name in READ_ONLY_FIELDS:
                    continue
                text = "" if value is None else str(value)
                if name in JOURNAL_FIELDS:
                    if text:
                        journal.append({"field": name, "value": text, "created_on": stamp, "created_by": user})
                else:
                    data[name] = text
            data["sys_updated_on"] = stamp
            data["sys_updated_by"] = user
            data["sys_mod_count"] = str(int(data.get("sys_mod_count") or 0) + 1)
            self._db.execute(
                "UPDATE records SET data=?, journal=?, correlation_id=? WHERE table_name=? AND sys_id=?",
                (json.dumps(data), json.dumps(journal), data.get("correlation_id", ""), table, sys_id),
            )
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        return self._view(data, journal)

    def set_hidden(self, sys_id: str, hidden: bool) -> bool:
        cursor = self._db.execute("UPDATE records SET hidden=? WHERE sys_id=?", (1 if hidden else 0, sys_id))
        return cursor.rowcount > 0

    def clear(self) -> None:
        self._db.execute("DELETE FROM records")
        self._db.execute("DELETE FROM counters")
