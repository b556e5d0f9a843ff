"""A collection for the web-page tests: pictures with catalogue text (so every search mode is
offered), a text index, and items with no known date (so a year filter has something to leave out)."""

from __future__ import annotations

from pathlib import Path

from illustra.collection import Collection
from illustra.images import encode_stored
from illustra.index import build_index
from illustra.textindex import build_text_index

from .fakes import solid
from .searchkit import embed_with
from .textkit import TEXT_FIELDS, book_rows

UNDATED = [
    ("undated/1", "red", "A ship in a red storm", "Anon"),
    ("undated/2", "blue", "Ship at anchor in a blue bay", "Anon"),
    ("undated/3", "green", "Green hills above the harbour", "Anon"),
]


def page_rows() -> list[dict]:
    rows = book_rows()
    rows.append(
        {
            "id": "dated/ship",
            "image": {"bytes": encode_stored(solid("red")), "path": None},
            "title": "The ship Endeavour in a red sky",
            "creator": "Parkinson, Sydney",
            "place": "London",
            "publisher": "Nicol",
            "keywords": "ship sea",
            "book_identifier": "B7",
            "year": 1773,
        }
    )
    for rid, colour, title, creator in UNDATED:
        rows.append(
            {
                "id": rid,
                "image": {"bytes": encode_stored(solid(colour)), "path": None},
                "title": title,
                "creator": creator,
                "place": "",
                "publisher": "",
                "keywords": "",
                "book_identifier": "",
                "year": None,
            }
        )
    return rows


def build_page_collection(root: Path) -> Collection:
    coll = Collection.create(
        root,
        page_rows(),
        source={"kind": "test"},
        extra_fields=["keywords", "book_identifier"],
        text_fields=TEXT_FIELDS,
    )
    embed_with(coll)
    build_index(Collection(root), "fake")
    build_text_index(Collection(root), semantic=False, progress=False)
    return Collection(root)
