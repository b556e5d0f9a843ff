"""``illustra demo``: build the Open Clip Art demo collection offline, then serve or show it."""

from __future__ import annotations

import click

from .common import notice


def _print_examples(collection: str, model: str) -> None:
    from ..demo import example_results

    for ex in example_results(collection, model):
        click.echo(f'\n"{ex["query"]}"')
        for line in ex["notices"]:
            click.echo(f"  notice: {line}")
        for i, r in enumerate(ex["results"], start=1):
            click.echo(f"  {i}. {r['score']:.3f}  {r['id']}  {r['title'] or ''}")


@click.command("demo")
@click.option(
    "--collection",
    "collection_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=str),
    help="Where to build the demo collection (default: <data_dir>/demo-openclipart).",
)
@click.option("--no-serve", is_flag=True, help="Build, show a few example searches and exit.")
@click.option("--model", default="lite", show_default=True, help="Model to embed with.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port for the web app.")
@click.option(
    "--limit", type=click.IntRange(1, None), default=None, help="Use only this many images (a quick try)."
)
@click.option(
    "--no-install",
    is_flag=True,
    hidden=True,
    help="Kept for compatibility: the demo never installs anything.",
)
@click.pass_context
def demo_cmd(
    ctx: click.Context,
    collection_dir: str | None,
    no_serve: bool,
    model: str,
    port: int | None,
    limit: int | None,
    no_install: bool,
) -> None:
    """Build a searchable collection of Open Clip Art (Debian openclipart-png/svg) with no model hub.

    Installs nothing: scripts/setup.sh installs the packages, and without them the demo says what
    to run. A second run reuses everything already built; an interrupted run resumes.
    """
    from ..demo import build_demo, default_collection_dir

    root = collection_dir or str(default_collection_dir())
    build = build_demo(root, model=model, limit=limit, notify=notice)
    for s in build.stages:
        click.echo(f"{s.name:<9} {s.status:<7} {s.seconds:7.1f} s  {s.detail}")
    if build.reused_everything:
        click.echo("everything was already built; nothing was redone")
    collection = str(build.collection)
    serve_cmd = None if no_serve else ctx.find_root().command.get_command(ctx, "serve")  # type: ignore[attr-defined]
    if serve_cmd is not None:
        args = ["--collection", collection]
        if port is not None:
            args += ["--port", str(port)]
        click.echo(f"collection: {collection}")
        with serve_cmd.make_context("serve", args, parent=ctx) as sub:
            serve_cmd.invoke(sub)
        return
    if not no_serve:
        notice("the web app is not part of this installation; showing example searches instead")
    _print_examples(collection, build.model)
    click.echo(f"\ncollection: {collection}")


commands = [demo_cmd]
