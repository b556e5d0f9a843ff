"""What the CLI and the API say about clusters: their members, the books they span, and one
item's near-copies with their exact similarity."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from ..collection import Collection
from ..embedding_store import EmbeddingStore
from .build import picture_vectors
from .clusters import Clusters

BOOK_FIELD = "book_identifier"
CSV_COLUMNS = ["cluster", "size", "books", "id", "book_identifier", "title", "year"]


def column_values(collection: Collection, name: str, rows: np.ndarray) -> list[Any]:
    """Values of one metadata column at ``rows`` (None where the collection has no such column)."""
    table = collection.dataset.data
    if name not in table.column_names or len(rows) == 0:
        return [None] * len(rows)
    return table.column(name).take(np.asarray(rows, np.int64)).to_pylist()


def book_count(collection: Collection, rows: np.ndarray) -> int:
    """Distinct books among ``rows`` (items with no book identifier count as their own)."""
    books = column_values(collection, BOOK_FIELD, rows)
    named = {str(b).strip() for b in books if b is not None and str(b).strip()}
    return len(named) + sum(1 for b in books if b is None or not str(b).strip())


def cluster_entry(collection: Collection, clusters: Clusters, cluster: int, max_items: int) -> dict[str, Any]:
    rows = clusters.rows_of(cluster)
    shown = rows[:max_items]
    ids = collection.ids[shown].tolist()
    titles = column_values(collection, "title", shown)
    books = column_values(collection, BOOK_FIELD, shown)
    return {
        "cluster": int(cluster),
        "size": int(len(rows)),
        "books": book_count(collection, rows),
        "items": [
            {"id": str(i), "title": t, BOOK_FIELD: b} for i, t, b in zip(ids, titles, books, strict=True)
        ],
    }


def iter_clusters(clusters: Clusters, min_size: int) -> Iterator[int]:
    yield from (int(c) for c in clusters.with_min_size(min_size))


def write_csv(collection: Collection, clusters: Clusters, out: IO[str], min_size: int = 2) -> int:
    """One line per clustered item; returns the number of clusters written."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    n = 0
    for c in iter_clusters(clusters, min_size):
        rows = clusters.rows_of(c)
        books = book_count(collection, rows)
        ids = collection.ids[rows].tolist()
        cols = [column_values(collection, f, rows) for f in (BOOK_FIELD, "title", "year")]
        for i, item_id in enumerate(ids):
            writer.writerow([c, len(rows), books, item_id, *["" if v[i] is None else v[i] for v in cols]])
        n += 1
    return n


def near_copies(collection: Collection, clusters: Clusters, row: int) -> tuple[int, np.ndarray, np.ndarray]:
    """(cluster, other rows, their cosine with ``row``), most similar first; (-1, [], []) when the
    item is in no cluster. Similarities are exact, from the picture space's vectors."""
    cluster = clusters.of_row(row)
    if cluster < 0:
        return -1, np.zeros(0, np.int64), np.zeros(0, np.float32)
    others = clusters.rows_of(cluster)
    others = others[others != row]
    space = clusters.meta.get("space")
    if space:
        store = EmbeddingStore(collection, str(space))
        vectors, vrows = store.vectors(), store.rows()
    else:
        _, vectors, vrows = picture_vectors(collection)
    wanted = np.r_[row, others]
    pos = np.asarray(np.clip(np.searchsorted(vrows, wanted), 0, len(vrows) - 1), np.int64)
    found = vrows[pos] == wanted
    scores = np.full(len(others), np.nan, np.float32)
    if found[0]:
        q = np.asarray(vectors[pos[0]], np.float32)
        ok = found[1:]
        scores[ok] = np.asarray(vectors[pos[1:][ok]], np.float32) @ q
    order = np.lexsort((others, -np.nan_to_num(scores, nan=-2.0)))
    return cluster, others[order], scores[order]
