"""Embed every image of a collection with one encoder, resumably: ``illustra embed``.

The pipeline keeps both kinds of work busy at once: a thread pool reads, decodes (JPEG draft mode,
bounded size) and preprocesses the next images while the model embeds the current batch; Pillow,
numpy and torch all release the GIL for their heavy parts. Results land in chunks of rows written
atomically, so a run killed at any point resumes where it stopped and every image is embedded
exactly once. Images that cannot be decoded are skipped with a reason (``skipped.tsv``), never fatal.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from . import images, settings
from .collection import Collection
from .embedding_store import EmbeddingStore
from .encoders.base import Encoder, decode_side, model_slug
from .errors import BadImage, IllustraError, ModelMismatch
from .progress import progress_bar


@dataclass
class EmbedSummary:
    model: str
    dim: int
    embedded: int  # images embedded by this run
    skipped: int  # images this run could not decode (listed in skipped.tsv)
    already_done: int  # images embedded or skipped by earlier runs
    no_image: int  # rows without an image (metadata only); not errors
    total_vectors: int  # vectors stored for this model after the run
    total_skipped: int  # lines in skipped.tsv after the run
    seconds: float
    images_per_s: float
    path: str
    skipped_path: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def image_mask(collection: Collection) -> np.ndarray:
    """Boolean per row: has stored image bytes or an image path (vectorised, no bytes copied)."""
    import pyarrow.compute as pc

    col = collection.dataset.data.column("image")
    if len(col) == 0:
        return np.zeros(0, dtype=bool)
    parts = []
    for chunk in col.chunks:
        # Empty bytes count as an image: the decoder then records it as skipped ("empty file").
        has_bytes = pc.is_valid(pc.struct_field(chunk, "bytes"))
        has_path = pc.fill_null(pc.greater(pc.utf8_length(pc.struct_field(chunk, "path")), 0), False)
        both = pc.and_(pc.or_(has_bytes, has_path), pc.is_valid(chunk))
        parts.append(np.asarray(pc.fill_null(both, False).to_numpy(zero_copy_only=False), dtype=bool))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__


class _Reader:
    """Worker-side work for one row: read its bytes, decode safely, preprocess for the model."""

    def __init__(self, collection: Collection, min_side: int, prepare: Callable[[Any], Any] | None) -> None:
        self.column = collection.dataset.data.column("image")
        self.min_side = min_side
        self.prepare = prepare

    def __call__(self, row: int) -> tuple[str, Any]:
        try:
            rec = self.column[row].as_py()
            data = rec.get("bytes") if rec else None
            if data is None:
                path = rec.get("path") if rec else None
                if not path:
                    return "none", None
                data = images.read_bytes(path)
            im = images.decode(data, min_side=self.min_side)
            return "ok", (self.prepare(im) if self.prepare else im)
        except BadImage as exc:
            return "skip", exc.message
        except Exception as exc:  # noqa: BLE001 - one odd image must never stop a long run
            return "skip", _first_line(exc)


def embed_or_isolate(
    embed_fn: Callable[[list[Any]], Any], inputs: list[Any]
) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Embed one batch; when the model rejects it, find the inputs it rejects rather than losing
    the batch. Returns the vectors of the accepted inputs in order and (position, reason) for each
    rejected one; raises when the model rejects every input (then the model, not an image, is at fault)."""
    try:
        return np.asarray(embed_fn(inputs), dtype=np.float32), []
    except IllustraError:
        raise
    except Exception as exc:
        vecs: list[np.ndarray] = []
        failed: list[tuple[int, str]] = []
        for pos, inp in enumerate(inputs):
            try:
                vecs.append(np.asarray(embed_fn([inp]), dtype=np.float32))
            except Exception as one:  # noqa: BLE001
                failed.append((pos, f"model failed: {_first_line(one)}"))
        if len(failed) == len(inputs):
            raise exc
        return np.concatenate(vecs), failed


def _check_model(collection: Collection, store: EmbeddingStore, encoder: Encoder) -> None:
    name = encoder.name
    for other in collection.manifest.get("embeddings", {}):
        if other != name and model_slug(other) == model_slug(name):
            raise ModelMismatch(
                f"model names {other!r} and {name!r} share the folder {store.dir}; "
                f"use the name {other!r} or remove that folder"
            )
    old_dim = store.entry.get("dim") or store.chunk_dim()
    if old_dim is not None and int(old_dim) != int(encoder.dim):
        raise ModelMismatch(
            f"{collection.root} already has {old_dim}-dimensional embeddings for model {name!r}, but the model "
            f"now gives {encoder.dim}-dimensional vectors; delete {store.dir} to embed it again"
        )


@dataclass
class EmbedPlan:
    """What a run has to do: the rows still to embed, grouped by the fixed grid of chunks."""

    store: EmbeddingStore
    rows: int  # rows in the collection
    # (start, end, rows to embed): chunks follow a fixed grid of rows, so a resumed run with the
    # same chunk size lines up with the chunks already written.
    chunks: list[tuple[int, int, np.ndarray]]
    already_done: int
    no_image: int

    @property
    def todo(self) -> int:
        return int(sum(len(c[2]) for c in self.chunks))


def plan_embedding(collection: Collection, encoder: Encoder, chunk_rows: int) -> EmbedPlan:
    """Check the model against what is stored and find the rows not yet embedded or skipped."""
    store = EmbeddingStore(collection, encoder.name)
    _check_model(collection, store, encoder)
    has_image = image_mask(collection)
    n = len(has_image)
    embedded_rows, skipped_rows = store.done_rows()
    done = np.zeros(n, dtype=bool)
    done[embedded_rows[embedded_rows < n]] = True
    done[skipped_rows[skipped_rows < n]] = True
    todo = has_image & ~done
    chunks: list[tuple[int, int, np.ndarray]] = []
    for start in range(0, n, chunk_rows):
        end = min(n, start + chunk_rows)
        rows = np.flatnonzero(todo[start:end]) + start
        if len(rows):
            chunks.append((start, end, rows))
    return EmbedPlan(store, n, chunks, int((has_image & done).sum()), int((~has_image).sum()))


def finish_embedding(
    encoder: Encoder,
    plan: EmbedPlan,
    stats: dict[str, int],
    started: float,
    facts: dict[str, Any] | None = None,
) -> EmbedSummary:
    """List the skipped images, consolidate the chunks and record the model in the manifest.

    ``stats`` counts this run's ``embedded``, ``skipped`` and ``no_image`` rows; ``facts`` are the
    manifest facts of the encoder that did the work (default: ``encoder.describe()``)."""
    store = plan.store
    total_skipped = store.write_skipped()
    elapsed = time.perf_counter() - started
    entry = store.entry
    needs_consolidate = (
        plan.todo > 0
        or not store.complete
        or entry.get("rows") != plan.rows
        or entry.get("skipped") != total_skipped
    )
    if needs_consolidate:
        extra: dict[str, Any] = {
            "rows": plan.rows,
            "skipped": total_skipped,
            "image_side": int(encoder.image_side),
        }
        extra.update(encoder.describe() if facts is None else facts)
        total_vectors = store.consolidate(int(encoder.dim), extra=extra)
    else:
        total_vectors = int(entry.get("count", 0))
    return EmbedSummary(
        model=encoder.name,
        dim=int(encoder.dim),
        embedded=stats["embedded"],
        skipped=stats["skipped"],
        already_done=plan.already_done,
        no_image=plan.no_image + stats["no_image"],
        total_vectors=total_vectors,
        total_skipped=total_skipped,
        seconds=round(elapsed, 3),
        images_per_s=round(stats["embedded"] / elapsed, 2) if elapsed > 0 else 0.0,
        path=str(store.dir),
        skipped_path=str(store.skipped_path),
    )


def embed_collection(
    collection: Collection,
    encoder: Encoder,
    *,
    batch_size: int | None = None,
    workers: int | None = None,
    progress: bool = True,
    chunk_rows: int | None = None,
) -> EmbedSummary:
    """Embed the images of ``collection`` not yet embedded with ``encoder``; see the module docstring."""
    batch_size = max(1, int(batch_size or settings.get("batch_size")))
    workers = max(1, int(workers or settings.get("workers")))
    chunk_rows = max(1, int(chunk_rows or settings.get("embed_chunk_rows")))
    t0 = time.perf_counter()
    plan = plan_embedding(collection, encoder, chunk_rows)
    store, chunks, total_todo = plan.store, plan.chunks, plan.todo

    reader = _Reader(collection, decode_side(encoder), encoder.prepare_image)
    embed_fn = encoder.embed_prepared
    id_column = collection.dataset.data.column("id")

    stats = {"embedded": 0, "skipped": 0, "no_image": 0}
    bar = progress_bar(progress, total_todo, f"embedding with {encoder.name}", "img", smoothing=0.05)
    # Enough work queued that the pool keeps decoding the next batches while the model runs.
    depth = 2 * batch_size + 4 * workers
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="illustra-decode")

    def stream() -> Iterator[tuple[int, int]]:
        for ci, (_, _, rows) in enumerate(chunks):
            for r in rows.tolist():
                yield ci, r

    pending = stream()
    window: deque[tuple[int, int, Future[tuple[str, Any]]]] = deque()

    def fill() -> None:
        while len(window) < depth:
            nxt = next(pending, None)
            if nxt is None:
                return
            window.append((nxt[0], nxt[1], pool.submit(reader, nxt[1])))

    def item_id(row: int) -> str:
        return str(id_column[row].as_py())

    def run_batch(
        inputs: list[Any], rows: list[int], out_rows: list[int], out_vecs: list[np.ndarray], skipped: list
    ) -> None:
        if not inputs:
            return
        fill()  # keep the pool busy while the model works
        vecs, failed = embed_or_isolate(embed_fn, inputs)
        rejected = {pos for pos, _ in failed}
        for pos, reason in failed:
            skipped.append((rows[pos], item_id(rows[pos]), reason))
        out_rows.extend(row for pos, row in enumerate(rows) if pos not in rejected)
        out_vecs.append(vecs)
        stats["embedded"] += len(rows) - len(failed)
        stats["skipped"] += len(failed)
        inputs.clear()
        rows.clear()

    try:
        for ci, (start, end, rows) in enumerate(chunks):
            out_rows: list[int] = []
            out_vecs: list[np.ndarray] = []
            skipped: list[tuple[int, str, str]] = []
            batch: list[Any] = []
            batch_rows: list[int] = []
            for _ in range(len(rows)):
                fill()
                wci, row, fut = window.popleft()
                assert wci == ci
                status, value = fut.result()
                if status == "ok":
                    batch.append(value)
                    batch_rows.append(row)
                    if len(batch) >= batch_size:
                        run_batch(batch, batch_rows, out_rows, out_vecs, skipped)
                elif status == "skip":
                    skipped.append((row, item_id(row), str(value)))
                    stats["skipped"] += 1
                else:
                    stats["no_image"] += 1
                bar.update(1)
            run_batch(batch, batch_rows, out_rows, out_vecs, skipped)
            vectors = np.concatenate(out_vecs) if out_vecs else np.zeros((0, encoder.dim), np.float32)
            store.write_chunk(start, end, np.asarray(out_rows, np.int64), vectors, skipped=skipped)
    finally:
        bar.close()
        pool.shutdown(wait=True, cancel_futures=True)

    return finish_embedding(encoder, plan, stats, t0)
