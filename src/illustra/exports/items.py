"""What an export holds: the items of a result set (or a saved selection) with everything a file
needs about each: metadata, rank and score, and absolute links to its page, picture and thumbnail,
with the picture's size and media type."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PIL import Image

from ..errors import BadInput
from ..search.limits import MAX_EXPORT_ITEMS
from ..search.shape import is_web_url, public_metadata

if TYPE_CHECKING:
    from ..collection import Collection
    from ..search.types import Hit

FORMATS = ("csv", "iiif")
# A picture whose size cannot be read without fetching it (kept only as a URL) gets a canvas of
# this size; viewers fit the picture into it.
NOMINAL_SIDE = 1000
SERVED_MAX_SIDE = 4096  # unusual formats are re-encoded by the image route within this side
WEB_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}


def check_export_size(k: int) -> None:
    if k > MAX_EXPORT_ITEMS:
        raise BadInput(f"an export holds at most {MAX_EXPORT_ITEMS:,} items; {k:,} were asked for")
    if k < 1:
        raise BadInput(f"an export needs at least 1 item; {k} were asked for")


def check_format(fmt: str) -> str:
    text = (fmt or "").strip().lower()
    if text not in FORMATS:
        raise BadInput(f"the export format must be csv or iiif, got {fmt[:40]!r}")
    return text


@dataclass
class ExportItem:
    id: str
    rank: int
    score: float | None
    metadata: dict[str, Any]
    page_url: str
    image_url: str | None
    thumbnail_url: str | None
    width: int | None = None
    height: int | None = None
    media_type: str = "image/jpeg"

    @property
    def source_url(self) -> str:
        for name in ("source_url", "flickr_url"):
            value = self.metadata.get(name)
            if is_web_url(value):
                return str(value).strip()
        return ""


@dataclass
class ExportSet:
    """A result set ready to be written: its items, its permalink, and words describing it."""

    items: list[ExportItem]
    permalink: str | None  # absolute; None for a selection (each item's page is its link)
    title: str
    description: dict[str, str] = field(default_factory=dict)  # label -> value, for the file's header
    id_url: str = ""  # the address that produces this export (the IIIF manifest's id)


def _picture(collection: Collection, row: int) -> tuple[int | None, int | None, str, str | None]:
    """(width, height, media type, remote URL) of the picture as the image route serves it."""
    remote = collection.image_url(row)
    meta_w = meta_h = None
    if remote is not None:
        return meta_w, meta_h, "image/jpeg", remote
    data = collection.image_bytes(row)
    if not data:
        return None, None, "image/jpeg", None
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h, fmt = im.size[0], im.size[1], str(im.format or "")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None, None, "image/jpeg", None
    if fmt in WEB_TYPES:
        return w, h, WEB_TYPES[fmt], None
    scale = min(1.0, SERVED_MAX_SIDE / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale)), "image/jpeg", None


def _int_field(meta: dict[str, Any], name: str) -> int | None:
    try:
        value = int(str(meta.get(name) or "").strip())
    except ValueError:
        return None
    return value if value > 0 else None


def export_items(collection: Collection, hits: Sequence[Hit], base: str) -> list[ExportItem]:
    """Export items of ``hits`` with absolute links under ``base`` (the server's address)."""
    from ..api.urls import item_links

    out: list[ExportItem] = []
    for h in hits:
        links = item_links(h.id, base)
        row = h.row if h.row >= 0 else collection.row_of(h.id)
        has_image = collection.has_image(row)
        w, h_px, mime, remote = _picture(collection, row) if has_image else (None, None, "image/jpeg", None)
        meta = public_metadata(h.metadata)
        if w is None and has_image:
            w, h_px = _int_field(meta, "width"), _int_field(meta, "height")
        out.append(
            ExportItem(
                id=h.id,
                rank=h.rank,
                score=None if h.score is None else float(h.score),
                metadata=meta,
                page_url=links["page_url"],
                image_url=(remote or links["image_url"]) if has_image else None,
                thumbnail_url=links["thumbnail_url"] if has_image else None,
                width=w,
                height=h_px,
                media_type=mime,
            )
        )
    return out
