"""Permalinks: a page link that runs a result set again and records what it ran on.

A link holds the query (text and mode, the item of "more like this", a picture's vector, the
facets' examples), the filters, the model, and the build stamp of the collection's indexes
(``built``: the newest ``built`` time of the model's vector index, its picture companion's and
the catalogue-text index). Opening a link after any of them was rebuilt, or with another model,
says so: the results may differ from the ones cited.

A picture cannot live in a link, but its vector can: the query vector in the picture space, as
float16 in URL-safe base64 (``vec``), is enough to rank the collection the same way again.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import numpy as np

from ..errors import BadInput
from .limits import MAX_DEFINITION_CHARS

if TYPE_CHECKING:
    from ..collection import Collection
    from .types import SearchResponse

LINK_PATH = "/search"
# Parameters a link may carry beyond the search parameters: the query sources …
SOURCE_PARAMS = ("like", "vec", "facet", "fdef", "ex", "tw")
# … and what it ran on.
STAMP_PARAMS = ("model", "built")
VECTOR_VERSION = "1"


def encode_vector(vec: np.ndarray) -> str | None:
    """A query vector for a link (float16; cosine with the original above 0.9999), or None when
    it would be longer than a link may be."""
    raw = np.asarray(vec, dtype="<f2").tobytes()
    text = VECTOR_VERSION + "." + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    return text if len(text) <= MAX_DEFINITION_CHARS else None


def decode_vector(text: str, dim: int) -> np.ndarray:
    """The unit vector of a link, checked against the picture space's dimension."""
    bad = BadInput("the picture in the link is damaged or incomplete; copy the whole link again")
    version, _, packed = text.strip().partition(".")
    if version != VECTOR_VERSION or not packed or len(text) > MAX_DEFINITION_CHARS:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4))
    except (binascii.Error, ValueError):
        raise bad from None
    if not raw or len(raw) % 2:
        raise bad
    if len(raw) != 2 * dim:
        raise BadInput(
            f"the picture in the link was made for a {len(raw) // 2}-dimensional model; this collection's "
            f"pictures are searched in {dim} dimensions"
        )
    vec = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    norm = float(np.linalg.norm(vec))
    if not np.isfinite(norm) or norm == 0:
        raise bad
    return vec / norm


def build_stamp(collection: Collection, model: str) -> str | None:
    """When the indexes a search of ``model`` may use were last built (the newest of them)."""
    from ..embedding_store import similarity_companion

    indexes = collection.manifest.get("indexes", {})
    names = [model, similarity_companion(collection, model) or ""]
    stamps = [str(indexes[n]["built"]) for n in names if n in indexes and indexes[n].get("built")]
    text = (collection.manifest.get("text_index") or {}).get("built")
    if text:
        stamps.append(str(text))
    return max(stamps) if stamps else None


def filter_items(described: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A response's ``filters`` block as link parameters."""
    out: list[tuple[str, str]] = []
    for name, value in described.items():
        if name == "include_undated":
            if value:
                out.append((name, "1"))
        elif value is not None:
            out.append((name, str(value)))
    return out


def source_items(resp: SearchResponse) -> list[tuple[str, str]] | None:
    """The parameters naming the query of ``resp`` in a link (None: it cannot be put in one)."""
    if resp.source is not None:
        return list(resp.source)
    if resp.kind == "text" and resp.query:
        return [("q", resp.query), ("mode", str(resp.mode))]
    if resp.kind == "like" and resp.query:
        return [("like", resp.query)]
    return None


def link_path(resp: SearchResponse, collection: Collection) -> str | None:
    """The root-relative permalink of ``resp`` (None when its query cannot be put in a link)."""
    source = source_items(resp)
    if source is None:
        return None
    items = source + filter_items(resp.filters) + [("model", resp.model)]
    stamp = build_stamp(collection, resp.model)
    if stamp:
        items.append(("built", stamp))
    return f"{LINK_PATH}?{urlencode(items)}"


def rebuilt_notice(given: Mapping[str, str], collection: Collection, model: str) -> list[str]:
    """What a reader opening a permalink should know: another model, or indexes rebuilt since."""
    out: list[str] = []
    linked_model = (given.get("model") or "").strip()
    if linked_model and linked_model != model:
        out.append(
            f"this link was made with the model {linked_model[:80]!r}; the collection is now searched with "
            f"{model!r}, so the results differ from the ones cited"
        )
    built = (given.get("built") or "").strip()
    now = build_stamp(collection, model)
    if built and built != now:
        out.append(
            f"the index was rebuilt since this link was made (it ran on the build of {built[:40]}; the "
            f"current build is of {now or 'unknown date'}), so the results may differ from the ones cited"
        )
    return out
