"""``illustra settings``: the settings registry, its environment variables and current values."""

from __future__ import annotations

import click

from .. import settings
from .common import echo_json


@click.command("settings")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--markdown", is_flag=True, help="Print a Markdown table (used for README).")
def settings_cmd(as_json: bool, markdown: bool) -> None:
    """List settings; each can be set with its ILLUSTRA_* environment variable."""
    values = settings.current()
    rows = [
        {
            "name": s.name,
            "env": s.env,
            "type": s.kind,
            "accepts": s.describe_accepted(),
            "default": s.default,
            "value": values[s.name],
            "source": values.sources.get(s.name, "default"),
            "help": s.help,
        }
        for s in settings.SETTINGS.values()
    ]
    if as_json:
        echo_json(rows)
    elif markdown:
        click.echo(markdown_table())
    else:
        for r in rows:
            click.echo(f"{r['env']:<34} {r['value']!s:<40} ({r['source']}) {r['help']}")


def markdown_table() -> str:
    """README's settings table, made from the registry."""
    lines = ["| setting | environment variable | default | accepts | meaning |", "|---|---|---|---|---|"]
    for s in settings.SETTINGS.values():
        default = s.shown_default or f"`{s.default}`"
        lines.append(f"| {s.name} | `{s.env}` | {default} | {s.describe_accepted()} | {s.help} |")
    return "\n".join(lines)


commands = [settings_cmd]
