"""Builds small real collections for search tests: coloured images with catalogue metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from illustra.collection import Collection
from illustra.embedding_store import EmbeddingStore
from illustra.encoders import load_encoder
from illustra.images import decode, encode_stored

from .fakes import COLOURS, solid

PLACES = ["London", "Paris", "Edinburgh"]


def colour_rows(n_per_colour: int = 6) -> list[dict]:
    rows = []
    i = 0
    for colour in COLOURS:
        for j in range(n_per_colour):
            im = solid(colour, (40 + j, 30))
            rows.append(
                {
                    "id": f"{colour}/{j:02d}",
                    "image": {"bytes": encode_stored(im), "path": None},
                    "image_path": f"/scans/{colour}_{j}.png",
                    "title": f"A {colour} plate number {j}",
                    "creator": "Anon" if j % 2 else "Smith, John",
                    "year": 1800 + i,
                    "place": PLACES[i % 3],
                }
            )
            i += 1
    return rows


def embed_with(coll: Collection, model: str = "fake") -> None:
    """Embed every row with an image, via the store's public write path."""
    enc = load_encoder(model)
    store = EmbeddingStore(coll, model)
    rows = [r for r in range(len(coll)) if coll.has_image(r)]
    imgs = [decode(coll.image_bytes(r) or b"") for r in rows]
    store.write_chunk(0, len(coll), np.asarray(rows), enc.embed_images(imgs))
    store.consolidate(enc.dim)


def build_colour_collection(root: Path, n_per_colour: int = 6, metadata_only: int = 0) -> Collection:
    rows = colour_rows(n_per_colour)
    for m in range(metadata_only):
        rows.append({"id": f"text-only/{m}", "title": f"Catalogue entry {m}", "year": 1700 + m})
    coll = Collection.create(root, rows, source={"kind": "test"})
    embed_with(coll)
    return Collection(root)
