"""``/api/map``: the collection map built by ``illustra map``, for the page's Map view.

Positions travel as binary: little-endian uint16 (x, y) pairs, one per collection row, in chunks of
``CHUNK_POINTS`` rows (4 bytes a point: 4.3 MB for 1.08M items), so the page draws the first
chunk while the rest arrive. ``65535`` marks an item with no position (no picture vector, or hidden
by the collection's owner). Titles and thumbnails are fetched only for the few points a reader
points at or zooms in on.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from ..errors import ItemNotFound
from ..map.layout import NO_POSITION, SCALE
from ..map.store import CollectionMap, MapStore
from ..search.limits import MAX_K, Mode
from ..search.query import parse_search_params
from .openapi import FILTERS_IN_QUERY, error_responses
from .state import AppState, get_state, root_path
from .urls import item_links

router = APIRouter(tags=["map"])

CHUNK_POINTS = 131_072
MAX_ROWS_CHARS = 2000  # rows asked for at once, as "1,2,3" (a few hundred)
ROWS_PATTERN = r"^[0-9]{1,9}(,[0-9]{1,9})*$"
BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def map_store(state: AppState) -> MapStore:
    found = state.extra.get("map")
    if found is None:
        found = state.extra["map"] = MapStore(state.collection)
    assert isinstance(found, MapStore)
    return found


def _hidden_rows(state: AppState) -> np.ndarray:
    guard = state.service.guardrails
    if not guard.enabled:
        return np.zeros(0, np.int64)
    rows = []
    for item_id in guard.hidden_ids():
        try:
            rows.append(state.collection.row_of(item_id))
        except ItemNotFound:
            continue
    return np.asarray(sorted(rows), np.int64)


def _stamp(m: CollectionMap) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", str(m.meta.get("built", "")))


@router.get(
    "/api/map",
    summary="The collection map: what it holds and where its data is",
    description="Built by `illustra map` (409 until then): how the layout was made, the chunks of "
    "binary positions (`points`), and the regions' labels (the words most common in the catalogue "
    "text of the items there), each at a grid level (2 = the map cut into 2x2 cells, up to 32) with "
    "its centre in [0, 1] map units.",
    responses=error_responses(409),
)
def api_map(request: Request) -> dict[str, Any]:
    state = get_state(request)
    m = map_store(state).require()
    root = root_path(request)
    n = len(m.x)
    v = _stamp(m)
    chunks = [
        {"index": i, "start": s, "count": min(CHUNK_POINTS, n - s), "url": f"{root}/api/map/points/{i}?v={v}"}
        for i, s in enumerate(range(0, n, CHUNK_POINTS))
    ]
    meta = {k: m.meta.get(k) for k in ("space", "method", "fit_sample", "placed", "built", "labels_seconds")}
    return {
        **meta,
        "items": n,
        "format": "little-endian uint16 x, y per collection row (row i is point i); "
        f"0..{SCALE} across and down, {NO_POSITION} = no position",
        "scale": SCALE,
        "no_position": NO_POSITION,
        "chunk_points": CHUNK_POINTS,
        "chunks": chunks,
        "labels": m.labels,
        "items_url": f"{root}/api/map/items",
        "highlight_url": f"{root}/api/map/highlight",
    }


@router.get(
    "/api/map/points/{chunk}",
    summary="Positions of one chunk of the map's points (binary)",
    response_class=Response,
    responses={200: {"description": "uint16 x, y pairs, little-endian", "content": BINARY},
               **error_responses(404, 409, 422)},
)
def api_map_points(
    request: Request,
    chunk: Annotated[int, Path(ge=0, le=100_000)],
    v: Annotated[str | None, Query(max_length=40, description="The map's build stamp (for caches).")] = None,
) -> Response:
    state = get_state(request)
    m = map_store(state).require()
    start = chunk * CHUNK_POINTS
    if start >= max(1, len(m.x)):
        raise ItemNotFound(f"the map has {max(1, -(-len(m.x) // CHUNK_POINTS))} chunks of points; no chunk {chunk}")
    stop = min(len(m.x), start + CHUNK_POINTS)
    pts = m.points(start, stop)
    hidden = _hidden_rows(state)
    hidden = hidden[(hidden >= start) & (hidden < stop)] - start
    pts[hidden] = NO_POSITION
    headers = {"Cache-Control": "public, max-age=3600", "ETag": f'"map-{_stamp(m)}-{chunk}-{len(hidden)}"'}
    return Response(pts.tobytes(), media_type="application/octet-stream", headers=headers)


@router.get(
    "/api/map/items",
    summary="Titles, links and thumbnails of map points",
    description="For the points a reader points at or zooms in on: `rows` is a comma-separated list "
    "of collection rows (point numbers); rows past the collection's end are left out.",
    responses=error_responses(409, 422),
)
def api_map_items(
    request: Request,
    rows: Annotated[str, Query(max_length=MAX_ROWS_CHARS, pattern=ROWS_PATTERN)],
) -> dict[str, Any]:
    state = get_state(request)
    map_store(state).require()
    coll = state.collection
    wanted = list(dict.fromkeys(int(r) for r in rows.split(",")))
    wanted = [r for r in wanted if r < len(coll)]
    root = root_path(request)
    out = []
    for r, meta in zip(wanted, coll.metadata_many(wanted), strict=True):
        item_id = str(meta.get("id"))
        out.append(
            {"row": r, "id": item_id, "title": meta.get("title") or "", "year": meta.get("year"),
             "has_image": coll.has_image(r), **item_links(item_id, root)}
        )
    return {"items": out}


@router.get(
    "/api/map/highlight",
    summary="Which map points a search or filter picks (binary)",
    description="A bit per collection row, least significant bit first (row i is bit i % 8 of byte "
    "i // 8): with `q`, the best `k` results of that search (in `mode`); without, every item the "
    "filters allow. The X-Illustra-Matches header counts them.",
    response_class=Response,
    responses={200: {"description": "packed bits, one per row", "content": BINARY},
               **error_responses(403, 409, 422, 503)},
    openapi_extra=FILTERS_IN_QUERY,
)
def api_map_highlight(
    request: Request,
    q: Annotated[str | None, Query(max_length=1000, description="Words to search for.")] = None,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many of the best results to mark.")] = MAX_K,
    mode: Annotated[Mode | None, Query(description="What the query matches (with q).")] = None,
) -> Response:
    state = get_state(request)
    m = map_store(state).require()
    svc = state.service
    params, _ = parse_search_params(request.query_params.multi_items(), svc.filterable_fields, default_k=MAX_K)
    n = len(m.x)
    marked = np.zeros(n, bool)
    text = (params.q or "").strip()
    if text:
        resp = svc.search_text(text, k=params.k, filters=params.filters, mode=params.mode)
        marked[[h.row for h in resp.results if 0 <= h.row < n]] = True
    elif not params.filters.is_empty():
        mask = svc.row_mask(params.filters)
        if mask is not None:
            marked[: len(mask)] = mask[:n]
    bits = np.packbits(marked, bitorder="little")
    headers = {"X-Illustra-Matches": str(int(marked.sum())), "Cache-Control": "no-store"}
    return Response(bits.tobytes(), media_type="application/octet-stream", headers=headers)
