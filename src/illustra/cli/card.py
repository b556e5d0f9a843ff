"""``illustra card``: write the collection card with its model card sections."""

from __future__ import annotations

import click

from .common import collection_option, notice


@click.command("card")
@collection_option
@click.option(
    "--output",
    default=None,
    type=click.Path(dir_okay=False, path_type=str),
    help="Markdown file to write (default <collection>/README.md; '-' prints it).",
)
def card_cmd(collection_dir: str, output: str | None) -> None:
    """Write a collection card and model card (Hugging Face dataset-card Markdown).

    Sources, licences, counts, date range and known gaps; per model: training data as its makers
    describe it, in-domain evaluation results with their date, limitations and out-of-scope uses.
    """
    from ..cards import card_markdown, write_card
    from ..collection import Collection

    coll = Collection(collection_dir)
    if output == "-":
        click.echo(card_markdown(coll), nl=False)
        return
    path = write_card(coll, output)
    notice(f"card written to {path}")


commands = [card_cmd]
