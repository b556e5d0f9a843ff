"""``illustra feedback``: "report this result" entries, and hiding reported items."""

from __future__ import annotations

import click

from .common import collection_option, echo_json, notice


@click.group("feedback")
def feedback_group() -> None:
    """List and export reports from "Report this result"; hide or show reported items."""


@feedback_group.command("list")
@collection_option
@click.option("--item", "item_id", default=None, help="Only reports about this item.")
@click.option("--limit", type=click.IntRange(1, None), default=None, help="Newest N reports.")
@click.option("--summary", is_flag=True, help="One line per reported item instead of per report.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(
    collection_dir: str, item_id: str | None, limit: int | None, summary: bool, as_json: bool
) -> None:
    """Reports, newest first."""
    from ..collection import Collection
    from ..guardrails.feedback import FeedbackStore

    store = FeedbackStore(Collection(collection_dir).root)
    rows = store.summary() if summary else store.list(item_id=item_id, limit=limit)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no reports")
        return
    for r in rows:
        flag = " [hidden]" if r["hidden"] else ""
        if summary:
            click.echo(f"{r['item_id']}{flag}  {r['reports']} report(s), latest {r['latest']}")
        else:
            query = f"  query: {r['query']!r}" if r["query"] else ""
            click.echo(f"#{r['id']}  {r['created']}  {r['item_id']}{flag}  reason: {r['reason']}{query}")


@feedback_group.command("export")
@collection_option
@click.option(
    "--output", required=True, type=click.Path(dir_okay=False, path_type=str), help="CSV file to write."
)
def export_cmd(collection_dir: str, output: str) -> None:
    """Write every report to a CSV file (id, item_id, query, reason, created, hidden)."""
    from ..collection import Collection
    from ..guardrails.feedback import FeedbackStore

    n = FeedbackStore(Collection(collection_dir).root).export_csv(output)
    notice(f"{n} report(s) written to {output}")


@feedback_group.command("hide")
@collection_option
@click.argument("item_ids", nargs=-1, required=True)
@click.option("--note", default="", help="Why (kept with the hidden item).")
def hide_cmd(collection_dir: str, item_ids: tuple[str, ...], note: str) -> None:
    """Hide items from every search (while guardrails are on)."""
    from ..collection import Collection
    from ..guardrails.feedback import FeedbackStore

    coll = Collection(collection_dir)
    for item in item_ids:
        coll.row_of(item)  # an unknown id is an error, not a silent no-op
    store = FeedbackStore(coll.root)
    for item in item_ids:
        click.echo(f"{item}: {'hidden' if store.hide(item, note) else 'was already hidden'}")


@feedback_group.command("unhide")
@collection_option
@click.argument("item_ids", nargs=-1, required=True)
def unhide_cmd(collection_dir: str, item_ids: tuple[str, ...]) -> None:
    """Show hidden items in searches again."""
    from ..collection import Collection
    from ..guardrails.feedback import FeedbackStore

    store = FeedbackStore(Collection(collection_dir).root)
    for item in item_ids:
        click.echo(f"{item}: {'shown again' if store.unhide(item) else 'was not hidden'}")


@feedback_group.command("hidden")
@collection_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def hidden_cmd(collection_dir: str, as_json: bool) -> None:
    """Items hidden by the owner."""
    from ..collection import Collection
    from ..guardrails.feedback import FeedbackStore

    rows = FeedbackStore(Collection(collection_dir).root).hidden_list()
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['item_id']}  hidden {r['hidden_at']}" + (f"  ({r['note']})" if r["note"] else ""))
    if not rows:
        click.echo("no hidden items")


commands = [feedback_group]
