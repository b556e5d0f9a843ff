"""The Ray Data engine of ``illustra embed --engine ray``: the local engine's embedding, on a Ray
cluster or on a Ray instance started on this machine.

The rows still to embed (``embed.plan_embedding``, the same fixed grid of chunks) flow through one
Ray Data pipeline:

* **decode tasks** (CPU): each reads its rows from the collection's Arrow data (memory-mapped, so
  every node needs the collection at the same path), decodes them with the one safe decoder
  (``embed._Reader``: ``images.decode`` with the same pixel budget and the same settings as the
  driver) and runs the encoder's preprocessing where it has a weight-free ``image_preparer``;
* **an actor pool** holding the encoder (``map_batches`` with a callable class, ``num_gpus`` per
  actor): it embeds the decoded images and sorts out inputs the model rejects;
* **the driver** collects the vectors and writes a chunk with ``EmbeddingStore.write_chunk`` (the
  same atomic chunks as the local engine) once every row of that chunk is back.

Exactly once: only the driver writes, a chunk is written whole or not at all, a row that comes back
twice (a retried task) is kept once, and a rerun embeds only the rows no chunk holds. Ray restarts
a killed actor and retries its batch, so a run survives losing a worker process; a killed driver
leaves its finished chunks for the next run.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import re
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

from . import settings
from .collection import Collection
from .embed import (
    EmbedPlan,
    EmbedSummary,
    _Reader,
    embed_or_isolate,
    finish_embedding,
    plan_embedding,
)
from .encoders import encoder_factory
from .encoders.base import Encoder, decode_side
from .errors import (
    BadInput,
    CollectionError,
    CollectionNotFound,
    EngineUnavailable,
    IllustraError,
    ModelMismatch,
    ModelUnavailable,
)
from .progress import progress_bar

# A local instance stays small: the object store only holds batches in flight (decoded pictures of
# a few hundred kB each), and Ray spills to disk beyond it rather than failing.
LOCAL_OBJECT_STORE_BYTES = 512 * 2**20
# Memory reserved per decode task: 64 megapixels (the default pixel budget) of RGB.
DECODE_MEMORY_BYTES = 256 * 2**20
# How long a cluster address may take to accept a connection before it counts as unreachable.
CONNECT_TIMEOUT_S = 5.0
# Rows per input block: decode tasks are this many batches at most, and a million rows make no
# more than about this many blocks.
_MAX_BLOCKS = 2000
_DEFAULT_PORTS = {"ray": 10001, "": 6379}  # Ray Client server, GCS


def require_ray() -> Any:
    """The ``ray`` module with Ray Data, or one line saying how to install them."""
    try:
        ray = importlib.import_module("ray")
        importlib.import_module("ray.data")
    except ImportError as exc:
        raise EngineUnavailable(
            "the Ray engine needs Ray, which is not installed: pip install 'illustra[ray]'"
        ) from exc
    return ray


def _host_port(address: str) -> tuple[str, int]:
    parts = urlsplit(address if "://" in address else f"//{address}")
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise BadInput(f"--ray-address takes auto, ray://HOST:PORT or HOST:PORT, not {address[:80]!r}")
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError as exc:
        raise BadInput(f"--ray-address {address[:80]!r} has no valid port") from exc
    return parts.hostname, port


def check_address(address: str | None) -> None:
    """Fail fast, in one line, on a cluster address nothing answers at (Ray itself waits for a
    missing cluster for half a minute, or forever for a bare GCS address)."""
    if address in (None, "", "auto", "local"):
        return
    host, port = _host_port(address)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise EngineUnavailable(f"cannot reach the Ray cluster at {address}: {why}") from exc


# A Ray Client server starts one process per client; on a loaded head node that start can fail
# ("Initialization failure from server") and succeed when asked again.
CLIENT_INIT_TRIES = 3


def _init(ray: Any, kwargs: dict[str, Any]) -> None:
    client = str(kwargs.get("address", "")).startswith("ray://")
    for attempt in range(1, CLIENT_INIT_TRIES + 1):
        try:
            with _quiet():
                ray.init(**kwargs)
            return
        except ConnectionError as exc:
            if not client or "Initialization failure" not in str(exc) or attempt == CLIENT_INIT_TRIES:
                raise
            time.sleep(2.0 * attempt)


@dataclass
class RayEngine:
    """Where and how the Ray engine runs. The connection is made at first use (a run with nothing
    to embed starts nothing) and closed by ``close()`` or the ``with`` block, if this object made
    it. A process already connected to Ray (``ray.init`` called by the caller) keeps its own
    connection, whatever ``address`` says."""

    address: str | None = None  # None: $RAY_ADDRESS, else a local instance
    workers: int | None = None  # encoder actors [default: one per gpus_per_worker GPUs, else 1]
    gpus_per_worker: float = 0.0
    local_cpus: int | None = None  # CPUs of a local instance [default: the cores available, at least 2]

    def __post_init__(self) -> None:
        self._ray: Any = None
        self._owned = False

    def check(self) -> None:
        """Ray installed and the cluster answering, before any model loads: a cluster address is
        connected to now (a local instance is started only when there is work for it)."""
        require_ray()
        check_address(self.target)
        if self.target not in (None, "local"):
            self.connect()

    @property
    def target(self) -> str | None:
        return self.address or os.environ.get("RAY_ADDRESS") or None

    def connect(self) -> Any:
        if self._ray is not None:
            return self._ray
        ray = require_ray()
        check_address(self.target)
        if not ray.is_initialized():
            target = self.target
            kwargs: dict[str, Any] = {
                "log_to_driver": False,  # worker output stays in Ray's log files
                "logging_level": logging.ERROR,
            }
            if target in (None, "local"):
                # "local": a new instance even when `ray start` left a cluster on this machine.
                kwargs["address"] = "local"
                kwargs["include_dashboard"] = False
                # At least 2: one for an encoder actor, one for the decode tasks.
                kwargs["num_cpus"] = self.local_cpus or max(2, _available_cores())
                kwargs["object_store_memory"] = LOCAL_OBJECT_STORE_BYTES
            else:
                kwargs["address"] = target
            try:
                _init(ray, kwargs)
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
                if target == "auto":
                    msg = (
                        "no running Ray cluster found from this machine (start one with 'ray start --head' "
                        "or give --ray-address ray://HOST:PORT)"
                    )
                elif target in (None, "local"):
                    msg = f"cannot start a local Ray instance: {_first_line(exc)}"
                else:
                    msg = f"cannot connect to the Ray cluster at {target}: {_first_line(exc)}"
                    if str(target).startswith("ray://") and "timeout" in msg:
                        # Clusters with token authentication (the default since Ray 2.59) leave an
                        # unauthenticated client waiting until it times out.
                        msg += (
                            "; a cluster with token authentication needs RAY_AUTH_MODE=token and "
                            "RAY_AUTH_TOKEN (from 'ray get-auth-token' on its head node) here"
                        )
                raise EngineUnavailable(msg) from exc
            self._owned = True
        self._ray = ray
        return ray

    def close(self) -> None:
        if self._ray is not None and self._owned:
            with _quiet():
                self._ray.shutdown()
        self._ray, self._owned = None, False

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def actor_count(self, ray: Any) -> int:
        """Encoder actors to start; on a Ray instance started here (it cannot grow) they must
        leave a CPU for the decode tasks and find their GPUs, or the pipeline would wait forever."""
        have = ray.cluster_resources()
        if self.workers:
            count = int(self.workers)
        elif self.gpus_per_worker > 0:
            count = max(1, int(have.get("GPU", 0) // self.gpus_per_worker))
        else:
            count = 1
        if self._owned:
            cpus, gpus = int(have.get("CPU", 0)), float(have.get("GPU", 0))
            if count + 1 > cpus:
                raise BadInput(
                    f"{count} encoder actors take {count} CPUs and the decode tasks need one more; "
                    f"the local Ray instance has {cpus}: give --workers {max(1, cpus - 1)} or fewer"
                )
            if count * self.gpus_per_worker > gpus:
                raise BadInput(
                    f"{count} encoder actors with {self.gpus_per_worker:g} GPUs each need "
                    f"{count * self.gpus_per_worker:g} GPUs; this machine offers Ray {gpus:g}"
                )
        return count


def embed_collection_ray(
    collection: Collection,
    encoder: Encoder,
    engine: RayEngine,
    *,
    batch_size: int | None = None,
    chunk_rows: int | None = None,
    progress: bool = True,
) -> EmbedSummary:
    """Embed the images of ``collection`` not yet embedded with ``encoder``, on Ray; see the
    module docstring. ``encoder`` (loaded here) checks the stored embeddings and names the model
    the actors load."""
    batch_size = max(1, int(batch_size or settings.get("batch_size")))
    chunk_rows = max(1, int(chunk_rows or settings.get("embed_chunk_rows")))
    t0 = time.perf_counter()
    plan = plan_embedding(collection, encoder, chunk_rows)
    stats = {"embedded": 0, "skipped": 0, "no_image": 0}
    facts = None
    if plan.todo:
        ray = engine.connect()
        if _through_client(ray):
            facts = _run_from_client(
                ray, engine, collection, encoder, plan, stats, batch_size, chunk_rows, progress
            )
        else:
            facts = _run(ray, engine, collection, encoder, plan, stats, batch_size, progress)
    return finish_embedding(encoder, plan, stats, t0, facts)


def _run(
    ray: Any,
    engine: RayEngine,
    collection: Collection,
    encoder: Encoder,
    plan: EmbedPlan,
    stats: dict[str, int],
    batch_size: int,
    progress: bool,
    factory: Callable[[], Encoder] | None = None,
) -> dict[str, Any] | None:
    """The pipeline, driven from this process; returns the actors' manifest facts."""
    import pyarrow as pa
    todo = np.concatenate([rows for _, _, rows in plan.chunks]).astype(np.int64)
    id_column = collection.dataset.data.column("id")
    table = pa.table({"row": pa.array(todo), "id": id_column.take(pa.array(todo))})
    per_block = batch_size * max(1, -(-len(todo) // (batch_size * _MAX_BLOCKS)))
    blocks = [table.slice(i, per_block) for i in range(0, len(todo), per_block)]

    preparer = encoder.image_preparer()
    snapshot = settings.current()
    ds = ray.data.from_arrow(blocks).map_batches(
        _decode_batch,
        fn_kwargs={
            "root": str(collection.root),
            "rows": plan.rows,
            "min_side": decode_side(encoder),
            "preparer": preparer,
            "snapshot": snapshot,
        },
        batch_size=batch_size,
        batch_format="pyarrow",
        num_cpus=1,
        # Room for the largest picture the pixel budget lets through before it is shrunk. Differing
        # from the actors' resources, it also keeps decoding in tasks of its own: Ray Data would
        # otherwise fuse the two stages and decode inside the encoder actors.
        memory=DECODE_MEMORY_BYTES,
    )
    gpus = float(engine.gpus_per_worker or 0)
    actor_args: dict[str, Any] = {"num_gpus": gpus} if gpus > 0 else {}
    ds = ds.map_batches(
        _Embedder,
        fn_constructor_kwargs={
            "factory": factory or encoder_factory(encoder.name),
            "prepared": preparer is not None,
            "snapshot": snapshot,
        },
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=engine.actor_count(ray)),
        num_cpus=1,
        # Ray Data restarts a killed actor and retries its batch (max_restarts=-1, max_task_retries=-1
        # by default): the run goes on and the driver keeps each row once.
        **actor_args,
    )

    chunk_starts = np.asarray([start for start, _, _ in plan.chunks], dtype=np.int64)
    remaining = [len(rows) for _, _, rows in plan.chunks]
    pending = np.zeros(plan.rows, dtype=bool)
    pending[todo] = True
    got_vecs: dict[int, dict[int, np.ndarray]] = {}
    got_skips: dict[int, dict[int, str]] = {}
    facts: dict[str, Any] | None = None
    dim = int(encoder.dim)

    def write(ci: int) -> None:
        start, end, _ = plan.chunks[ci]
        vecs = got_vecs.pop(ci, {})
        skips = got_skips.pop(ci, {})
        rows = np.asarray(sorted(vecs), dtype=np.int64)
        vectors = np.stack([vecs[r] for r in rows.tolist()]) if len(rows) else np.zeros((0, dim), np.float32)
        skipped = [(r, str(id_column[r].as_py()), skips[r]) for r in sorted(skips)]
        plan.store.write_chunk(start, end, rows, vectors, skipped=skipped)

    bar = progress_bar(progress, plan.todo, f"embedding with {encoder.name} on Ray", "img", smoothing=0.05)
    try:
        with _quiet_data(ray), _without_ray_notices():
            for batch in _batches(ds):
                if facts is None:
                    first = next((f for f in batch.column("facts").to_pylist() if f), None)
                    facts = json.loads(first) if first else None
                statuses = batch.column("status").to_pylist()
                reasons = batch.column("reason").to_pylist()
                if "error" in statuses:
                    _raise_error_row(reasons[statuses.index("error")])
                vectors = batch.column("vector").to_pylist()
                new = 0
                for i, row in enumerate(batch.column("row").to_pylist()):
                    if row >= plan.rows or not pending[row]:
                        continue  # a retried batch: its rows are already here
                    pending[row] = False
                    new += 1
                    ci = int(np.searchsorted(chunk_starts, row, side="right")) - 1
                    status = statuses[i]
                    if status == "ok":
                        vec = np.frombuffer(vectors[i], dtype=np.float32)
                        if len(vec) != dim:
                            raise ModelMismatch(
                                f"a Ray worker's {encoder.name!r} gives {len(vec)}-dimensional vectors, "
                                f"this machine's {dim}-dimensional ones; every node needs the same model"
                            )
                        got_vecs.setdefault(ci, {})[row] = vec
                        stats["embedded"] += 1
                    elif status == "skip":
                        got_skips.setdefault(ci, {})[row] = str(reasons[i])
                        stats["skipped"] += 1
                    else:
                        stats["no_image"] += 1
                    remaining[ci] -= 1
                    if remaining[ci] == 0:
                        write(ci)
                bar.update(new)
    finally:
        bar.close()
    missing = int(pending.sum())
    if missing:
        raise EngineUnavailable(
            f"the Ray run ended with {missing} images not returned; the finished chunks are kept, "
            "run the command again to embed the rest"
        )
    return facts


def _batches(ds: Any) -> Iterator[Any]:
    """The pipeline's output blocks. Errors the workers know (IllustraErrors) arrive as rows; a
    failure of Ray itself becomes one line saying the run stopped."""
    it = iter(ds.iter_batches(batch_format="pyarrow", batch_size=None))
    try:
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            except Exception as exc:
                raise EngineUnavailable(
                    f"the Ray run stopped ({_ray_error_line(exc)}); the finished chunks are kept, "
                    "run the command again to continue"
                ) from exc
            yield batch
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()  # stops the pipeline when the driver stops early


def _ray_error_line(exc: BaseException) -> str:
    """The line naming the error inside a Ray exception's text (its first line is a task header)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    named = [ln.strip() for ln in text.splitlines() if re.match(r"^\s*[\w.]+(Error|Exception|Exit): ", ln)]
    return (named[0] if named else _first_line(exc))[:200]


def _error_rows(batch: Any, exc: IllustraError, **columns: Any) -> Any:
    """A batch's rows marked with an error the driver raises again (exceptions lose their class
    and message when Ray wraps them; rows keep both)."""
    import pyarrow as pa

    n = batch.num_rows
    reason = json.dumps({"error": type(exc).__name__, "message": exc.message})
    out = {"row": batch.column("row"), "status": pa.array(["error"] * n), "reason": pa.array([reason] * n)}
    out.update({name: pa.nulls(n, kind) for name, kind in columns.items()})
    return pa.table(out)


def _raise_error_row(reason: str) -> None:
    doc = json.loads(reason)
    _raise(str(doc.get("error")), str(doc.get("message")))


def _raise(name: str, message: str) -> None:
    from . import errors

    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, IllustraError)):
        cls = EngineUnavailable
    raise cls(message)


# -- through Ray Client ----------------------------------------------------------------------------
def _through_client(ray: Any) -> bool:
    try:
        from ray.util.client import ray as client
    except ImportError:  # pragma: no cover - part of every Ray install
        return False
    return bool(client.is_connected())


class _EncoderFacts(Encoder):
    """What the pipeline's driver needs of an encoder (name, width, input side, preprocessing),
    without its weights: the driver running on the cluster plans and checks with it."""

    def __init__(self, encoder: Encoder) -> None:
        self.name = encoder.name
        self.dim = int(encoder.dim)
        self.image_side = int(encoder.image_side)
        self.preparer = encoder.image_preparer()

    def image_preparer(self) -> Any:
        return self.preparer


def _run_from_client(
    ray: Any,
    engine: RayEngine,
    collection: Collection,
    encoder: Encoder,
    plan: EmbedPlan,
    stats: dict[str, int],
    batch_size: int,
    chunk_rows: int,
    progress: bool,
) -> dict[str, Any] | None:
    """Ray Data does not run through a Ray Client connection (Ray 2.60), so the pipeline's driver
    runs as a task on the cluster, writing the same chunks into the collection (which both sides
    see at the same path). This process shows progress from the chunks as they appear, then
    consolidates them; stopping it cancels the task, and finished chunks are kept."""
    driver = ray.remote(num_cpus=0, max_retries=0)(_driver_on_cluster)
    ref = driver.remote(
        str(collection.root),
        _EncoderFacts(encoder),
        encoder_factory(encoder.name),
        engine.workers,
        float(engine.gpus_per_worker or 0),
        chunk_rows,
        batch_size,
        settings.current(),
    )
    seen = set(plan.store.chunk_paths())
    bar = progress_bar(progress, plan.todo, f"embedding with {encoder.name} on Ray", "img")
    try:
        while True:
            ready, _ = ray.wait([ref], timeout=1.0)
            for path in plan.store.chunk_paths():
                if path not in seen:
                    seen.add(path)
                    with np.load(path) as z:
                        bar.update(len(z["rows"]) + len(z["skipped_rows"]))
            if ready:
                break
    except BaseException:
        ray.cancel(ref, force=True)
        raise
    finally:
        bar.close()
    try:
        out = ray.get(ref)
    except Exception as exc:
        raise EngineUnavailable(
            f"the Ray run stopped ({_ray_error_line(exc)}); the finished chunks are kept, "
            "run the command again to continue"
        ) from exc
    if "error" in out:
        _raise(out["error"], out["message"])
    stats.update(out["stats"])
    return out["facts"]


def _driver_on_cluster(
    root: str,
    encoder: Encoder,
    factory: Callable[[], Encoder],
    workers: int | None,
    gpus_per_worker: float,
    chunk_rows: int,
    batch_size: int,
    snapshot: Any,
) -> dict[str, Any]:
    """The pipeline's driver as a task on the cluster (see ``_run_from_client``); errors come back
    as data, so they keep their class and message."""
    import ray

    try:
        settings.use(snapshot)
        collection = Collection(root)
        plan = plan_embedding(collection, encoder, chunk_rows)
        stats = {"embedded": 0, "skipped": 0, "no_image": 0}
        engine = RayEngine(workers=workers, gpus_per_worker=gpus_per_worker)
        facts = _run(ray, engine, collection, encoder, plan, stats, batch_size, False, factory)
    except IllustraError as exc:
        return {"error": type(exc).__name__, "message": exc.message}
    return {"stats": stats, "facts": facts}


# -- worker side ---------------------------------------------------------------------------------
_COLLECTIONS: dict[tuple[Any, ...], Collection] = {}
_SAME_PATH = "every node needs the same collection at the same path (shared storage)"


def _open(root: str, rows: int) -> Collection:
    """The collection as this worker sees it, opened once per process and version of its data
    (a write replaces the whole data folder, so its inode and time tell versions apart)."""
    try:
        data = os.stat(os.path.join(root, "data"))
    except OSError as exc:
        raise CollectionNotFound(f"no collection at {root} on a Ray worker; {_SAME_PATH}") from exc
    key = (root, rows, data.st_ino, data.st_mtime_ns)
    coll = _COLLECTIONS.get(key)
    if coll is None:
        coll = Collection(root)
        if len(coll) < rows:
            raise CollectionError(
                f"the collection at {root} has {len(coll)} rows on a Ray worker, {rows} here; {_SAME_PATH}"
            )
        _COLLECTIONS.clear()
        _COLLECTIONS[key] = coll
    return coll


def _decode_batch(batch: Any, *, root: str, rows: int, min_side: int, preparer: Any, snapshot: Any) -> Any:
    """Decode task: read, safely decode and preprocess one batch of rows."""
    import pyarrow as pa

    try:
        settings.use(snapshot)
        coll = _open(root, rows)
        reader = _Reader(coll, min_side, preparer)
        ids = coll.dataset.data.column("id")
        statuses: list[str] = []
        reasons: list[str | None] = []
        payloads: list[bytes | None] = []
        for row, item_id in zip(batch.column("row").to_pylist(), batch.column("id").to_pylist(), strict=True):
            if row >= len(ids) or str(ids[row].as_py()) != str(item_id):
                raise CollectionError(
                    f"row {row} of the collection at {root} holds another item on a Ray worker than here; "
                    f"{_SAME_PATH}"
                )
            status, value = reader(row)
            statuses.append(status)
            reasons.append(str(value) if status == "skip" else None)
            payloads.append(_pack(value) if status == "ok" else None)
    except IllustraError as exc:
        return _error_rows(batch, exc, payload=pa.binary())
    return pa.table(
        {
            "row": batch.column("row"),
            "status": pa.array(statuses, pa.string()),
            "reason": pa.array(reasons, pa.string()),
            "payload": pa.array(payloads, pa.binary()),
        }
    )


class _Embedder:
    """Actor: holds the encoder and embeds the decoded batches that reach it."""

    def __init__(self, factory: Callable[[], Encoder], prepared: bool, snapshot: Any) -> None:
        self.error: IllustraError | None = None
        self.prepared = prepared
        self.facts = "{}"
        try:
            settings.use(snapshot)
            self.encoder = factory()
            self.facts = json.dumps(self.encoder.describe())
        except IllustraError as exc:
            self.error = exc  # said for every batch, so the driver stops with this one line
        except Exception as exc:  # noqa: BLE001 - a worker without the model's code or files
            self.error = ModelUnavailable(f"cannot load the model on a Ray worker: {_first_line(exc)}")

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        columns = {"vector": pa.binary(), "facts": pa.string()}
        if self.error is not None:
            return _error_rows(batch, self.error, **columns)
        statuses = batch.column("status").to_pylist()
        reasons = batch.column("reason").to_pylist()
        payloads = batch.column("payload")
        vectors: list[bytes | None] = [None] * len(statuses)
        ok = [i for i, s in enumerate(statuses) if s == "ok"]
        if ok:
            try:
                items = [_unpack(payloads[i].as_py()) for i in ok]
                if not self.prepared:
                    items = [self.encoder.prepare_image(x) for x in items]
                vecs, failed = embed_or_isolate(self.encoder.embed_prepared, items)
            except IllustraError as exc:
                return _error_rows(batch, exc, **columns)
            except Exception as exc:  # noqa: BLE001 - the model failed on every picture of the batch
                failure = ModelUnavailable(
                    f"the model failed on a whole batch on a Ray worker: {_first_line(exc)}"
                )
                return _error_rows(batch, failure, **columns)
            rejected = dict(failed)
            kept = iter(np.asarray(vecs, dtype=np.float32))
            for pos, i in enumerate(ok):
                if pos in rejected:
                    statuses[i], reasons[i] = "skip", rejected[pos]
                else:
                    vectors[i] = next(kept).tobytes()
        return pa.table(
            {
                "row": batch.column("row"),
                "status": pa.array(statuses, pa.string()),
                "reason": pa.array(reasons, pa.string()),
                "vector": pa.array(vectors, pa.binary()),
                "facts": pa.array([self.facts] + [None] * (len(statuses) - 1), pa.string()),
            }
        )


def _pack(item: Any) -> bytes:
    """A decoded picture or prepared model input as bytes (``.npz``: no pickle crosses processes)."""
    arrays: dict[str, np.ndarray]
    if isinstance(item, Image.Image):
        arrays = {"__image__": np.asarray(item.convert("RGB"))}
    elif isinstance(item, np.ndarray):
        arrays = {"__array__": item}
    elif isinstance(item, dict):
        arrays = {str(k): np.asarray(v) for k, v in item.items()}
    else:
        raise TypeError(f"cannot send a {type(item).__name__} to the encoder actors")
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]  # keyword names are the arrays
    return buf.getvalue()


def _unpack(data: bytes) -> Any:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if "__image__" in arrays:
        return Image.fromarray(arrays["__image__"], "RGB")
    if "__array__" in arrays:
        return arrays["__array__"]
    return arrays


# -- quiet Ray -----------------------------------------------------------------------------------
@contextmanager
def _quiet() -> Iterator[None]:
    """Ray's start-up notices (token authentication, client timeouts) are not the user's concern."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextmanager
def _quiet_data(ray: Any) -> Iterator[None]:
    """No Ray Data progress bars or execution notices while our own progress bar runs."""
    ctx = ray.data.DataContext.get_current()
    before = (ctx.enable_progress_bars, ctx.print_on_execution_start)
    data_log = logging.getLogger("ray.data")
    level = data_log.level
    ctx.enable_progress_bars, ctx.print_on_execution_start = False, False
    data_log.setLevel(logging.CRITICAL)  # failures reach the user as one line, not a stack trace
    try:
        yield
    finally:
        ctx.enable_progress_bars, ctx.print_on_execution_start = before
        data_log.setLevel(level)


# A line of Ray's C++ log: "[2026-01-31 12:00:00,123 E 4242 4242] core_worker.cc:2465: ..."
_RAY_LOG_LINE = re.compile(rb"^\[\d{4}-\d\d-\d\d [\d:,.]+ [TDIWEF] \d+ \d+\] ")


@contextmanager
def _without_ray_notices() -> Iterator[None]:
    """Ray's C++ core writes notices (such as one about restartable actors) straight to this
    process's file descriptor 2, into the progress bar. While the pipeline runs, those lines are
    dropped (Ray's log files keep them) and everything else passes through unchanged."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        pending = b""
        with open(read_end, "rb", buffering=0) as src, open(saved, "wb", buffering=0, closefd=False) as out:
            while data := src.read(65536):
                *lines, pending = (pending + data).split(b"\n")
                keep = b"".join(line + b"\n" for line in lines if not _RAY_LOG_LINE.match(line))
                if pending and not pending.startswith(b"["):
                    keep, pending = keep + pending, b""  # a progress bar's partial line: show it now
                if keep:
                    out.write(keep)
            if pending and not _RAY_LOG_LINE.match(pending):
                out.write(pending)

    thread = threading.Thread(target=pump, name="illustra-ray-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's only write end: the pump reads to the end and stops
        thread.join(timeout=5)
        os.close(saved)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
