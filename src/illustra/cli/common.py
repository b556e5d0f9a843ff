"""Options and helpers shared by CLI commands."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

collection_option = click.option(
    "--collection",
    "collection_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Collection directory.",
)

model_option = click.option(
    "--model",
    default=None,
    help="Model: 'lite', a Hugging Face CLIP/SigLIP id, or a local model directory. "
    "Defaults to the model the collection was embedded with.",
)


def echo_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")


def notice(msg: str) -> None:
    """One-line notices go to stderr so --json output stays machine-readable."""
    click.echo(msg, err=True)
