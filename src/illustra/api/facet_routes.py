"""``/api/facets``: facets by example, saved in the collection; searched and exported like any
result set.

Bodies are JSON read with the same guards as a report's (size, nesting, number length) and
checked by pydantic; names and examples are then checked by the core, so the CLI and the API say
the same thing about the same mistake.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from ..errors import BadInput
from ..facets import FacetDefinition, FacetSearch
from ..facets.definition import NAME_RE
from ..facets.search import Facet, facet_json
from ..search.limits import MAX_COMBINED_FACETS, MAX_EXAMPLES, MAX_FACET_NAME_CHARS, MAX_K, MAX_OFFSET
from ..search.query import parse_search_params
from .openapi import FILTERS_IN_QUERY, error_responses
from .report_routes import check_json_shape
from .responses import search_json
from .state import AppState, get_state, root_path
from .uploads import TooLarge, size_words
from .urls import quote_id

router = APIRouter(tags=["facets"])

MAX_ID_CHARS = 1000
# Every body the schema allows fits: three lists of MAX_EXAMPLES ids of MAX_ID_CHARS characters,
# each character JSON-escaped (at most 6 bytes).
MAX_FACET_BODY = 3 * MAX_EXAMPLES * (6 * MAX_ID_CHARS + 4) + 4096
NAME_PATTERN = "^" + NAME_RE.pattern.removesuffix(r"\Z") + "$"
_SURROGATE = re.compile("[\ud800-\udfff]")

ItemId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS, json_schema_extra={"pattern": r"\S"})]
NAME_DOC = "Letters, digits, '-' and '_', starting with a letter or digit; unique (whatever the case)."


def _no_surrogates(values: list[str]) -> list[str]:
    for v in values:
        if _SURROGATE.search(v):
            raise ValueError("holds an id that is not valid Unicode text (a lone surrogate)")
    return values


class FacetIn(BaseModel):
    """A new facet: its name and the items marked as examples of it (positive) or not (negative)."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[
        str,
        Field(min_length=1, max_length=MAX_FACET_NAME_CHARS, description=NAME_DOC,
              json_schema_extra={"pattern": NAME_PATTERN}),
    ]
    positive: Annotated[
        list[ItemId],
        Field(min_length=1, max_length=MAX_EXAMPLES,
              description=f"Ids of items that are what the facet is about (at most {MAX_EXAMPLES:,} examples in all)."),
    ]
    negative: Annotated[
        list[ItemId], Field(max_length=MAX_EXAMPLES, description="Ids of items that are not.")
    ] = []

    _ids = field_validator("positive", "negative")(_no_surrogates)


class FacetChange(BaseModel):
    """Examples to add to a facet (an id added to one side leaves the other) or to take away."""

    model_config = ConfigDict(extra="forbid")
    positive: Annotated[list[ItemId], Field(max_length=MAX_EXAMPLES)] = []
    negative: Annotated[list[ItemId], Field(max_length=MAX_EXAMPLES)] = []
    remove: Annotated[list[ItemId], Field(max_length=MAX_EXAMPLES)] = []

    _ids = field_validator("positive", "negative", "remove")(_no_surrogates)


class SkippedOut(BaseModel):
    id: str
    reason: str


class FacetOut(BaseModel):
    name: str
    positive: list[str]
    negative: list[str]
    created: str
    updated: str
    definition: str | None = Field(
        description="The examples encoded for a link (`/search?fdef=…`); null when too many to fit."
    )
    search_url: str
    skipped: list[SkippedOut] = Field(default=[], description="Examples left out: not items here, or without a picture.")


class FacetList(BaseModel):
    facets: list[FacetOut]


class Deleted(BaseModel):
    deleted: str


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def facet_search(state: AppState) -> FacetSearch:
    """The app's one ``FacetSearch`` (trained facets are kept in it between requests)."""
    fs = state.extra.get("facet_search")
    if fs is None:
        fs = state.extra.setdefault("facet_search", FacetSearch(state.service))
    return fs


def only_methods(path: str, allowed: str) -> None:
    """Answer other methods on ``path`` with 405 naming every allowed one (a path served by
    several routes would otherwise name only the first route's methods)."""

    def not_allowed() -> None:
        raise HTTPException(405, headers={"Allow": allowed})

    others = [m for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE") if m not in allowed]
    router.add_api_route(path, not_allowed, methods=others, include_in_schema=False)


async def read_json(request: Request, model: type[BaseModel], limit: int = MAX_FACET_BODY) -> Any:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"the request body is larger than the {size_words(limit)} limit")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/json", ""):
        raise BadInput("send the body as application/json")
    check_json_shape(bytes(body))
    try:
        data = json.loads(bytes(body) or b"null")
    except (ValueError, RecursionError):
        raise BadInput("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadInput("send a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [dict(e, loc=("body", *e.get("loc", ()))) for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def _out(request: Request, saved: Any, skipped: Any = ()) -> dict[str, Any]:
    out = facet_json(saved, skipped)
    out["search_url"] = f"{root_path(request)}/api/facets/{quote_id(saved.name)}/search"
    out.setdefault("skipped", [])
    return out


@router.post(
    "/api/facets",
    summary="Save a facet",
    status_code=201,
    response_model=FacetOut,
    responses=error_responses(404, 409, 413, 422),
    description="Train and keep a facet from marked examples. Ids that are not items here (or have no "
    "picture) are skipped and listed in `skipped`; none of the positives known is 404, a name in use 409.",
    openapi_extra=_body(FacetIn),
)
async def create_facet(request: Request) -> JSONResponse:
    fs = facet_search(get_state(request))
    body: FacetIn = await read_json(request, FacetIn)
    definition = FacetDefinition.of(body.positive, body.negative, check=False)
    saved, skipped = await run_in_threadpool(fs.create, body.name, definition)
    return JSONResponse(_out(request, saved, skipped), status_code=201)


@router.get("/api/facets", summary="Saved facets", response_model=FacetList)
def list_facets(request: Request) -> dict[str, Any]:
    fs = facet_search(get_state(request))
    return {"facets": [_out(request, f) for f in fs.store.list()]}


@router.get("/api/facets/{name}", summary="A saved facet", response_model=FacetOut, responses=error_responses(404))
def get_facet(request: Request, name: str) -> dict[str, Any]:
    return _out(request, facet_search(get_state(request)).store.get(name))


@router.patch(
    "/api/facets/{name}",
    summary="Add or take away examples",
    response_model=FacetOut,
    responses=error_responses(404, 413, 422),
    openapi_extra=_body(FacetChange),
)
async def change_facet(request: Request, name: str) -> dict[str, Any]:
    fs = facet_search(get_state(request))
    fs.store.get(name)  # an unknown facet is 404 whatever the body
    body: FacetChange = await read_json(request, FacetChange)
    saved, skipped = await run_in_threadpool(fs.change, name, body.positive, body.negative, body.remove)
    return _out(request, saved, skipped)


@router.delete("/api/facets/{name}", summary="Delete a facet", response_model=Deleted, responses=error_responses(404))
def delete_facet(request: Request, name: str) -> dict[str, Any]:
    fs = facet_search(get_state(request))
    saved = fs.store.get(name)
    fs.store.delete(saved.name)
    return {"deleted": saved.name}


AND_QUERY = Query(
    alias="and",
    max_length=MAX_COMBINED_FACETS - 1,
    description="Other saved facets to combine with (probabilities multiplied); repeat the parameter.",
)


def facets_named(fs: FacetSearch, name: str, also: list[str] | None) -> list[Facet]:
    return [fs.saved(n) for n in (name, *(also or []))]


def search_params(request: Request, fs: FacetSearch, skip: tuple[str, ...], **kw: Any) -> Any:
    items = [(n, v) for n, v in request.query_params.multi_items() if n not in skip]
    params, _ = parse_search_params(items, fs.service.filterable_fields, **kw)
    if params.q is not None or params.mode is not None:
        raise BadInput("a facet search takes no text query or mode: it ranks by the facet alone")
    return params


@router.get(
    "/api/facets/{name}/search",
    summary="Rank the collection by a facet",
    description="The collection within the filters, ranked by the facet's probability (or the product of "
    "several facets' with `and`): the same result shape, filters and paging as `/api/search`.",
    responses=error_responses(404, 409, 422),
    openapi_extra=FILTERS_IN_QUERY,
)
def search_facet(
    request: Request,
    name: str,
    also: Annotated[list[str] | None, AND_QUERY] = None,
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    state = get_state(request)
    fs = facet_search(state)
    facets = facets_named(fs, name, also)
    params = search_params(request, fs, ("and",))
    resp = fs.search(facets, params.k, params.offset, params.filters)
    return search_json(resp, root_path(request), state.collection)


only_methods("/api/facets", "GET, POST")
only_methods("/api/facets/{name}", "GET, PATCH, DELETE")
