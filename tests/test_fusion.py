from __future__ import annotations

import pytest

from illustra.errors import BadInput
from illustra.search.fusion import fuse, minmax, parse_weights, rrf, tied_ranks, weighted


def test_rrf_matches_hand_computed_scores_and_order():
    # visual: 1, 2, 3   text: 3, 1, 4   (k = 60, equal weights)
    #   1: 1/61 + 1/62 = 0.032522    3: 1/63 + 1/61 = 0.032266
    #   2: 1/62        = 0.016129    4: 1/63        = 0.015873
    out = rrf({"visual": [1, 2, 3], "text": [3, 1, 4]}, k=60)
    assert [f.item for f in out] == [1, 3, 2, 4]
    assert [round(f.score, 6) for f in out] == [0.032522, 0.032266, 0.016129, 0.015873]
    assert out[0].ranks == {"visual": 1, "text": 2}
    assert out[3].ranks == {"text": 3}


def test_rrf_weights_change_the_order_as_computed_by_hand():
    # text weighted 3x, k = 0:  a: 1/1 + 3/3 = 2.0;  b: 1/2 = 0.5;  c: 3/1 = 3.0;  d: 3/2 = 1.5
    out = rrf({"visual": ["a", "b"], "text": ["c", "d", "a"]}, {"visual": 1, "text": 3}, k=0)
    assert [(f.item, round(f.score, 6)) for f in out] == [("c", 3.0), ("a", 2.0), ("d", 1.5), ("b", 0.5)]
    # a zero weight leaves that list's items in, with no score from it
    out = rrf({"visual": ["a", "b"], "text": ["b", "a"]}, {"visual": 0, "text": 1}, k=60)
    assert [f.item for f in out] == ["b", "a"]


def test_rrf_ties_break_by_best_rank_then_item():
    # 5 and 6 swap places in the two lists: equal scores, equal best rank -> smaller item first
    assert [f.item for f in rrf({"a": [6, 5], "b": [5, 6]})] == [5, 6]
    # one list alone: 3 and 9 both score 1/61; 9 is first in the first list -> best rank 1 both,
    # so the smaller item wins
    assert [f.item for f in rrf({"a": [9], "b": [3]})] == [3, 9]
    # near-ties are not ties: 7: 1/61 + 1/64 = 0.032018 beats 8: 1/62 + 1/63 = 0.032002
    out = rrf({"a": [7, 8, 0, 1], "b": [2, 3, 8, 7]})
    assert [f.item for f in out][:3] == [7, 8, 2]


def test_equal_scores_share_a_rank():
    assert tied_ranks([0.9, 0.5, 0.5, 0.5, 0.1]) == [1, 2, 2, 2, 5]
    assert tied_ranks([]) == []
    # The second list cannot tell 1, 2, 3 apart: it moves none of them, so the first list decides.
    #   1: 1/61 + 1/61;  2: 1/62 + 1/61;  3: 1/63 + 1/61
    out = rrf({"a": [1, 2, 3], "b": [3, 2, 1]}, k=60, scores={"a": [3.0, 2.0, 1.0], "b": [0.4, 0.4, 0.4]})
    assert [f.item for f in out] == [1, 2, 3]
    assert round(out[2].score, 6) == round(1 / 63 + 1 / 61, 6) and out[2].ranks == {"a": 3, "b": 1}
    # Without scores the second list's order counts: 1: 1/61 + 1/63 = 3: 1/63 + 1/61 -> tie, smaller item
    assert [f.item for f in rrf({"a": [1, 2, 3], "b": [3, 2, 1]}, k=60)] == [1, 3, 2]
    with pytest.raises(BadInput, match="3 items but 1 scores"):
        rrf({"a": [1, 2, 3]}, scores={"a": [1.0]})


def test_rrf_counts_a_repeated_item_once_per_list():
    out = rrf({"a": [1, 1, 2]}, k=0)
    assert [(f.item, f.score) for f in out] == [(1, 1.0), (2, 1 / 3)]


def test_weighted_fusion_of_min_max_scores():
    # visual scores 0.9, 0.5, 0.1 -> 1, 0.5, 0;  text 10, 4 -> 1, 0
    lists = {"visual": ([1, 2, 3], [0.9, 0.5, 0.1]), "text": ([3, 2], [10.0, 4.0])}
    out = weighted(lists, {"visual": 1.0, "text": 2.0})
    # 1: 1.0;  2: 0.5 + 0;  3: 0 + 2 * 1 = 2.0
    assert [(f.item, round(f.score, 6)) for f in out] == [(3, 2.0), (1, 1.0), (2, 0.5)]
    assert minmax([3.0, 3.0]) == [1.0, 1.0]
    assert minmax([]) == []
    assert [f.item for f in fuse("weighted", lists, {"visual": 1.0, "text": 2.0})] == [3, 1, 2]
    assert [f.item for f in fuse("rrf", lists)] == [3, 2, 1]
    with pytest.raises(BadInput, match="unknown fusion method"):
        fuse("max", lists)
    with pytest.raises(BadInput, match="2 items but 1 scores"):
        weighted({"v": ([1, 2], [0.5])})


def test_parse_weights():
    assert parse_weights("visual=2, text=0.5", ["visual", "text"]) == {"visual": 2.0, "text": 0.5}
    assert parse_weights("text=3", ["visual", "text"]) == {"visual": 1.0, "text": 3.0}
    assert parse_weights("", ["visual", "text"]) == {"visual": 1.0, "text": 1.0}
    assert parse_weights({"visual": 0}, ["visual", "text"]) == {"visual": 0.0, "text": 1.0}
    with pytest.raises(BadInput, match="unknown weight 'colour'"):
        parse_weights("colour=1", ["visual", "text"])
    with pytest.raises(BadInput, match="not NAME=NUMBER"):
        parse_weights("visual", ["visual", "text"])
    with pytest.raises(BadInput, match="not a number"):
        parse_weights("visual=lots", ["visual", "text"])
    with pytest.raises(BadInput, match="at least 0"):
        parse_weights("visual=-1", ["visual", "text"])
    with pytest.raises(BadInput, match="at least one weight"):
        parse_weights("visual=0,text=0", ["visual", "text"])
    with pytest.raises(BadInput, match="at least 0"):
        rrf({"a": [1]}, k=-1)
