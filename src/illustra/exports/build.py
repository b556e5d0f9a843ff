"""From a result set (a ``SearchResponse``) or a saved selection (ids) to a file's bytes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..collection import now_iso
from ..errors import BadInput, ItemNotFound
from ..search.limits import short_id
from ..search.permalink import build_stamp, link_path
from ..search.types import Hit, SearchResponse
from .items import ExportSet, check_export_size, check_format, export_items
from .table import to_csv

if TYPE_CHECKING:
    from ..search import SearchService

KIND_WORDS = {
    "text": "Search",
    "image": "Search by picture",
    "like": "More like",
    "facet": "Facet",
    "examples": "More like the marked examples",
}
IIIF_TYPE = 'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"'


@dataclass
class ExportFile:
    body: str
    media_type: str
    filename: str


def _title(resp: SearchResponse) -> str:
    words = KIND_WORDS.get(resp.kind, "Search")
    return f"{words}: {resp.query}" if resp.query else words


def from_response(resp: SearchResponse, svc: SearchService, base: str, id_url: str) -> ExportSet:
    """An export of ``resp``'s results; ``base`` is the server's address, ``id_url`` the address
    that produces this export."""
    coll = svc.collection
    path = link_path(resp, coll)
    description = {
        "Query": _title(resp),
        "Mode": str(resp.mode) if resp.kind == "text" else "",
        "Filters": ", ".join(f"{k} = {v}" for k, v in resp.filters.items()),
        "Model": resp.model,
        "Index built": build_stamp(coll, resp.model) or "",
        "Exported": now_iso(),
        "Items": f"{len(resp.results):,}",
    }
    return ExportSet(
        items=export_items(coll, resp.results, base),
        permalink=base + path if path else None,
        title=_title(resp),
        description={k: v for k, v in description.items() if v},
        id_url=id_url,
    )


def from_selection(svc: SearchService, ids: Sequence[str], base: str, id_url: str) -> tuple[ExportSet, list[str]]:
    """An export of a saved selection, in its order; ids not in the collection are left out and
    returned."""
    check_export_size(len(ids))
    coll = svc.collection
    rows: list[int] = []
    kept: list[str] = []
    unknown: list[str] = []
    for item_id in dict.fromkeys(ids):
        try:
            rows.append(coll.row_of(item_id))
            kept.append(item_id)
        except ItemNotFound:
            unknown.append(item_id)
    if not ids:
        raise BadInput("the selection is empty")
    if not rows:
        raise ItemNotFound("none of the selected items is in this collection")
    metas = coll.metadata_many(rows)
    hits = [
        Hit(id=item_id, score=None, rank=i + 1, metadata={k: v for k, v in m.items() if k != "id"}, row=r)  # type: ignore[arg-type]
        for i, (item_id, r, m) in enumerate(zip(kept, rows, metas, strict=True))
    ]
    description = {"Exported": now_iso(), "Items": f"{len(hits):,}"}
    if unknown:
        description["Left out"] = f"{len(unknown):,} ids not in this collection: " + ", ".join(
            short_id(u) for u in unknown[:10]
        )
    export = ExportSet(
        items=export_items(coll, hits, base),
        permalink=None,
        title="My library: a saved selection",
        description=description,
        id_url=id_url,
    )
    return export, unknown


def render(export: ExportSet, fmt: str, base: str) -> ExportFile:
    fmt = check_format(fmt)
    if fmt == "csv":
        return ExportFile(to_csv(export), "text/csv; charset=utf-8", "illustra-export.csv")
    from .iiif import to_iiif

    return ExportFile(to_iiif(export, base), IIIF_TYPE, "illustra-manifest.json")
