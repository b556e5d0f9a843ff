"""Retrieval evaluation: run judged queries through a search function and score the rankings.

A query file has one JSON object per line: ``{"query": "...", "relevant_ids": ["...", ...]}``.
Relevant ids that are not in the collection are ignored; a query left with none is reported as
excluded rather than scored. Scores sit next to the exact expected scores of a random ranking,
so a figure can be read without knowing how hard the collection is.

The runner takes any ``SearchFn`` (query text, k -> ranked ids), so other query modes and
other front ends are evaluated by the same code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..collection import Collection, now_iso, write_json_atomic
from ..encoders.base import model_slug
from ..errors import BadInput
from ..search.limits import MAX_K, Mode, parse_mode
from . import metrics

SearchFn = Callable[[str, int], Sequence[str]]
METRIC_KEYS = ("map", "p@10", "r@10", "ndcg@10")
DEFAULT_MODE = Mode.VISUAL


@dataclass(frozen=True)
class Judgement:
    query: str
    relevant_ids: tuple[str, ...]
    line: int = 0


def load_queries(path: str | Path) -> list[Judgement]:
    """Read a judged-query file, refusing anything malformed with its line number."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"query file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read query file {p}: {exc}") from exc
    out: list[Judgement] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{p}:{lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise BadInput(f"{p}:{lineno}: expected an object with 'query' and 'relevant_ids'")
        query = obj.get("query")
        rel = obj.get("relevant_ids")
        if not isinstance(query, str) or not query.strip():
            raise BadInput(f"{p}:{lineno}: 'query' must be a non-empty string")
        if not isinstance(rel, list) or not all(isinstance(r, str) for r in rel):
            raise BadInput(f"{p}:{lineno}: 'relevant_ids' must be a list of strings")
        out.append(Judgement(query=query.strip(), relevant_ids=tuple(dict.fromkeys(rel)), line=lineno))
    if not out:
        raise BadInput(f"query file {p} holds no queries")
    return out


def evaluate(
    judgements: Sequence[Judgement],
    search: SearchFn,
    collection_ids: set[str] | frozenset[str],
    *,
    k: int = 100,
) -> dict[str, Any]:
    """Score every query; ``collection_ids`` is the set of ids the collection holds."""
    if k < metrics.PRIMARY_K:
        raise BadInput(f"k must be at least {metrics.PRIMARY_K}, got {k}")
    n_items = len(collection_ids)
    scored: list[dict[str, Any]] = []
    excluded: list[dict[str, Any]] = []
    for j in judgements:
        relevant = frozenset(r for r in j.relevant_ids if r in collection_ids)
        if not relevant:
            excluded.append(
                {
                    "query": j.query,
                    "n_judged": len(j.relevant_ids),
                    "reason": "no relevant id is in the collection",
                }
            )
            continue
        ranked = list(search(j.query, k))
        row: dict[str, Any] = {"query": j.query}
        row.update(metrics.query_metrics(ranked, relevant, k))
        row["n_relevant"] = len(relevant)
        row["n_judged"] = len(j.relevant_ids)
        row["random"] = metrics.random_query_metrics(n_items, len(relevant), k)
        row["top"] = ranked[:10]
        scored.append(row)
    return {
        "k": k,
        "n_items": n_items,
        "n_queries": len(scored),
        "metrics": _means(scored),
        "random": _means([q["random"] for q in scored]),
        "queries": scored,
        "excluded": excluded,
    }


def _means(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    out = {"map": metrics.mean(r["ap"] for r in rows)}
    for key in METRIC_KEYS[1:]:
        out[key] = metrics.mean(r[key] for r in rows)
    return out


def load_gallery(path: str | Path, collection_ids: frozenset[str]) -> frozenset[str]:
    """The ids of a gallery file (one a line, blank lines and ``#`` comments ignored); ids the
    collection does not hold are refused, naming the first."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read gallery file {p}: {getattr(exc, 'strerror', None) or exc}") from None
    ids = frozenset(x.strip() for x in lines if x.strip() and not x.lstrip().startswith("#"))
    if not ids:
        raise BadInput(f"gallery file {p} lists no ids")
    unknown = sorted(ids - collection_ids)
    if unknown:
        raise BadInput(f"gallery file {p} names {len(unknown)} id(s) the collection does not hold, e.g. {unknown[0]!r}")
    return ids


def service_search_fn(
    service: Any, mode: Mode = DEFAULT_MODE, notices: list[str] | None = None, outside: frozenset[str] = frozenset()
) -> SearchFn:
    """A ``SearchFn`` over a ``SearchService``'s text search in the given mode; ids in ``outside``
    leave the ranking."""
    from ..search.filters import Filters

    filters = Filters().excluding(outside) if outside else None

    def run(query: str, k: int) -> list[str]:
        resp = service.search_text(query, k=k, mode=mode, filters=filters)
        if notices is not None:
            notices.extend(n for n in resp.notices if n not in notices)
        return [h.id for h in resp.results]

    return run


def run_retrieval_eval(
    collection: Collection | str | Path,
    queries: str | Path | Sequence[Judgement],
    *,
    model: str | None = None,
    k: int = 100,
    mode: Mode | str = DEFAULT_MODE,
    search: SearchFn | None = None,
    gallery_ids: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate a collection's search against judged queries (see ``evaluate`` for the result).

    ``search`` replaces the collection's own search service, e.g. to evaluate another system.
    ``gallery_ids`` names a file of the only ids ranked and judged.
    """
    from ..search import SearchService

    if not metrics.PRIMARY_K <= k <= MAX_K:
        raise BadInput(f"k must be between {metrics.PRIMARY_K} and {MAX_K}, got {k}")
    mode = parse_mode(mode) or DEFAULT_MODE
    coll = collection if isinstance(collection, Collection) else Collection(collection)
    judgements = load_queries(queries) if isinstance(queries, (str, Path)) else list(queries)
    notices: list[str] = []
    model_name = model
    text_model = ""
    all_ids = frozenset(str(i) for i in coll.ids.tolist())
    gallery = load_gallery(gallery_ids, all_ids) if gallery_ids is not None else all_ids
    if search is None:
        service = SearchService(coll, model)
        model_name, text_model = service.model, service.text_model
        search = service_search_fn(service, mode, notices, all_ids - gallery)
    result = evaluate(judgements, search, gallery, k=k)
    head = {
        "collection": str(coll.root),
        "model": model_name,
        **({"text_model": text_model} if text_model else {}),
        **({"gallery_ids": str(gallery_ids), "gallery_items": len(gallery)} if gallery_ids is not None else {}),
        "mode": str(mode),
        "queries_file": str(queries) if isinstance(queries, (str, Path)) else None,
        "date": now_iso(),
    }
    result = {**head, **result}
    if notices:
        result["notices"] = notices
    return result


def result_path(collection: Collection, model: str, mode: Mode | str = DEFAULT_MODE, variant: str = "") -> Path:
    suffix = ("" if mode == DEFAULT_MODE else f"-{mode}") + (f"-{model_slug(variant)}" if variant else "")
    return collection.root / "eval" / f"retrieval-{model_slug(model)}{suffix}.json"


def save_result(collection: Collection | str | Path, result: dict[str, Any]) -> Path:
    """Write a result to ``<collection>/eval/retrieval-<model-slug>.json`` for the web app."""
    coll = collection if isinstance(collection, Collection) else Collection(collection)
    # A run with a separate text model or on part of the gallery does not replace the model's own result.
    variant = "+".join(
        x for x in (result.get("text_model") or "", "gallery" if result.get("gallery_ids") else "") if x
    )
    path = result_path(
        coll, str(result.get("model") or "unknown"), str(result.get("mode") or DEFAULT_MODE), variant
    )
    write_json_atomic(path, result)
    return path


def load_results(collection: Collection | str | Path) -> list[dict[str, Any]]:
    """Every saved retrieval result of a collection (unreadable files are skipped)."""
    coll = collection if isinstance(collection, Collection) else Collection(collection)
    out = []
    for path in sorted((coll.root / "eval").glob("retrieval-*.json")):
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            continue
    return out


def format_table(result: dict[str, Any]) -> str:
    """The human-readable report printed by ``illustra eval``."""
    lines = [
        f"collection {result.get('collection')}  model {result.get('model')}  mode {result.get('mode')}  "
        f"k {result['k']}  items {result['n_items']}  queries {result['n_queries']}",
        "",
        f"{'query':<40} {'rel':>5} {'AP@k':>7} {'P@10':>6} {'R@10':>6} {'nDCG@10':>8}",
    ]
    for q in result["queries"]:
        name = q["query"] if len(q["query"]) <= 40 else q["query"][:39] + "…"
        lines.append(
            f"{name:<40} {q['n_relevant']:>5} {q['ap']:>7.3f} {q['p@10']:>6.3f} {q['r@10']:>6.3f} "
            f"{q['ndcg@10']:>8.3f}"
        )
    lines.append("")
    lines.append(f"{'':<40} {'':>5} {'mAP@k':>7} {'P@10':>6} {'R@10':>6} {'nDCG@10':>8}")
    for label, key in (("overall", "metrics"), ("random ranking (expected)", "random")):
        m = result[key]
        lines.append(
            f"{label:<40} {'':>5} {m['map']:>7.3f} {m['p@10']:>6.3f} {m['r@10']:>6.3f} {m['ndcg@10']:>8.3f}"
        )
    for ex in result.get("excluded", []):
        lines.append(f"excluded: {ex['query']!r} ({ex['reason']}; {ex['n_judged']} judged)")
    return "\n".join(lines)
