"""Synthetic collections for benchmarks: realistic metadata, clustered unit vectors.

Real image embeddings are clustered (many engravings of ships, maps, portraits...), so vectors are
drawn around a few hundred centres; uniformly random vectors would make approximate search look
worse than it is on real data, and exact search no different.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from needs import need_bl_manifest

from illustra.collection import Collection
from illustra.embedding_store import EmbeddingStore


def clustered_vectors(n: int, dim: int, n_centres: int = 300, seed: int = 0) -> np.ndarray:
    """Unit vectors around ``n_centres`` centres, each cluster varying along its own 16-d subspace
    plus a little isotropic noise (real embeddings have a low intrinsic dimension)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_centres, dim)).astype(np.float32)
    bases = (rng.standard_normal((n_centres, 16, dim)) * 0.35).astype(np.float32)
    assign = rng.integers(0, n_centres, n)
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 5000):
        a = assign[s : s + 5000]
        coeff = rng.standard_normal((len(a), 1, 16)).astype(np.float32)
        x = centres[a] + (coeff @ bases[a])[:, 0, :] + 0.15 * rng.standard_normal((len(a), dim)).astype(np.float32)
        out[s : s + 5000] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def bl_titles(n: int, seed: int = 0) -> list[tuple[str, str, str, str]]:
    """(title, creator, place, date) sampled from the real BL manifest (all years), ``n`` rows.

    Without the manifest the benchmark stops (see needs.py): stand-in rows would give every item
    the same year and place, and the filter figures would mean nothing."""
    out: list[tuple[str, str, str, str]] = []
    with gzip.open(need_bl_manifest(), "rt", encoding="utf-8", errors="replace") as fh:
        header = fh.readline().rstrip("\r\n").split("\t")
        ix = {c: i for i, c in enumerate(header)}
        for line in fh:
            f = line.rstrip("\r\n").split("\t")
            if len(f) < len(header):
                continue
            out.append((f[ix["title"]], f[ix["first_author"]], f[ix["pubplace"]], f[ix["date"]]))
    if not out:
        raise SystemExit(f"no usable rows in {need_bl_manifest()}")
    pick = np.random.default_rng(seed).choice(len(out), size=n, replace=n > len(out))
    return [out[i] for i in pick]


def synthetic_collection(root: Path, n: int, dim: int, model: str, seed: int = 0) -> Collection:
    meta = bl_titles(n)

    def rows():
        for i, (title, creator, place, date) in enumerate(meta):
            yield {
                "id": f"synthetic/{i:07d}",
                "title": title,
                "creator": creator,
                "place": place,
                "date": date,
                "year": int(date[:4]) if date[:4].isdigit() else None,
            }

    coll = Collection.create(root, rows(), source={"kind": "synthetic", "n": n})
    store = EmbeddingStore(coll, model)
    vecs = clustered_vectors(n, dim, seed=seed)[:n]
    step = 50_000
    for s in range(0, n, step):
        e = min(n, s + step)
        store.write_chunk(s, e, np.arange(s, e), vecs[s:e])
    store.consolidate(dim)
    return Collection(root)
