"""``illustra eval``: retrieval quality of a collection's search against judged queries."""

from __future__ import annotations

import click

from ..search.limits import MAX_K, Mode
from .common import collection_option, echo_json, model_option, notice, text_model_option, use_text_model


@click.command("eval")
@collection_option
@click.option(
    "--queries",
    "queries_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=str),
    help='JSON lines: {"query": "...", "relevant_ids": ["...", ...]} per line.',
)
@click.option(
    "--taxonomy",
    "taxonomy_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=str),
    help="Instead of --queries: CSV 'id,label' giving labelled items one label each from a fixed set; "
    "reports zero-shot classification and per-class retrieval.",
)
@click.option(
    "--labels",
    "labels_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=str),
    help="With --taxonomy: the fixed label set, CSV 'label,prompt' (one row per prompt) or JSON.",
)
@click.option("--models", default=None, help="With --taxonomy: comma-separated models to evaluate and rank.")
@click.option(
    "--output",
    default=None,
    type=click.Path(file_okay=False, path_type=str),
    help="With --taxonomy: folder for report.html and the JSON results (default <collection>/eval/).",
)
@model_option
@text_model_option
@click.option(
    "--gallery-ids",
    "gallery_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=str),
    help="Rank only the items listed in this file (one id a line): the others leave the ranking and the "
    "judgements, e.g. the half of a collection whose text an adapter never saw.",
)
@click.option(
    "-k",
    "k",
    type=click.IntRange(10, MAX_K),
    default=100,
    show_default=True,
    help="Results fetched per query (mAP is computed at this depth).",
)
@click.option(
    "--mode",
    default=str(Mode.VISUAL),
    show_default=True,
    help="What the queries match: visual (the pictures), text (the catalogue text) or hybrid (both); "
    "several, comma-separated (visual,text,hybrid), are compared side by side in one run.",
)
@click.option(
    "--judgements-from-metadata/--no-judgements-from-metadata",
    "from_metadata",
    default=None,
    help="Whether the relevance judgements were derived from the metadata text mode searches (then text and "
    "hybrid scores overstate). Default: detected (Open Clip Art collections, or queries marked judged_from=metadata).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option(
    "--save/--no-save",
    default=True,
    show_default=True,
    help="Also write the result to <collection>/eval/ for the web app.",
)
def eval_cmd(
    collection_dir: str,
    queries_path: str | None,
    taxonomy_path: str | None,
    labels_path: str | None,
    models: str | None,
    output: str | None,
    model: str | None,
    text_model: str | None,
    gallery_path: str | None,
    k: int,
    mode: str,
    from_metadata: bool | None,
    as_json: bool,
    save: bool,
) -> None:
    """Score search results: mAP@k, P@10, R@10 and nDCG@10, beside a random ranking.

    With --taxonomy instead: zero-shot classification accuracy, per-class precision/recall/F1,
    the confusion matrix and per-class retrieval P@k, with an HTML report.
    """
    use_text_model(text_model)
    if taxonomy_path is not None and gallery_path is not None:
        raise click.UsageError("--gallery-ids goes with --queries, not --taxonomy")
    if taxonomy_path is not None:
        from click.core import ParameterSource

        from .taxonomy_eval import run as run_taxonomy

        explicit_k = click.get_current_context().get_parameter_source("k") == ParameterSource.COMMANDLINE
        return run_taxonomy(
            collection_dir=collection_dir,
            taxonomy_path=taxonomy_path,
            labels_path=labels_path,
            models=models,
            model=model,
            k=k if explicit_k else 10,
            output=output,
            as_json=as_json,
            save=save,
        )
    if queries_path is None:
        raise click.UsageError("give --queries (judged queries) or --taxonomy (labelled items)")
    from ..eval.modes import annotate, compare_modes, format_comparison, parse_modes
    from ..eval.retrieval import format_table, run_retrieval_eval

    modes = parse_modes(mode)
    if gallery_path is not None and len(modes) > 1:
        raise click.UsageError("--gallery-ids goes with one --mode")
    if len(modes) > 1:
        both = compare_modes(
            collection_dir, queries_path, modes, model=model, k=k, from_metadata=from_metadata
        )
        for res in both["modes"].values():
            for line in res.get("notices", []):
                notice(f"notice ({res['mode']}): {line}")
            if save:
                _save(collection_dir, res)
        if as_json:
            echo_json(both)
        else:
            click.echo(format_comparison(both))
        return
    result = run_retrieval_eval(
        collection_dir, queries_path, model=model, k=k, mode=modes[0], gallery_ids=gallery_path
    )
    from ..collection import Collection

    annotate(result, Collection(collection_dir), queries_path, from_metadata)
    for line in result.get("notices", []):
        notice(f"notice: {line}")
    if result.get("caveat"):
        notice(f"caveat: {result['caveat']}")
    if save:
        _save(collection_dir, result)
    if as_json:
        echo_json(result)
    else:
        click.echo(format_table(result))


def _save(collection_dir: str, result: dict) -> None:
    """Store a result in the collection (for the web app); a read-only collection only warns."""
    from ..eval.retrieval import save_result

    try:
        notice(f"saved {save_result(collection_dir, result)}")
    except OSError as exc:
        notice(f"could not save the result into the collection: {exc.strerror or exc}")


commands = [eval_cmd]
