"""Searching a model's Milvus collection: the Milvus side of the ``VectorBackend`` interface.

``index.json`` names the collection (an alias, which a re-index moves in one step) and the build
it must hold; ``MilvusIndex.open`` checks that the collection behind the alias is that build, of
this model and dimension, and loads it. ``rank`` turns the query's scope into a Milvus filter
expression (``milvus_filters.py``) and searches with parameters widened by the filter's
selectivity; ties at the cut are fetched deeper so that pages agree, as with FAISS.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .collection import Collection
from .embedding_store import EmbeddingStore
from .errors import IllustraError, IndexMissing, ModelMismatch
from .milvus_client import call, connect, exists, pymilvus_module, recorded
from .milvus_filters import ROW, VECTOR, ExpressionBuilder, arrow_table, lowered_column

if TYPE_CHECKING:
    from .search.scope import Scope

BACKEND = "milvus"

# Milvus Lite's own overhead dominates a search, so a wide beam costs little: recall@10 was 0.93 at
# ef 128 and 1.0 at 512 on 20k clustered vectors, in about the same time.
HNSW_EF = 512

# IVF_SQ8 candidates are re-ranked exactly with their float32 vectors (fetched with the hits).
SQ_RERANK = 40

MAX_TOPK = 16_384  # Milvus answers at most this many hits per search


class MilvusIndex:
    """A model's vectors in Milvus, searched through the alias ``index.json`` names."""

    def __init__(self, collection: Collection, model: str, info: dict[str, Any], client: Any) -> None:
        m = info["milvus"]
        self.collection = collection
        self.model = model
        self.kind = str(info.get("kind", "milvus"))
        self.dim = int(info["dim"])
        self.count = int(info["count"])
        self.name = str(m["collection"])
        self.index_type = str(m.get("index_type", "FLAT"))
        self.params = dict(info.get("params") or {})
        self.client = client
        self.templates = self._accepts_templates()
        self._title_lock = threading.Lock()
        self._title: pa.Array | None = None
        self._store: tuple[np.ndarray, np.ndarray] | None = None
        self.builder = ExpressionBuilder(
            dict(m.get("fields") or {}),
            has_title=bool(m.get("title")),
            templates=self.templates,
            title_rows=self._title_rows,
        )

    @classmethod
    def open(cls, collection: Collection, model: str, info: dict[str, Any]) -> MilvusIndex:
        """Open and check: the collection behind the alias is the build ``index.json`` names,
        of this model and dimension."""
        m = info.get("milvus") or {}
        if info.get("model") != model or not m.get("collection") or not m.get("uri"):
            raise ModelMismatch(
                f"the index of {collection.root} for {model!r} does not describe a Milvus collection of it"
            )
        client = connect(str(m["uri"]))
        name = str(m["collection"])
        if not exists(client, name):
            raise IndexMissing(
                f"the Milvus collection {name!r} does not exist; run 'illustra index --backend milvus'"
            )
        rec = recorded(client, name)
        if rec is None or rec.get("model") != model or rec.get("_dim") != int(info["dim"]):
            found = (
                "not an Illustra collection"
                if rec is None
                else f"{rec.get('model')!r}, dim {rec.get('_dim')}"
            )
            raise ModelMismatch(
                f"the Milvus collection {name!r} holds {found}; this collection's index is for {model!r} "
                f"(dim {info['dim']}): run 'illustra index --backend milvus' again"
            )
        if rec.get("build") != m.get("build"):
            raise ModelMismatch(
                f"the Milvus collection {name!r} was rebuilt by another 'illustra index' run; "
                "run 'illustra index --backend milvus' for this collection again"
            )
        # Milvus Lite does not keep a collection loaded across restarts; a server may have released it.
        state = call("read the load state", client.get_load_state, name).get("state")
        if str(getattr(state, "name", state)) != "Loaded":
            call("load the collection", client.load_collection, name)
        return cls(collection, model, info, client)

    def __len__(self) -> int:
        return self.count

    # The collection's own copy of the vectors, for callers that read every vector (facets); the
    # searches above never need it.
    def _local(self) -> tuple[np.ndarray, np.ndarray]:
        if self._store is None:
            with self._title_lock:
                if self._store is None:
                    store = EmbeddingStore(self.collection, self.model)
                    self._store = (store.rows(), store.vectors())
        return self._store

    @property
    def rows(self) -> np.ndarray:
        return self._local()[0]

    @property
    def vectors(self) -> np.ndarray:
        return self._local()[1]

    def position_of_row(self, row: int) -> int | None:
        rows = self.rows
        pos = int(np.searchsorted(rows, row))
        return pos if pos < len(rows) and rows[pos] == row else None

    def _accepts_templates(self) -> bool:
        """Whether the server fills filter templates (``filter_params``); Milvus Lite does not."""
        pymilvus = pymilvus_module()
        try:
            self.client.query(
                self.name, filter=f"{ROW} == {{p}}", filter_params={"p": -1}, output_fields=[ROW], limit=1
            )
        except pymilvus.MilvusException:
            return False
        return True

    def _title_rows(self, needle: str) -> Sequence[int]:
        if self._title is None:
            with self._title_lock:
                if self._title is None:
                    self._title = lowered_column(arrow_table(self.collection), "title")
        if self._title is None:
            return []
        hit = pc.match_substring(self._title, needle).fill_null(False).to_numpy(zero_copy_only=False)
        return np.flatnonzero(hit).tolist()

    def _search_params(self, fetch: int, share: float, widen: int) -> dict[str, Any]:
        """Search parameters when ``share`` of the vectors pass the filter: a selective filter
        prunes most of the graph walk or of the probed lists, so both widen by about 1 / share
        (as for FAISS), and 4x more each time a search met too few allowed items."""
        grow = 4**widen / min(1.0, share * 4)
        if self.index_type == "HNSW":
            # The first beam stops at 4096 (as FAISS's): a search that meets too few items widens.
            ef = min(max(HNSW_EF, fetch) / min(1.0, share * 4), max(4096, fetch)) * 4**widen
            return {"metric_type": "IP", "params": {"ef": int(min(MAX_TOPK, ef))}}
        if self.index_type == "IVF_SQ8":
            nlist = int(self.params.get("nlist", 16))
            nprobe = math.ceil(max(16, nlist // 128) * grow)
            return {"metric_type": "IP", "params": {"nprobe": int(min(nlist, nprobe))}}
        return {"metric_type": "IP", "params": {}}

    def _search(
        self, q: list[float], fetch: int, expr: Any, share: float, widen: int
    ) -> tuple[np.ndarray, np.ndarray]:
        rerank = self.index_type == "IVF_SQ8"
        res = call(
            "search",
            self.client.search,
            self.name,
            data=[q],
            anns_field=VECTOR,
            limit=fetch,
            filter=expr.text,
            filter_params=expr.params,
            output_fields=[VECTOR] if rerank else [ROW],
            search_params=self._search_params(fetch, share, widen),
        )
        hits = list(res[0]) if res else []
        rows = np.asarray([int(h[ROW] if ROW in h else h["id"]) for h in hits], dtype=np.int64)
        if rerank and hits:
            vecs = np.asarray([h["entity"][VECTOR] for h in hits], dtype=np.float32)
            scores = vecs @ np.asarray(q, dtype=np.float32)
        else:
            scores = np.asarray([float(h["distance"]) for h in hits], dtype=np.float32)
        return scores, rows

    def _allowed(self, scope: Scope) -> int:
        """How many of this index's vectors the scope allows."""
        mask = scope.mask()
        if mask is None:
            return self.count
        try:
            return int(np.count_nonzero(mask[self.rows]))
        except IllustraError:  # the vectors are not on this machine: count items instead
            return int(np.count_nonzero(mask))

    def rank(self, vec: np.ndarray, n: int, scope: Scope) -> tuple[np.ndarray, np.ndarray]:
        if scope.filters is None:  # a caller's own row mask: as the shorter list of rows, in or out
            mask = scope.mask()
            if mask is None:
                expr = self.builder.build(None)
            elif np.count_nonzero(mask) * 2 <= len(mask):
                expr = self.builder.build(None, allowed_rows=np.flatnonzero(mask).tolist())
            else:
                expr = self.builder.build(None, excluded_rows=np.flatnonzero(~mask).tolist())
        else:
            expr = self.builder.build(scope.filters, scope.excluded_rows())
        n = min(n, self.count, MAX_TOPK)
        if n <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        q = np.asarray(vec, dtype=np.float32).reshape(-1).tolist()
        approximate = self.index_type != "FLAT"
        available, share = self.count, 1.0
        if approximate and expr:
            # How selective the filter is sets how wide to search. It is counted on the collection's
            # own columns (a vectorised pass the service can make anyway): a Milvus Lite count(*)
            # evaluates every row in Python, seconds at 20k items.
            available = self._allowed(scope)
            if available == 0:
                return np.zeros(0, np.float32), np.zeros(0, np.int64)
            share = available / max(1, self.count)
        # One more than asked, so that a tie at the cut shows (then the search goes deeper).
        fetch = min(MAX_TOPK, max(n + 1, SQ_RERANK) if self.index_type == "IVF_SQ8" else n + 1)
        widen = 0
        while True:
            scores, rows = self._search(q, fetch, expr, share, widen)
            if approximate and len(rows) < min(fetch, available) and widen < 3:
                widen += 1  # met too few allowed items: search wider
                continue
            if len(rows) < fetch or fetch >= MAX_TOPK:
                break
            # Items tied with the n-th may lie beyond what was fetched (Milvus cuts ties anywhere),
            # and pages would then disagree: fetch deeper until the last fetched scores less.
            if scores.min() < np.sort(scores)[::-1][n - 1]:
                break
            fetch = min(MAX_TOPK, fetch * 4)
        order = np.lexsort((rows, -scores))[:n]
        return scores[order].astype(np.float32), rows[order].astype(np.int64)

    def vectors_of(self, rows: Sequence[int]) -> dict[int, np.ndarray]:
        ids = sorted({int(r) for r in rows})
        if not ids:
            return {}
        res = call("fetch vectors", self.client.get, self.name, ids=ids, output_fields=[VECTOR])
        return {int(r[ROW]): np.asarray(r[VECTOR], dtype=np.float32) for r in res}
