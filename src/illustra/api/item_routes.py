"""``/api/items/{id}`` and its suffix routes.

Ids hold slashes, so every route takes ``{item_id:path}`` and suffix routes are declared before
the bare one. When a suffix route's prefix is not an item but the whole path is (an id that
itself ends in ``/image``, say), the item's metadata is answered, so every id stays reachable.
Images are read from the collection's Arrow data by row, never from a path in the URL; an item that
keeps only an image URL has its picture fetched from there (``remote_images``), and one that cannot
be had is answered with a placeholder picture and the reason, never an error.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ..errors import BadImage, IllustraError, ItemNotFound
from ..search.limits import MAX_K, MAX_OFFSET, short_id
from ..search.query import parse_search_params
from .openapi import FILTERS_IN_QUERY, IMAGE_TYPES, YEAR_MAX, YEAR_MIN, error_responses
from .remote_images import RemoteUnavailable, placeholder_response, remote_for
from .responses import book_json, item_json, search_json
from .state import AppState, get_state, root_path
from .thumbs import as_servable, content_hash, etag_matches

router = APIRouter(tags=["items"])

CACHE_CONTROL = "public, max-age=86400"
YEAR = Query(ge=YEAR_MIN, le=YEAR_MAX)
_ITEM_JSON = {"schema": {"type": "object", "additionalProperties": True}}


def _image_answers(types: tuple[str, ...], what: str) -> dict[int | str, dict[str, Any]]:
    """200 with the image (or, for an id that itself ends in the suffix, the item's JSON), 304
    for a matching If-None-Match, 404 with the error shape."""
    content: dict[str, Any] = {t: {"schema": {"type": "string", "format": "binary"}} for t in types}
    content["application/json"] = _ITEM_JSON
    return {
        200: {"description": what, "content": content},
        304: {"description": "Not modified (the ETag matches If-None-Match)."},
        **error_responses(404),
    }


class NoImage(IllustraError):
    code = "no_image"
    exit_code = 3
    http_status = 404


def _resolve(state: AppState, item_id: str, suffix: str) -> tuple[str, bool]:
    """(id, True) when ``item_id`` is an item; (full id, False) when ``item_id/suffix`` is one."""
    coll = state.collection
    try:
        coll.row_of(item_id)
        return item_id, True
    except ItemNotFound:
        full = f"{item_id}/{suffix}"
        try:
            coll.row_of(full)
        except ItemNotFound:
            raise ItemNotFound(f"no item with id {short_id(item_id)!r}") from None
        return full, False


def _image_source(state: AppState, item_id: str) -> bytes:
    data = state.collection.image_bytes(state.collection.row_of(item_id))
    if not data:
        raise NoImage(f"item {short_id(item_id)!r} has no image")
    return data


PLACEHOLDER_SIDE = 512


def _image_response(request: Request, body: bytes | None, etag: str, media_type: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if body is None:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


@router.get(
    "/api/items/{item_id:path}/similar",
    summary="More like this",
    description="Items whose pictures look like this item's, with the same filters as a search.",
    responses=error_responses(404, 409, 422, 503),
    openapi_extra=FILTERS_IN_QUERY,
)
def api_similar(
    request: Request,
    item_id: str,
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    year_from: Annotated[int | None, YEAR] = None,
    year_to: Annotated[int | None, YEAR] = None,
) -> dict[str, Any]:
    state = get_state(request)
    target, ok = _resolve(state, item_id, "similar")
    if not ok:
        return item_json(state, target, root_path(request))
    params, _ = parse_search_params(request.query_params.multi_items(), state.service.filterable_fields)
    resp = state.service.search_like(
        target, k=params.k, offset=params.offset, filters=params.filters, grouping=params.grouping
    )
    return search_json(resp, root_path(request), state.collection)


@router.get(
    "/api/items/{item_id:path}/image",
    summary="The item's image",
    response_model=None,
    responses=_image_answers(
        IMAGE_TYPES,
        "The image, as stored or fetched from its source (unusual formats re-encoded as JPEG); for a"
        " remote picture that cannot be fetched, a placeholder PNG with the reason in the"
        " X-Illustra-Image-Error and X-Illustra-Image-Reason headers.",
    ),
)
def api_image(request: Request, item_id: str) -> Response | dict[str, Any]:
    state = get_state(request)
    target, ok = _resolve(state, item_id, "image")
    if not ok:
        return item_json(state, target, root_path(request))
    url = state.collection.image_url(state.collection.row_of(target))
    if url is not None:
        try:
            data = remote_for(state).get(url)
        except RemoteUnavailable as exc:
            return placeholder_response(exc, PLACEHOLDER_SIDE)
    else:
        data = _image_source(state, target)
    etag = f'"{content_hash(data)}"'
    if etag_matches(request.headers.get("if-none-match"), etag):
        return _image_response(request, None, etag, "")
    try:
        body, mime = as_servable(data)
    except BadImage as exc:
        raise NoImage(f"the stored image of {short_id(target)!r} cannot be read: {exc.message}") from None
    return _image_response(request, body, etag, mime)


@router.get(
    "/api/items/{item_id:path}/thumbnail",
    summary="A small JPEG of the item's image",
    response_model=None,
    responses=_image_answers(
        ("image/jpeg", "image/png"),
        "The thumbnail (JPEG); for a remote picture that cannot be fetched, a placeholder PNG with the"
        " reason in the X-Illustra-Image-Error and X-Illustra-Image-Reason headers.",
    ),
)
def api_thumbnail(request: Request, item_id: str) -> Response | dict[str, Any]:
    state = get_state(request)
    target, ok = _resolve(state, item_id, "thumbnail")
    if not ok:
        return item_json(state, target, root_path(request))
    url = state.collection.image_url(state.collection.row_of(target))
    if url is not None:
        return _remote_thumbnail(request, state, url)
    data = _image_source(state, target)
    source_hash = content_hash(data)
    etag = f'"t{state.thumbs.side}-{source_hash}"'
    if etag_matches(request.headers.get("if-none-match"), etag):
        return _image_response(request, None, etag, "")
    try:
        thumb = state.thumbs.get(data, source_hash)
    except BadImage as exc:
        raise NoImage(f"the stored image of {short_id(target)!r} cannot be read: {exc.message}") from None
    return _image_response(request, thumb, etag, "image/jpeg")


def _remote_thumbnail(request: Request, state: AppState, url: str) -> Response:
    """A remote item's thumbnail, keyed by its URL: once made, it is served (or answered 304)
    without fetching the picture again, even after the picture has left the remote cache."""
    remote = remote_for(state)
    key = "r" + content_hash(url.encode("utf-8"))
    etag = f'"t{state.thumbs.side}-{key}"'
    if etag_matches(request.headers.get("if-none-match"), etag):
        return _image_response(request, None, etag, "")
    try:
        thumb = state.thumbs.get_lazy(key, lambda: remote.get(url))
    except RemoteUnavailable as exc:
        return placeholder_response(exc, state.thumbs.side)
    except BadImage as exc:
        problem = RemoteUnavailable("not_an_image", f"the source did not send a readable picture ({exc.message})")
        return placeholder_response(problem, state.thumbs.side)
    return _image_response(request, thumb, etag, "image/jpeg")


@router.get(
    "/api/items/{item_id:path}/book",
    summary="Other illustrations from the same book",
    responses=error_responses(404, 422),
)
def api_book(
    request: Request,
    item_id: str,
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    state = get_state(request)
    target, ok = _resolve(state, item_id, "book")
    if not ok:
        return item_json(state, target, root_path(request))
    return book_json(state, target, k, offset, root_path(request))


@router.get("/api/items/{item_id:path}", summary="An item's metadata", responses=error_responses(404))
def api_item(request: Request, item_id: str) -> dict[str, Any]:
    state = get_state(request)
    if item_id.endswith(POST_ONLY_SUFFIXES):
        try:
            state.collection.row_of(item_id)
        except ItemNotFound:
            # ``…/report`` is the report route, which takes POST only (unless the id itself ends so).
            raise HTTPException(405, headers={"Allow": "POST"}) from None
    out = item_json(state, item_id, root_path(request))
    url = state.collection.image_url(state.collection.row_of(item_id))
    if url is not None:
        # Whether the picture has been fetched, or why it cannot be (nothing is fetched here).
        out["image_status"] = remote_for(state).status(url)
    return out


POST_ONLY_SUFFIXES = ("/report",)
