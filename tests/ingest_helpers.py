"""Helpers for the ingest tests: generated images and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image


def image_bytes(
    colour: str | tuple[int, int, int] = "red", size: tuple[int, int] = (32, 24), fmt: str = "JPEG"
) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt)
    return buf.getvalue()


def write_image(path: Path, colour: str = "red", size: tuple[int, int] = (32, 24), fmt: str = "JPEG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(colour, size, fmt))
    return path


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    content_type: str = "image/jpeg"
    delay: float = 0.0  # seconds before the response starts
    truncate_to: int | None = None  # send only this many bytes of a longer declared body
    fail_first: int = 0  # answer 500 to this many requests first
    stream_bytes: int = 0  # chunked body of this many bytes, no Content-Length


@dataclass
class ImageServer:
    """Routes by path; counts hits and the body bytes it managed to send per path."""

    routes: dict[str, Route] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)
    base: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.base + path

    def total_hits(self) -> int:
        with self._lock:
            return sum(self.hits.values())


def _handler(server_state: ImageServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            pass

        def do_GET(self) -> None:
            state = server_state
            with state._lock:
                state.hits[self.path] += 1
                n = state.hits[self.path]
            route = state.routes.get(self.path)
            if route is None:
                self._send(404, b"not found", "text/plain")
                return
            if route.delay:
                time.sleep(route.delay)
            if n <= route.fail_first:
                self._send(500, b"try again", "text/plain")
                return
            if route.stream_bytes:
                self._stream(route)
                return
            body = route.body
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(body)))
            if route.truncate_to is not None:
                self.send_header("Connection", "close")
            self.end_headers()
            payload = body if route.truncate_to is None else body[: route.truncate_to]
            try:
                self.wfile.write(payload)
                self.wfile.flush()
                with state._lock:
                    state.sent[self.path] += len(payload)
            except OSError:
                return
            if route.truncate_to is not None:
                self.close_connection = True

        def _stream(self, route: Route) -> None:
            self.send_response(200)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"\xff" * 65536
            remaining = route.stream_bytes
            try:
                while remaining > 0:
                    part = chunk[: min(len(chunk), remaining)]
                    self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    remaining -= len(part)
                    with server_state._lock:
                        server_state.sent[self.path] += len(part)
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
            self.close_connection = True

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(body)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients hanging up early (timeouts, size limits) are what the tests provoke.
        pass


def serve(state: ImageServer) -> Iterator[ImageServer]:
    """Run ``state`` on a random port of 127.0.0.1 for the duration of a fixture."""
    httpd = _QuietServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def read_tsv(path: Path) -> list[dict[str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]


def by_id(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {r["id"]: r for r in rows}


def wait_for(pred: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()
