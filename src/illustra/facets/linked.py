"""Result sets a link names beyond the search parameters: a picture's vector (``vec``), saved
facets (``facet=a,b``), facets from their examples (``fdef=E1,E2``), and marked examples for the
quick form (``ex``, with ``q`` and its weight ``tw``). Together with the stamps of a permalink
(``model``, ``built``) they are read here, before the search parameters, because they are longer
than any search parameter may be and some hold lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import BadInput
from ..search.filters import Filters
from ..search.limits import MAX_COMBINED_FACETS, MAX_DEFINITION_CHARS
from ..search.paging import page_through
from ..search.permalink import decode_vector
from ..search.query import BadParam
from ..search.types import SearchResponse
from .definition import FacetDefinition
from .search import DEFAULT_TEXT_WEIGHT, Facet, FacetSearch

LINK_PARAMS = ("vec", "facet", "fdef", "ex", "tw", "model", "built")
LIST_PARAMS = ("facet", "fdef")
# The longest a list parameter may be: every facet of a combination at the longest definition.
MAX_LINK_VALUE = MAX_COMBINED_FACETS * (MAX_DEFINITION_CHARS + 1)


def split_link_params(items: Iterable[tuple[str, str]]) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(the other parameters, the link parameters by name); empty values count as absent."""
    rest: list[tuple[str, str]] = []
    link: dict[str, str] = {}
    for name, value in items:
        if name not in LINK_PARAMS:
            rest.append((name, value))
            continue
        if not value.strip():
            continue
        if name in link and name not in LIST_PARAMS:
            raise BadParam(name, f"give {name!r} only once")
        # A list may come as one comma-separated value or repeated (a form's checkboxes).
        value = f"{link[name]},{value.strip()}" if name in link else value.strip()
        if len(value) > (MAX_LINK_VALUE if name in LIST_PARAMS else MAX_DEFINITION_CHARS):
            raise BadParam(name, f"the {name} parameter is {len(value):,} characters, more than a link may hold")
        link[name] = value
    return rest, link


def _names(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@dataclass
class LinkedSearch:
    """One result set named by link parameters."""

    vec: str | None = None
    facets: list[str] = field(default_factory=list)
    definitions: list[str] = field(default_factory=list)
    examples: str | None = None
    text_weight: float = DEFAULT_TEXT_WEIGHT

    @classmethod
    def parse(cls, link: dict[str, str]) -> LinkedSearch | None:
        """The result set ``link`` names, or None when it names none (a plain search)."""
        out = cls(
            vec=link.get("vec"),
            facets=_names(link.get("facet")),
            definitions=_names(link.get("fdef")),
            examples=link.get("ex"),
        )
        kinds = [bool(out.vec), bool(out.facets or out.definitions), bool(out.examples)]
        if sum(kinds) == 0:
            if "tw" in link:
                raise BadParam("tw", "a text weight applies only with marked examples (ex)")
            return None
        if sum(kinds) > 1:
            raise BadInput("a link names one result set: a picture (vec), facets (facet, fdef) or marked examples (ex)")
        if len(out.facets) + len(out.definitions) > MAX_COMBINED_FACETS:
            raise BadInput(f"at most {MAX_COMBINED_FACETS} facets combine in one search")
        if "tw" in link:
            if not out.examples:
                raise BadParam("tw", "a text weight applies only with marked examples (ex)")
            try:
                out.text_weight = float(link["tw"])
            except ValueError:
                raise BadParam("tw", f"the text weight must be a number from 0 to 1, got {link['tw'][:40]!r}") from None
            if not 0.0 <= out.text_weight <= 1.0:
                raise BadParam("tw", f"the text weight must be from 0 to 1, got {out.text_weight:g}")
        return out

    @property
    def kind(self) -> str:
        return "image" if self.vec else ("examples" if self.examples else "facet")

    def facet_list(self, fs: FacetSearch) -> list[Facet]:
        out = [fs.saved(n) for n in self.facets]
        for i, text in enumerate(self.definitions, start=len(out) + 1):
            definition, label = FacetDefinition.decode(text)
            out.append(Facet(label or f"facet {i}", definition))
        return out

    def run(
        self,
        fs: FacetSearch,
        q: str | None,
        k: int,
        offset: int = 0,
        filters: Filters | None = None,
        *,
        limit_k: bool = True,
    ) -> SearchResponse:
        """Run the result set; ``limit_k=False`` lets an export take more than a page holds."""
        svc = fs.service
        if self.vec:
            if q:
                raise BadParam("q", "a search by picture takes no text query")
            vec = decode_vector(self.vec, svc.picture_space()[1].dim)
            if limit_k:
                return svc.search_vector(vec, k, offset, filters)
            return page_through(lambda kk, oo: svc.search_vector(vec, kk, oo, filters), k, offset)
        if self.examples:
            definition, _ = FacetDefinition.decode(self.examples)
            return fs.quick(definition, q, self.text_weight, k, offset, filters, limit_k=limit_k)
        if q:
            raise BadParam("q", "a search by facets takes no text query")
        facets = self.facet_list(fs)
        return fs.search(facets, k, offset, filters) if limit_k else fs.ranked(facets, k, offset, filters)

