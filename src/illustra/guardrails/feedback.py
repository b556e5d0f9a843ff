""" "Report this result": reports and owner-hidden items in ``<collection>/feedback.sqlite``.

Each call opens its own short-lived connection, so the store is safe to use from the API's worker
threads and from the CLI at the same time (SQLite serialises the writers). The rollback journal
(not WAL) is used on purpose: every committed write changes the main file's modification time,
which is what ``Guardrails.hidden_ids`` checks to know when to re-read the hidden list.
"""

from __future__ import annotations

import builtins
import csv
import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ..collection import now_iso
from ..errors import BadInput
from ..sqlite_store import connect

FILENAME = "feedback.sqlite"
MAX_QUERY_CHARS = 1000
MAX_REASON_CHARS = 2000
MAX_ID_CHARS = 1000
# Reasons offered in the web form; free text is accepted too.
REASONS = ("offensive or harmful", "wrong or misleading description", "privacy concern", "other")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id TEXT NOT NULL,
    query TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_item ON reports(item_id);
CREATE TABLE IF NOT EXISTS hidden (
    item_id TEXT PRIMARY KEY,
    hidden_at TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT ''
);
"""

EXPORT_COLUMNS = ["id", "item_id", "query", "reason", "created", "hidden"]


def _clean(value: str | None, name: str, limit: int, *, required: bool = False) -> str:
    text = " ".join((value or "").split())
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        # A lone surrogate cannot be stored as UTF-8 text.
        raise BadInput(f"the {name} is not valid Unicode text (it holds a lone surrogate)")
    if required and not text:
        raise BadInput(f"the {name} is required")
    if len(text) > limit:
        raise BadInput(f"the {name} is {len(text)} characters; the limit is {limit}")
    return text


class FeedbackStore:
    def __init__(self, collection_root: str | Path) -> None:
        self.root = Path(collection_root)
        self.path = self.root / FILENAME

    def _connect(self, *, write: bool) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self.root, self.path, _SCHEMA, write=write)

    # -- reports ---------------------------------------------------------------------------
    def add(self, item_id: str, query: str | None, reason: str) -> int:
        """Record a report; returns its number."""
        item = _clean(item_id, "item id", MAX_ID_CHARS, required=True)
        q = _clean(query, "query", MAX_QUERY_CHARS)
        r = _clean(reason, "reason", MAX_REASON_CHARS, required=True)
        with self._connect(write=True) as conn:
            cur = conn.execute(
                "INSERT INTO reports(item_id, query, reason, created) VALUES (?, ?, ?, ?)",
                (item, q, r, now_iso()),
            )
            return int(cur.lastrowid or 0)

    def list(self, item_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Reports, newest first, each with whether its item is hidden now."""
        sql = (
            "SELECT r.id, r.item_id, r.query, r.reason, r.created, (h.item_id IS NOT NULL) AS hidden "
            "FROM reports r LEFT JOIN hidden h ON h.item_id = r.item_id"
        )
        args: list[Any] = []
        if item_id is not None:
            sql += " WHERE r.item_id = ?"
            args.append(item_id)
        sql += " ORDER BY r.id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._connect(write=False) as conn:
            return [dict(row) | {"hidden": bool(row["hidden"])} for row in conn.execute(sql, args)]

    def summary(self) -> builtins.list[dict[str, Any]]:
        """One line per reported item: how many reports, the latest, and whether it is hidden."""
        sql = (
            "SELECT r.item_id, COUNT(*) AS reports, MAX(r.created) AS latest, "
            "(h.item_id IS NOT NULL) AS hidden FROM reports r LEFT JOIN hidden h ON h.item_id = r.item_id "
            "GROUP BY r.item_id ORDER BY reports DESC, latest DESC"
        )
        with self._connect(write=False) as conn:
            return [dict(row) | {"hidden": bool(row["hidden"])} for row in conn.execute(sql)]

    def export_csv(self, path: str | Path) -> int:
        """Write every report as CSV (columns ``EXPORT_COLUMNS``); returns the number of rows."""
        rows = list(reversed(self.list()))
        p = Path(path)
        try:
            with p.open("w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, fieldnames=EXPORT_COLUMNS)
                w.writeheader()
                for r in rows:
                    w.writerow({k: _csv_safe(r[k]) for k in EXPORT_COLUMNS})
        except OSError as exc:
            raise BadInput(f"cannot write {p}: {exc.strerror or exc}") from exc
        return len(rows)

    # -- hiding ----------------------------------------------------------------------------
    def hide(self, item_id: str, note: str = "") -> bool:
        """Hide an item from every search; False when it was hidden already."""
        item = _clean(item_id, "item id", MAX_ID_CHARS, required=True)
        with self._connect(write=True) as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO hidden(item_id, hidden_at, note) VALUES (?, ?, ?)",
                (item, now_iso(), _clean(note, "note", MAX_REASON_CHARS)),
            )
            return cur.rowcount > 0

    def unhide(self, item_id: str) -> bool:
        """Show a hidden item again; False when it was not hidden."""
        if not self.path.exists():
            return False
        with self._connect(write=True) as conn:
            return conn.execute("DELETE FROM hidden WHERE item_id = ?", (item_id,)).rowcount > 0

    def hidden(self) -> frozenset[str]:
        with self._connect(write=False) as conn:
            return frozenset(str(r[0]) for r in conn.execute("SELECT item_id FROM hidden"))

    def hidden_list(self) -> builtins.list[dict[str, Any]]:
        with self._connect(write=False) as conn:
            return [
                dict(r)
                for r in conn.execute("SELECT item_id, hidden_at, note FROM hidden ORDER BY hidden_at")
            ]


def _csv_safe(value: Any) -> Any:
    """Stop spreadsheet programs from running a report's text as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
