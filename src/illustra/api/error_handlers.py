"""One error shape for the API: ``{"error": {"code": ..., "message": ...}}``.

Core exceptions map through their ``http_status`` and ``code``; FastAPI's own validation errors and
Starlette's 404/405 are reshaped the same way. Outside ``/api`` the same errors render as a page.
Every message is cleared of server paths (see ``redact.py``), and an unexpected exception is
answered with a one-line 500 and logged exactly once (``CatchUnexpected``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import IllustraError
from ..search.limits import short_id

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


def public_message(request: Request, message: str) -> str:
    """``message`` without the server's paths (the app's collection directory, source folders)."""
    state = getattr(request.app.state, "illustra", None)
    redactor = getattr(state, "redactor", None)
    return redactor.text(message) if redactor is not None else message


def _respond(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    # No server paths; and text that can always be sent as UTF-8 (a lone surrogate cannot).
    message = public_message(request, message).encode("utf-8", "replace").decode("utf-8")
    if wants_json(request):
        return JSONResponse(error_body(code, message), status_code=status, headers=headers)
    from .pages import render_error_page

    return render_error_page(request, status, message)


def validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = [str(x) for x in err.get("loc", ())]
        if loc and loc[0] in ("query", "path", "body", "form", "header", "cookie"):
            loc = loc[1:]  # where the parameter was, not its name
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
        return _respond(request, 422, "bad_input", validation_message(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 404 and (not detail or detail == "Not Found"):
            detail = f"no such page or endpoint: {short_id(request.url.path)}"
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow") or (exc.headers or {}).get("allow")
            detail = f"{short_id(request.method)} is not allowed on {short_id(request.url.path)}"
            if allowed:
                detail += f"; allowed: {allowed}"
        headers = dict(exc.headers) if exc.headers else None
        return _respond(request, exc.status_code, code, detail or "request failed", headers)

    app.add_exception_handler(IllustraError, illustra_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    # Added first, so it sits innermost among the middleware: its 500 still gets the security
    # headers, and the exception never reaches Starlette's outer error middleware (which would
    # re-raise it for the server to log a second time).
    app.add_middleware(CatchUnexpected)


INTERNAL_ERROR = "something went wrong on the server; it has been logged"


class CatchUnexpected:
    """Answers an exception no handler took with a one-line 500 (JSON under /api, a page elsewhere)
    and logs it once, in full, for the operator. Once a response has started it can only be cut
    short: the exception then goes on to the server, which logs it (still once)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            if started:
                raise
            request = Request(scope)
            log.exception("unexpected error serving %s %s", request.method, short_id(request.url.path))
            response = _respond(request, 500, "internal_error", INTERNAL_ERROR)
            await response(scope, receive, send)
