from __future__ import annotations

import itertools
import math

import pytest

from illustra.errors import BadInput
from illustra.eval import metrics as m
from illustra.eval.retrieval import Judgement, evaluate, load_queries

# ranked: hits at ranks 1, 3 and 5; one relevant item (d) never retrieved.
RANKED = ["a", "x", "b", "y", "c"]
RELEVANT = frozenset({"a", "b", "c", "d"})


def test_average_precision_by_hand():
    # (P@1 + P@3 + P@5) / |R| = (1 + 2/3 + 3/5) / 4 = 34/60
    assert m.average_precision(RANKED, RELEVANT, k=100) == pytest.approx(34 / 60)
    # Cut at k=3: only the hits at ranks 1 and 3 count, still divided by all 4 relevant items.
    assert m.average_precision(RANKED, RELEVANT, k=3) == pytest.approx((1 + 2 / 3) / 4)
    # Finding one of two relevant items first is not a perfect score.
    assert m.average_precision(["a"], {"a", "b"}, k=100) == pytest.approx(0.5)
    assert m.average_precision(["a", "b", "z"], {"a", "b"}, k=100) == 1.0


def test_precision_recall_ndcg_at_10_by_hand():
    assert m.precision_at(RANKED, RELEVANT, 10) == pytest.approx(0.3)  # 3 hits / 10 slots
    assert m.recall_at(RANKED, RELEVANT, 10) == pytest.approx(0.75)
    dcg = 1 / math.log2(2) + 1 / math.log2(4) + 1 / math.log2(6)
    idcg = sum(1 / math.log2(i + 1) for i in range(1, 5))
    assert m.ndcg_at(RANKED, RELEVANT, 10) == pytest.approx(dcg / idcg)
    assert m.ndcg_at(RANKED, RELEVANT, 10) == pytest.approx(0.73659, abs=1e-5)
    # More relevant items than k: the ideal ranking fills all k slots.
    many = {str(i) for i in range(20)}
    assert m.ndcg_at([str(i) for i in range(10)], many, 10) == pytest.approx(1.0)
    assert m.precision_at([str(i) for i in range(10)], many, 10) == 1.0
    assert m.recall_at([str(i) for i in range(10)], many, 10) == pytest.approx(0.5)


def test_empty_results_score_zero_and_empty_relevance_is_an_error():
    for fn in (m.average_precision, m.precision_at, m.recall_at, m.ndcg_at):
        assert fn([], {"a"}, 10) == 0.0
        with pytest.raises(ValueError):
            fn(["a"], set(), 10)


def test_repeated_ids_count_once():
    assert m.precision_at(["a", "a", "a"], {"a", "b"}, 10) == pytest.approx(0.1)
    assert m.average_precision(["a", "a", "b"], {"a", "b"}, 100) == 1.0


def test_random_baseline_by_hand():
    # One relevant item among 4, equally likely at each rank: E[AP] = (1 + 1/2 + 1/3 + 1/4) / 4.
    assert m.random_average_precision(4, 1, 100) == pytest.approx(25 / 48)
    assert m.random_precision_at(1000, 50, 10) == pytest.approx(0.05)
    assert m.random_recall_at(1000, 50, 10) == pytest.approx(0.01)
    assert m.random_precision_at(4, 2, 10) == pytest.approx(0.2)  # only 4 items for 10 slots
    assert m.random_recall_at(4, 2, 10) == 1.0
    with pytest.raises(ValueError):
        m.random_average_precision(10, 0, 10)


@pytest.mark.parametrize(("n", "r", "k"), [(5, 2, 3), (6, 3, 10), (6, 1, 2)])
def test_random_baseline_equals_mean_over_every_ranking(n, r, k):
    items = [str(i) for i in range(n)]
    relevant = frozenset(items[:r])
    perms = list(itertools.permutations(items))
    exact = m.random_query_metrics(n, r, k)
    sums = dict.fromkeys(exact, 0.0)
    for perm in perms:
        for key, v in m.query_metrics(perm, relevant, k).items():
            sums[key] += v
    for key in exact:
        assert exact[key] == pytest.approx(sums[key] / len(perms)), key


def test_evaluate_ignores_absent_ids_and_excludes_unjudgeable_queries():
    ids = frozenset({"a", "b", "c", "x", "y", "z"})
    answers = {"first": ["a", "x", "b"], "second": ["z", "y", "x"], "third": ["a"]}
    judged = [
        Judgement("first", ("a", "b", "gone-1", "gone-2")),
        Judgement("second", ("c",)),
        Judgement("third", ("gone-3",)),
    ]
    res = evaluate(judged, lambda q, k: answers[q][:k], ids, k=100)
    assert res["n_queries"] == 2 and res["n_items"] == 6
    first, second = res["queries"]
    assert first["n_relevant"] == 2 and first["n_judged"] == 4
    assert first["ap"] == pytest.approx((1 + 2 / 3) / 2)
    assert second["ap"] == 0.0 and second["r@10"] == 0.0
    assert res["metrics"]["map"] == pytest.approx((1 + 2 / 3) / 4)
    assert [e["query"] for e in res["excluded"]] == ["third"]
    assert res["random"]["map"] == pytest.approx(
        (m.random_average_precision(6, 2, 100) + m.random_average_precision(6, 1, 100)) / 2
    )
    # Same input, same output.
    assert evaluate(judged, lambda q, k: answers[q][:k], ids, k=100) == res


def test_load_queries_refuses_malformed_lines(tmp_path):
    good = tmp_path / "q.jsonl"
    good.write_text('{"query": "a cat", "relevant_ids": ["x", "x", "y"]}\n\n', encoding="utf-8")
    [j] = load_queries(good)
    assert j.query == "a cat" and j.relevant_ids == ("x", "y")
    for body, needle in [
        ('{"query": "a cat", "relevant_ids": ["x"]}\nnot json\n', ":2: not valid JSON"),
        ('{"query": "", "relevant_ids": []}\n', "'query'"),
        ('{"query": "a", "relevant_ids": "x"}\n', "'relevant_ids'"),
        ("\n", "holds no queries"),
    ]:
        bad = tmp_path / "bad.jsonl"
        bad.write_text(body, encoding="utf-8")
        with pytest.raises(BadInput, match=needle):
            load_queries(bad)
    with pytest.raises(BadInput, match="does not exist"):
        load_queries(tmp_path / "missing.jsonl")
