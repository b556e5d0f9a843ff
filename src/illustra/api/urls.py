"""Links to items. Ids may hold slashes and any unicode: they are percent-encoded segment-wise,
keeping ``/`` so routes declared as ``{item_id:path}`` read them back unchanged."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from ..search.shape import is_web_url

ITEM_SUFFIXES = ("similar", "image", "thumbnail", "book", "report")


def quote_id(item_id: str) -> str:
    return quote(item_id, safe="/")


def item_links(item_id: str, root: str = "") -> dict[str, str]:
    """API and page URLs of one item (root-relative, under the app's mount point ``root``)."""
    q = quote_id(item_id)
    api = f"{root}/api/items/{q}"
    return {
        "item_url": api,
        "image_url": f"{api}/image",
        "thumbnail_url": f"{api}/thumbnail",
        "similar_url": f"{api}/similar",
        "page_url": f"{root}/items/{q}",
    }


def page_url(path: str, items: list[tuple[str, str]], root: str = "") -> str:
    """A page link carrying search state as GET parameters (empty values dropped)."""
    kept = [(k, v) for k, v in items if v not in (None, "")]
    return f"{root}{path}" + (f"?{urlencode(kept)}" if kept else "")


def safe_href(url: object) -> str | None:
    """``url`` when it is an absolute http(s) link, else None: catalogue data is untrusted, and a
    ``javascript:`` link in a source field must never become clickable."""
    return url.strip() if isinstance(url, str) and is_web_url(url) else None
