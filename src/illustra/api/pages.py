"""The server-rendered web page: ``/`` and ``/search``, ``/search/image``, ``/items/{id}``, ``/about``.

The URL holds the whole search state (GET parameters), so a search can be shared and bookmarked.
An uploaded-image search cannot live in a URL: its picture is kept in memory under a random token
for a while, so "load more" and filter changes keep working, and the page says so.
Every page works without JavaScript; ``static/app.js`` only adds drag-and-drop, in-place "load
more" and a loading state.
"""

from __future__ import annotations

import io
import logging
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .. import images, settings
from ..errors import BadInput, IllustraError, ItemNotFound, Refused
from ..facets.linked import split_link_params
from ..search import SearchResponse
from ..search.collapse import GroupingRequest
from ..search.limits import MAX_OFFSET, Mode
from ..search.query import BadParam, SearchParams, parse_search_params, require_query
from . import page_links
from .responses import book_json, collection_json, hit_json, item_json
from .state import AppState, get_state
from .uploads import fetch_image_url, read_upload_form
from .urls import page_url, safe_href

log = logging.getLogger("illustra")

router = APIRouter(include_in_schema=False)

PAGE_K = 24
SIMILAR_ON_ITEM_PAGE = 12
BOOK_ON_ITEM_PAGE = 24
DUPLICATES_ON_ITEM_PAGE = 24
PAGE_EXTRA = ("like", "upload", "partial")
# Metadata shown first on the item page, in this order; other fields follow alphabetically.
FIELD_ORDER = ["title", "creator", "year", "date", "place", "publisher", "licence", "source_url"]
MODE_USED = {str(m): m.searched for m in Mode}
# Active-filter chips: how a parameter and its value read (others: the name with spaces).
CHIP_LABELS = {"include_undated": ("undated items", "included")}
# Where a bad parameter's message is shown: the id of its field on the page (None: above the results).
FIELD_IDS = {"q": "q", "mode": "mode-choice", "year_from": "year_from", "year_to": "year_to",
             "year": "year_from", "title_contains": "title_contains", "include_undated": "include_undated"}


def root_path(request: Request) -> str:
    """The app's mount point, for every link on a page. Inside a mounted app (``/static``) the
    request's own root path includes the mount, so the app's root is read from ``app_root_path``."""
    scope = request.scope
    return str(scope.get("app_root_path", scope.get("root_path", ""))).rstrip("/")


def _render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
    templates = request.app.state.templates
    return templates.TemplateResponse(request, name, ctx, status_code=status)


def _base_context(request: Request, state: AppState) -> dict[str, Any]:
    svc = state.service
    counts = state.collection.manifest.get("counts", {})
    return {
        "root": root_path(request),
        "site_title": state.title,
        "size": len(state.collection),
        "model": svc.model,
        "default_mode": state.default_mode(),
        "has_text_index": svc.text_index is not None,
        "modes": [(str(m), m.label) for m in svc.modes()],
        "mode_used_labels": MODE_USED,
        "examples": state.examples,
        "facets": state.facets.for_page(),
        "year_min": counts.get("year_min"),
        "year_max": counts.get("year_max"),
        "allow_url_fetch": bool(settings.get("allow_url_fetch")),
        "upload_max_mb": max(1, int(settings.get("upload_max_bytes")) // 1_000_000),
    }


def render_error_page(request: Request, status: int, message: str) -> Response:
    """A full error page (used for unknown pages and errors outside the search form)."""
    try:
        ctx = _base_context(request, get_state(request))
    except Exception:  # noqa: BLE001 - an error page must render even when the app state cannot
        ctx = {"root": root_path(request), "site_title": "Illustra", "size": 0, "model": ""}
    ctx.update(status=status, message=message, refused=status == 403)
    return _render(request, "error.html", ctx, status)


# -- search state as links ---------------------------------------------------------------------
class PageState:
    """What the current page searched for, turned back into links."""

    def __init__(self, params: SearchParams, q: str | None, like: str | None, upload: str | None) -> None:
        self.params = params
        self.q, self.like, self.upload = q, like, upload
        self.linked: list[tuple[str, str]] = []  # a picture's vector, facets or marked examples

    def source_items(self) -> list[tuple[str, str]]:
        if self.linked:
            return ([("q", self.q)] if self.q else []) + self.linked
        if self.q:
            items = [("q", self.q)]
            if self.params.mode:
                items.append(("mode", self.params.mode))
            return items
        if self.like:
            return [("like", self.like)]
        if self.upload:
            return [("upload", self.upload)]
        return []

    def k_items(self) -> list[tuple[str, str]]:
        return [("k", str(self.params.k))] if self.params.k != PAGE_K else []

    def url(
        self,
        root: str,
        *,
        offset: int = 0,
        drop: str | None = None,
        add: tuple[str, str] | None = None,
        grouping: GroupingRequest | None = None,
    ) -> str:
        filters = [(n, v) for n, v in self.params.filter_items() if n != drop]
        if add is not None and add[0] not in (n for n, _ in filters):
            filters.append(add)
        grouped = (grouping if grouping is not None else self.params.grouping).items()
        items = self.source_items() + filters + grouped + self.k_items()
        if offset:
            items.append(("offset", str(offset)))
        return page_url("/search", items, root)

    def like_url(self, root: str, item_id: str) -> str:
        items = [("like", item_id), *self.params.filter_items(), *self.params.grouping.items(), *self.k_items()]
        return page_url("/search", items, root)

    def active_filters(self, root: str) -> list[dict[str, str]]:
        out = []
        for name, value in self.params.filter_items():
            label, shown = CHIP_LABELS.get(name, (name.replace("_", " "), value))
            out.append(
                {
                    "name": name,
                    "value": value,
                    "label": label,
                    "shown": shown,
                    "remove_url": self.url(root, drop=name),
                }
            )
        return out


def _results_context(
    request: Request, state: AppState, resp: SearchResponse, page: PageState
) -> dict[str, Any]:
    root = root_path(request)
    hits = [hit_json(h, root, state.collection) for h in resp.results]
    for h in hits:
        h["like_page_url"] = page.like_url(root, h["id"])
        h["source_href"] = _source_href(h["metadata"])
        book = (h.get("more_from_book") or {}).get("book_identifier")
        if book:
            ungrouped = replace(page.params.grouping, group_books=False)
            h["book_search_url"] = page.url(root, add=("book_identifier", str(book)), grouping=ungrouped)
    first = resp.offset + 1
    f = page.params.filters
    return {
        "undated_excluded": resp.undated_excluded or 0,
        "undated_included": f.include_undated and f.has_years(),
        "include_undated_url": page.url(root, add=("include_undated", "1")),
        "exclude_undated_url": page.url(root, drop="include_undated"),
        "searched": True,
        "hits": hits,
        "resp": resp,
        "notices": list(resp.notices),
        "first": first,
        "last": resp.offset + len(hits),
        "more_url": page.url(root, offset=resp.offset + resp.k) if resp.has_more else None,
        "share_url": page.url(root, offset=resp.offset) if not page.upload else None,
        "mode_used": resp.mode,
        "grouping_links": _grouping_links(state, resp, page, root),
        "map_url": _map_url(state, page, root),
    }


def _map_url(state: AppState, page: PageState, root: str) -> str | None:
    """The Map view with this text search highlighted, once the map is built."""
    from .map_routes import map_store

    if not page.q or map_store(state).current() is None:
        return None
    mode = [("mode", str(page.params.mode))] if page.params.mode else []
    return page_url("/map", [("q", page.q), *mode, *page.params.filter_items()], root)


def _grouping_links(state: AppState, resp: SearchResponse, page: PageState, root: str) -> list[dict[str, str]]:
    """What the results fold together, each with a link that turns it off (or on)."""
    info = resp.grouping or {}
    asked = page.params.grouping
    out = []
    if info.get("duplicates"):
        out.append({"text": "Near-duplicates are folded into one result.", "action": "Show every copy",
                    "url": page.url(root, grouping=replace(asked, collapse=False))})
    elif asked.collapse is False and state.service.grouper.duplicates.current() is not None:
        out.append({"text": "Every copy of a picture is shown.", "action": "Fold near-duplicates",
                    "url": page.url(root, grouping=replace(asked, collapse=None))})
    if info.get("books"):
        out.append({"text": "Results from one book are grouped.", "action": "Show each result",
                    "url": page.url(root, grouping=replace(asked, group_books=False))})
    elif state.has_book_field():
        out.append({"text": "", "action": "Group results by book",
                    "url": page.url(root, grouping=replace(asked, group_books=True))})
    return out


def _source_href(meta: dict[str, Any]) -> str | None:
    for name in ("source_url", "flickr_url"):
        href = safe_href(meta.get(name))
        if href:
            return href
    return None


def _form_context(params: SearchParams, page: PageState, root: str) -> dict[str, Any]:
    f = params.filters
    return {
        "form": {
            "q": page.q or "",
            "mode": params.mode or "",
            "year_from": "" if f.year_from is None else f.year_from,
            "year_to": "" if f.year_to is None else f.year_to,
            "title_contains": f.title_contains or "",
            "fields": dict(f.fields),
            "include_undated": f.include_undated,
            "k": params.k,
            "like": page.like if not page.q else None,
            "upload": page.upload if not (page.q or page.like) else None,
        },
        "active_filters": page.active_filters(root),
        "filters_open": bool(params.filter_items()),
        "clear_filters_url": page_url("/search", page.source_items() + page.k_items(), root),
    }


def _typed_form_context(items: list[tuple[str, str]], filterable: list[str], root: str) -> dict[str, Any]:
    """The form as the reader filled it in, for a search whose parameters were refused: every value
    comes back as typed (first of each name), valid or not."""
    raw: dict[str, str] = {}
    for name, value in items:
        raw.setdefault(name, value)
    k_raw = raw.get("k", "").strip()
    k = int(k_raw) if k_raw.isdigit() else PAGE_K
    q = raw.get("q", "").strip()
    year_from = raw.get("year_from") or raw.get("year") or ""
    year_to = raw.get("year_to") or raw.get("year") or ""
    fields = {n: raw[n] for n in filterable if raw.get(n, "").strip()}
    include_undated = raw.get("include_undated", "").strip().lower() in ("1", "true", "yes", "on")
    source = [("q", q), ("mode", raw.get("mode", ""))] if q else [("like", raw.get("like", ""))]
    return {
        "form": {
            "q": q,
            "mode": raw.get("mode", "").strip().lower(),
            "year_from": year_from,
            "year_to": year_to,
            "title_contains": raw.get("title_contains", ""),
            "fields": fields,
            "include_undated": include_undated,
            "k": k,
            "like": None if q else raw.get("like") or None,
            "upload": None if q or raw.get("like") else raw.get("upload") or None,
        },
        "active_filters": [],
        "filters_open": bool(year_from or year_to or raw.get("title_contains") or fields or include_undated),
        "clear_filters_url": page_url("/search", source, root),
    }


def _error_context(exc: IllustraError, ctx: dict[str, Any]) -> dict[str, Any]:
    """An error for the page: in words (never a parameter's name), and the id of the form field
    it is about, when the page has one (``ctx`` is the page's context so far)."""
    out: dict[str, Any] = {"error_code": exc.code, "refused": isinstance(exc, Refused)}
    if isinstance(exc, BadParam):
        out["error"] = exc.words
        facets = {f.name for f in ctx.get("facets") or []}
        field = FIELD_IDS.get(exc.param) or (f"f-{exc.param}" if exc.param in facets else None)
        if field:
            out["field_errors"] = {field: exc.words}
            out["error_field"] = field
    else:
        out["error"] = exc.message
    return out


# -- routes ------------------------------------------------------------------------------------
@router.get("/")
@router.get("/search")
def search_page(request: Request) -> Response:
    state = get_state(request)
    root = root_path(request)
    ctx = _base_context(request, state)
    items = list(request.query_params.multi_items())
    partial = any(n == "partial" for n, _ in items)
    try:
        items, link = split_link_params(items)
        params, ignored = parse_search_params(
            items,
            state.service.filterable_fields,
            default_k=PAGE_K,
            allowed_extra=PAGE_EXTRA,
            skip_empty=True,
            ignore_unknown=True,
        )
    except BadInput as exc:
        ctx.update(_typed_form_context(items, list(state.service.filterable_fields), root))
        ctx.update(_error_context(exc, ctx))
        if ctx.get("error_field") not in (None, "q", "mode-choice"):
            ctx["filters_open"] = True  # the field with the problem is in the filter panel
        return _render(request, "results.html" if partial else "search.html", ctx, 422)
    q = (params.q or "").strip() or None
    like = None if q else params.extra.get("like")
    upload = None if (q or like) else params.extra.get("upload")
    try:
        linked = page_links.linked_search(link, q)
    except BadInput as exc:
        ctx.update(_typed_form_context(items, list(state.service.filterable_fields), root))
        ctx.update(_error_context(exc, ctx))
        return _render(request, "results.html" if partial else "search.html", ctx, 422)
    if linked is not None:
        like = upload = None
    page = PageState(params, q, like, upload)
    page.linked = page_links.link_items(link) if linked is not None else []
    ctx.update(_form_context(params, page, root))
    ctx["form"]["linked"] = page.linked
    ctx["saved_facets"] = page_links.saved_facets(state)
    if ignored:
        ctx["page_notices"] = [f"ignored unknown parameter(s): {', '.join(sorted(set(ignored)))[:200]}"]
    ctx["page_notices"] = ctx.get("page_notices", []) + page_links.notices(link, state)
    if not (q or like or upload or linked):
        return _render(request, "search.html", ctx)
    svc = state.service
    try:
        if linked is not None:
            resp = page_links.run_linked(state, linked, params, q)
            ctx["linked"] = page_links.banner(linked, resp)
        elif q:
            resp = svc.search_text(
                require_query(q),
                k=params.k,
                offset=params.offset,
                filters=params.filters,
                mode=params.mode,
                grouping=params.grouping,
            )
        elif like:
            ctx["like_item"] = item_json(state, like, root)
            resp = svc.search_like(
                like, k=params.k, offset=params.offset, filters=params.filters, grouping=params.grouping
            )
        else:
            data = state.uploads.get(str(upload))
            if data is None:
                raise BadInput(
                    "that uploaded picture is no longer held by the server (uploads are kept briefly and "
                    "never saved); upload it again"
                )
            ctx["upload_preview"] = f"{root}/search/upload/{upload}"
            resp = svc.search_image(
                data, k=params.k, offset=params.offset, filters=params.filters, grouping=params.grouping
            )
    except IllustraError as exc:
        ctx.update(_error_context(exc, ctx))
        return _render(request, "results.html" if partial else "search.html", ctx, exc.http_status)
    ctx.update(_results_context(request, state, resp, page))
    ctx.update(page_links.citation_context(root, resp, state))
    ctx["is_upload"] = bool(upload)
    return _render(request, "results.html" if partial else "search.html", ctx)


def _bounded_copy(state: AppState, data: bytes) -> bytes:
    """The query picture as the search service decodes it, stored losslessly, so later pages
    of the same upload embed exactly the same pixels."""
    side = max(state.service.encoder.image_side * 2, 256)
    im = images.decode(data, max_side=side)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


@router.post("/search/image")
async def upload_page(request: Request) -> Response:
    state = get_state(request)
    root = root_path(request)
    ctx = _base_context(request, state)
    empty = SearchParams(k=PAGE_K)
    ctx.update(_form_context(empty, PageState(empty, None, None, None), root))
    typed: list[tuple[str, str]] = []
    try:
        form = await read_upload_form(request)
        typed = list(form.fields)
        params, _ = parse_search_params(
            form.fields,
            state.service.filterable_fields,
            default_k=PAGE_K,
            allowed_extra=("url", *PAGE_EXTRA),
            skip_empty=True,
            ignore_unknown=True,
        )
        url = params.extra.get("url")
        if form.image is None and not url:
            raise BadInput("choose a picture to search with")
        data = form.image if form.image is not None else await fetch_image_url(str(url), cfg=state.settings)
        resp = await run_in_threadpool(
            state.service.search_image, data, k=params.k, offset=0, filters=params.filters, grouping=params.grouping
        )
        token = state.uploads.put(await run_in_threadpool(_bounded_copy, state, data))
    except IllustraError as exc:
        if isinstance(exc, BadParam) and typed:  # a filter sent with the picture: keep what was typed
            ctx.update(_typed_form_context(typed, list(state.service.filterable_fields), root))
            ctx["filters_open"] = True
        ctx.update(_error_context(exc, ctx))
        return _render(request, "search.html", ctx, exc.http_status)
    page = PageState(params, None, None, token)
    ctx.update(_form_context(params, page, root))
    ctx.update(_results_context(request, state, resp, page))
    ctx.update(page_links.citation_context(root, resp, state))
    ctx.update(is_upload=True, upload_preview=f"{root}/search/upload/{token}")
    return _render(request, "search.html", ctx)


@router.get("/search/upload/{token}")
def upload_preview(request: Request, token: str) -> Response:
    data = get_state(request).uploads.get(token)
    if data is None:
        raise ItemNotFound("that uploaded picture is no longer held by the server")
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, no-store"})


def _field_rows(meta: dict[str, Any]) -> list[dict[str, Any]]:
    names = [n for n in FIELD_ORDER if n in meta] + sorted(n for n in meta if n not in FIELD_ORDER)
    rows = []
    for name in names:
        value = meta.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        rows.append(
            {
                "name": name,
                "label": name.replace("_", " ").capitalize(),
                "value": value,
                "href": safe_href(value),
            }
        )
    return rows


@router.get("/items/{item_id:path}")
def item_page(request: Request, item_id: str) -> Response:
    state = get_state(request)
    root = root_path(request)
    ctx = _base_context(request, state)
    try:
        item = item_json(state, item_id, root)
    except ItemNotFound as exc:
        return render_error_page(request, 404, exc.message)
    ctx.update(item=item, fields=_field_rows(item["metadata"]), source_href=_source_href(item["metadata"]))
    ctx["like_page_url"] = page_url("/search", [("like", item_id)], root)
    if item["has_image"]:
        try:
            similar = state.service.search_like(item_id, k=SIMILAR_ON_ITEM_PAGE)
            ctx["similar"] = [hit_json(h, root, state.collection) for h in similar.results]
        except IllustraError as exc:
            ctx["similar_error"] = exc.message
    if state.service.grouper.duplicates.current() is not None:
        ctx.update(_duplicates_context(request, state, item_id, item["page_url"], root))
    if "book_url" in item:
        raw = request.query_params.get("book_offset", "0")
        offset = int(raw) if raw.isdigit() and int(raw) <= MAX_OFFSET else 0
        book = book_json(state, item_id, BOOK_ON_ITEM_PAGE, offset, root)
        ctx["book"] = book
        base = item["page_url"]
        if book["has_more"]:
            ctx["book_more_url"] = f"{base}?book_offset={offset + BOOK_ON_ITEM_PAGE}#book"
        if offset:
            ctx["book_prev_url"] = f"{base}?book_offset={max(0, offset - BOOK_ON_ITEM_PAGE)}#book"
    return _render(request, "item.html", ctx)


def _duplicates_context(
    request: Request, state: AppState, item_id: str, base: str, root: str
) -> dict[str, Any]:
    """Where the item's picture appears again (near-duplicates found by ``illustra duplicates``)."""
    from .duplicate_routes import duplicates_json

    raw = request.query_params.get("dup_offset", "0")
    offset = int(raw) if raw.isdigit() and int(raw) <= MAX_OFFSET else 0
    dups = duplicates_json(state, item_id, DUPLICATES_ON_ITEM_PAGE, offset, root)
    out: dict[str, Any] = {"duplicates": dups}
    if dups["has_more"]:
        out["dup_more_url"] = f"{base}?dup_offset={offset + DUPLICATES_ON_ITEM_PAGE}#reuse"
    if offset:
        out["dup_prev_url"] = f"{base}?dup_offset={max(0, offset - DUPLICATES_ON_ITEM_PAGE)}#reuse"
    return out


@router.get("/about")
def about_page(request: Request) -> Response:
    state = get_state(request)
    ctx = _base_context(request, state)
    ctx["info"] = collection_json(state, root_path(request))
    ctx["sources"] = state.collection.manifest.get("sources", [])
    from ..cards import render_about

    try:
        ctx["cards"] = render_about(state.collection)
    except Exception:  # noqa: BLE001 - the About page must render even if a card cannot
        log.exception("could not render the collection cards")
        ctx["cards"] = None
    return _render(request, "about.html", ctx)
