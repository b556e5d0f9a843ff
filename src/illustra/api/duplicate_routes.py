"""``/api/clusters`` and ``/api/items/{id}/duplicates``: pictures printed again, found by
``illustra duplicates``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ..duplicates.listing import book_count, cluster_entry, near_copies
from ..search.limits import MAX_K, MAX_OFFSET
from ..search.shape import public_metadata
from .item_routes import _resolve
from .openapi import error_responses
from .responses import item_json
from .state import AppState, get_state, root_path
from .urls import item_links

router = APIRouter(tags=["duplicates"])

MAX_MEMBERS = 100  # items listed per cluster in /api/clusters


def _meta(state: AppState) -> dict[str, Any]:
    clusters = state.service.grouper.duplicates.require()
    m = clusters.meta
    return {k: m.get(k) for k in ("threshold", "space", "built")}


@router.get(
    "/api/clusters",
    summary="Clusters of near-duplicate pictures",
    description="Groups of items whose pictures are near-copies (found by `illustra duplicates`), "
    "largest first, each with the number of books it spans and its first `members` items. "
    "409 until they have been found.",
    responses=error_responses(409, 422),
)
def api_clusters(
    request: Request,
    min_size: Annotated[int, Query(ge=2, le=1_000_000, description="Only clusters of at least this many items.")] = 2,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="Clusters per page.")] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    members: Annotated[int, Query(ge=1, le=MAX_MEMBERS, description="Items listed per cluster.")] = 10,
) -> dict[str, Any]:
    state = get_state(request)
    clusters = state.service.grouper.duplicates.require()
    root = root_path(request)
    chosen = clusters.with_min_size(min_size)
    page = chosen[offset : offset + k].tolist()
    out = []
    for c in page:
        entry = cluster_entry(state.collection, clusters, int(c), members)
        for item in entry["items"]:
            item.update(item_links(item["id"], root))
            item["duplicates_url"] = item["item_url"] + "/duplicates"
        out.append(entry)
    return {
        **_meta(state),
        "total": int(len(chosen)),
        "items_in_clusters": int(clusters.sizes()[chosen].sum()) if len(chosen) else 0,
        "min_size": min_size,
        "k": k,
        "offset": offset,
        "has_more": offset + k < len(chosen),
        "clusters": out,
    }


def duplicates_json(state: AppState, item_id: str, k: int, offset: int, root: str = "") -> dict[str, Any]:
    """An item's near-copies, most similar first, and the books they come from (shared with the
    item page)."""
    clusters = state.service.grouper.duplicates.require()
    coll = state.collection
    row = coll.row_of(item_id)
    cluster, others, scores = near_copies(coll, clusters, row)
    page_rows = others[offset : offset + k].tolist()
    results = []
    for i, (r, meta) in enumerate(zip(page_rows, coll.metadata_many(page_rows), strict=True)):
        rid = str(meta.pop("id"))
        s = scores[offset + i]
        entry: dict[str, Any] = {
            "id": rid,
            "score": None if s != s else round(float(s), 6),  # NaN: no vector to compare
            "rank": offset + i + 1,
            "metadata": public_metadata(meta),
            "has_image": coll.has_image(int(r)),
        }
        entry.update(item_links(rid, root))
        results.append(entry)
    own_book = (coll.metadata(row).get("book_identifier") or "").strip() if len(others) else ""
    return {
        **_meta(state),
        "item": item_id,
        "cluster": None if cluster < 0 else cluster,
        "total": int(len(others)),
        "books": book_count(coll, others) if len(others) else 0,
        "other_books": _other_books(coll, others, own_book),
        "results": results,
        "k": k,
        "offset": offset,
        "has_more": offset + k < len(others),
    }


def _other_books(coll: Any, rows: Any, own: str) -> int:
    from ..duplicates.listing import column_values

    books = {str(b).strip() for b in column_values(coll, "book_identifier", rows) if b and str(b).strip()}
    books.discard(own)
    return len(books)


@router.get(
    "/api/items/{item_id:path}/duplicates",
    summary="Where this picture appears again",
    description="Items whose pictures are near-copies of this one (its cluster, found by "
    "`illustra duplicates`), most similar first, with how many books they come from. "
    "409 until near-duplicates have been found.",
    responses=error_responses(404, 409, 422),
)
def api_duplicates(
    request: Request,
    item_id: str,
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    state = get_state(request)
    target, ok = _resolve(state, item_id, "duplicates")
    if not ok:
        return item_json(state, target, root_path(request))
    return duplicates_json(state, target, k, offset, root_path(request))
