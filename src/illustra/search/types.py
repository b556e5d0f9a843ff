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
