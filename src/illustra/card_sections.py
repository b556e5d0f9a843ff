"""Model-card sections that describe what Illustra measured or learnt for a model in one collection
(weak-match level, adapter, paired text model), shared by the Markdown card and the About page."""

from __future__ import annotations

from .collection import Collection
from .search import weak


def sections(coll: Collection, model: str) -> list[tuple[str, str]]:
    """(heading, paragraph) pairs, in the order the card shows them."""
    return [("When nothing matches", weak.card_text(coll, model))]
