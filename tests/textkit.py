"""Small real collections with catalogue text for the text-index and hybrid-search tests."""

from __future__ import annotations

from pathlib import Path

from illustra.collection import Collection
from illustra.images import encode_stored

from .fakes import solid
from .searchkit import embed_with

# (id, colour of the picture or None, title, creator, place, publisher, keywords, book, year)
BOOKS = [
    (
        "egypt/1",
        "yellow",
        "Map of Upper Egypt and the Nile",
        "Lane, Edward",
        "London",
        "Murray",
        "map nile",
        "B1",
        1840,
    ),
    ("egypt/2", "yellow", "The pyramids of Gizeh", "Lane, Edward", "London", "Murray", "pyramid", "B1", 1840),
    ("egypt/3", None, "Voyage en Égypte et en Nubie", "Denon, Vivant", "Paris", "Didot", "", "B2", 1802),
    (
        "scot/1",
        "green",
        "Views of Edinburgh and its castle",
        "Scott, Walter",
        "Edinburgh",
        "Constable",
        "",
        "B3",
        1820,
    ),
    (
        "scot/2",
        "green",
        "Engravings of Highland scenery",
        "Scott, Walter",
        "Edinburgh",
        "Constable",
        "",
        "B3",
        1821,
    ),
    ("scot/3", "blue", "Loch Lomond by moonlight", "Nasmyth, A.", "Glasgow", "Blackie", "lake", "B4", 1830),
    ("cat/1", "red", "Gatto nero", "Architetto, F.", "", "Open Clip Art Library", "cat animal", "", 2008),
    ("cat/2", "red", "Sleeping kitten", "Golan, R.", "", "Open Clip Art Library", "cat kitten pet", "", 2007),
    ("pub/1", "blue", "Poems of the sea", "Keats, J.", "London", "Egypt House Press", "", "B5", 1818),
    ("odd/1", "purple", 'A <b>bold</b> "title" & more\x00\x07', "Anon", "London", "", "", "B6", 1850),
    ("empty/1", "black", "", "", "", "", "", "", 1900),
]

TEXT_FIELDS = ["title", "creator", "place", "publisher", "keywords"]


def book_rows() -> list[dict]:
    rows = []
    for rid, colour, title, creator, place, publisher, keywords, book, year in BOOKS:
        rows.append(
            {
                "id": rid,
                "image": {"bytes": encode_stored(solid(colour)), "path": None} if colour else None,
                "title": title,
                "creator": creator,
                "place": place,
                "publisher": publisher,
                "keywords": keywords,
                "book_identifier": book,
                "year": year,
            }
        )
    return rows


def build_book_collection(root: Path, *, embed: bool = True) -> Collection:
    coll = Collection.create(
        root,
        book_rows(),
        source={"kind": "test"},
        extra_fields=["keywords", "book_identifier"],
        text_fields=TEXT_FIELDS,
    )
    if embed:
        embed_with(coll)
    return Collection(root)
