"""Catalogue text index for text and hybrid search: BM25 keywords plus sentence vectors.

Each item's text document is its ``Collection.text_fields`` (title, creator, place, ...; set per
source, e.g. the BL Flickr preset uses title, first author, place and publisher). Layout::

    text/keyword/          BM25 keyword index, one bm25s index per field (see keywords.py), with
                           per-field weights at query time (a title or keyword match counts more
                           than a publisher match); rebuilt whole (about a minute for 500k items)
                           and swapped in atomically
    text/semantic/         the document's sentence vector (all-MiniLM-L6-v2 by default), built in
                           chunks keyed by a hash of their documents, so an interrupted or repeated
                           build only embeds what changed; then ``vectors.npy``/``rows.npy``
                           (memory-mapped) and a FAISS index, flat or HNSW as for pictures
    text/textindex.json    what was built (fields, counts, model); mirrored in the manifest

The text ranking is the reciprocal rank fusion of the keyword and the semantic rankings (see
search/fusion.py); ``search/catalogue.py`` answers queries. Queries are cut into words, stop words dropped, and matched as index terms: no user
input is ever interpreted as search syntax.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import settings
from .collection import Collection, now_iso, write_json_atomic
from .encoders.base import TextEncoder
from .highlight import clean_text, fold
from .keywords import build_keyword_index, stem
from .keywords import words as split_words
from .progress import progress_bar

log = logging.getLogger("illustra")

FORMAT = 2
MAX_QUERY_TERMS = 32
CHUNK_ROWS = 2048
SEMANTIC_DEFAULT_MODEL = "minilm"

# English function words that carry no catalogue meaning ("a map from a book about Egypt").
_STOPWORD_TEXT = (
    "a an and are as at be by for from has have in into is it its of on or that the their there these "
    "this those to was were which with about over under showing shows picture pictures image images "
    "some any"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

DEFAULT_FIELD_WEIGHTS = {
    "title": 3.0,
    "keywords": 3.0,
    "caption": 2.0,
    "creator": 1.5,
    "description": 1.0,
    "place": 1.0,
    "ocr": 0.5,
    "publisher": 0.5,
}

EmbedFn = Callable[[Sequence[str]], np.ndarray]


def text_dir(collection: Collection) -> Path:
    return collection.root / "text"


# -- queries ----------------------------------------------------------------------------------
def query_terms(query: str) -> list[str]:
    """The words of a query as the index matches them: folded, stop words and 1-letter words dropped.

    When every word is a stop word ("the a"), they are kept, so such a query still matches.
    """
    words = [fold(w) for w in split_words(query or "")]
    words = [w for w in words if len(w) > 1 or w.isdigit()]
    kept = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(kept))[:MAX_QUERY_TERMS]


def query_stems(query: str) -> list[str]:
    """The index terms a query looks for (its words, stop words dropped, folded and stemmed)."""
    return list(dict.fromkeys(stem(t) for t in query_terms(query)))


# -- documents --------------------------------------------------------------------------------
def _table(collection: Collection) -> Any:
    table = collection.dataset.data
    return getattr(table, "table", table)


def field_values(collection: Collection, fields: Sequence[str], start: int, end: int) -> list[list[str]]:
    """Cleaned values of ``fields`` for rows start..end (one list per row)."""
    part = _table(collection).slice(start, end - start).select(list(fields))
    cols = [[clean_text(v) for v in part.column(f).to_pylist()] for f in fields]
    return [list(vals) for vals in zip(*cols, strict=True)] if cols else []


def document(values: Sequence[str]) -> str:
    """One item's text document for the sentence model: its non-empty field values."""
    return ". ".join(v for v in values if v)


def has_text_metadata(collection: Collection) -> bool:
    """Whether any item has a non-empty value in any text field."""
    import pyarrow.compute as pc

    table = _table(collection)
    for f in collection.text_fields:
        col = table.column(f)
        if col.null_count == len(col):
            continue
        lengths = pc.utf8_length(pc.utf8_trim_whitespace(col.cast("string")))
        if (pc.max(lengths).as_py() or 0) > 0:
            return True
    return False


def fingerprint(collection: Collection, fields: Sequence[str]) -> str:
    """Changes when rows are added or replaced, or the text fields change."""
    # Ingests that added or replaced nothing (a re-run of the same source) leave the text as it was.
    sources = [
        (s.get("ingested"), s.get("added"), s.get("replaced"))
        for s in collection.manifest.get("sources", [])
        if s.get("added") or s.get("replaced")
    ]
    payload = json.dumps({"n": len(collection), "fields": list(fields), "sources": sources}, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def semantic_wanted(collection: Collection, requested: bool | None) -> bool:
    """Build sentence vectors? Explicit choice, else setting ``text_semantic`` (auto: small collections)."""
    if requested is not None:
        return requested
    mode = settings.get("text_semantic")
    if mode != "auto":
        return bool(mode == "on")
    return len(collection) <= int(settings.get("text_semantic_auto_max"))


def semantic_encoder(spec: str) -> TextEncoder:
    """Text encoder for sentence vectors: 'minilm' (shared, offline), or any encoder name (e.g. a CLIP id)."""
    if spec == SEMANTIC_DEFAULT_MODEL:
        from .encoders.minilm import text_encoder

        return text_encoder()
    from .encoders import load_encoder

    return load_encoder(spec, fallback=False)


# -- building ---------------------------------------------------------------------------------
def _bar(total: int, desc: str, unit: str, progress: bool) -> Any:
    return progress_bar(progress, total, desc, unit)


def _build_keyword(collection: Collection, fields: list[str], fp: str, progress: bool) -> dict[str, Any]:
    """Write text/keyword/, unless it was built for these very rows and fields."""
    out = text_dir(collection)
    dest = out / "keyword"
    old = _read_info(out)
    if (
        old
        and old.get("fingerprint") == fp
        and old.get("format") == FORMAT
        and (dest / "keyword.json").exists()
    ):
        return {**old["keyword"], "reused": True}
    out.mkdir(parents=True, exist_ok=True)
    bar = _bar(len(collection) * len(fields), "text index: keywords", "value", progress)
    try:
        meta = build_keyword_index(_table(collection), fields, dest, bar.update)
    finally:
        bar.close()
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    return {"docs": meta["docs"], "bytes": size, "stemmer": meta["stemmer"], "per_field": meta["per_field"]}


def _read_info(out: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((out / "textindex.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def _chunk_name(start: int, end: int) -> str:
    return f"{start:010d}-{end:010d}.npz"


def _build_semantic(
    collection: Collection,
    fields: list[str],
    model: str,
    embed_fn: EmbedFn,
    progress: bool,
    chunk_rows: int = CHUNK_ROWS,
    batch: int = 64,
) -> dict[str, Any]:
    """Sentence vectors of every non-empty document, chunk by chunk, then a FAISS index."""
    sem = text_dir(collection) / "semantic"
    chunk_dir = sem / "chunks"
    chunk_dir.mkdir(parents=True, exist_ok=True)
    n = len(collection)
    grid = [(s, min(n, s + chunk_rows)) for s in range(0, n, chunk_rows)]
    wanted = {_chunk_name(s, e) for s, e in grid}
    for stale in os.listdir(chunk_dir):
        if stale not in wanted:  # another grid, or a half-written temporary file
            (chunk_dir / stale).unlink(missing_ok=True)

    todo: list[tuple[int, int, list[int], list[str], str]] = []
    for s, e in grid:
        vals = field_values(collection, fields, s, e)
        rows = [s + i for i, v in enumerate(vals) if any(v)]
        docs = [document(vals[r - s]) for r in rows]
        digest = hashlib.sha256(json.dumps([model, rows, docs]).encode()).hexdigest()
        path = chunk_dir / _chunk_name(s, e)
        if path.exists():
            try:
                with np.load(path) as z:
                    if str(z["digest"]) == digest:
                        continue
            except (OSError, KeyError, ValueError):
                pass
        todo.append((s, e, rows, docs, digest))

    old = (_read_info(text_dir(collection)) or {}).get("semantic") or {}
    if (
        not todo
        and old.get("model") == model
        and old.get("grid") == len(grid)
        and (sem / "index.faiss").exists()
    ):
        return dict(old)  # every chunk as it was: the consolidated vectors and index still hold
    dim = 0
    bar = _bar(sum(len(t[2]) for t in todo), f"text index: sentence vectors ({model})", "doc", progress)
    try:
        for s, e, rows, docs, digest in todo:
            vecs = np.zeros((0, 0), np.float32)
            parts = []
            for i in range(0, len(docs), batch):
                parts.append(np.asarray(embed_fn(docs[i : i + batch]), np.float32))
                bar.update(len(parts[-1]))
            if parts:
                vecs = np.concatenate(parts)
            tmp = chunk_dir / f".{_chunk_name(s, e)}.tmp"
            with tmp.open("wb") as fh:
                np.savez(
                    fh,
                    rows=np.asarray(rows, np.int64),
                    vectors=vecs.astype(np.float16),
                    digest=np.array(digest),
                )
            os.replace(tmp, chunk_dir / _chunk_name(s, e))
    finally:
        bar.close()
    return {**_consolidate_semantic(collection, chunk_dir, grid, model, dim), "grid": len(grid)}


def _consolidate_semantic(
    collection: Collection, chunk_dir: Path, grid: list[tuple[int, int]], model: str, dim: int
) -> dict[str, Any]:
    import faiss

    from .index import choose_kind

    sem = chunk_dir.parent
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for s, e in grid:
        with np.load(chunk_dir / _chunk_name(s, e)) as z:
            if len(z["rows"]):
                parts.append((z["rows"], z["vectors"]))
                dim = int(z["vectors"].shape[1])
    count = int(sum(len(r) for r, _ in parts))
    if count == 0:
        return {"model": model, "count": 0}
    mm = np.lib.format.open_memmap(sem / "vectors.npy.tmp", mode="w+", dtype=np.float32, shape=(count, dim))
    at = 0
    for _, v in parts:
        mm[at : at + len(v)] = v.astype(np.float32)
        at += len(v)
    mm.flush()
    rows = np.concatenate([r for r, _ in parts]).astype(np.int64)
    kind = choose_kind(count)
    params: dict[str, Any] = {}
    index: Any
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    else:
        # Same graph parameters as the picture index (index.py); sentence vectors need no compression.
        kind = "hnsw"
        params = {"M": 32, "efConstruction": 80, "efSearch": 128}
        index = faiss.IndexHNSWFlat(dim, params["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params["efConstruction"]
    for i in range(0, count, 50_000):
        index.add(np.ascontiguousarray(mm[i : i + 50_000]))
    del mm
    faiss.write_index(index, str(sem / "index.faiss.tmp"))
    np.save(sem / "rows.npy.tmp.npy", rows)
    os.replace(sem / "rows.npy.tmp.npy", sem / "rows.npy")
    os.replace(sem / "vectors.npy.tmp", sem / "vectors.npy")
    os.replace(sem / "index.faiss.tmp", sem / "index.faiss")
    return {"model": model, "dim": dim, "count": count, "kind": kind, "params": params}


def build_text_index(
    collection: Collection,
    *,
    semantic: bool | None = None,
    semantic_model: str | None = None,
    embed_fn: EmbedFn | None = None,
    progress: bool = True,
    chunk_rows: int = CHUNK_ROWS,
) -> dict[str, Any] | None:
    """Build (or bring up to date) the collection's text index; None when it has no text metadata.

    ``semantic``: build sentence vectors too (default: setting ``text_semantic``). ``embed_fn``
    replaces the model's own document embedding (benchmarks use it to stand in for the model).
    """
    fields = collection.text_fields
    if not fields or not has_text_metadata(collection):
        return None
    started = time.perf_counter()
    fp = fingerprint(collection, fields)
    out = text_dir(collection)
    keyword = _build_keyword(collection, fields, fp, progress)
    reused = bool(keyword.get("reused"))
    want_semantic = semantic_wanted(collection, semantic)
    sem_info: dict[str, Any] | None = None
    if want_semantic:
        model = semantic_model or str(settings.get("text_semantic_model"))
        if embed_fn is None:
            enc = semantic_encoder(model)
            embed_fn = enc.embed_texts
        sem_info = _build_semantic(collection, fields, model, embed_fn, progress, chunk_rows)
        if not sem_info.get("count"):
            sem_info = None
    info = {
        "format": FORMAT,
        "fields": fields,
        "items": len(collection),
        "fingerprint": fp,
        "keyword": {k: v for k, v in keyword.items() if k != "reused"},
        "semantic": sem_info,
        "built": now_iso(),
        "build_seconds": round(time.perf_counter() - started, 3),
    }
    write_json_atomic(out / "textindex.json", info)
    collection.update_manifest(text_index=info)
    info = {**info, "keyword_reused": reused}
    if sem_info is None and (out / "semantic" / "index.faiss").exists():
        # A previous build's vectors no longer describe these documents: keep chunks, drop the index.
        (out / "semantic" / "index.faiss").unlink()
    return info


def index_hook(collection: Collection, notice: Callable[[str], None], semantic: bool | None = None) -> None:
    """``illustra index`` hook: build the text index when the collection has text metadata;
    ``semantic`` overrides the ``text_semantic`` setting."""
    info = build_text_index(collection, semantic=semantic)
    if info is None:
        notice("no catalogue text (title, creator, ...) in this collection: text index not built")
        return
    sem = info["semantic"]
    kw = info["keyword"]
    how = f"sentence vectors by {sem['model']} ({sem['kind']})" if sem else "no sentence vectors"
    state = " (unchanged)" if info.get("keyword_reused") else ""
    notice(
        f"text index: {kw['docs']} items with text in {', '.join(info['fields'])}; "
        f"keywords (BM25){state}, {how}; {info['build_seconds']} s"
    )
    auto = semantic is None and settings.get("text_semantic") == "auto"
    if not sem and auto and not semantic_wanted(collection, None):
        notice(
            f"sentence vectors were skipped for {len(collection)} items (more than text_semantic_auto_max); "
            "run 'illustra index --text-semantic' to build them"
        )
