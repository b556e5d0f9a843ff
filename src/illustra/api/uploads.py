"""Query images from clients: bounded multipart uploads, optional URL fetching, and a short-lived
store that lets the web page page through an uploaded-image search.

Nothing here decodes pixels; decoding happens in the search service through ``images.decode``,
which refuses decompression bombs before touching pixel data.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from .. import settings
from ..errors import BadInput, DownloadError, IllustraError, Refused
from ..search.limits import short_id

# Room for the multipart envelope and small form fields on top of the image itself.
FORM_OVERHEAD = 256 * 1024
MAX_REDIRECTS = 3


class TooLarge(IllustraError):
    code = "too_large"
    exit_code = 2
    http_status = 413


# Multipart field names a query image may come in: ours, and the name most clients send.
FILE_FIELDS = ("image", "file")
# What an upload may be (the decoder sniffs the bytes; the declared type is not trusted).
UPLOAD_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff")
MAX_URL_CHARS = 2000


@dataclass
class UploadForm:
    fields: list[tuple[str, str]] = field(default_factory=list)
    image: bytes | None = None
    filename: str | None = None
    # The file field that was sent with no bytes at all, if any (``image`` is then None).
    empty_field: str | None = None


def size_words(n: int) -> str:
    """A size as people write it, in decimal units: 20 MB, 1.5 kB, 300 bytes."""
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} bytes"


def too_large(limit: int) -> TooLarge:
    """The one message for a query image (upload, request body or URL download) over the limit."""
    return TooLarge(f"the image is larger than the {size_words(limit)} upload limit")


def _settings(request: Request | None = None) -> settings.Settings:
    """The app's validated settings (``get_state(request).settings``), else this process's."""
    state = getattr(request.app.state, "illustra", None) if request is not None else None
    cfg = getattr(state, "settings", None)
    return cfg if isinstance(cfg, settings.Settings) else settings.current()


async def read_upload_form(
    request: Request, file_fields: tuple[str, ...] = FILE_FIELDS, limit: int | None = None
) -> UploadForm:
    """Parse a multipart/form-data (or urlencoded) body, counting bytes as they arrive: a body over the limit is
    abandoned mid-stream (never buffered whole), so the cap bounds memory and disk use."""
    limit = int(limit if limit is not None else _settings(request).upload_max_bytes)
    ctype = request.headers.get("content-type", "").lower()
    # A plain urlencoded form is fine too, for a request that only names a URL.
    if not ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise BadInput(f"send the image as multipart/form-data with a file field {file_fields[0]!r}")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        raise too_large(limit)

    received = 0
    receive = request.receive

    async def bounded_receive() -> MutableMapping[str, Any]:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit + FORM_OVERHEAD:
                raise too_large(limit)
        return message

    bounded = Request(request.scope, bounded_receive)
    try:
        form = await bounded.form(max_files=1, max_fields=40, max_part_size=64 * 1024)
    except HTTPException as exc:  # malformed multipart body
        raise BadInput(f"the form could not be read: {exc.detail}") from None
    out = UploadForm()
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name not in file_fields:
                    raise BadInput(
                        f"unexpected file field {short_id(name)!r}; send the image as "
                        + " or ".join(repr(f) for f in file_fields)
                    )
                data = await value.read(limit + 1)
                if len(data) > limit:
                    raise too_large(limit)
                out.image = data or None
                out.empty_field = None if data else name
                out.filename = value.filename
            else:
                out.fields.append((name, value))
    finally:
        await form.close()
    return out


# -- fetching a query image by URL (off unless allow_url_fetch) ----------------------------------
def _check_url(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - a port out of range raises here, not later
    except ValueError:
        raise BadInput("the image URL is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise BadInput("the image URL must be an http:// or https:// address")
    return url.strip()


def _refuse_private(host: str, port: int, allow_private: bool = False) -> None:
    """Refuse hosts that resolve to loopback, private or link-local addresses (server-side request
    forgery: a public search box must not become a way into the server's own network)."""
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise DownloadError(f"could not resolve {short_id(host)!r}") from None
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if not addr.is_global:
            raise Refused(
                f"fetching images from {short_id(host)} ({addr}) is not allowed: not a public address"
            )


async def fetch_image_url(
    url: str,
    limit: int | None = None,
    timeout: float | None = None,
    *,
    cfg: settings.Settings | None = None,
) -> bytes:
    """Download a query image: http(s) only, each redirect re-checked, bounded in bytes and time.
    ``cfg`` is the app's settings (``get_state(request).settings``); without it, this process's."""
    import httpx

    cfg = cfg if cfg is not None else settings.current()
    if not cfg.allow_url_fetch:
        raise Refused(
            "this server does not fetch images by URL (setting allow_url_fetch is off); upload the image instead"
        )
    limit = int(limit if limit is not None else cfg.upload_max_bytes)
    timeout = float(timeout if timeout is not None else cfg.url_fetch_timeout)
    allow_private = bool(cfg.url_fetch_private)
    current = _check_url(url)

    async def run() -> bytes:
        nonlocal current
        async with httpx.AsyncClient(follow_redirects=False, timeout=timeout, trust_env=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                parts = urlsplit(current)
                port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
                await asyncio.to_thread(_refuse_private, parts.hostname or "", port, allow_private)
                async with client.stream("GET", current, headers={"Accept": "image/*"}) as resp:
                    if resp.is_redirect:
                        current = _check_url(urljoin(current, resp.headers.get("location", "")))
                        continue
                    if resp.status_code != 200:
                        raise DownloadError(f"the image URL answered HTTP {resp.status_code}")
                    declared = resp.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > limit:
                        raise too_large(limit)
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in resp.aiter_bytes():
                        size += len(chunk)
                        if size > limit:
                            raise too_large(limit)
                        chunks.append(chunk)
                    return b"".join(chunks)
        raise DownloadError(f"the image URL redirected more than {MAX_REDIRECTS} times")

    try:
        # A total deadline too: a server trickling one byte a second never trips a read timeout.
        return await asyncio.wait_for(run(), timeout=timeout * 2)
    except TimeoutError:
        raise DownloadError(f"the image URL did not answer within {timeout * 2:.0f} s") from None
    except httpx.HTTPError as exc:
        raise DownloadError(f"could not fetch the image URL: {type(exc).__name__}") from None


# -- recent uploads, so "load more" works for an uploaded-image search -------------------------------
class UploadStore:
    """A few recent query images (already decoded and bounded, stored losslessly) under random
    tokens, held in memory only and forgotten after ``ttl`` seconds."""

    def __init__(self, max_items: int = 32, ttl: float = 1800.0) -> None:
        self.max_items = max_items
        self.ttl = ttl
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, data: bytes) -> str:
        token = secrets.token_urlsafe(12)
        with self._lock:
            self._items[token] = (time.monotonic(), data)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return token

    def get(self, token: str) -> bytes | None:
        with self._lock:
            entry = self._items.get(token)
            if entry is None:
                return None
            if time.monotonic() - entry[0] > self.ttl:
                del self._items[token]
                return None
            return entry[1]
