"""What one running app holds: the search service and the caches around it.

Routers (including ones passed to ``create_app(routers=...)``) reach it with
``get_state(request)``; ``state.service.collection`` is the opened collection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from ..search import SearchService
from ..settings import Settings
from .facets import Facets
from .redact import Redactor
from .thumbs import ThumbnailCache
from .uploads import UploadStore

DEFAULT_EXAMPLES = [
    "a ship in a storm",
    "portrait of a bearded man",
    "map of a coastline",
    "a cathedral interior",
    "botanical drawing of a flower",
    "decorated initial letter",
]


@dataclass
class AppState:
    service: SearchService
    thumbs: ThumbnailCache
    uploads: UploadStore
    facets: Facets
    examples: list[str]
    title: str
    settings: Settings
    redactor: Redactor
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def collection(self) -> Any:
        return self.service.collection

    def default_mode(self) -> str:
        return self.service.resolve_mode(None)[0]

    def has_book_field(self) -> bool:
        return "book_identifier" in self.service.filterable_fields


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.illustra
    return state


def root_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")
