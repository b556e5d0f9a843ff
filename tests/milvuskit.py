"""Collections for the Milvus backend tests: filter values that try to break an expression, and
synthetic clustered vectors large enough for approximate indexes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from illustra.collection import Collection
from illustra.embedding_store import EmbeddingStore
from illustra.images import encode_stored
from illustra.index import build_index
from illustra.textindex import build_text_index

from .apikit import build_web_collection
from .fakes import solid
from .searchkit import PLACES, embed_with

# Stored as creator, place and in the title of one item each: quotes, backslashes, line breaks,
# LIKE wildcards and expression syntax.
HOSTILE = [
    "x' or 1==1 or 'a'=='a",
    'Q"uote',
    "back\\slash",
    "new\nline",
    "100% _under_",
    "') or (row >= 0",
    'London" or "1"=="1',
]
# Filter values that try to widen a filter; none of them may match more than its exact value.
INJECTIONS = [
    "London' or '1'=='1",
    "' or 1==1 or '",
    "London\\' or 1==1 or \\'",
    'london") or (1==1',
    "\\",
    "london' || true || 'x",
    "London\n or 1==1",
    "x' or 1==1 or 'a'=='a",  # a stored value: finds that item only
]


def hostile_rows() -> list[dict]:
    rows = []
    for i, value in enumerate(HOSTILE):
        rows.append(
            {
                "id": f"hostile/{i}",
                "image": {"bytes": encode_stored(solid("red", (20 + i, 20))), "path": None},
                "title": f"Hostile {value} plate",
                "creator": value,
                "year": None if i % 3 == 0 else 1860 + i,  # some undated
                "place": value,
                "book_identifier": f"h{i}",
            }
        )
    return rows


def build_filter_collection(root: Path) -> Collection:
    """The web collection, plus items whose metadata is hostile; embedded with ``fake``, with a
    FAISS index and a keyword text index."""
    build_web_collection(root)
    coll = Collection.create(root, hostile_rows(), source={"kind": "test"}, extra_fields=["book_identifier"])
    embed_with(coll)
    coll = Collection(root)
    build_index(coll, "fake")
    build_text_index(coll, semantic=False, progress=False)
    return Collection(root)


def copy_collection(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def build_synthetic_collection(
    root: Path, n: int, d: int, model: str = "synthetic"
) -> tuple[Collection, np.ndarray]:
    """``n`` items (place, year, book) with clustered unit vectors recorded as ``model``'s."""
    rng = np.random.default_rng(7)
    rows = [
        {
            "id": f"s/{i}",
            "title": f"Item {i}",
            "year": None if i % 17 == 0 else 1700 + (i * 7) % 200,
            "place": PLACES[i % 3] if i % 11 else "Oxford",
            "book_identifier": f"b{i % 97}",
        }
        for i in range(n)
    ]
    coll = Collection.create(root, rows, source={"kind": "test"}, extra_fields=["book_identifier"])
    centres = rng.standard_normal((32, d)).astype(np.float32)
    vecs = centres[rng.integers(0, 32, n)] + 0.35 * rng.standard_normal((n, d)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    store = EmbeddingStore(coll, model)
    store.write_chunk(0, n, np.arange(n), vecs)
    store.consolidate(d)
    return Collection(root), vecs
