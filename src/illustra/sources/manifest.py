"""A CSV/TSV manifest (optionally gzip-compressed): one row per item, with an image path or URL.

The file is read as a stream, so a million-row manifest costs little memory. Local image paths
are resolved relative to the manifest and stored; http(s) URLs are kept in ``image_path`` and,
with downloading on, fetched by the bounded ``Downloader``. A row whose image cannot be had is
still ingested with its metadata (nothing is lost) and its image is filled in by a later re-run.
Rows that do not fit the header are skipped, counted and written to the ingest report.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from .. import images, settings
from ..errors import BadImage, SourceError
from .base import FieldPlan, IngestContext, ordered_map, progress_bar
from .downloader import DownloadConfig, Downloader

IMAGE_COLUMN_NAMES = (
    "image",
    "image_path",
    "image_url",
    "image_file",
    "file_name",
    "filename",
    "file",
    "path",
    "img",
)
ID_COLUMN_NAMES = ("id", "identifier", "item_id", "image_id", "record_id", "uid", "uuid")

# csv's default field limit (128 KB) would stop a whole ingest on one runaway field.
csv.field_size_limit(16 * 1024 * 1024)


def open_binary(path: Path) -> IO[bytes]:
    """The manifest's bytes; gzip is recognised by its magic bytes, not only by its name."""
    try:
        with path.open("rb") as fh:
            magic = fh.read(2)
        # The caller closes what is returned.
        return cast(IO[bytes], gzip.GzipFile(path, "rb") if magic == b"\x1f\x8b" else path.open("rb"))  # noqa: SIM115
    except OSError as exc:
        raise SourceError(f"cannot read manifest {path}: {exc.strerror or exc}") from None


def open_text(path: Path, newline: str = "") -> io.TextIOWrapper:
    """The manifest as text. ``newline=""`` suits the csv module; "\n" splits on line feeds only
    (a stray carriage return inside a field then stays in its row)."""
    # errors="replace": one badly encoded byte must not stop a long ingest.
    return io.TextIOWrapper(open_binary(path), encoding="utf-8-sig", errors="replace", newline=newline)


def delimiter_for(path: Path, first_line: str) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith((".tsv", ".tab")):
        return "\t"
    if name.endswith(".csv"):
        return ","
    counts = {d: first_line.count(d) for d in ("\t", ",", ";", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def count_lines(path: Path) -> int:
    """Data rows in the manifest (for the progress bar): newlines counted in bytes, not decoded."""
    n = 0
    with open_binary(path) as fh:
        while chunk := fh.read(1 << 20):
            n += chunk.count(b"\n")
    return max(0, n - 1)


@dataclass
class Pending:
    """A row on its way in, with the reference to its image (path or URL) still to resolve."""

    row: dict[str, Any]
    ref: str | None
    line: int


class ManifestSource:
    kind = "manifest"
    preset: str | None = None

    def __init__(
        self,
        path: str | Path,
        *,
        image_column: str | None = None,
        id_column: str | None = None,
        download: DownloadConfig | None = None,
        limit: int | None = None,
        workers: int | None = None,
        delimiter: str | None = None,
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise SourceError(f"manifest {path} does not exist")
        self.base_dir = self.path.parent
        self.download = download
        self.limit = limit
        self.workers = int(workers or settings.get("workers"))
        with open_text(self.path) as fh:
            first = fh.readline()
        if not first.strip():
            raise SourceError(f"manifest {path} is empty")
        self.delimiter = delimiter or delimiter_for(self.path, first)
        self.header = self._split_header(first)
        self.text_fields: list[str] | None = None
        self._setup(image_column, id_column)

    # -- format (overridden by presets) -----------------------------------------------------
    def _split_header(self, line: str) -> list[str]:
        return next(csv.reader([line.rstrip("\r\n")], **self._csv_args()))

    def _csv_args(self) -> dict[str, Any]:
        # Tab-separated manifests are written without quoting: a title that starts with a double
        # quote must not swallow the following fields.
        if self.delimiter == "\t":
            return {"delimiter": "\t", "quoting": csv.QUOTE_NONE}
        return {"delimiter": self.delimiter}

    def _setup(self, image_column: str | None, id_column: str | None) -> None:
        cols = self.header
        self.image_column = self._pick(cols, image_column, IMAGE_COLUMN_NAMES, "image")
        self.id_column = self._pick(cols, id_column, ID_COLUMN_NAMES, "id")
        self.plan = FieldPlan.from_columns(
            cols, consumed=[c for c in (self.image_column, self.id_column) if c]
        )
        self.extra_fields = self.plan.extra_fields

    @staticmethod
    def _pick(cols: list[str], wanted: str | None, names: tuple[str, ...], what: str) -> str | None:
        if wanted:
            if wanted not in cols:
                raise SourceError(
                    f"{what} column {wanted!r} is not in the manifest; columns are {', '.join(cols)}"
                )
            return wanted
        lowered = {c.strip().lower(): c for c in cols}
        for n in names:
            if n in lowered:
                return lowered[n]
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "preset": self.preset,
            "path": str(self.path),
            "image_column": self.image_column,
            "id_column": self.id_column,
            "download": self.download is not None,
        }

    def _records(self, ctx: IngestContext) -> Iterator[Pending]:
        """Rows of the manifest with their image reference; malformed rows are reported here."""
        width = len(self.header)
        stem = self.path.name.split(".")[0]
        with open_text(self.path) as fh:
            reader = csv.reader(fh, **self._csv_args())
            next(reader, None)
            n = 0
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    ctx.report.add(
                        f"line-{reader.line_num}", f"{self.path}:{reader.line_num}", f"malformed row: {exc}"
                    )
                    continue
                if not any(f.strip() for f in fields):
                    continue
                n += 1
                line = reader.line_num
                if len(fields) > width:
                    ctx.report.add(
                        f"line-{line}",
                        f"{self.path}:{line}",
                        f"malformed row: {len(fields)} fields, the header has {width}",
                    )
                    continue
                rec = dict(zip(self.header, fields, strict=False))
                if self.id_column:
                    item_id = (rec.get(self.id_column) or "").strip()
                    if not item_id:
                        ctx.report.add(f"line-{line}", f"{self.path}:{line}", "row has no id")
                        continue
                else:
                    item_id = f"{stem}-{n}"
                row = self.plan.apply(rec)
                row["id"] = item_id
                ref = (rec.get(self.image_column) or "").strip() if self.image_column else ""
                yield Pending(row=row, ref=ref or None, line=line)

    # -- rows -----------------------------------------------------------------------------
    def rows(self, ctx: IngestContext) -> Iterator[dict[str, Any]]:
        downloader = Downloader(self.download, ctx.root) if self.download is not None else None
        side = int(settings.get("stored_image_side"))

        def claimed() -> Iterator[Pending]:
            for count, p in enumerate(self._records(ctx)):
                if self.limit is not None and count >= self.limit:
                    return
                if ctx.claim(p.row["id"]):
                    yield p

        def needs_no_work(p: Pending) -> bool:
            return p.ref is None or ("://" in p.ref and downloader is None)

        def resolve(p: Pending) -> dict[str, Any]:
            row, ref = p.row, p.ref
            if ref is None:
                return row
            if downloader is not None and "://" in ref:
                # The downloader refuses schemes other than http(s) and logs it with the failures.
                row["image_path"] = ref
                row["image"] = downloader.fetch(row["id"], ref).image
                return row
            if is_url(ref):
                row["image_path"] = ref
                return row
            if "://" in ref:
                row["image_path"] = ref
                ctx.report.add(row["id"], ref, "unsupported URL scheme; only http and https", "no image")
                return row
            full = (self.base_dir / os.path.expanduser(ref)).resolve()
            row["image_path"] = str(full)
            try:
                im = images.open_image(full, max_side=side)
            except BadImage as exc:
                ctx.report.add(row["id"], str(full), exc.message, "no image")
                return row
            row["image"] = {"bytes": images.encode_stored(im), "path": None}
            return row

        workers = downloader.config.concurrency if downloader is not None else self.workers
        # The total gives downloads an ETA; a metadata-only run is too quick to need one.
        total = self.limit
        if total is None and (downloader is not None or self.path.stat().st_size < 20_000_000):
            total = count_lines(self.path)
        bar = progress_bar(ctx.progress, total, "ingest", "row")
        try:
            for i, row in enumerate(ordered_map(resolve, claimed(), workers=workers, inline=needs_no_work)):
                bar.update(1)
                if downloader is not None and i % 16 == 0:
                    c = downloader.counts
                    bar.set_postfix(
                        fetched=c["downloaded"], cached=c["cached"], failed=c["failed"], refresh=False
                    )
                yield row
        finally:
            bar.close()
            if downloader is not None:
                downloader.close()
                c = downloader.counts
                ctx.counts.update({f"download_{k}": v for k, v in c.items()})
                note = f"downloads: {c['downloaded']} fetched, {c['cached']} from cache, {c['failed']} failed"
                if c["failed"]:
                    note += (
                        f" (see {downloader.config.failures_path}; those items were kept without an image)"
                    )
                ctx.notes.append(note)


def is_url(ref: str) -> bool:
    low = ref[:8].lower()
    return low.startswith(("http://", "https://"))
