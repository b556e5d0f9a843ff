"""What a search returns: ranked hits and the response around them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .limits import Mode


@dataclass
class Hit:
    id: str
    score: float
    rank: int
    metadata: dict[str, Any]
    row: int = -1
    explain: dict[str, Any] = field(default_factory=dict)
    # Grouped searches (collapse.py): the first results folded into this one as near-copies and
    # as others from its book (None: the search was not grouped), and how many were folded.
    similar: list[Hit] | None = None
    similar_count: int = 0
    same_book: list[Hit] | None = None
    same_book_count: int = 0
    # Below the collection's weak-match level (weak.py); None where no level applies.
    weak: bool | None = None


@dataclass
class SearchResponse:
    results: list[Hit]
    kind: str  # text | image | like
    model: str
    query: str | None = None
    k: int = 10
    offset: int = 0
    mode: Mode = Mode.VISUAL
    filters: dict[str, Any] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    has_more: bool = False
    # Items a year filter left out because their date is unknown (None: no year filter).
    undated_excluded: int | None = None
    # How the ranking was grouped (collapse.py); None when it was not.
    grouping: dict[str, Any] | None = None
    # Link parameters naming the query when ``kind`` and ``query`` cannot (a picture's vector,
    # facets); see permalink.py.
    source: list[tuple[str, str]] | None = None
    # The weak-match level the hits were marked against and whether nothing matched (weak.py).
    weak_level: float | None = None
    nothing_matches: bool = False
