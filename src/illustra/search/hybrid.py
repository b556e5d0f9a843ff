"""Text and hybrid search modes of ``SearchService`` (``mode="text"`` / ``mode="hybrid"``).

Both rankings are computed under the same row mask as visual search, so filters and paging
behave alike in every mode. Every hit carries an ``explain`` block saying why it matched:

    visual_score / visual_rank     cosine of the query with the item's picture (exact for every hit
                                   that has a picture, in hybrid mode) and its rank in the picture list
    text_score / text_rank         the catalogue-text score (RRF of keyword and sentence rankings)
    keyword_score / semantic_score BM25 of the item's fields, cosine of its text document
    fused_score / fused_rank       the hybrid fusion
    matched_terms                  the item's words that matched the query (lower-cased)
    matched_fields, highlights     per field: those words, and the value as highlighted segments
    matched_by                     "picture" and/or "catalogue": the rankings that brought it here
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BadInput
from . import fusion
from .collapse import GroupingRequest, grouped_hits, incomplete_notice
from .filters import Filters
from .limits import Mode, check_query
from .types import SearchResponse

if TYPE_CHECKING:
    from .service import SearchService

# Both rankings are read this deep, at least; deep enough that pages of a result list agree.
MIN_DEPTH = 100


def candidate_depth(offset: int, k: int) -> int:
    """How many candidates each ranking contributes: max(100, 3 x (offset + k)), rounded up to
    100 x a power of two, so neighbouring pages are cut from the same fused list."""
    need = max(MIN_DEPTH, 3 * (offset + k))
    depth = MIN_DEPTH
    while depth < need:
        depth *= 2
    return depth


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def respond_text_modes(
    svc: SearchService,
    query: str,
    mode: Mode,
    k: int,
    offset: int,
    filters: Filters | None,
    grouping: GroupingRequest | None = None,
) -> SearchResponse:
    q = check_query(query)
    f = filters or Filters()
    ti = svc.text_index
    if ti is None:  # resolve_mode only sends text modes here when there is a text index
        raise BadInput(f"mode {mode!r} needs a catalogue text index; run 'illustra index'")
    depth = candidate_depth(offset, k)
    scope = svc.scope(f)  # the picture ranking filters within it; the text ranking needs the mask
    mask, undated = scope.mask(), scope.undated()

    # The sentence model may be the picture model's text tower (a CLIP id): embed the query once.
    qvec: np.ndarray | None = None
    if mode is Mode.HYBRID:
        qvec = svc.embed_text(q)
    text_qvec = qvec if (qvec is not None and ti.semantic_model == svc.model) else None
    if ti.semantic_enabled and text_qvec is None:
        text_qvec = ti.embed_query(q)
    def ranked(depth: int) -> tuple[list[fusion.Fused], np.ndarray, np.ndarray, dict[int, Any], dict[int, int]]:
        t_scores, t_rows, t_details = ti.rank(q, depth, mask, query_vec=text_qvec)
        if mode is Mode.TEXT:
            fused = [
                fusion.Fused(int(r), float(s), {"text": i + 1})
                for i, (r, s) in enumerate(zip(t_rows.tolist(), t_scores.tolist(), strict=True))
            ]
            return fused, t_scores, t_rows, t_details, {}
        assert qvec is not None
        v_scores, v_rows = svc.rank_within(qvec, depth, scope)
        fused = fusion.fuse(
            svc.settings.hybrid_fusion,
            {"visual": (v_rows.tolist(), v_scores.tolist()), "text": (t_rows.tolist(), t_scores.tolist())},
            weights,
            svc.settings.rrf_k,
        )
        return fused, t_scores, t_rows, t_details, {int(r): i + 1 for i, r in enumerate(v_rows.tolist())}

    weights = {"text": 1.0} if mode is Mode.TEXT else dict(svc.settings.hybrid_weights)
    plan = svc.grouper.resolve(grouping, text_match=True)
    info: dict[str, Any] | None = None
    if plan.active:
        # The grouped list is cut from the fused list at the depth it last read.
        last: dict[int, Any] = {}

        def fused_ranking(d: int) -> tuple[list[float], list[int]]:
            last[0] = ranked(d)
            return [p.score for p in last[0][0]], [int(p.item) for p in last[0][0]]

        grouped = svc.grouper.page(fused_ranking, offset, k, plan, start_depth=depth)
        fused, t_scores, t_rows, t_details, v_rank = last[0]
        by_row = {int(p.item): p for p in fused}
        hits = grouped_hits(grouped, offset, svc.hits)
        page = [by_row[h.row] for h in hits]
        has_more, info = grouped.has_more, grouped.info
        for h in hits:  # folded results: where the fused ranking put them
            for x in [*(h.similar or ()), *(h.same_book or ())]:
                x.explain = {"mode": str(mode), "fused_score": _r(x.score), "fused_rank": x.rank}
    else:
        fused, t_scores, t_rows, t_details, v_rank = ranked(depth)
        has_more = len(fused) > offset + k
        page = fused[offset : offset + k]
        hits = svc.hits([int(p.item) for p in page], [p.score for p in page], offset)
    rows = [h.row for h in hits]

    t_score = dict(zip(t_rows.tolist(), t_scores.tolist(), strict=True))
    t_rank = {int(r): i + 1 for i, r in enumerate(t_rows.tolist())}
    matches = ti.explain(q, rows)
    sem_exact = ti.semantic_scores(text_qvec, rows) if (text_qvec is not None and ti.semantic_enabled) else {}
    vis_exact = _visual_scores(svc, qvec, rows) if qvec is not None else {}
    rrf_k = svc.settings.rrf_k
    for h, p in zip(hits, page, strict=True):
        row = h.row
        m = matches.get(row, {})
        d = t_details.get(row, {})
        ex: dict[str, Any] = {
            "mode": str(mode),
            "visual_score": _r(vis_exact.get(row)),
            "visual_rank": v_rank.get(row),
            "text_score": _r(t_score.get(row)),
            "text_rank": t_rank.get(row),
            "keyword_score": m.get("keyword_score"),
            "keyword_rank": d.get("keyword_rank"),
            "semantic_score": _r(sem_exact.get(row)),
            "semantic_rank": d.get("semantic_rank"),
            "fused_score": _r(p.score),
            "fused_rank": h.rank,
            "matched_terms": m.get("matched_terms", []),
            "matched_fields": m.get("matched_fields", {}),
            "highlights": m.get("highlights", {}),
            "matched_by": _matched_by(p, weights, rrf_k),
        }
        h.explain = ex
    resp = SearchResponse(
        results=hits,
        kind="text",
        model=svc.model,
        query=q,
        k=k,
        offset=offset,
        mode=mode,
        filters=f.describe(),
        has_more=has_more,
        undated_excluded=undated,
        grouping=info,
    )
    note = incomplete_notice(info) if info else None
    if note:
        resp.notices.append(note)
    if ti.stale:
        resp.notices.append(
            "the catalogue text index is older than the collection's items or text fields; "
            "run 'illustra index' to include every item"
        )
    return resp


def _visual_scores(svc: SearchService, qvec: np.ndarray, rows: list[int]) -> dict[int, float]:
    """Exact picture cosine for each row that has a stored vector."""
    return {r: float(v @ qvec) for r, v in svc.index.vectors_of(rows).items()}


def _matched_by(p: fusion.Fused, weights: dict[str, float], rrf_k: int) -> list[str]:
    """The rankings that put the item here: each contributing at least a quarter of the largest share."""
    share = {name: weights.get(name, 1.0) / (rrf_k + rank) for name, rank in p.ranks.items()}
    if not share:
        return []
    top = max(share.values())
    label = {"visual": "picture", "text": "catalogue"}
    return [label[n] for n in ("visual", "text") if n in share and share[n] > 0 and share[n] >= top / 4]


def explain_line(explain: dict[str, Any]) -> str:
    """One line for terminal output: what matched, and how each ranking placed the item."""
    parts = []
    fields = explain.get("highlights") or {}
    if fields:
        parts.append("; ".join(f"{name}: {', '.join(_words(segs))}" for name, segs in fields.items()))
    if explain.get("visual_rank") or explain.get("visual_score") is not None:
        vs = explain.get("visual_score")
        vr = explain.get("visual_rank")
        parts.append(
            f"picture {'' if vs is None else f'{vs:.3f}'}{'' if vr is None else f' (#{vr})'}".strip()
        )
    if explain.get("text_rank"):
        parts.append(f"text #{explain['text_rank']}")
    by = explain.get("matched_by") or []
    if by:
        parts.append("matched by " + " + ".join(by))
    return " | ".join(parts)


def _words(segs: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(s["text"] for s in segs if s["match"]))
