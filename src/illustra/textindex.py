"""Metadata text index for hybrid search (keyword BM25 + semantic text vectors)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .collection import Collection


class TextIndex:
    """Ranks dataset rows by how well their catalogue text matches a query."""

    def rank(self, query: str, n: int, allowed_rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, dict[int, Any]]:
        """Top ``n`` (scores, rows, per-row match details) for ``query`` among ``allowed_rows``."""
        raise NotImplementedError


def load_text_index(collection: Collection) -> TextIndex | None:
    """The collection's text index, or None when it has none."""
    return None
