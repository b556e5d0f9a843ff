"""Pictures of items that keep only an image URL, fetched from their source when they are shown.

A collection ingested with ``--images remote`` (or a manifest ingested without ``--download``, such
as the British Library's Flickr manifest) stores no picture, only its http(s) address in
``image_path`` (``Collection.image_url``). The image and thumbnail routes get it from here:

* bounded: http and https only, every redirect re-checked (at most ``MAX_REDIRECTS``), loopback
  and private addresses refused unless ``url_fetch_private``, connect/read timeouts
  (``remote_timeout``) and a total deadline of twice that, a byte cap (``remote_max_bytes``)
  counted while streaming, and the content checked by the safe decoder (``images.decode``);
* cached on disk (``remote_cache_dir``, else ``<collection>/cache/remote/``): files written
  atomically, the least recently shown dropped first once ``remote_cache_bytes`` is exceeded;
* fetched once: concurrent requests for one picture share one fetch, and at most ``PER_HOST``
  fetches run against one host at a time;
* failures remembered for ``remote_retry_after`` seconds, per picture, and per host when the host
  could not be reached at all, so a dead host is not asked again for every card on a page.

A picture that cannot be had is a ``RemoteUnavailable`` with a code and a reason in words; the
routes answer it with a small placeholder PNG that says so, the reason in response headers.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import Response

from .. import images
from ..collection import write_bytes_atomic
from ..errors import BadImage, DownloadError, ItemNotFound, Refused
from ..settings import Settings
from .state import AppState, get_state
from .thumbs import sniff_type

log = logging.getLogger("illustra")

MAX_REDIRECTS = 3
PER_HOST = 4  # concurrent fetches against one host
KEEP_AS_SENT_BYTES = 4_000_000  # a browser-ready picture up to this size is cached as sent
MAX_REMEMBERED = 10_000  # failures remembered at most (oldest forgotten first)
MEMORY_CACHE_MAX = 64 * 1024 * 1024  # when the cache directory cannot be written
GENERIC_TYPES = {"application/octet-stream", "binary/octet-stream", "application/binary", ""}
USER_AGENT = "illustra (image collection viewer)"
STATE_KEY = "remote_images"

# Short words drawn on the placeholder, by failure code.
PLACEHOLDER_WORDS = {
    "unreachable": "The source could not be reached.",
    "timeout": "The source was too slow.",
    "not_found": "The source no longer has it.",
    "http_error": "The source refused it.",
    "too_large": "The file is too large.",
    "not_an_image": "The source did not send a picture.",
    "refused": "Its address is not allowed.",
    "bad_url": "Its address is not valid.",
    "disabled": "Fetching is switched off.",
    "busy": "The server is busy; try again.",
    "error": "Something went wrong.",
}


class RemoteUnavailable(Exception):
    """Why a remote picture cannot be shown: ``code`` for programs, ``message`` for people."""

    def __init__(self, code: str, message: str, *, host_down: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.host_down = host_down

    def copy(self) -> RemoteUnavailable:
        return RemoteUnavailable(self.code, self.message, host_down=self.host_down)

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class RemoteConfig:
    cache_dir: Path | None
    cache_bytes: int = 2_000_000_000
    timeout: float = 10.0
    max_bytes: int = 20_000_000
    retry_after: float = 300.0
    allow_private: bool = False
    enabled: bool = True
    stored_side: int = 1024

    @property
    def deadline(self) -> float:
        """Seconds one whole fetch may take (a server trickling bytes never trips a read timeout)."""
        return self.timeout * 2

    @classmethod
    def from_settings(cls, cfg: Settings, collection_root: Path | None) -> RemoteConfig:
        chosen = str(cfg.remote_cache_dir or "").strip()
        if chosen:
            cache_dir: Path | None = Path(chosen).expanduser()
        else:
            cache_dir = collection_root / "cache" / "remote" if collection_root is not None else None
        return cls(
            cache_dir=cache_dir,
            cache_bytes=int(cfg.remote_cache_bytes),
            timeout=float(cfg.remote_timeout),
            max_bytes=int(cfg.remote_max_bytes),
            retry_after=float(cfg.remote_retry_after),
            allow_private=bool(cfg.url_fetch_private),
            enabled=bool(cfg.remote_images),
            stored_side=int(cfg.stored_image_side),
        )


def size_words(n: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} bytes"


# -- the disk cache -------------------------------------------------------------------------------
class DiskLRU:
    """Files under ``root/<2 hex>/<key>``, at most ``max_bytes`` in all, least recently read or
    written dropped first. The order survives restarts through file modification times (a read
    touches its file). Without a writable directory it falls back to a small memory cache."""

    def __init__(self, root: Path | None, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._index: OrderedDict[str, int] | None = None  # key -> size, oldest first; scanned lazily
        self._total = 0
        self._mem: OrderedDict[str, bytes] = OrderedDict()
        self._mem_total = 0
        self._disk_ok = root is not None
        self._lock = threading.Lock()

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return self._total if self._disk_ok else self._mem_total

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / key

    def _scan(self) -> OrderedDict[str, int]:
        """The index, read from the directory on first use (call with the lock held)."""
        if self._index is not None:
            return self._index
        found: list[tuple[float, str, int]] = []
        if self.root is not None and self.root.is_dir():
            stale = time.time() - 3600
            for sub in self.root.iterdir():
                if not sub.is_dir() or len(sub.name) != 2:
                    continue
                for f in sub.iterdir():
                    try:
                        st = f.stat()
                    except OSError:
                        continue
                    if f.name.startswith(".part-"):
                        if st.st_mtime < stale:  # left by an interrupted write
                            f.unlink(missing_ok=True)
                        continue
                    found.append((st.st_mtime, f.name, st.st_size))
        found.sort()
        self._index = OrderedDict((name, size) for _, name, size in found)
        self._total = sum(size for _, _, size in found)
        self._evict()
        return self._index

    def _evict(self) -> None:
        index = self._index
        assert index is not None
        while self._total > self.max_bytes and index:
            key, size = index.popitem(last=False)
            self._total -= size
            with contextlib.suppress(OSError):
                self._path(key).unlink(missing_ok=True)

    def has(self, key: str) -> bool:
        with self._lock:
            if not self._disk_ok:
                return key in self._mem
            return key in self._scan()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            if not self._disk_ok:
                hit = self._mem.get(key)
                if hit is not None:
                    self._mem.move_to_end(key)
                return hit
            index = self._scan()
            if key not in index:
                return None
            index.move_to_end(key)
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError:
            self._forget(key)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # the access order survives a restart
        return data

    def _forget(self, key: str) -> None:
        with self._lock:
            if self._index is not None and key in self._index:
                self._total -= self._index.pop(key)

    def put(self, key: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        if self._disk_ok:
            path = self._path(key)
            try:
                write_bytes_atomic(path, data)
            except OSError as exc:
                # A read-only collection still shows remote pictures, from a small memory cache.
                log.info("remote picture disk cache off: %s", exc)
                with self._lock:
                    self._disk_ok = False
            else:
                with self._lock:
                    index = self._scan()
                    self._total -= index.pop(key, 0)
                    index[key] = len(data)
                    self._total += len(data)
                    self._evict()
                return
        cap = min(self.max_bytes, MEMORY_CACHE_MAX)
        if len(data) > cap:
            return
        with self._lock:
            old = self._mem.pop(key, None)
            self._mem_total -= len(old) if old is not None else 0
            self._mem[key] = data
            self._mem_total += len(data)
            while self._mem_total > cap and self._mem:
                _, gone = self._mem.popitem(last=False)
                self._mem_total -= len(gone)


# -- fetching -------------------------------------------------------------------------------------
class _Flight:
    """One fetch in progress; requests for the same picture wait on it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.data: bytes | None = None
        self.error: RemoteUnavailable | None = None


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:40]


def _host_of(url: str) -> str:
    try:
        parts = urlsplit(url)
        return f"{(parts.hostname or '').lower()}:{parts.port or ''}"
    except ValueError:
        return ""


class RemoteImages:
    """Thread-safe: the image and thumbnail routes call ``get`` from many worker threads."""

    def __init__(self, config: RemoteConfig) -> None:
        self.config = config
        self.cache = DiskLRU(config.cache_dir, config.cache_bytes)
        self.fetches = 0  # network fetches started
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight] = {}
        self._failed: OrderedDict[str, tuple[float, RemoteUnavailable]] = OrderedDict()
        self._hosts_down: OrderedDict[str, tuple[float, RemoteUnavailable]] = OrderedDict()
        self._host_slots: dict[str, threading.BoundedSemaphore] = {}
        self._client: httpx.Client | None = None

    # -- public ---------------------------------------------------------------------------------
    def get(self, url: str) -> bytes:
        """The picture at ``url`` (a checked image, browser-ready or re-encoded as JPEG), from the
        cache or the network; ``RemoteUnavailable`` when it cannot be had within the bounds."""
        known = self._disabled()
        if known:
            raise known
        key = url_key(url)
        data = self.cache.get(key)
        if data is not None:
            return data
        known = self.remembered(url)
        if known is not None:
            raise known
        flight, leader = self._join(key)
        if leader:
            self._run(url, key, flight)
        # A follower waits at most as long as one whole fetch can take, plus a read.
        if not flight.done.wait(self.config.deadline + self.config.timeout + 1):
            raise RemoteUnavailable("timeout", "the source was too slow to answer")
        if flight.error is not None:
            raise flight.error.copy()
        assert flight.data is not None
        return flight.data

    def prefetch(self, url: str, wait: float) -> RemoteUnavailable | None:
        """Start fetching ``url`` in the background unless it is cached, failed or under way; wait
        up to ``wait`` seconds for the outcome. The failure, if one is known by then, else None."""
        known = self._disabled()
        if known:
            return known
        key = url_key(url)
        if self.cache.has(key):
            return None
        known = self.remembered(url)
        if known is not None:
            return known
        flight, leader = self._join(key)
        if leader:
            threading.Thread(target=self._run, args=(url, key, flight), daemon=True).start()
        if wait > 0 and flight.done.wait(wait):
            return flight.error
        return None

    def status(self, url: str) -> dict[str, Any]:
        """What the item JSON says about a remote picture (nothing is fetched)."""
        out: dict[str, Any] = {"source": "remote"}
        problem = self._disabled()
        if problem is None and self.cache.has(url_key(url)):
            out["state"] = "fetched"
            return out
        problem = problem or self.remembered(url)
        if problem is not None:
            out.update(state="unavailable", error=problem.as_json())
        else:
            out["state"] = "not_fetched"
        return out

    def remembered(self, url: str) -> RemoteUnavailable | None:
        """A failure of this picture, or of its host, that is still remembered."""
        now = time.monotonic()
        with self._lock:
            for table, key in ((self._failed, url_key(url)), (self._hosts_down, _host_of(url))):
                entry = table.get(key)
                if entry is None:
                    continue
                if entry[0] > now:
                    return entry[1].copy()
                del table[key]
        return None

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- internals ------------------------------------------------------------------------------
    def _disabled(self) -> RemoteUnavailable | None:
        if self.config.enabled:
            return None
        return RemoteUnavailable(
            "disabled",
            "this server does not fetch pictures from their sources (setting remote_images is off)",
        )

    def _join(self, key: str) -> tuple[_Flight, bool]:
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                return flight, False
            flight = self._flights[key] = _Flight()
            return flight, True

    def _run(self, url: str, key: str, flight: _Flight) -> None:
        """Fetch for everyone waiting on ``flight``; never raises."""
        try:
            data = self._load(url)
            self.cache.put(key, data)
            flight.data = data
        except RemoteUnavailable as exc:
            flight.error = exc
            self._remember(url, exc)
        except Exception:  # noqa: BLE001 - a picture that cannot be had must not become a 500
            log.exception("fetching a remote picture failed unexpectedly")
            flight.error = RemoteUnavailable("error", "the picture could not be fetched")
            self._remember(url, flight.error)
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def _remember(self, url: str, exc: RemoteUnavailable) -> None:
        if self.config.retry_after <= 0 or exc.code in ("busy", "disabled"):
            return
        until = time.monotonic() + self.config.retry_after
        with self._lock:
            tables = [(self._failed, url_key(url))]
            if exc.host_down:
                tables.append((self._hosts_down, _host_of(url)))
            for table, key in tables:
                table.pop(key, None)
                table[key] = (until, exc)
                while len(table) > MAX_REMEMBERED:
                    table.popitem(last=False)

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.config.timeout),
                    follow_redirects=False,  # followed by hand, each hop checked
                    trust_env=False,
                    limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
                    headers={"Accept": "image/*", "User-Agent": USER_AGENT},
                )
            return self._client

    def _slot(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            sem = self._host_slots.get(host)
            if sem is None:
                sem = self._host_slots[host] = threading.BoundedSemaphore(PER_HOST)
            return sem

    def _load(self, url: str) -> bytes:
        slot = self._slot(_host_of(url))
        if not slot.acquire(timeout=self.config.deadline):
            raise RemoteUnavailable("busy", "too many pictures are being fetched from this source; try again")
        try:
            known = self.remembered(url)  # the host may have been found dead while this waited
            if known is not None:
                raise known
            with self._lock:
                self.fetches += 1
            raw = self._fetch(url)
        finally:
            slot.release()
        return self._checked(raw)

    def _checked(self, raw: bytes) -> bytes:
        """The fetched bytes once the safe decoder accepts them; large or unusual ones re-encoded."""
        c = self.config
        try:
            im = images.decode(raw, max_side=c.stored_side, max_bytes=c.max_bytes)
        except BadImage as exc:
            raise RemoteUnavailable(
                "not_an_image", f"the source did not send a readable picture ({exc.message})"
            ) from None
        if sniff_type(raw) and len(raw) <= KEEP_AS_SENT_BYTES:
            return raw
        return images.encode_stored(im)

    def _check_address(self, url: str) -> tuple[str, int]:
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError:
            raise RemoteUnavailable("bad_url", "the picture's address is not a valid URL") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise RemoteUnavailable("bad_url", "the picture's address is not an http:// or https:// URL")
        if not self.config.allow_private:
            from .uploads import _refuse_private

            try:
                _refuse_private(parts.hostname, port)
            except Refused:
                raise RemoteUnavailable(
                    "refused",
                    "the picture's source is not a public address (setting url_fetch_private is off)",
                ) from None
            except DownloadError:
                raise RemoteUnavailable(
                    "unreachable", "the source's host name could not be resolved", host_down=True
                ) from None
        return parts.hostname, port

    def _fetch(self, url: str) -> bytes:
        c = self.config
        started = time.monotonic()
        client = self._http()
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            self._check_address(current)
            if time.monotonic() - started > c.deadline:
                raise RemoteUnavailable("timeout", f"the source took longer than {c.deadline:g} s")
            try:
                with client.stream("GET", current) as resp:
                    if resp.is_redirect:
                        current = urljoin(current, resp.headers.get("location", ""))
                        continue
                    return self._body(resp, started)
            except httpx.ConnectTimeout:
                raise RemoteUnavailable(
                    "unreachable",
                    f"the source did not accept a connection within {c.timeout:g} s",
                    host_down=True,
                ) from None
            except httpx.TimeoutException:
                raise RemoteUnavailable(
                    "timeout", f"the source did not answer within {c.timeout:g} s"
                ) from None
            except httpx.ConnectError:
                raise RemoteUnavailable(
                    "unreachable", "the source could not be reached", host_down=True
                ) from None
            except httpx.TransportError:
                raise RemoteUnavailable("unreachable", "the connection to the source broke off") from None
            except httpx.InvalidURL:
                raise RemoteUnavailable("bad_url", "the picture's address is not a valid URL") from None
        raise RemoteUnavailable("http_error", f"the source redirected more than {MAX_REDIRECTS} times")

    def _body(self, resp: httpx.Response, started: float) -> bytes:
        c = self.config
        status = resp.status_code
        if status in (404, 410):
            raise RemoteUnavailable("not_found", f"the source does not have the picture (HTTP {status})")
        if status != 200:
            raise RemoteUnavailable("http_error", f"the source answered HTTP {status}")
        ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
        if not (ctype.startswith("image/") or ctype in GENERIC_TYPES):
            raise RemoteUnavailable("not_an_image", f"the source sent {ctype[:40]}, not a picture")
        too_large = RemoteUnavailable(
            "too_large", f"the picture is larger than the {size_words(c.max_bytes)} limit"
        )
        declared = resp.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > c.max_bytes:
            raise too_large
        buf = bytearray()
        for chunk in resp.iter_bytes(65536):
            buf.extend(chunk)
            if len(buf) > c.max_bytes:
                raise too_large
            if time.monotonic() - started > c.deadline:
                raise RemoteUnavailable("timeout", f"the source took longer than {c.deadline:g} s")
        return bytes(buf)


# -- the app's side -------------------------------------------------------------------------------
_STATE_LOCK = threading.Lock()


def remote_for(state: AppState) -> RemoteImages:
    """The app's remote pictures (made on first use from its settings)."""
    remote = state.extra.get(STATE_KEY)
    if remote is None:
        with _STATE_LOCK:
            remote = state.extra.get(STATE_KEY)
            if remote is None:
                root = getattr(state.collection, "root", None)
                remote = RemoteImages(
                    RemoteConfig.from_settings(state.settings, Path(root) if root else None)
                )
                state.extra[STATE_KEY] = remote
    assert isinstance(remote, RemoteImages)
    return remote


def image_problem(request: Request, item_id: str, wait: float = 0.0) -> str | None:
    """For templates: why the item's remote picture cannot be shown, in words; None when it can
    (or is not known yet). With ``wait``, a picture not yet tried is fetched for up to that long."""
    state = get_state(request)
    coll = state.collection
    try:
        url = coll.image_url(coll.row_of(item_id))
    except ItemNotFound:
        return None
    if url is None:
        return None
    remote = remote_for(state)
    problem = (
        remote.prefetch(url, min(wait, remote.config.deadline))
        if wait > 0
        else (remote._disabled() or remote.remembered(url))
    )
    return problem.message if problem is not None else None


def _header_text(text: str) -> str:
    clean = "".join(ch if 32 <= ord(ch) < 127 else " " for ch in text)
    return " ".join(clean.split())[:200]


def placeholder_response(exc: RemoteUnavailable, side: int) -> Response:
    """A 200 with a placeholder PNG (so an ``<img>`` shows it), the reason in headers, not cached
    (the picture may be fetched next time)."""
    headers = {
        "Cache-Control": "no-store",
        "X-Illustra-Image": "placeholder",
        "X-Illustra-Image-Error": exc.code,
        "X-Illustra-Image-Reason": _header_text(exc.message),
    }
    return Response(placeholder_png(exc.code, side), media_type="image/png", headers=headers)


def _wrap(draw: Any, text: str, font: Any, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


@functools.lru_cache(maxsize=64)
def placeholder_png(code: str, side: int = 256) -> bytes:
    """A square PNG saying the picture could not be fetched, and (in short words) why."""
    from PIL import Image, ImageDraw, ImageFont

    side = max(96, min(int(side), 1024))
    im = Image.new("RGB", (side, side), (238, 235, 228))
    draw = ImageDraw.Draw(im)
    pad = max(4, side // 24)
    draw.rectangle(
        (pad // 2, pad // 2, side - pad // 2 - 1, side - pad // 2 - 1), outline=(170, 163, 150), width=2
    )
    big_px, small_px = max(11, side // 14), max(10, side // 18)
    big = ImageFont.load_default(size=big_px)
    small = ImageFont.load_default(size=small_px)
    blocks = [
        (_wrap(draw, "Picture could not be fetched", big, side - 4 * pad), big, big_px, (60, 56, 50)),
        (
            _wrap(draw, PLACEHOLDER_WORDS.get(code, PLACEHOLDER_WORDS["error"]), small, side - 4 * pad),
            small,
            small_px,
            (95, 90, 82),
        ),
    ]
    height = sum(int(px * 1.3) * len(lines) for lines, _, px, _ in blocks) + pad
    y = (side - height) / 2
    for lines, font, px, colour in blocks:
        for line in lines:
            w = draw.textlength(line, font=font)
            draw.text(((side - w) / 2, y), line, font=font, fill=colour)
            y += int(px * 1.3)
        y += pad
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
