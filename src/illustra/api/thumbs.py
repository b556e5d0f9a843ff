"""Item images and thumbnails, with content-derived ETags.

Bytes always come from the collection's Arrow data (``Collection.image_bytes``) or, for an item
that keeps only an image URL, from ``remote_images``; never from a path or address a client names. Thumbnails are made with the safe decoder, kept in a byte-bounded in-memory LRU and,
when the collection directory is writable, on disk under ``<collection>/cache/thumbs/`` keyed by the
source image's hash, so a replaced image can never be served a stale thumbnail.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from .. import images
from ..collection import write_bytes_atomic

log = logging.getLogger("illustra")

THUMB_QUALITY = 82
# Formats browsers show natively; anything else is re-encoded as JPEG before it is served.
_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def sniff_type(data: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if len(data) > 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def as_servable(data: bytes) -> tuple[bytes, str]:
    """(bytes, media type) safe to send as an image; unusual formats are re-encoded to JPEG."""
    mime = sniff_type(data)
    if mime:
        return data, mime
    im = images.decode(data, max_side=4096)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue(), "image/jpeg"


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of an If-None-Match header against our (strong) ETag."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    bare = etag.strip('"')
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag.strip('"') == bare:
            return True
    return False


class ThumbnailCache:
    """Thumbnails by source-image hash: memory LRU (bounded in bytes), then disk, then generated."""

    def __init__(self, cache_dir: Path | None, side: int = 256, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.cache_dir = cache_dir
        self.side = side
        self.max_bytes = max_bytes
        self._mem: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._disk_ok = cache_dir is not None

    def key(self, source_hash: str) -> str:
        return f"{source_hash}-{self.side}"

    def get(self, source: bytes, source_hash: str | None = None) -> bytes:
        return self.get_lazy(source_hash or content_hash(source), lambda: source)

    def get_lazy(self, source_hash: str, load: Callable[[], bytes]) -> bytes:
        """The thumbnail under ``source_hash``; ``load`` gives the source image only when it must be
        made (a remote item's thumbnail is found without fetching its picture again)."""
        key = self.key(source_hash)
        with self._lock:
            hit = self._mem.get(key)
            if hit is not None:
                self._mem.move_to_end(key)
                return hit
        data = self._read_disk(key)
        if data is None:
            data = self.make(load())
            self._write_disk(key, data)
        self._remember(key, data)
        return data

    def make(self, source: bytes) -> bytes:
        im = images.decode(source, max_side=self.side)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=THUMB_QUALITY, optimize=True)
        return buf.getvalue()

    def _remember(self, key: str, data: bytes) -> None:
        with self._lock:
            if key in self._mem:
                return
            self._mem[key] = data
            self._size += len(data)
            while self._size > self.max_bytes and self._mem:
                _, old = self._mem.popitem(last=False)
                self._size -= len(old)

    def _path(self, key: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / key[:2] / f"{key}.jpg"

    def _read_disk(self, key: str) -> bytes | None:
        path = self._path(key)
        if path is None or not self._disk_ok:
            return None
        try:
            return path.read_bytes()
        except OSError:
            return None

    def _write_disk(self, key: str, data: bytes) -> None:
        path = self._path(key)
        if path is None or not self._disk_ok:
            return
        try:
            write_bytes_atomic(path, data)
        except OSError as exc:
            # A read-only collection still serves thumbnails, from memory only.
            log.info("thumbnail disk cache off: %s", exc)
            self._disk_ok = False
