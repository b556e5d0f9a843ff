"""Tiny random sentence-transformers model directories, built offline in both layouts the
sentence-transformers CLIP models use: a CLIP checkpoint under ``0_CLIPModel/`` with a
``modules.json`` (like ``sentence-transformers/clip-ViT-B-32``), and a text model of
Transformer → Pooling → Dense (like ``clip-ViT-B-32-multilingual-v1``: DistilBERT + Dense) whose
vectors have the CLIP model's dimension."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .tiny_clip import _quiet_transformers, _tokenizer, build_tiny_clip

CLIP_MODULE = {"idx": 0, "name": "0", "path": "0_CLIPModel", "type": "sentence_transformers.models.CLIPModel"}


def build_st_clip(path: Path, *, seed: int = 0, projection_dim: int = 16) -> Path:
    """A tiny CLIP saved the way sentence-transformers publishes its CLIP models."""
    build_tiny_clip(path / CLIP_MODULE["path"], seed=seed, projection_dim=projection_dim)
    (path / "modules.json").write_text(json.dumps([CLIP_MODULE]), encoding="utf-8")
    (path / "config_sentence_transformers.json").write_text(json.dumps({"__version__": {}}), encoding="utf-8")
    return path


def build_st_text(path: Path, *, out_dim: int = 16, seed: int = 0, languages: list[str] | None = None) -> Path:
    """A tiny DistilBERT → mean pooling → Dense(out_dim) text model, with a model card naming its languages."""
    import torch

    _quiet_transformers()
    from sentence_transformers import SentenceTransformer, models
    from transformers import DistilBertConfig, DistilBertModel

    tokenizer = _tokenizer(max_length=32)
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        config = DistilBertConfig(
            vocab_size=len(tokenizer), dim=32, n_layers=1, n_heads=2, hidden_dim=64,
            max_position_embeddings=32, pad_token_id=tokenizer.pad_token_id,
        )
        DistilBertModel(config).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        word = models.Transformer(tmp, max_seq_length=32)
        pool = models.Pooling(word.get_embedding_dimension(), pooling_mode="mean")
        dense = models.Dense(32, out_dim, bias=False, activation_function=torch.nn.Identity())
        SentenceTransformer(modules=[word, pool, dense], device="cpu").save(str(path))
    langs = languages or ["en", "de", "fr"]
    header = "\n".join(["---", "language:", *[f"- {x}" for x in langs], "---", "", "A tiny test model."])
    (path / "README.md").write_text(header + "\n", encoding="utf-8")
    return path
