"""Where a collection keeps its near-duplicate clusters, and the loaded clusters a server uses
(read again when a new build replaces the file)."""

from __future__ import annotations

from pathlib import Path

from ..collection import Collection
from ..reloading import ReloadingFile
from . import clusters as cl


def duplicates_dir(collection: Collection) -> Path:
    return collection.root / "duplicates"


def clusters_path(collection: Collection) -> Path:
    return duplicates_dir(collection) / "clusters.npz"


def graph_path(collection: Collection) -> Path:
    return duplicates_dir(collection) / "graph.npz"


NOT_BUILT = "near-duplicates have not been found for this collection yet; run 'illustra duplicates'"


class DuplicateStore(ReloadingFile[cl.Clusters]):
    """The clusters of one collection, loaded lazily and reloaded when the file is replaced."""

    def __init__(self, collection: Collection) -> None:
        super().__init__(lambda: clusters_path(collection), cl.load, NOT_BUILT)
        self.collection = collection
