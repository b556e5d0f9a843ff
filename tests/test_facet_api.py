"""Facets through the REST API and the CLI, against a real collection: create, list, show, change,
search (the result shape, filters and paging of /api/search), combine and delete; bad input is
one message in the project's error shape (or one line and an exit status) and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from illustra.api import create_app
from illustra.cli import main
from illustra.facets import FacetStore

from .facetkit import build_facet_collection, colour_of


@pytest.fixture(scope="module")
def coll_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from illustra.encoders import register_encoder

    from .fakes import FakeEncoder

    register_encoder("fake", FakeEncoder)
    return build_facet_collection(tmp_path_factory.mktemp("facet_api") / "coll").root


@pytest.fixture
def client(coll_root: Path):
    store = FacetStore(coll_root)
    for f in store.list():
        store.delete(f.name)
    with TestClient(create_app(coll_root), raise_server_exceptions=False) as c:
        yield c


def error(r, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return body["error"]["message"]


def names(client) -> list[str]:
    return [f["name"] for f in client.get("/api/facets").json()["facets"]]


def test_a_facet_through_the_api(client):
    r = client.post("/api/facets", json={"name": "reds", "positive": ["red/00", "red/01", "nope"], "negative": ["blue/00"]})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["positive"] == ["red/00", "red/01"] and made["negative"] == ["blue/00"]
    assert made["skipped"] == [{"id": "nope", "reason": "no such item"}]
    assert made["definition"].startswith("1.") and made["search_url"] == "/api/facets/reds/search"
    assert names(client) == ["reds"]
    assert client.get("/api/facets/reds").json()["positive"] == ["red/00", "red/01"]

    page = client.get("/api/facets/reds/search", params={"k": 4, "place": "Paris"}).json()
    plain = client.get("/api/search", params={"q": "red", "k": 4, "place": "Paris"}).json()
    assert set(page) == set(plain)  # the same result shape as /api/search
    core = {"id", "score", "rank", "metadata", "explain", "has_image", "item_url", "image_url", "thumbnail_url",
            "similar_url", "page_url"}
    assert core <= set(page["results"][0]) <= set(plain["results"][0])
    assert page["kind"] == "facet" and page["has_more"] is True
    assert [colour_of(h["id"]) for h in page["results"]] == ["red"] * 2 + [page["results"][2]["id"].split("/")[0]] * 2
    assert {h["metadata"]["place"] for h in page["results"]} == {"Paris"}
    assert page["permalink"].startswith("/search?fdef=") and "place=Paris" in page["permalink"]
    first = client.get("/api/facets/reds/search", params={"k": 10}).json()["results"]
    second = client.get("/api/facets/reds/search", params={"k": 5, "offset": 5}).json()["results"]
    assert [h["id"] for h in first[5:]] == [h["id"] for h in second]

    changed = client.patch("/api/facets/reds", json={"positive": ["purple/00"], "remove": ["blue/00"]}).json()
    assert changed["positive"] == ["red/00", "red/01", "purple/00"] and changed["negative"] == []
    assert client.post("/api/facets", json={"name": "warm", "positive": ["yellow/00", "red/02"]}).status_code == 201
    both = client.get("/api/facets/reds/search", params=[("and", "warm"), ("k", "6")]).json()
    assert both["query"] == "reds × warm" and [colour_of(h["id"]) for h in both["results"]] == ["red"] * 6

    assert client.delete("/api/facets/reds").json() == {"deleted": "reds"}
    assert names(client) == ["warm"]


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({"name": "a b", "positive": ["red/00"]}, 422, "bad_input", "not a plain name"),
        ({"name": "x", "positive": []}, 422, "bad_input", "positive"),
        ({"name": "x", "negative": ["red/00"]}, 422, "bad_input", "positive"),
        ({"name": "x", "positive": ["nope", "text-only/0"]}, 404, "no_known_example", "none of the positive"),
        ({"name": "x", "positive": ["red/00"], "negative": ["red/00"]}, 422, "bad_input", "both"),
        ({"name": "x", "positive": [f"i{n}" for n in range(600)], "negative": [f"j{n}" for n in range(401)]},
         422, "bad_input", "at most 1,000"),
        ({"name": "x", "positive": [f"i{n}" for n in range(1001)]}, 422, "bad_input", "1000"),
        ({"name": "WARM", "positive": ["red/00"]}, 409, "facet_exists", "exists already"),
        ({"name": "x", "positive": ["red/00"], "extra": 1}, 422, "bad_input", "extra"),
    ],
)
def test_bad_facets_are_one_message_and_nothing_changes(client, body, status, code, words):
    assert client.post("/api/facets", json={"name": "warm", "positive": ["yellow/00"]}).status_code == 201
    before = client.get("/api/facets").json()
    message = error(client.post("/api/facets", json=body), status, code)
    assert words.lower() in message.lower()
    assert client.get("/api/facets").json() == before


def test_other_bad_requests(client):
    error(client.get("/api/facets/nope"), 404, "facet_not_found")
    error(client.get("/api/facets/nope/search"), 404, "facet_not_found")
    error(client.delete("/api/facets/nope"), 404, "facet_not_found")
    error(client.patch("/api/facets/nope", json={"positive": ["red/00"]}), 404, "facet_not_found")
    client.post("/api/facets", json={"name": "warm", "positive": ["yellow/00"]})
    error(client.patch("/api/facets/warm", json={"remove": ["yellow/00"]}), 422, "bad_input")
    error(client.post("/api/facets", content=b"[" * 50, headers={"content-type": "application/json"}), 422, "bad_input")
    error(client.post("/api/facets", content=b"{nope", headers={"content-type": "application/json"}), 422, "bad_input")
    error(client.get("/api/facets/warm/search", params={"q": "red"}), 422, "bad_input")
    error(client.get("/api/facets/warm/search", params={"color": "red"}), 422, "bad_input")
    error(client.get("/api/facets/warm/search", params={"and": "nope"}), 404, "facet_not_found")
    assert client.get("/api/facets/warm").json()["positive"] == ["yellow/00"]


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, res.stdout, res.stderr


def test_facets_from_the_command_line(coll_root, client):
    c = ["--collection", str(coll_root)]
    code, out, err = run("facet", "create", "greens", *c, "--positive", "green/00", "green/01", "nope", "--negative", "red/00")
    assert code == 0, err
    assert "2 positive, 1 negative" in out and "skipped 'nope': no such item" in err
    code, out, err = run("facet", "add", "greens", *c, "--positive=cyan/00", "--remove", "red/00")
    assert code == 0 and "3 positive, 0 negative" in out, err
    code, out, err = run("facet", "search", "greens", *c, "-k", "3", "--where", "place=London", "--json")
    assert code == 0, err
    found = json.loads(out)
    assert found["kind"] == "facet" and len(found["results"]) == 3
    assert {h["metadata"]["place"] for h in found["results"]} == {"London"}
    assert found["permalink"].startswith("http://127.0.0.1:8000/search?fdef=")
    code, out, err = run("facet", "search", "greens", *c, "-k", "2")
    assert code == 0 and "permalink: http" in err and out.count("\n") == 3
    assert run("facet", "list", *c)[1].startswith("greens  3 positive")
    shown = json.loads(run("facet", "show", "greens", *c, "--json")[1])
    assert shown["positive"] == ["green/00", "green/01", "cyan/00"]
    # Bad input: one line, an exit status, nothing changed.
    for args, status, words in [
        (("facet", "create", "greens", *c, "--positive", "red/00"), 2, "exists already"),
        (("facet", "create", "two words", *c, "--positive", "red/00"), 2, "not a plain name"),
        (("facet", "create", "x", *c, "--negative", "red/00"), 2, "no positive example"),
        (("facet", "create", "x", *c, "red/00"), 2, "say what it is"),
        (("facet", "create", "x", *c, "--positive", "nope"), 3, "none of the positive"),
        (("facet", "search", "nope", *c), 3, "no facet named"),
        (("facet", "delete", "nope", *c), 3, "no facet named"),
    ]:
        code, out, err = run(*args)
        assert code == status and err.startswith("error: ") and words in err and err.count("\n") == 1, (args, err)
    assert [f.name for f in FacetStore(coll_root).list()] == ["greens"]
    assert run("facet", "delete", "greens", *c)[0] == 0
    assert run("facet", "list", *c)[1] == "no facets\n"


def test_the_openapi_document_declares_facets_and_exports(client):
    doc = client.get("/openapi.json").json()
    ref = "#/components/schemas/ErrorBody"
    expected = {
        ("/api/facets", "post"): {404, 409, 413, 422},
        ("/api/facets/{name}", "get"): {404},
        ("/api/facets/{name}", "patch"): {404, 413, 422},
        ("/api/facets/{name}", "delete"): {404},
        ("/api/facets/{name}/search", "get"): {404, 409, 422},
        ("/api/facets/{name}/export", "get"): {404, 409, 422},
        ("/api/export", "get"): {404, 409, 422, 503},
        ("/api/export/selection", "post"): {404, 413, 422},
    }
    for (path, method), statuses in expected.items():
        op = doc["paths"][path][method]
        errors = {int(s): a["content"]["application/json"]["schema"].get("$ref") for s, a in op["responses"].items()
                  if int(s) >= 400}
        assert statuses <= set(errors) and set(errors.values()) == {ref}, (path, method, errors)
    body = doc["paths"]["/api/facets"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["name", "positive"] and body["additionalProperties"] is False
    assert body["properties"]["positive"]["maxItems"] == 1000 and body["properties"]["name"]["maxLength"] == 64
    export = {p["name"]: p for p in doc["paths"]["/api/export"]["get"]["parameters"]}
    assert export["q"]["required"] is True and export["k"]["schema"]["maximum"] == 10_000
    assert export["format"]["schema"]["enum"] == ["csv", "iiif"] and "place" in export
    search = {p["name"] for p in doc["paths"]["/api/facets/{name}/search"]["get"]["parameters"]}
    assert {"and", "k", "offset", "year_from", "place"} <= search


def test_other_methods_are_answered_405_naming_every_allowed_one(client):
    for path, allowed in (("/api/facets", "GET, POST"), ("/api/facets/x", "GET, PATCH, DELETE")):
        r = client.put(path, json={})
        assert r.status_code == 405 and r.headers["allow"] == allowed
        assert r.json()["error"]["code"] == "method_not_allowed"
