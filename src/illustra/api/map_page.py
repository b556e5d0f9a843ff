"""``/map``: the Map view. The page holds the frame, the controls and the regions' names as a list
(so the map's overview reads without the picture); ``static/map.js`` draws every point on a canvas
from ``/api/map``'s binary chunks. The URL's search (``q``, ``mode``, filters) is highlighted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..errors import BadInput
from ..search.query import parse_search_params
from .map_routes import map_store
from .state import get_state
from .urls import page_url

router = APIRouter(include_in_schema=False)

REGION_LEVEL = 4  # the regions listed on the page: the map cut into 4 x 4


def _render(request: Request, ctx: dict[str, Any], status: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(request, "map.html", ctx, status_code=status)


@router.get("/map")
def map_page(request: Request) -> Response:
    from .pages import _base_context, root_path

    state = get_state(request)
    root = root_path(request)
    ctx = _base_context(request, state)
    m = map_store(state).current()
    if m is None:
        ctx["not_built"] = True
        return _render(request, ctx, 409)
    items = list(request.query_params.multi_items())
    try:
        params, _ = parse_search_params(
            items, state.service.filterable_fields, skip_empty=True, ignore_unknown=True
        )
    except BadInput as exc:
        ctx["error"] = exc.message
        params = None
    highlight: list[tuple[str, str]] = []
    if params is not None:
        if (params.q or "").strip():
            highlight.append(("q", params.q or ""))
            if params.mode:
                highlight.append(("mode", str(params.mode)))
        highlight += params.filter_items()
    regions = sorted((lab for lab in m.labels if lab["level"] == REGION_LEVEL), key=lambda lab: -lab["count"])
    ctx.update(
        map_meta=m.meta,
        q=(params.q or "") if params else "",
        highlight=highlight,
        highlight_url=page_url("/api/map/highlight", highlight, root) if highlight else "",
        results_url=page_url("/search", highlight, root) if highlight else "",
        regions=[
            {**lab, "url": page_url("/search", [("q", " ".join(lab["words"])), ("mode", "text")], root)}
            for lab in regions
        ],
    )
    return _render(request, ctx)
