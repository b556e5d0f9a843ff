"""``illustra info``: what a collection holds."""

from __future__ import annotations

import click

from .common import collection_option, echo_json


@click.command("info")
@collection_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def info_cmd(collection_dir: str, as_json: bool) -> None:
    """Show counts, fields, embeddings and indexes of a collection."""
    from ..collection import Collection

    coll = Collection(collection_dir)
    info = coll.info()
    if coll.manifest.get("text_index"):
        info["text_index"] = coll.manifest["text_index"]
    if as_json:
        echo_json(info)
        return
    c = info["counts"]
    click.echo(f"collection  {info['path']}")
    click.echo(f"items       {c.get('items', 0)} ({c.get('with_image', 0)} with an image)")
    if "year_min" in c:
        click.echo(f"years       {c['year_min']}–{c['year_max']}")
    click.echo(f"fields      {', '.join(info['fields'])}")
    click.echo(f"created     {info['created']}   updated {info['updated']}")
    for s in info["sources"]:
        click.echo(f"source      {s.get('kind')} {s.get('location', '')} (+{s.get('added', '?')})")
    for m, e in info["embeddings"].items():
        state = "complete" if e.get("complete") else "incomplete"
        click.echo(f"embedding   {m}: {e.get('count', 0)} vectors, dim {e.get('dim')}, {state}")
    for m, e in info["indexes"].items():
        click.echo(f"index       {m}: {e.get('kind')} over {e.get('count')} vectors, built {e.get('built')}")
    t = info.get("text_index")
    if t:
        sem = t.get("semantic")
        how = f"sentence vectors by {sem['model']} ({sem['count']})" if sem else "no sentence vectors"
        click.echo(
            f"text index  {t['keyword']['docs']} items with text in {', '.join(t['fields'])}; "
            f"keywords (BM25), {how}; built {t.get('built')}"
        )


commands = [info_cmd]
