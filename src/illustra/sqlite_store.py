"""The one way the collection's small SQLite stores (feedback, facets) open their file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import CollectionError


@contextmanager
def connect(root: Path, path: Path, schema: str, *, write: bool) -> Iterator[sqlite3.Connection]:
    """A connection to ``path`` inside the collection ``root`` with ``schema`` applied, in one
    transaction; SQLite errors become one-line ``CollectionError``s."""
    if not write and not path.exists():
        # Reading never creates the file: a read-only collection stays untouched.
        conn = sqlite3.connect(":memory:")
    else:
        if not root.is_dir():
            raise CollectionError(f"collection directory {root} does not exist")
        conn = sqlite3.connect(path, timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        conn.executescript(schema)
        with conn:
            yield conn
    except sqlite3.Error as exc:
        raise CollectionError(f"{path}: {exc}") from exc
    finally:
        conn.close()
