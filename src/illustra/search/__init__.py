"""The query side: one search service behind every front end, with its modes, limits, filters,
fusion, catalogue-text and hybrid ranking, and the one JSON shape of a response."""

from .filters import Filters
from .limits import MAX_K, MAX_OFFSET, MAX_QUERY_CHARS, Mode
from .service import SearchService
from .types import Hit, SearchResponse

__all__ = ["MAX_K", "MAX_OFFSET", "MAX_QUERY_CHARS", "Filters", "Hit", "Mode", "SearchResponse", "SearchService"]
