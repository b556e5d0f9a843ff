"""The ``illustra`` command. Each command group lives in its own module; this file only wires them
up and turns core exceptions into one-line messages with an exit status."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

import click

from ..errors import IllustraError

# Modules under illustra.cli that each expose ``commands: list[click.Command]``.
COMMAND_MODULES = [
    "ingest",
    "embed",
    "index_cmd",
    "search_cmd",
    "info",
    "settings_cmd",
    "serve",
    "demo",
    "eval_cmd",
    "card",
    "audit",
    "feedback",
    "facet_cmd",
    "export_cmd",
    "duplicates_cmd",
    "adapt_cmd",
    "map_cmd",
]


class IllustraGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except IllustraError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted; progress so far is kept - run the same command again to resume", err=True)
            sys.exit(130)


@click.group(cls=IllustraGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="illustra")
@click.option("-v", "--verbose", is_flag=True, help="Log more detail to stderr.")
@click.option(
    "--setting",
    "setting_pairs",
    type=(str, str),
    multiple=True,
    metavar="NAME VALUE",
    help="Set a setting for this command (overrides its ILLUSTRA_* variable); repeatable. "
    "See 'illustra settings'.",
)
def main(verbose: bool, setting_pairs: tuple[tuple[str, str], ...]) -> None:
    """Search digitised image collections by description or by example."""
    from .. import settings

    # Every setting is checked now: a bad value stops here, not on some later query.
    settings.activate(dict(setting_pairs))
    for name in settings.unknown_env_names():
        click.echo(f"warning: {name} is not an Illustra setting and is ignored (see 'illustra settings')", err=True)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(message)s", stream=sys.stderr
    )
    if not verbose:
        # Model libraries draw their own "loading weights" bars; Illustra shows its own progress.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for noisy in ("httpx", "datasets", "transformers", "sentence_transformers", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose else logging.ERROR)


for _name in COMMAND_MODULES:
    _mod = importlib.import_module(f"{__name__}.{_name}")
    for _cmd in _mod.commands:
        main.add_command(_cmd)
