"""Facets by example: named classifiers over the picture vectors, trained from marked examples,
kept in the collection, combined, and shared as links."""

from .definition import FacetDefinition, FacetExists, FacetNotFound, check_name
from .search import FacetSearch, Skipped
from .store import FacetStore, SavedFacet

__all__ = [
    "FacetDefinition",
    "FacetExists",
    "FacetNotFound",
    "FacetSearch",
    "FacetStore",
    "SavedFacet",
    "Skipped",
    "check_name",
]
