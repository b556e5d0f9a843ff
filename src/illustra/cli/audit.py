"""``illustra audit``: a contact sheet of what the model returns for sensitive probe queries."""

from __future__ import annotations

from typing import Any

import click

from .common import collection_option, echo_json, model_option, notice


@click.command("audit")
@collection_option
@model_option
@click.option(
    "--output",
    default=None,
    type=click.Path(dir_okay=False, path_type=str),
    help="HTML file to write (default <collection>/audit/audit-<model>.html); a .json file goes beside it.",
)
@click.option(
    "--probes",
    "probes_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=str),
    help="Own probe set: JSON like the shipped one, or a text file with one probe per line.",
)
@click.option("-k", "k", type=click.IntRange(1, 50), default=8, show_default=True, help="Pictures per probe.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON too.")
def audit_cmd(
    collection_dir: str, model: str | None, output: str | None, probes_path: str | None, k: int, as_json: bool
) -> None:
    """Run sensitive probe queries and write an HTML contact sheet of their top results for review."""
    from tqdm import tqdm

    from ..audit import load_probes, run_audit, write_audit
    from ..collection import Collection

    coll = Collection(collection_dir)
    probes = load_probes(probes_path)
    bar = tqdm(total=sum(len(g.probes) for g in probes), desc="audit probes", unit="probe", disable=None)

    def progress(done: int, total: int, bar: Any = bar) -> None:
        bar.n = done
        bar.refresh()

    try:
        result = run_audit(coll, model=model, k=k, probes=probes, progress=progress)
    finally:
        bar.close()
    html_path, json_path = write_audit(coll, result, output)
    notice(f"contact sheet: {html_path}")
    notice(f"results: {json_path}")
    if as_json:
        echo_json(result)


commands = [audit_cmd]
