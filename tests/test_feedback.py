""" "Report this result": the SQLite store, ``illustra feedback`` and the report routes."""

from __future__ import annotations

import csv
import sqlite3
import threading
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from illustra.api import create_app, serve_in_thread
from illustra.cli import main
from illustra.collection import Collection
from illustra.errors import BadInput
from illustra.guardrails.feedback import EXPORT_COLUMNS, FeedbackStore
from illustra.index import build_index

from .searchkit import build_colour_collection


@pytest.fixture
def coll(tmp_path: Path) -> Collection:
    c = build_colour_collection(tmp_path / "c")
    build_index(c, "fake")
    return Collection(tmp_path / "c")


def _cli(*args: str):
    return CliRunner().invoke(main, list(args))


# -- the store -----------------------------------------------------------------------------------
def test_add_list_hide_and_export(tmp_path):
    store = FeedbackStore(tmp_path)
    assert store.list() == [] and store.hidden() == frozenset()
    assert not (tmp_path / "feedback.sqlite").exists()
    a = store.add("red/00", "a red plate", "offensive or harmful")
    b = store.add("red/00", "", "  wrong\n or misleading  ")
    c = store.add("blue/01", '=HYPERLINK("http://x")', "other")
    assert (a, b, c) == (1, 2, 3)
    rows = store.list()
    assert [r["id"] for r in rows] == [3, 2, 1]  # newest first
    assert rows[1]["reason"] == "wrong or misleading" and rows[1]["query"] == ""
    assert {r["item_id"] for r in store.list(item_id="red/00")} == {"red/00"}
    assert store.hide("red/00", note="reviewed") and not store.hide("red/00")
    assert store.hidden() == {"red/00"}
    assert [r["hidden"] for r in store.list()] == [False, True, True]
    assert store.summary()[0] == {
        "item_id": "red/00",
        "reports": 2,
        "latest": rows[1]["created"],
        "hidden": True,
    }
    out = tmp_path / "reports.csv"
    assert store.export_csv(out) == 3
    got = list(csv.DictReader(out.open(encoding="utf-8")))
    assert list(got[0]) == EXPORT_COLUMNS
    assert [g["id"] for g in got] == ["1", "2", "3"]
    assert got[2]["query"].startswith("'=HYPERLINK")  # a spreadsheet will not run it
    assert store.unhide("red/00") and not store.unhide("red/00") and store.hidden() == frozenset()
    # What is stored is plain SQLite: (query, item, reason, time) per report.
    with sqlite3.connect(tmp_path / "feedback.sqlite") as conn:
        assert conn.execute("SELECT item_id, query, reason FROM reports WHERE id = 1").fetchone() == (
            "red/00",
            "a red plate",
            "offensive or harmful",
        )


def test_bad_reports_are_refused(tmp_path):
    store = FeedbackStore(tmp_path)
    with pytest.raises(BadInput, match="the reason is required"):
        store.add("red/00", "q", "   ")
    with pytest.raises(BadInput, match="the item id is required"):
        store.add("", "q", "why")
    with pytest.raises(BadInput, match="limit is 2000"):
        store.add("red/00", "q", "x" * 2001)
    assert store.list() == []


def test_concurrent_reports_are_all_kept(tmp_path):
    store = FeedbackStore(tmp_path)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(10):
                FeedbackStore(tmp_path).add(f"item/{n}", f"q{i}", "other")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ids = [r["id"] for r in store.list()]
    assert len(ids) == 40 and len(set(ids)) == 40


# -- the command ---------------------------------------------------------------------------------
def test_feedback_cli(coll, tmp_path):
    root = str(coll.root)
    FeedbackStore(coll.root).add("green/02", "green", "privacy concern")
    res = _cli("feedback", "list", "--collection", root)
    assert res.exit_code == 0 and "green/02" in res.stdout and "privacy concern" in res.stdout
    res = _cli("feedback", "hide", "--collection", root, "green/02", "--note", "checked")
    assert res.exit_code == 0 and "green/02: hidden" in res.stdout
    assert "[hidden]" in _cli("feedback", "list", "--collection", root, "--summary").stdout
    assert "checked" in _cli("feedback", "hidden", "--collection", root).stdout
    res = _cli("feedback", "hide", "--collection", root, "no/such/item")
    assert res.exit_code == 3 and "no item with id 'no/such/item'" in res.stderr
    out = tmp_path / "r.csv"
    res = _cli("feedback", "export", "--collection", root, "--output", str(out))
    assert res.exit_code == 0 and "1 report(s)" in res.stderr and out.read_text().count("\n") == 2
    res = _cli("feedback", "unhide", "--collection", root, "green/02")
    assert "shown again" in res.stdout and FeedbackStore(coll.root).hidden() == frozenset()
    assert _cli("feedback", "list", "--collection", str(tmp_path / "none")).exit_code == 3


# -- the routes ----------------------------------------------------------------------------------
def test_report_route_stores_and_validates(coll):
    with TestClient(create_app(coll.root), raise_server_exceptions=False) as client:
        r = client.post(
            "/api/items/red/03/report", json={"query": "a red plate", "reason": "offensive or harmful"}
        )
        assert r.status_code == 201
        rep = r.json()["report"]
        assert rep["item_id"] == "red/03" and rep["query"] == "a red plate" and rep["id"] == 1
        r = client.post("/api/items/red/03/report", data={"reason": "other", "query": "red"})
        assert r.status_code == 201 and r.json()["report"]["id"] == 2
        r = client.post("/api/items/no/such/report", json={"reason": "other"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "item_not_found"
        assert str(coll.root) not in r.json()["error"]["message"]
        r = client.post("/api/items/red/03/report", json={"query": "red"})
        assert r.status_code == 422 and "reason" in r.json()["error"]["message"]
        r = client.post(
            "/api/items/red/03/report", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 422
        r = client.post("/api/items/red/03/report", json={"reason": "x" * 20_000})
        assert r.status_code == 422
        # The page's form: a thank-you page linking back to the results (never elsewhere).
        r = client.post(
            "/items/red/04/report",
            data={
                "reason": "wrong or misleading description",
                "details": "not red",
                "query": "red",
                "return_to": "/search?q=red&partial=1",
            },
        )
        assert r.status_code == 201 and "your report was recorded" in r.text
        assert 'href="/search?q=red"' in r.text
        r = client.post(
            "/items/red/04/report", data={"reason": "other", "return_to": "https://evil.example/"}
        )
        assert 'href="/"' in r.text and "evil" not in r.text
        about = client.get("/api/about").json()
        assert about["guardrails"]["enabled"] is True
    rows = FeedbackStore(coll.root).list()
    assert [r["item_id"] for r in rows] == ["red/04", "red/04", "red/03", "red/03"]
    assert rows[1]["reason"] == "wrong or misleading description: not red"


def test_report_over_real_http(coll):
    server = serve_in_thread(create_app(coll.root))
    try:
        r = httpx.post(
            f"{server.url}/api/items/blue/00/report", json={"query": "blue", "reason": "other"}, timeout=10
        )
        assert r.status_code == 201
    finally:
        server.stop()
    assert FeedbackStore(coll.root).list()[0]["item_id"] == "blue/00"
