"""The OpenAPI document says what the API does: every status each route returns (with the error
shape), the media types, the request bodies and the parameters with their bounds; schemathesis
with every check, run against the app on a real HTTP server, finds nothing wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from illustra.api import RunningServer, create_app, serve_in_thread
from illustra.api.report_routes import MAX_REPORT_DETAILS, MAX_REPORT_REASON
from illustra.collection import Collection
from illustra.duplicates import build_duplicates
from illustra.encoders import register_encoder
from illustra.guardrails.feedback import MAX_QUERY_CHARS as MAX_REPORT_QUERY
from illustra.search.limits import MAX_K, MAX_OFFSET, MAX_QUERY_CHARS, MAX_VALUE_CHARS

from .apikit import ODD_IDS, build_web_collection
from .fakes import FakeEncoder

REPO = Path(__file__).resolve().parents[1]
ERROR_REF = "#/components/schemas/ErrorBody"


@pytest.fixture(scope="module")
def coll_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    register_encoder("fake", FakeEncoder)
    root = tmp_path_factory.mktemp("openapi") / "coll"
    build_web_collection(root)
    build_duplicates(Collection(root))  # so the duplicate routes answer with data, not only 409
    return root


@pytest.fixture(scope="module")
def doc(coll_dir: Path) -> dict:
    with TestClient(create_app(coll_dir)) as client:
        return client.get("/openapi.json").json()


def _op(doc: dict, path: str, method: str = "get") -> dict:
    return doc["paths"][path][method]


def _errors(op: dict) -> dict[int, str]:
    out = {}
    for status, answer in op["responses"].items():
        if int(status) >= 400:
            schema = answer["content"]["application/json"]["schema"]
            out[int(status)] = schema.get("$ref", "")
    return out


def _params(op: dict) -> dict[str, dict]:
    """Query parameters by name; an optional one's schema without its ``null`` alternative."""
    out = {}
    for p in op.get("parameters", []):
        if p["in"] == "query":
            schema = p["schema"]
            alternatives = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
            out[p["name"]] = alternatives[0] if len(alternatives) == 1 else schema
    return out


def test_every_error_status_is_declared_with_the_error_shape(doc):
    expected = {
        ("/api/search", "get"): {403, 409, 422, 503},
        ("/api/search/image", "post"): {403, 409, 413, 422, 502, 503},
        ("/api/items/{item_id}", "get"): {404},
        ("/api/items/{item_id}/similar", "get"): {404, 409, 422, 503},
        ("/api/items/{item_id}/image", "get"): {404},
        ("/api/items/{item_id}/thumbnail", "get"): {404},
        ("/api/items/{item_id}/book", "get"): {404, 422},
        ("/api/items/{item_id}/report", "post"): {404, 413, 422},
    }
    for (path, method), statuses in expected.items():
        errors = _errors(_op(doc, path, method))
        assert statuses <= set(errors), (path, sorted(errors))
        assert set(errors.values()) == {ERROR_REF}, (path, errors)
    assert "ErrorBody" in doc["components"]["schemas"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_images_are_declared_as_images(doc):
    image = _op(doc, "/api/items/{item_id}/image")["responses"]
    assert {"image/jpeg", "image/png", "image/gif", "image/webp"} <= set(image["200"]["content"])
    assert "304" in image
    thumb = _op(doc, "/api/items/{item_id}/thumbnail")["responses"]["200"]["content"]
    assert thumb["image/jpeg"]["schema"]["format"] == "binary"


def test_request_bodies_are_declared(doc):
    report = _op(doc, "/api/items/{item_id}/report", "post")
    content = report["requestBody"]["content"]
    assert set(content) == {"application/json", "application/x-www-form-urlencoded"}
    schema = doc["components"]["schemas"]["ReportIn"]
    assert schema["required"] == ["reason"] and schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["reason"]["maxLength"] == MAX_REPORT_REASON and props["reason"]["minLength"] == 1
    assert props["details"]["maxLength"] == MAX_REPORT_DETAILS
    assert props["query"]["maxLength"] == MAX_REPORT_QUERY
    assert report["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("ReportOut")

    upload = _op(doc, "/api/search/image", "post")["requestBody"]["content"]["multipart/form-data"]
    props = upload["schema"]["properties"]
    assert props["image"]["format"] == props["file"]["format"] == "binary"
    assert props["k"]["maximum"] == MAX_K and props["offset"]["maximum"] == MAX_OFFSET
    assert props["place"]["maxLength"] == MAX_VALUE_CHARS and props["year"]["minimum"] == -9999
    assert "image/png" in upload["encoding"]["image"]["contentType"]


def test_search_parameters_and_filters_have_their_bounds(doc):
    search = _params(_op(doc, "/api/search"))
    assert search["q"]["maxLength"] == MAX_QUERY_CHARS and search["q"]["pattern"] == r"\S"
    assert search["k"]["minimum"] == 1 and search["k"]["maximum"] == MAX_K
    assert search["offset"]["maximum"] == MAX_OFFSET
    assert search["mode"]["$ref"].endswith("/Mode")
    assert doc["components"]["schemas"]["Mode"]["enum"] == ["visual", "text", "hybrid"]
    for name in ("year_from", "year_to", "year"):
        assert search[name]["minimum"] == -9999 and search[name]["maximum"] == 9999, name
    assert search["include_undated"]["type"] == "boolean"
    for field in ("place", "creator", "book_identifier"):
        assert search[field]["maxLength"] == MAX_VALUE_CHARS, field
    similar = _params(_op(doc, "/api/items/{item_id}/similar"))
    assert {"k", "offset", "year_from", "place"} <= set(similar)
    image = _params(_op(doc, "/api/search/image", "post"))
    assert {"k", "offset", "year_from", "place"} <= set(image) and "q" not in image


def test_the_report_route_answers_other_methods_with_405(coll_dir):
    with TestClient(create_app(coll_dir), raise_server_exceptions=False) as client:
        for method in ("GET", "PUT", "DELETE"):
            r = client.request(method, "/api/items/red/00/report")
            assert r.status_code == 405, (method, r.text)
            assert r.json()["error"]["code"] == "method_not_allowed" and "POST" in r.headers["allow"]
        # An unknown item too: the route exists whatever the id.
        assert client.get("/api/items/no/such/report").status_code == 405


# -- schemathesis ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(coll_dir: Path) -> Iterator[RunningServer]:
    running = serve_in_thread(create_app(coll_dir))
    yield running
    running.stop()


def _config(path: Path) -> Path:
    """Real item ids for the fuzzer to use half of the time (random ids only ever find 404s)."""
    ids = ["red/00", "books/b1/p1", "books/b3/text-only", *ODD_IDS]
    quoted = ", ".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in ids)
    path.write_text(
        f"[dictionaries.items]\nvalues = [{quoted}]\n\n"
        '[parameters]\n"path.item_id" = { dictionary = "items", probability = 0.5 }\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_schemathesis_finds_no_failure(server, doc, tmp_path):
    exe = Path(sys.executable).with_name("schemathesis")
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "NO_COLOR": "1",
    }
    cmd = [
        str(exe),
        "--config-file",
        str(_config(tmp_path / "schemathesis.toml")),
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "20",
        "--generation-deterministic",
        "--request-timeout",
        "10",
        "--no-color",
    ]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    out = done.stdout + done.stderr
    tail = out[-4000:]
    assert done.returncode == 0, tail
    operations = sum(len(methods) for methods in doc["paths"].values())
    assert f"Tested: {operations}" in out and " passed" in out, tail
    assert "FAILURES" not in out and "ERRORS" not in out, tail
