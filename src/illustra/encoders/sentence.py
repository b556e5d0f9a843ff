"""sentence-transformers model directories: CLIP models published in its layout, and text models
trained into a CLIP image space (e.g. ``clip-ViT-B-32-multilingual-v1``).

A sentence-transformers directory has a ``modules.json`` listing its modules in order. A CLIP
model keeps the whole 🤗 CLIP checkpoint in one module folder (``0_CLIPModel/``), which the CLIP
loader reads as it reads any model directory. A text model is Transformer → Pooling → Dense;
it embeds queries while the pictures stay in the image model's space. Models are found as
directories or in the local Hub cache by repo id or short name (``clip-ViT-B-32`` means
``sentence-transformers/clip-ViT-B-32``, as in sentence-transformers itself); nothing is downloaded.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelUnavailable
from .base import TextEncoder, l2_normalise

MODULES = "modules.json"
ORG = "sentence-transformers"

# Languages of the multilingual text models sentence-transformers publishes for CLIP, as their
# documentation lists them, for model directories whose card does not name them.
_MULTILINGUAL_50 = ["ar", "bg", "ca", "cs", "da", "de", "el", "en", "es", "et", "fa", "fi", "fr", "fr-ca", "gl", "gu", "he", "hi", "hr", "hu", "hy", "id", "it", "ja", "ka", "ko", "ku", "lt", "lv", "mk", "mn", "mr", "ms", "my", "nb", "nl", "pl", "pt", "pt-br", "ro", "ru", "sk", "sl", "sq", "sr", "sv", "th", "tr", "uk", "ur", "vi", "zh-cn", "zh-tw"]
KNOWN_LANGUAGES = {"clip-ViT-B-32-multilingual-v1": _MULTILINGUAL_50}


def modules(directory: Path) -> list[dict[str, Any]] | None:
    """The directory's module list, or None when it is not a sentence-transformers directory."""
    try:
        data = json.loads((directory / MODULES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else None


def _kinds(mods: list[dict[str, Any]]) -> list[str]:
    return [str(m.get("type", "")).rsplit(".", 1)[-1] for m in mods]


def clip_module_dir(directory: Path) -> Path | None:
    """Where a sentence-transformers CLIP directory keeps its 🤗 checkpoint (None: not one)."""
    mods = modules(directory)
    if not mods:
        return None
    for m, kind in zip(mods, _kinds(mods), strict=True):
        if kind == "CLIPModel":
            return directory / str(m.get("path", ""))
    return None


def is_text_model(directory: Path) -> bool:
    mods = modules(directory)
    return bool(mods) and "Transformer" in _kinds(mods or []) and "CLIPModel" not in _kinds(mods or [])


def _repo_ids(name: str) -> list[str]:
    if "/" in name:
        return [name]
    return [f"{ORG}/{name}"]


def find(name: str) -> Path | None:
    """A sentence-transformers directory for ``name``: the directory itself, or a snapshot in the
    local Hub cache found by repo id or short name. None when ``name`` is neither."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path if modules(path) is not None else None
    if name.startswith(("/", ".", "~")) or not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", name):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        return None
    for repo in _repo_ids(name):
        try:
            found = try_to_load_from_cache(repo, MODULES)
        except Exception:  # noqa: BLE001 - an odd id or cache layout is simply not found
            continue
        if isinstance(found, str):
            return Path(found).parent
    return None


def _card_languages(directory: Path) -> list[str]:
    """Languages named in the model card's YAML header (``language:``), if any."""
    try:
        text = (directory / "README.md").read_text(encoding="utf-8")
    except OSError:
        return []
    m = re.match(r"---\n(.*?)\n---", text, re.S)
    if not m:
        return []
    import yaml

    try:
        header = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError:
        return []
    langs = header.get("language") if isinstance(header, dict) else None
    langs = [langs] if isinstance(langs, str) else langs
    return [str(x) for x in langs or [] if str(x) != "multilingual"]


class SentenceTextEncoder(TextEncoder):
    """A sentence-transformers text model whose vectors live in a CLIP model's image space."""

    supports_text = True

    def __init__(self, name: str) -> None:
        directory = find(name)
        if directory is None:
            raise ModelUnavailable(
                f"text model '{name}' was not found as a sentence-transformers directory or in the local "
                f"Hugging Face cache; fetch it with `hf download {_repo_ids(name)[0]} --local-dir DIR` "
                "and pass --text-model DIR"
            )
        if not is_text_model(directory):
            raise ModelUnavailable(
                f"'{name}' is not a sentence-transformers text model (its modules.json lists "
                f"{', '.join(_kinds(modules(directory) or [])) or 'nothing'}; expected Transformer, Pooling, Dense)"
            )
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(str(directory), device="cpu", local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - a damaged directory fails in library-specific ways
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise ModelUnavailable(f"text model '{name}' could not be loaded: {first}") from None
        self.name = name
        self.source = str(directory.resolve())
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = get_dim()
        self.dim = int(dim) if dim else int(self.model.encode(["x"]).shape[1])
        base = name.rstrip("/").rsplit("/", 1)[-1]
        self.languages: list[str] = _card_languages(directory) or KNOWN_LANGUAGES.get(base, [])
        self._lock = threading.Lock()  # one forward pass at a time: the torch module is shared

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            out = self.model.encode([str(t) for t in texts], convert_to_numpy=True, show_progress_bar=False)
        return l2_normalise(np.asarray(out, dtype=np.float32))

    def describe(self) -> dict[str, Any]:
        return {"text_model": self.name, "source": self.source, "dim": self.dim, "languages": self.languages}
