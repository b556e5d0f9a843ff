"""A collection of book plates printed again: the same picture in several books and twice in one,
catalogue text that makes every plate of a book match "castle", embedded (fake encoder, whose
vectors are the picture's mean colour), indexed, with a catalogue-text index."""

from __future__ import annotations

import itertools
from pathlib import Path

from PIL import Image

from illustra.collection import Collection
from illustra.images import encode_stored
from illustra.index import build_index
from illustra.textindex import build_text_index

from .searchkit import embed_with

# Distinct mean colours: their fake vectors stay below cosine 0.99 of one another.
PALETTE = list(itertools.product([30, 90, 150, 210], repeat=3))
BOOKS = {
    "R1": "The castle of Udolpho",
    "R2": "Castles of the Rhine",
    "R3": "A journey down the river",
    "R4": "River scenery of the Thames",
}
PLATES = 5
# The same plate printed again: (book, plate) -> the picture it shares.
REUSED = {("R1", 0): "A", ("R2", 0): "A", ("R3", 3): "A", ("R1", 1): "B", ("R1", 2): "B"}
SHARED_COLOURS = {"A": PALETTE[5], "B": PALETTE[40]}
THRESHOLD = 0.995


def plate_id(book: str, plate: int) -> str:
    return f"{book}/p{plate}"


def reuse_rows() -> list[dict]:
    rows = []
    spare = iter(c for c in PALETTE if c not in SHARED_COLOURS.values())
    for i, (book, title) in enumerate(BOOKS.items()):
        for p in range(PLATES):
            shared = REUSED.get((book, p))
            colour = SHARED_COLOURS[shared] if shared else next(spare)
            size = (40 + p * 3 + i, 36 + i)  # every file differs; the shared ones keep their colour
            rows.append(
                {
                    "id": plate_id(book, p),
                    "image": {"bytes": encode_stored(Image.new("RGB", size, colour)), "path": None},
                    "title": f"{title}, plate {p + 1}",
                    "creator": f"Engraver {i}",
                    "place": "London",
                    "book_identifier": book,
                    "year": 1800 + i * 10 + p,
                }
            )
    return rows


def build_reuse_collection(root: Path) -> Collection:
    coll = Collection.create(
        root, reuse_rows(), source={"kind": "test"}, extra_fields=["book_identifier"],
        text_fields=["title", "creator", "place"],
    )
    embed_with(coll)
    build_index(Collection(root), "fake")
    build_text_index(Collection(root), semantic=False, progress=False)
    return Collection(root)


SUBJECTS = ["ship", "harbour", "church", "portrait", "map", "flower", "horse", "bridge"]


def build_crowded_collection(root: Path, extra: int = 780) -> Collection:
    """The plates above and ``extra`` more pictures of many colours (a map too full for thumbnails
    until zoomed in), titled after a handful of subjects."""
    rows = reuse_rows()
    for i in range(extra):
        base = PALETTE[i % len(PALETTE)]
        shift = (i // len(PALETTE)) * 2
        colour = tuple(min(255, c + shift) for c in base)
        rows.append({
            "id": f"more/{i:04d}",
            "image": {"bytes": encode_stored(Image.new("RGB", (24, 20), colour)), "path": None},
            "title": f"A {SUBJECTS[i % len(PALETTE) % len(SUBJECTS)]} in plate {i}",
            "book_identifier": f"M{i // 20}",
            "year": 1850 + i % 40,
        })
    coll = Collection.create(root, rows, source={"kind": "test"}, extra_fields=["book_identifier"],
                             text_fields=["title", "creator", "place"])
    embed_with(coll)
    build_index(Collection(root), "fake")
    build_text_index(Collection(root), semantic=False, progress=False)
    return Collection(root)
