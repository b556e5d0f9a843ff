"""CLIP-family encoders (CLIP, OpenCLIP conversions, SigLIP, SigLIP 2) through 🤗 transformers.

``ClipEncoder("org/model")`` or ``ClipEncoder("/path/to/dir")`` loads any model that has
``get_image_features`` / ``get_text_features`` with ``AutoModel`` and ``AutoProcessor``. The local
cache is tried first, the Hub second; when neither works the user gets one ``ModelUnavailable``
line saying how to get the model onto this machine.

Besides the ``Encoder`` protocol it offers ``prepare_image`` (decode-side preprocessing, safe to run
in worker threads) and ``embed_prepared`` (the model call), so the embedding pipeline can overlap
image preparation with the model working on the previous batch.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import socket
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from PIL import Image

from .. import settings
from ..errors import ModelUnavailable
from . import image_fast, sentence, text_fast
from .base import Encoder, l2_normalise

log = logging.getLogger(__name__)

# "org/name" or a bare legacy name; anything else is taken as a filesystem path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# Images whose aspect ratio is this many times more extreme than the model's crop are centre-cropped
# before the processor sees them: a 12000x8 strip would otherwise be resized to 336000x224 first.
_EXTREME_ASPECT = 2.0
_TEXT_BATCH = 256
# Repeated queries (paging through results, the same search from several users) are answered from an
# LRU of this many vectors (SigLIP 2 so400m: 4.5 kB each); calls with more texts than
# _CACHE_BATCH are bulk embedding and bypass it.
QUERY_CACHE_SIZE = 1024
_CACHE_BATCH = 8


def unavailable_message(name: str) -> str:
    return (
        f"model '{name}' is not available locally and the Hugging Face Hub cannot be reached; "
        f"download it on a connected machine with `hf download {name} --local-dir DIR` "
        f"(older versions: `huggingface-cli download {name} --local-dir DIR`), copy DIR to this machine "
        f"and pass it with --model DIR, or use --model lite."
    )


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _hub_offline() -> bool:
    if _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE")):
        return True
    try:
        from huggingface_hub import constants

        return bool(getattr(constants, "HF_HUB_OFFLINE", False))
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        return True


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe, so an unreachable Hub costs seconds instead of a minute of retries."""
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    url = urlparse(endpoint)
    host = url.hostname
    if not host:
        return False
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1 or not _HUB_ID.match(name)


def _in_hub_cache(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        return False
    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # noqa: BLE001 - an odd id or cache layout: let transformers decide
        return True


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Silence transformers' per-load chatter (weight-loading bars, backend fallback notes)."""
    from transformers.utils import logging as tlog

    level = tlog.get_verbosity()
    bars = tlog.is_progress_bar_enabled()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        tlog.set_verbosity(level)
        if bars:
            tlog.enable_progress_bar()


class _NotCached(Exception):
    pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def _load(name: str, source: str, *, local_only: bool) -> tuple[Any, Any, Any]:
    """Load (config, processor, model). Raises ``_NotCached`` when a local-only load misses files."""
    from transformers import AutoConfig, AutoModel, AutoProcessor

    kw = {"local_files_only": local_only}
    try:
        config = AutoConfig.from_pretrained(source, **kw)
    except OSError as exc:
        if local_only:
            raise _NotCached() from exc
        msg = _first_line(exc)
        if "not a valid model identifier" in msg or "Repository Not Found" in msg or "404" in msg:
            raise ModelUnavailable(f"model '{name}' was not found on the Hugging Face Hub") from None
        if "couldn't connect" in msg.lower() or "connection" in msg.lower():
            raise ModelUnavailable(unavailable_message(name)) from None
        # Gated or private repositories, bad tokens, ...: the Hub's own words are the useful part.
        raise ModelUnavailable(
            f"model '{name}' could not be fetched from the Hugging Face Hub: {msg}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - a broken download fails in many library-specific ways
        raise ModelUnavailable(
            f"model '{name}' has a configuration transformers cannot use: {_first_line(exc)}"
        ) from None

    try:
        model = AutoModel.from_pretrained(source, **kw)
    except OSError as exc:
        if local_only:
            raise _NotCached() from exc
        raise ModelUnavailable(f"model '{name}' could not be loaded: {_first_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - e.g. safetensors' own error for a damaged weights file
        raise ModelUnavailable(f"model '{name}' could not be loaded: {_first_line(exc)}") from None
    if not (hasattr(model, "get_image_features") and hasattr(model, "get_text_features")):
        raise ModelUnavailable(
            f"model '{name}' ({getattr(config, 'model_type', '?')}) is not an image-text model; "
            "use a CLIP or SigLIP model, or --model lite"
        )

    try:
        processor = AutoProcessor.from_pretrained(source, **kw)
    except OSError as exc:
        if local_only:
            raise _NotCached() from exc
        raise ModelUnavailable(f"model '{name}' has no usable processor: {_first_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001
        raise ModelUnavailable(f"model '{name}' has no usable processor: {_first_line(exc)}") from None
    if getattr(processor, "image_processor", None) is None or getattr(processor, "tokenizer", None) is None:
        raise ModelUnavailable(f"model '{name}' lacks an image processor or a tokenizer")
    return config, processor, model


def load_pretrained(name: str) -> tuple[Any, Any, Any, str]:
    """Find and load a CLIP-family model: local directory, local Hub cache, then the Hub.

    Returns (config, processor, model, source) where ``source`` is the directory or Hub id used.
    """
    path = Path(name).expanduser()
    st_dir = sentence.find(name)
    if st_dir is not None:
        # sentence-transformers' layout: the 🤗 checkpoint is one module folder (0_CLIPModel/).
        inner = sentence.clip_module_dir(st_dir)
        if inner is None:
            raise ModelUnavailable(
                f"{name} is a sentence-transformers text model, not an image-text model: pass it as "
                "--text-model beside the CLIP model whose image space it was trained for"
            )
        path = inner
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise ModelUnavailable(
                f"{name} is not a model directory (no config.json); pass a Hugging Face model id or a "
                "directory written by `hf download --local-dir` or save_pretrained"
            )
        with _quiet_loading():
            try:
                config, processor, model = _load(name, str(path), local_only=True)
            except _NotCached as exc:
                raise ModelUnavailable(
                    f"model directory {name} is incomplete: {_first_line(exc.__cause__ or exc)}"
                ) from None
        return config, processor, model, str(path.resolve())
    if _looks_like_path(name):
        raise ModelUnavailable(f"model directory {name} does not exist")
    if not _in_hub_cache(name) and (_hub_offline() or not _hub_reachable()):
        # Decided before importing torch and transformers: the answer comes in a fraction of a second.
        raise ModelUnavailable(unavailable_message(name))
    with _quiet_loading():
        try:
            config, processor, model = _load(name, name, local_only=True)
            return config, processor, model, name
        except _NotCached:
            pass
    if _hub_offline() or not _hub_reachable():
        raise ModelUnavailable(unavailable_message(name))
    config, processor, model = _load(name, name, local_only=False)
    return config, processor, model, name


def _size_get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def _image_side(image_processor: Any, config: Any) -> int:
    """Longest side of the pixels the model is fed."""
    crop = getattr(image_processor, "crop_size", None)
    size = getattr(image_processor, "size", None)
    if getattr(image_processor, "do_center_crop", False) and _size_get(crop, "height"):
        return int(max(_size_get(crop, "height"), _size_get(crop, "width") or 0))
    if _size_get(size, "height") and _size_get(size, "width"):
        return int(max(_size_get(size, "height"), _size_get(size, "width")))
    if _size_get(size, "shortest_edge"):
        return int(_size_get(size, "shortest_edge"))
    patch = getattr(image_processor, "patch_size", None)
    max_patches = getattr(image_processor, "max_num_patches", None)
    if patch and max_patches:  # SigLIP 2 "naflex": a budget of patches at native aspect ratio
        return int(math.isqrt(int(max_patches)) * int(patch))
    vision = getattr(config, "vision_config", None)
    return int(getattr(vision, "image_size", 224) or 224)


def _embedding_dim(config: Any) -> int:
    if getattr(config, "projection_dim", None):
        return int(config.projection_dim)
    text = getattr(config, "text_config", None)
    if text is not None and getattr(text, "projection_size", None):
        return int(text.projection_size)
    vision = getattr(config, "vision_config", None)
    if vision is not None and getattr(vision, "hidden_size", None):
        return int(vision.hidden_size)
    return int(config.hidden_size)


def _native_bf16() -> bool:
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _cpu_bf16() -> bool:
    """Whether CPU inference runs in bfloat16 (autocast): about twice the throughput of float32 on
    CPUs with native bf16 (AVX512-BF16, AMX), with vectors that agree to ~0.999 cosine."""
    choice = str(settings.get("cpu_precision")).lower()
    if choice in {"fp32", "float32", "int8"}:
        return False
    if choice in {"bf16", "bfloat16"}:
        return True
    return _native_bf16()


def _cpu_int8_pictures() -> bool:
    """Whether pictures run through the INT8 image tower: only when asked for. Its vectors agree
    with float32 at cosine 0.9997 but keep only 87 % of a picture's ten nearest neighbours on the
    embedding benchmark's scans (bf16: 97 %), so ``auto`` never picks it."""
    return str(settings.get("cpu_precision")).lower() == "int8"


def _cuda_bf16(torch: Any) -> bool:
    try:
        return bool(torch.cuda.is_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - depends on the GPU
        return False


def precision_plan(device: str, cpu_bf16: bool, cuda_bf16: bool) -> str | None:
    """The autocast dtype a model runs under on ``device`` (weights stay float32), or None for
    plain float32. GPUs: mixed precision, bfloat16 where the GPU has it (float16's range can
    overflow in long towers), else float16; CPUs: bfloat16 when ``cpu_precision`` chooses it."""
    if device == "cuda":
        return "bfloat16" if cuda_bf16 else "float16"
    if device == "cpu" and cpu_bf16:
        return "bfloat16"
    return None


def normalise_query(text: str) -> str:
    """The form of a text that is embedded and that keys the query cache: NFC, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFC", str(text)).split())


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class ImagePreparer:
    """A CLIP-family model's image preprocessing on its own: the processor and the crop rule, no
    weights. Small and picklable, so decode workers elsewhere (Ray tasks) run exactly what
    ``ClipEncoder.prepare_image`` runs."""

    def __init__(self, image_processor: Any, crop_aspect: float | None) -> None:
        self.image_processor = image_processor
        self.crop_aspect = crop_aspect

    def __call__(self, image: Image.Image) -> dict[str, np.ndarray]:
        if image.mode != "RGB":
            image = image.convert("RGB")
        if self.crop_aspect is not None:
            image = self._crop_extreme(image, self.crop_aspect)
        out = self.image_processor(images=[image], return_tensors="np")
        return {k: np.asarray(v) for k, v in out.items()}

    @staticmethod
    def _crop_extreme(image: Image.Image, aspect: float) -> Image.Image:
        # The processor keeps only a centre crop of this aspect ratio anyway; cutting it out first
        # keeps its resize bounded for panoramas and strips. Ordinary images are left untouched.
        w, h = image.size
        if w / h > aspect * _EXTREME_ASPECT:
            nw = max(1, round(h * aspect))
            left = (w - nw) // 2
            return image.crop((left, 0, left + nw, h))
        if h / w > _EXTREME_ASPECT / aspect:
            nh = max(1, round(w / aspect))
            top = (h - nh) // 2
            return image.crop((0, top, w, top + nh))
        return image


class ClipEncoder(Encoder):
    """An image-text model from 🤗 transformers, returning L2-normalised float32 vectors."""

    def __init__(self, name_or_path: str | None = None, device: str | None = None) -> None:
        name = name_or_path or str(settings.get("model"))
        config, processor, model, source = load_pretrained(name)
        import torch

        self.name = name
        self.source = source
        self.config_name = str(getattr(config, "_name_or_path", "") or source)
        self.model_type = str(getattr(config, "model_type", ""))
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cpu":
            # Containers often report more cores than they may use; oversubscribed threads thrash.
            threads = int(settings.get("torch_threads")) or _available_cores()
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
        self._pictures_int8 = self.device.type == "cpu" and _cpu_int8_pictures()
        self._image_int8: image_fast.Int8ImageTower | None = None
        amp = precision_plan(
            self.device.type, _cpu_bf16(), _cuda_bf16(torch) if self.device.type == "cuda" else False
        )
        self._autocast = amp is not None
        self._amp_dtype = getattr(torch, amp or "bfloat16")
        self._dtype = torch.float32
        self.model = model.to(device=self.device, dtype=self._dtype).eval()
        self.processor = processor
        self.image_processor = processor.image_processor
        self.tokenizer = processor.tokenizer
        self.dim = _embedding_dim(config)
        self.image_side = _image_side(self.image_processor, config)
        self.batch_size = int(settings.get("batch_size"))
        # SigLIP models were trained on texts padded to a fixed length; padding="longest" changes results.
        self._pad_to_max = self.model_type.startswith("siglip")
        text_config = getattr(config, "text_config", None)
        limits = [int(getattr(text_config, "max_position_embeddings", 0) or 0)]
        tok_max = int(getattr(self.tokenizer, "model_max_length", 0) or 0)
        if 0 < tok_max < 100_000:
            limits.append(tok_max)
        self._text_max = min([n for n in limits if n > 0] or [77])
        self._threads = torch.get_num_threads()
        # A text query is one latency-bound call whose ONNX Runtime pool sleeps when idle, so it
        # gets every core even where a server runs torch on one thread per request (that default is
        # set in code); a number the user chose for torch_threads applies to it too.
        chosen = settings.current().sources.get("torch_threads", "default") not in ("default", "code")
        self._query_threads = self._threads if chosen else _available_cores()
        self.query_precision = self._resolve_query_precision()
        self._int8: text_fast.Int8TextTower | None = None
        self._int8_tried = False
        self._int8_lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.cache_size = QUERY_CACHE_SIZE
        crop = getattr(self.image_processor, "crop_size", None)
        self._crop_aspect: float | None = None
        if getattr(self.image_processor, "do_center_crop", False) and _size_get(crop, "height"):
            self._crop_aspect = float(_size_get(crop, "width") or 1) / float(_size_get(crop, "height"))
        self._preparer = ImagePreparer(self.image_processor, self._crop_aspect)

    def describe(self) -> dict[str, Any]:
        """What the manifest records about the model, beside its name and dimension."""
        return {
            "encoder": "clip",
            "model_type": self.model_type,
            "source": self.config_name,
            "image_side": self.image_side,
            "device": self.device.type,
            "precision": self._picture_precision(),
        }

    # -- images -------------------------------------------------------------------------------
    def prepare_image(self, image: Image.Image) -> dict[str, np.ndarray]:
        """Model inputs for one image (batch dimension 1). Pure PIL/numpy: safe in worker threads."""
        return self._preparer(image)

    def image_preparer(self) -> ImagePreparer:
        return self._preparer

    def embed_prepared(self, items: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
        """Run the model once on inputs from ``prepare_image``: the caller chooses the batch size."""
        if not items:
            return np.zeros((0, self.dim), np.float32)
        inputs = {k: np.concatenate([it[k] for it in items], axis=0) for k in items[0]}
        tower = self._int8_pictures()
        if tower is not None and list(inputs) == [image_fast.INPUT]:
            return self._check_dim("image", l2_normalise(tower(inputs[image_fast.INPUT])))
        return self._forward("image", inputs)

    def _picture_precision(self) -> str:
        if self._int8_pictures() is not None:
            return "int8 (ONNX Runtime, one picture per call)"
        return f"{str(self._amp_dtype).replace('torch.', '')} autocast" if self._autocast else "float32"

    def _int8_pictures(self) -> image_fast.Int8ImageTower | None:
        """The INT8 image tower when pictures use it (``cpu_precision=int8``): built at first use
        and kept on disk."""
        if not self._pictures_int8:
            return None
        if self._image_int8 is not None:
            return self._image_int8
        with self._int8_lock:
            if self._image_int8 is None:
                try:
                    self._image_int8 = self._load_image_int8()
                except Exception as exc:  # noqa: BLE001 - export and quantisation fail in many ways
                    raise ModelUnavailable(
                        f"model '{self.name}': its image tower could not be run in INT8: {_first_line(exc)}"
                    ) from None
                if self._image_int8.agreement < image_fast.MIN_COSINE:
                    log.warning(
                        "the INT8 image tower agrees with float32 at cosine %.4f only",
                        self._image_int8.agreement,
                    )
            return self._image_int8

    def _load_image_int8(self) -> image_fast.Int8ImageTower:
        folder = text_fast.cache_dir(self.source, "image") / (
            "tower-" + text_fast.model_key(self.source, [image_fast.INPUT], None)
        )
        return text_fast.load_or_build(
            folder,
            "image",
            lambda f: image_fast.Int8ImageTower(f, self._threads),
            lambda f: image_fast.build(
                self.model,
                f,
                np.concatenate(
                    [self.prepare_image(im)[image_fast.INPUT] for im in image_fast.probe_pictures()]
                ),
                reference=lambda x: self._forward("image", {image_fast.INPUT: x}, autocast=False),
                threads=self._threads,
            ),
        )

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), np.float32)
        outs = []
        for i in range(0, len(images), self.batch_size):
            outs.append(
                self.embed_prepared([self.prepare_image(im) for im in images[i : i + self.batch_size]])
            )
        return np.concatenate(outs, axis=0)

    # -- texts --------------------------------------------------------------------------------
    def _resolve_query_precision(self) -> str:
        """How texts are embedded: 'int8' (ONNX Runtime), 'bf16' (autocast), 'fp32', or 'model'
        (on a GPU: the model as loaded). See the ``query_precision`` setting."""
        choice = str(settings.get("query_precision")).lower()
        if self.device.type != "cpu":
            return "model"
        if choice == "auto":
            return "int8" if text_fast.available() else ("bf16" if self._autocast else "fp32")
        if choice == "int8" and not text_fast.available():
            raise ModelUnavailable(
                "query_precision=int8 needs ONNX Runtime: pip install onnxruntime onnx "
                "(or set ILLUSTRA_QUERY_PRECISION=fp32)"
            )
        return choice

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``texts``; a handful at a time (queries) go through the query cache."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        clean = [normalise_query(t) for t in texts]
        if len(clean) > _CACHE_BATCH:
            return self._embed_texts(clean)
        found: dict[str, np.ndarray] = {}
        with self._cache_lock:
            for key in clean:
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.move_to_end(key)
                    found[key] = hit
        missing = list(dict.fromkeys(k for k in clean if k not in found))
        if missing:
            vecs = self._embed_texts(missing)
            with self._cache_lock:
                for key, vec in zip(missing, vecs, strict=True):
                    vec = vec.copy()
                    vec.setflags(write=False)
                    found[key] = vec
                    self._cache[key] = vec
                    self._cache.move_to_end(key)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return np.stack([found[k] for k in clean]).astype(np.float32, copy=True)

    def embed_query(self, query: str) -> np.ndarray:
        return self.embed_texts([query])[0]

    def clear_query_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    def _tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        tok = self.tokenizer(
            [str(t) for t in texts],
            padding="max_length" if self._pad_to_max else True,
            truncation=True,
            max_length=self._text_max,
            return_tensors="np",
        )
        return {k: np.asarray(v) for k, v in tok.items() if k != "token_type_ids"}

    def _embed_texts(self, texts: Sequence[str], precision: str | None = None) -> np.ndarray:
        """The model's vectors for ``texts`` as given (no cache), at ``precision`` (default: the
        encoder's ``query_precision``)."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        outs = []
        for i in range(0, len(texts), _TEXT_BATCH):
            outs.append(self._text_forward(self._tokenize(texts[i : i + _TEXT_BATCH]), precision))
        return np.concatenate(outs, axis=0)

    def _text_forward(self, inputs: dict[str, np.ndarray], precision: str | None = None) -> np.ndarray:
        precision = precision or self.query_precision
        if precision == "int8":
            tower = self._int8_tower()
            if tower is not None:
                return self._check_dim("text", l2_normalise(tower(inputs)))
            precision = "bf16" if self._autocast else "fp32"
        autocast = {"fp32": False, "bf16": self.device.type == "cpu"}.get(precision, self._autocast)
        return self._forward("text", inputs, autocast=autocast)

    def _int8_tower(self) -> text_fast.Int8TextTower | None:
        """The INT8 text tower, built at first use and kept on disk; ``None`` when it cannot be built
        or disagrees with float32 (then texts go through torch, and one warning says why)."""
        if self._int8 is not None or self._int8_tried:
            return self._int8
        with self._int8_lock:
            if self._int8 is not None or self._int8_tried:
                return self._int8
            explicit = str(settings.get("query_precision")).lower() == "int8"
            tower: text_fast.Int8TextTower | None
            try:
                tower = self._load_int8()
            except Exception as exc:  # noqa: BLE001 - export and quantisation fail in many ways
                self._int8_tried = True
                if explicit:
                    raise ModelUnavailable(
                        f"model '{self.name}': its text tower could not be run in INT8: {_first_line(exc)}"
                    ) from None
                log.warning("text queries use torch: INT8 text tower unavailable (%s)", _first_line(exc))
                return None
            if tower.agreement < text_fast.MIN_COSINE and not explicit:
                log.warning(
                    "text queries use torch: the INT8 text tower agrees with float32 at cosine %.4f only",
                    tower.agreement,
                )
                tower = None
            self._int8, self._int8_tried = tower, True
            return tower

    def _load_int8(self) -> text_fast.Int8TextTower:
        sample = self._tokenize(["a", "an engraving of a cathedral and a bridge"])
        fixed = self._text_max if self._pad_to_max else None
        folder = text_fast.cache_dir(self.source) / (
            "tower-" + text_fast.model_key(self.source, list(sample), fixed)
        )
        return text_fast.load_or_build(
            folder,
            "text",
            lambda f: text_fast.Int8TextTower(f, self._query_threads),
            lambda f: text_fast.build(
                self.model,
                f,
                sample,
                fixed,
                reference=lambda texts: self._embed_texts(texts, "fp32"),
                tokenize=self._tokenize,
            ),
        )

    # -- model --------------------------------------------------------------------------------
    def _forward(self, kind: str, inputs: dict[str, np.ndarray], autocast: bool | None = None) -> np.ndarray:
        import torch

        if autocast is None:
            autocast = self._autocast

        tensors = {}
        gpu = self.device.type == "cuda"
        for k, v in inputs.items():
            t = torch.from_numpy(np.ascontiguousarray(v))
            if t.is_floating_point():
                t = t.to(self._dtype)
            # Page-locked memory lets the copy to the GPU run asynchronously with the host's work.
            tensors[k] = (t.pin_memory() if gpu else t).to(self.device, non_blocking=gpu)
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=self._amp_dtype, enabled=autocast),
        ):
            fn = self.model.get_image_features if kind == "image" else self.model.get_text_features
            out = fn(**tensors)
            # transformers 5 returns a model output whose pooler_output is the embedding; 4.x a tensor.
            feats = out if torch.is_tensor(out) else out.pooler_output
            feats = torch.nn.functional.normalize(feats.float(), dim=-1)
        return self._check_dim(kind, l2_normalise(feats.cpu().numpy()))

    def _check_dim(self, kind: str, arr: np.ndarray) -> np.ndarray:
        if arr.shape[1] != self.dim:
            raise ModelUnavailable(
                f"model '{self.name}' gives {arr.shape[1]}-dimensional {kind} vectors, not {self.dim}"
            )
        return arr
