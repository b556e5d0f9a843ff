"""Preset for the British Library's digitised book illustrations on the Hub (``--preset bl-hub``).

``biglam/british-library-book-images`` (CC0, parquet) holds 1,080,814 crops from 49,455 books in
four image configs — ``embellishments`` (416,935 rows), ``plates`` (385,231), ``medium`` (217,100)
and ``covers`` (61,548) — plus a ``siglip2_embeddings`` config of vectors that this preset leaves
alone. Each image row has ``image``, ``date`` (a string, "Unknown" on about 5,300 rows), ``fname``
and ``image_type`` (the config's name).

``fname`` is ``{system number}_{volume}_{page}_{index}_{title}_{year}.jpg``; the first nine digits
are the BL system number, the ``book_identifier`` of the BL Flickr manifests. The four numbers
are written in the form those manifests use (see ``normal_key``), so an item of either source
about the same picture has the same ``book_identifier``/``volume``/``page``/``image_idx``, and
the numbers are compared as numbers (``000009`` meets ``9``) when joining with a manifest.

Everything is checked when the source is opened, before anything is written: the configs, the
split and the columns, each a one-line ``SourceError`` saying what was found and what was
expected. An ``fname`` that does not parse is counted and reported, never fatal.

``--join-manifest`` adds title, creator, place, publisher and the Flickr URLs from a BL Flickr
manifest; the manifest is held as sorted fixed-width keys and packed strings (about 100 bytes a
row), not as half a million dicts.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import images, settings
from ..errors import BadImage, SourceError
from .base import IngestContext, clean_cell, ordered_map, progress_bar
from .bl_flickr import REQUIRED as FLICKR_REQUIRED
from .bl_flickr import SHORT_LAYOUT, to_row
from .hub import _short, config_names, image_of, is_local, load, split_names
from .manifest import open_text

DATASET = "biglam/british-library-book-images"
IMAGE_CONFIGS = ("embellishments", "plates", "medium", "covers")
# Row counts of the published dataset, for choosing the image mode when the Hub does not say.
PUBLISHED_ROWS = {"embellishments": 416_935, "plates": 385_231, "medium": 217_100, "covers": 61_548}
REQUIRED_COLUMNS = ("image", "fname")
EXPECTED_COLUMNS = ("image", "fname", "date", "image_type")
# Years outside this range are catalogue errors in this dataset (about 2,150 dates after 1900):
# such items keep their date as written but get no year, and the collection card counts them.
YEAR_MIN = 1450
YEAR_MAX = 1900
IMAGE_MODES = ("thumbnails", "copy", "remote")
# Above this many rows the default is to store thumbnails rather than bounded copies.
THUMBNAILS_ABOVE = 100_000
LICENCE = "Public domain (CC0 1.0; British Library digitised books)"
EXTRA_FIELDS = ["book_identifier", "volume", "page", "image_idx", "image_type", "fname", "title_slug"]
JOIN_FIELDS = ["flickr_id", "flickr_url"]
TEXT_FIELDS = ["title", "creator", "place", "publisher"]
FLICKR_PAGE = "http://www.flickr.com/photos/britishlibrary/"
JOIN_COLUMNS = ("book_identifier", "volume", "page", "image_idx")

_DIGITS = re.compile(r"\d+")
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
_KEY = struct.Struct(">IIII")
_MAX_PART = 2**32 - 1


# -- fname ------------------------------------------------------------------------------------
def normal_key(book: int, volume: int, page: int, index: int) -> dict[str, str]:
    """The four numbers as the BL Flickr manifests write them: the system number in 9 digits, the
    volume "0" when there is none and otherwise 2 digits, the page in 6 digits, the index as is."""
    return {
        "book_identifier": f"{book:09d}",
        "volume": "0" if volume == 0 else f"{volume:02d}",
        "page": f"{page:06d}",
        "image_idx": str(index),
    }


@dataclass(frozen=True)
class ParsedName:
    key: tuple[int, int, int, int]  # book, volume, page, index
    title_slug: str | None
    year_text: str | None

    @property
    def fields(self) -> dict[str, str]:
        return normal_key(*self.key)


def parse_fname(fname: str) -> ParsedName | None:
    """``{system number}_{volume}_{page}_{index}_{title}_{year}.jpg``, or None when it is not.

    The title may itself hold underscores: the four numbers are read from the left and the year
    from the right. The system number has at most nine digits (shorter ones are zero-padded).
    """
    stem = os.path.basename(fname.strip())
    if stem.lower().endswith(_EXTENSIONS):
        stem = stem[: stem.rindex(".")]
    parts = stem.split("_")
    if len(parts) < 6:
        return None
    numbers = parts[:4]
    if not all(_DIGITS.fullmatch(p) for p in numbers) or len(numbers[0]) > 9:
        return None
    key = (int(numbers[0]), int(numbers[1]), int(numbers[2]), int(numbers[3]))
    title = "_".join(parts[4:-1]).strip() or None
    year = parts[-1].strip() or None
    return ParsedName(key=key, title_slug=title, year_text=year)


def item_id(config: str, fname: str, parsed: ParsedName | None) -> str:
    """Stable across re-ingests: the config and what the fname says, never the row's position."""
    if parsed is not None:
        f = parsed.fields
        return f"{config}/{f['book_identifier']}_{f['volume']}_{f['page']}_{f['image_idx']}"
    return f"{config}/x-{hashlib.sha1(fname.encode('utf-8')).hexdigest()[:16]}"


def year_of(date: str | None) -> tuple[int | None, str]:
    """The year of a ``date`` cell and why there is none: ("ok" | "unknown" | "out_of_range")."""
    if date is None or not date.strip() or date.strip().lower() == "unknown":
        return None, "unknown"
    m = _YEAR.search(date)
    if not m:
        return None, "unknown"
    year = int(m.group(1))
    if year < YEAR_MIN or year > YEAR_MAX:
        return None, "out_of_range"
    return year, "ok"


# -- the BL Flickr manifest, for --join-manifest ---------------------------------------------------
class _Packed:
    """Strings in one growing buffer with offsets: far lighter than a list of str objects."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.offsets = array("q", [0])

    def append(self, text: str | None) -> None:
        self.buf += (text or "").encode("utf-8")
        self.offsets.append(len(self.buf))

    def __getitem__(self, i: int) -> str | None:
        text = self.buf[self.offsets[i] : self.offsets[i + 1]].decode("utf-8")
        return text or None


class FlickrJoin:
    """A BL Flickr manifest (gzipped or not) indexed by (book, volume, page, index) as numbers.

    Book-level metadata (title, creator, place, publisher) is kept once per distinct value; each
    picture keeps a 16-byte key, its Flickr id and its URLs packed into shared buffers.
    """

    def __init__(self, path: str | Path, size: str = "medium") -> None:
        import numpy as np

        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise SourceError(f"manifest {path} does not exist")
        with open_text(self.path, newline="\n") as fh:
            header = fh.readline().rstrip("\r\n").split("\t")
            needed = [*FLICKR_REQUIRED, *JOIN_COLUMNS]
            missing = [c for c in needed if c not in header]
            if missing:
                raise SourceError(
                    f"{path} is not a BL Flickr manifest: no {', '.join(missing)} column(s) in its header "
                    f"(found {', '.join(c for c in header[:30] if c) or 'nothing'})"
                )
            keys = bytearray()
            books: dict[tuple[str | None, ...], int] = {}
            book_rows = array("i")
            flickr_ids = array("q")
            self.page_urls = _Packed()
            self.image_urls = _Packed()
            self.unusable = 0
            width = len(header)
            for line in fh:
                fields = line.rstrip("\r\n").split("\t")
                if len(fields) == width:
                    if fields == header:
                        continue
                    rec = dict(zip(header, fields, strict=True))
                elif len(fields) == len(SHORT_LAYOUT):
                    rec = dict(zip(SHORT_LAYOUT, fields, strict=True))
                else:
                    if line.strip():
                        self.unusable += 1
                    continue
                try:
                    parts = [int(str(rec.get(c) or "").strip()) for c in JOIN_COLUMNS]
                except ValueError:
                    self.unusable += 1
                    continue
                if any(p < 0 or p > _MAX_PART for p in parts):
                    self.unusable += 1
                    continue
                row = to_row(rec, size)
                book = (row["title"], row["creator"], row["place"], row["publisher"])
                keys += _KEY.pack(*parts)
                book_rows.append(books.setdefault(book, len(books)))
                fid = row["flickr_id"] or ""
                flickr_ids.append(int(fid) if fid.isdigit() else -1)
                page_url = row["flickr_url"]
                # Most page URLs are the Flickr id on the BL's photostream: kept as nothing.
                self.page_urls.append(None if page_url == f"{FLICKR_PAGE}{fid}" else page_url)
                self.image_urls.append(row["image_path"])
        self.books = list(books)
        all_keys = np.frombuffer(bytes(keys), dtype="S16")
        self.order = np.argsort(all_keys, kind="stable")
        self.keys = all_keys[self.order]
        self.book_rows = np.frombuffer(book_rows, dtype=np.int32) if book_rows else np.zeros(0, np.int32)
        self.flickr_ids = np.frombuffer(flickr_ids, dtype=np.int64) if flickr_ids else np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self.keys)

    def lookup(self, key: tuple[int, int, int, int]) -> dict[str, Any] | None:
        """The manifest's fields for one picture, or None when the manifest does not have it."""
        import numpy as np

        if any(p < 0 or p > _MAX_PART for p in key) or not len(self.keys):
            return None
        probe = np.array([_KEY.pack(*key)], dtype="S16")
        pos = int(np.searchsorted(self.keys, probe[0]))
        if pos >= len(self.keys) or self.keys[pos] != probe[0]:
            return None
        i = int(self.order[pos])
        title, creator, place, publisher = self.books[int(self.book_rows[i])]
        fid = int(self.flickr_ids[i])
        flickr_id = str(fid) if fid >= 0 else None
        page_url = self.page_urls[i] or (f"{FLICKR_PAGE}{flickr_id}" if flickr_id else None)
        return {
            "title": title,
            "creator": creator,
            "place": place,
            "publisher": publisher,
            "flickr_id": flickr_id,
            "flickr_url": page_url,
            "image_url": self.image_urls[i],
        }


# -- the source -------------------------------------------------------------------------------
@dataclass
class _Config:
    name: str
    dataset: Any
    columns: list[str]
    total: int | None
    has_date: bool
    has_type: bool


@dataclass
class _Pending:
    row: dict[str, Any]
    image: Any  # the undecoded image cell, or None in remote mode
    where: str
    # Counted once the item is known to go in: "year_unknown", "join_matched", "fname_unparsed"...
    tags: list[str]


def parse_configs(text: str | None) -> list[str] | None:
    """``--config plates,embellishments`` as a list (None: every image config found)."""
    if text is None:
        return None
    names = [c.strip() for c in text.split(",") if c.strip()]
    return list(dict.fromkeys(names)) or None


class BLHubSource:
    kind = "hub"
    preset = "bl-hub"

    def __init__(
        self,
        name: str = DATASET,
        *,
        configs: list[str] | str | None = None,
        split: str = "train",
        streaming: bool = True,
        images_mode: str | None = None,
        join_manifest: str | Path | None = None,
        size: str = "medium",
        limit: int | None = None,
        cache_dir: str | None = None,
        workers: int | None = None,
    ) -> None:
        if images_mode is not None and images_mode not in IMAGE_MODES:
            raise SourceError(f"--images must be one of {', '.join(IMAGE_MODES)}, not {images_mode!r}")
        if images_mode == "remote" and join_manifest is None:
            raise SourceError(
                f"--images remote needs --join-manifest: {name} holds no image URLs, only a BL Flickr "
                "manifest gives them (or use --images thumbnails or copy)"
            )
        self.name = name
        self.split = split
        self.streaming = streaming
        self.limit = limit
        self.workers = int(workers or settings.get("workers"))
        self.notes: list[str] = []
        wanted = parse_configs(configs) if isinstance(configs, str) else (list(configs) if configs else None)
        self.configs = self._open_configs(wanted, cache_dir, images_mode == "remote")
        known = [c.total for c in self.configs]
        self.total: int | None = sum(t for t in known if t is not None) if None not in known else None
        if images_mode is None:
            images_mode = "thumbnails" if self.total is None or self.total > THUMBNAILS_ABOVE else "copy"
            size_text = f"{self.total} rows" if self.total is not None else "an unknown number of rows"
            self.notes.append(f"images: {images_mode} (the default for {size_text}; see --images)")
        self.images_mode = images_mode
        self.store_side = int(
            settings.get("thumbnail_store_side" if images_mode == "thumbnails" else "stored_image_side")
        )
        self.join = FlickrJoin(join_manifest, size) if join_manifest is not None else None
        self.size = size
        self.extra_fields = list(EXTRA_FIELDS) + (list(JOIN_FIELDS) if self.join is not None else [])
        self.text_fields: list[str] | None = list(TEXT_FIELDS)

    # -- checks ---------------------------------------------------------------------------------
    def _open_configs(self, wanted: list[str] | None, cache_dir: str | None, remote: bool) -> list[_Config]:
        found = config_names(self.name)
        data_dirs: dict[str, str] = {}
        if found == ["default"] and is_local(self.name):
            # A folder without a README configs header: one sub-folder of parquet files per config.
            root = Path(os.path.expanduser(self.name))
            folders = sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.rglob("*.parquet")))
            if folders:
                data_dirs = {f: f for f in folders}
                found = folders
        expected = ", ".join(IMAGE_CONFIGS)
        if wanted:
            unknown = [c for c in wanted if c not in found]
            if unknown:
                raise SourceError(
                    f"{self.name} has no config {', '.join(repr(c) for c in unknown)}; configs found: "
                    f"{', '.join(found) or 'none'} (bl-hub expects {expected})"
                )
            chosen = wanted
        else:
            chosen = [c for c in IMAGE_CONFIGS if c in found]
            if not chosen:
                raise SourceError(
                    f"{self.name} has none of the configs bl-hub expects ({expected}); configs found: "
                    f"{', '.join(found) or 'none'}; name them with --config"
                )
            missing = [c for c in IMAGE_CONFIGS if c not in found]
            if missing:
                self.notes.append(
                    f"configs {', '.join(missing)} are not in {self.name}; ingesting {', '.join(chosen)}"
                )
        return [self._open_config(c, data_dirs.get(c), cache_dir, remote) for c in chosen]

    def _open_config(self, config: str, data_dir: str | None, cache_dir: str | None, remote: bool) -> _Config:
        import datasets

        cfg_arg = None if data_dir else config
        splits = split_names(self.name, cfg_arg, data_dir=data_dir)
        if self.split not in splits:
            raise SourceError(
                f"config {config!r} of {self.name} has no split {self.split!r}; splits found: "
                f"{', '.join(splits) or 'none'}"
            )
        ds = load(
            self.name,
            cfg_arg,
            split=self.split,
            streaming=self.streaming,
            cache_dir=cache_dir,
            data_dir=data_dir,
        )
        features = ds.features
        if features is None:
            ds = ds._resolve_features()
            features = ds.features
        columns = list(features or {})
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise SourceError(
                f"config {config!r} of {self.name} has no {', '.join(repr(c) for c in missing)} column; "
                f"columns found: {', '.join(columns) or 'none'}; bl-hub expects {', '.join(EXPECTED_COLUMNS)}"
            )
        has_date = "date" in columns
        if not has_date:
            self.notes.append(
                f"config {config!r} has no 'date' column (columns: {', '.join(columns)}): years come from fname"
            )
        if remote:
            ds = ds.select_columns([c for c in columns if c != "image"])
        elif isinstance(features["image"], datasets.Image):
            # Undecoded bytes: decoding is ours, through the one safe decoder.
            ds = ds.cast_column("image", datasets.Image(decode=False))
        total = self._rows_in(ds, config, cfg_arg, data_dir)
        return _Config(config, ds, columns, total, has_date, "image_type" in columns)

    def _rows_in(self, ds: Any, config: str, cfg_arg: str | None, data_dir: str | None) -> int | None:
        try:
            if ds.info.splits and self.split in ds.info.splits:
                n = ds.info.splits[self.split].num_examples
                if n:
                    return int(n)
        except (AttributeError, KeyError, TypeError):
            pass
        if is_local(self.name):
            return _local_parquet_rows(self.name, cfg_arg, self.split, data_dir)
        if self.name == DATASET and self.split == "train":
            return PUBLISHED_ROWS.get(config)
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "preset": self.preset,
            "name": self.name,
            "config": ",".join(c.name for c in self.configs),
            "split": self.split,
            "images": self.images_mode,
            "join_manifest": str(self.join.path) if self.join is not None else None,
            "licence": LICENCE,
        }

    # -- rows -----------------------------------------------------------------------------------
    def _records(self, ctx: IngestContext, stats: Counter[str], bad_names: list[str]) -> Iterator[_Pending]:
        read = 0
        for cfg in self.configs:
            it = iter(cfg.dataset)
            while self.limit is None or read < self.limit:
                try:
                    rec = next(it)
                except StopIteration:
                    break
                except Exception as exc:  # noqa: BLE001 - a stream that breaks keeps the rows so far
                    ctx.notes.append(
                        f"reading config {cfg.name!r} stopped after {stats['read_' + cfg.name]} rows: "
                        f"{_short(exc)}; run the same command again to continue"
                    )
                    break
                read += 1
                stats["read_" + cfg.name] += 1
                pending = self._row(cfg, rec, ctx, stats, bad_names)
                if pending is not None:
                    yield pending

    def _row(
        self,
        cfg: _Config,
        rec: dict[str, Any],
        ctx: IngestContext,
        stats: Counter[str],
        bad_names: list[str],
    ) -> _Pending | None:
        fname = clean_cell(str(rec.get("fname") or "")) or ""
        parsed = parse_fname(fname) if fname else None
        rid = item_id(cfg.name, fname or f"row-{stats['read_' + cfg.name]}", parsed)
        where = f"{self.name}:{cfg.name}/{fname}"
        if not ctx.claim(rid):
            return None
        tags = [] if parsed is not None else ["fname_unparsed"]
        raw_date = clean_cell(str(rec["date"])) if cfg.has_date and rec.get("date") is not None else None
        if raw_date is None and parsed is not None:
            raw_date = parsed.year_text
        year, why = year_of(raw_date)
        if why != "ok":
            tags.append(f"year_{why}")
        row: dict[str, Any] = {
            "id": rid,
            "title": parsed.title_slug if parsed else None,
            "date": None if why == "unknown" else raw_date,
            "year": year,
            "licence": LICENCE,
            "image_type": (clean_cell(str(rec.get("image_type") or "")) if cfg.has_type else None)
            or cfg.name,
            "fname": fname or None,
            "title_slug": parsed.title_slug if parsed else None,
            "image_path": where,
        }
        if parsed is not None:
            row.update(parsed.fields)
        if self.join is not None:
            match = self.join.lookup(parsed.key) if parsed is not None else None
            if match is None:
                tags.append("join_unmatched")
            else:
                tags.append("join_matched")
                for f in ("title", "creator", "place", "publisher", "flickr_id", "flickr_url"):
                    if match[f]:
                        row[f] = match[f]
                row["source_url"] = match["flickr_url"]
                if match["image_url"]:
                    row["image_path"] = match["image_url"]
        if self.images_mode == "remote":
            if "://" not in row["image_path"]:
                ctx.report.add(rid, where, "no image URL: not in the joined manifest", "no image")
                row["image_path"] = None
            return _Pending(row, None, where, tags)
        return _Pending(row, rec.get("image"), where, tags)

    def rows(self, ctx: IngestContext) -> Iterator[dict[str, Any]]:
        stats: Counter[str] = Counter()
        bad_names: list[str] = []
        side = self.store_side
        remote = self.images_mode == "remote"

        def resolve(p: _Pending) -> tuple[dict[str, Any], _Pending, str | None]:
            if remote:
                return p.row, p, None
            try:
                data, _ = image_of(p.image)
                if data is None:
                    raise BadImage("row has no image")
                im = images.decode(data, max_side=side)
            except BadImage as exc:
                return p.row, p, exc.message
            p.row["image"] = {"bytes": images.encode_stored(im, side), "path": None}
            p.image = None
            return p.row, p, None

        total = self.total if self.limit is None else min(self.limit, self.total or self.limit)
        bar = progress_bar(ctx.progress, total, "ingest", "row")
        ctx.notes.extend(self.notes)
        try:
            records = self._records(ctx, stats, bad_names)
            for row, p, error in ordered_map(resolve, records, workers=self.workers, inline=lambda _: remote):
                bar.update(1)
                if error is not None:
                    ctx.report.add(row["id"], p.where, error)
                    continue
                stats.update(p.tags)
                if "fname_unparsed" in p.tags:
                    if len(bad_names) < 5:
                        bad_names.append(row["fname"] or "")
                    ctx.report.add(
                        row["id"],
                        p.where,
                        "fname does not parse: not {system number}_{volume}_{page}_{index}_{title}_{year}; "
                        "kept without book, volume, page and index",
                        "recovered",
                    )
                yield row
        finally:
            bar.close()
            self._finish(ctx, stats, bad_names)

    def _finish(self, ctx: IngestContext, stats: Counter[str], bad_names: list[str]) -> None:
        unknown, out_of_range = stats["year_unknown"], stats["year_out_of_range"]
        unparsed = stats["fname_unparsed"]
        ctx.entry.update(
            year_range=f"{YEAR_MIN}-{YEAR_MAX}",
            year_unknown=unknown,
            year_out_of_range=out_of_range,
            fname_unparsed=unparsed,
        )
        if bad_names:
            ctx.entry["fname_unparsed_examples"] = list(bad_names)
        if unknown or out_of_range:
            ctx.notes.append(
                f"years: {unknown} items with an unknown date, {out_of_range} with a date outside "
                f"{YEAR_MIN}-{YEAR_MAX} (catalogue errors); they have no year"
            )
        if unparsed:
            examples = ", ".join(repr(n) for n in bad_names[:3])
            ctx.notes.append(
                f"{unparsed} fnames did not parse (e.g. {examples}); their items were kept without "
                f"book, volume, page and index (see {ctx.report.path})"
            )
        if self.join is not None:
            matched, unmatched = stats["join_matched"], stats["join_unmatched"]
            ctx.entry.update(join_matched=matched, join_unmatched=unmatched)
            ctx.notes.append(
                f"joined with {self.join.path.name}: {matched} items matched, {unmatched} did not"
            )


def _local_parquet_rows(name: str, config: str | None, split: str, data_dir: str | None) -> int | None:
    """Rows in a local dataset's parquet files, from their footers (no data is read)."""
    import datasets
    import pyarrow.parquet as pq

    try:
        builder = datasets.load_dataset_builder(
            os.path.abspath(os.path.expanduser(name)), config, data_dir=data_dir
        )
        files = (builder.config.data_files or {}).get(split) or []
        if not files or not all(str(f).endswith(".parquet") for f in files):
            return None
        return sum(pq.ParquetFile(str(f)).metadata.num_rows for f in files)
    except Exception:  # noqa: BLE001 - only a count for choosing defaults
        return None
