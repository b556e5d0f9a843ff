"""The OpenAPI docs page (/docs) works offline: Swagger UI comes from the server itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from illustra.api import RunningServer, create_app, serve_in_thread
from illustra.encoders import register_encoder

from .browserkit import block_remote, shot
from .fakes import FakeEncoder
from .searchkit import build_colour_collection

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


@pytest.fixture(scope="module")
def coll_root(tmp_path_factory: pytest.TempPathFactory) -> Any:
    register_encoder("fake", FakeEncoder)
    root = tmp_path_factory.mktemp("docs") / "coll"
    from illustra.index import build_index

    build_index(build_colour_collection(root), "fake")
    return root


@pytest.fixture(scope="module")
def server(coll_root: Any) -> Iterator[RunningServer]:
    register_encoder("fake", FakeEncoder)
    running = serve_in_thread(create_app(coll_root))
    yield running
    running.stop()


def test_docs_html_names_no_other_site(coll_root):
    with TestClient(create_app(coll_root)) as client:
        html = client.get("/docs").text
        assert "cdn" not in html.lower() and "https://" not in html and "http://" not in html
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
            src = next(part.split('"')[0] for part in html.split('"/') if asset in part.split('"')[0])
            r = client.get("/" + src)
            assert r.status_code == 200 and len(r.content) > 10_000, src


@pytest.mark.browser
def test_docs_page_renders_offline(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    blocked = block_remote(context, LOCAL_HOSTS)
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(15_000)
    try:
        page.goto(server.url + "/docs")
        page.wait_for_selector(".swagger-ui .opblock-summary-path")
        paths = page.eval_on_selector_all(
            ".swagger-ui .opblock-summary-path", "els => els.map(e => e.getAttribute('data-path'))"
        )
        assert "/api/search" in paths and "/api/search/image" in paths
        assert any(p.endswith("/report") for p in paths)
        assert page.locator(".swagger-ui .info .title").inner_text().startswith("Illustra")
        shot(page, "docs")
    finally:
        context.close()
    assert blocked == [] and errors == []
