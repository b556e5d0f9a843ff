"""The app factory: one FastAPI app serving the REST API under ``/api``, the web page, and
OpenAPI docs at ``/docs``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..collection import Collection
from ..search import SearchService
from ..web import STATIC_DIR
from . import error_handlers, item_routes, openapi, pages, remote_images, report_routes, search_routes
from .facets import Facets
from .redact import Redactor
from .state import DEFAULT_EXAMPLES, AppState
from .templating import make_templates
from .thumbs import ThumbnailCache
from .uploads import FORM_OVERHEAD, UploadStore, too_large

# Pages render untrusted catalogue text: no inline script, no framing, nothing from elsewhere.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class SecurityHeaders:
    """Adds nosniff / referrer headers everywhere and a strict CSP on our HTML pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        docs = path.startswith("/docs") or path == "/openapi.json"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"same-origin"))
                ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if ctype.startswith(b"text/html") and not docs:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                    headers.append((b"x-frame-options", b"DENY"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyFence:
    """Refuses request bodies over the upload limit plus room for a form's envelope, by declared
    length or as they arrive.

    The error is raised from ``receive``, i.e. inside the route that reads the body, so it gets the
    app's usual error shape (JSON under /api, a page elsewhere) and the same message as an upload
    over the limit; routes that never read a body are unaffected.
    """

    def __init__(self, app: ASGIApp, upload_limit: int) -> None:
        self.app = app
        self.upload_limit = upload_limit
        self.limit = upload_limit + FORM_OVERHEAD

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        too_big = declared.isdigit() and int(declared) > self.limit
        received = 0

        async def fenced() -> Message:
            nonlocal received
            if too_big:
                raise too_large(self.upload_limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise too_large(self.upload_limit)
            return message

        await self.app(scope, fenced, send)


def create_app(
    source: SearchService | Collection | str | Path,
    *,
    model: str | None = None,
    title: str | None = None,
    examples: Sequence[str] | None = None,
    warm: bool = False,
    routers: Sequence[APIRouter] = (),
    thumbnail_cache: bool = True,
) -> FastAPI:
    """Build the app for one collection.

    ``source`` is a collection directory, an opened ``Collection`` or a ready ``SearchService``
    (one per collection; it is thread-safe), whose settings the app uses too. ``routers`` are
    included besides the built-in ones, before them (so their routes win over the catch-all item
    route). With ``warm`` the encoder and index load now, not on the first query.
    """
    svc = source if isinstance(source, SearchService) else SearchService(source, model)
    cfg = svc.settings
    if warm:
        svc.warm()
    coll = svc.collection
    manifest: dict[str, Any] = coll.manifest
    state = AppState(
        service=svc,
        thumbs=ThumbnailCache(
            coll.root / "cache" / "thumbs" if thumbnail_cache else None,
            side=cfg.thumbnail_side,
        ),
        uploads=UploadStore(),
        settings=cfg,
        redactor=Redactor.for_collection(coll),
        facets=Facets(svc.filter_engine.table, svc.filterable_fields),
        examples=list(
            examples if examples is not None else manifest.get("example_queries") or DEFAULT_EXAMPLES
        ),
        title=title or str(manifest.get("name") or coll.root.resolve().name),
    )
    if warm:
        state.facets.all()  # distinct field values for the filter controls, computed once now
    app = FastAPI(
        title="Illustra",
        summary="Search a digitised image collection by description or by example.",
        version=_version(),
        docs_url=None,  # served below, with Swagger UI from the installed package, not a CDN
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.illustra = state
    app.state.templates = make_templates()
    # Cards and the item page say in words why a remote picture could not be fetched.
    app.state.templates.env.globals["image_problem"] = remote_images.image_problem
    error_handlers.install(app)
    app.add_middleware(SecurityHeaders)
    # A fence for every route, including ones added by other modules: no request body may be
    # larger than an image upload plus its form envelope.
    app.add_middleware(BodyFence, upload_limit=cfg.upload_max_bytes)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    _install_docs(app)
    from . import duplicate_routes, map_page, map_routes

    # Suffix routes (the report route, callers' routers) first: they must win over the catch-all
    # item route.
    for r in [report_routes.router, duplicate_routes.router, map_routes.router, map_page.router, *routers]:
        app.include_router(r)
    from . import export_routes, facet_routes, library_pages

    for r in (facet_routes.router, export_routes.router, library_pages.router):  # facets, exports, my library
        app.include_router(r)
    app.include_router(search_routes.router)
    app.include_router(item_routes.router)
    app.include_router(pages.router)
    openapi.install(app, svc.filterable_fields)
    return app


DOCS_ASSETS = "/docs/assets"


def _install_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI served from the ``swagger-ui-bundle-v2`` package, so the page works
    without internet access; the online validator badge is switched off (it would call out)."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount(DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} API",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("illustra")
    except metadata.PackageNotFoundError:
        return "0"
