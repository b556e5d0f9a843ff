""" "Report this result" and the About cards.

* ``POST /api/items/{id}/report`` — JSON (or form) ``{"query": ..., "reason": ...}``; stored in
  ``<collection>/feedback.sqlite``; answers 201 with the stored report.
* ``POST /items/{id}/report`` — the same from the web page's form, answered with a thank-you page
  that links back to the results (works without JavaScript).
* ``GET /api/about`` — the collection and model cards as JSON (what the About page shows).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from ..errors import BadInput, IllustraError
from ..guardrails.feedback import MAX_QUERY_CHARS, MAX_REASON_CHARS, REASONS, FeedbackStore
from .error_handlers import public_message, validation_message
from .openapi import error_responses
from .redact import public_about
from .responses import row_of
from .state import AppState, get_state, root_path
from .uploads import TooLarge, size_words

router = APIRouter(tags=["feedback"])

MAX_BODY = 16_000  # bytes of a report body, JSON or form
MAX_JSON_DEPTH = 8  # a report is a flat object; anything deeper is refused before parsing
MAX_NUMBER_DIGITS = 40  # nor is a number longer than this parsed
MAX_REPORT_REASON = 1000
# The stored reason is "reason: details", within the store's limit.
MAX_REPORT_DETAILS = MAX_REASON_CHARS - MAX_REPORT_REASON - 2
_SURROGATE = re.compile("[\ud800-\udfff]")


class ReportIn(BaseModel):
    """A report about one result."""

    model_config = ConfigDict(extra="forbid", regex_engine="python-re")

    reason: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_REPORT_REASON,
            pattern=r"\S",
            description="Why the result is a problem. Suggested: " + "; ".join(REASONS) + ".",
            examples=[REASONS[0]],
        ),
    ]
    query: Annotated[
        str, Field(max_length=MAX_QUERY_CHARS, description="The search that showed the result.")
    ] = ""
    details: Annotated[
        str, Field(max_length=MAX_REPORT_DETAILS, description="More words about the reason (optional).")
    ] = ""

    @field_validator("reason", "query", "details")
    @classmethod
    def _unicode_text(cls, value: str) -> str:
        if _SURROGATE.search(value):
            raise ValueError("is not valid Unicode text (it holds a lone surrogate)")
        return value


class StoredReport(BaseModel):
    id: int
    item_id: str
    query: str
    reason: str
    created: str
    hidden: bool


class ReportOut(BaseModel):
    report: StoredReport


def check_json_shape(body: bytes) -> None:
    """Refuse JSON that is nested too deeply or holds an overlong number, before parsing it (the
    parser would recurse, or spend quadratic time on the digits)."""
    depth = 0
    digits = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
            continue
        if 0x30 <= byte <= 0x39:
            digits += 1
            if digits > MAX_NUMBER_DIGITS:
                raise BadInput(f"the JSON holds a number longer than {MAX_NUMBER_DIGITS} digits")
            continue
        digits = 0
        if byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise BadInput(f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep")
        elif byte in (0x5D, 0x7D):
            depth -= 1


async def _read_fields(request: Request) -> dict[str, Any]:
    """The report's fields from a JSON or form body, bounded in size and shape."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise TooLarge(f"the report is larger than the {size_words(MAX_BODY)} limit")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json" or (not ctype and body.strip().startswith(b"{")):
        check_json_shape(body)
        try:
            data = json.loads(body or b"{}")
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "it cannot be parsed"
            raise BadInput(f"the body is not valid JSON: {detail}") from None
        if not isinstance(data, dict):
            raise BadInput('send a JSON object: {"query": "...", "reason": "..."}')
        return data
    if ctype == "application/x-www-form-urlencoded":
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError as exc:
            raise BadInput("the form is not UTF-8") from exc
    raise BadInput("send the report as application/json or as a form")


def validate_report(fields: dict[str, Any]) -> ReportIn:
    try:
        return ReportIn.model_validate(fields)
    except ValidationError as exc:
        errors = [dict(e, loc=("body", *e.get("loc", ()))) for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def _store(state: AppState, item_id: str, report: ReportIn) -> dict[str, Any]:
    row_of(state, item_id)
    reason = report.reason.strip()
    details = report.details.strip()
    if details:
        reason = f"{reason}: {details}" if reason else details
    store = FeedbackStore(state.collection.root)
    report_id = store.add(item_id, report.query, reason)
    return store.list(item_id=item_id, limit=1)[0] | {"id": report_id}


REPORT_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/ReportIn"}},
        "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/ReportIn"}},
    },
}


@router.post(
    "/api/items/{item_id:path}/report",
    summary="Report this result",
    status_code=201,
    response_model=ReportOut,
    responses=error_responses(404, 413, 422),
    description="Tell the collection's owner that a result is offensive, wrong or a privacy concern. "
    'Body (JSON or form): {"query": "the search that showed it", "reason": "why"}. Suggested reasons: '
    + "; ".join(REASONS),
    openapi_extra={"requestBody": REPORT_BODY},
)
async def report_item(request: Request, item_id: str) -> JSONResponse:
    state = get_state(request)
    report = validate_report(await _read_fields(request))
    stored = await run_in_threadpool(_store, state, item_id, report)
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
        return_to = fields.pop("return_to", None)
        stored = await run_in_threadpool(_store, state, item_id, validate_report(fields))
    except IllustraError as exc:
        return render_error_page(request, exc.http_status, public_message(request, exc.message))
    except RequestValidationError as exc:
        return render_error_page(request, 422, validation_message(exc))
    ctx = _base_context(request, state)
    meta = state.collection.metadata(state.collection.row_of(item_id))
    ctx.update(
        report=stored,
        item_title=meta.get("title") or item_id,
        return_to=_safe_return(root, return_to if isinstance(return_to, str) else None),
    )
    templates = request.app.state.templates
    return templates.TemplateResponse(request, "report_thanks.html", ctx, status_code=201)


@router.get(
    "/api/about",
    summary="Collection and model cards",
    tags=["collection"],
    response_model=dict[str, Any],
)
async def about(request: Request) -> JSONResponse:
    from ..cards import render_about

    state = get_state(request)
    data = await run_in_threadpool(render_about, state.collection, figures=False)
    return JSONResponse(public_about(data, state.redactor))
