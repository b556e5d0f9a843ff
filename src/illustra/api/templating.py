"""The Jinja2 environment of the web page: autoescaping on, plus a few filters.

``highlight`` finds matched terms in the *raw* text and escapes every piece separately, so a term
can never match inside an entity (``&amp;``) and catalogue text can never inject markup.
``match_reason`` says in words why a result is in the list, from the hit's ``explain`` block.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import jinja2
from markupsafe import Markup, escape
from starlette.templating import Jinja2Templates

from ..search.limits import Mode
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


# How a match in a field reads ("the title mentions ship"); other fields: "the <name> mentions".
FIELD_PHRASES = {
    "title": "the title mentions",
    "creator": "the creator's name includes",
    "place": "the place name includes",
    "publisher": "the publisher's name includes",
    "keywords": "the keywords include",
    "description": "the description mentions",
    "subject": "the subject mentions",
}
MAX_REASON_FIELDS = 3
MAX_REASON_WORDS = 3


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def match_reason(explain: dict[str, Any] | None, kind: str | None) -> Markup:
    """Why a hit is in the results, in words: "Matched the picture; the title mentions *ship*".

    ``kind`` is the search's kind: a picture query (``image``, ``like``) matches by picture only;
    a text query in pictures-only mode has no catalogue block in ``explain``.
    """
    if kind == "like":
        return Markup("Looks like the chosen picture")
    if kind == "image":
        return Markup("Looks like your picture")
    if kind == "facet":
        return Markup("Rated likely by the facet")
    if kind == "examples":
        return Markup("Looks like your marked examples")
    ex = explain or {}
    if "mode" not in ex:  # pictures only
        return Markup("Matched the picture")
    by = list(ex.get("matched_by") or [])
    parts: list[str] = []
    if "picture" in by:
        parts.append("matched the picture")
    fields = ex.get("matched_fields") or {}
    said: list[str] = []
    if isinstance(fields, dict):
        for name, found in list(fields.items()):
            words = list(dict.fromkeys(str(w) for w in (found or []) if str(w).strip()))[:MAX_REASON_WORDS]
            if not words:
                continue
            phrase = FIELD_PHRASES.get(name, f"the {name.replace('_', ' ')} mentions")
            said.append(f"{escape(phrase)} " + _and([f"<em>{escape(w)}</em>" for w in words]))
            if len(said) == MAX_REASON_FIELDS:
                break
    if said:
        parts.append(_and(said))
    elif "catalogue" in by:
        parts.append("the catalogue text is close in meaning")
    if not parts:
        parts.append("ranked by the pictures and the catalogue text together" if ex.get("mode") == "hybrid"
                     else "ranked by the catalogue text")
    text = "; ".join(parts)
    return Markup(text[0].upper() + text[1:])


def sentence(text: Any) -> str:
    """A message as a sentence: capital first letter, closing full stop."""
    text = str(text or "").strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?…" else text + "."


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
    env.filters.update(
        highlight=highlight, safe_href=safe_href, score=score, quote_id=quote_id, sentence=sentence
    )
    env.globals.update(
        item_links=item_links,
        page_url=page_url,
        terms_for=terms_for,
        highlight_field=highlight_field,
        match_reason=match_reason,
        mode_label=lambda name: Mode(name).label,
    )
    return Jinja2Templates(env=env)
