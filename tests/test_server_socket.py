"""The server's listening socket: accepted connections get TCP_NODELAY, so small responses on a
kept-alive connection are not held back by Nagle's algorithm waiting for a delayed ACK.

asyncio sets TCP_NODELAY on accepted connections only when the listening socket says it is TCP
(``sock.proto == IPPROTO_TCP``); a socket made with protocol 0 silently misses out.
"""

from __future__ import annotations

import socket

import httpx
from fastapi import FastAPI

from illustra.api.server import bind_socket, serve_in_thread


def test_listening_socket_declares_tcp():
    for host in ("127.0.0.1", "::1"):
        try:
            sock = bind_socket(host, 0)
        except Exception:  # noqa: BLE001 - no IPv6 loopback on this machine
            assert host == "::1"
            continue
        try:
            assert sock.proto == socket.IPPROTO_TCP
        finally:
            sock.close()


def test_accepted_connections_have_tcp_nodelay():
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, bool]:
        return {"ok": True}

    server = serve_in_thread(app)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for _ in range(3):  # one kept-alive connection, several requests
                assert client.get("/ping").json() == {"ok": True}
            connections = list(server.server.server_state.connections)
            assert len(connections) == 1
            sock = connections[0].transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        server.stop()
