"""Running the app with uvicorn: in the foreground (``illustra serve``) or in a background thread
(tests, the demo).

The listening socket is bound here, before uvicorn starts, so a busy port is a clear one-line
error and ``port=0`` picks a free port whose URL can be reported.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import settings
from ..errors import BadInput

log = logging.getLogger("illustra")


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Protocol IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says it is TCP, and without it small responses on a kept-alive connection
    # wait for a delayed ACK (tens of milliseconds each).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno in (98, 48):  # EADDRINUSE on Linux / macOS
            raise BadInput(f"port {port} on {host} is already in use; choose another with --port") from None
        raise BadInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def _uvicorn_server(app: Any, log_level: str) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    return uvicorn.Server(config)


def server_settings(cfg: settings.Settings) -> settings.Settings:
    """A server answers many small queries at once: intra-op threads in torch and FAISS only fight
    each other (and the other requests) for the cores, so each query runs on one thread unless the
    user chose a number of threads."""
    if cfg.sources.get("torch_threads") != "default":
        return cfg
    import faiss
    import torch

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    return settings.use(cfg.replace(torch_threads=1))


def serve(
    collection_dir: str | Path,
    host: str | None = None,
    port: int | None = None,
    *,
    model: str | None = None,
    announce: Callable[[str], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve one collection until interrupted: bind, warm the search service, announce the URL."""
    from ..search import SearchService
    from .app import create_app

    cfg = settings.current()
    host = host or cfg.host
    port = cfg.port if port is None else int(port)
    say = announce or log.warning
    sock = bind_socket(host, port)
    cfg = server_settings(cfg)
    try:
        svc = SearchService(collection_dir, model, settings=cfg)
        say(f"loading model {svc.model} and the index of {len(svc.collection)} items…")
        app = create_app(svc, warm=True)
        server = _uvicorn_server(app, log_level)
        url = url_of(sock)
        say(f"Illustra is serving {svc.collection.root} at {url}  (API docs: {url}docs; Ctrl+C to stop)")
        if host not in ("127.0.0.1", "localhost", "::1"):
            say(f"note: listening on {host}, so other machines can reach this server")
        server.run(sockets=[sock])
    finally:
        sock.close()


@dataclass
class RunningServer:
    url: str
    server: Any
    thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def serve_in_thread(
    app: Any, host: str = "127.0.0.1", port: int = 0, *, start_timeout: float = 20.0
) -> RunningServer:
    """Start ``app`` on a background thread; returns once it accepts connections."""
    sock = bind_socket(host, port)
    server = _uvicorn_server(app, "warning")
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="illustra-server"
    )
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    return RunningServer(url_of(sock).rstrip("/"), server, thread)
