"""Fusing ranked lists: reciprocal rank fusion (default) and weighted score fusion.

Pure functions over item ids (dataset rows in practice), so they are checked against rankings
computed by hand. Ranks are 1-based. Ties are broken the same way everywhere: higher fused
score, then the better (smaller) best rank in any list, then the smaller item.

RRF (Cormack, Clarke & Büttcher, SIGIR 2009): ``score(d) = sum_i w_i / (k + rank_i(d))`` over the
lists ``i`` that contain ``d``. It needs no score calibration between a cosine and a BM25 score,
which is why it is the default for joining picture and catalogue rankings.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import BadInput

DEFAULT_RRF_K = 60
# Scores this close (relative) count as equal: float32 cosines of one vector differ in the last bits.
TIE_TOLERANCE = 1e-6


@dataclass
class Fused:
    item: Any
    score: float
    ranks: dict[str, int] = field(default_factory=dict)  # list name -> 1-based rank in that list


def _order(fused: dict[Any, Fused]) -> list[Fused]:
    return sorted(fused.values(), key=lambda f: (-f.score, min(f.ranks.values()), f.item))


def tied_ranks(scores: Sequence[float], tol: float = TIE_TOLERANCE) -> list[int]:
    """1-based ranks of a list sorted best first, equal scores sharing the first one's rank ("1224")."""
    ranks: list[int] = []
    for i, s in enumerate(scores):
        if i and abs(s - scores[i - 1]) <= tol * max(1.0, abs(s)):
            ranks.append(ranks[-1])
        else:
            ranks.append(i + 1)
    return ranks


def rrf(
    rankings: Mapping[str, Sequence[Hashable]],
    weights: Mapping[str, float] | None = None,
    k: int = DEFAULT_RRF_K,
    scores: Mapping[str, Sequence[float]] | None = None,
) -> list[Fused]:
    """Reciprocal rank fusion of named ranked lists (best first); lists missing from ``weights`` get 1.

    With ``scores`` (per list, in list order), items with equal scores share a rank: a list that
    cannot tell its items apart (say every document equally far from the query) then moves none of
    them ahead of the others.
    """
    if k < 0:
        raise BadInput(f"the RRF constant k must be at least 0, got {k}")
    fused: dict[Any, Fused] = {}
    for name, items in rankings.items():
        w = 1.0 if weights is None else float(weights.get(name, 1.0))
        given = None if scores is None else scores.get(name)
        if given is not None and len(given) != len(items):
            raise BadInput(f"list {name!r} has {len(items)} items but {len(given)} scores")
        ranks = tied_ranks(list(given)) if given is not None else range(1, len(items) + 1)
        for rank, item in zip(ranks, items, strict=True):
            f = fused.get(item)
            if f is None:
                f = fused[item] = Fused(item, 0.0)
            if name in f.ranks:
                continue  # an item repeated within one list counts once, at its best rank
            f.ranks[name] = rank
            f.score += w / (k + rank)
    return _order(fused)


def minmax(scores: Sequence[float]) -> list[float]:
    """Scores scaled to 0..1 within their list (all equal: all 1)."""
    if not scores:
        return []
    lo, hi = min(scores), max(scores)
    if hi == lo:
        return [1.0] * len(scores)
    return [(s - lo) / (hi - lo) for s in scores]


def weighted(
    lists: Mapping[str, tuple[Sequence[Hashable], Sequence[float]]],
    weights: Mapping[str, float] | None = None,
) -> list[Fused]:
    """Weighted sum of min-max normalised scores; an item absent from a list gets 0 from it."""
    fused: dict[Any, Fused] = {}
    for name, (items, scores) in lists.items():
        if len(items) != len(scores):
            raise BadInput(f"list {name!r} has {len(items)} items but {len(scores)} scores")
        w = 1.0 if weights is None else float(weights.get(name, 1.0))
        for rank, (item, s) in enumerate(zip(items, minmax(list(scores)), strict=True), start=1):
            f = fused.get(item)
            if f is None:
                f = fused[item] = Fused(item, 0.0)
            if name in f.ranks:
                continue
            f.ranks[name] = rank
            f.score += w * s
    return _order(fused)


def fuse(
    method: str,
    lists: Mapping[str, tuple[Sequence[Hashable], Sequence[float]]],
    weights: Mapping[str, float] | None = None,
    k: int = DEFAULT_RRF_K,
) -> list[Fused]:
    """``rrf`` or ``weighted`` over named (items, scores) lists, each sorted best first."""
    if method == "rrf":
        return rrf(
            {name: items for name, (items, _) in lists.items()},
            weights,
            k,
            {name: scores for name, (_, scores) in lists.items()},
        )
    if method == "weighted":
        return weighted(lists, weights)
    raise BadInput(f"unknown fusion method {method!r}; choose rrf or weighted")


def parse_weights(spec: str | Mapping[str, float], names: Sequence[str]) -> dict[str, float]:
    """``"visual=1,text=0.5"`` -> {"visual": 1.0, "text": 0.5}; names not given keep weight 1."""
    out = dict.fromkeys(names, 1.0)
    if isinstance(spec, Mapping):
        items: list[tuple[str, Any]] = [(str(k), v) for k, v in spec.items()]
    else:
        items = []
        for part in str(spec).split(","):
            if not part.strip():
                continue
            name, sep, value = part.partition("=")
            if not sep:
                raise BadInput(f"weight {part.strip()!r} is not NAME=NUMBER (e.g. visual=1,text=1)")
            items.append((name.strip(), value.strip()))
    for name, value in items:
        if name not in out:
            raise BadInput(f"unknown weight {name!r}; choose from {', '.join(names)}")
        try:
            w = float(value)
        except (TypeError, ValueError):
            raise BadInput(f"weight {name}={value!r} is not a number") from None
        if not w >= 0 or w == float("inf"):
            raise BadInput(f"weight {name}={value} must be a finite number of at least 0")
        out[name] = w
    if not any(out.values()):
        raise BadInput("at least one weight must be above 0")
    return out
