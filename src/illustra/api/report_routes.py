""" "Report this result" and the About cards.

* ``POST /api/items/{id}/report`` — JSON (or form) ``{"query": ..., "reason": ...}``; stored in
  ``<collection>/feedback.sqlite``; answers 201 with the stored report.
* ``POST /items/{id}/report`` — the same from the web page's form, answered with a thank-you page
  that links back to the results (works without JavaScript).
* ``GET /api/about`` — the collection and model cards as JSON (what the About page shows).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from ..errors import BadInput, IllustraError, ItemNotFound
from ..guardrails.feedback import REASONS, FeedbackStore
from .state import AppState, get_state, root_path

router = APIRouter(tags=["feedback"])

MAX_BODY = 16_000


async def _read_fields(request: Request) -> dict[str, str]:
    """The report's fields from a JSON or form body (bounded in size)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise BadInput(f"the report is larger than {MAX_BODY} bytes")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json" or (not ctype and body.strip().startswith(b"{")):
        try:
            data = json.loads(body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(f"the body is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise BadInput('send a JSON object: {"query": "...", "reason": "..."}')
        return {k: v if isinstance(v, str) else "" if v is None else str(v) for k, v in data.items()}
    if ctype == "application/x-www-form-urlencoded":
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError as exc:
            raise BadInput("the form is not UTF-8") from exc
    raise BadInput("send the report as application/json or as a form")


def _store(state: AppState, item_id: str, fields: dict[str, str]) -> dict[str, Any]:
    try:
        state.collection.row_of(item_id)
    except ItemNotFound:
        raise ItemNotFound(f"no item with id {item_id!r}") from None
    reason = (fields.get("reason") or "").strip()
    details = (fields.get("details") or "").strip()
    if details:
        reason = f"{reason}: {details}" if reason else details
    query = fields.get("query") or ""
    store = FeedbackStore(state.collection.root)
    report_id = store.add(item_id, query, reason)
    return store.list(item_id=item_id, limit=1)[0] | {"id": report_id}


@router.post(
    "/api/items/{item_id:path}/report",
    summary="Report this result",
    status_code=201,
    description="Tell the collection's owner that a result is offensive, wrong or a privacy concern. "
    'Body: {"query": "the search that showed it", "reason": "why"}. Suggested reasons: ' + "; ".join(REASONS),
)
async def report_item(request: Request, item_id: str) -> JSONResponse:
    state = get_state(request)
    fields = await _read_fields(request)
    stored = await run_in_threadpool(_store, state, item_id, fields)
    return JSONResponse({"report": stored}, status_code=201)


def _safe_return(root: str, value: str | None) -> str:
    """A local results URL to go back to (never another site; never the partial fragment)."""
    fallback = f"{root}/"
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return fallback
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or (root and not parts.path.startswith(root)):
        return fallback
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "partial"]
    return parts.path + (f"?{urlencode(query)}" if query else "")


@router.post("/items/{item_id:path}/report", include_in_schema=False)
async def report_page(request: Request, item_id: str) -> Response:
    from .pages import _base_context, render_error_page

    state = get_state(request)
    root = root_path(request)
    try:
        fields = await _read_fields(request)
        stored = await run_in_threadpool(_store, state, item_id, fields)
    except IllustraError as exc:
        return render_error_page(request, exc.http_status, exc.message)
    ctx = _base_context(request, state)
    meta = state.collection.metadata(state.collection.row_of(item_id))
    ctx.update(
        report=stored,
        item_title=meta.get("title") or item_id,
        return_to=_safe_return(root, fields.get("return_to")),
    )
    templates = request.app.state.templates
    return templates.TemplateResponse(request, "report_thanks.html", ctx, status_code=201)


@router.get("/api/about", summary="Collection and model cards", tags=["collection"])
async def about(request: Request) -> JSONResponse:
    from ..cards import render_about

    state = get_state(request)
    data = await run_in_threadpool(render_about, state.collection, figures=False)
    return JSONResponse(data)
