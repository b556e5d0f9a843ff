"""A 🤗 datasets dataset: a Hub name or a local folder of parquet / imagefolder / csv files.

Everything goes through one ``datasets.load_dataset`` call (streaming by default, so a large
dataset is read row by row). Images are taken undecoded from the dataset and decoded by
``images.decode``, the one safe decoder; rows whose image cannot be decoded are skipped and
written to the ingest report.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from .. import images, settings
from ..errors import BadImage, SourceError
from .base import FieldPlan, IngestContext, progress_bar

IMAGE_COLUMN_NAMES = ("image", "img", "picture", "photo", "jpg", "png", "file", "image_file")
ID_COLUMN_NAMES = ("id", "image_id", "item_id", "identifier", "uid", "uuid", "key", "__key__")


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return msg[:300]


def is_local(name: str) -> bool:
    return os.path.exists(os.path.expanduser(name))


def _path_of(name: str) -> str:
    return os.path.abspath(os.path.expanduser(name)) if is_local(name) else name


def _load_error(name: str, exc: BaseException) -> SourceError:
    """One line for whatever ``datasets`` raised while resolving or loading ``name``."""
    if is_local(name):
        return SourceError(f"cannot load dataset from {name}: {_short(exc)}")
    if isinstance(exc, ConnectionError) or "offline" in str(exc).lower():
        return SourceError(
            f"cannot reach the Hugging Face Hub to load {name!r} and it is not a local path ({_short(exc)})"
        )
    return SourceError(f"cannot load dataset {name!r}: {_short(exc)}")


def load(
    name: str,
    config: str | None,
    *,
    split: str,
    streaming: bool,
    cache_dir: str | None = None,
    data_dir: str | None = None,
) -> Any:
    """``datasets.load_dataset`` for a Hub id or a local folder, its failures as one-line ``SourceError``s."""
    import datasets

    try:
        return datasets.load_dataset(
            _path_of(name), config, split=split, streaming=streaming, cache_dir=cache_dir, data_dir=data_dir
        )
    except Exception as exc:  # noqa: BLE001 - datasets raises many types; users get one line
        raise _load_error(name, exc) from None


def config_names(name: str) -> list[str]:
    """The configurations (subsets) ``load_dataset`` finds for a Hub id or a local folder."""
    import datasets

    try:
        return list(datasets.get_dataset_config_names(_path_of(name)))
    except Exception as exc:  # noqa: BLE001 - as in ``load``
        raise _load_error(name, exc) from None


def split_names(name: str, config: str | None, data_dir: str | None = None) -> list[str]:
    import datasets

    try:
        return list(datasets.get_dataset_split_names(_path_of(name), config, data_dir=data_dir))
    except Exception as exc:  # noqa: BLE001 - as in ``load``
        raise _load_error(name, exc) from None


def image_of(value: Any) -> tuple[bytes | None, str | None]:
    """Raw bytes and original path of an undecoded image cell (dict, path string or bytes)."""
    if value is None:
        return None, None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value), None
    path: str | None
    data: Any
    if isinstance(value, str):
        path = value
        data = None
    elif isinstance(value, dict):
        data = value.get("bytes")
        path = value.get("path")
    else:
        raise BadImage(f"unsupported image value of type {type(value).__name__}")
    if data:
        return bytes(data), path
    if path and os.path.isfile(path):
        return images.read_bytes(path), path
    if path:
        raise BadImage(f"image file {path} is not available locally")
    return None, path


class HubSource:
    kind = "hub"

    def __init__(
        self,
        name: str,
        *,
        config: str | None = None,
        split: str = "train",
        streaming: bool = True,
        image_column: str | None = None,
        id_column: str | None = None,
        limit: int | None = None,
        cache_dir: str | None = None,
        store_side: int | None = None,
    ) -> None:
        import datasets

        self.name = name
        self.config = config
        # Longest side of the stored copy (default: the stored_image_side setting).
        self.store_side = store_side
        self.split = split
        self.streaming = streaming
        self.limit = limit
        self.local = is_local(name)
        ds = load(name, config, split=split, streaming=streaming, cache_dir=cache_dir)
        features = ds.features
        if features is None:
            # Some streaming formats only know their columns once a row is read.
            ds = ds._resolve_features()  # type: ignore[union-attr]
            features = ds.features
        columns = list(features or {})
        self.image_column = self._pick_image_column(features, columns, image_column)
        self.id_column = self._pick_id_column(columns, id_column)
        if self.image_column and isinstance(features[self.image_column], datasets.Image):
            # Take undecoded bytes/paths: decoding is ours, with the pixel budget and RGB rules.
            ds = ds.cast_column(self.image_column, datasets.Image(decode=False))
        self.dataset = ds
        self.plan = FieldPlan.from_columns(
            columns, consumed=[c for c in (self.image_column, self.id_column) if c]
        )
        self.extra_fields = self.plan.extra_fields
        self.text_fields: list[str] | None = None
        self.total: int | None = None
        try:
            self.total = int(ds.info.splits[split].num_examples) if ds.info.splits else None
        except (KeyError, AttributeError, TypeError):
            self.total = None

    @staticmethod
    def _pick_image_column(features: Any, columns: list[str], wanted: str | None) -> str | None:
        import datasets

        if wanted:
            if wanted not in columns:
                raise SourceError(f"no column {wanted!r}; columns are {', '.join(columns)}")
            return wanted
        for c in columns:
            if isinstance(features[c], datasets.Image):
                return c
        for c in columns:
            if c.lower() in IMAGE_COLUMN_NAMES:
                return c
        return None

    @staticmethod
    def _pick_id_column(columns: list[str], wanted: str | None) -> str | None:
        if wanted:
            if wanted not in columns:
                raise SourceError(f"no column {wanted!r}; columns are {', '.join(columns)}")
            return wanted
        lowered = {c.lower(): c for c in columns}
        for name in ID_COLUMN_NAMES:
            if name in lowered:
                return lowered[name]
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "config": self.config,
            "split": self.split,
            "image_column": self.image_column,
            "id_column": self.id_column,
        }

    def _image_of(self, value: Any) -> tuple[bytes | None, str | None]:
        return image_of(value)

    def rows(self, ctx: IngestContext) -> Iterator[dict[str, Any]]:
        side = int(self.store_side or settings.get("stored_image_side"))
        total = self.total if self.limit is None else min(self.limit, self.total or self.limit)
        bar = progress_bar(ctx.progress, total, "ingest", "row")
        it = iter(self.dataset)
        index = -1
        try:
            while self.limit is None or index + 1 < self.limit:
                try:
                    rec = next(it)
                except StopIteration:
                    break
                except Exception as exc:  # noqa: BLE001 - a stream that breaks keeps the rows so far
                    ctx.notes.append(
                        f"reading the dataset stopped after {index + 1} rows: {_short(exc)}; "
                        "run the same command again to continue"
                    )
                    break
                index += 1
                bar.update(1)
                raw_id = rec.get(self.id_column) if self.id_column else None
                item_id = str(raw_id) if raw_id not in (None, "") else f"{self.split}-{index}"
                if not ctx.claim(item_id):
                    continue
                row = self.plan.apply(rec)
                row["id"] = item_id
                if self.image_column:
                    value = rec.get(self.image_column)
                    where = value.get("path") if isinstance(value, dict) else value
                    try:
                        data, path = self._image_of(value)
                        if data is None:
                            raise BadImage("row has no image")
                        im = images.decode(data, max_side=side)
                    except BadImage as exc:
                        ctx.report.add(item_id, where if isinstance(where, str) else "", exc.message)
                        continue
                    row["image"] = {"bytes": images.encode_stored(im, side), "path": None}
                    row["image_path"] = path or f"{self.name}:{self.split}:{index}"
                yield row
        finally:
            bar.close()
