"""``illustra audit``: probe queries and the HTML contact sheet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from illustra.audit import load_probes, run_audit, shipped_probes, write_audit
from illustra.cli import main
from illustra.collection import Collection
from illustra.errors import BadInput
from illustra.index import build_index

from .searchkit import build_colour_collection


@pytest.fixture
def coll(tmp_path: Path) -> Collection:
    c = build_colour_collection(tmp_path / "c", n_per_colour=4)
    build_index(c, "fake")
    return Collection(tmp_path / "c")


def test_shipped_probes_cover_the_sensitive_groups():
    groups = {g.name: g for g in shipped_probes()}
    assert {"reference", "criminality", "dehumanisation", "occupation and gender"} <= set(groups)
    probes = [p for g in groups.values() for p in g.probes]
    for p in (
        "a criminal",
        "a savage",
        "a terrorist",
        "a beautiful woman",
        "a doctor",
        "a nurse",
        "a CEO",
        "a primitive people",
        "a servant",
    ):
        assert p in probes
    assert all(g.why for g in groups.values())


def test_audit_contact_sheet(coll, tmp_path):
    probes = tmp_path / "probes.txt"
    probes.write_text("# colours\nsomething red\nsavage blue\n", encoding="utf-8")
    # The owner blocks 'savage': the audit still runs the probe (it shows what the model does).
    (coll.root / "guardrails.json").write_text('{"terms": {"savage": "block"}}', encoding="utf-8")
    result = run_audit(coll, k=3, probes=load_probes(probes))
    (group,) = result["groups"]
    red, blue = group["probes"]
    assert [r["id"].split("/")[0] for r in red["results"]] == ["red"] * 3
    assert [r["id"].split("/")[0] for r in blue["results"]] == ["blue"] * 3
    html_path, json_path = write_audit(coll, result)
    assert html_path == coll.root / "audit" / "audit-fake.html"
    html = html_path.read_text()
    assert html.count('src="data:image/jpeg;base64,') == 6
    assert (
        "“something red”" in html
        and "A red plate number" in html
        and f"{red['results'][0]['score']:.3f}" in html
    )
    assert json.loads(json_path.read_text())["n_probes"] == 2


def test_audit_command(coll, tmp_path):
    out = tmp_path / "sheet.html"
    res = CliRunner().invoke(main, ["audit", "--collection", str(coll.root), "--output", str(out), "-k", "2"])
    assert res.exit_code == 0, res.output
    assert f"contact sheet: {out}" in res.stderr
    html = out.read_text()
    n = sum(len(g.probes) for g in shipped_probes())
    assert html.count("<h3>") == n and html.count("<figure>") == 2 * n
    assert "a criminal" in html and (tmp_path / "sheet.json").is_file()


def test_bad_probe_files(tmp_path):
    empty = tmp_path / "p.txt"
    empty.write_text("# nothing\n\n", encoding="utf-8")
    with pytest.raises(BadInput, match="holds no probes"):
        load_probes(empty)
    bad = tmp_path / "p.json"
    bad.write_text('{"groups": [{"name": "x", "probes": [""]}]}', encoding="utf-8")
    with pytest.raises(BadInput, match="non-empty 'probes'"):
        load_probes(bad)
