"""The one JSON shape of a search response, used by the REST API, the page and ``illustra search --json``.

Public output never shows where files live on the server: a ``*_path`` field whose value is not
an http(s) URL is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .types import Hit, SearchResponse

if TYPE_CHECKING:
    from ..collection import Collection

Links = Callable[[str], dict[str, str]]


def is_web_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def public_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """Metadata as clients see it: file paths on the server are left out (URLs are kept)."""
    return {k: v for k, v in meta.items() if not (k.endswith("_path") and v and not is_web_url(v))}


def hit_json(hit: Hit, collection: Collection | None = None, links: Links | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": hit.id,
        "score": None if hit.score is None else round(float(hit.score), 6),
        "rank": hit.rank,
        "metadata": public_metadata(hit.metadata),
        "explain": hit.explain or {},
    }
    if collection is not None and hit.row >= 0:
        # Text-mode results can include catalogue entries that have no picture.
        out["has_image"] = collection.has_image(hit.row)
    if hit.weak is not None:
        out["weak"] = hit.weak
    if links is not None:
        out.update(links(hit.id))
    # A grouped search (collapse.py): results folded into this one, the first few of each kind.
    if hit.similar is not None:
        out["similar"] = {
            "count": hit.similar_count,
            "results": [hit_json(h, collection, links) for h in hit.similar],
        }
    if hit.same_book is not None:
        out["more_from_book"] = {
            "count": hit.same_book_count,
            "book_identifier": hit.metadata.get("book_identifier"),
            "results": [hit_json(h, collection, links) for h in hit.same_book],
        }
    return out


def response_json(
    resp: SearchResponse, collection: Collection | None = None, links: Links | None = None
) -> dict[str, Any]:
    return {
        "query": resp.query,
        "kind": resp.kind,
        "mode": str(resp.mode),
        "model": resp.model,
        "k": resp.k,
        "offset": resp.offset,
        "filters": resp.filters,
        "has_more": resp.has_more,
        "undated_excluded": resp.undated_excluded,
        "notices": list(resp.notices),
        "grouping": resp.grouping,
        "weak_match": None
        if resp.weak_level is None
        else {"level": round(resp.weak_level, 6), "nothing_matches": resp.nothing_matches},
        "results": [hit_json(h, collection, links) for h in resp.results],
        **(_citation(resp, collection) if collection is not None else {}),
    }


def _citation(resp: SearchResponse, collection: Collection) -> dict[str, Any]:
    """The permalink (root-relative) and the build of the indexes the search ran on."""
    from .permalink import build_stamp, link_path

    return {"permalink": link_path(resp, collection), "index_built": build_stamp(collection, resp.model)}
