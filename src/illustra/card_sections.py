"""Model-card sections that describe what Illustra measured or learnt for a model in one collection
(weak-match level, adapter, paired text model), shared by the Markdown card and the About page."""

from __future__ import annotations

from . import adapters
from .collection import Collection
from .search import text_model, weak


def sections(coll: Collection, model: str) -> list[tuple[str, str]]:
    """(heading, paragraph) pairs, in the order the card shows them."""
    out = [("When nothing matches", weak.card_text(coll, model))]
    adapted = adapters.card_text(coll, model)
    if adapted:
        out.append(("Adapted to this collection", adapted))
    paired = text_model.card_text(coll, model)
    if paired:
        out.append(("Text queries in other languages", paired))
    return out
