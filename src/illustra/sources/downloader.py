"""Bounded, resumable image downloads for manifest rows that point at http(s) URLs.

Every download is bounded: connect/read timeouts plus an overall deadline, a byte limit enforced
while streaming (never trusting Content-Length alone), a content-type check, and a decode check
through ``images.decode``. Transient failures (timeouts, dropped connections, 5xx, 429) are retried
with exponential backoff; permanent ones (404, not an image, too large) are not.

Valid originals are kept in a cache directory under a hash of the item id, so a re-run (or a run
into another collection with the same cache) reads them from disk instead of the network.
Failures go to a TSV (id, url, reason) as they happen.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from .. import images, settings
from ..collection import write_bytes_atomic
from ..errors import BadImage, DownloadError

log = logging.getLogger("illustra")

FAILURES_NAME = "download_failures.tsv"
CACHE_NAME = "downloads"
ALLOWED_SCHEMES = {"http", "https"}
# Servers often label images generically; anything else (text/html, application/json...) is refused.
GENERIC_TYPES = {"application/octet-stream", "binary/octet-stream", "application/binary", ""}
RETRY_STATUS = {408, 425, 429}


@dataclass
class DownloadConfig:
    cache_dir: Path | None = None  # None: <collection>/downloads
    failures_path: Path | None = None  # None: <collection>/download_failures.tsv
    concurrency: int = 0  # 0: the download_concurrency setting
    timeout: float = 0.0  # 0: the download_timeout setting (connect and per-read)
    retries: int = -1  # -1: the download_retries setting
    max_bytes: int = 0  # 0: the max_image_bytes setting
    backoff: float = 0.5  # seconds before the first retry; doubles each time
    deadline: float = 0.0  # overall seconds per attempt; 0: 3 x timeout (a slow drip is bounded too)

    def resolved(self, collection_root: Path | None = None) -> DownloadConfig:
        """Settings filled in; cache and failures file default to places in the collection."""
        cache_dir, failures_path = self.cache_dir, self.failures_path
        if cache_dir is None or failures_path is None:
            if collection_root is None:
                raise DownloadError("downloads need a cache directory and a failures file")
            cache_dir = cache_dir or collection_root / CACHE_NAME
            failures_path = failures_path or collection_root / FAILURES_NAME
        timeout = float(self.timeout or settings.get("download_timeout"))
        return DownloadConfig(
            cache_dir=Path(cache_dir),
            failures_path=Path(failures_path),
            concurrency=max(1, int(self.concurrency or settings.get("download_concurrency"))),
            timeout=timeout,
            retries=int(self.retries if self.retries >= 0 else settings.get("download_retries")),
            max_bytes=int(self.max_bytes or settings.get("max_image_bytes")),
            backoff=float(self.backoff),
            deadline=float(self.deadline or timeout * 3),
        )


@dataclass
class Fetched:
    """Outcome of one download: a stored-size image, or the reason there is none."""

    image: dict[str, Any] | None
    error: str | None = None
    from_cache: bool = False


class _Permanent(Exception):
    """A failure that retrying cannot fix."""


class _Transient(Exception):
    """A failure worth retrying (timeout, dropped connection, server error)."""


def cache_key(item_id: str) -> str:
    return hashlib.sha256(item_id.encode("utf-8")).hexdigest()


def check_url(url: str) -> None:
    """Refuse anything but absolute http(s) URLs (no file://, ftp://, data:, ...)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise DownloadError(f"unsupported URL scheme {parts.scheme or '(none)'!r}; only http and https")
    if not parts.netloc:
        raise DownloadError("URL has no host")


class Downloader:
    """Thread-safe: one shared HTTP client; call ``fetch`` from many worker threads."""

    def __init__(self, config: DownloadConfig, collection_root: Path | None = None) -> None:
        self.config = config.resolved(collection_root)
        c = self.config
        assert c.cache_dir is not None and c.failures_path is not None
        c.cache_dir.mkdir(parents=True, exist_ok=True)
        c.failures_path.parent.mkdir(parents=True, exist_ok=True)
        self._client = httpx.Client(
            timeout=httpx.Timeout(c.timeout),
            follow_redirects=True,
            max_redirects=5,
            limits=httpx.Limits(max_connections=c.concurrency, max_keepalive_connections=c.concurrency),
            headers={"Accept": "image/*", "User-Agent": "illustra (image collection ingest)"},
        )
        self._lock = threading.Lock()
        self._failures = c.failures_path.open("w", encoding="utf-8")
        self._failures.write("id\turl\treason\n")
        self._failures.flush()
        self.counts: Counter[str] = Counter()

    # -- public ---------------------------------------------------------------------------
    def fetch(self, item_id: str, url: str) -> Fetched:
        """The stored-size image for ``item_id`` from the cache or ``url``; failures are logged."""
        try:
            check_url(url)
        except DownloadError as exc:
            return self._fail(item_id, url, exc.message)
        cached = self._from_cache(item_id)
        if cached is not None:
            self._count("cached")
            return Fetched(image=cached, from_cache=True)
        try:
            data = self._download(url)
            im = images.decode(data, max_side=int(settings.get("stored_image_side")))
        except _Permanent as exc:
            return self._fail(item_id, url, str(exc))
        except _Transient as exc:
            return self._fail(item_id, url, f"{exc} (gave up after {self.config.retries + 1} attempts)")
        except BadImage as exc:
            return self._fail(item_id, url, f"not a valid image: {exc.message}")
        self._store(item_id, data)
        self._count("downloaded")
        return Fetched(image={"bytes": images.encode_stored(im), "path": None})

    def close(self) -> None:
        self._client.close()
        with self._lock:
            self._failures.close()

    def __enter__(self) -> Downloader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cache_path(self, item_id: str) -> Path:
        key = cache_key(item_id)
        return Path(self.config.cache_dir or ".") / key[:2] / key

    # -- internals ------------------------------------------------------------------------
    def _count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def _fail(self, item_id: str, url: str, reason: str) -> Fetched:
        reason = " ".join(reason.split())
        line = "\t".join(v.replace("\t", " ").replace("\n", " ") for v in (item_id, url, reason))
        with self._lock:
            self.counts["failed"] += 1
            self._failures.write(line + "\n")
            self._failures.flush()
        return Fetched(image=None, error=reason)

    def _from_cache(self, item_id: str) -> dict[str, Any] | None:
        path = self.cache_path(item_id)
        if not path.is_file():
            return None
        try:
            im = images.open_image(path, max_side=int(settings.get("stored_image_side")))
        except BadImage:
            # A damaged cache entry is fetched again rather than trusted.
            path.unlink(missing_ok=True)
            return None
        return {"bytes": images.encode_stored(im), "path": None}

    def _store(self, item_id: str, data: bytes) -> None:
        try:
            write_bytes_atomic(self.cache_path(item_id), data)
        except OSError as exc:
            log.info("download cache: %s not kept (%s); a later run fetches it again", item_id, exc)

    def _download(self, url: str) -> bytes:
        c = self.config
        last: _Transient | None = None
        for attempt in range(c.retries + 1):
            if attempt:
                # Exponential backoff with jitter, so many workers do not retry in lockstep.
                time.sleep(c.backoff * (2 ** (attempt - 1)) * (1 + random.random() / 4))
            try:
                return self._attempt(url)
            except _Transient as exc:
                last = exc
        assert last is not None
        raise last

    def _attempt(self, url: str) -> bytes:
        c = self.config
        started = time.monotonic()
        try:
            with self._client.stream("GET", url) as resp:
                status = resp.status_code
                if status >= 500 or status in RETRY_STATUS:
                    raise _Transient(f"HTTP {status}")
                if status >= 400:
                    raise _Permanent(f"HTTP {status}")
                if status != 200:
                    raise _Permanent(f"unexpected HTTP {status}")
                ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
                if not (ctype.startswith("image/") or ctype in GENERIC_TYPES):
                    raise _Permanent(f"content-type {ctype} is not an image")
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > c.max_bytes:
                    raise _Permanent(f"{declared} bytes, over the {c.max_bytes}-byte limit")
                buf = bytearray()
                for chunk in resp.iter_bytes(65536):
                    buf.extend(chunk)
                    if len(buf) > c.max_bytes:
                        raise _Permanent(f"over the {c.max_bytes}-byte limit")
                    if time.monotonic() - started > c.deadline:
                        raise _Transient(f"took longer than {c.deadline:g}s")
                return bytes(buf)
        except httpx.TimeoutException as exc:
            raise _Transient(f"timed out ({type(exc).__name__})") from exc
        except httpx.TooManyRedirects as exc:
            raise _Permanent("too many redirects") from exc
        except httpx.UnsupportedProtocol as exc:
            raise _Permanent("redirected to an unsupported URL scheme") from exc
        except httpx.TransportError as exc:
            # Connection refused or dropped, or the body ended before Content-Length.
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise _Transient(f"connection error: {msg[:120]}") from exc
        except httpx.InvalidURL as exc:
            raise _Permanent(f"invalid URL: {exc}") from exc
