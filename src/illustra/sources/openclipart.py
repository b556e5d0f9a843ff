"""Open Clip Art: Debian's ``openclipart-png`` + ``openclipart-svg`` packages as a collection.

Item id: the PNG's path with symlinks resolved, relative to the PNG root, without ``.png`` (the
package's 8,121 PNG paths are 6,900 distinct files; the rest are symlinks into other folders).
Metadata comes from the Dublin Core block in the matching SVG's RDF metadata: ``dc:title``,
``dc:description``, ``dc:subject`` keywords, ``dc:creator``, ``dc:date`` and the licence. The SVG is
read with a streaming expat parser that refuses external and nested entities (so no file or network
access and no entity expansion bombs) and stops as soon as the RDF block ends.

``OpenClipArtSource`` is a source like the others: the one ingest driver (``sources.base.ingest``)
streams its rows into the collection, and the build pipeline (``illustra.pipeline``) knows a
finished ingest from its manifest entry. PNGs go through the one safe decoder (``images``), which
shrinks gigantic files in bounded memory.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET
from xml.parsers import expat

from .. import images, settings
from ..errors import BadImage, SourceError
from .base import IngestContext, ordered_map, parse_year, progress_bar

PACKAGES = ("openclipart-png", "openclipart-svg")

SOURCE_KIND = "openclipart"
EXTRA_FIELDS = ["description", "keywords", "category", "folder", "svg_path"]
TEXT_FIELDS = ["title", "description", "keywords"]
PUBLISHER = "Open Clip Art Library"
# The Debian package dedicates every image to the public domain; used when an SVG names no licence.
PACKAGE_LICENCE = "http://creativecommons.org/licenses/publicdomain/"

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC = "http://purl.org/dc/elements/1.1/"
CC_NAMESPACES = ("http://web.resource.org/cc/", "http://creativecommons.org/ns#")

# Entity limits: Illustrator SVGs declare a dozen short namespace entities; anything beyond this
# (or any entity that refers to another entity) is treated as hostile.
_MAX_ENTITIES = 64
_MAX_ENTITY_CHARS = 2_000
_READ_CHUNK = 64 * 1024
# A metadata block bigger than this is not metadata; stop rather than buffer it.
_MAX_METADATA_BYTES = 4_000_000


def package_dir() -> Path:
    """Where the packages put their ``png/`` and ``svg/`` folders (setting ``openclipart_dir``)."""
    return Path(str(settings.get("openclipart_dir")))


def default_png_root() -> Path:
    return package_dir() / "png"


def default_svg_root() -> Path:
    return package_dir() / "svg"


# -- SVG metadata -------------------------------------------------------------------------------
@dataclass
class SvgMetadata:
    title: str = ""
    description: str = ""
    keywords: list[str] = field(default_factory=list)
    creator: str = ""
    date: str = ""
    licence: str = ""


@dataclass
class _ParseState:
    depth: int = 0
    entities: int = 0
    bytes: int = 0
    root: ET.Element | None = None


class _Done(Exception):
    """Raised inside the parser callbacks once the RDF block has been read."""


def _qname(name: str) -> str:
    # expat reports "namespace-uri local" with namespace_separator=" "; ElementTree wants "{uri}local".
    if " " in name:
        uri, local = name.split(" ", 1)
        return "{" + uri + "}" + local
    return name


def _parse_rdf(chunks: Iterator[bytes]) -> ET.Element | None:
    """The first ``rdf:RDF`` element of an XML document as an ElementTree, or None if it has none."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    builder = ET.TreeBuilder()
    state = _ParseState()
    rdf_tag = "{" + RDF + "}RDF"

    def entity_decl(
        name: str,
        is_parameter: int,
        value: str | None,
        base: str | None,
        system_id: str | None,
        public_id: str | None,
        notation: str | None,
    ) -> None:
        state.entities += 1
        if is_parameter or system_id or public_id or notation:
            raise SourceError(f"SVG declares an external or parameter entity {name!r}; refused")
        if value is None or "&" in value or "%" in value or len(value) > _MAX_ENTITY_CHARS:
            raise SourceError(f"SVG declares an oversized or nested entity {name!r}; refused")
        if state.entities > _MAX_ENTITIES:
            raise SourceError("SVG declares too many entities; refused")

    def external_ref(*_args: Any) -> int:
        raise SourceError("SVG refers to an external entity; refused")

    def start(name: str, attrs: dict[str, str]) -> None:
        tag = _qname(name)
        if state.depth == 0 and tag != rdf_tag:
            return
        state.depth += 1
        builder.start(tag, {_qname(k): v for k, v in attrs.items()})

    def end(name: str) -> None:
        if state.depth == 0:
            return
        state.depth -= 1
        el = builder.end(_qname(name))
        if state.depth == 0:
            state.root = el
            raise _Done

    def data(text: str) -> None:
        if state.depth:
            builder.data(text)

    parser.EntityDeclHandler = entity_decl
    parser.ExternalEntityRefHandler = external_ref
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    try:
        for chunk in chunks:
            parser.Parse(chunk, False)
            if state.depth:
                state.bytes += len(chunk)
                if state.bytes > _MAX_METADATA_BYTES:
                    raise SourceError("SVG metadata block is too large")
        parser.Parse(b"", True)
    except _Done:
        pass
    except expat.ExpatError as exc:
        raise SourceError(f"malformed SVG: {exc}") from exc
    except RecursionError as exc:
        raise SourceError("malformed SVG: nested too deeply") from exc
    return state.root


def _text(el: ET.Element | None) -> str:
    if el is None:
        return ""
    return " ".join("".join(el.itertext()).split())


def _children(el: ET.Element, local: str, namespaces: tuple[str, ...] = (DC,)) -> list[ET.Element]:
    return [c for c in el if any(c.tag == "{" + ns + "}" + local for ns in namespaces)]


def _agent_name(el: ET.Element | None) -> str:
    """``dc:creator`` is usually ``cc:Agent/dc:title``, sometimes plain text."""
    if el is None:
        return ""
    for agent in el.iter():
        if agent is not el and agent.tag.endswith("}Agent"):
            return _text(next(iter(_children(agent, "title")), None))
    return _text(el)


def _licence(rdf: ET.Element, work: ET.Element) -> str:
    res = "{" + RDF + "}resource"
    about = "{" + RDF + "}about"
    for lic in _children(work, "license", CC_NAMESPACES):
        value = (lic.get(res) or _text(lic)).strip()
        if value:
            return value
    for lic in _children(rdf, "License", CC_NAMESPACES):
        value = (lic.get(about) or "").strip()
        if value:
            return value
    return ""


def parse_svg_metadata(chunks: Iterator[bytes] | bytes | str) -> SvgMetadata | None:
    """Dublin Core metadata of an SVG (bytes, text, or an iterator of byte chunks).

    Returns None when the SVG has no RDF metadata; raises ``SourceError`` when it is malformed or
    declares entities that could read files or expand without bound.
    """
    if isinstance(chunks, str):
        chunks = chunks.encode("utf-8")
    if isinstance(chunks, bytes):
        chunks = iter([chunks])
    rdf = _parse_rdf(chunks)
    if rdf is None:
        return None
    works = [el for el in rdf if el.tag in {"{" + ns + "}Work" for ns in CC_NAMESPACES}]
    # Some SVGs put the Dublin Core elements in an rdf:Description instead of a cc:Work.
    works += [el for el in rdf if el.tag == "{" + RDF + "}Description"]
    work = works[0] if works else rdf
    keywords: list[str] = []
    for subject in _children(work, "subject"):
        items = [li for li in subject.iter() if li.tag == "{" + RDF + "}li"]
        if items:
            keywords.extend(_text(li) for li in items)
        else:
            # Plain-text subjects separate keywords with commas or semicolons.
            keywords.extend(re.split(r"[,;]", _text(subject)))
    keywords = list(dict.fromkeys(k.strip() for k in keywords if k.strip()))
    return SvgMetadata(
        title=_text(next(iter(_children(work, "title")), None)),
        description=clean_description(_text(next(iter(_children(work, "description")), None))),
        keywords=keywords,
        creator=_agent_name(next(iter(_children(work, "creator")), None)),
        date=_text(next(iter(_children(work, "date")), None)),
        licence=_licence(rdf, work),
    )


# Descriptions that say nothing about the picture: an editor's signature or a bare e-mail address.
_BOILERPLATE = re.compile(
    r"^(?:(?:created|made|drawn|done) (?:with|in|using) (?:inkscape|sodipodi|illustrator)[\w .]*|"
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+)$",
    re.IGNORECASE,
)


def clean_description(text: str) -> str:
    return "" if _BOILERPLATE.match(text.strip()) else text


def read_svg_metadata(path: str | Path) -> SvgMetadata | None:
    """``parse_svg_metadata`` on a file, read in chunks so big SVGs stop at the metadata block."""

    def chunks() -> Iterator[bytes]:
        with open(path, "rb") as fh:
            while block := fh.read(_READ_CHUNK):
                yield block

    try:
        return parse_svg_metadata(chunks())
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from exc


def title_from_filename(stem: str) -> str:
    """``gatto_cat_architetto_fra_01`` -> ``Gatto cat architetto fra``: the fallback title."""
    words = re.sub(r"[_\-.]+", " ", stem).split()
    while len(words) > 1 and words[-1].isdigit():
        words.pop()
    text = " ".join(words)
    return text[:1].upper() + text[1:] if text else stem


# -- listing ------------------------------------------------------------------------------------
def list_images(png_root: str | Path | None = None) -> list[tuple[str, Path]]:
    """Distinct ``(id, resolved path)`` of every PNG under ``png_root``, sorted by id.

    Symlinks are resolved and deduplicated; links that point outside ``png_root`` are ignored.
    """
    root = Path(png_root) if png_root is not None else default_png_root()
    if not root.is_dir():
        raise SourceError(f"{root} does not exist; install it with 'apt-get install {' '.join(PACKAGES)}'")
    real_root = Path(os.path.realpath(root))
    found: dict[str, Path] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if not name.lower().endswith(".png"):
                continue
            real = Path(os.path.realpath(os.path.join(dirpath, name)))
            try:
                rel = real.relative_to(real_root)
            except ValueError:
                continue
            if real.is_file():
                found.setdefault(rel.as_posix()[: -len(".png")], real)
    return sorted(found.items())


def select(items: list[tuple[str, Path]], limit: int | None) -> list[tuple[str, Path]]:
    """Up to ``limit`` items spread evenly over the sorted list (so every folder is represented);
    the same limit always gives the same items, which is what makes a limited ingest resumable."""
    if limit is None or limit >= len(items):
        return items
    if limit <= 0:
        return []
    n = len(items)
    return [items[(i * n) // limit] for i in range(limit)]


# -- rows ---------------------------------------------------------------------------------------
def _image_failure_kind(reason: str) -> str:
    if "pixel limit" in reason or "decompression bomb" in reason:
        return "over the pixel budget"
    if "byte limit" in reason:
        return "over the file size limit"
    return reason.split(":")[0][:60]


def make_row(
    item_id: str, png_path: Path, svg_root: Path, max_side: int
) -> tuple[dict[str, Any] | None, str, str]:
    """One collection row (None when the image cannot be decoded), the kind of problem to count
    ("" when none) and its full reason."""
    try:
        im = images.open_image(png_path, max_side=max_side)
        jpeg = images.encode_stored(im, max_side=max_side)
    except BadImage as exc:
        return None, "image:" + _image_failure_kind(exc.message), exc.message
    candidate = svg_root / (item_id + ".svg")
    svg_path = candidate if candidate.is_file() else None
    meta: SvgMetadata | None = None
    problem = reason = ""
    if svg_path is None:
        problem, reason = "missing_svg", "no matching SVG"
    else:
        try:
            meta = read_svg_metadata(svg_path)
            if meta is None:
                problem, reason = "no_metadata", "SVG has no RDF metadata"
        except SourceError as exc:
            problem, reason = "metadata_failures", exc.message
    meta = meta or SvgMetadata()
    folder = item_id.rsplit("/", 1)[0] if "/" in item_id else ""
    row = {
        "id": item_id,
        "image": {"bytes": jpeg, "path": None},
        "image_path": str(png_path),
        "title": meta.title or title_from_filename(item_id.rsplit("/", 1)[-1]),
        "description": meta.description,
        "keywords": ", ".join(meta.keywords),
        "creator": meta.creator,
        "date": meta.date,
        "year": parse_year(meta.date),
        "publisher": PUBLISHER,
        "licence": meta.licence or PACKAGE_LICENCE,
        "category": folder.split("/", 1)[0] if folder else "",
        "folder": folder,
        "svg_path": str(svg_path) if svg_path is not None else "",
    }
    return row, problem, reason


# -- the source ---------------------------------------------------------------------------------
class OpenClipArtSource:
    """The Debian packages' images (all, or ``limit`` spread evenly over them) as a source for the
    one ingest driver, ``sources.base.ingest``.

    Records in its manifest entry how many items were selected and how many could not be used,
    by kind (``image_failures``, ``metadata_failures``, ``missing_svg``, ``no_metadata``).
    """

    kind = SOURCE_KIND
    extra_fields = EXTRA_FIELDS
    text_fields: list[str] | None = TEXT_FIELDS

    def __init__(
        self,
        png_root: str | Path | None = None,
        svg_root: str | Path | None = None,
        limit: int | None = None,
        *,
        workers: int | None = None,
    ) -> None:
        self.png_root = Path(png_root) if png_root is not None else default_png_root()
        self.svg_root = Path(svg_root) if svg_root is not None else default_svg_root()
        self.limit = limit
        self.workers = workers

    def describe(self) -> dict[str, Any]:
        return {
            "kind": SOURCE_KIND,
            "png_root": str(self.png_root),
            "svg_root": str(self.svg_root),
            "limit": self.limit,
        }

    def rows(self, ctx: IngestContext) -> Iterator[dict[str, Any]]:
        selected = select(list_images(self.png_root), self.limit)
        items = [(i, p) for i, p in selected if ctx.claim(i)]
        max_side = int(settings.get("stored_image_side"))
        stats: Counter[str] = Counter()
        bar = progress_bar(ctx.progress, len(items), "ingest openclipart", "img")
        try:
            results = ordered_map(
                lambda ip: make_row(ip[0], ip[1], self.svg_root, max_side),
                items,
                workers=max(1, int(self.workers or settings.get("workers"))),
            )
            for (item_id, path), (row, problem, reason) in zip(items, results, strict=True):
                bar.update(1)
                if problem:
                    stats[problem] += 1
                if row is None:
                    ctx.report.add(item_id, str(path), reason)
                    continue
                if problem == "metadata_failures":
                    ctx.report.add(item_id, str(path), reason, action="title from file name")
                yield row
        finally:
            bar.close()
        ctx.counts.update(stats)
        ctx.entry.update(
            selected=len(selected),
            image_failures={
                k[len("image:") :]: v for k, v in sorted(stats.items()) if k.startswith("image:")
            },
            metadata_failures=stats["metadata_failures"],
            missing_svg=stats["missing_svg"],
            no_metadata=stats["no_metadata"],
        )
