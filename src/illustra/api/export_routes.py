"""Exports: any result set as CSV or a IIIF Presentation 3 manifest.

* ``GET /api/export?<the /api/search parameters>&format=csv|iiif`` — also what a permalink holds
  instead of ``q`` (``like``, ``vec``, ``facet``, ``fdef``, ``ex`` with ``tw``), so the page's
  "Export" works for every result set;
* ``GET /api/facets/{name}/export`` — a facet's ranking (``and`` combines more);
* ``POST /api/export/selection`` — a saved selection ("my library"), ids in its order.

A manifest is served inline with ``Access-Control-Allow-Origin: *`` so viewers on other sites
(Mirador, Universal Viewer) can open its URL; a CSV file is an attachment.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..exports.build import IIIF_TYPE, ExportFile, from_response, from_selection, render
from ..exports.items import check_export_size, check_format
from ..exports.resultset import run_result_set
from ..facets.linked import LinkedSearch, split_link_params
from ..search.limits import MAX_EXPORT_ITEMS, MAX_OFFSET, MAX_QUERY_CHARS
from ..search.query import parse_search_params
from .facet_routes import (
    AND_QUERY,
    _no_surrogates,
    facet_search,
    facets_named,
    read_json,
    search_params,
)
from .openapi import FILTERS_IN_QUERY, error_responses
from .state import get_state

router = APIRouter(tags=["exports"])

DEFAULT_EXPORT_K = 100
# A selection's ids are bounded tighter than a facet's examples, so that every body the schema
# allows (MAX_EXPORT_ITEMS ids, each character JSON-escaped in at most 6 bytes) stays within the
# server's body limit.
SELECTION_ID_CHARS = 300
MAX_SELECTION_BODY = MAX_EXPORT_ITEMS * (6 * SELECTION_ID_CHARS + 4) + 4096
Format = Literal["csv", "iiif"]
FORMAT_QUERY = Query(description="`csv` (a table) or `iiif` (a IIIF Presentation 3 manifest).")
EXPORT_K = Query(
    ge=1,
    json_schema_extra={"maximum": MAX_EXPORT_ITEMS},
    description=f"How many items, from the top of the ranking (at most {MAX_EXPORT_ITEMS:,}).",
)
_FILE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The export: CSV (columns id, title, creator, date, place, publisher, source URL, score, "
        "rank, permalink) or a IIIF Presentation 3 manifest.",
        "content": {"text/csv": {"schema": {"type": "string"}}, "application/ld+json": {"schema": {"type": "object"}}},
    }
}


def file_response(f: ExportFile) -> Response:
    headers = {"Cache-Control": "no-store"}
    if f.media_type == IIIF_TYPE:
        headers["Access-Control-Allow-Origin"] = "*"
        headers["Content-Disposition"] = f'inline; filename="{f.filename}"'
    else:
        headers["Content-Disposition"] = f'attachment; filename="{f.filename}"'
    return Response(f.body, media_type=f.media_type, headers=headers)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get(
    "/api/export",
    summary="Export a result set",
    description="The parameters of `/api/search` (q, mode, filters; k up to "
    f"{MAX_EXPORT_ITEMS:,}) and `format`. Instead of `q`, a permalink's parameters name the result set: "
    "`like=ID` (more like this), `vec` (a picture), `facet=NAME,NAME` or `fdef=…` (facets), `ex=…` "
    "with an optional `q` and `tw` (marked examples); its `model` and `built` are accepted and ignored.",
    response_model=None,
    responses={**_FILE, **error_responses(404, 409, 422, 503)},
    openapi_extra={
        **FILTERS_IN_QUERY,
        "parameters": [
            {"name": "q", "in": "query", "required": True, "description": "Words describing the picture.",
             "schema": {"type": "string", "maxLength": MAX_QUERY_CHARS, "pattern": r"\S"}},
            {"name": "mode", "in": "query", "required": False, "schema": {"$ref": "#/components/schemas/Mode"}},
            {"name": "offset", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}},
        ],
    },
)
def api_export(
    request: Request,
    format: Annotated[Format, FORMAT_QUERY] = "csv",
    k: Annotated[int, EXPORT_K] = DEFAULT_EXPORT_K,
) -> Response:
    state = get_state(request)
    fs = facet_search(state)
    rest, link = split_link_params(request.query_params.multi_items())
    items = [(n, v) for n, v in rest if n != "format"]
    params, _ = parse_search_params(
        items, fs.service.filterable_fields, default_k=DEFAULT_EXPORT_K, max_k=10**9, allowed_extra=("like",)
    )
    check_export_size(params.k)
    resp = run_result_set(
        fs,
        q=params.q,
        mode=params.mode,
        like=params.extra.get("like"),
        linked=LinkedSearch.parse(link),
        k=params.k,
        offset=params.offset,
        filters=params.filters,
    )
    base = _base(request)
    return file_response(render(from_response(resp, fs.service, base, str(request.url)), format, base))


@router.get(
    "/api/facets/{name}/export",
    summary="Export a facet's ranking",
    description="The collection within the filters, ranked by the facet (and the facets in `and`), as CSV or "
    f"a IIIF manifest; k up to {MAX_EXPORT_ITEMS:,}.",
    response_model=None,
    responses={**_FILE, **error_responses(404, 409, 422)},
    openapi_extra=FILTERS_IN_QUERY,
)
def api_facet_export(
    request: Request,
    name: str,
    also: Annotated[list[str] | None, AND_QUERY] = None,
    format: Annotated[Format, FORMAT_QUERY] = "csv",
    k: Annotated[int, EXPORT_K] = DEFAULT_EXPORT_K,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    fs = facet_search(get_state(request))
    facets = facets_named(fs, name, also)
    params = search_params(request, fs, ("and", "format"), default_k=DEFAULT_EXPORT_K, max_k=10**9)
    check_export_size(params.k)
    resp = fs.ranked(facets, params.k, params.offset, params.filters)
    base = _base(request)
    return file_response(render(from_response(resp, fs.service, base, str(request.url)), format, base))


class SelectionIn(BaseModel):
    """A saved selection to export: item ids in the order they were kept."""

    model_config = ConfigDict(extra="forbid")
    ids: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=SELECTION_ID_CHARS)]],
        Field(min_length=1, max_length=MAX_EXPORT_ITEMS),
    ]
    format: Format = "csv"

    _ids = field_validator("ids")(_no_surrogates)


@router.post(
    "/api/export/selection",
    summary="Export a saved selection",
    description="A selection kept in the browser (\"my library\"), as CSV or a IIIF manifest. Ids that are "
    "not items here are left out (the file says how many). The items' pages are their links.",
    response_model=None,
    responses={**_FILE, **error_responses(404, 413, 422)},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": SelectionIn.model_json_schema()}},
        }
    },
)
async def api_selection_export(request: Request) -> Response:
    state = get_state(request)
    body: SelectionIn = await read_json(request, SelectionIn, MAX_SELECTION_BODY)
    base = _base(request)

    def build() -> ExportFile:
        export, _ = from_selection(state.service, body.ids, base, f"{base}/api/export/selection")
        return render(export, check_format(body.format), base)

    return file_response(await run_in_threadpool(build))


