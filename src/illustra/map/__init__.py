"""A map of the collection: every picture placed in 2D by similarity (UMAP over the picture space),
its regions named by their catalogue text, served in quantised chunks to the page's Map view."""

from .build import build_map
from .store import CollectionMap, MapStore, layout_path

__all__ = ["CollectionMap", "MapStore", "build_map", "layout_path"]
