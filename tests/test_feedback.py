""" "Report this result": the SQLite store, ``illustra feedback`` and the report routes."""

from __future__ import annotations

import csv
import logging
import sqlite3
import threading
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from fastapi import APIRouter
from starlette.testclient import TestClient

from illustra.api import create_app, serve_in_thread
from illustra.api.report_routes import MAX_REPORT_DETAILS, MAX_REPORT_REASON
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


def test_text_that_is_not_unicode_is_refused(tmp_path):
    store = FeedbackStore(tmp_path)
    for args in (("a\ud800", "q", "other"), ("item", "q\udfff", "other"), ("item", "q", "\ud800")):
        with pytest.raises(BadInput, match="Unicode"):
            store.add(*args)
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
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
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


# -- hostile report bodies -------------------------------------------------------------------------
HOSTILE_BODIES = {
    "nested arrays": b"[" * 5000 + b"]" * 5000,
    "nested objects": b'{"reason": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3000 + b"}",
    "huge number": b'{"reason": "other", "query": ' + b"9" * 5000 + b"}",
    "huge number alone": b"9" * 5000,
    "lone surrogate": b'{"reason": "\\ud800"}',
    "lone low surrogate in query": b'{"reason": "other", "query": "a\\udfffb"}',
    "reason not text": b'{"reason": ["other"]}',
    "unknown field": b'{"reason": "other", "colour": "red"}',
    "not an object": b'"other"',
    "empty": b"",
}


@pytest.mark.parametrize("name", list(HOSTILE_BODIES))
def test_hostile_report_bodies_are_refused_with_the_error_shape(coll, name, caplog):
    with TestClient(create_app(coll.root), raise_server_exceptions=False) as client:
        r = client.post(
            "/api/items/red/03/report",
            content=HOSTILE_BODIES[name],
            headers={"content-type": "application/json"},
        )
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:200])
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert len(body["error"]["message"]) < 300
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert FeedbackStore(coll.root).list() == []


def test_report_fields_are_bounded(coll):
    with TestClient(create_app(coll.root), raise_server_exceptions=False) as client:
        ok = client.post(
            "/api/items/red/03/report",
            json={"reason": "r" * MAX_REPORT_REASON, "details": "d" * MAX_REPORT_DETAILS, "query": "q" * 1000},
        )
        assert ok.status_code == 201, ok.text
        for field, size in (("reason", MAX_REPORT_REASON), ("details", MAX_REPORT_DETAILS), ("query", 1000)):
            fields = {"reason": "other", field: "x" * (size + 1)}
            r = client.post("/api/items/red/03/report", json=fields)
            assert r.status_code == 422 and field in r.json()["error"]["message"], r.text
        r = client.post("/api/items/red/03/report", json={"reason": "   "})
        assert r.status_code == 422 and "reason" in r.json()["error"]["message"]


def test_get_on_the_report_route_is_405(coll):
    with TestClient(create_app(coll.root), raise_server_exceptions=False) as client:
        r = client.get("/api/items/red/03/report")
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
        assert "POST" in r.headers["allow"]


def test_an_unexpected_error_is_a_500_logged_once(coll, caplog):
    router = APIRouter()

    @router.get("/api/boom")
    def boom() -> None:
        raise RuntimeError("kaboom")

    server = serve_in_thread(create_app(coll.root, routers=[router]))
    # The server configures its own loggers when it starts; listen on them too.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO):
            r = httpx.get(f"{server.url}/api/boom", timeout=10)
            page = httpx.get(f"{server.url}/api/boom", headers={"accept": "text/html"}, timeout=10)
    finally:
        for name in ("uvicorn", "uvicorn.error"):
            logging.getLogger(name).removeHandler(caplog.handler)
        server.stop()
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    assert "kaboom" not in r.text and "Traceback" not in r.text
    assert page.status_code == 500
    logged = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(logged) == 2, [rec.getMessage() for rec in logged]  # one per request
    assert all(rec.exc_info and "kaboom" in str(rec.exc_info[1]) for rec in logged)
