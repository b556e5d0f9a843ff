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
    rows = [
        {"name": s.name, "env": s.env, "default": s.default, "value": s.get(), "help": s.help}
        for s in settings.SETTINGS.values()
    ]
    if as_json:
        echo_json(rows)
    elif markdown:
        click.echo("| setting | environment variable | default | meaning |\n|---|---|---|---|")
        for r in rows:
            click.echo(f"| {r['name']} | `{r['env']}` | `{r['default']}` | {r['help']} |")
    else:
        for r in rows:
            click.echo(f"{r['env']:<34} {r['value']!s:<40} {r['help']}")


commands = [settings_cmd]
