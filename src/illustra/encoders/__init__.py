"""Encoder registry: ``load_encoder("lite")``, ``load_encoder("org/model")``, ``load_encoder("/path")``.

Backends register a factory under a name; anything not registered is treated as a Hugging Face
CLIP-family model id or local directory. Tests register fakes the same way (see tests/conftest.py).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from .. import settings
from ..errors import ModelUnavailable
from .base import Encoder, l2_normalise, model_slug

__all__ = [
    "Encoder",
    "l2_normalise",
    "model_slug",
    "encoder_factory",
    "load_encoder",
    "register_encoder",
    "resolve_model_name",
    "similarity_model_of",
]

log = logging.getLogger("illustra")

_FACTORIES: dict[str, Callable[[], Encoder]] = {}
_CACHE: dict[str, Encoder] = {}


def register_encoder(name: str, factory: Callable[[], Encoder]) -> None:
    _FACTORIES[name] = factory
    _CACHE.pop(name, None)


def _lite() -> Encoder:
    from .lite import LiteEncoder

    return LiteEncoder()


def _lite_visual() -> Encoder:
    from .lite import LiteEncoder, LiteVisualEncoder

    lite = load_encoder("lite")
    assert isinstance(lite, LiteEncoder)
    return LiteVisualEncoder(lite)


register_encoder("lite", _lite)
register_encoder("lite-visual", _lite_visual)


def similarity_model_of(model: str | Encoder) -> str | None:
    """The picture-only companion space a model offers for picture-to-picture queries, if any
    (declared by the encoder as ``picture_companion``)."""
    if isinstance(model, str):
        if model not in _FACTORIES:
            return None  # Hub models declare none; don't load weights just to ask
        model = load_encoder(model)
    return model.picture_companion


def resolve_model_name(spec: str | None) -> str:
    return spec or str(settings.get("model"))


def encoder_factory(name: str) -> Callable[[], Encoder]:
    """A picklable callable that loads the encoder ``name`` in another process (a Ray actor): its
    registered factory, else the CLIP-family loader (never the ``lite`` fallback: a worker that
    cannot load the model must say so, not embed with another one)."""
    if name in _FACTORIES:
        return _FACTORIES[name]
    return functools.partial(load_encoder, name, fallback=False)


def load_encoder(spec: str | None = None, *, fallback: bool = True, notify: Callable[[str], None] | None = None) -> Encoder:
    """Load (and cache) an encoder.

    When ``spec`` is omitted, the configured default model is used; if it is not available locally
    and the Hub cannot be reached, the offline ``lite`` encoder is used instead and ``notify`` (or
    the log) is told so in one line - never silently.
    """
    explicit = spec is not None
    name = resolve_model_name(spec)
    if name in _CACHE:
        return _CACHE[name]
    if name in _FACTORIES:
        enc = _FACTORIES[name]()
    else:
        from .clip import ClipEncoder

        try:
            enc = ClipEncoder(name)
        except ModelUnavailable as exc:
            if explicit or not fallback:
                raise
            msg = f"{exc} Using the offline 'lite' encoder instead."
            (notify or log.warning)(msg)
            return load_encoder("lite")
    _CACHE[name] = enc
    return enc
