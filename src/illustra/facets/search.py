"""Facets against a collection: examples resolved to picture vectors, facets trained (and kept
in memory), the collection ranked within filters, and the quick form ("find more like these").

Every search returns the usual ``SearchResponse``, with link parameters in ``source`` so its
permalink rebuilds the same facets from their examples.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..collection import Collection
from ..embedding_store import EmbeddingStore
from ..errors import BadInput, ItemNotFound
from ..index import position_mask
from ..search import SearchService
from ..search.filters import Filters
from ..search.limits import MAX_COMBINED_FACETS, check_paging, check_query, short_id
from ..search.types import SearchResponse
from .definition import DefinitionTooLong, FacetDefinition, check_name
from .model import FacetModel, score_all, seed_of, top, train
from .store import FacetStore, SavedFacet

MODEL_CACHE = 64  # trained facets kept in memory (paging and combining do not retrain)
# Quick form: how much the marked negatives pull away, relative to the positives (Rocchio's gamma
# over beta), and the text query's default share.
ROCCHIO_NEGATIVE = 0.25
DEFAULT_TEXT_WEIGHT = 0.5
SKIPPED_SHOWN = 10


class NoKnownPositive(ItemNotFound):
    """Positive examples were given, but none of them is an item with a picture here."""

    code = "no_known_example"


@dataclass(frozen=True)
class Skipped:
    """An example that was left out, and why."""

    id: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "reason": self.reason}


@dataclass(frozen=True)
class Facet:
    """A facet to rank by: a label (a saved facet's name, or the one a link gave) and its examples."""

    label: str
    definition: FacetDefinition
    saved: bool = False


@dataclass(frozen=True)
class Space:
    """One embedding's stored vectors (memory-mapped) and the dataset row of each, read from the
    embedding store, so facets work whichever backend answers the space's searches."""

    name: str
    vectors: np.ndarray  # (n, d) float32
    rows: np.ndarray  # (n,) sorted ascending

    @classmethod
    def load(cls, collection: Collection, name: str) -> Space:
        store = EmbeddingStore(collection, name)
        return cls(name, store.vectors(), np.asarray(store.rows(), dtype=np.int64))

    def position_of_row(self, row: int) -> int | None:
        pos = int(np.searchsorted(self.rows, row))
        return pos if pos < len(self.rows) and self.rows[pos] == row else None


@dataclass
class Resolved:
    definition: FacetDefinition  # the examples that are items with a picture vector
    positives: np.ndarray  # their positions in the picture space
    negatives: np.ndarray
    skipped: list[Skipped]


def skipped_words(skipped: Sequence[Skipped]) -> str:
    shown = ", ".join(f"{short_id(s.id)!r} ({s.reason})" for s in skipped[:SKIPPED_SHOWN])
    more = f" and {len(skipped) - SKIPPED_SHOWN:,} more" if len(skipped) > SKIPPED_SHOWN else ""
    return shown + more


class FacetSearch:
    """Facets of one collection, searched through its ``SearchService`` (thread-safe)."""

    def __init__(self, service: SearchService) -> None:
        self.service = service
        self.store = FacetStore(service.collection.root)
        self._models: OrderedDict[str, FacetModel] = OrderedDict()
        self._spaces: dict[str, Space] = {}
        self._lock = threading.Lock()

    def space(self, name: str | None = None) -> Space:
        """The stored vectors of ``name`` (default: the picture space, where facets live)."""
        name = name or self.service.picture_space()[0]
        with self._lock:
            if name not in self._spaces:
                self._spaces[name] = Space.load(self.service.collection, name)
            return self._spaces[name]

    # -- examples ---------------------------------------------------------------------------
    def resolve(self, definition: FacetDefinition, space: Space | None = None) -> Resolved:
        """Positions of the examples in ``space`` (default: the picture space); unknown ids and
        items without a picture vector are skipped and listed."""
        index = space if space is not None else self.space()
        coll = self.service.collection
        skipped: list[Skipped] = []

        def positions(ids: Sequence[str]) -> tuple[list[str], list[int]]:
            kept, pos = [], []
            for item_id in ids:
                try:
                    row = coll.row_of(item_id)
                except ItemNotFound:
                    skipped.append(Skipped(item_id, "no such item"))
                    continue
                p = index.position_of_row(row)
                if p is None:
                    skipped.append(Skipped(item_id, "no picture"))
                    continue
                kept.append(item_id)
                pos.append(p)
            return kept, pos

        pos_ids, pos = positions(definition.positives)
        neg_ids, neg = positions(definition.negatives)
        return Resolved(
            FacetDefinition(tuple(pos_ids), tuple(neg_ids)),
            np.asarray(pos, dtype=np.int64),
            np.asarray(neg, dtype=np.int64),
            skipped,
        )

    def usable(self, definition: FacetDefinition, what: str = "the facet") -> Resolved:
        """``resolve``, refusing a definition left with no positive example."""
        r = self.resolve(definition)
        if len(r.positives) == 0:
            if not definition.positives:
                raise BadInput(f"{what} has no positive example: mark at least one item as what it is about")
            raise NoKnownPositive(
                f"none of the positive examples of {what} is an item with a picture in this collection: "
                + skipped_words(r.skipped)
            )
        return r

    # -- saved facets -----------------------------------------------------------------------
    def create(self, name: str, definition: FacetDefinition) -> tuple[SavedFacet, list[Skipped]]:
        """Save a new facet with the examples that are items here (the others are returned)."""
        check_name(name)
        definition.check_size()
        self.store.check_free(name)
        r = self.usable(definition, f"the facet {name!r}")
        definition.check_sides()
        return self.store.create(name, r.definition), r.skipped

    def change(
        self,
        name: str,
        add_positive: Sequence[str] = (),
        add_negative: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> tuple[SavedFacet, list[Skipped]]:
        """Add or remove examples of a saved facet; an id added to one side leaves the other."""
        saved = self.store.get(name)
        changed = saved.definition.changed(tuple(add_positive), tuple(add_negative), tuple(remove))
        r = self.usable(changed, f"the facet {saved.name!r}")
        return self.store.replace(saved.name, r.definition), r.skipped

    def saved(self, name: str) -> Facet:
        s = self.store.get(name)
        return Facet(s.name, s.definition, saved=True)

    # -- ranking ----------------------------------------------------------------------------
    def model(self, r: Resolved) -> FacetModel:
        space = self.space()
        key = f"{space.name}|{r.definition.key()}"
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        m = train(space.vectors, r.positives, r.negatives, seed_of(r.definition.key()))
        with self._lock:
            self._models[key] = m
            while len(self._models) > MODEL_CACHE:
                self._models.popitem(last=False)
        return m

    def search(
        self, facets: Sequence[Facet], k: int = 10, offset: int = 0, filters: Filters | None = None
    ) -> SearchResponse:
        """The collection within ``filters``, ranked by the product of the facets' probabilities."""
        check_paging(k, offset)
        return self.ranked(facets, k, offset, filters)

    def ranked(
        self, facets: Sequence[Facet], k: int, offset: int = 0, filters: Filters | None = None
    ) -> SearchResponse:
        """``search`` without the page-size limit (exports take up to ``MAX_EXPORT_ITEMS``)."""
        if not facets:
            raise BadInput("name at least one facet to search by")
        if len(facets) > MAX_COMBINED_FACETS:
            raise BadInput(f"{len(facets)} facets given; at most {MAX_COMBINED_FACETS} combine in one search")
        svc = self.service
        index = self.space()
        space = index.name
        notices: list[str] = []
        models: list[FacetModel] = []
        for fc in facets:
            r = self.usable(fc.definition, f"the facet {fc.label!r}")
            if r.skipped:
                notices.append(
                    f"{len(r.skipped):,} example(s) of the facet {fc.label!r} were left out: "
                    + skipped_words(r.skipped)
                )
            models.append(self.model(r))
        f = filters or Filters()
        mask, undated = svc.row_mask_and_undated(f)
        allowed = None if mask is None else position_mask(index.rows, mask)
        scores, pos = top(score_all(models, index.vectors, allowed), offset + k + 1)
        has_more = len(pos) > offset + k
        scores, pos = scores[offset : offset + k], pos[offset : offset + k]
        hits = svc.hits(index.rows[pos].tolist(), np.exp(scores).tolist(), offset)
        if len(pos):
            each = np.stack([m.log_probability(np.asarray(index.vectors[pos])) for m in models], axis=1)
            for h, row in zip(hits, np.exp(each), strict=True):
                h.explain = {
                    "facet_probability": round(float(h.score), 6),
                    "facets": {fc.label: round(float(p), 6) for fc, p in zip(facets, row, strict=True)},
                }
                if space != svc.model:
                    h.explain["space"] = space
        return SearchResponse(
            results=hits,
            kind="facet",
            model=svc.model,
            query=" × ".join(fc.label for fc in facets),
            k=k,
            offset=offset,
            filters=f.describe(),
            notices=notices,
            has_more=has_more,
            undated_excluded=undated,
            source=facet_link(facets),
        )

    def quick(
        self,
        examples: FacetDefinition,
        q: str | None = None,
        text_weight: float = DEFAULT_TEXT_WEIGHT,
        k: int = 10,
        offset: int = 0,
        filters: Filters | None = None,
        *,
        limit_k: bool = True,
    ) -> SearchResponse:
        """"Find more like these": one query vector from the marked examples (Rocchio: the
        positives' mean less a quarter of the negatives'), blended with a text query's vector by
        ``text_weight`` when one is given (then in the model's own space, where text lives; else in
        the picture space). The examples themselves are left out of the results."""
        if limit_k:
            check_paging(k, offset)
        if not 0.0 <= text_weight <= 1.0:
            raise BadInput(f"the text weight must be between 0 and 1, got {text_weight}")
        svc = self.service
        examples.check()
        text = check_query(q) if q is not None and q.strip() else None
        if text is not None:
            space, backend = svc.model, svc.index
            tvec = svc.embed_text(text)
        else:
            space, backend = svc.picture_space()
            tvec = None
        vectors = self.space(space)
        r = self.resolve(examples, vectors)
        if tvec is None and len(r.positives) == 0:
            self.usable(examples, "the marked examples")  # says why: none given, or none known
        vec = _rocchio(vectors, r, tvec, text_weight)
        f = (filters or Filters()).excluding(set(examples.positives) | set(examples.negatives))
        mask, undated = svc.row_mask_and_undated(f)
        scores, rows = svc.rank_within(vec, offset + k + 1, mask, backend)
        has_more = len(rows) > offset + k
        hits = svc.hits(rows[offset : offset + k].tolist(), scores[offset : offset + k].tolist(), offset)
        for h in hits:
            h.explain = {"visual_score": round(float(h.score), 6)}
            if space != svc.model:
                h.explain["space"] = space
        notices = [f"{len(r.skipped):,} marked example(s) were left out: " + skipped_words(r.skipped)] if r.skipped else []
        source: list[tuple[str, str]] | None
        try:
            source = [("ex", examples.encode())]
            if text is not None:
                source += [("q", text), ("tw", f"{text_weight:g}")]
        except DefinitionTooLong:
            source = None
        return SearchResponse(
            results=hits,
            kind="examples",
            model=svc.model,
            query=text,
            k=k,
            offset=offset,
            filters=(filters or Filters()).describe(),
            notices=notices,
            has_more=has_more,
            undated_excluded=undated,
            source=source,
        )


def _rocchio(index: Space, r: Resolved, tvec: np.ndarray | None, text_weight: float) -> np.ndarray:
    parts = np.zeros(index.vectors.shape[1], dtype=np.float32)
    if len(r.positives):
        parts += np.asarray(index.vectors[np.sort(r.positives)], dtype=np.float32).mean(axis=0)
    if len(r.negatives):
        parts -= ROCCHIO_NEGATIVE * np.asarray(index.vectors[np.sort(r.negatives)], dtype=np.float32).mean(axis=0)
    norm = float(np.linalg.norm(parts))
    examples = parts / norm if norm > 0 else parts
    if tvec is None:
        return examples
    vec = text_weight * np.asarray(tvec, dtype=np.float32) + (1.0 - text_weight) * examples
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


def facet_link(facets: Sequence[Facet]) -> list[tuple[str, str]] | None:
    """Link parameters rebuilding ``facets``: their examples (``fdef``, comma-separated), or, for a
    saved facet with too many to fit in a link, its name (``facet``: then it rebuilds only where it
    is saved); None when an unsaved facet does not fit."""
    definitions: list[str] = []
    names: list[str] = []
    for f in facets:
        try:
            definitions.append(f.definition.encode(f.label))
        except DefinitionTooLong:
            if not f.saved:
                return None
            names.append(f.label)
    out = [("facet", ",".join(names))] if names else []
    return out + ([("fdef", ",".join(definitions))] if definitions else [])


def facet_json(saved: SavedFacet, skipped: Sequence[Skipped] = ()) -> dict[str, Any]:
    out = saved.to_json()
    try:
        out["definition"] = saved.definition.encode(saved.name)
    except DefinitionTooLong:
        out["definition"] = None
    if skipped:
        out["skipped"] = [s.to_json() for s in skipped]
    return out
