"""The result set a request names (a text query, "more like this", or what a link holds: a
picture's vector, facets, marked examples), run to as many items as an export asks for."""

from __future__ import annotations

from ..facets.linked import LinkedSearch
from ..facets.search import FacetSearch
from ..search.filters import Filters
from ..search.paging import page_through
from ..search.query import BadParam, require_query
from ..search.types import SearchResponse
from .items import check_export_size


def run_result_set(
    fs: FacetSearch,
    *,
    q: str | None,
    mode: str | None,
    like: str | None,
    linked: LinkedSearch | None,
    k: int,
    offset: int = 0,
    filters: Filters | None = None,
) -> SearchResponse:
    """The first ``k`` items (from ``offset``) of the result set, at most ``MAX_EXPORT_ITEMS``."""
    check_export_size(k)
    svc = fs.service
    if linked is not None:
        if like:
            raise BadParam("like", "give one result set: 'like' does not combine with a picture, facets or examples")
        return linked.run(fs, q, k, offset, filters, limit_k=False)
    if like:
        if q:
            raise BadParam("q", "give either a text query or 'like', not both")
        return page_through(lambda kk, oo: svc.search_like(like, kk, oo, filters), k, offset)
    text = require_query(q)
    return page_through(lambda kk, oo: svc.search_text(text, kk, oo, filters, mode), k, offset)
