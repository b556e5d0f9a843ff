"""``illustra serve``: the search web page and REST API for one collection."""

from __future__ import annotations

import click

from .common import collection_option, model_option, text_model_option, use_text_model


@click.command("serve")
@collection_option
@click.option(
    "--host", default=None, help="Address to bind (default: setting 'host', 127.0.0.1 = this machine only)."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port (default: setting 'port'; 0 picks a free one).",
)
@model_option
@text_model_option
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes answering on the one port; with a Milvus index they share one Milvus "
    "server (a Milvus Lite file opens in one process only).",
)
def serve_cmd(
    collection_dir: str, host: str | None, port: int | None, model: str | None, text_model: str | None, workers: int
) -> None:
    """Serve the search page and REST API until Ctrl+C."""
    use_text_model(text_model)
    from ..api import serve

    serve(collection_dir, host, port, model=model, announce=lambda msg: click.echo(msg, err=False), workers=workers)


commands = [serve_cmd]
