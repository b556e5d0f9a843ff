"""``/library``: "my library", the items a reader keeps with ☆ on any result.

The list lives in the browser (localStorage): the page's script posts it here (``ids``, a JSON
array) and the server renders the items; exports go to ``POST /api/export/selection``. Without
the script there is nothing to show, and the page says what the library is.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..errors import BadInput, IllustraError, ItemNotFound
from ..search.limits import MAX_EXPORT_ITEMS
from ..search.shape import public_metadata
from .state import get_state
from .uploads import TooLarge, size_words
from .urls import item_links

router = APIRouter(include_in_schema=False)

MAX_LIBRARY_BODY = MAX_EXPORT_ITEMS * 1100 + 4096


def _render(request: Request, ctx: dict[str, Any], status: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(request, "library.html", ctx, status_code=status)


@router.get("/library")
def library_page(request: Request) -> Response:
    from .pages import _base_context

    return _render(request, _base_context(request, get_state(request)))


def _ids(body: bytes) -> list[str]:
    try:
        fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        ids = json.loads(fields.get("ids") or "[]")
    except (UnicodeDecodeError, ValueError):
        raise BadInput("the library sent by the browser cannot be read") from None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise BadInput("the library sent by the browser is not a list of item ids")
    if len(ids) > MAX_EXPORT_ITEMS:
        raise BadInput(f"the library holds {len(ids):,} items; at most {MAX_EXPORT_ITEMS:,} can be shown")
    return list(dict.fromkeys(ids))


@router.post("/library")
async def library_items(request: Request) -> Response:
    from .pages import _base_context, render_error_page, root_path

    state = get_state(request)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LIBRARY_BODY:
            raise TooLarge(f"the library is larger than the {size_words(MAX_LIBRARY_BODY)} limit")
    try:
        ids = _ids(bytes(body))
    except IllustraError as exc:
        return render_error_page(request, exc.http_status, exc.message)
    coll = state.collection
    root = root_path(request)
    items, unknown = [], []
    for item_id in ids:
        try:
            row = coll.row_of(item_id)
        except ItemNotFound:
            unknown.append(item_id)
            continue
        meta = coll.metadata(row)
        meta.pop("id", None)
        items.append({"id": item_id, "metadata": public_metadata(meta), "has_image": coll.has_image(row),
                      **item_links(item_id, root)})
    ctx = _base_context(request, state)
    ctx.update(items=items, unknown=unknown)
    return _render(request, ctx)
