"""Retrieval metrics as pure functions over a ranked list of ids and a set of relevant ids.

Conventions (binary relevance):

* ``ranked`` is the system's answer, best first; repeated ids count once (at their first rank).
* ``relevant`` is the set of relevant ids *present in the collection*; callers drop absent ones.
  Every metric is undefined for an empty ``relevant`` set and raises ``ValueError``.
* AP@k = (1/|R|) * sum over ranks i <= k of P@i * rel_i — normalised by all relevant items, so
  a system that finds only some of them within k is not rewarded for stopping early.
* nDCG@k uses gain 1 / log2(i + 1) and the ideal ranking of min(|R|, k) relevant items.

The ``random_*`` functions give the exact expected value of each metric when the ``n`` items of
the collection are ranked in uniformly random order: a deterministic baseline with no sampling.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

PRIMARY_K = 10


def _dedupe(ranked: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ranked))


def _check(relevant: set[str] | frozenset[str], k: int) -> None:
    if not relevant:
        raise ValueError("metric is undefined without relevant items")
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")


def relevance_vector(ranked: Sequence[str], relevant: set[str] | frozenset[str], k: int) -> list[int]:
    """1/0 for each of the first ``k`` distinct ids of ``ranked``."""
    return [1 if r in relevant else 0 for r in _dedupe(ranked)[:k]]


def ranked_precision(relevance: Sequence[int | bool], k: int) -> float:
    """Share of relevant items among the first ``k`` of a ranking given as 1/0 (or True/False)
    per rank; a ranking shorter than ``k`` is not excused."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    return sum(1 for r in list(relevance)[:k] if r) / k


def ranked_average_precision(relevance: Sequence[int | bool], n_relevant: int | None = None) -> float:
    """Mean of the precision at each relevant rank, over ``n_relevant`` relevant items (default:
    those in the ranking, i.e. a full ranking). The one AP of both retrieval and taxonomy evaluation."""
    hits = 0
    total = 0.0
    for i, rel in enumerate(relevance, start=1):
        if rel:
            hits += 1
            total += hits / i
    denominator = hits if n_relevant is None else n_relevant
    return total / denominator if denominator else 0.0


def precision_at(ranked: Sequence[str], relevant: set[str] | frozenset[str], k: int = PRIMARY_K) -> float:
    """Relevant items among the first ``k`` results, divided by ``k`` (short lists are not excused)."""
    _check(relevant, k)
    return ranked_precision(relevance_vector(ranked, relevant, k), k)


def recall_at(ranked: Sequence[str], relevant: set[str] | frozenset[str], k: int = PRIMARY_K) -> float:
    _check(relevant, k)
    return sum(relevance_vector(ranked, relevant, k)) / len(relevant)


def average_precision(ranked: Sequence[str], relevant: set[str] | frozenset[str], k: int = 100) -> float:
    _check(relevant, k)
    return ranked_average_precision(relevance_vector(ranked, relevant, k), len(relevant))


def _discount(i: int) -> float:
    return 1.0 / math.log2(i + 1)


def ndcg_at(ranked: Sequence[str], relevant: set[str] | frozenset[str], k: int = PRIMARY_K) -> float:
    _check(relevant, k)
    dcg = sum(_discount(i) for i, rel in enumerate(relevance_vector(ranked, relevant, k), start=1) if rel)
    ideal = sum(_discount(i) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


# -- expected values under a uniformly random ranking of n items, r of them relevant -----------
def _check_random(n: int, r: int, k: int) -> int:
    if r <= 0:
        raise ValueError("metric is undefined without relevant items")
    if n < r:
        raise ValueError(f"{r} relevant items cannot be among {n} items")
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    return min(k, n)


def random_precision_at(n: int, r: int, k: int = PRIMARY_K) -> float:
    # E[hits in the top min(k, n)] = min(k, n) * r / n; P@k still divides by k.
    return _check_random(n, r, k) * r / n / k


def random_recall_at(n: int, r: int, k: int = PRIMARY_K) -> float:
    return _check_random(n, r, k) / n


def random_ndcg_at(n: int, r: int, k: int = PRIMARY_K) -> float:
    kk = _check_random(n, r, k)
    # Each rank holds a relevant item with probability r / n.
    dcg = (r / n) * sum(_discount(i) for i in range(1, kk + 1))
    ideal = sum(_discount(i) for i in range(1, min(r, k) + 1))
    return dcg / ideal


def random_average_precision(n: int, r: int, k: int = 100) -> float:
    """E[AP@k] = (1/r) * sum_{i<=k} (1/i) * E[rel_i * (rel_1 + ... + rel_i)]
    = sum_{i<=k} (1/i) * (1/n + (i - 1) * (r - 1) / (n * (n - 1)))."""
    kk = _check_random(n, r, k)
    pair = (r - 1) / (n * (n - 1)) if n > 1 else 0.0
    return sum((1.0 / n + (i - 1) * pair) / i for i in range(1, kk + 1))


def query_metrics(
    ranked: Sequence[str], relevant: set[str] | frozenset[str], k: int = 100
) -> dict[str, float]:
    """The per-query figures reported by ``illustra eval``: AP@k, P@10, R@10, nDCG@10."""
    return {
        "ap": average_precision(ranked, relevant, k),
        "p@10": precision_at(ranked, relevant, PRIMARY_K),
        "r@10": recall_at(ranked, relevant, PRIMARY_K),
        "ndcg@10": ndcg_at(ranked, relevant, PRIMARY_K),
    }


def random_query_metrics(n: int, r: int, k: int = 100) -> dict[str, float]:
    return {
        "ap": random_average_precision(n, r, k),
        "p@10": random_precision_at(n, r, PRIMARY_K),
        "r@10": random_recall_at(n, r, PRIMARY_K),
        "ndcg@10": random_ndcg_at(n, r, PRIMARY_K),
    }


def mean(values: Iterable[float]) -> float:
    vals = list(values)
    return sum(vals) / len(vals) if vals else 0.0
