"""The k-nearest-neighbour graph of a picture space, kept only where neighbours are near-copies.

Near-copies sit very close together (cosine well above 0.8), so they almost always share one of
their few nearest k-means cells. The graph is built cell by cell: vectors are grouped by their
nearest centroid, and each vector is compared exactly (one matrix product per block) with the
members of its ``probe`` nearest cells. Work is about ``2 n sqrt(n probe) d`` flops: minutes at a
million 1152-d vectors on two cores, where a search per item would take hours. Only the best
``k`` neighbours of each vector at or above ``floor`` are kept.

Everything is written as it is finished, in atomic files under a work folder (centroids, the cell
assignment in chunks of rows, then the edges of each chunk of cells), so an interrupted build
resumes where it stopped; a plan file names the vectors and parameters the work belongs to.
Vectors are read from their file in blocks (``reader.py``: into buffers, not mapped), so resident
memory stays at a few hundred MB whatever the collection's size.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..collection import write_bytes_atomic, write_json_atomic
from ..vector_reader import VectorReader

# Up to this many vectors everything is compared with everything (one cell).
EXACT_MAX = 4096
ASSIGN_ROWS = 65_536  # rows per assignment chunk
QUERY_BLOCK = 2048  # rows of one score block
MEMBER_BLOCK = 8192  # columns of one score block
CHUNKS = 64  # cell chunks (units of resumable progress)
KMEANS_POINTS_PER_CELL = 20
KMEANS_ITERATIONS = 4

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class GraphPlan:
    """What a graph is built from and how; work on disk is reused only for an identical plan."""

    space: str
    count: int
    dim: int
    fingerprint: str  # size and modification time of the vectors file
    cells: int
    probe: int
    k: int
    floor: float

    @classmethod
    def make(
        cls,
        space: str,
        vectors: np.ndarray,
        fingerprint: str,
        *,
        k: int,
        floor: float,
        probe: int,
        cells: int | None = None,
    ) -> GraphPlan:
        n, d = vectors.shape
        if cells is None:
            # Balances the two costs: assigning n vectors to c cells (n c d) against comparing
            # each with the members of its probe cells (n probe n/c d).
            cells = 1 if n <= EXACT_MAX else int(round(math.sqrt(n * probe)))
        cells = max(1, min(int(cells), n))
        return cls(space, int(n), int(d), fingerprint, cells, 1 if cells == 1 else min(probe, cells), k, floor)


def fingerprint_of(vectors: np.ndarray) -> str:
    """Identifies the vectors a build read: file size and modification time of a memory-mapped
    file, else a checksum of the array."""
    name = getattr(vectors, "filename", None)
    if name:
        st = Path(name).stat()
        return f"file:{st.st_size}:{st.st_mtime_ns}"
    import hashlib

    return "sha1:" + hashlib.sha1(np.ascontiguousarray(vectors).tobytes()).hexdigest()


def _npy_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy's stubs take the keywords for options
    return buf.getvalue()


class GraphWork:
    """The work folder of one graph build."""

    def __init__(self, folder: Path, plan: GraphPlan) -> None:
        self.folder = folder
        self.plan = plan

    def open(self) -> None:
        """Keep the folder's finished work when it belongs to the same plan, else start afresh."""
        plan_file = self.folder / "plan.json"
        if plan_file.is_file():
            try:
                same = json.loads(plan_file.read_text(encoding="utf-8")) == asdict(self.plan)
            except (OSError, json.JSONDecodeError):
                same = False
            if same:
                return
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(plan_file, asdict(self.plan))

    def path(self, name: str) -> Path:
        return self.folder / name

    def save(self, name: str, **arrays: np.ndarray) -> None:
        write_bytes_atomic(self.path(name), _npy_bytes(arrays))

    def load(self, name: str) -> dict[str, np.ndarray] | None:
        p = self.path(name)
        if not p.is_file():
            return None
        with np.load(p) as z:
            return {k: z[k] for k in z.files}


def _nearest_cells(block: np.ndarray, cents: np.ndarray, probe: int) -> np.ndarray:
    """(rows, probe) most similar centroids of each row, most similar first. One matrix product
    in slices of rows (FAISS's flat search keeps a heap per row: 2-3 times slower here)."""
    out = np.empty((len(block), probe), np.int32)
    for s in range(0, len(block), QUERY_BLOCK * 4):
        sims = block[s : s + QUERY_BLOCK * 4] @ cents.T
        if probe < sims.shape[1]:
            top = np.argpartition(-sims, probe - 1, axis=1)[:, :probe]
        else:
            top = np.broadcast_to(np.arange(sims.shape[1]), sims.shape).copy()
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
        out[s : s + len(sims)] = np.take_along_axis(top, order, axis=1)
    return out


def _centroids(vectors: VectorReader, plan: GraphPlan, work: GraphWork) -> np.ndarray:
    """Spherical k-means on a sample, started from sampled vectors. The cells only route the
    comparisons (every pair inside a probed cell is compared exactly), so a few rounds do."""
    done = work.load("centroids.npz")
    if done is not None:
        return done["centroids"]
    from scipy.sparse import coo_matrix

    n = plan.count
    rng = np.random.default_rng(0)
    size = min(n, plan.cells * KMEANS_POINTS_PER_CELL)
    sample = vectors.take(np.sort(rng.choice(n, size=size, replace=False)))
    cents = sample[rng.choice(size, size=plan.cells, replace=False)].copy()
    for _ in range(KMEANS_ITERATIONS):
        nearest = _nearest_cells(sample, cents, 1)[:, 0]
        member = coo_matrix((np.ones(size, np.float32), (nearest, np.arange(size))), shape=(plan.cells, size))
        sums = np.asarray(member.tocsr() @ sample, np.float32)
        empty = np.bincount(nearest, minlength=plan.cells) == 0
        sums[empty] = cents[empty]  # a cell nothing chose keeps its centre
        cents = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    work.save("centroids.npz", centroids=cents)
    return cents


def _assignment(
    vectors: VectorReader, plan: GraphPlan, work: GraphWork, progress: Progress | None
) -> np.ndarray:
    """(n, probe) nearest cells of every vector, nearest first."""
    n = plan.count
    if plan.cells == 1:
        return np.zeros((n, 1), np.int32)
    cents = _centroids(vectors, plan, work)
    out = np.empty((n, plan.probe), np.int32)
    starts = range(0, n, ASSIGN_ROWS)
    for i, start in enumerate(starts):
        name = f"assign-{start:010d}.npz"
        got = work.load(name)
        if got is None:
            block = vectors.block(start, start + ASSIGN_ROWS)
            got = {"cells": _nearest_cells(block, cents, plan.probe)}
            work.save(name, **got)
        out[start : start + ASSIGN_ROWS] = got["cells"]
        if progress:
            progress("assigning", i + 1, len(starts))
    return out


def _top_pairs(
    scores: np.ndarray, q_pos: np.ndarray, m_pos: np.ndarray, k: int, floor: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query, member, score) of each query's best ``k`` members at or above ``floor``, itself left out."""
    above = scores >= floor
    count = int(np.count_nonzero(above))
    if count == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.float32)
    if count <= 4 * k * len(q_pos):
        qi, mi = np.nonzero(above)
    else:  # a block of many copies of one picture: cut each row to its best k + 1 first
        kk = min(k + 1, scores.shape[1])
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        qi = np.repeat(np.arange(len(q_pos)), kk)
        mi = part.ravel()
        keep = scores[qi, mi] >= floor
        qi, mi = qi[keep], mi[keep]
    a, b, s = q_pos[qi], m_pos[mi], scores[qi, mi]
    keep = a != b
    return _best_k(a[keep], b[keep], s[keep], k)


def _best_k(
    a: np.ndarray, b: np.ndarray, s: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each distinct ``a``, its ``k`` best (``b``, ``s``) (ties broken by ``b``)."""
    if len(a) == 0:
        return a, b, s
    order = np.lexsort((b, -s, a))
    a, b, s = a[order], b[order], s[order]
    first = np.r_[0, np.flatnonzero(a[1:] != a[:-1]) + 1]
    rank = np.arange(len(a)) - np.repeat(first, np.diff(np.r_[first, len(a)]))
    keep = rank < k
    return a[keep], b[keep], s[keep]


def _cell_edges(
    vectors: VectorReader, queries: np.ndarray, members: np.ndarray, k: int, floor: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    member_blocks = [members[i : i + MEMBER_BLOCK] for i in range(0, len(members), MEMBER_BLOCK)]
    member_vecs = [vectors.take(m) for m in member_blocks]
    for qs in range(0, len(queries), QUERY_BLOCK):
        q = queries[qs : qs + QUERY_BLOCK]
        qv = vectors.take(q)
        for m, mv in zip(member_blocks, member_vecs, strict=True):
            parts.append(_top_pairs(qv @ mv.T, q, m, k, floor))
    if not parts:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.float32)
    a = np.concatenate([p[0] for p in parts])
    b = np.concatenate([p[1] for p in parts])
    s = np.concatenate([p[2] for p in parts])
    return _best_k(a, b, s, k) if len(member_blocks) > 1 else (a, b, s)


def build_graph(
    vectors: np.ndarray, plan: GraphPlan, folder: Path, progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges (a, b, score) between vector positions, a < b, each pair once: the union of every
    vector's best ``plan.k`` neighbours at or above ``plan.floor``. Resumes work in ``folder``."""
    work = GraphWork(folder, plan)
    work.open()
    with VectorReader(vectors) as reader:
        return _build(reader, plan, work, progress)


def _build(
    vectors: VectorReader, plan: GraphPlan, work: GraphWork, progress: Progress | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    assign = _assignment(vectors, plan, work, progress)
    primary = assign[:, 0]
    # Cell -> its members (by nearest cell) and its queries (every vector probing it).
    member_order = np.argsort(primary, kind="stable")
    member_start = np.searchsorted(primary[member_order], np.arange(plan.cells + 1))
    flat_cells = assign.ravel()
    query_order = np.argsort(flat_cells, kind="stable") // plan.probe
    query_start = np.searchsorted(np.sort(flat_cells), np.arange(plan.cells + 1))
    per_chunk = max(1, math.ceil(plan.cells / CHUNKS))
    chunk_starts = list(range(0, plan.cells, per_chunk))
    parts: list[dict[str, np.ndarray]] = []
    for i, c0 in enumerate(chunk_starts):
        name = f"edges-{c0:07d}.npz"
        got = work.load(name)
        if got is None:
            chunk: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
            for cell in range(c0, min(plan.cells, c0 + per_chunk)):
                members = np.sort(member_order[member_start[cell] : member_start[cell + 1]])
                queries = np.sort(query_order[query_start[cell] : query_start[cell + 1]])
                if len(members) and len(queries):
                    chunk.append(_cell_edges(vectors, queries, members, plan.k, plan.floor))
            got = {
                "a": np.concatenate([c[0] for c in chunk]) if chunk else np.zeros(0, np.int64),
                "b": np.concatenate([c[1] for c in chunk]) if chunk else np.zeros(0, np.int64),
                "s": np.concatenate([c[2] for c in chunk]) if chunk else np.zeros(0, np.float32),
            }
            work.save(name, **got)
        parts.append(got)
        if progress:
            progress("comparing", i + 1, len(chunk_starts))
    a = np.concatenate([p["a"] for p in parts]).astype(np.int64)
    b = np.concatenate([p["b"] for p in parts]).astype(np.int64)
    s = np.concatenate([p["s"] for p in parts]).astype(np.float32)
    # Each vector's best k across all the cells it probed, then each pair once.
    a, b, s = _best_k(a, b, s, plan.k)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    order = np.lexsort((-s, hi, lo))
    lo, hi, s = lo[order], hi[order], s[order]
    first = np.r_[True, (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])] if len(lo) else np.zeros(0, bool)
    return lo[first], hi[first], s[first]


def plan_json(plan: GraphPlan) -> dict[str, Any]:
    return asdict(plan)
