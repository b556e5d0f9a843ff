"""``illustra eval --mode visual,text,hybrid``: the search modes side by side on the same queries.

Text and hybrid modes search the catalogue text. When the relevance judgements were themselves
derived from that text (true for the Open Clip Art query sets, judged from each drawing's title and
keywords), those modes get credit for repeating the judging rule, so their scores overstate how
they would do on independently judged queries. The report says so whenever it applies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..search.limits import Mode, parse_modes

__all__ = ["CAVEAT", "annotate", "compare_modes", "format_comparison", "judged_from_metadata", "parse_modes"]
CAVEAT = (
    "the relevance judgements were derived from the same catalogue metadata (titles, keywords) that "
    "the text and hybrid modes search, so their scores overstate how well they would do on "
    "independently judged queries; compare visual scores with care against them"
)
# Sources whose standard query sets are judged from the items' own metadata.
METADATA_JUDGED_SOURCES = {"openclipart"}
# A queries file says so itself with this key on any line: {"query": ..., "judged_from": "metadata"}.
MARKER_KEY = "judged_from"


def judged_from_metadata(
    collection: Any, queries_path: str | Path | None, flag: bool | None
) -> tuple[bool, str]:
    """Whether the judgements came from the searched metadata, and why we think so."""
    if flag is not None:
        return flag, "given on the command line"
    if queries_path is not None:
        try:
            with open(queries_path, encoding="utf-8") as fh:
                for line in fh:
                    if MARKER_KEY in line:
                        try:
                            obj = json.loads(line)
                        except json.JSONDecodeError:
                            continue
                        if isinstance(obj, dict) and str(obj.get(MARKER_KEY, "")).lower() == "metadata":
                            return True, f"the queries file marks its judgements {MARKER_KEY}=metadata"
        except OSError:
            pass
    kinds = {str(s.get("kind")) for s in collection.manifest.get("sources", [])}
    hit = sorted(kinds & METADATA_JUDGED_SOURCES)
    if hit:
        return (
            True,
            f"the collection comes from {', '.join(hit)}, whose query sets are judged from item metadata",
        )
    return False, "no sign that the judgements come from the item metadata"


def annotate(
    result: dict[str, Any], collection: Any, queries_path: str | Path | None, flag: bool | None
) -> None:
    """Add ``judgements_from_metadata`` (and the caveat where a text mode was scored) to a result."""
    from_meta, why = judged_from_metadata(collection, queries_path, flag)
    result["judgements_from_metadata"] = from_meta
    result["judgements_from_metadata_reason"] = why
    if from_meta and result.get("effective_mode", result.get("mode")) in (Mode.TEXT, Mode.HYBRID):
        result["caveat"] = CAVEAT


def compare_modes(
    collection: Any,
    queries_path: str | Path,
    modes: list[Mode],
    *,
    model: str | None = None,
    k: int = 100,
    from_metadata: bool | None = None,
) -> dict[str, Any]:
    """Run the same judged queries in each mode through one search service."""
    from ..collection import Collection
    from ..search import SearchService
    from .retrieval import load_queries, run_retrieval_eval, service_search_fn

    coll = collection if isinstance(collection, Collection) else Collection(collection)
    judgements = load_queries(queries_path)
    service = SearchService(coll, model)
    out: dict[str, Any] = {"collection": str(coll.root), "model": service.model, "k": k, "modes": {}}
    rows = []
    for mode in modes:
        effective, fallback = service.resolve_mode(mode)
        notices: list[str] = []
        result = run_retrieval_eval(
            coll,
            judgements,
            model=service.model,
            k=k,
            mode=mode,
            search=service_search_fn(service, mode, notices),
        )
        result["queries_file"] = str(queries_path)
        result["effective_mode"] = str(effective)
        if notices:
            result["notices"] = notices
        annotate(result, coll, queries_path, from_metadata)
        out["modes"][str(mode)] = result
        rows.append(
            {"mode": str(mode), "effective_mode": str(effective), **result["metrics"], "fallback": fallback is not None}
        )
    out["comparison"] = rows
    from_meta, why = judged_from_metadata(coll, queries_path, from_metadata)
    out["judgements_from_metadata"] = from_meta
    out["judgements_from_metadata_reason"] = why
    if from_meta and any(r["effective_mode"] != Mode.VISUAL for r in rows):
        out["caveat"] = CAVEAT
    first = out["modes"][str(modes[0])]
    out["n_queries"] = first["n_queries"]
    out["random"] = first["random"]
    return out


def format_comparison(result: dict[str, Any]) -> str:
    lines = [
        f"collection {result['collection']}  model {result['model']}  k {result['k']}  queries {result['n_queries']}",
        "",
        f"{'mode':<10} {'mAP@k':>7} {'P@10':>6} {'R@10':>6} {'nDCG@10':>8}",
    ]
    for r in result["comparison"]:
        label = r["mode"] if r["effective_mode"] == r["mode"] else f"{r['mode']}*"
        lines.append(f"{label:<10} {r['map']:>7.3f} {r['p@10']:>6.3f} {r['r@10']:>6.3f} {r['ndcg@10']:>8.3f}")
    m = result["random"]
    lines.append(f"{'random':<10} {m['map']:>7.3f} {m['p@10']:>6.3f} {m['r@10']:>6.3f} {m['ndcg@10']:>8.3f}")
    if any(r["effective_mode"] != r["mode"] for r in result["comparison"]):
        lines.append("* no catalogue text index: this mode searched the pictures only (run 'illustra index')")
    if result.get("caveat"):
        lines += ["", f"caveat: {result['caveat']}"]
    return "\n".join(lines)
