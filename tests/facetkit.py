"""A collection for the facet, export and permalink tests: the colour collection (6 pictures of
each of 8 colours, years 1800-1847, three places) plus two catalogue entries without a picture,
embedded with the fake encoder and indexed (exact FAISS, and catalogue text by keywords)."""

from __future__ import annotations

from pathlib import Path

from illustra.collection import Collection
from illustra.index import build_index
from illustra.textindex import build_text_index

from .fakes import COLOURS
from .searchkit import build_colour_collection

N_PER_COLOUR = 6


def ids_of(colour: str) -> list[str]:
    return [f"{colour}/{j:02d}" for j in range(N_PER_COLOUR)]


def colour_of(item_id: str) -> str:
    return item_id.split("/")[0]


def build_facet_collection(root: Path) -> Collection:
    build_colour_collection(root, N_PER_COLOUR, metadata_only=2)
    build_index(Collection(root), "fake")
    build_text_index(Collection(root), semantic=False, progress=False)
    return Collection(root)


ALL_COLOURS = list(COLOURS)
