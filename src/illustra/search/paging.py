"""Result sets longer than one page (exports take up to ``MAX_EXPORT_ITEMS``), read page by page
through the same search calls a reader's pages use, so an export holds exactly what they show."""

from __future__ import annotations

from collections.abc import Callable

from .limits import MAX_K
from .types import SearchResponse


def page_through(run: Callable[[int, int], SearchResponse], k: int, offset: int = 0) -> SearchResponse:
    """The first ``k`` results from ``offset`` of ``run(k, offset)``, asked for ``MAX_K`` at a time."""
    first = run(min(k, MAX_K), offset)
    while len(first.results) < k and first.has_more:
        more = run(min(k - len(first.results), MAX_K), offset + len(first.results))
        if not more.results:
            break
        first.results.extend(more.results)
        first.has_more = more.has_more
    first.k = k
    return first
