"""IIIF Presentation 3 manifest of a result set, built with the maintained ``iiif-prezi3`` library:
one canvas per item with a picture, sized as the picture, painted by an annotation pointing at the
item's image URL; the item's metadata as label/value pairs; the search's permalink as the
manifest's ``homepage`` (each item's page as its canvas's). Items without a picture (catalogue
entries) cannot be shown by a viewer: they are left out and counted in the manifest's summary.

``iiif-prezi3`` only fetches anything in helpers that read remote IIIF images
(``create_canvas_from_iiif``, ``set_hwd_from_iiif``), which are not used here: sizes come from the
collection's own copies.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .items import NOMINAL_SIDE, ExportItem, ExportSet

METADATA_FIELDS = [
    ("title", "Title"),
    ("creator", "Creator"),
    ("date", "Date"),
    ("place", "Place"),
    ("publisher", "Publisher"),
    ("licence", "Licence"),
]


def _lang(text: str, lang: str = "none") -> dict[str, list[str]]:
    return {lang: [text]}


def _pairs(pairs: list[tuple[str, str]]) -> list[Any]:
    from iiif_prezi3 import KeyValueString

    return [KeyValueString(label=_lang(k, "en"), value=_lang(v)) for k, v in pairs if v]


def _item_pairs(item: ExportItem) -> list[tuple[str, str]]:
    m = item.metadata
    pairs = [(label, str(m.get(name) or "").strip()) for name, label in METADATA_FIELDS]
    if not m.get("date") and m.get("year") is not None:
        pairs[2] = ("Date", str(m["year"]))
    pairs += [
        ("Identifier", item.id),
        ("Source", item.source_url),
        ("Rank", str(item.rank)),
        ("Score", "" if item.score is None else f"{item.score:.6f}"),
    ]
    if item.width is None:
        pairs.append(("Picture size", "unknown (the picture is kept only at its source)"))
    return pairs


def build_manifest(export: ExportSet, base: str) -> Any:
    """The manifest as an ``iiif_prezi3.Manifest`` (``.json()`` writes it)."""
    from iiif_prezi3 import Canvas, Manifest

    digest = hashlib.sha256(export.id_url.encode("utf-8")).hexdigest()[:16]
    prefix = f"{base}/iiif/{digest}"
    shown = [i for i in export.items if i.image_url]
    left_out = len(export.items) - len(shown)
    summary = f"{len(shown):,} pictures"
    if left_out:
        summary += f"; {left_out:,} catalogue entries without a picture are not included"
    manifest: dict[str, Any] = {
        "id": export.id_url,
        "label": _lang(export.title, "en"),
        "summary": _lang(summary, "en"),
        "metadata": _pairs(list(export.description.items())),
    }
    if export.permalink:
        manifest["homepage"] = [
            {"id": export.permalink, "type": "Text", "label": _lang("This search on the collection's site", "en"),
             "format": "text/html"}
        ]
    canvases = []
    for item in shown:
        w = item.width or NOMINAL_SIDE
        h = item.height or NOMINAL_SIDE
        canvas = Canvas(
            id=f"{prefix}/canvas/{item.rank}",
            label=_lang(str(item.metadata.get("title") or item.id)),
            width=w,
            height=h,
            metadata=_pairs(_item_pairs(item)),
            homepage=[{"id": item.page_url, "type": "Text", "label": _lang("The item's page", "en"),
                       "format": "text/html"}],
            thumbnail=[{"id": item.thumbnail_url, "type": "Image", "format": "image/jpeg"}],
        )
        canvas.add_image(
            image_url=item.image_url,
            anno_page_id=f"{prefix}/page/{item.rank}",
            anno_id=f"{prefix}/annotation/{item.rank}",
            format=item.media_type,
            width=w,
            height=h,
        )
        canvases.append(canvas)
    return Manifest(items=canvases, **manifest)


def to_iiif(export: ExportSet, base: str) -> str:
    return str(build_manifest(export, base).json(indent=1))
