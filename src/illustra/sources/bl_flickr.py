"""Preset for the British Library Flickr Commons manifests (``--preset bl-flickr``).

The manifests are tab-separated without quoting, 25 columns (see the header). Real files also hold
a few thousand short rows of 13 fields in a different order (flickr_id, flickr_url,
book_identifier, title, first_author, pubplace, publisher, date, volume, page, image_idx,
ARK_id_of_book, BL_DLS_ID) and no image URLs: those are recovered by position as metadata-only
items and listed in the ingest report. Rows of any other shape are skipped and reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import SourceError
from .base import IngestContext, clean_cell, parse_year
from .manifest import ManifestSource, Pending, open_text

LICENCE = "Public domain (British Library, Flickr Commons)"
SIZES = ("small", "medium", "large", "original")
REQUIRED = ("flickr_id", "flickr_url", "title", "first_author", "date", "pubplace", "publisher")
SHORT_LAYOUT = (
    "flickr_id",
    "flickr_url",
    "book_identifier",
    "title",
    "first_author",
    "pubplace",
    "publisher",
    "date",
    "volume",
    "page",
    "image_idx",
    "ARK_id_of_book",
    "BL_DLS_ID",
)
EXTRA_FIELDS = [
    "book_identifier",
    "volume",
    "page",
    "image_idx",
    "flickr_id",
    "flickr_url",
    "ark_id",
    "image_url_small",
    "image_url_medium",
    "image_url_large",
    "image_url_original",
]
TEXT_FIELDS = ["title", "creator", "place", "publisher"]


def size_order(size: str) -> tuple[str, ...]:
    """The chosen size first, then larger ones, then smaller ones (tiny images have only 'original')."""
    i = SIZES.index(size)
    return (*SIZES[i:], *reversed(SIZES[:i]))


def to_row(rec: dict[str, str], size: str) -> dict[str, Any]:
    """One BL record (column name -> cell) as a collection row, without its image."""
    get = rec.get
    date = clean_cell(get("date"))
    urls = {s: clean_cell(get(f"flickr_{s}_source")) for s in SIZES}
    image_url = next((urls[s] for s in size_order(size) if urls[s]), None)
    flickr_id = clean_cell(get("flickr_id"))
    return {
        "id": flickr_id,
        "title": clean_cell(get("title")),
        "creator": clean_cell(get("first_author")),
        "date": date,
        "year": parse_year(date),
        "place": clean_cell(get("pubplace")),
        "publisher": clean_cell(get("publisher")),
        "source_url": clean_cell(get("flickr_url")),
        "licence": LICENCE,
        "book_identifier": clean_cell(get("book_identifier")),
        "volume": clean_cell(get("volume")),
        "page": clean_cell(get("page")),
        "image_idx": clean_cell(get("image_idx")),
        "flickr_id": flickr_id,
        "flickr_url": clean_cell(get("flickr_url")),
        "ark_id": clean_cell(get("ARK_id_of_book")),
        "image_url_small": urls["small"],
        "image_url_medium": urls["medium"],
        "image_url_large": urls["large"],
        "image_url_original": urls["original"],
        "image_path": image_url,
    }


class BLFlickrSource(ManifestSource):
    kind = "manifest"
    preset = "bl-flickr"

    def __init__(self, path: Any, *, size: str = "medium", **kwargs: Any) -> None:
        if size not in SIZES:
            raise SourceError(f"size must be one of {', '.join(SIZES)}, not {size!r}")
        self.size = size
        kwargs.setdefault("delimiter", "\t")
        super().__init__(path, **kwargs)
        self.text_fields = list(TEXT_FIELDS)

    def _setup(self, image_column: str | None, id_column: str | None) -> None:
        missing = [c for c in REQUIRED if c not in self.header]
        if missing:
            raise SourceError(
                f"{self.path} is not a BL Flickr manifest: no {', '.join(missing)} column(s) in its header"
            )
        self.image_column = None
        self.id_column = "flickr_id"
        self.extra_fields = list(EXTRA_FIELDS)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(image_column=f"flickr_{self.size}_source", size=self.size, licence=LICENCE)
        return out

    def _records(self, ctx: IngestContext) -> Iterator[Pending]:
        header = self.header
        width = len(header)
        where = str(self.path)
        # Split lines ourselves: the format has no quoting, and str.split is the fastest reader.
        with open_text(self.path, newline="\n") as fh:
            next(fh, None)
            for line_no, line in enumerate(fh, 2):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                fields = line.split("\t")
                if len(fields) == width:
                    if fields == header:
                        continue  # a header repeated where per-year files were concatenated
                    rec = dict(zip(header, fields, strict=True))
                elif len(fields) == len(SHORT_LAYOUT):
                    rec = dict(zip(SHORT_LAYOUT, fields, strict=True))
                    short_id = clean_cell(rec["flickr_id"]) or ""
                    if short_id.isdigit():
                        ctx.report.add(
                            short_id,
                            f"{where}:{line_no}",
                            f"short row: {len(fields)} fields instead of {width}, mapped by position; no image URLs",
                            "recovered",
                        )
                else:
                    ctx.report.add(
                        f"line-{line_no}",
                        f"{where}:{line_no}",
                        f"malformed row: {len(fields)} fields instead of {width}",
                    )
                    continue
                fid = clean_cell(rec.get("flickr_id"))
                if not fid or not fid.isdigit():
                    ctx.report.add(
                        f"line-{line_no}",
                        f"{where}:{line_no}",
                        f"malformed row: flickr_id {fid!r} is not a number",
                    )
                    continue
                row = to_row(rec, self.size)
                ref = row.get("image_path")
                yield Pending(row=row, ref=ref, line=line_no)
