"""The settings registry: typed values checked once at start, ``--setting``, and README's table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from illustra import settings
from illustra.api import create_app
from illustra.cli import main
from illustra.cli.settings_cmd import markdown_table
from illustra.search import SearchService
from illustra.settings import BadSetting, Settings

from .searchkit import build_colour_collection

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_settings_table_is_the_registry() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("| setting | environment variable |")
    table = text[start:].split("\n\n", 1)[0].strip()
    assert table == markdown_table(), "run `illustra settings --markdown` and paste it into README"


@pytest.mark.parametrize(
    ("name", "raw", "words"),
    [
        ("rrf_k", "abc", ["ILLUSTRA_RRF_K", "'abc'", "whole number of at least 0"]),
        ("rrf_k", "-1", ["ILLUSTRA_RRF_K", "at least 0"]),
        ("hybrid_fusion", "rfr", ["ILLUSTRA_HYBRID_FUSION", "one of rrf, weighted"]),
        ("hybrid_weights", "visual=x", ["ILLUSTRA_HYBRID_WEIGHTS", "visual=NUMBER"]),
        ("hybrid_weights", "colour=1", ["ILLUSTRA_HYBRID_WEIGHTS", "unknown weight 'colour'"]),
        ("guardrails", "ture", ["ILLUSTRA_GUARDRAILS", "true or false"]),
        ("face_min_fraction", "2", ["ILLUSTRA_FACE_MIN_FRACTION", "from 0 to 1"]),
        ("port", "70000", ["ILLUSTRA_PORT", "from 0 to 65535"]),
        ("download_timeout", "nan", ["ILLUSTRA_DOWNLOAD_TIMEOUT", "a number"]),
        ("text_field_weights", "title=-3", ["ILLUSTRA_TEXT_FIELD_WEIGHTS", "FIELD=NUMBER"]),
        ("text_semantic", "maybe", ["ILLUSTRA_TEXT_SEMANTIC", "auto, on, off"]),
        ("cpu_precision", "fp16", ["ILLUSTRA_CPU_PRECISION", "auto, fp32, bf16"]),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable_and_what_it_accepts(
    name: str, raw: str, words: list[str]
) -> None:
    with pytest.raises(BadSetting) as err:
        Settings.load(environ={f"ILLUSTRA_{name.upper()}": raw})
    message = str(err.value)
    assert "\n" not in message
    for w in words:
        assert w in message


def test_values_are_typed_and_layered() -> None:
    s = Settings.load({"rrf_k": "5"}, environ={"ILLUSTRA_RRF_K": "7", "ILLUSTRA_GUARDRAILS": "off"})
    assert s.rrf_k == 5 and s.sources["rrf_k"] == "--setting"
    assert s.guardrails is False and s.sources["guardrails"] == "environment"
    assert s.hybrid_weights == {"visual": 1.0, "text": 1.0} and s.sources["hybrid_weights"] == "default"
    assert s.hybrid_fusion == "rrf"
    with pytest.raises(BadSetting, match="unknown setting 'rrf'"):
        Settings.load({"rrf": "5"}, environ={})


def test_every_default_is_accepted_by_its_own_setting() -> None:
    for s in settings.SETTINGS.values():
        s.parse(str(s.default))


def test_cli_refuses_a_bad_environment_value_at_start_with_exit_2(tmp_path: Path) -> None:
    coll = build_colour_collection(tmp_path / "c")
    result = CliRunner().invoke(
        main, ["search", "--collection", str(coll.root), "red"], env={"ILLUSTRA_RRF_K": "abc"}
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ILLUSTRA_RRF_K='abc' is not valid")
    typo = CliRunner().invoke(main, ["settings"], env={"ILLUSTRA_HYBRID_FUSION": "rfr"})
    assert typo.exit_code == 2 and "ILLUSTRA_HYBRID_FUSION" in typo.output and "rrf, weighted" in typo.output


def test_cli_setting_option_overrides_the_environment(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["--setting", "rrf_k", "7", "settings", "--json"], env={"ILLUSTRA_RRF_K": "9"}
    )
    assert result.exit_code == 0, result.output
    row = next(r for r in __import__("json").loads(result.stdout) if r["name"] == "rrf_k")
    assert row["value"] == 7 and row["source"] == "--setting"
    bad = CliRunner().invoke(main, ["--setting", "rrf_k", "x", "settings"])
    assert bad.exit_code == 2 and "--setting rrf_k='x' is not valid" in bad.output
    unknown = CliRunner().invoke(main, ["--setting", "no_such", "1", "settings"])
    assert unknown.exit_code == 2 and "unknown setting 'no_such'" in unknown.output


def test_a_typo_in_a_variable_name_is_pointed_out(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["settings"], env={"ILLUSTRA_RRFK": "5"})
    assert result.exit_code == 0
    assert "ILLUSTRA_RRFK is not an Illustra setting" in result.stderr


def test_the_server_refuses_a_bad_value_at_start_not_on_a_later_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    coll = build_colour_collection(tmp_path / "c")
    monkeypatch.setenv("ILLUSTRA_RRF_K", "abc")
    with pytest.raises(BadSetting, match="ILLUSTRA_RRF_K"):
        create_app(coll.root)
    serve = CliRunner().invoke(main, ["serve", "--collection", str(coll.root), "--port", "0"])
    assert serve.exit_code == 2 and "ILLUSTRA_RRF_K" in serve.output


def test_the_service_uses_the_settings_object_it_was_given(tmp_path: Path) -> None:
    coll = build_colour_collection(tmp_path / "c")
    quiet = settings.current().replace(guardrails=False)
    svc = SearchService(coll.root, settings=quiet)
    assert svc.settings is quiet and svc.guardrails.enabled is False
    app = create_app(svc)
    assert app.state.illustra.settings is quiet


def test_no_command_passes_options_through_the_environment() -> None:
    src = Path(__file__).resolve().parents[1] / "src" / "illustra"
    writes = [
        f"{p.relative_to(src)}:{i}"
        for p in src.rglob("*.py")
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1)
        if re.search(r"os\.environ\[[^]]+\]\s*=|os\.environ\.(setdefault|update)\(|os\.putenv\(", line)
        and "HF_HUB" not in line
    ]
    assert writes == []
