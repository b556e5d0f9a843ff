"""Names for regions of the map: the words most common in the catalogue text of the items that lie
there, and rare elsewhere (a word on every page, "plate" say, names no region).

The map is cut into grids of 2x2 up to 32x32 cells. Up to ``PER_CELL`` items of each cell of the
finest grid are read (a random sample), their words counted once, and coarser cells add up the
counts of the cells they hold. A cell's words are ranked by count x log(1 + cells / cells using the
word) at its own grid level.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

from ..collection import Collection
from .layout import NO_POSITION, SCALE

LEVELS = (2, 4, 8, 16, 32)
PER_CELL = 300
WORDS = 3
TEXT_FIELDS = ("title", "keywords", "description", "caption", "subjects")
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
STOP = frozenset(
    [
        "the", "and", "for", "with", "from", "that", "this", "into", "upon", "over", "under", "about",
        "after", "before", "between", "their", "there", "these", "those", "which", "what", "when", "where",
        "while", "his", "her", "hers", "its", "our", "your", "they", "them", "then", "than", "are", "was",
        "were", "been", "being", "have", "has", "had", "not", "but", "all", "any", "each", "other", "some",
        "such", "only", "own", "same", "very", "can", "will", "just", "also", "more", "most", "one", "two",
        "three", "first", "second", "new", "old", "der", "die", "das", "und", "von", "den", "des", "les",
        "une", "del", "della", "per", "con", "par", "sur", "dans", "est", "pour", "aux", "plate", "plates",
        "fig", "figure", "page", "vol", "volume", "part", "illustration", "illustrations", "illustrated",
        "etc", "containing", "including", "engraving", "engraved", "drawn", "drawing", "picture", "image",
        "book", "books", "edition", "printed", "published", "translated", "author", "third", "fourth",
    ]
)


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOP]


def _texts(collection: Collection, rows: np.ndarray) -> list[str]:
    table = collection.dataset.data
    parts = []
    for name in TEXT_FIELDS:
        if name in table.column_names:
            parts.append(table.column(name).take(rows).to_pylist())
    return [" ".join(str(v) for v in vals if v) for vals in zip(*parts, strict=True)] if parts else []


def region_labels(collection: Collection, x: np.ndarray, y: np.ndarray, seed: int = 0) -> list[dict[str, Any]]:
    """Labels of the regions of a layout (``x``, ``y``: quantised positions by dataset row)."""
    placed = np.flatnonzero(x != NO_POSITION)
    if len(placed) == 0:
        return []
    fine = LEVELS[-1]
    cx = np.minimum(x[placed].astype(np.int64) * fine // (SCALE + 1), fine - 1)
    cy = np.minimum(y[placed].astype(np.int64) * fine // (SCALE + 1), fine - 1)
    cell = cy * fine + cx
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(placed))
    cell_sorted = cell[order]
    # The first PER_CELL items of each cell in a random order: a sample of each.
    by_cell = np.argsort(cell_sorted, kind="stable")
    starts = np.searchsorted(cell_sorted[by_cell], np.arange(fine * fine + 1))
    sample_pos: list[np.ndarray] = []
    sample_cell: list[np.ndarray] = []
    for c0 in np.flatnonzero(np.diff(starts)).tolist():
        take = order[by_cell[starts[c0] : min(starts[c0 + 1], starts[c0] + PER_CELL)]]
        sample_pos.append(take)
        sample_cell.append(np.full(len(take), c0))
    pos = np.concatenate(sample_pos)
    cells = np.concatenate(sample_cell)
    texts = _texts(collection, placed[pos])
    counts: dict[int, Counter[str]] = {}
    for c, text in zip(cells.tolist(), texts, strict=True):
        counts.setdefault(c, Counter()).update(set(words(text)))
    totals = np.bincount(cell, minlength=fine * fine)
    sums_x = np.bincount(cell, weights=x[placed].astype(np.float64), minlength=fine * fine)
    sums_y = np.bincount(cell, weights=y[placed].astype(np.float64), minlength=fine * fine)
    out: list[dict[str, Any]] = []
    for g in LEVELS:
        f = fine // g
        merged: dict[int, Counter[str]] = {}
        n_at: dict[int, float] = {}
        sx: dict[int, float] = {}
        sy: dict[int, float] = {}
        for c in np.flatnonzero(totals).tolist():
            parent = int((c // fine // f) * g + (c % fine) // f)
            merged.setdefault(parent, Counter()).update(counts.get(c, Counter()))
            n_at[parent] = n_at.get(parent, 0) + float(totals[c])
            sx[parent] = sx.get(parent, 0) + float(sums_x[c])
            sy[parent] = sy.get(parent, 0) + float(sums_y[c])
        df: Counter[str] = Counter()
        for ctr in merged.values():
            df.update(ctr.keys())
        ncells = len(merged)
        least = max(3.0, 0.2 * len(placed) / max(1, ncells))
        for parent, ctr in merged.items():
            if n_at[parent] < least or not ctr:
                continue
            ranked = sorted(ctr.items(), key=lambda kv: (-kv[1] * np.log1p(ncells / df[kv[0]]), kv[0]))
            top = [w for w, c in ranked if c >= 2][:WORDS]
            if top:
                out.append({
                    "level": g,
                    "x": round(sx[parent] / n_at[parent] / SCALE, 4),
                    "y": round(sy[parent] / n_at[parent] / SCALE, 4),
                    "count": int(n_at[parent]),
                    "words": top,
                })
    return out
