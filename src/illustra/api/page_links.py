"""What the search page adds for facets, permalinks and exports: result sets named by link
parameters (a picture's vector, facets, marked examples), the banner saying what ranks them, the
notice when a permalink's indexes were rebuilt, the permalink and export links of every result
set, and the saved facets offered for combining."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from ..facets.linked import LinkedSearch
from ..search.permalink import link_path, rebuilt_notice
from ..search.query import SearchParams
from ..search.types import SearchResponse
from .facet_routes import facet_search
from .state import AppState


def linked_search(link: dict[str, str], q: str | None) -> LinkedSearch | None:
    """The result set the page's link parameters name. A text query typed over a picture or facet
    search starts a plain text search (the page's form carries the link parameters along); with
    marked examples it is the quick form's text."""
    linked = LinkedSearch.parse(link)
    if linked is not None and q and linked.kind in ("image", "facet"):
        return None
    return linked


def run_linked(state: AppState, linked: LinkedSearch, params: SearchParams, q: str | None) -> SearchResponse:
    return linked.run(facet_search(state), q, params.k, params.offset, params.filters)


def link_items(link: dict[str, str]) -> list[tuple[str, str]]:
    """The link parameters that name the result set (not the stamps), to carry in page links."""
    return [(n, link[n]) for n in ("vec", "facet", "fdef", "ex", "tw") if n in link]


def banner(linked: LinkedSearch, resp: SearchResponse) -> dict[str, Any]:
    """What the page says ranks the results."""
    if linked.kind == "facet":
        several = "×" in (resp.query or "")
        return {"kind": "facet", "text": "Ranked by the facets" if several else "Ranked by the facet",
                "name": resp.query or ""}
    if linked.kind == "examples":
        return {"kind": "examples", "text": "Pictures like your marked examples", "name": resp.query or ""}
    return {"kind": "image", "text": "Pictures like a picture kept in a link", "name": ""}


def notices(link: dict[str, str], state: AppState) -> list[str]:
    return rebuilt_notice(link, state.collection, state.service.model)


def citation_context(root: str, resp: SearchResponse, state: AppState) -> dict[str, Any]:
    """The permalink of the results and their exports (CSV, IIIF) for as many items as are shown."""
    path = link_path(resp, state.collection)
    if path is None:
        return {}
    query = path.partition("?")[2]
    shown = resp.offset + len(resp.results)
    k = urlencode([("k", str(max(shown, resp.k)))])
    return {
        "permalink": root + path,
        "export_csv_url": f"{root}/api/export?{query}&format=csv&{k}",
        "export_iiif_url": f"{root}/api/export?{query}&format=iiif&{k}",
    }


def saved_facets(state: AppState) -> list[dict[str, Any]]:
    """Saved facets for the page's "combine" form (read without creating the store)."""
    out = []
    for f in facet_search(state).store.list():
        out.append({"name": f.name, "positives": len(f.definition.positives), "negatives": len(f.definition.negatives)})
    return out


