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
        self._codes: dict[str, tuple[np.ndarray, dict[str, int]]] = {}
        self._undated_rows: tuple[np.ndarray, int] | None = None

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
            self._year = col.fill_null(UNKNOWN_YEAR).to_numpy().astype(np.int32)
        return self._year

    def _lowered(self, name: str) -> pa.Array:
        if name not in self._lower:
            col = self.table.column(name).combine_chunks()
            self._lower[name] = pc.utf8_lower(col.cast(pa.string()))
        return self._lower[name]

    def _coded(self, name: str) -> tuple[np.ndarray, dict[str, int]]:
        """The lower-cased column as one small integer per row (-1: empty) and the code of each
        value: an exact-match filter then compares integers, not a million strings."""
        if name not in self._codes:
            enc = pc.dictionary_encode(self._lowered(name))
            codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
            values = {str(v): i for i, v in enumerate(enc.dictionary.to_pylist()) if v is not None}
            self._codes[name] = (codes, values)
        return self._codes[name]

    def mask(self, f: Filters, id_to_row: Any = None) -> np.ndarray | None:
        """Boolean mask over rows, or None when nothing is filtered."""
        return self.mask_and_undated(f, id_to_row)[0]

    def mask_and_undated(self, f: Filters, id_to_row: Any = None) -> tuple[np.ndarray | None, int | None]:
        """The mask over rows (None: nothing filtered) and, with a year range that leaves undated
        items out, how many undated items the other filters would have kept (else None)."""
        if f.is_empty():
            return None, None
        self.validate(f)
        # Built only when a field, title or id filter asks for it: a year range alone is one pass.
        m: np.ndarray | None = None
        for name, value in f.fields.items():
            codes, values = self._coded(name)
            code = values.get(value.strip().lower())
            eq = codes == code if code is not None else np.zeros(len(codes), dtype=bool)
            m = eq if m is None else np.logical_and(m, eq, out=m)
        if f.title_contains:
            hit = pc.match_substring(self._lowered("title"), f.title_contains.strip().lower())
            found = hit.fill_null(False).to_numpy(zero_copy_only=False)
            m = found.copy() if m is None else np.logical_and(m, found, out=m)
        if f.exclude_ids and id_to_row is not None:
            if m is None:
                m = np.ones(self.table.num_rows, dtype=bool)
            for item_id in f.exclude_ids:
                row = id_to_row(item_id)
                if row is not None:
                    m[row] = False
        if not f.has_years():
            return (m if m is not None else np.ones(self.table.num_rows, dtype=bool)), None
        y = self.year()
        # UNKNOWN_YEAR lies below every bound, so undated items fall outside the range by themselves.
        in_range = y >= max(UNKNOWN_YEAR + 1, f.year_from if f.year_from is not None else UNKNOWN_YEAR + 1)
        if f.year_to is not None:
            np.logical_and(in_range, y <= f.year_to, out=in_range)
        undated, undated_count = self._undated()
        if f.include_undated:
            np.logical_or(in_range, undated, out=in_range)
            return (in_range if m is None else np.logical_and(m, in_range, out=m)), None
        if m is None:
            return in_range, undated_count
        return np.logical_and(m, in_range, out=in_range), int(np.count_nonzero(m & undated))

    def _undated(self) -> tuple[np.ndarray, int]:
        if self._undated_rows is None:
            rows = self.year() == UNKNOWN_YEAR
            self._undated_rows = (rows, int(np.count_nonzero(rows)))
        return self._undated_rows
