"""Consolidated vectors are kept once on disk: chunks are folded, later chunks merge with them, and
a consolidation killed at its commit point is finished by the next reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from illustra.collection import Collection
from illustra.embedding_store import JOURNAL, EmbeddingStore

MODEL = "vec"
DIM = 96


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def collection(root: Path, n: int) -> Collection:
    return Collection.create(root, ({"id": f"v/{i:03d}", "title": f"item {i}"} for i in range(n)), source={"kind": "test"})


def chunk_bytes(store: EmbeddingStore) -> int:
    return sum(p.stat().st_size for p in store.chunk_paths())


def test_chunks_are_folded_and_later_chunks_merge_with_the_consolidated_vectors(tmp_path: Path) -> None:
    n = 300
    vecs = unit(np.random.default_rng(0).standard_normal((n, DIM)))
    coll = collection(tmp_path / "c", n)
    store = EmbeddingStore(coll, MODEL)
    # Rows 0-199 in two chunks, with a skipped row; rows 200-299 come later.
    store.write_chunk(0, 100, np.arange(0, 99), vecs[0:99], skipped=[(99, "v/099", "truncated file")])
    store.write_chunk(100, 200, np.arange(100, 200), vecs[100:200])
    assert store.consolidate(DIM) == 199
    assert np.array_equal(store.vectors(), vecs[np.r_[0:99, 100:200]])
    # The vectors live once on disk: the chunks keep rows and the skip list only.
    assert chunk_bytes(store) < (store.dir / "vectors.npy").stat().st_size / 10
    embedded, skipped = store.done_rows()
    assert sorted(embedded.tolist()) == [*range(99), *range(100, 200)] and skipped.tolist() == [99]
    assert store.skipped() == [("v/099", "truncated file")]
    assert store.chunk_dim() == DIM

    # A later run adds rows (and the skipped row, now decodable): consolidation merges both sources.
    store.write_chunk(200, 300, np.arange(200, 300), vecs[200:300])
    store.write_chunk(0, 100, np.asarray([99]), vecs[99:100])
    assert store.consolidate(DIM) == n
    assert np.array_equal(store.vectors(), vecs) and np.array_equal(store.rows(), np.arange(n))
    assert store.skipped() == []
    assert chunk_bytes(store) < (store.dir / "vectors.npy").stat().st_size / 10
    # Consolidating again without new chunks changes nothing.
    assert store.consolidate(DIM) == n and np.array_equal(EmbeddingStore(Collection(coll.root), MODEL).vectors(), vecs)


def test_a_consolidation_killed_after_its_commit_point_is_finished_by_the_next_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 120
    vecs = unit(np.random.default_rng(1).standard_normal((n, DIM)))
    coll = collection(tmp_path / "c", n)
    store = EmbeddingStore(coll, MODEL)
    store.write_chunk(0, 60, np.arange(60), vecs[:60])
    store.consolidate(DIM)
    store.write_chunk(60, 120, np.arange(60, 120), vecs[60:])

    def killed(self: EmbeddingStore) -> None:
        if (self.dir / JOURNAL).exists():
            raise KeyboardInterrupt  # the process dies right after writing the journal

    with monkeypatch.context() as m:
        m.setattr(EmbeddingStore, "finish_pending", killed)
        with pytest.raises(KeyboardInterrupt):
            store.consolidate(DIM)
    assert (store.dir / JOURNAL).exists() and len(np.load(store.dir / "rows.npy")) == 60  # not yet in place

    reader = EmbeddingStore(Collection(coll.root), MODEL)
    assert np.array_equal(reader.vectors(), vecs) and np.array_equal(reader.rows(), np.arange(n))
    assert not (reader.dir / JOURNAL).exists()
    assert sorted(reader.done_rows()[0].tolist()) == list(range(n))  # every row once
    assert chunk_bytes(reader) < (reader.dir / "vectors.npy").stat().st_size / 10
