"""One error shape for the API: ``{"error": {"code": ..., "message": ...}}``.

Core exceptions map through their ``http_status`` and ``code``; FastAPI's own validation errors and
Starlette's 404/405 are reshaped the same way. Outside ``/api`` the same errors render as a page.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import IllustraError

log = logging.getLogger("illustra")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
    422: "bad_input",
    429: "too_many_requests",
}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def wants_json(request: Request) -> bool:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    path = request.url.path[len(root) :] if root and request.url.path.startswith(root) else request.url.path
    return path == "/api" or path.startswith("/api/") or path in ("/openapi.json",)


def _respond(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    if wants_json(request):
        return JSONResponse(error_body(code, message), status_code=status, headers=headers)
    from .pages import render_error_page

    return render_error_page(request, status, message)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = [str(x) for x in err.get("loc", ()) if x not in ("query", "path", "body", "form", "header")]
        name = ".".join(loc) or "request"
        msg = str(err.get("msg", "is invalid"))
        given = err.get("input")
        if isinstance(given, (str, int, float)) and err.get("type") not in ("missing",):
            msg += f", got {str(given)[:40]!r}"
        parts.append(f"{name}: {msg[0].lower() + msg[1:] if msg else msg}")
    return "; ".join(parts) or "the request is invalid"


def install(app: FastAPI) -> None:
    async def illustra_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, IllustraError)
        if exc.http_status >= 500:
            log.warning("%s: %s", exc.code, exc.message)
        return _respond(request, exc.http_status, exc.code, exc.message)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return _respond(request, 422, "bad_input", _validation_message(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 404 and (not detail or detail == "Not Found"):
            detail = f"no such page or endpoint: {request.url.path}"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        headers = dict(exc.headers) if exc.headers else None
        return _respond(request, exc.status_code, code, detail or "request failed", headers)

    async def unexpected(request: Request, exc: Exception) -> Response:
        # Logged in full for the operator; the client gets one line, never a traceback.
        log.exception("unexpected error serving %s %s", request.method, request.url.path)
        return _respond(
            request, 500, "internal_error", "something went wrong on the server; it has been logged"
        )

    app.add_exception_handler(IllustraError, illustra_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
