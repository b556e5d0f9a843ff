"""Near-duplicate clusters: the connected groups of the graph's edges at a threshold.

Stored as one file, ``duplicates/clusters.npz`` in the collection, written atomically (readers see
the previous build or the new one, never a part). Clusters are numbered by size, largest first;
items in no cluster have cluster -1.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..collection import write_bytes_atomic


@dataclass
class Clusters:
    cluster_of: np.ndarray  # (collection rows,) int32: each row's cluster, -1 for none
    members: np.ndarray  # rows of every cluster, cluster by cluster, ascending within one
    starts: np.ndarray  # (clusters + 1,) offsets into members
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.starts) - 1

    def of_row(self, row: int) -> int:
        return int(self.cluster_of[row]) if 0 <= row < len(self.cluster_of) else -1

    def rows_of(self, cluster: int) -> np.ndarray:
        return self.members[self.starts[cluster] : self.starts[cluster + 1]]

    def size(self, cluster: int) -> int:
        return int(self.starts[cluster + 1] - self.starts[cluster])

    def sizes(self) -> np.ndarray:
        return np.diff(self.starts)

    def with_min_size(self, min_size: int) -> np.ndarray:
        """Cluster numbers of at least ``min_size`` items (they are numbered largest first)."""
        return np.flatnonzero(self.sizes() >= min_size)

    def keys_for(self, n: int) -> np.ndarray:
        """``cluster_of`` for a collection of ``n`` rows (rows added since the build: -1)."""
        if len(self.cluster_of) >= n:
            return self.cluster_of[:n]
        return np.concatenate([self.cluster_of, np.full(n - len(self.cluster_of), -1, np.int32)])


def connected(n: int, a: np.ndarray, b: np.ndarray) -> Clusters:
    """Clusters of ``n`` rows joined by the edges (a, b): groups of two or more, largest first."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(a) == 0:
        return Clusters(np.full(n, -1, np.int32), np.zeros(0, np.int64), np.zeros(1, np.int64))
    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n)).tocsr()
    _, label = connected_components(graph, directed=False)
    counts = np.bincount(label)
    in_group = counts[label] >= 2
    rows = np.flatnonzero(in_group)
    labels = label[rows]
    # Number groups by size (largest first), then by their first row.
    firsts = np.full(len(counts), n, np.int64)
    np.minimum.at(firsts, labels, rows)
    group_ids = np.unique(labels)
    order = group_ids[np.lexsort((firsts[group_ids], -counts[group_ids]))]
    number = np.full(len(counts), -1, np.int64)
    number[order] = np.arange(len(order))
    cluster_of = np.full(n, -1, np.int32)
    cluster_of[rows] = number[labels]
    members = rows[np.lexsort((rows, number[labels]))]
    starts = np.r_[0, np.cumsum(counts[order])].astype(np.int64)
    return Clusters(cluster_of, members.astype(np.int64), starts)


def save(path: Path, clusters: Clusters) -> None:
    buf = io.BytesIO()
    np.savez(
        buf,
        cluster_of=clusters.cluster_of,
        members=clusters.members,
        starts=clusters.starts,
        meta=np.array(json.dumps(clusters.meta)),
    )
    write_bytes_atomic(path, buf.getvalue())


def load(path: Path) -> Clusters:
    with np.load(path) as z:
        return Clusters(
            z["cluster_of"].astype(np.int32),
            z["members"].astype(np.int64),
            z["starts"].astype(np.int64),
            json.loads(str(z["meta"])),
        )
