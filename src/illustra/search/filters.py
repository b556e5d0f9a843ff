"""Metadata filters, evaluated column-wise on the memory-mapped Arrow table.

A filter produces a boolean mask over dataset rows; the search service maps it to vector positions
and searches only those, so ``k`` filtered results come back even when the filter is selective.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import BadInput

# Fields that are never exact-match filters (free text or internal).
NOT_FILTERABLE = {"id", "image", "image_path", "title", "description", "keywords", "source_url", "year"}


@dataclass
class Filters:
    year_from: int | None = None
    year_to: int | None = None
    fields: dict[str, str] = field(default_factory=dict)  # exact match (case-insensitive)
    title_contains: str | None = None
    exclude_ids: frozenset[str] = frozenset()
    # With a year range: keep items whose date is unknown too (by default a range leaves them out).
    include_undated: bool = False

    def has_years(self) -> bool:
        return self.year_from is not None or self.year_to is not None

    def excluding(self, ids: frozenset[str] | set[str]) -> Filters:
        return replace(self, fields=dict(self.fields), exclude_ids=self.exclude_ids | frozenset(ids))

    def is_empty(self) -> bool:
        return (
            self.year_from is None
            and self.year_to is None
            and not self.fields
            and not self.title_contains
            and not self.exclude_ids
        )

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.year_from is not None:
            out["year_from"] = self.year_from
        if self.year_to is not None:
            out["year_to"] = self.year_to
        out.update(self.fields)
        if self.title_contains:
            out["title_contains"] = self.title_contains
        if self.include_undated and self.has_years():
            out["include_undated"] = True
        return out


UNKNOWN_YEAR = -(2**31)  # stands for a missing year: outside every range


class FilterEngine:
    """Computes row masks for one collection's table, caching the columns it reads."""

    def __init__(self, table: pa.Table, filterable: list[str]) -> None:
        self.table = table
        self.filterable = filterable
        self._year: np.ndarray | None = None
        self._lower: dict[str, pa.Array] = {}

    def validate(self, f: Filters) -> None:
        for name in f.fields:
            if name not in self.filterable:
                raise BadInput(
                    f"cannot filter on {name!r}; filterable fields: {', '.join(self.filterable) or 'none'}"
                )
        if f.year_from is not None and f.year_to is not None and f.year_from > f.year_to:
            raise BadInput(f"year_from ({f.year_from}) is after year_to ({f.year_to})")

    def year(self) -> np.ndarray:
        if self._year is None:
            col = self.table.column("year")
            # Unknown years become a sentinel outside every range.
            self._year = col.fill_null(UNKNOWN_YEAR).to_numpy().astype(np.int64)
        return self._year

    def _lowered(self, name: str) -> pa.Array:
        if name not in self._lower:
            col = self.table.column(name).combine_chunks()
            self._lower[name] = pc.utf8_lower(col.cast(pa.string()))
        return self._lower[name]

    def mask(self, f: Filters, id_to_row: Any = None) -> np.ndarray | None:
        """Boolean mask over rows, or None when nothing is filtered."""
        return self.mask_and_undated(f, id_to_row)[0]

    def mask_and_undated(self, f: Filters, id_to_row: Any = None) -> tuple[np.ndarray | None, int | None]:
        """The mask over rows (None: nothing filtered) and, with a year range that leaves undated
        items out, how many undated items the other filters would have kept (else None)."""
        if f.is_empty():
            return None, None
        self.validate(f)
        m = np.ones(self.table.num_rows, dtype=bool)
        for name, value in f.fields.items():
            eq = pc.equal(self._lowered(name), value.strip().lower())
            m &= eq.fill_null(False).to_numpy(zero_copy_only=False)
        if f.title_contains:
            hit = pc.match_substring(self._lowered("title"), f.title_contains.strip().lower())
            m &= hit.fill_null(False).to_numpy(zero_copy_only=False)
        if f.exclude_ids and id_to_row is not None:
            for item_id in f.exclude_ids:
                row = id_to_row(item_id)
                if row is not None:
                    m[row] = False
        if not f.has_years():
            return m, None
        y = self.year()
        undated = y == UNKNOWN_YEAR
        in_range = ~undated
        if f.year_from is not None:
            in_range &= y >= f.year_from
        if f.year_to is not None:
            in_range &= y <= f.year_to
        if f.include_undated:
            return m & (in_range | undated), None
        return m & in_range, int(np.count_nonzero(m & undated))
