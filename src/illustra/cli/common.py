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


text_model_option = click.option(
    "--text-model",
    default=None,
    help="Embed text queries with this sentence-transformers text model (a directory, or a repo id or short "
    "name in the local Hugging Face cache, e.g. clip-ViT-B-32-multilingual-v1) while the pictures stay in the "
    "image model's space (setting text_model).",
)


def use_text_model(text_model: str | None) -> None:
    """``--text-model`` is the ``text_model`` setting for this command (and a server's workers)."""
    if text_model is not None:
        from .. import settings

        settings.use(settings.current().replace(text_model=text_model))


def echo_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")


def notice(msg: str) -> None:
    """One-line notices go to stderr so --json output stays machine-readable."""
    click.echo(msg, err=True)
