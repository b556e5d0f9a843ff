"""Collections and servers for the API and browser tests."""

from __future__ import annotations

from pathlib import Path

from illustra.collection import Collection
from illustra.images import encode_stored
from illustra.index import build_index

from .fakes import solid
from .searchkit import build_colour_collection, embed_with

# Ids that exercise path routing: unicode, spaces, reserved URL characters, and one that ends in a
# route suffix.
ODD_IDS = {
    "ü/ß/漢字": "green",
    "animals/mammals/housecats/gatto_cat_01": "yellow",
    "odd/image": "cyan",
    "a b#c?d%e&f": "purple",
}


def extra_rows() -> list[dict]:
    rows: list[dict] = []
    for item_id, colour in ODD_IDS.items():
        rows.append(
            {
                "id": item_id,
                "image": {"bytes": encode_stored(solid(colour, (50, 50))), "path": None},
                "image_path": f"/srv/private/{colour}.png",
                "title": f"Odd item {item_id} in {colour}",
                "creator": "Odd, Ada",
                "year": 1900,
                "place": "Oxford",
            }
        )
    for page in range(1, 5):
        rows.append(
            {
                "id": f"books/b1/p{page}",
                "image": {"bytes": encode_stored(solid("blue", (30 + page, 40))), "path": None},
                "image_path": f"https://images.example.org/b1/{page}.jpg",
                "title": f"Plate {page} of the blue book",
                "creator": "Binder, Bea",
                "year": 1850,
                "place": "London",
                "source_url": f"https://library.example.org/b1#page{page}",
                "flickr_url": f"https://www.flickr.com/photos/example/{page}",
                "book_identifier": "b1",
            }
        )
    rows.append(
        {
            "id": "books/b2/p1",
            "image": {"bytes": encode_stored(solid("white", (40, 40))), "path": None},
            "title": "A lone plate <script>alert(1)</script> & more",
            "creator": "Solo",
            "year": 1851,
            "place": "Paris",
            "source_url": "javascript:alert(1)",
            "book_identifier": "b2",
        }
    )
    rows.append(
        {"id": "books/b3/text-only", "title": "Catalogue entry without a picture", "book_identifier": "b3"}
    )
    return rows


def build_web_collection(root: Path) -> Collection:
    """The colour collection plus odd ids, books and hostile metadata, embedded and indexed."""
    build_colour_collection(root, metadata_only=2)
    coll = Collection.create(
        root, extra_rows(), source={"kind": "test"}, extra_fields=["book_identifier", "flickr_url"]
    )
    embed_with(coll)
    coll = Collection(root)
    build_index(coll, "fake")
    return Collection(root)
