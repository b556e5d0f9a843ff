"""``/api/search`` (text), ``/api/search/image`` (upload or URL) and ``/api/collection``."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from ..errors import BadInput
from ..search.limits import MAX_K, MAX_OFFSET, MAX_QUERY_CHARS, Mode
from ..search.query import BadParam, SearchParams, parse_search_params, require_query
from .openapi import FILTERS_IN_QUERY, FILTERS_IN_QUERY_AND_FORM, YEAR_MAX, YEAR_MIN, error_responses
from .responses import collection_json, search_json
from .state import get_state, root_path
from .uploads import MAX_URL_CHARS, UPLOAD_TYPES, fetch_image_url, read_upload_form

router = APIRouter(tags=["search"])

FILTER_DOC = (
    "Filters: year_from / year_to (or year), include_undated, title_contains, and a parameter for "
    "each filterable field of the collection (see `/api/collection`), an exact, case-insensitive "
    "match. Unknown parameters are refused with 422."
)
YEAR = Query(ge=YEAR_MIN, le=YEAR_MAX)

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "image": {"type": "string", "format": "binary", "description": "The query image."},
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "The query image, under the name most clients use.",
                        },
                        "url": {
                            "type": "string",
                            "maxLength": MAX_URL_CHARS,
                            "description": "Fetch the query image from this http(s) URL instead "
                            "(only when the server allows it; otherwise 403 refused).",
                        },
                        "k": {"type": "integer", "minimum": 1, "maximum": MAX_K},
                        "offset": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
                    },
                    # One image: a file, or a URL.
                    "oneOf": [{"required": ["image"]}, {"required": ["file"]}, {"required": ["url"]}],
                    "additionalProperties": False,
                },
                "encoding": {
                    "image": {"contentType": ", ".join(UPLOAD_TYPES)},
                    "file": {"contentType": ", ".join(UPLOAD_TYPES)},
                },
            }
        },
    },
    **FILTERS_IN_QUERY_AND_FORM,
}


@router.get(
    "/api/search",
    summary="Search by text",
    description=FILTER_DOC,
    responses=error_responses(403, 409, 422, 503),
    openapi_extra=FILTERS_IN_QUERY,
)
def api_search(
    request: Request,
    response: Response,
    q: Annotated[
        str,
        Query(
            max_length=MAX_QUERY_CHARS,
            description="Words describing the picture (not only spaces).",
            json_schema_extra={"pattern": r"\S"},
        ),
    ],
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    mode: Annotated[Mode | None, Query()] = None,
    year_from: Annotated[int | None, YEAR] = None,
    year_to: Annotated[int | None, YEAR] = None,
    title_contains: Annotated[str | None, Query(max_length=MAX_QUERY_CHARS)] = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    state = get_state(request)
    params, _ = parse_search_params(request.query_params.multi_items(), state.service.filterable_fields)
    text = require_query(params.q)
    resp = state.service.search_text(
        text, k=params.k, offset=params.offset, filters=params.filters, mode=params.mode, grouping=params.grouping
    )
    response.headers["Server-Timing"] = _timing(started)
    return search_json(resp, root_path(request), state.collection)


def _timing(started: float) -> str:
    """Time spent in the search (embedding, index, metadata), for operators and benchmarks."""
    return f"search;dur={(time.perf_counter() - started) * 1000:.1f}"


def _image_search_params(
    query: list[tuple[str, str]], form: list[tuple[str, str]], filterable: list[str]
) -> SearchParams:
    """Paging and filters from the query string and the form: each is checked on its own, and a
    parameter given in both is taken from the form."""
    for items in (query, form):
        params, _ = parse_search_params(items, filterable)
        for name in ("q", "mode"):
            if name in dict(items):
                raise BadParam(name, f"{name} does not apply to a search by image")
    in_form = {n for n, _ in form}
    params, _ = parse_search_params([(n, v) for n, v in query if n not in in_form] + form, filterable)
    return params


@router.post(
    "/api/search/image",
    summary="Search by example image",
    description="Upload an image as multipart field `image` (or `file`), or give `url` when the "
    "server allows it. k, offset and filters go in the query string or as form fields (a form field "
    "wins over the same parameter in the query string). " + FILTER_DOC,
    responses=error_responses(403, 409, 413, 422, 502, 503),
    openapi_extra=_UPLOAD_BODY,
)
async def api_search_image(request: Request, response: Response) -> dict[str, Any]:
    state = get_state(request)
    form = await read_upload_form(request)
    given = [(n, v) for n, v in form.fields if n != "url"]
    urls = [v for n, v in form.fields if n == "url"]
    params = _image_search_params(
        list(request.query_params.multi_items()), given, state.service.filterable_fields
    )
    if len(urls) > 1:
        raise BadParam("url", "give 'url' only once")
    url = urls[0] if urls else None
    if url is not None and len(url) > MAX_URL_CHARS:
        raise BadParam("url", f"the image URL is {len(url):,} characters; the limit is {MAX_URL_CHARS:,}")
    if form.image is not None and url is not None:
        raise BadInput("give one image: a file or a 'url', not both")
    if form.image is None and url is None:
        if form.empty_field:
            raise BadInput(f"the file in {form.empty_field!r} is empty; choose a picture to upload")
        raise BadInput("no image: send a file in the multipart field 'image' or 'file' (or a 'url' field)")
    data = form.image if form.image is not None else await fetch_image_url(str(url), cfg=state.settings)
    started = time.perf_counter()
    resp = await run_in_threadpool(
        state.service.search_image,
        data,
        k=params.k,
        offset=params.offset,
        filters=params.filters,
        grouping=params.grouping,
    )
    response.headers["Server-Timing"] = _timing(started)
    return search_json(resp, root_path(request), state.collection)


@router.get("/api/collection", summary="What this collection holds")
def api_collection(request: Request) -> dict[str, Any]:
    return collection_json(get_state(request), root_path(request))
