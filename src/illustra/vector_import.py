"""Import precomputed vectors as a model's embeddings: ``illustra embed --from-parquet/--from-dataset``.

No picture is embedded and no model weights are loaded: the vectors (one list-of-numbers column)
are matched to the collection's items and written as that model's embeddings, so text queries are
later embedded with the model's text tower and uploads with its image tower.

Matching is by key (a source column against the items' ids or a metadata field such as ``fname``),
or by position when the order can be verified: the source's own key sequence equals the collection's
(``--key-column`` with ``--by-position``), or the collection was ingested from the same dataset and
split without an id column, so each item id (``<split>-<row>``) carries its source row.

The source is read in record batches (pyarrow for parquet files, a streamed 🤗 datasets iterator
for a dataset), each batch written as one atomic chunk of the embedding store, exactly as
``illustra embed`` writes them: a run killed at any point resumes with every vector imported exactly
once. Vectors of the wrong dimension, with NaN/inf values or all zeros are skipped and listed in
``skipped.tsv``; the others are L2-normalised. A key seen twice keeps its first vector.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .collection import Collection, now_iso
from .embedding_store import EmbeddingStore
from .encoders.base import model_slug
from .errors import BadInput, ModelMismatch, SourceError
from .progress import progress_bar

DEFAULT_BATCH_ROWS = 8192


@dataclass(frozen=True)
class KnownLayout:
    """What a published embeddings config is documented to hold; checked when it is loaded."""

    dataset: str  # the dataset's name on the Hub (a local copy in a folder of that name also matches)
    config: str
    model: str
    dim: int
    key: str | None = None  # a column naming each vector's picture, matched to the same collection field


KNOWN_LAYOUTS = [
    # Items ingested with ``--preset bl-hub`` keep the dataset's ``fname``: the vectors are matched on it.
    KnownLayout(
        "biglam/british-library-book-images", "siglip2_embeddings", "google/siglip2-so400m-patch16-256", 1152, "fname"
    ),
]
# Output width of models whose configuration may not be on this machine (only the name is needed).
KNOWN_MODEL_DIMS = {layout.model: layout.dim for layout in KNOWN_LAYOUTS}


def known_layout(dataset: str, config: str | None = None) -> KnownLayout | None:
    tail = dataset.rstrip("/").split("/")[-1]
    for layout in KNOWN_LAYOUTS:
        if (dataset == layout.dataset or tail == layout.dataset.split("/")[-1]) and config in (None, layout.config):
            return layout
    return None


# -- sources -------------------------------------------------------------------------------------
def _describe_type(t: Any) -> str:
    import pyarrow as pa

    if pa.types.is_fixed_size_list(t):
        return f"{t.value_type}[{t.list_size}]"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{t.value_type}>"
    return str(t)


def _is_vector_type(t: Any) -> bool:
    import pyarrow as pa

    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        v = t.value_type
        return bool(pa.types.is_floating(v) or pa.types.is_integer(v))
    return False


class VectorSource:
    """Record batches of a table of vectors, with its column types and (when known) row count."""

    label: str
    columns: dict[str, Any]  # name -> pyarrow type
    total: int | None

    def check_columns(self, names: Sequence[str]) -> None:
        for name in names:
            if name not in self.columns:
                raise BadInput(f"{self.label} has no column {name!r}; found columns: {self.columns_text()}")

    def columns_text(self) -> str:
        return ", ".join(f"{c} ({_describe_type(t)})" for c, t in self.columns.items()) or "none"

    def batches(self, batch_rows: int, columns: Sequence[str]) -> Iterator[Any]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError


class ParquetVectors(VectorSource):
    """Parquet files, read in record batches of only the needed columns (memory stays bounded)."""

    def __init__(self, paths: Sequence[str | Path]) -> None:
        import pyarrow.parquet as pq

        files: list[Path] = []
        for p in paths:
            path = Path(p).expanduser()
            if path.is_dir():
                found = sorted(path.rglob("*.parquet"))
                if not found:
                    raise SourceError(f"{path} holds no .parquet files")
                files.extend(found)
            elif path.is_file():
                files.append(path)
            else:
                raise SourceError(f"parquet file {path} does not exist")
        if not files:
            raise SourceError("no parquet files given")
        self.files = [f.resolve() for f in files]
        self.label = str(files[0]) if len(files) == 1 else f"{len(files)} parquet files"
        self.total = 0
        self._schemas: list[Any] = []
        for f in self.files:
            try:
                meta = pq.ParquetFile(f)
            except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
                raise SourceError(f"{f} is not a readable parquet file: {_first_line(exc)}") from None
            self._schemas.append(meta.schema_arrow)
            self.total += int(meta.metadata.num_rows)
        first = self._schemas[0]
        self.columns = {n: first.field(n).type for n in first.names}

    def check_columns(self, names: Sequence[str]) -> None:
        super().check_columns(names)
        first = self._schemas[0]
        for f, schema in zip(self.files, self._schemas, strict=True):
            for name in names:
                if name not in schema.names:
                    raise BadInput(
                        f"{f} has no column {name!r} (the first file has it); found columns: "
                        + ", ".join(schema.names)
                    )
                if schema.field(name).type != first.field(name).type and not (
                    _is_vector_type(schema.field(name).type) and _is_vector_type(first.field(name).type)
                ):
                    raise BadInput(
                        f"column {name!r} is {_describe_type(schema.field(name).type)} in {f} but "
                        f"{_describe_type(first.field(name).type)} in {self.files[0]}"
                    )

    def batches(self, batch_rows: int, columns: Sequence[str]) -> Iterator[Any]:
        import pyarrow.parquet as pq

        for f in self.files:
            try:
                yield from pq.ParquetFile(f).iter_batches(batch_size=batch_rows, columns=list(columns))
            except OSError as exc:
                raise SourceError(f"reading {f} failed: {_first_line(exc)}") from None

    def describe(self) -> dict[str, Any]:
        return {"kind": "parquet", "files": [str(f) for f in self.files]}


class DatasetVectors(VectorSource):
    """A 🤗 datasets dataset (Hub name or local folder laid out like the Hub), streamed in batches."""

    def __init__(self, name: str, config: str | None = None, split: str = "train") -> None:
        from .sources.hub import config_names, load, split_names

        self.name = name
        self.config = config
        self.split = split
        self.label = f"{name}" + (f" [{config}]" if config else "") + f" split {split}"
        if config is not None:
            found = config_names(name)
            if found and config not in found:
                raise BadInput(f"dataset {name} has no config {config!r}; configs found: {', '.join(found)}")
        splits = split_names(name, config)
        if splits and split not in splits:
            raise BadInput(f"{name}{f' [{config}]' if config else ''} has no split {split!r}; splits found: {', '.join(splits)}")
        ds = load(name, config, split=split, streaming=True)
        features = ds.features
        if features is None:
            ds = ds._resolve_features()  # type: ignore[union-attr]
            features = ds.features
        schema = features.arrow_schema if features is not None else None
        self.columns = {n: schema.field(n).type for n in schema.names} if schema is not None else {}
        self.dataset = ds
        try:
            self.total = int(ds.info.splits[split].num_examples) if ds.info.splits else None
        except (KeyError, AttributeError, TypeError):
            self.total = None

    def batches(self, batch_rows: int, columns: Sequence[str]) -> Iterator[Any]:
        ds = self.dataset.select_columns(list(columns)).with_format("arrow")
        try:
            yield from ds.iter(batch_size=batch_rows)
        except (OSError, ConnectionError) as exc:
            raise SourceError(f"reading {self.label} failed: {_first_line(exc)}; run again to resume") from None

    def describe(self) -> dict[str, Any]:
        return {"kind": "dataset", "dataset": self.name, "config": self.config, "split": self.split}


# -- the model -----------------------------------------------------------------------------------
def model_facts(model: str) -> dict[str, Any]:
    """The model's vector width (``dim``, None when unknown) and type, read from its configuration
    only (local directory or Hub cache); never its weights, never the network."""
    from .encoders import _FACTORIES, load_encoder

    if model in _FACTORIES:
        enc = load_encoder(model)
        return {"dim": int(enc.dim)}
    path = Path(model).expanduser()
    source: str | None = None
    if path.is_dir() and (path / "config.json").is_file():
        source = str(path)
    else:
        try:
            from huggingface_hub import try_to_load_from_cache

            if isinstance(try_to_load_from_cache(model, "config.json"), str):
                source = model
        except Exception:  # noqa: BLE001 - not a Hub id or no cache: fall through to the table
            source = None
    if source is not None:
        try:
            from transformers import AutoConfig

            from .encoders.clip import _embedding_dim

            config = AutoConfig.from_pretrained(source, local_files_only=True)
            return {"dim": _embedding_dim(config), "model_type": str(getattr(config, "model_type", ""))}
        except Exception:  # noqa: BLE001 - an unreadable config: fall back on the known table
            pass
    return {"dim": KNOWN_MODEL_DIMS.get(model)}


# -- vectors -------------------------------------------------------------------------------------
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def _lengths(col: Any) -> np.ndarray:
    """Length of each list in ``col`` (-1 for a missing vector)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_fixed_size_list(col.type):
        lengths = np.full(len(col), col.type.list_size, dtype=np.int64)
    else:
        lengths = np.asarray(pc.fill_null(pc.list_value_length(col), 0).to_numpy(zero_copy_only=False), np.int64)
    valid = np.asarray(col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    lengths[~valid] = -1
    return lengths


def vectors_of(col: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(n x dim float32 matrix, lengths) from a list column; rows whose length is not ``dim`` are 0."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks else pa.array([], type=col.type)
    if pa.types.is_fixed_size_list(col.type):
        col = col.cast(pa.list_(col.type.value_type))
    lengths = _lengths(col)
    if len(col) and bool((lengths == dim).all()):  # the usual case: one reshape, no gather
        with np.errstate(over="ignore", invalid="ignore"):
            flat32 = np.asarray(pc.list_flatten(col).to_numpy(zero_copy_only=False), dtype=np.float32)
        return flat32.reshape(len(col), dim), lengths
    out = np.zeros((len(col), dim), dtype=np.float32)
    flat = np.asarray(pc.list_flatten(col).to_numpy(zero_copy_only=False), dtype=np.float64)
    starts = np.concatenate([[0], np.cumsum(np.maximum(lengths, 0))[:-1]]).astype(np.int64)
    sel = np.flatnonzero(lengths == dim)
    if len(sel):
        with np.errstate(over="ignore", invalid="ignore"):
            out[sel] = flat[starts[sel, None] + np.arange(dim)[None, :]].astype(np.float32)
    return out, lengths


def check_vectors(vectors: np.ndarray, lengths: np.ndarray, dim: int) -> tuple[np.ndarray, list[str | None]]:
    """L2-normalised vectors and, per row, why it is skipped (None when it is kept)."""
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(vectors).all(axis=1)
        norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64))
    reasons: list[str | None] = [None] * len(lengths)
    bad = (lengths != dim) | ~finite | ~np.isfinite(norms) | (norms == 0)
    for i in np.flatnonzero(bad).tolist():
        length = int(lengths[i])
        if length < 0:
            reasons[i] = "no vector"
        elif length != dim:
            reasons[i] = f"vector has {length} values, expected {dim}"
        elif not finite[i] or not np.isfinite(norms[i]):
            reasons[i] = "vector holds NaN or infinite values"
        else:
            reasons[i] = "zero vector"
    safe = np.where(np.isfinite(norms) & (norms > 0), norms, 1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        return (vectors / safe[:, None]).astype(np.float32), reasons


# -- matching ------------------------------------------------------------------------------------
def _key_strings(col: Any) -> list[str | None]:
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks else pa.array([], type=pa.string())
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        try:
            col = pc.cast(col, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return [None if v is None else str(v) for v in col.to_pylist()]
    return [None if v in (None, "") else str(v) for v in col.to_pylist()]


def _collection_keys(collection: Collection, match_field: str | None) -> list[str | None]:
    name = match_field or "id"
    if name not in collection.dataset.column_names or name == "image":
        fields = ", ".join(["id", *collection.metadata_fields])
        raise BadInput(f"the collection has no field {name!r}; its fields are: {fields}")
    return _key_strings(collection.dataset.data.column(name))


@dataclass
class ImportSummary:
    model: str
    dim: int
    match: str  # how rows were matched, in words
    source_rows: int  # rows read from the source by this run
    imported: int  # vectors written by this run
    already_done: int  # items matched that earlier runs had imported or skipped
    skipped: int  # matched vectors this run could not use (listed in skipped.tsv)
    duplicates: int  # source rows whose key had been seen before (the first one is kept)
    unmatched: int  # source rows whose key is no item of the collection
    no_key: int  # source rows without a key
    total_vectors: int
    total_skipped: int
    seconds: float
    vectors_per_s: float
    path: str
    skipped_path: str
    source: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Matcher:
    """Maps a batch of source rows (positions, keys) to collection rows (-1: no item)."""

    how: str

    def rows(self, start: int, count: int, keys: list[str | None] | None) -> np.ndarray:
        raise NotImplementedError

    def pairs(self, start: int, count: int, keys: list[str | None] | None) -> tuple[np.ndarray, np.ndarray]:
        """(source index in the batch, collection row) for every match, in source order."""
        rows = self.rows(start, count, keys)
        idx = np.flatnonzero(rows >= 0)
        return idx, rows[idx]

    def finish(self, source_rows: int) -> None:
        """Checks that can only be made once the whole source has been read."""


class _ByKey(_Matcher):
    def __init__(self, collection: Collection, key_column: str, match_field: str | None) -> None:
        values = _collection_keys(collection, match_field)
        self.field = match_field or "id"
        self.index: dict[str, int] = {}
        # Items sharing a value (the same picture file twice) each get the vector: key -> other rows.
        self.more: dict[str, list[int]] = {}
        for row, v in enumerate(values):
            if v is None:
                continue
            if v in self.index:
                self.more.setdefault(v, []).append(row)
            else:
                self.index[v] = row
        if not self.index:
            raise BadInput(f"field {self.field!r} is empty for every item of the collection")
        self.example = next(iter(self.index))
        self.key_column = key_column
        self.how = f"source column {key_column!r} against the collection's {self.field!r}"
        self.seen_example: str | None = None

    def rows(self, start: int, count: int, keys: list[str | None] | None) -> np.ndarray:
        assert keys is not None
        if self.seen_example is None:
            self.seen_example = next((k for k in keys if k is not None), None)
        get = self.index.get
        return np.fromiter((get(k, -1) if k is not None else -1 for k in keys), dtype=np.int64, count=len(keys))

    def pairs(self, start: int, count: int, keys: list[str | None] | None) -> tuple[np.ndarray, np.ndarray]:
        idx, rows = super().pairs(start, count, keys)
        if not self.more or keys is None:
            return idx, rows
        extra = [(int(i), r) for i in idx.tolist() for r in self.more.get(keys[i] or "", ())]
        if not extra:
            return idx, rows
        idx = np.concatenate([idx, np.asarray([e[0] for e in extra], dtype=np.int64)])
        rows = np.concatenate([rows, np.asarray([e[1] for e in extra], dtype=np.int64)])
        order = np.argsort(idx, kind="stable")
        return idx[order], rows[order]

    def nothing_matched(self, source_rows: int) -> BadInput:
        return BadInput(
            f"no key of source column {self.key_column!r} matches the collection's {self.field!r} "
            f"({source_rows} rows read; found e.g. {self.seen_example!r}, expected values like "
            f"{self.example!r}); choose another --key-column or --match-field"
        )


class _ByPositionVerifiedByKey(_Matcher):
    """Source row i is item i; verified row by row: the source's key sequence equals the collection's."""

    def __init__(self, collection: Collection, key_column: str, match_field: str | None, total: int | None) -> None:
        self.values = _collection_keys(collection, match_field)
        self.n = len(self.values)
        self.field = match_field or "id"
        self.key_column = key_column
        if total is not None and total != self.n:
            raise BadInput(
                f"cannot match by position: the source has {total} rows but the collection has "
                f"{self.n} items; match by key instead (drop --by-position)"
            )
        self.how = (
            f"position, verified: source column {key_column!r} equals the collection's {self.field!r} "
            "row for row"
        )

    def rows(self, start: int, count: int, keys: list[str | None] | None) -> np.ndarray:
        assert keys is not None
        end = start + count
        if end > self.n:
            raise BadInput(
                f"cannot match by position: the source has more than {self.n} rows, the collection's item count"
            )
        for i, k in enumerate(keys):
            if k != self.values[start + i]:
                raise BadInput(
                    f"cannot match by position: source row {start + i} has {self.key_column}={k!r} but "
                    f"item {start + i} has {self.field}={self.values[start + i]!r}; the rows do not line up "
                    "(match by key instead: drop --by-position)"
                )
        return np.arange(start, end, dtype=np.int64)

    def finish(self, source_rows: int) -> None:
        if source_rows != self.n:
            raise BadInput(
                f"cannot match by position: the source has {source_rows} rows but the collection has {self.n} items"
            )


class _ByPositionFromIds(_Matcher):
    """Source row i is the item with id ``<split>-<i>``: the collection was ingested from the same
    dataset and split without an id column, so every id records the row it came from."""

    def __init__(self, collection: Collection, split: str, total: int | None) -> None:
        pattern = re.compile(re.escape(split) + r"-(\d+)")
        ids = collection.ids.tolist()
        positions = np.empty(len(ids), dtype=np.int64)
        for row, item_id in enumerate(ids):
            m = pattern.fullmatch(str(item_id))
            if m is None:
                raise BadInput(
                    f"cannot verify positions: item id {item_id!r} does not record a row of split {split!r} "
                    f"(expected ids like '{split}-0'); give --key-column to match by key"
                )
            positions[row] = int(m.group(1))
        if total is not None and len(positions) and int(positions.max()) >= total:
            raise BadInput(
                f"cannot match by position: the collection has item {split}-{int(positions.max())} but the "
                f"source has only {total} rows"
            )
        size = int(positions.max()) + 1 if len(positions) else 0
        self.row_of = np.full(size, -1, dtype=np.int64)
        self.row_of[positions] = np.arange(len(positions), dtype=np.int64)
        self.how = f"position, verified: every item id is '{split}-<source row>' from the same dataset and split"

    def rows(self, start: int, count: int, keys: list[str | None] | None) -> np.ndarray:
        pos = np.arange(start, start + count, dtype=np.int64)
        out = np.full(len(pos), -1, dtype=np.int64)
        inside = pos < len(self.row_of)
        out[inside] = self.row_of[pos[inside]]
        return out


def _same_dataset(a: str, b: str) -> bool:
    pa_, pb = os.path.expanduser(a), os.path.expanduser(b)
    if os.path.exists(pa_) and os.path.exists(pb):
        return os.path.realpath(pa_) == os.path.realpath(pb)
    return a.rstrip("/") == b.rstrip("/")


def _position_source_check(collection: Collection, source: VectorSource) -> str:
    """The split whose row numbers the collection's ids record, or BadInput saying why positions
    cannot be verified without a key column."""
    if not isinstance(source, DatasetVectors):
        raise BadInput(
            "cannot verify positions of parquet files without a key: give --key-column K (its values are "
            "checked against the collection's ids or --match-field, row for row)"
        )
    ingests = collection.manifest.get("sources", [])
    hub = [s for s in ingests if s.get("kind") == "hub"]
    if len(ingests) != 1 or len(hub) != 1 or hub[0].get("id_column"):
        raise BadInput(
            "cannot verify positions: the collection was not ingested in one run from a dataset without an "
            "id column; give --key-column K to match (or verify) by key"
        )
    src = hub[0]
    if not _same_dataset(str(src.get("name", "")), source.name) or src.get("split") != source.split:
        raise BadInput(
            f"cannot verify positions: the collection comes from {src.get('name')} split {src.get('split')}, "
            f"the vectors from {source.name} split {source.split}; give --key-column K to match by key"
        )
    return source.split


# -- the import ----------------------------------------------------------------------------------
def _pick_vector_column(source: VectorSource, wanted: str | None, layout: KnownLayout | None) -> str:
    if wanted:
        source.check_columns([wanted])
        if not _is_vector_type(source.columns[wanted]):
            raise BadInput(
                f"column {wanted!r} of {source.label} holds {_describe_type(source.columns[wanted])}, not "
                f"vectors (a list of numbers); found columns: {source.columns_text()}"
            )
        return wanted
    found = [c for c, t in source.columns.items() if _is_vector_type(t)]
    if len(found) == 1:
        return found[0]
    if layout is not None and not found:
        raise BadInput(
            f"{source.label}: expected a column of {layout.dim}-dimensional float vectors from {layout.model}, "
            f"found columns: {source.columns_text()}"
        )
    raise BadInput(
        f"{source.label} has {len(found) or 'no'} vector columns ({', '.join(found) or 'none'}); "
        f"name one with --vector-column; found columns: {source.columns_text()}"
    )


def _check_store(collection: Collection, store: EmbeddingStore, model: str) -> int | None:
    for other in collection.manifest.get("embeddings", {}):
        if other != model and model_slug(other) == model_slug(model):
            raise ModelMismatch(
                f"model names {other!r} and {model!r} share the folder {store.dir}; "
                f"use the name {other!r} or remove that folder"
            )
    old = store.entry.get("dim") or store.chunk_dim()
    return int(old) if old is not None else None


def import_vectors(
    collection: Collection,
    source: VectorSource,
    *,
    model: str,
    vector_column: str | None = None,
    key_column: str | None = None,
    match_field: str | None = None,
    by_position: bool = False,
    batch_rows: int | None = None,
    progress: bool = True,
    notify: Callable[[str], None] | None = None,
) -> ImportSummary:
    """Import ``source``'s vectors as ``model``'s embeddings of ``collection``; see the module docstring."""
    t0 = time.perf_counter()
    batch_rows = max(1, int(batch_rows or DEFAULT_BATCH_ROWS))
    layout = known_layout(source.name, source.config) if isinstance(source, DatasetVectors) else None
    vcol = _pick_vector_column(source, vector_column, layout)
    if (
        layout is not None
        and layout.key
        and not key_column
        and not by_position
        and layout.key in source.columns
        and layout.key in collection.dataset.column_names
    ):
        key_column, match_field = layout.key, match_field or layout.key
    if key_column:
        source.check_columns([key_column])
    n = len(collection)

    matcher: _Matcher
    if by_position:
        if key_column:
            matcher = _ByPositionVerifiedByKey(collection, key_column, match_field, source.total)
        else:
            matcher = _ByPositionFromIds(collection, _position_source_check(collection, source), source.total)
    elif key_column:
        matcher = _ByKey(collection, key_column, match_field)
    else:
        raise BadInput(
            "say how source rows match items: --key-column K (its values against the item ids, or against "
            "--match-field F), or --by-position"
        )

    store = EmbeddingStore(collection, model)
    store_dim = _check_store(collection, store, model)
    facts = model_facts(model)
    model_dim = facts.get("dim")
    if model_dim is not None and store_dim is not None and int(model_dim) != store_dim:
        raise ModelMismatch(
            f"{collection.root} already has {store_dim}-dimensional embeddings for model {model!r}, but the "
            f"model gives {model_dim}-dimensional vectors; delete {store.dir} to import again"
        )
    if layout is not None and model != layout.model and notify:
        notify(f"note: {layout.dataset} [{layout.config}] holds vectors of {layout.model}; importing them as {model}")
    vtype = source.columns[vcol]
    fixed = int(vtype.list_size) if hasattr(vtype, "list_size") else None
    dim: int | None = None

    def settle_dim(found: int) -> int:
        expected: list[tuple[int | None, str]] = []
        if layout is not None:
            expected.append((layout.dim, f"expected {layout.dim}-dimensional {layout.model} vectors"))
        expected += [
            (store_dim, f"the collection already holds {store_dim}-dimensional vectors for {model}"),
            (model_dim, f"{model} gives {model_dim}-dimensional vectors"),
        ]
        for want, why in expected:
            if want is not None and int(want) != found:
                raise ModelMismatch(
                    f"column {vcol!r} of {source.label} holds {found}-dimensional vectors, but {why}"
                )
        return found

    if fixed is not None:
        dim = settle_dim(fixed)

    embedded_rows, skipped_rows = store.done_rows()
    done = np.zeros(n, dtype=bool)
    done[embedded_rows[embedded_rows < n]] = True
    done[skipped_rows[skipped_rows < n]] = True
    seen = np.zeros(n, dtype=bool)  # items met by this run: a later row with the same key is a duplicate
    ids = collection.ids
    stats = {"imported": 0, "already_done": 0, "skipped": 0, "duplicates": 0, "unmatched": 0, "no_key": 0}
    matched_any = False
    columns = [vcol] + ([key_column] if key_column and key_column != vcol else [])
    pos = 0
    # Shown from the end of the first batch on, so a source refused at its first rows is one line.
    bar: Any = None
    try:
        for batch in source.batches(batch_rows, columns):
            m = int(batch.num_rows)
            if m == 0:
                continue
            keys = _key_strings(batch.column(key_column)) if key_column else None
            pair_src, pair_rows = matcher.pairs(pos, m, keys)
            matched = np.zeros(m, dtype=bool)
            matched[pair_src] = True
            no_key = np.fromiter((k is None for k in keys), dtype=bool, count=m) if keys is not None else None
            if no_key is not None:
                stats["no_key"] += int((~matched & no_key).sum())
                stats["unmatched"] += int((~matched & ~no_key).sum())
            else:
                stats["unmatched"] += int((~matched).sum())
            if len(pair_src):
                matched_any = True
            # First wins: each item takes the first source row naming it, in this run or an earlier one.
            uniq, first = np.unique(pair_rows, return_index=True)
            fresh = ~seen[uniq]
            uniq, first = uniq[fresh], first[fresh]
            seen[uniq] = True
            stats["duplicates"] += int(matched.sum()) - len(np.unique(pair_src[first]))
            was_done = done[uniq]
            stats["already_done"] += int(was_done.sum())
            new_rows, src_idx = uniq[~was_done], pair_src[first[~was_done]]
            col = batch.column(vcol)
            if dim is None:
                lengths = _lengths(col.combine_chunks() if hasattr(col, "combine_chunks") else col)
                present = lengths[lengths >= 0]
                if len(present):
                    dim = settle_dim(int(np.bincount(present).argmax()))
            if len(new_rows):
                assert dim is not None  # rows with a vector column value or null: dim settled above
                order = np.argsort(src_idx, kind="stable")  # keep the source's order in the chunk
                new_rows, src_idx = new_rows[order], src_idx[order]
                vecs, lengths = vectors_of(col.take(src_idx), dim)
                normed, reasons = check_vectors(vecs, lengths, dim)
                keep = np.fromiter((why is None for why in reasons), dtype=bool, count=len(reasons))
                skipped = [
                    (int(row), str(ids[row]), str(why))
                    for row, why in zip(new_rows.tolist(), reasons, strict=True)
                    if why is not None
                ]
                store.write_chunk(pos, pos + m, new_rows[keep], normed[keep], skipped=skipped)
                stats["imported"] += int(keep.sum())
                stats["skipped"] += len(skipped)
            pos += m
            if bar is None:
                bar = progress_bar(progress, source.total, f"importing vectors for {model}", "row")
            bar.update(m)
    finally:
        if bar is not None:
            bar.close()

    matcher.finish(pos)
    if not matched_any:
        if isinstance(matcher, _ByKey):
            raise matcher.nothing_matched(pos)
        raise BadInput(f"no row of {source.label} ({pos} rows read) matches an item of the collection")
    if dim is None:
        dim = store_dim or model_dim
    if dim is None:  # every matched vector was missing: nothing to size the store by
        raise BadInput(f"column {vcol!r} of {source.label} holds no vector for any matched item")

    total_skipped = store.write_skipped()
    described: dict[str, Any] = {
        **source.describe(),
        "vector_column": vcol,
        "key_column": key_column,
        "match_field": match_field or ("id" if key_column else None),
        "match": matcher.how,
        "counts": {
            "source_rows": pos,
            "matched": pos - stats["unmatched"] - stats["no_key"] - stats["duplicates"],
            "duplicates": stats["duplicates"],
            "unmatched": stats["unmatched"],
            "no_key": stats["no_key"],
            "skipped": total_skipped,
        },
        "imported": now_iso(),
    }
    same = {k: described[k] for k in ("kind", "files", "dataset", "config", "split", "vector_column", "key_column") if k in described}
    history = [
        h for h in store.entry.get("imported_from", []) if {k: h.get(k) for k in same} != same
    ]
    extra: dict[str, Any] = {
        "rows": n,
        "skipped": total_skipped,
        "vectors": "imported",
        "imported_from": [*history, described],
    }
    if facts.get("model_type"):
        extra["model_type"] = facts["model_type"]
    entry = store.entry
    held = len(np.unique(store.done_rows()[0]))  # a run killed inside consolidate left the count behind
    if (
        stats["imported"]
        or not store.complete
        or entry.get("rows") != n
        or entry.get("skipped") != total_skipped
        or entry.get("count") != held
    ):
        total_vectors = store.consolidate(int(dim), extra=extra)
    else:
        entry.update(extra)
        entry["updated"] = now_iso()
        collection.update_manifest(embeddings={model: entry})
        total_vectors = int(entry.get("count", 0))
    elapsed = time.perf_counter() - t0
    return ImportSummary(
        model=model,
        dim=int(dim),
        match=matcher.how,
        source_rows=pos,
        imported=stats["imported"],
        already_done=stats["already_done"],
        skipped=stats["skipped"],
        duplicates=stats["duplicates"],
        unmatched=stats["unmatched"],
        no_key=stats["no_key"],
        total_vectors=total_vectors,
        total_skipped=total_skipped,
        seconds=round(elapsed, 3),
        vectors_per_s=round(stats["imported"] / elapsed, 1) if elapsed > 0 else 0.0,
        path=str(store.dir),
        skipped_path=str(store.skipped_path),
        source=described,
    )
