"""``/api/search`` (text), ``/api/search/image`` (upload or URL) and ``/api/collection``."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from ..errors import BadInput
from ..search.limits import MAX_K, MAX_OFFSET, MAX_QUERY_CHARS, Mode
from ..search.query import parse_search_params, require_query
from .responses import collection_json, search_json
from .state import get_state, root_path
from .uploads import fetch_image_url, read_upload_form

router = APIRouter(tags=["search"])

FILTER_DOC = (
    "Any other parameter naming a filterable field (see `/api/collection`) is an exact, "
    "case-insensitive match; unknown parameters are refused with 422."
)

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "image": {"type": "string", "format": "binary", "description": "The query image."},
                        "url": {
                            "type": "string",
                            "description": "Fetch the query image from this http(s) URL instead "
                            "(only when the server allows it; otherwise 403 refused).",
                        },
                        "k": {"type": "integer", "minimum": 1, "maximum": MAX_K},
                        "offset": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
                        "year_from": {"type": "integer"},
                        "year_to": {"type": "integer"},
                    },
                }
            }
        },
    }
}


@router.get("/api/search", summary="Search by text", description=FILTER_DOC)
def api_search(
    request: Request,
    response: Response,
    q: Annotated[str, Query(max_length=MAX_QUERY_CHARS, description="Words describing the picture.")],
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    mode: Annotated[Mode | None, Query()] = None,
    year_from: int | None = None,
    year_to: int | None = None,
    title_contains: Annotated[str | None, Query(max_length=MAX_QUERY_CHARS)] = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    state = get_state(request)
    params, _ = parse_search_params(request.query_params.multi_items(), state.service.filterable_fields)
    text = require_query(params.q)
    resp = state.service.search_text(
        text, k=params.k, offset=params.offset, filters=params.filters, mode=params.mode
    )
    response.headers["Server-Timing"] = _timing(started)
    return search_json(resp, root_path(request), state.collection)


def _timing(started: float) -> str:
    """Time spent in the search (embedding, index, metadata), for operators and benchmarks."""
    return f"search;dur={(time.perf_counter() - started) * 1000:.1f}"


@router.post(
    "/api/search/image",
    summary="Search by example image",
    description="Upload an image as multipart field `image` (or give `url`, when allowed). "
    "k, offset and filters go in the query string or as form fields. " + FILTER_DOC,
    openapi_extra=_UPLOAD_BODY,
)
async def api_search_image(request: Request, response: Response) -> dict[str, Any]:
    state = get_state(request)
    form = await read_upload_form(request)
    given = [(n, v) for n, v in form.fields if n != "url"]
    url = next((v for n, v in form.fields if n == "url" and v.strip()), None)
    params, _ = parse_search_params(
        list(request.query_params.multi_items()) + given, state.service.filterable_fields
    )
    if form.image is None and url is None:
        raise BadInput("no image: send a file in the multipart field 'image' (or a 'url' field)")
    data = form.image if form.image is not None else await fetch_image_url(str(url))
    started = time.perf_counter()
    resp = await run_in_threadpool(
        state.service.search_image, data, k=params.k, offset=params.offset, filters=params.filters
    )
    response.headers["Server-Timing"] = _timing(started)
    return search_json(resp, root_path(request), state.collection)


@router.get("/api/collection", summary="What this collection holds")
def api_collection(request: Request) -> dict[str, Any]:
    return collection_json(get_state(request), root_path(request))
