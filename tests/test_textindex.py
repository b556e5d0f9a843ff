from __future__ import annotations

import numpy as np
import pytest

from illustra.collection import Collection
from illustra.highlight import highlight_terms, highlight_words, to_html
from illustra.search.catalogue import load_text_index
from illustra.textindex import build_text_index, query_terms

from .fakes import FakeEncoder
from .textkit import BOOKS, book_rows, build_book_collection


@pytest.fixture
def books(tmp_path):
    coll = build_book_collection(tmp_path / "books", embed=False)
    build_text_index(coll, semantic=False, progress=False)
    return Collection(tmp_path / "books")


def ids(coll, rows):
    return [str(coll.ids[r]) for r in rows]


def test_query_terms_fold_case_and_accents_and_drop_stop_words():
    assert query_terms("a map from a book about Egypt") == ["map", "book", "egypt"]
    assert query_terms("Voyage en Égypte") == ["voyage", "en", "egypte"]
    assert query_terms("the of") == ["the", "of"]  # only stop words: kept, so the query still matches
    assert query_terms("x 1850 y") == ["1850"]
    assert query_terms("cat_dog CAT") == ["cat", "dog"]
    assert query_terms("") == []


def test_keyword_ranking_weights_fields_stems_and_folds_accents(books):
    ti = load_text_index(books)
    assert ti is not None and ti.fields == ["title", "creator", "place", "publisher", "keywords"]
    _, rows = ti.keyword_ranking("egypt", 10, None)
    found = ids(books, rows)
    # A title match outranks a publisher match; "Égypte" matches "egypt" (accents folded, stemmed).
    assert set(found) == {"egypt/1", "egypt/3", "pub/1"}
    assert found.index("egypt/1") < found.index("pub/1") and found.index("egypt/3") < found.index("pub/1")
    scores, rows = ti.keyword_ranking("maps", 10, None)
    assert ids(books, rows) == ["egypt/1"] and scores[0] > 0
    _, rows = ti.keyword_ranking("engraving", 10, None)
    assert ids(books, rows) == ["scot/2"]
    # The items with no text at all are not in the index.
    assert ti.info["keyword"]["docs"] == len(BOOKS) - 1


def test_allowed_rows_restrict_the_keyword_ranking(books):
    ti = load_text_index(books)
    mask = np.ones(len(books), dtype=bool)
    mask[books.row_of("egypt/1")] = False
    _, rows = ti.keyword_ranking("egypt", 10, mask)
    assert set(ids(books, rows)) == {"egypt/3", "pub/1"}
    _, rows = ti.keyword_ranking("egypt", 1, mask)
    assert ids(books, rows) == ["egypt/3"]
    _, rows = ti.keyword_ranking("egypt", 10, np.zeros(len(books), dtype=bool))
    assert len(rows) == 0


@pytest.mark.parametrize(
    "query",
    [
        '"',
        "*",
        "egypt AND",
        "NEAR(map nile)",
        "title:egypt",
        "^map",
        "((",
        "- -",
        "map OR",
        "NOT",
        "🐈 cat",
        "'; DROP",
    ],
)
def test_queries_with_search_syntax_never_fail(books, query):
    ti = load_text_index(books)
    scores, rows, details = ti.rank(query, 10, None)
    assert len(scores) == len(rows) == len(details)
    if "map" in query:
        assert "egypt/1" in ids(books, rows)


def test_explain_reports_matched_words_fields_and_safe_segments(books):
    ti = load_text_index(books)
    rows = [books.row_of(i) for i in ("egypt/1", "egypt/3", "scot/1", "odd/1")]
    ex = ti.explain("Nile maps of EGYPT", rows)
    e1 = ex[books.row_of("egypt/1")]
    assert e1["matched_fields"] == {"title": ["map", "egypt", "nile"], "keywords": ["map", "nile"]}
    assert e1["matched_terms"] == ["map", "egypt", "nile"]
    assert e1["keyword_score"] > 0
    assert (
        to_html(e1["highlights"]["title"])
        == "<mark>Map</mark> of Upper <mark>Egypt</mark> and the <mark>Nile</mark>"
    )
    assert ex[books.row_of("egypt/3")]["matched_terms"] == ["égypte"]
    assert books.row_of("scot/1") not in ex  # no word of the query in its text
    odd = ti.explain("bold title", [books.row_of("odd/1")])[books.row_of("odd/1")]
    html = to_html(odd["highlights"]["title"])
    assert html == "A &lt;b&gt;<mark>bold</mark>&lt;/b&gt; &quot;<mark>title</mark>&quot; &amp; more"
    assert "\x00" not in html and "\x07" not in html


def test_highlight_helpers():
    segs = highlight_terms("Voyage en Égypte, <egypt>", ["EGYPTE", "egypt"])
    assert segs == [
        {"text": "Voyage en ", "match": False},
        {"text": "Égypte", "match": True},
        {"text": ", <", "match": False},
        {"text": "egypt", "match": True},
        {"text": ">", "match": False},
    ]
    assert to_html(segs) == "Voyage en <mark>Égypte</mark>, &lt;<mark>egypt</mark>&gt;"
    assert highlight_words("Maps, mapping & MAP", lambda w: w.lower().startswith("map")) == [
        {"text": "Maps", "match": True},
        {"text": ", ", "match": False},
        {"text": "mapping", "match": True},
        {"text": " & ", "match": False},
        {"text": "MAP", "match": True},
    ]
    assert highlight_terms("", ["x"]) == []
    with pytest.raises(ValueError):
        to_html(segs, tag="mark onclick=x")


def test_sentence_vectors_resume_and_only_reembed_changed_chunks(tmp_path):
    coll = build_book_collection(tmp_path / "b", embed=False)
    enc = FakeEncoder()
    embedded: list[str] = []

    def counting(texts):
        embedded.extend(texts)
        return enc.embed_texts(texts)

    def failing_after_first(texts):
        if embedded:
            raise KeyboardInterrupt
        return counting(texts)

    # 11 rows in chunks of 4: rows 0-3 (4 documents), 4-7 (4), 8-10 (2: row 10 has no text).
    with pytest.raises(KeyboardInterrupt):
        build_text_index(
            coll,
            semantic=True,
            semantic_model="fake",
            embed_fn=failing_after_first,
            progress=False,
            chunk_rows=4,
        )
    assert len(embedded) == 4
    embedded.clear()
    info = build_text_index(
        coll, semantic=True, semantic_model="fake", embed_fn=counting, progress=False, chunk_rows=4
    )
    assert len(embedded) == 6  # the first chunk was kept
    assert info["semantic"]["count"] == 10 and info["semantic"]["model"] == "fake"
    embedded.clear()
    build_text_index(
        coll, semantic=True, semantic_model="fake", embed_fn=counting, progress=False, chunk_rows=4
    )
    assert embedded == []  # nothing changed, nothing embedded again

    # Replace one item's title: only its chunk is embedded again.
    row = book_rows()[5]
    row["title"] = "Loch Katrine in red evening light"
    Collection.create(tmp_path / "b", [row], source={"kind": "test"}, on_duplicate="replace")
    coll = Collection(tmp_path / "b")
    assert load_text_index(coll).stale
    build_text_index(
        coll, semantic=True, semantic_model="fake", embed_fn=counting, progress=False, chunk_rows=4
    )
    assert len(embedded) == 4 and any("Loch Katrine" in t for t in embedded)
    ti = load_text_index(coll)
    assert not ti.stale
    _, rows = ti.keyword_ranking("katrine", 5, None)
    assert ids(coll, rows) == ["scot/3"]
    # The fake sentence model maps colour words to directions: "red" now finds the new title.
    scores, rows = ti.semantic_ranking(ti.embed_query("red"), 3, None)
    assert "scot/3" in ids(coll, rows)


def test_no_text_means_no_index(tmp_path):
    rows = [{"id": f"i{j}", "title": "", "creator": None, "year": 1900} for j in range(3)]
    coll = Collection.create(tmp_path / "n", rows, source={"kind": "test"})
    assert build_text_index(coll, progress=False) is None
    assert load_text_index(coll) is None


@pytest.fixture
def bl_collection(tmp_path, bl_sample):
    from illustra.sources import BLFlickrSource, ingest

    ingest(tmp_path / "bl", BLFlickrSource(bl_sample, limit=200))
    return Collection(tmp_path / "bl")


def test_bl_manifest_text_fields_feed_the_index(bl_collection):
    coll = bl_collection
    assert coll.text_fields == ["title", "creator", "place", "publisher"]
    info = build_text_index(coll, semantic=False, progress=False)
    assert info is not None and info["fields"] == ["title", "creator", "place", "publisher"]
    ti = load_text_index(coll)
    # Search for the first author and the place of some item: the item's fields say why it matched.
    table = coll.dataset.data
    creators = table.column("creator").to_pylist()
    places = table.column("place").to_pylist()
    row = next(
        i
        for i, (c, p) in enumerate(zip(creators, places, strict=True))
        if c and p and len(c.split(",")[0]) > 3
    )
    surname = creators[row].split(",")[0].split()[0]
    scores, rows, _ = ti.rank(f"{surname} {places[row]}", 50, None)
    assert row in rows.tolist()
    ex = ti.explain(f"{surname} {places[row]}", [row])[row]
    assert "creator" in ex["matched_fields"]


@pytest.mark.slow
def test_minilm_sentence_vectors_find_meaning_beyond_the_words(tmp_path):
    """The real offline sentence model: 'kitten' finds a cat; loads all-MiniLM-L6-v2 (a few seconds)."""
    rows = [
        {"id": "a", "title": "A sleeping cat on a cushion", "year": 1900},
        {"id": "b", "title": "Railway bridge over the Forth", "year": 1900},
        {"id": "c", "title": "Portrait of the Duke of Wellington", "year": 1900},
        {"id": "d", "title": "Fishing boats in a harbour", "year": 1900},
    ]
    coll = Collection.create(tmp_path / "m", rows, source={"kind": "test"})
    info = build_text_index(coll, semantic=True, progress=False)
    assert info["semantic"]["model"] == "minilm" and info["semantic"]["dim"] == 384
    ti = load_text_index(coll)
    scores, rows_found, details = ti.rank("kitten", 4, None)
    assert ids(coll, rows_found)[0] == "a"  # no shared word: found by meaning alone
    assert details[int(rows_found[0])]["keyword_rank"] is None and details[int(rows_found[0])]["semantic_rank"] == 1
    _, rows_found = ti.semantic_ranking(ti.embed_query("ships at sea"), 1, None)
    assert ids(coll, rows_found) == ["d"]
