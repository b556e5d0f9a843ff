"""The search service: the one place queries are embedded and answered.

Every front end (CLI, REST API, web page, eval) goes through ``SearchService``; query embedding uses
the same encoder object (and so the same code) that embedded the collection.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import images
from .collection import Collection
from .embedding_store import pick_model, similarity_companion
from .encoders import Encoder, load_encoder
from .errors import BadInput, IndexMissing, ItemNotFound, ModelMismatch, NotEmbedded
from .filters import NOT_FILTERABLE, FilterEngine, Filters
from .guardrails import Guardrails
from .index import VectorIndex, load_index
from .textindex import TextIndex, load_text_index

MAX_K = 1000
MAX_QUERY_CHARS = 1000


@dataclass
class Hit:
    id: str
    score: float
    rank: int
    metadata: dict[str, Any]
    row: int = -1
    explain: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {"id": self.id, "score": round(float(self.score), 6), "rank": self.rank, "metadata": self.metadata}
        if self.explain:
            out["explain"] = self.explain
        return out


@dataclass
class SearchResponse:
    results: list[Hit]
    kind: str  # text | image | like
    model: str
    query: str | None = None
    k: int = 10
    offset: int = 0
    mode: str = "visual"
    filters: dict[str, Any] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    has_more: bool = False

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["results"] = [h.to_json() for h in self.results]
        return d


def _check_paging(k: int, offset: int) -> None:
    if not 1 <= k <= MAX_K:
        raise BadInput(f"k must be between 1 and {MAX_K}, got {k}")
    if not 0 <= offset <= 100_000:
        raise BadInput(f"offset must be between 0 and 100000, got {offset}")


class SearchService:
    """Search one collection with one model. Thread-safe for concurrent queries."""

    def __init__(
        self,
        collection: Collection | str | Path,
        model: str | None = None,
        *,
        encoder: Encoder | None = None,
        guardrails: bool | None = None,
        picture_companion: bool = True,
    ) -> None:
        self.collection = collection if isinstance(collection, Collection) else Collection(collection)
        self._not_embedded: NotEmbedded | None = None
        try:
            self.model = pick_model(self.collection, model if model is not None else (encoder.name if encoder else None))
        except NotEmbedded as exc:
            # A catalogue-only collection (no picture embedded) can still be searched in text mode.
            if load_text_index(self.collection) is None:
                raise
            self.model, self._not_embedded = "", exc
        self._encoder = encoder
        self._index: VectorIndex | None = None
        # False: not looked up yet; None: the model's own space answers picture queries.
        self._picture_space: tuple[str, VectorIndex] | None | bool = False if picture_companion else None
        self._lock = threading.Lock()
        table = self.collection.dataset.data
        table = getattr(table, "table", table)
        self.filter_engine = FilterEngine(table, self.filterable_fields)
        from . import settings

        self.guardrails = Guardrails(
            self.collection.root, bool(settings.get("guardrails")) if guardrails is None else guardrails
        )
        self._text_index: TextIndex | None = None
        self._text_index_loaded = False
        if encoder is not None and self._not_embedded is None:
            self._check_encoder(encoder)

    # -- lazily loaded parts --------------------------------------------------------------
    @property
    def encoder(self) -> Encoder:
        if self._not_embedded is not None:
            raise self._not_embedded
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    enc = load_encoder(self.model, fallback=False)
                    self._check_encoder(enc)
                    self._encoder = enc
        return self._encoder

    @property
    def index(self) -> VectorIndex:
        if self._not_embedded is not None:
            raise self._not_embedded
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._index = load_index(self.collection, self.model)
        return self._index

    def picture_space(self) -> tuple[str, VectorIndex]:
        """The space picture-to-picture queries use: a picture-only companion embedding of the
        model (e.g. ``lite-visual`` beside ``lite``) when it is embedded and indexed, else the
        model's own."""
        if self._picture_space is False:
            with self._lock:
                if self._picture_space is False:
                    found: tuple[str, VectorIndex] | None = None
                    companion = similarity_companion(self.collection, self.model) if self.model else None
                    if companion is not None:
                        try:
                            found = (companion, load_index(self.collection, companion))
                        except IndexMissing:
                            found = None  # embedded but not indexed yet: the model's own space answers
                    self._picture_space = found
        if isinstance(self._picture_space, tuple):
            return self._picture_space
        return self.model, self.index

    @property
    def text_index(self) -> TextIndex | None:
        if not self._text_index_loaded:
            with self._lock:
                if not self._text_index_loaded:
                    self._text_index = load_text_index(self.collection)
                    self._text_index_loaded = True
        return self._text_index

    def _check_encoder(self, enc: Encoder) -> None:
        entry = self.collection.manifest.get("embeddings", {}).get(self.model, {})
        if enc.name != self.model or (entry.get("dim") and int(entry["dim"]) != enc.dim):
            raise ModelMismatch(
                f"{self.collection.root} was embedded with {self.model!r} (dim {entry.get('dim')}); "
                f"the query encoder is {enc.name!r} (dim {enc.dim}) — search with --model {self.model}"
            )

    def warm(self) -> None:
        """Load the encoder and indexes now (servers call this at start-up)."""
        if self._not_embedded is None:
            _ = self.index
            self.encoder.embed_texts(["warm up"])
        if self.text_index is not None:
            self.text_index.warm()

    @property
    def filterable_fields(self) -> list[str]:
        # Paths and URLs identify files, not categories a reader would filter by.
        return [
            f
            for f in self.collection.metadata_fields
            if f not in NOT_FILTERABLE and not f.endswith(("_path", "_url"))
        ]

    # -- queries --------------------------------------------------------------------------
    def embed_text(self, query: str) -> np.ndarray:
        query = (query or "").strip()
        if not query:
            raise BadInput("the query is empty")
        if len(query) > MAX_QUERY_CHARS:
            raise BadInput(f"the query is {len(query)} characters; the limit is {MAX_QUERY_CHARS}")
        return self.encoder.embed_texts([query])[0]

    def query_image(self, image: Image.Image | bytes | str | Path) -> Image.Image:
        """Decode a query image (uploaded bytes, a file, or a PIL image) through the safe decoder."""
        side = max(self.encoder.image_side * 2, 256)
        if isinstance(image, bytes):
            return images.decode(image, max_side=side)
        if isinstance(image, (str, Path)):
            return images.open_image(image, max_side=side)
        return image.convert("RGB")

    def embed_image(self, image: Image.Image | bytes | str | Path) -> np.ndarray:
        return self.encoder.embed_images([self.query_image(image)])[0]

    def search_text(
        self,
        query: str,
        k: int = 10,
        offset: int = 0,
        filters: Filters | None = None,
        mode: str | None = None,
    ) -> SearchResponse:
        _check_paging(k, offset)
        notices = self.guardrails.check_text(query)
        mode, mode_notice = self.resolve_mode(mode)
        if mode == "visual":
            resp = self._respond(self.embed_text(query), k, offset, filters, kind="text", query=query.strip())
        else:
            resp = self._respond_text_modes(query, mode, k, offset, filters)
        resp.notices = notices + ([mode_notice] if mode_notice else []) + resp.notices
        return resp

    def resolve_mode(self, mode: str | None) -> tuple[str, str | None]:
        """The effective mode, plus a notice when a text mode falls back to pictures only."""
        if mode not in (None, "visual", "text", "hybrid"):
            raise BadInput(f"unknown mode {mode!r}; choose visual, text or hybrid")
        has_text = self.text_index is not None
        if self._not_embedded is not None:
            if mode == "visual":
                raise self._not_embedded
            return "text", (None if mode in (None, "text") else "no pictures are embedded, so only the catalogue text was searched")
        if mode is None:
            return ("hybrid" if has_text else "visual"), None
        if mode != "visual" and not has_text:
            return "visual", (
                "this collection has no catalogue text index, so only the pictures were searched "
                "(run 'illustra index' after ingesting metadata)"
            )
        return mode, None

    def _respond_text_modes(
        self, query: str, mode: str, k: int, offset: int, filters: Filters | None
    ) -> SearchResponse:
        """Text and hybrid modes (see hybrid.py, textindex.py, fusion.py)."""
        from .hybrid import respond_text_modes

        return respond_text_modes(self, query, mode, k, offset, filters)

    def search_image(
        self, image: Image.Image | bytes | str | Path, k: int = 10, offset: int = 0, filters: Filters | None = None
    ) -> SearchResponse:
        _check_paging(k, offset)
        im = self.query_image(image)
        self.guardrails.check_upload(im)
        space, index = self.picture_space()
        encoder = self.encoder if space == self.model else load_encoder(space, fallback=False)
        vec = encoder.embed_images([im])[0]
        return self._respond(vec, k, offset, filters, kind="image", index=index, space=space)

    def search_like(
        self, item_id: str, k: int = 10, offset: int = 0, filters: Filters | None = None
    ) -> SearchResponse:
        """"More like this": the item's stored vector is the query; the item itself is left out."""
        _check_paging(k, offset)
        row = self.collection.row_of(item_id)
        space, index = self.picture_space()
        pos = index.position_of_row(row)
        if pos is None:
            raise ItemNotFound(f"item {item_id!r} has no image embedding (no image, or it could not be decoded)")
        vec = np.asarray(index.vectors[pos], dtype=np.float32)
        f = filters or Filters()
        f = Filters(f.year_from, f.year_to, dict(f.fields), f.title_contains, f.exclude_ids | {item_id})
        return self._respond(vec, k, offset, f, kind="like", query=item_id, index=index, space=space)

    def vector_ranking(
        self, vec: np.ndarray, n: int, filters: Filters | None, index: VectorIndex | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` (scores, dataset rows) for a query vector under filters, in ``index``
        (default: the model's own)."""
        index = index if index is not None else self.index
        row_mask = self.row_mask(filters)
        allowed = None if row_mask is None else row_mask[index.rows]
        scores, pos = index.search(vec, n, allowed)
        return scores, index.rows[pos]

    def row_mask(self, filters: Filters | None) -> np.ndarray | None:
        """Rows allowed by the filters and not hidden by the owner (None: every row)."""
        f = filters or Filters()
        hidden = self.guardrails.hidden_ids() if self.guardrails.enabled else frozenset()
        if hidden:
            f = Filters(f.year_from, f.year_to, dict(f.fields), f.title_contains, f.exclude_ids | hidden)
        return self.filter_engine.mask(f, self._row_or_none)

    def _row_or_none(self, item_id: str) -> int | None:
        try:
            return self.collection.row_of(item_id)
        except ItemNotFound:
            return None

    def _respond(
        self,
        vec: np.ndarray,
        k: int,
        offset: int,
        filters: Filters | None,
        *,
        kind: str,
        query: str | None = None,
        index: VectorIndex | None = None,
        space: str | None = None,
    ) -> SearchResponse:
        f = filters or Filters()
        scores, rows = self.vector_ranking(vec, offset + k + 1, f, index)
        has_more = len(rows) > offset + k
        scores, rows = scores[offset : offset + k], rows[offset : offset + k]
        hits = self.hits(rows.tolist(), scores.tolist(), offset)
        for h in hits:
            h.explain = {"visual_score": round(float(h.score), 6)}
            if space and space != self.model:
                h.explain["space"] = space
        return SearchResponse(
            results=hits,
            kind=kind,
            model=self.model,
            query=query,
            k=k,
            offset=offset,
            filters=f.describe(),
            has_more=has_more,
        )

    def hits(self, rows: list[int], scores: list[float], offset: int = 0) -> list[Hit]:
        metas = self.collection.metadata_many(rows)
        return [
            Hit(id=str(m.pop("id")), score=float(s), rank=offset + i + 1, metadata=m, row=int(r))
            for i, (r, s, m) in enumerate(zip(rows, scores, metas, strict=True))
        ]
