"""JSON shapes of the API (shared with the page templates, which render the same dicts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..collection import Collection
from ..errors import ItemNotFound
from ..search import Hit, SearchResponse, shape
from ..search.filters import Filters
from ..search.limits import short_id
from ..search.shape import public_metadata
from .state import AppState
from .urls import item_links


class NoBook(ItemNotFound):
    """The item's book cannot be listed (no book field in the collection, or none on the item)."""

    code = "no_book"


def links_for(root: str = "") -> Callable[[str], dict[str, str]]:
    """The API and page URLs of an item, under the app's mount point ``root``."""
    return lambda item_id: item_links(item_id, root)


def hit_json(hit: Hit, root: str = "", collection: Collection | None = None) -> dict[str, Any]:
    return shape.hit_json(hit, collection, links_for(root))


def search_json(resp: SearchResponse, root: str = "", collection: Collection | None = None) -> dict[str, Any]:
    out = shape.response_json(resp, collection, links_for(root))
    if out.get("permalink"):
        out["permalink"] = root + out["permalink"]
    return out


def row_of(state: AppState, item_id: str) -> int:
    """The item's row; an unknown id is ``ItemNotFound`` quoting the id (cut short), no path."""
    try:
        return int(state.collection.row_of(item_id))
    except ItemNotFound:
        raise ItemNotFound(f"no item with id {short_id(item_id)!r}") from None


def item_json(state: AppState, item_id: str, root: str = "") -> dict[str, Any]:
    coll = state.collection
    row = row_of(state, item_id)
    meta = coll.metadata(row)
    meta.pop("id", None)
    out: dict[str, Any] = {"id": item_id, "metadata": public_metadata(meta), "has_image": coll.has_image(row)}
    out.update(item_links(item_id, root))
    if state.has_book_field() and (meta.get("book_identifier") or "").strip():
        out["book_url"] = out["item_url"] + "/book"
    return out


def book_json(state: AppState, item_id: str, k: int, offset: int, root: str = "") -> dict[str, Any]:
    """Other items from the same book (same ``book_identifier``), in collection order."""
    coll = state.collection
    row = row_of(state, item_id)
    if not state.has_book_field():
        raise NoBook(
            "this collection does not record which book an item comes from (no 'book_identifier' field)"
        )
    book = (coll.metadata(row).get("book_identifier") or "").strip()
    if not book:
        raise NoBook(f"item {short_id(item_id)!r} has no book identifier, so its book cannot be listed")
    mask = state.service.row_mask(Filters(fields={"book_identifier": book}))
    rows = np.flatnonzero(mask) if mask is not None else np.arange(len(coll))
    rows = rows[rows != row]
    page = rows[offset : offset + k].tolist()
    results = []
    for i, (r, meta) in enumerate(zip(page, coll.metadata_many(page), strict=True)):
        rid = str(meta.pop("id"))
        entry: dict[str, Any] = {
            "id": rid,
            "score": None,
            "rank": offset + i + 1,
            "metadata": public_metadata(meta),
            "explain": {},
            "has_image": coll.has_image(int(r)),
        }
        entry.update(item_links(rid, root))
        results.append(entry)
    return {
        "book_identifier": book,
        "item": item_id,
        "total": int(len(rows)),
        "results": results,
        "k": k,
        "offset": offset,
        "has_more": offset + k < len(rows),
    }


def collection_json(state: AppState, root: str = "") -> dict[str, Any]:
    coll = state.collection
    svc = state.service
    counts = coll.manifest.get("counts", {})
    index_info = coll.manifest.get("indexes", {}).get(svc.model, {})
    emb = coll.manifest.get("embeddings", {}).get(svc.model, {})
    years = None
    if "year_min" in counts:
        years = {"min": counts["year_min"], "max": counts["year_max"]}
    return {
        "name": state.title,
        "size": len(coll),
        "with_image": counts.get("with_image"),
        "embedded": emb.get("count"),
        "model": svc.model,
        "dim": emb.get("dim"),
        "index": {k: index_info.get(k) for k in ("kind", "count", "built")} if index_info else None,
        "built": index_info.get("built") or emb.get("updated"),
        "created": coll.manifest.get("created"),
        "updated": coll.manifest.get("updated"),
        "year_range": years,
        "filterable_fields": svc.filterable_fields,
        "field_values": {f.name: list(f.values) for f in state.facets.all() if f.values is not None},
        "modes": [str(m) for m in svc.modes()],
        "default_mode": str(state.default_mode()),
        "has_books": state.has_book_field(),
        "search_url": f"{root}/api/search",
    }
