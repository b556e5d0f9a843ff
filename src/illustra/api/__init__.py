"""REST API and web page for one collection.

``create_app(collection_dir_or_service)`` builds the FastAPI app; ``serve(collection_dir, host,
port)`` runs it with uvicorn in the foreground; ``serve_in_thread(app)`` runs it in the background.
"""

from __future__ import annotations

from .app import create_app
from .server import RunningServer, serve, serve_in_thread

__all__ = ["create_app", "serve", "serve_in_thread", "RunningServer"]
