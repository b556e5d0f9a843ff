from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from illustra.cli import main
from illustra.collection import Collection
from illustra.encoders import load_encoder
from illustra.errors import NotEmbedded
from illustra.index import build_index
from illustra.search import SearchService
from illustra.search.filters import Filters
from illustra.search.fusion import rrf
from illustra.search.hybrid import candidate_depth
from illustra.search.shape import response_json
from illustra.textindex import build_text_index

from .fakes import solid
from .searchkit import embed_with
from .textkit import build_book_collection

MODES = ["visual", "text", "hybrid"]


@pytest.fixture(autouse=True)
def _fake_sentence_model(monkeypatch):
    # The fake encoder stands in for the sentence model: colour words are its only meanings.
    monkeypatch.setenv("ILLUSTRA_TEXT_SEMANTIC_MODEL", "fake")
    monkeypatch.setenv("ILLUSTRA_TEXT_SEMANTIC", "on")


@pytest.fixture
def books(tmp_path):
    coll = build_book_collection(tmp_path / "books")
    build_index(coll, "fake")
    build_text_index(coll, progress=False)
    return Collection(tmp_path / "books")


def ids(resp):
    return [h.id for h in resp.results]


def test_default_mode_is_hybrid_and_each_mode_finds_what_it_should(books):
    svc = SearchService(books)
    assert svc.resolve_mode(None) == ("hybrid", None)
    text = svc.search_text("Egypt", k=3, mode="text")
    assert text.mode == "text" and set(ids(text)) == {"egypt/1", "egypt/3", "pub/1"}
    # egypt/3 has no picture: found by its catalogue entry in text and hybrid modes, never in visual.
    hybrid = svc.search_text("Egypt", k=11)
    assert hybrid.mode == "hybrid" and "egypt/3" in ids(hybrid)
    assert "egypt/3" not in ids(svc.search_text("Egypt", k=11, mode="visual"))
    # A colour word is a picture match for the fake model: visual finds red pictures, text finds none of them.
    visual = svc.search_text("red", k=2, mode="visual")
    assert set(ids(visual)) == {"cat/1", "cat/2"} and visual.mode == "visual"


def test_hybrid_order_is_rrf_of_the_visual_and_text_rankings(books):
    svc = SearchService(books)
    query = "yellow map of Egypt"
    depth = candidate_depth(0, 10)
    v_scores, v_rows = svc.vector_ranking(svc.embed_text(query), depth, None)
    t_scores, t_rows, _ = svc.text_index.rank(query, depth, None)
    lists = {"visual": v_rows.tolist(), "text": t_rows.tolist()}
    scores = {"visual": v_scores.tolist(), "text": t_scores.tolist()}
    expected = [books.ids[f.item] for f in rrf(lists, k=60, scores=scores)]
    resp = svc.search_text(query, k=10, mode="hybrid")
    assert ids(resp) == expected[:10]
    # Both lists agree on the Egypt map: a yellow picture whose title matches.
    assert ids(resp)[0] == "egypt/1"
    assert resp.results[0].explain["matched_by"] == ["picture", "catalogue"]


def test_every_hit_explains_itself(books):
    svc = SearchService(books)
    enc = load_encoder("fake")
    qvec = enc.embed_texts(["Egypt map yellow"])[0]
    for mode in ("text", "hybrid"):
        resp = svc.search_text("Egypt map yellow", k=11, mode=mode)
        assert resp.results
        for h in resp.results:
            ex = h.explain
            assert ex["mode"] == mode and ex["fused_rank"] == h.rank
            assert {
                "visual_score",
                "text_score",
                "text_rank",
                "keyword_score",
                "semantic_score",
                "matched_terms",
                "matched_fields",
                "highlights",
                "matched_by",
            } <= set(ex)
            if mode == "hybrid" and books.has_image(h.row):
                # Exact cosine from the stored vector, whether or not the picture list held the item.
                pos = svc.index.position_of_row(h.row)
                assert ex["visual_score"] == pytest.approx(float(svc.index.vectors[pos] @ qvec), abs=1e-5)
            else:
                assert ex["visual_score"] is None
        by_id = {h.id: h.explain for h in resp.results}
        assert by_id["egypt/1"]["matched_fields"] == {"title": ["map", "egypt"], "keywords": ["map"]}
        assert by_id["egypt/3"]["matched_terms"] == ["égypte"]
        assert by_id["egypt/1"]["keyword_score"] > by_id["pub/1"]["keyword_score"] > 0
        assert by_id["scot/1"]["matched_terms"] == []
    json.dumps(response_json(resp))  # explanations are plain JSON


FILTERS = [
    (Filters(year_from=1815, year_to=1830), lambda m: 1815 <= m["year"] <= 1830),
    (Filters(fields={"place": "london"}), lambda m: m["place"] == "London"),
    (Filters(fields={"book_identifier": "B3"}), lambda m: m["book_identifier"] == "B3"),
    (Filters(title_contains="of"), lambda m: "of" in m["title"].lower()),
    (
        Filters(fields={"book_identifier": "B1"}, exclude_ids=frozenset({"egypt/2"})),
        lambda m: m["book_identifier"] == "B1",
    ),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", range(len(FILTERS)))
def test_filters_behave_the_same_in_every_mode(books, mode, case):
    svc = SearchService(books)
    f, ok = FILTERS[case]
    allowed = {str(books.ids[r]) for r in np.flatnonzero(svc.row_mask(f))}
    if mode == "visual":
        allowed = {i for i in allowed if books.has_image(books.row_of(i))}
    resp = svc.search_text("Egypt Edinburgh yellow green", k=20, filters=f, mode=mode)
    assert resp.results and all(ok(h.metadata) for h in resp.results)
    if f.exclude_ids:
        assert "egypt/2" not in ids(resp) and "egypt/1" in ids(resp)
    if mode != "text":
        # Picture rankings reach every allowed item; the text ranking only those whose words match.
        assert set(ids(resp)) == allowed
    else:
        assert set(ids(resp)) <= allowed


@pytest.mark.parametrize("mode", MODES)
def test_paging_is_consistent_in_every_mode(books, mode):
    svc = SearchService(books)
    q = "London Egypt castle red"
    full = svc.search_text(q, k=8, mode=mode)
    p1 = svc.search_text(q, k=4, mode=mode)
    p2 = svc.search_text(q, k=4, offset=4, mode=mode)
    assert ids(p1) + ids(p2) == ids(full)
    assert [h.rank for h in p2.results] == [5, 6, 7, 8]
    assert p1.has_more


@pytest.mark.parametrize("query", ['"', "NEAR(", "title:x OR", "*", "the of a"])
def test_odd_queries_work_in_every_mode(books, query):
    svc = SearchService(books)
    for mode in MODES:
        resp = svc.search_text(query, k=5, mode=mode)
        assert resp.mode == mode


def test_collection_without_text_falls_back_to_visual_said_once(tmp_path):
    from illustra.images import encode_stored

    rows = [
        {"id": f"{c}/{j}", "image": {"bytes": encode_stored(solid(c)), "path": None}, "year": 1900}
        for c in ("red", "blue")
        for j in range(3)
    ]
    coll = Collection.create(tmp_path / "plain", rows, source={"kind": "test"})
    embed_with(coll)
    coll = Collection(tmp_path / "plain")
    build_index(coll, "fake")
    assert build_text_index(coll, progress=False) is None
    svc = SearchService(coll)
    default = svc.search_text("red", k=3)
    assert default.mode == "visual" and default.notices == []
    for mode in ("text", "hybrid"):
        resp = svc.search_text("red", k=3, mode=mode)
        assert resp.mode == "visual"
        assert len(resp.notices) == 1 and "only the pictures were searched" in resp.notices[0]
        assert {h.id.split("/")[0] for h in resp.results} == {"red"}


def test_cli_index_search_and_info(books, tmp_path):
    runner = CliRunner()
    root = str(books.root)
    res = runner.invoke(main, ["index", "--collection", root])
    assert res.exit_code == 0, res.output
    assert "text index: 10 items with text in title, creator, place, publisher, keywords" in res.output
    res = runner.invoke(
        main, ["search", "--collection", root, "maps of Egypt", "--mode", "text", "--json", "-k", "3"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["mode"] == "text"
    top = out["results"][0]
    assert top["id"] == "egypt/1" and top["explain"]["matched_terms"] == ["map", "egypt"]
    res = runner.invoke(main, ["search", "--collection", root, "Edinburgh castle", "-k", "2"])
    assert res.exit_code == 0, res.output
    assert "title: Edinburgh, castle" in res.stdout and "matched by" in res.stdout
    res = runner.invoke(main, ["info", "--collection", root])
    assert res.exit_code == 0 and "text index" in res.output
    res = runner.invoke(main, ["info", "--collection", root, "--json"])
    assert json.loads(res.stdout)["text_index"]["keyword"]["docs"] == 10


def test_catalogue_only_collection_searches_its_text(tmp_path, bl_sample):
    runner = CliRunner()
    root = str(tmp_path / "bl")
    res = runner.invoke(
        main,
        [
            "ingest",
            "manifest",
            str(bl_sample),
            "--preset",
            "bl-flickr",
            "--no-progress",
            "--collection",
            root,
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["index", "--collection", root, "--no-text-semantic"])
    assert res.exit_code == 0, res.output
    assert "building the catalogue text index only" in res.output
    coll = Collection(root)
    assert coll.manifest["text_index"]["semantic"] is None
    svc = SearchService(coll)
    assert svc.resolve_mode(None) == ("text", None)
    resp = svc.search_text("London", k=5)
    assert resp.mode == "text" and len(resp.results) == 5
    assert all(
        "place" in h.explain["matched_fields"]
        or "publisher" in h.explain["matched_fields"]
        or "title" in h.explain["matched_fields"]
        for h in resp.results
    )
    hybrid = svc.search_text("London", k=5, mode="hybrid")
    assert hybrid.mode == "text" and len(hybrid.notices) == 1
    with pytest.raises(NotEmbedded):
        svc.search_text("London", k=5, mode="visual")
    # Filter by book: every result is from that book, in text mode.
    book = resp.results[0].metadata["book_identifier"]
    same = svc.search_text("London", k=50, filters=Filters(fields={"book_identifier": book}))
    assert same.results and {h.metadata["book_identifier"] for h in same.results} == {book}
    res = runner.invoke(main, ["search", "--collection", root, "London", "--mode", "visual"])
    assert res.exit_code != 0 and "not embedded" in res.output


def _queries(path, marker: bool):
    lines = [
        {"query": "Egypt", "relevant_ids": ["egypt/1", "egypt/3"]},
        {"query": "Edinburgh castle", "relevant_ids": ["scot/1"]},
        {"query": "red", "relevant_ids": ["cat/1", "cat/2"]},
    ]
    if marker:
        lines[0]["judged_from"] = "metadata"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return str(path)


def test_eval_compares_modes_in_one_run_and_flags_metadata_judgements(books, tmp_path):
    root = str(books.root)
    plain = _queries(tmp_path / "q.jsonl", marker=False)
    res = CliRunner().invoke(
        main,
        [
            "eval",
            "--collection",
            root,
            "--queries",
            plain,
            "--mode",
            "visual,text,hybrid",
            "--json",
            "--no-save",
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [r["mode"] for r in doc["comparison"]] == ["visual", "text", "hybrid"]
    by = {r["mode"]: r for r in doc["comparison"]}
    # "red" is a picture query (fake model), "Egypt" a catalogue one: each mode wins its own.
    q = {m: {x["query"]: x["ap"] for x in doc["modes"][m]["queries"]} for m in by}
    assert q["visual"]["red"] == 1.0 and q["text"]["Egypt"] == 1.0 and q["text"]["red"] < 1.0
    assert by["hybrid"]["map"] >= min(by["visual"]["map"], by["text"]["map"])
    assert doc["judgements_from_metadata"] is False and "caveat" not in doc

    marked = _queries(tmp_path / "m.jsonl", marker=True)
    res = CliRunner().invoke(
        main, ["eval", "--collection", root, "--queries", marked, "--mode", "text,visual", "--no-save"]
    )
    assert res.exit_code == 0, res.output
    assert "caveat: the relevance judgements were derived from the same catalogue metadata" in res.output
    assert res.output.index("text") < res.output.index("visual")
    # One mode: the caveat is attached to the result too; --no-judgements-from-metadata overrides.
    res = CliRunner().invoke(
        main, ["eval", "--collection", root, "--queries", marked, "--mode", "hybrid", "--json", "--no-save"]
    )
    assert json.loads(res.stdout)["caveat"].startswith("the relevance judgements")
    res = CliRunner().invoke(
        main,
        [
            "eval",
            "--collection",
            root,
            "--queries",
            marked,
            "--mode",
            "hybrid",
            "--json",
            "--no-save",
            "--no-judgements-from-metadata",
        ],
    )
    assert "caveat" not in json.loads(res.stdout)
    res = CliRunner().invoke(
        main, ["eval", "--collection", root, "--queries", marked, "--mode", "visual,pictures"]
    )
    assert res.exit_code != 0 and "got 'pictures'" in res.output
