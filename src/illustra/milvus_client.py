"""The Milvus client: one connection per URI and process, and Milvus failures as one line.

A ``.db`` path opens Milvus Lite embedded in this process (its gRPC server runs on a thread); an
``http(s)://`` or ``tcp://`` URI reaches a Milvus server (standalone, distributed, or Milvus Lite's
own ``milvus-lite server``). pymilvus is an optional extra: without it every use says, in one
line, how to install it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import BackendUnavailable, BadInput
from .milvus_filters import VECTOR

INSTALL_HINT = "pip install 'illustra[milvus]'"

PROPERTY = "illustra"  # collection property holding what the collection was built from

# Milvus Lite (embedded, or its gRPC server) keeps gRPC's default ping policy: a client pinging more
# often than every 5 minutes, as pymilvus does every 10 s, has its connection dropped in the middle
# of a long call such as an index build.
KEEPALIVE = {"grpc.keepalive_time_ms": 360_000}

_CONNECT_LOCK = threading.Lock()

_CLIENTS: dict[str, Any] = {}


def pymilvus_module() -> Any:
    try:
        import pymilvus
    except ImportError:
        raise BackendUnavailable(f"the Milvus backend needs pymilvus: {INSTALL_HINT}") from None
    # pymilvus and Milvus Lite (its gRPC server runs in this process) log every failed call with
    # its stack trace; Illustra reports failures itself, in one line.
    for name in ("pymilvus", "milvus_lite", "grpc._server"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return pymilvus


def is_server_uri(uri: str) -> bool:
    return uri.strip().lower().startswith(("http://", "https://", "tcp://", "unix:"))


def normalise_uri(uri: str) -> str:
    """A server URL as given; a Milvus Lite file as an absolute path ending in ``.db``."""
    uri = uri.strip()
    if is_server_uri(uri):
        return uri
    if not uri.endswith(".db"):
        raise BadInput(
            f"--milvus-uri must be a Milvus Lite file ending in .db or http://HOST:PORT, got {uri!r}"
        )
    return str(Path(uri).expanduser().resolve())


def connect(uri: str) -> Any:
    """A client for ``uri`` (one per URI and process: Milvus Lite opens its file once)."""
    pymilvus = pymilvus_module()
    uri = normalise_uri(uri)
    with _CONNECT_LOCK:
        if uri in _CLIENTS:
            return _CLIENTS[uri]
        if not is_server_uri(uri):
            try:
                import milvus_lite  # noqa: F401
            except ImportError:
                raise BackendUnavailable(f"a local Milvus file needs Milvus Lite: {INSTALL_HINT}") from None
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            client = pymilvus.MilvusClient(uri=uri, timeout=10, grpc_options=KEEPALIVE)
        except pymilvus.MilvusException as exc:
            if is_server_uri(uri):
                raise BackendUnavailable(f"cannot reach Milvus at {uri}: {first_line(exc)}") from None
            raise BackendUnavailable(
                f"cannot open the Milvus Lite file {uri}: another process may hold it (Milvus Lite opens "
                "a file in one process only; for several processes run a Milvus server, e.g. "
                f"'milvus-lite server --data-dir {uri}', and use --milvus-uri http://HOST:PORT)"
            ) from None
        _CLIENTS[uri] = client
        return client


def disconnect(uri: str) -> None:
    """Close this process's client for ``uri``; a Milvus Lite file is let go of, so that another
    process can open it."""
    uri = normalise_uri(uri)
    with _CONNECT_LOCK:
        client = _CLIENTS.pop(uri, None)
    if client is not None:
        client.close()
    if not is_server_uri(uri):
        try:
            from milvus_lite.server_manager import server_manager_instance
        except ImportError:
            return
        server_manager_instance.release_server(uri)


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A Milvus call whose failure becomes one line (no URI or path: it may reach API answers)."""
    pymilvus = pymilvus_module()
    try:
        return fn(*args, **kwargs)
    except pymilvus.MilvusException as exc:
        raise BackendUnavailable(f"Milvus could not {what}: {first_line(exc)}") from None


def exists(client: Any, name: str) -> bool:
    return bool(call("list its collections", client.has_collection, name))


def recorded(client: Any, name: str) -> dict[str, Any] | None:
    """What an Illustra-built Milvus collection records about itself (None: not Illustra's)."""
    desc = call(f"describe collection {name!r}", client.describe_collection, name)
    raw = (desc.get("properties") or {}).get(PROPERTY)
    try:
        rec = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        rec = None
    if isinstance(rec, dict):
        rec["_physical"] = desc.get("collection_name", name)
        rec["_dim"] = next(
            (int(f["params"]["dim"]) for f in desc.get("fields", []) if f.get("name") == VECTOR), None
        )
        return rec
    return None


def serving(client: Any, name: str) -> str | None:
    """The physical collection behind alias ``name`` (None: no such alias)."""
    pymilvus = pymilvus_module()
    try:
        desc = client.describe_alias(name)
    except pymilvus.MilvusException:
        return None
    return str(desc.get("collection_name")) if desc else None
