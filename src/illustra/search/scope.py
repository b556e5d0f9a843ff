"""What one query may return, handed to a vector backend.

A local backend (FAISS) ranks within a boolean row mask; a remote one (Milvus) turns the filters
into its own expression and never needs the mask. So the mask is computed only when something
asks for it (a local ranking, the catalogue-text ranking of hybrid mode, or the count of undated
items a year range leaves out), and at most once per query.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .filters import FilterEngine, Filters


class Scope:
    """The filters of one query (the owner's hidden items already excluded), or a ready row mask."""

    def __init__(
        self,
        filters: Filters | None,
        engine: FilterEngine | None = None,
        row_of: Callable[[str], int | None] | None = None,
        *,
        mask: np.ndarray | None = None,
    ) -> None:
        self.filters = filters
        self._engine = engine
        self._row_of = row_of
        self._computed: tuple[np.ndarray | None, int | None] | None = None
        if filters is None:
            self._computed = (mask, None)
        elif engine is not None:
            engine.validate(filters)  # a field that is not filterable fails now, whatever the backend

    @classmethod
    def of_mask(cls, mask: np.ndarray | None) -> Scope:
        """A scope given as a row mask over the collection (None: every row)."""
        return cls(None, mask=mask)

    def _compute(self) -> tuple[np.ndarray | None, int | None]:
        if self._computed is None:
            assert self.filters is not None and self._engine is not None
            self._computed = self._engine.mask_and_undated(self.filters, self._row_of)
        return self._computed

    def mask(self) -> np.ndarray | None:
        """Rows allowed, as a boolean mask over the collection (None: every row)."""
        return self._compute()[0]

    def undated(self) -> int | None:
        """With a year range that leaves undated items out: how many the other filters would have
        kept (else None, without computing anything)."""
        f = self.filters
        if f is None or not f.has_years() or f.include_undated:
            return None
        return self._compute()[1]

    def excluded_rows(self) -> list[int]:
        """Rows of the excluded ids (hidden items, the item of "more like this"), sorted."""
        if self.filters is None or self._row_of is None:
            return []
        rows = (self._row_of(i) for i in self.filters.exclude_ids)
        return sorted({r for r in rows if r is not None})
