"""``illustra eval``: retrieval quality of a collection's search against judged queries."""

from __future__ import annotations

import click

from .common import collection_option, echo_json, model_option, notice


@click.command("eval")
@collection_option
@click.option(
    "--queries",
    "queries_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    help='JSON lines: {"query": "...", "relevant_ids": ["...", ...]} per line.',
)
@model_option
@click.option(
    "-k",
    "k",
    type=click.IntRange(10, 1000),
    default=100,
    show_default=True,
    help="Results fetched per query (mAP is computed at this depth).",
)
@click.option(
    "--mode",
    type=click.Choice(["visual", "text", "hybrid"]),
    default="visual",
    show_default=True,
    help="What the queries match: the pictures, the catalogue text, or both.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option(
    "--save/--no-save",
    default=True,
    show_default=True,
    help="Also write the result to <collection>/eval/ for the web app.",
)
def eval_cmd(
    collection_dir: str, queries_path: str, model: str | None, k: int, mode: str, as_json: bool, save: bool
) -> None:
    """Score search results: mAP@k, P@10, R@10 and nDCG@10, beside a random ranking."""
    from ..eval.retrieval import format_table, run_retrieval_eval, save_result

    result = run_retrieval_eval(collection_dir, queries_path, model=model, k=k, mode=mode)
    for line in result.get("notices", []):
        notice(f"notice: {line}")
    if save:
        try:
            path = save_result(collection_dir, result)
            notice(f"saved {path}")
        except OSError as exc:
            notice(f"could not save the result into the collection: {exc.strerror or exc}")
    if as_json:
        echo_json(result)
    else:
        click.echo(format_table(result))


commands = [eval_cmd]
