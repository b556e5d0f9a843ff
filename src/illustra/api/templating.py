"""The Jinja2 environment of the web page: autoescaping on, plus a few filters.

``highlight`` finds matched terms in the *raw* text and escapes every piece separately, so a term
can never match inside an entity (``&amp;``) and catalogue text can never inject markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import jinja2
from markupsafe import Markup, escape
from starlette.templating import Jinja2Templates

from ..web import TEMPLATES_DIR
from .urls import item_links, page_url, quote_id, safe_href


def highlight(text: Any, terms: Iterable[str] | None) -> Markup:
    """Escape ``text`` and wrap words starting with any of ``terms`` in ``<mark>``."""
    if text is None:
        return Markup("")
    text = str(text)
    words = sorted(
        {t.strip() for t in (terms or []) if isinstance(t, str) and len(t.strip()) >= 2},
        key=len,
        reverse=True,
    )
    if not words:
        return escape(text)
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\w*", re.IGNORECASE)
    out: list[str] = []
    last = 0
    for m in pattern.finditer(text):
        out.append(str(escape(text[last : m.start()])))
        out.append(f"<mark>{escape(m.group(0))}</mark>")
        last = m.end()
    out.append(str(escape(text[last:])))
    return Markup("".join(out))


def terms_for(explain: dict[str, Any] | None, field: str) -> list[str]:
    """Terms to highlight in one field: that field's matches, else every matched term."""
    if not explain:
        return []
    by_field = explain.get("matched_fields") or {}
    if isinstance(by_field, dict) and by_field:
        return list(by_field.get(field) or [])
    return list(explain.get("matched_terms") or [])


def highlight_field(meta: dict[str, Any], explain: dict[str, Any] | None, field: str) -> Markup:
    """A metadata field with its matches marked: the search's own match segments when it gives
    them for the whole value (stem-aware), else the matched terms found by ``highlight``."""
    value = meta.get(field)
    if value is None:
        return Markup("")
    segments = ((explain or {}).get("highlights") or {}).get(field)
    if isinstance(segments, list) and segments:
        try:
            if "".join(str(s["text"]) for s in segments) == str(value):
                return Markup(
                    "".join(
                        f"<mark>{escape(s['text'])}</mark>" if s.get("match") else str(escape(s["text"]))
                        for s in segments
                    )
                )
        except (KeyError, TypeError):
            pass
    return highlight(value, terms_for(explain, field))


def score(value: Any) -> str:
    try:
        return f"{float(value):.3f}"
    except (TypeError, ValueError):
        return ""


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(highlight=highlight, safe_href=safe_href, score=score, quote_id=quote_id)
    env.globals.update(
        item_links=item_links, page_url=page_url, terms_for=terms_for, highlight_field=highlight_field
    )
    return Jinja2Templates(env=env)
