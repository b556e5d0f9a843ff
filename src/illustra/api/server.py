"""Running the app with uvicorn: in the foreground (``illustra serve``) or in a background thread
(tests, the demo).

The listening socket is bound here, before uvicorn starts, so a busy port is a clear one-line
error and ``port=0`` picks a free port whose URL can be reported.
"""

from __future__ import annotations

import functools
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


# Idle keep-alive connections are closed after this long. Longer than the usual client pool expiry
# (5 s in httpx and most browsers' idle sockets), so a client never reuses a connection the server
# is closing at that very moment (a reset under load when both sides waited 5 s).
KEEP_ALIVE_S = 30


def _uvicorn_server(app: Any, log_level: str) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_S,
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
    workers: int = 1,
) -> None:
    """Serve one collection until interrupted: bind, warm the search service, announce the URL.
    ``workers`` > 1 runs that many server processes on the one socket (see ``serve_workers``)."""
    from ..search import SearchService
    from .app import create_app

    cfg = settings.current()
    host = host or cfg.host
    port = cfg.port if port is None else int(port)
    say = announce or log.warning
    sock = bind_socket(host, port)
    cfg, chosen = server_settings(cfg), cfg
    try:
        svc = SearchService(collection_dir, model, settings=cfg)
        if workers > 1:
            serve_workers(svc, sock, workers, model, say, log_level, chosen)
            return
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


def serve_workers(
    svc: Any,
    sock: socket.socket,
    workers: int,
    model: str | None,
    say: Callable[[str], None],
    log_level: str,
    cfg: settings.Settings,
) -> None:
    """Several server processes answering on one socket, each with its own search service over the
    same collection and the same vector backend (a Milvus server is shared; a FAISS index is read by
    each into its own memory, its vectors memory-mapped and shared). The indexes are opened here first, so a backend that cannot be used
    stops the start with one line instead of failing in every process."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from ..embedding_store import similarity_companion
    from ..milvus_build import check_shared

    companion = similarity_companion(svc.collection, svc.model) if svc.model else None
    check_shared(svc.collection, [m for m in (svc.model, companion) if m])
    if svc.model:
        _ = svc.index, svc.picture_space()
    # Each process adjusts the settings for serving itself (thread counts are per process).
    app = functools.partial(_worker_app, str(svc.collection.root), model, cfg)
    config = uvicorn.Config(
        app,
        factory=True,
        workers=workers,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_S,
        server_header=False,
    )
    url = url_of(sock)
    say(f"Illustra is serving {svc.collection.root} at {url} from {workers} processes  (Ctrl+C to stop)")
    Multiprocess(config, sockets=[sock]).run()


def _worker_app(collection_dir: str, model: str | None, cfg: settings.Settings) -> Any:
    """The app of one server process started by ``serve_workers`` (built in that process)."""
    from uvicorn.config import STARTUP_FAILURE

    from ..errors import IllustraError
    from ..search import SearchService
    from .app import create_app

    cfg = server_settings(settings.use(cfg))
    try:
        return create_app(SearchService(collection_dir, model, settings=cfg), warm=True)
    except IllustraError as exc:
        log.error("error: %s", exc.message)
        raise SystemExit(STARTUP_FAILURE) from None  # the supervisor stops instead of restarting it


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
