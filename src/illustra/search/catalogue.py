"""The catalogue-text query: ranks rows by how well their catalogue text matches a query (BM25
keywords fused with sentence vectors; see ``textindex.py`` for how the index is built)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..collection import Collection
from ..encoders.base import TextEncoder
from ..errors import CollectionError
from ..highlight import clean_text, highlight_words, matched_words
from ..keywords import KeywordIndex, stem
from ..settings import Settings, current
from ..textindex import (
    DEFAULT_FIELD_WEIGHTS,
    FORMAT,
    _table,
    fingerprint,
    query_stems,
    semantic_encoder,
    text_dir,
)
from . import fusion

log = logging.getLogger("illustra")


def field_weights(fields: Sequence[str], settings: Settings) -> dict[str, float]:
    custom: dict[str, float] = settings.text_field_weights
    return {f: float(custom.get(f, DEFAULT_FIELD_WEIGHTS.get(f, 1.0))) for f in fields}


class TextIndex:
    """Ranks dataset rows by how well their catalogue text matches a query. Thread-safe."""

    def __init__(self, collection: Collection, info: dict[str, Any], settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else current()
        self.collection = collection
        self.info = info
        self.fields: list[str] = list(info["fields"])
        self.weights = field_weights(self.fields, self.settings)
        self.path = text_dir(collection) / "keyword"
        self._lock = threading.Lock()
        self._keywords: KeywordIndex | None = None
        sem = info.get("semantic") or None
        self.semantic_model: str | None = sem["model"] if sem else None
        self._semantic: Any = None
        self._encoder: TextEncoder | None = None
        self.stale = info.get("fingerprint") != fingerprint(collection, collection.text_fields)

    # -- parts, loaded on first use -------------------------------------------------------
    @property
    def keywords(self) -> KeywordIndex:
        if self._keywords is None:
            with self._lock:
                if self._keywords is None:
                    self._keywords = KeywordIndex(self.path, self.weights)
        return self._keywords

    @property
    def semantic(self) -> Any:
        """The sentence-vector index (an index.VectorIndex), or None when it was not built."""
        if self._semantic is None and self.semantic_model is not None:
            with self._lock:
                if self._semantic is None:
                    self._semantic = self._load_semantic()
        return self._semantic

    def _load_semantic(self) -> Any:
        import faiss

        from ..index import VectorIndex

        sem = text_dir(self.collection) / "semantic"
        meta = self.info["semantic"]
        try:
            index = faiss.read_index(str(sem / "index.faiss"), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        except RuntimeError:
            index = faiss.read_index(str(sem / "index.faiss"))
        return VectorIndex(
            model=str(meta["model"]),
            kind=str(meta["kind"]),
            dim=int(meta["dim"]),
            index=index,
            vectors=np.load(sem / "vectors.npy", mmap_mode="r"),
            rows=np.load(sem / "rows.npy"),
            params=dict(meta.get("params", {})),
        )

    @property
    def semantic_enabled(self) -> bool:
        """Sentence vectors were built and the ``text_semantic_search`` setting allows them."""
        return self.semantic_model is not None and bool(self.settings.text_semantic_search)

    def embed_query(self, query: str) -> np.ndarray:
        if self._encoder is None:
            self._encoder = semantic_encoder(str(self.semantic_model))
        return np.asarray(self._encoder.embed_query(query), np.float32)

    def warm(self) -> None:
        self.keywords.ranking(query_stems("warm"), 1, None)
        if self.semantic_enabled:
            _ = self.semantic
            self.embed_query("warm up")

    # -- rankings ---------------------------------------------------------------------------
    def keyword_ranking(
        self, query: str, n: int, allowed_rows: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` (weighted BM25 scores, higher is better; rows) among ``allowed_rows`` (a row mask)."""
        stems = query_stems(query)
        if not stems or n <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        return self.keywords.ranking(stems, n, allowed_rows)

    def semantic_ranking(
        self, query_vec: np.ndarray, n: int, allowed_rows: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` (cosine, rows) of the sentence vectors among ``allowed_rows``."""
        sem = self.semantic
        if sem is None or n <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        allowed = None if allowed_rows is None else _mask_at(allowed_rows, sem.rows)
        scores, pos = sem.search(query_vec, n, allowed)
        return scores, sem.rows[pos]

    def rank(
        self,
        query: str,
        n: int,
        allowed_rows: np.ndarray | None,
        *,
        query_vec: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, dict[int, dict[str, Any]]]:
        """Top ``n`` (scores, rows, per-row details) for ``query`` among ``allowed_rows`` (a row mask).

        The keyword and semantic rankings are fused by RRF with the ``text_weights`` setting;
        ``query_vec`` is the query's sentence vector when the caller already has it.
        """
        kw_scores, kw_rows = self.keyword_ranking(query, n, allowed_rows)
        lists: dict[str, tuple[np.ndarray, np.ndarray]] = {"keyword": (kw_rows, kw_scores)}
        if self.semantic_enabled:
            vec = self.embed_query(query) if query_vec is None else query_vec
            sem_scores, sem_rows = self.semantic_ranking(vec, n, allowed_rows)
            lists["semantic"] = (sem_rows, sem_scores)
        weights = dict(self.settings.text_weights)
        fused = fusion.fuse(
            "rrf",
            {name: (rows.tolist(), scores.tolist()) for name, (rows, scores) in lists.items()},
            weights,
            self.settings.rrf_k,
        )[:n]
        raw = {
            name: dict(zip(rows.tolist(), scores.tolist(), strict=True))
            for name, (rows, scores) in lists.items()
        }
        details: dict[int, dict[str, Any]] = {}
        for f in fused:
            d: dict[str, Any] = {}
            for name in lists:
                d[f"{name}_score"] = raw[name].get(f.item)
                d[f"{name}_rank"] = f.ranks.get(name)
            details[int(f.item)] = d
        return (
            np.asarray([f.score for f in fused], np.float32),
            np.asarray([f.item for f in fused], np.int64),
            details,
        )

    # -- explanations -----------------------------------------------------------------------
    def explain(self, query: str, rows: Sequence[int]) -> dict[int, dict[str, Any]]:
        """For each row whose fields hold a word of the query: its BM25 score, the matched words
        (all, and per field) and each matched field as highlighted segments."""
        ordered = query_stems(query)
        stems = set(ordered)
        rows = [int(r) for r in rows]
        if not stems or not rows:
            return {}
        scores = self.keywords.scores(ordered)  # the ranking's scores, from the cache
        # One zero-copy slice per row: ``take`` on a table of thousands of chunks copies whole columns.
        table = _table(self.collection).select(self.fields)
        recs = [table.slice(r, 1).to_pylist()[0] for r in rows]
        values = {f: [rec[f] for rec in recs] for f in self.fields}
        out: dict[int, dict[str, Any]] = {}
        for i, row in enumerate(rows):
            highlights = {}
            by_field: dict[str, list[str]] = {}
            for name in self.fields:
                text = clean_text(values[name][i])
                if not text:
                    continue
                segs = highlight_words(text, lambda w: stem(w) in stems)
                found = matched_words(segs)
                if found:
                    highlights[name] = segs
                    by_field[name] = found
            if by_field:
                out[row] = {
                    "keyword_score": round(float(scores[row]), 6) if row < len(scores) else None,
                    "matched_terms": list(dict.fromkeys(w for ws in by_field.values() for w in ws)),
                    "matched_fields": by_field,
                    "highlights": highlights,
                }
        return out

    def semantic_scores(self, query_vec: np.ndarray, rows: Sequence[int]) -> dict[int, float]:
        """Exact cosine of the query's sentence vector with each row's document (rows with a vector)."""
        sem = self.semantic
        out: dict[int, float] = {}
        if sem is None:
            return out
        for r in rows:
            pos = sem.position_of_row(int(r))
            if pos is not None:
                out[int(r)] = float(np.asarray(sem.vectors[pos], np.float32) @ query_vec)
        return out


def _mask_at(mask: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``mask[rows]``, treating rows past the end of the mask as not allowed."""
    inside = rows < len(mask)
    out = np.zeros(len(rows), dtype=bool)
    out[inside] = mask[rows[inside]]
    return out


def load_text_index(collection: Collection, settings: Settings | None = None) -> TextIndex | None:
    """The collection's text index, or None when it has none."""
    d = text_dir(collection)
    meta_path = d / "textindex.json"
    if not meta_path.is_file() or not (d / "keyword" / "keyword.json").is_file():
        return None
    try:
        info = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CollectionError(f"{meta_path} is unreadable: {exc}; run 'illustra index' again") from exc
    if info.get("format") != FORMAT:
        log.warning("the text index in %s has another format; run 'illustra index' again", d)
        return None
    sem = info.get("semantic")
    if sem and not (d / "semantic" / "index.faiss").is_file():
        info["semantic"] = None
    return TextIndex(collection, info, settings)
