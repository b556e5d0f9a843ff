"""What the filter controls offer: each filterable field's distinct values when there are few.

Computed once per server from the memory-mapped Arrow columns (a vectorised ``unique``), so a
million-row collection costs well under a second at start-up, not per request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..collection import CORE_FIELDS

# Up to this many distinct values a field is offered as a select; above it, as free text.
SELECT_MAX_VALUES = 40
# Fields offered as free-text filters on the page even with many values (all stay usable in URLs).
TEXT_FILTERS_ON_PAGE = [f for f in CORE_FIELDS if f not in ("date", "source_url")]


@dataclass(frozen=True)
class Facet:
    name: str
    values: tuple[str, ...] | None  # None: too many to list
    present: int  # rows with a non-empty value

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "values": list(self.values) if self.values is not None else None}


class Facets:
    def __init__(self, table: pa.Table, fields: list[str]) -> None:
        self.table = table
        self.fields = fields
        self._facets: list[Facet] | None = None
        self._lock = threading.Lock()

    def all(self) -> list[Facet]:
        if self._facets is None:
            with self._lock:
                if self._facets is None:
                    self._facets = [self._facet(f) for f in self.fields]
        return self._facets

    def _facet(self, name: str) -> Facet:
        col = self.table.column(name)
        if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
            col = col.cast(pa.string())
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        trimmed = pc.utf8_trim_whitespace(col)
        present = int(pc.sum(pc.greater(pc.utf8_length(trimmed), 0)).as_py() or 0)
        uniq = pc.unique(trimmed.drop_null())
        if len(uniq) > SELECT_MAX_VALUES * 4:  # clearly high-cardinality; skip the case folding
            return Facet(name, None, present)
        by_lower: dict[str, str] = {}
        for v in uniq.to_pylist():
            if v:
                by_lower.setdefault(v.lower(), v)
        if len(by_lower) > SELECT_MAX_VALUES:
            return Facet(name, None, present)
        values = tuple(sorted(by_lower.values(), key=str.lower))
        return Facet(name, values, present)

    def for_page(self) -> list[Facet]:
        """Fields worth a control on the page: low-cardinality ones as selects, core catalogue
        fields as text boxes; fields nobody filled in are left out."""
        out = []
        for f in self.all():
            if f.present == 0 or f.name.endswith("_url"):
                continue
            if (f.values is not None and len(f.values) > 1) or f.name in TEXT_FILTERS_ON_PAGE:
                out.append(f)
        return out
