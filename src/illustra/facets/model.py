"""Training a facet and ranking a collection by it.

A facet is a logistic regression over the picture vectors (the space "more like this" uses). Its
training set is the marked examples plus a sample of random items as extra negatives: most items
of a collection are not examples of any one facet, but a random item might be, so each counts for
less than a marked one (``RANDOM_NEGATIVE_WEIGHT``), and the classes are balanced so a handful of
positives is not drowned by the sample. The draw is seeded by the definition, so the same examples
always give the same facet.

Ranking is exact: every allowed vector is scored (``vectors @ w``, in chunks, memory-bound), since
a facet's weight vector is not a point near the data for which an approximate index is tuned, and
several facets combine by adding log-probabilities (multiplying probabilities), which no index can
answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import BadInput

RANDOM_NEGATIVES = 1000
RANDOM_NEGATIVE_WEIGHT = 0.25
REGULARISATION_C = 1.0
CHUNK_ROWS = 32_768
# Within a chunk, below this share of allowed vectors only those are gathered and scored; above it
# the whole chunk is streamed (gathering scattered rows costs about ten times as much per row).
GATHER_BELOW = 0.1


@dataclass(frozen=True)
class FacetModel:
    weights: np.ndarray  # (d,) float32
    bias: float
    positives: int
    negatives: int  # marked
    random_negatives: int

    def log_probability(self, vectors: np.ndarray) -> np.ndarray:
        """log P(facet | vector) of each row of ``vectors``."""
        logit = np.asarray(vectors, dtype=np.float32) @ self.weights
        logit += np.float32(self.bias)
        return -np.logaddexp(np.float32(0), -logit)


def seed_of(key: str) -> int:
    return int(key[:12], 16)


def _random_negatives(n: int, marked: np.ndarray, want: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    size = min(n, want + len(marked))
    drawn = rng.choice(n, size=size, replace=False)
    drawn = drawn[~np.isin(drawn, marked)][:want]
    return np.sort(drawn)


def train(vectors: np.ndarray, positives: np.ndarray, negatives: np.ndarray, seed: int) -> FacetModel:
    """Fit the facet on vector positions ``positives`` / ``negatives`` of ``vectors`` (n, d)."""
    from sklearn.linear_model import LogisticRegression

    n = len(vectors)
    pos = np.unique(np.asarray(positives, dtype=np.int64))
    neg = np.unique(np.asarray(negatives, dtype=np.int64))
    if len(pos) == 0:
        raise BadInput("a facet needs at least one positive example with a picture")
    marked = np.concatenate([pos, neg])
    rand = _random_negatives(n, marked, min(RANDOM_NEGATIVES, max(0, n - len(marked))), seed)
    if len(neg) + len(rand) == 0:
        raise BadInput("every item of the collection is a positive example: a facet needs items that are not")
    x = np.concatenate([np.asarray(vectors[pos]), np.asarray(vectors[neg]), np.asarray(vectors[rand])]).astype(
        np.float32, copy=False
    )
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg) + len(rand))])
    weight = np.concatenate([np.ones(len(pos) + len(neg)), np.full(len(rand), RANDOM_NEGATIVE_WEIGHT)])
    clf = LogisticRegression(C=REGULARISATION_C, class_weight="balanced", max_iter=1000)
    clf.fit(x, y, sample_weight=weight)
    return FacetModel(
        weights=clf.coef_[0].astype(np.float32),
        bias=float(clf.intercept_[0]),
        positives=len(pos),
        negatives=len(neg),
        random_negatives=len(rand),
    )


def score_all(models: Sequence[FacetModel], vectors: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
    """Summed log-probabilities of every vector position (-inf where ``allowed`` is False)."""
    n = len(vectors)
    out = np.full(n, -np.inf, dtype=np.float32)

    def score(block: np.ndarray) -> np.ndarray:
        # One matrix-vector product per facet: memory-bound, and faster than one (n, d) x (d, m)
        # product for a few facets.
        block = np.asarray(block, dtype=np.float32)
        total = np.zeros(len(block), dtype=np.float32)
        for m in models:
            total += m.log_probability(block)
        return total

    for s in range(0, n, CHUNK_ROWS):
        e = min(n, s + CHUNK_ROWS)
        if allowed is None:
            out[s:e] = score(vectors[s:e])
            continue
        keep = allowed[s:e]
        count = int(np.count_nonzero(keep))
        if count == 0:
            continue
        if count < GATHER_BELOW * (e - s):
            rows = np.flatnonzero(keep) + s  # read only the allowed vectors of this chunk
            out[rows] = score(vectors[rows])
        else:
            out[s:e][keep] = score(vectors[s:e])[keep]
    return out


def top(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` finite scores with their positions, ties broken by position (stable paging)."""
    k = min(k, int(np.count_nonzero(np.isfinite(scores))))
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    kth = np.partition(-scores, k - 1)[k - 1]
    keep = np.flatnonzero(-scores <= kth)
    order = keep[np.lexsort((keep, -scores[keep]))][:k]
    return scores[order].astype(np.float32), order.astype(np.int64)
