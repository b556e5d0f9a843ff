"""``illustra adapt``: learn a collection-specific adapter of a model (see illustra.adapters)."""

from __future__ import annotations

import click

from .common import collection_option, echo_json, notice


@click.command("adapt")
@collection_option
@click.option("--model", default=None, help="The base model to adapt (default: the collection's first embedded model).")
@click.option("--from", "source", type=click.Choice(["text", "labels"]), default="text", show_default=True,
              help="Learn from the items' catalogue text, or from an owner's labels (then give FILE).")
@click.argument("labels_file", required=False, type=click.Path(dir_okay=False, path_type=str))
@click.option("--exclude-ids", "exclude_path", default=None, type=click.Path(dir_okay=False, path_type=str),
              help="File of item ids (one a line) whose text or labels must not be used.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON document.")
def adapt_cmd(
    collection_dir: str, model: str | None, source: str, labels_file: str | None, exclude_path: str | None, as_json: bool
) -> None:
    """Learn MODEL+adapted from the collection's own text (or labels FILE, CSV id,label), measure it
    on held-out items, and store it; search uses it only where it beat the base model."""
    from ..adapters import train
    from ..collection import Collection
    from ..embedding_store import embedded_models
    from ..errors import NotEmbedded

    coll = Collection(collection_dir)
    if model is None:
        models = embedded_models(coll, searchable_only=True)
        if not models:
            raise NotEmbedded(f"{coll.root} is not embedded yet; run 'illustra embed'")
        model = models[0]
    if labels_file is not None and source != "labels":
        raise click.UsageError("a labels FILE goes with --from labels")
    report = train(coll, model, source=source, labels_path=labels_file, exclude_path=exclude_path, notify=notice)
    if as_json:
        echo_json(report)
        return
    h = report["held_out"]
    click.echo(f"{report['model']}: trained on {report['training_items']} items ({report['trained_on']})")
    click.echo(f"held out: {h['items']} items, recall@10 {h['adapted']['recall@10']:.3f} (base {h['base']['recall@10']:.3f}), "
               f"MRR {h['adapted']['mrr']:.3f} (base {h['base']['mrr']:.3f})")
    click.echo("used by default: " + ("yes" if report["used"] else f"no (it did not beat {report['base']})"))


commands = [adapt_cmd]
