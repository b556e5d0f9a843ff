"""A collection on disk: a 🤗 ``datasets`` Arrow dataset plus ``manifest.json``.

Layout of a collection directory::

    manifest.json               schema version, counts, source, embeddings, indexes
    data/                       datasets.save_to_disk output (memory-mapped when opened)
    embeddings/<model-slug>/    vectors written by ``illustra embed`` (see embedding.py)
    index/<model-slug>/         FAISS index (see index.py)
    text/                       metadata text index for hybrid search
    feedback.sqlite             "report this result" entries

Rows have a stable string ``id``, an optional ``image`` (the datasets Image feature holding a
bounded-size JPEG copy), ``image_path`` (the original path or URL) and metadata columns.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from datasets.arrow_writer import ArrowWriter

from .errors import CollectionError, CollectionNotFound, ItemNotFound

SCHEMA_VERSION = 1

# Metadata columns every collection has (empty string / None where a source has no value).
CORE_FIELDS = ["title", "creator", "date", "place", "publisher", "source_url", "licence"]
# Columns that are not metadata shown to users.
INTERNAL_COLUMNS = {"image"}


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def features_for(extra_fields: Iterable[str]) -> datasets.Features:
    cols: dict[str, Any] = {
        "id": datasets.Value("string"),
        "image": datasets.Image(),
        "image_path": datasets.Value("string"),
    }
    for f in CORE_FIELDS:
        cols[f] = datasets.Value("string")
    cols["year"] = datasets.Value("int32")
    for f in extra_fields:
        if f not in cols:
            cols[f] = datasets.Value("string")
    return datasets.Features(cols)


def normalise_row(row: dict[str, Any], features: datasets.Features) -> dict[str, Any]:
    """Fill missing columns, coerce metadata to strings, keep ``image`` as {'bytes', 'path'} or None."""
    out: dict[str, Any] = {}
    for name, feat in features.items():
        v = row.get(name)
        if name == "image":
            out[name] = v if v else None
        elif name == "year":
            try:
                out[name] = int(v) if v not in (None, "") else None
            except (TypeError, ValueError):
                out[name] = None
        elif isinstance(feat, datasets.Value) and feat.dtype == "string":
            out[name] = None if v is None else str(v)
        else:
            out[name] = v
    if not out.get("id"):
        raise CollectionError("every row needs a non-empty 'id'")
    return out


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one, never a part
    (a temporary file beside it, then a rename); on failure the temporary file is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


class Collection:
    """An opened collection. Cheap to open: the dataset is memory-mapped."""

    # Set by ``create``: {"added", "duplicates_skipped", "replaced"} of the ingest that returned it.
    last_ingest: dict[str, Any]

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        mpath = self.root / "manifest.json"
        if not mpath.is_file():
            if self.root.exists():
                raise CollectionNotFound(f"{self.root} is not an Illustra collection (no manifest.json)")
            raise CollectionNotFound(f"collection {self.root} does not exist; create it with 'illustra ingest'")
        try:
            self.manifest: dict[str, Any] = json.loads(mpath.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise CollectionError(f"{mpath} is unreadable: {exc}") from exc
        if self.manifest.get("schema_version") != SCHEMA_VERSION:
            raise CollectionError(
                f"{self.root} has schema version {self.manifest.get('schema_version')}; "
                f"this Illustra reads version {SCHEMA_VERSION}"
            )
        try:
            self.dataset: datasets.Dataset = datasets.load_from_disk(str(self.root / "data"))  # type: ignore[assignment]
        except (OSError, FileNotFoundError, ValueError) as exc:
            raise CollectionError(f"{self.root}/data is unreadable: {exc}") from exc
        self._ids: np.ndarray | None = None
        self._id_to_row: dict[str, int] | None = None
        self._meta_batches: list[Any] | None = None
        self._meta_starts: np.ndarray = np.zeros(0, np.int64)

    # -- creation -------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        root: str | Path,
        rows: Iterable[dict[str, Any]],
        *,
        source: dict[str, Any],
        extra_fields: Iterable[str] = (),
        text_fields: Iterable[str] | None = None,
        on_duplicate: str = "skip",
    ) -> Collection:
        """Write rows as a new collection, or append them to an existing one.

        Rows whose id is already present (or repeats within ``rows``) are skipped, so re-running an
        ingest never duplicates items. ``text_fields`` says which fields feed the text index.
        With ``on_duplicate="replace"`` a row whose id is already in the collection replaces the old
        row in place (same row number), e.g. to fill in an image that failed to download before;
        repeats within ``rows`` are still skipped.
        """
        if on_duplicate not in ("skip", "replace"):
            raise CollectionError(f"on_duplicate must be 'skip' or 'replace', not {on_duplicate!r}")
        root = Path(root)
        existing: Collection | None = None
        if (root / "manifest.json").exists():
            existing = cls(root)
        extra = list(dict.fromkeys(extra_fields))
        if existing is not None:
            extra = list(dict.fromkeys([*existing.extra_fields, *extra]))
        feats = features_for(extra)
        old_ids: set[str] = set(existing.ids.tolist()) if existing is not None else set()
        seen: set[str] = set()
        old_len = len(existing) if existing is not None else 0
        stats = {"duplicates": 0, "replaced": 0}
        replacing = on_duplicate == "replace" and existing is not None

        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".ingest-", dir=root))
        try:
            # ArrowWriter streams rows to disk in batches: memory stays bounded for 1M-row manifests.
            arrow_path = work / "new.arrow"
            repl_path = work / "replacements.arrow"
            with (
                ArrowWriter(features=feats, path=str(arrow_path), writer_batch_size=1000) as writer,
                ArrowWriter(features=feats, path=str(repl_path), writer_batch_size=100) as repl_writer,
            ):
                for r in rows:
                    norm = normalise_row(r, feats)
                    rid = norm["id"]
                    if rid in seen or (rid in old_ids and not replacing):
                        stats["duplicates"] += 1
                        continue
                    seen.add(rid)
                    if rid in old_ids:
                        repl_writer.write(norm)
                        stats["replaced"] += 1
                    else:
                        writer.write(norm)
                writer.finalize()
                repl_writer.finalize()
            new = datasets.Dataset.from_file(str(arrow_path))
            if existing is not None:
                old = _with_missing_columns(existing.dataset, feats)
                old = old.cast(feats) if old.features != feats else old
                if stats["replaced"]:
                    old = _replace_in_place(old, datasets.Dataset.from_file(str(repl_path)), feats, work)
                merged = datasets.concatenate_datasets([old, new]) if len(new) else old
            else:
                merged = new
            staged = work / "data"
            merged.save_to_disk(str(staged), max_shard_size="500MB")
            del merged, new
            if existing is not None:
                existing.dataset = None  # type: ignore[assignment]
            old_data = root / "data"
            if old_data.exists():
                trash = work / "old-data"
                os.replace(old_data, trash)
            os.replace(staged, old_data)
            manifest: dict[str, Any] = existing.manifest if existing is not None else {
                "schema_version": SCHEMA_VERSION,
                "created": now_iso(),
                "sources": [],
                "embeddings": {},
                "indexes": {},
            }
            ds = datasets.load_from_disk(str(old_data))
            manifest["updated"] = now_iso()
            src = dict(source)
            src["added"] = len(ds) - old_len
            src["duplicates_skipped"] = stats["duplicates"]
            if stats["replaced"]:
                src["replaced"] = stats["replaced"]
            src["ingested"] = now_iso()
            manifest.setdefault("sources", []).append(src)
            manifest["extra_fields"] = extra
            if text_fields is not None:
                manifest["text_fields"] = list(text_fields)
            manifest["counts"] = _counts(ds)  # type: ignore[arg-type]
            write_json_atomic(root / "manifest.json", manifest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        coll = cls(root)
        coll.last_ingest = {
            "added": src["added"],
            "duplicates_skipped": stats["duplicates"],
            "replaced": stats["replaced"],
        }
        return coll

    # -- reading --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def extra_fields(self) -> list[str]:
        return list(self.manifest.get("extra_fields", []))

    @property
    def metadata_fields(self) -> list[str]:
        return [c for c in self.dataset.column_names if c not in INTERNAL_COLUMNS and c != "id"]

    @property
    def text_fields(self) -> list[str]:
        default = ["title", "creator", "place", "publisher", "description", "keywords", "caption", "ocr"]
        fields = self.manifest.get("text_fields") or default
        return [f for f in fields if f in self.dataset.column_names]

    @property
    def ids(self) -> np.ndarray:
        if self._ids is None:
            self._ids = np.asarray(self.dataset.data.column("id").to_pylist(), dtype=object)
        return self._ids

    def row_of(self, item_id: str) -> int:
        if self._id_to_row is None:
            self._id_to_row = {str(v): i for i, v in enumerate(self.ids)}
        try:
            return self._id_to_row[item_id]
        except KeyError:
            raise ItemNotFound(f"no item with id {item_id!r} in {self.root}") from None

    def metadata(self, row: int) -> dict[str, Any]:
        """Metadata of one row (no image bytes)."""
        return self.metadata_many([row])[0]

    def metadata_many(self, rows: list[int]) -> list[dict[str, Any]]:
        """Metadata of a page of rows, in the order given.

        Zero-copy one-row slices of the record batch holding each row: ``take``, or slicing the
        whole table (which walks its thousand chunks per column at a million rows), costs far
        more than the handful of rows a results page needs.
        """
        if not rows:
            return []
        if self._meta_batches is None:
            table = self.dataset.data.table if hasattr(self.dataset.data, "table") else self.dataset.data
            meta = table.select([c for c in table.column_names if c not in INTERNAL_COLUMNS])
            batches = meta.to_batches()
            self._meta_starts = np.cumsum([0] + [b.num_rows for b in batches])[:-1]
            self._meta_batches = batches
        batches, starts = self._meta_batches, self._meta_starts
        total = int(starts[-1]) + batches[-1].num_rows if batches else 0
        out = []
        for r in rows:
            if not 0 <= int(r) < total:
                raise IndexError(f"row {r} is outside the collection's {total} rows")
            i = int(np.searchsorted(starts, int(r), side="right")) - 1
            out.append(batches[i].slice(int(r) - int(starts[i]), 1).to_pylist()[0])
        return out

    def image_bytes(self, row: int) -> bytes | None:
        """The stored bounded-size copy, or the original file when only a path was kept."""
        rec = self.dataset.data.column("image")[row].as_py()
        if rec and rec.get("bytes"):
            return bytes(rec["bytes"])
        if rec and rec.get("path") and os.path.isfile(rec["path"]):
            return Path(rec["path"]).read_bytes()
        return None

    def has_stored_image(self, row: int) -> bool:
        """Whether the collection itself holds the picture (bytes, or a local path)."""
        rec = self.dataset.data.column("image")[row].as_py()
        return bool(rec and (rec.get("bytes") or rec.get("path")))

    def image_url(self, row: int) -> str | None:
        """The http(s) address of the item's picture when none is stored (``--images remote``, or a
        manifest ingested without ``--download``): the server fetches it from there when shown."""
        if self.has_stored_image(row) or "image_path" not in self.dataset.data.column_names:
            return None
        ref = self.dataset.data.column("image_path")[row].as_py()
        if isinstance(ref, str) and ref.strip()[:8].lower().startswith(("http://", "https://")):
            return ref.strip()
        return None

    def has_image(self, row: int) -> bool:
        """Whether the item has a picture to show: stored, or fetched from its image URL."""
        return self.has_stored_image(row) or self.image_url(row) is not None

    # -- manifest updates -----------------------------------------------------------------
    def update_manifest(self, **changes: Any) -> None:
        """Merge top-level keys into the manifest (dict values are merged one level deep)."""
        for k, v in changes.items():
            if isinstance(v, dict) and isinstance(self.manifest.get(k), dict):
                self.manifest[k].update(v)
            else:
                self.manifest[k] = v
        self.manifest["updated"] = now_iso()
        write_json_atomic(self.root / "manifest.json", self.manifest)

    def info(self) -> dict[str, Any]:
        return {
            "path": str(self.root),
            "schema_version": self.manifest.get("schema_version"),
            "created": self.manifest.get("created"),
            "updated": self.manifest.get("updated"),
            "counts": self.manifest.get("counts", {}),
            "fields": self.metadata_fields,
            "text_fields": self.text_fields,
            "sources": self.manifest.get("sources", []),
            "embeddings": self.manifest.get("embeddings", {}),
            "indexes": self.manifest.get("indexes", {}),
        }


def _with_missing_columns(ds: datasets.Dataset, feats: datasets.Features) -> datasets.Dataset:
    """Add all-null string columns for extra fields the new rows bring (``cast`` cannot add columns)."""
    import pyarrow as pa

    missing = [c for c in feats if c not in ds.column_names]
    if not missing:
        return ds
    table = ds.with_format(None).data.table
    for c in missing:
        table = table.append_column(c, pa.nulls(table.num_rows, pa.string()))
    return datasets.Dataset(table)


def _replace_in_place(
    old: datasets.Dataset, repl: datasets.Dataset, feats: datasets.Features, work: Path
) -> datasets.Dataset:
    """``old`` with the rows whose id is in ``repl`` swapped for ``repl``'s rows, order kept.

    Works slice by slice on Arrow tables (no Python copies of image bytes), so row numbers, which
    embeddings and indexes refer to, stay valid for every row that was not replaced.
    """
    import pyarrow as pa

    repl_table = repl.data.table
    repl_pos = {rid: j for j, rid in enumerate(repl_table.column("id").to_pylist())}
    old_table = old.with_format(None).data.table
    out_path = work / "replaced.arrow"
    step = 1000
    with ArrowWriter(features=feats, path=str(out_path), writer_batch_size=step) as writer:
        for start in range(0, old_table.num_rows, step):
            part = old_table.slice(start, step)
            hits = [(i, repl_pos[x]) for i, x in enumerate(part.column("id").to_pylist()) if x in repl_pos]
            if hits:
                both = pa.concat_tables([part, repl_table.take([j for _, j in hits])])
                order = list(range(part.num_rows))
                for k, (i, _) in enumerate(hits):
                    order[i] = part.num_rows + k
                part = both.take(order)
            writer.write_table(part)
        writer.finalize()
    return datasets.Dataset.from_file(str(out_path))


def _counts(ds: datasets.Dataset) -> dict[str, int]:
    col = ds.data.column("image")
    with_image = 0
    for chunk in col.chunks:
        # A struct column: an item has an image when bytes or path is set.
        b = chunk.field("bytes").is_valid()
        p = chunk.field("path").is_valid()
        import pyarrow.compute as pc

        with_image += int(pc.sum(pc.or_(b, p)).as_py() or 0) if len(chunk) else 0
    years = [y for y in ds.data.column("year").to_pylist() if y is not None] if len(ds) < 5_000_000 else []
    out = {"items": len(ds), "with_image": with_image}
    if years:
        out["year_min"] = int(min(years))
        out["year_max"] = int(max(years))
    return out
