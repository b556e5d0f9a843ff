"""The search service: the one place queries are embedded and answered.

Every front end (CLI, REST API, web page, eval) goes through ``SearchService``; query embedding uses
the same encoder object (and so the same code) that embedded the collection.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .. import adapters, images
from ..collection import Collection
from ..embedding_store import pick_model, similarity_companion
from ..encoders import Encoder, load_encoder
from ..encoders.base import TextEncoder, Unsupported, decode_side
from ..errors import IndexMissing, ItemNotFound, ModelMismatch, NotEmbedded
from ..guardrails import Guardrails
from ..guardrails.faces import DETECT_SIDE
from ..settings import Settings, current
from ..vector_backend import VectorBackend, load_backend
from . import text_model as text_model_mod
from . import weak
from .catalogue import TextIndex, load_text_index
from .collapse import Grouper, GroupingRequest, grouped_hits, incomplete_notice
from .filters import NOT_FILTERABLE, FilterEngine, Filters
from .hybrid import respond_text_modes
from .limits import Mode, check_paging, check_query, parse_mode, short_id
from .permalink import encode_vector
from .scope import Scope
from .types import Hit, SearchResponse


class SearchService:
    """Search one collection with one model. Thread-safe for concurrent queries."""

    def __init__(
        self,
        collection: Collection | str | Path,
        model: str | None = None,
        *,
        encoder: Encoder | None = None,
        guardrails: bool | None = None,
        settings: Settings | None = None,
        text_model: str | None = None,
    ) -> None:
        self.settings = settings if settings is not None else current()
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
        self._index: VectorBackend | None = None
        # False: not looked up yet; None: the model's own space answers picture queries.
        self._picture_space: tuple[str, VectorBackend] | None | bool = False
        self._lock = threading.Lock()
        table = self.collection.dataset.data
        table = getattr(table, "table", table)
        self.filter_engine = FilterEngine(table, self.filterable_fields)
        # Near-duplicate clusters and books that rankings are grouped by (collapse.py).
        self.grouper = Grouper(self.collection, self.filter_engine.table)
        self.guardrails = Guardrails(
            self.collection.root, self.settings.guardrails if guardrails is None else guardrails, self.settings
        )
        self._text_index: TextIndex | None = None
        self._text_index_loaded = False
        self._weak: dict[str, Any] | None | bool = False  # False: not looked up yet
        self._weak_lock = threading.Lock()
        if encoder is not None and self._not_embedded is None:
            self._check_encoder(encoder)
        # A separate text model for queries (text_model.py): loaded now, so a mismatch stops at start.
        self.text_model: str = (text_model if text_model is not None else self.settings.text_model) or ""
        self._text_encoder: TextEncoder | None = None
        if self.text_model and self._not_embedded is None:
            paired = text_model_mod.pair(self.collection, self.model, self.text_model)
            self._text_encoder = paired
            self.guardrails.text_model = (self.text_model, paired.languages)

    # -- lazily loaded parts --------------------------------------------------------------
    @property
    def encoder(self) -> Encoder:
        if self._not_embedded is not None:
            raise self._not_embedded
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    enc = (
                        adapters.load_adapted(self.collection, self.model)
                        if adapters.is_adapted(self.model)
                        else load_encoder(self.model, fallback=False)
                    )
                    self._check_encoder(enc)
                    self._encoder = enc
        return self._encoder

    @property
    def index(self) -> VectorBackend:
        """The model's vector backend: FAISS, or Milvus where its ``index.json`` says so."""
        if self._not_embedded is not None:
            raise self._not_embedded
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._index = load_backend(self.collection, self.model)
        return self._index

    def picture_space(self) -> tuple[str, VectorBackend]:
        """The space picture-to-picture queries use: a picture-only companion embedding of the
        model (e.g. ``lite-visual`` beside ``lite``) when it is embedded and indexed, else the
        model's own."""
        if self._picture_space is False:
            with self._lock:
                if self._picture_space is False:
                    found: tuple[str, VectorBackend] | None = None
                    companion = similarity_companion(self.collection, self.model) if self.model else None
                    if companion is not None:
                        try:
                            found = (companion, load_backend(self.collection, companion))
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
                    self._text_index = load_text_index(self.collection, self.settings)
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
            if self.encoder.supports_text:
                self.encoder.embed_texts(["warm up"])
                self.weak_match()  # measured once and stored, so no request waits for it
        if self.text_index is not None:
            self.text_index.warm()
        if self.grouper.has_books:
            self.grouper.book_keys()  # grouping by book reads every row's book once (seconds at 1M)

    @property
    def filterable_fields(self) -> list[str]:
        # Paths and URLs identify files, not categories a reader would filter by.
        return [
            f
            for f in self.collection.metadata_fields
            if f not in NOT_FILTERABLE and not f.endswith(("_path", "_url"))
        ]

    # -- queries --------------------------------------------------------------------------
    @property
    def query_encoder(self) -> TextEncoder:
        """What embeds text queries: the separate text model, else the model's own text side."""
        return self._text_encoder if self._text_encoder is not None else self.encoder

    def embed_text(self, query: str) -> np.ndarray:
        query = check_query(query)
        if self._text_encoder is not None:
            return self._text_encoder.embed_query(query)
        if not self.encoder.supports_text:
            raise Unsupported(
                f"the collection was embedded with {self.model!r}, which has no text side: search it by picture"
            )
        return self.encoder.embed_texts([query])[0]

    def query_image(self, image: Image.Image | bytes | str | Path) -> Image.Image:
        """Decode a query image (uploaded bytes, a file, or a PIL image) through the safe decoder."""
        # Decoded as the collection's own pictures were (so a picture finds itself), but never so
        # small that the face guard cannot see a face in it.
        side = max(decode_side(self.encoder), DETECT_SIDE)
        if isinstance(image, bytes):
            return images.decode(image, min_side=side)
        if isinstance(image, (str, Path)):
            return images.open_image(image, min_side=side)
        return image.convert("RGB")

    def search_text(
        self,
        query: str,
        k: int = 10,
        offset: int = 0,
        filters: Filters | None = None,
        mode: Mode | str | None = None,
        grouping: GroupingRequest | None = None,
    ) -> SearchResponse:
        check_paging(k, offset)
        query = check_query(query)
        notices = self.guardrails.check_text(query)
        mode, mode_notice = self.resolve_mode(mode)
        if mode is Mode.VISUAL:
            resp = self._respond(
                self.embed_text(query), k, offset, filters, kind="text", query=query, grouping=grouping
            )
        else:
            resp = respond_text_modes(self, query, mode, k, offset, filters, grouping)
        resp.notices = notices + ([mode_notice] if mode_notice else []) + resp.notices
        self._mark_weak(resp, query, filters)
        return resp

    def weak_match(self) -> dict[str, Any] | None:
        """The model's weak-match level in this collection (weak.py), measured on first use and
        stored; None when the model has no text side."""
        if self._weak is False:
            with self._weak_lock:
                if self._weak is False:
                    found = weak.stored(self.collection, self.model, self.text_model)
                    if found is None and (self._text_encoder is not None or self.encoder.supports_text):
                        found = weak.measure(
                            self.collection,
                            self.model,
                            lambda qs: self.query_encoder.embed_texts(qs),
                            lambda v: float(self.rank_within(v, 1, None)[0][0]),
                            self.text_model,
                        )
                    self._weak = found
        return self._weak if isinstance(self._weak, dict) else None

    def _mark_weak(self, resp: SearchResponse, query: str, filters: Filters | None) -> None:
        """Mark results below the weak-match level; say so plainly when nothing matches."""
        if resp.mode is Mode.TEXT or not resp.results:
            return  # catalogue words matched or did not: no picture score to judge
        found = self.weak_match()
        if found is None:
            return
        level = float(found["level"])
        all_weak = weak.mark(resp.results, level)
        if all_weak and resp.offset > 0:
            # A later page is weaker than the first: judge by the best picture in scope.
            best = self.rank_within(self.embed_text(query), 1, self.scope(filters))[0]
            all_weak = not len(best) or float(best[0]) < level
        resp.weak_level, resp.nothing_matches = level, all_weak
        if all_weak:
            resp.notices.append(weak.NOTHING_MATCHES)

    def modes(self) -> list[Mode]:
        """The modes this collection can answer."""
        if self._not_embedded is not None:
            return [Mode.TEXT]
        return list(Mode) if self.text_index is not None else [Mode.VISUAL]

    def resolve_mode(self, mode: Mode | str | None) -> tuple[Mode, str | None]:
        """The effective mode, plus a notice when a text mode falls back to pictures only."""
        mode = parse_mode(mode)
        has_text = self.text_index is not None
        if self._not_embedded is not None:
            if mode is Mode.VISUAL:
                raise self._not_embedded
            return Mode.TEXT, (
                None if mode in (None, Mode.TEXT) else "no pictures are embedded, so only the catalogue text was searched"
            )
        if mode is None:
            return (Mode.HYBRID if has_text else Mode.VISUAL), None
        if mode is not Mode.VISUAL and not has_text:
            return Mode.VISUAL, (
                "this collection has no catalogue text index, so only the pictures were searched "
                "(run 'illustra index' after ingesting metadata)"
            )
        return mode, None

    def search_image(
        self,
        image: Image.Image | bytes | str | Path,
        k: int = 10,
        offset: int = 0,
        filters: Filters | None = None,
        grouping: GroupingRequest | None = None,
    ) -> SearchResponse:
        check_paging(k, offset)
        im = self.query_image(image)
        self.guardrails.check_upload(im)
        space, _ = self.picture_space()
        encoder = self.encoder if space == self.model else load_encoder(space, fallback=False)
        return self.search_vector(encoder.embed_images([im])[0], k, offset, filters, grouping)

    def search_vector(
        self,
        vec: np.ndarray,
        k: int = 10,
        offset: int = 0,
        filters: Filters | None = None,
        grouping: GroupingRequest | None = None,
    ) -> SearchResponse:
        """A search by picture from its vector in the picture space (a permalink holds it)."""
        check_paging(k, offset)
        space, index = self.picture_space()
        resp = self._respond(vec, k, offset, filters, kind="image", index=index, space=space, grouping=grouping)
        link = encode_vector(vec)
        resp.source = [("vec", link)] if link else None
        return resp

    def search_like(
        self,
        item_id: str,
        k: int = 10,
        offset: int = 0,
        filters: Filters | None = None,
        grouping: GroupingRequest | None = None,
    ) -> SearchResponse:
        """"More like this": the item's stored vector is the query; the item itself is left out."""
        check_paging(k, offset)
        row = self.collection.row_of(item_id)
        space, index = self.picture_space()
        vec = index.vectors_of([row]).get(row)
        if vec is None:
            raise ItemNotFound(
                f"item {short_id(item_id)!r} has no image embedding (no image, or it could not be decoded)"
            )
        f = (filters or Filters()).excluding({item_id})
        return self._respond(
            vec, k, offset, f, kind="like", query=item_id, index=index, space=space, grouping=grouping
        )

    def vector_ranking(
        self, vec: np.ndarray, n: int, filters: Filters | None, index: VectorBackend | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` (scores, dataset rows) for a query vector under filters, in ``index``
        (default: the model's own)."""
        return self.rank_within(vec, n, self.scope(filters), index)

    def rank_within(
        self,
        vec: np.ndarray,
        n: int,
        row_mask: np.ndarray | Scope | None,
        index: VectorBackend | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` (scores, dataset rows) among the rows a mask allows (None: every row), or within
        a query's ``Scope``: a backend such as Milvus filters by the scope's filters itself."""
        scope = row_mask if isinstance(row_mask, Scope) else Scope.of_mask(row_mask)
        return (index if index is not None else self.index).rank(vec, n, scope)

    def scope(self, filters: Filters | None) -> Scope:
        """A query's scope: its filters (checked now) with the owner's hidden items left out."""
        f = filters or Filters()
        hidden = self.guardrails.hidden_ids() if self.guardrails.enabled else frozenset()
        if hidden:
            f = f.excluding(hidden)
        return Scope(f, self.filter_engine, self._row_or_none)

    def row_mask(self, filters: Filters | None) -> np.ndarray | None:
        """Rows allowed by the filters and not hidden by the owner (None: every row)."""
        return self.row_mask_and_undated(filters)[0]

    def row_mask_and_undated(self, filters: Filters | None) -> tuple[np.ndarray | None, int | None]:
        """``row_mask`` and, with a year range, how many undated items it left out (computed together)."""
        scope = self.scope(filters)
        return scope.mask(), scope.undated()

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
        index: VectorBackend | None = None,
        space: str | None = None,
        grouping: GroupingRequest | None = None,
    ) -> SearchResponse:
        f = filters or Filters()
        # The scope, not a mask: the backend ranks within it (a local mask is computed only if needed).
        mask = self.scope(f)
        undated = mask.undated()
        plan = self.grouper.resolve(grouping, text_match=False)
        info: dict[str, Any] | None = None
        if plan.active:
            page = self.grouper.page(lambda depth: self.rank_within(vec, depth, mask, index), offset, k, plan)
            hits = grouped_hits(page, offset, self.hits)
            has_more, info = page.has_more, page.info
        else:
            scores, rows = self.rank_within(vec, offset + k + 1, mask, index)
            has_more = len(rows) > offset + k
            scores, rows = scores[offset : offset + k], rows[offset : offset + k]
            hits = self.hits(rows.tolist(), scores.tolist(), offset)
        for h in [x for hit in hits for x in (hit, *(hit.similar or ()), *(hit.same_book or ()))]:
            h.explain = {"visual_score": round(float(h.score), 6)}
            if space and space != self.model:
                h.explain["space"] = space
        resp = SearchResponse(
            results=hits,
            kind=kind,
            model=self.model,
            query=query,
            k=k,
            offset=offset,
            filters=f.describe(),
            has_more=has_more,
            undated_excluded=undated,
            grouping=info,
        )
        note = incomplete_notice(info) if info else None
        if note:
            resp.notices.append(note)
        return resp

    def hits(self, rows: list[int], scores: list[float], offset: int = 0) -> list[Hit]:
        metas = self.collection.metadata_many(rows)
        return [
            Hit(id=str(m.pop("id")), score=float(s), rank=offset + i + 1, metadata=m, row=int(r))
            for i, (r, s, m) in enumerate(zip(rows, scores, metas, strict=True))
        ]
