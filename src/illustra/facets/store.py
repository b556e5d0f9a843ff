"""Saved facets in ``<collection>/facets.sqlite``: each a plain name and its examples.

Like the feedback store, every call opens its own short-lived connection (safe from the API's
worker threads and the CLI at once; SQLite serialises the writers), and reading never creates the
file. Names are unique without regard to case, so "Ships" and "ships" cannot both exist.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..collection import now_iso
from ..sqlite_store import connect
from .definition import FacetDefinition, FacetExists, FacetNotFound, check_name

FILENAME = "facets.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS facets (
    name TEXT PRIMARY KEY COLLATE NOCASE,
    positives TEXT NOT NULL,
    negatives TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class SavedFacet:
    name: str
    definition: FacetDefinition
    created: str
    updated: str

    def to_json(self) -> dict[str, Any]:
        d = self.definition
        return {
            "name": self.name,
            "positive": list(d.positives),
            "negative": list(d.negatives),
            "created": self.created,
            "updated": self.updated,
        }


class FacetStore:
    def __init__(self, collection_root: str | Path) -> None:
        self.root = Path(collection_root)
        self.path = self.root / FILENAME

    def _connect(self, *, write: bool) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self.root, self.path, _SCHEMA, write=write)

    @staticmethod
    def _facet(row: sqlite3.Row) -> SavedFacet:
        d = FacetDefinition(tuple(json.loads(row["positives"])), tuple(json.loads(row["negatives"])))
        return SavedFacet(row["name"], d, row["created"], row["updated"])

    def create(self, name: str, definition: FacetDefinition) -> SavedFacet:
        name = check_name(name)
        now = now_iso()
        with self._connect(write=True) as conn:
            taken = conn.execute("SELECT name FROM facets WHERE name = ?", (name,)).fetchone()
            if taken is not None:
                raise FacetExists(f"a facet named {taken['name']!r} exists already; choose another name or change it")
            conn.execute(
                "INSERT INTO facets (name, positives, negatives, created, updated) VALUES (?, ?, ?, ?, ?)",
                (name, json.dumps(definition.positives), json.dumps(definition.negatives), now, now),
            )
        return SavedFacet(name, definition, now, now)

    def check_free(self, name: str) -> None:
        """``FacetExists`` when a facet of this name (in any case) is saved."""
        with self._connect(write=False) as conn:
            taken = conn.execute("SELECT name FROM facets WHERE name = ?", (name,)).fetchone()
        if taken is not None:
            raise FacetExists(f"a facet named {taken['name']!r} exists already; choose another name or change it")

    def get(self, name: str) -> SavedFacet:
        with self._connect(write=False) as conn:
            row = conn.execute("SELECT * FROM facets WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise FacetNotFound(f"no facet named {name[:64]!r} is saved")
        return self._facet(row)

    def list(self) -> list[SavedFacet]:
        with self._connect(write=False) as conn:
            rows = conn.execute("SELECT * FROM facets ORDER BY name COLLATE NOCASE").fetchall()
        return [self._facet(r) for r in rows]

    def replace(self, name: str, definition: FacetDefinition) -> SavedFacet:
        """Store new examples for an existing facet."""
        self.get(name)  # an unknown name creates no file
        now = now_iso()
        with self._connect(write=True) as conn:
            done = conn.execute(
                "UPDATE facets SET positives = ?, negatives = ?, updated = ? WHERE name = ?",
                (json.dumps(definition.positives), json.dumps(definition.negatives), now, name),
            )
            if done.rowcount == 0:
                raise FacetNotFound(f"no facet named {name[:64]!r}")
            row = conn.execute("SELECT * FROM facets WHERE name = ?", (name,)).fetchone()
        return self._facet(row)

    def delete(self, name: str) -> None:
        self.get(name)  # an unknown name creates no file
        with self._connect(write=True) as conn:
            if conn.execute("DELETE FROM facets WHERE name = ?", (name,)).rowcount == 0:
                raise FacetNotFound(f"no facet named {name[:64]!r}")
