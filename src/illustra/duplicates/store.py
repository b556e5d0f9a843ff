"""Where a collection keeps its near-duplicate clusters, and the loaded clusters a server uses
(read again when a new build replaces the file)."""

from __future__ import annotations

import threading
from pathlib import Path

from ..collection import Collection
from ..errors import NotBuilt
from . import clusters as cl


def duplicates_dir(collection: Collection) -> Path:
    return collection.root / "duplicates"


def clusters_path(collection: Collection) -> Path:
    return duplicates_dir(collection) / "clusters.npz"


def graph_path(collection: Collection) -> Path:
    return duplicates_dir(collection) / "graph.npz"


NOT_BUILT = "near-duplicates have not been found for this collection yet; run 'illustra duplicates'"


class DuplicateStore:
    """The clusters of one collection, loaded lazily and reloaded when the file is replaced."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._clusters: cl.Clusters | None = None

    def current(self) -> cl.Clusters | None:
        """The clusters, or None when none have been built."""
        path = clusters_path(self.collection)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._clusters = cl.load(path)
                    self._stamp = stamp
        return self._clusters

    def require(self) -> cl.Clusters:
        found = self.current()
        if found is None:
            raise NotBuilt(NOT_BUILT)
        return found
