"""Near-duplicates and reuse: pictures printed again (the same plate in several books, near-copies
in one scan) found through a neighbour graph of the picture space and grouped into clusters."""

from .build import DEFAULT_THRESHOLD, build_duplicates, check_threshold, picture_vectors
from .clusters import Clusters
from .store import DuplicateStore, clusters_path

__all__ = [
    "DEFAULT_THRESHOLD",
    "Clusters",
    "DuplicateStore",
    "build_duplicates",
    "check_threshold",
    "clusters_path",
    "picture_vectors",
]
