"""Where a collection keeps its map, and the loaded map a server answers from (read again when
``illustra map`` writes a new one)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..collection import Collection, write_bytes_atomic
from ..reloading import ReloadingFile

NOT_BUILT = "the collection map has not been built yet; run 'illustra map'"


def map_dir(collection: Collection) -> Path:
    return collection.root / "map"


def layout_path(collection: Collection) -> Path:
    return map_dir(collection) / "layout.npz"


@dataclass
class CollectionMap:
    x: np.ndarray  # (collection rows,) uint16, NO_POSITION where an item has none
    y: np.ndarray
    labels: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def points(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start .. stop`` as interleaved little-endian uint16 x, y."""
        out = np.empty((stop - start, 2), "<u2")
        out[:, 0] = self.x[start:stop]
        out[:, 1] = self.y[start:stop]
        return out


def save(path: Path, m: CollectionMap) -> None:
    buf = io.BytesIO()
    np.savez(buf, x=m.x, y=m.y, labels=np.array(json.dumps(m.labels)), meta=np.array(json.dumps(m.meta)))
    write_bytes_atomic(path, buf.getvalue())


def load(path: Path) -> CollectionMap:
    with np.load(path) as z:
        return CollectionMap(
            z["x"].astype(np.uint16), z["y"].astype(np.uint16), json.loads(str(z["labels"])), json.loads(str(z["meta"]))
        )


class MapStore(ReloadingFile[CollectionMap]):
    """The map of one collection, loaded lazily and reloaded when ``illustra map`` replaces it."""

    def __init__(self, collection: Collection) -> None:
        super().__init__(lambda: layout_path(collection), load, NOT_BUILT)
        self.collection = collection
