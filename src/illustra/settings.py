"""One registry of settings, feeding CLI defaults, environment variables, ``--setting`` and the docs.

Each setting has a type (and for some a set of choices or bounds). Values come from
``--setting NAME VALUE`` on the command line, else ``ILLUSTRA_<NAME>``, else the default; all of
them are checked once, when a command or the server starts (``load``), and a bad one is a
``BadSetting`` naming the variable and what it accepts. Code receives a ``Settings`` object, or
asks for ``current()``, the validated settings of this process. ``illustra settings --markdown``
prints README's settings table.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BadInput

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class BadSetting(BadInput):
    """A setting's value is not one it accepts."""

    code = "bad_setting"


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    # For values with a structure of their own (weights): text -> value, raising ValueError/BadInput.
    parse_with: Callable[[str], Any] | None = None
    accepts: str = ""  # how a custom-parsed value is written, for messages
    shown_default: str = ""  # the default as docs show it, where it depends on the machine

    @property
    def env(self) -> str:
        return "ILLUSTRA_" + self.name.upper()

    @property
    def kind(self) -> str:
        if self.choices:
            return "choice"
        return type(self.default).__name__

    def describe_accepted(self) -> str:
        if self.accepts:
            return self.accepts
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if isinstance(self.default, bool):
            return "true or false (also 1/0, yes/no, on/off)"
        what = "a whole number" if isinstance(self.default, int) else "a number" if isinstance(self.default, float) else "text"
        if self.min is not None and self.max is not None:
            return f"{what} from {_num(self.min)} to {_num(self.max)}"
        if self.min is not None:
            return f"{what} of at least {_num(self.min)}"
        return what

    def parse(self, raw: Any, source: str = "") -> Any:
        """The typed value of ``raw`` (a string from the environment or the command line)."""
        where = source or self.env
        if not isinstance(raw, str):
            raw = str(raw)
        text = raw.strip()
        try:
            value = self._parse(text)
        except (ValueError, BadInput) as exc:
            detail = f" ({exc})" if isinstance(exc, BadInput) else ""
            raise BadSetting(
                f"{where}={raw[:60]!r} is not valid{detail}: {self.name} accepts {self.describe_accepted()}"
            ) from None
        return value

    def _parse(self, text: str) -> Any:
        if self.parse_with is not None:
            return self.parse_with(text)
        if self.choices:
            low = text.lower()
            if low not in self.choices:
                raise ValueError(text)
            return low
        if isinstance(self.default, bool):
            low = text.lower()
            if low in TRUE_WORDS:
                return True
            if low in FALSE_WORDS:
                return False
            raise ValueError(text)
        if isinstance(self.default, int):
            value: float = int(text)
        elif isinstance(self.default, float):
            value = float(text)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(text)
        else:
            return text
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise ValueError(text)
        return value


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "illustra")


def _weights(names: list[str]) -> Callable[[str], dict[str, float]]:
    def parse(text: str) -> dict[str, float]:
        from .search.fusion import parse_weights

        return parse_weights(text, names)

    return parse


def _field_weights(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        w = float(value) if sep and name.strip() else float("nan")
        if not w >= 0 or w == float("inf"):
            raise ValueError(part)
        out[name.strip()] = w
    return out


_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(text: str | int) -> int:
    """Bytes in a size such as ``4GB``, ``512MB``, ``2GiB`` or ``1000000`` (GB = 10^9, GiB = 2^30)."""
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _SIZE_UNITS or float(m.group(1)) * _SIZE_UNITS[unit] < 1:
        raise BadInput(f"{str(text)[:40]!r} is not a memory size such as 4GB, 512MB or 2GiB")
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


def format_size(n: int) -> str:
    """``n`` bytes as a short decimal size (``4GB``, ``1.5GB``, ``512MB``)."""
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 1000)):
        if n >= scale:
            return f"{n / scale:.4g}{unit}"
    return f"{n}B"


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting("data_dir", _default_data_dir(), "Per-user directory holding the demo collection.", shown_default="$XDG_DATA_HOME/illustra or ~/.local/share/illustra"),
        Setting("model", "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "Default embedding model (Hub id, local directory, or 'lite')."),
        Setting("text_model", "", "Text queries embedded with this sentence-transformers text model (e.g. clip-ViT-B-32-multilingual-v1, a directory or a cached repo id) while pictures stay in the image model's space; empty: the image model's own text side."),
        Setting("max_image_pixels", 64_000_000, "Images with more pixels than this are refused as decompression bombs.", min=1),
        Setting("max_image_bytes", 50_000_000, "Image files larger than this many bytes are refused.", min=1),
        Setting("stored_image_side", 1024, "Longest side of the bounded-size image copy stored in a collection.", min=1),
        Setting("thumbnail_store_side", 400, "Longest side of the thumbnail stored in a collection by `illustra ingest hub --images thumbnails` (the default above 100,000 rows).", min=1),
        Setting("exact_index_max", 50_000, "Collections up to this size get an exact (flat) index; larger ones HNSW.", min=0),
        Setting("index_memory_budget", "4GB", "Memory the vector index may hold (vectors for re-ranking stay memory-mapped): above it `illustra index` picks quantised kinds.", parse_with=parse_size, accepts="a size such as 4GB, 512MB or 2GiB"),
        Setting("batch_size", 32, "Images per model call when embedding.", min=1),
        Setting("workers", max(1, (os.cpu_count() or 2)), "Decode/resize worker threads when embedding.", shown_default="the number of CPU cores", min=1),
        Setting("download_concurrency", 8, "Concurrent downloads.", min=1),
        Setting("download_timeout", 20.0, "Seconds to wait for a download to connect or to send the next bytes.", min=0.1),
        Setting("download_retries", 3, "Retries for transient download failures, with exponential backoff.", min=0, max=20),
        Setting("allow_url_fetch", False, "Let the API fetch query images by URL (bounded in size and time)."),
        Setting("upload_max_bytes", 20_000_000, "Largest image upload the API accepts.", min=1),
        Setting("guardrails", True, "Face-upload refusal, sensitive-term notes and language notices."),
        Setting("face_guard", True, "With guardrails on: refuse uploaded photographs in which a face dominates."),
        Setting("face_min_fraction", 0.015, "A photographed face covering at least this fraction of an upload counts as portrait scale (refused).", min=0.0, max=1.0),
        Setting("terms_file", "", "JSON or CSV file of sensitive query terms (action note/block/off) overriding the shipped list."),
        Setting("language_notice", True, "With guardrails on: tell users of non-English queries that the model was evaluated in English."),
        Setting(
            "cpu_precision",
            "auto",
            "CLIP-family inference on CPU: 'fp32', 'bf16' (autocast), 'int8' (pictures through an ONNX Runtime INT8 image tower, one picture per call, built once per model and kept on disk; for CPUs without bf16: faster than fp32 but rankings agree less, see README), or 'auto' (bf16 where the CPU computes it natively, else fp32).",
            choices=("auto", "fp32", "bf16", "int8"),
        ),
        Setting("query_precision", "auto", "Text-query side of CLIP-family models on CPU: 'int8' (ONNX Runtime, INT8 weights; about 3x faster than bf16, cosine ~0.999 with float32; built once per model and kept on disk), 'bf16' (autocast), 'fp32', or 'auto' (int8 where onnxruntime is installed and agrees with float32 at cosine >= 0.99, else as cpu_precision). Pictures are unaffected.", choices=("auto", "fp32", "bf16", "int8")),
        Setting("host", "127.0.0.1", "Address `illustra serve` binds to."),
        Setting("port", 8000, "Port `illustra serve` listens on.", min=0, max=65535),
        Setting("openclipart_dir", "/usr/share/openclipart", "Where the Debian openclipart-png/-svg packages keep their png/ and svg/ folders (used by `illustra demo`)."),
        Setting("url_fetch_timeout", 10.0, "Seconds the API waits for an image URL to answer (the whole fetch gets twice this).", min=0.1),
        Setting("url_fetch_private", False, "Let URL fetching reach loopback/private addresses (off: only public hosts)."),
        Setting("thumbnail_side", 256, "Longest side of the thumbnails the web app serves.", min=1),
        Setting("remote_images", True, "Show the pictures of items that keep only an image URL (ingested with `--images remote`, or a manifest without `--download`) by fetching them from their source, bounded in size and time."),
        Setting("remote_timeout", 10.0, "Seconds a picture's source may take to connect or to send the next bytes (the whole fetch gets twice this).", min=0.1),
        Setting("remote_max_bytes", 20_000_000, "Largest picture fetched from a source.", min=1),
        Setting("remote_cache_bytes", "2GB", "Disk space for pictures fetched from their sources; the least recently shown are dropped first.", parse_with=parse_size, accepts="a size such as 2GB, 512MB or 1GiB"),
        Setting("remote_cache_dir", "", "Directory for the fetched pictures (empty: cache/remote/ in the collection)."),
        Setting("remote_retry_after", 300.0, "Seconds a failed fetch (and a host that could not be reached) is remembered before it is tried again.", min=0),
        Setting("embed_chunk_rows", 1024, "Rows per embedding chunk; an interrupted `illustra embed` resumes from the last finished chunk.", min=1),
        Setting("torch_threads", 0, "CPU threads for model inference (0: one per available core).", min=0),
        Setting("hybrid_fusion", "rrf", "How hybrid search joins the picture and catalogue rankings: 'rrf' (reciprocal rank fusion) or 'weighted' (min-max scores).", choices=("rrf", "weighted")),
        Setting("hybrid_weights", "visual=1,text=1", "Weights of the picture and catalogue rankings in hybrid search.", parse_with=_weights(["visual", "text"]), accepts="weights as visual=NUMBER,text=NUMBER (at least one above 0)"),
        Setting("rrf_k", 60, "Reciprocal rank fusion constant: larger values flatten the advantage of top ranks.", min=0),
        Setting("text_weights", "keyword=1,semantic=1", "Weights of the keyword (BM25) and sentence-vector rankings within catalogue text search.", parse_with=_weights(["keyword", "semantic"]), accepts="weights as keyword=NUMBER,semantic=NUMBER (at least one above 0)"),
        Setting("text_field_weights", "", "BM25 weight per text field, e.g. 'title=3,keywords=3,publisher=0.5' (unnamed fields keep their defaults).", parse_with=_field_weights, accepts="FIELD=NUMBER pairs separated by commas, each number at least 0"),
        Setting("text_semantic", "auto", "Build sentence vectors of catalogue text in `illustra index`: on, off, or auto (collections up to text_semantic_auto_max items).", choices=("auto", "on", "off")),
        Setting("text_semantic_auto_max", 20_000, "With text_semantic=auto, collections up to this many items get sentence vectors (about 15-30 documents/s per CPU core).", min=1),
        Setting("text_semantic_model", "minilm", "Sentence model for catalogue text: 'minilm' (offline all-MiniLM-L6-v2) or an encoder name such as a CLIP model id."),
        Setting("text_semantic_search", True, "Use the sentence vectors of catalogue text at query time (off: keywords only, no sentence model loaded)."),
    ]
}


class Settings(Mapping[str, Any]):
    """Validated values of every setting. Read as ``s.rrf_k`` or ``s["rrf_k"]``."""

    def __init__(self, values: Mapping[str, Any], sources: Mapping[str, str] | None = None) -> None:
        self._values = dict(values)
        self.sources = dict(sources or {})  # name -> "default" | "environment" | "--setting"

    @classmethod
    def load(
        cls, overrides: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Read and check every setting: ``overrides`` (from ``--setting``) over ``ILLUSTRA_*``
        variables over defaults. A bad value or an unknown name is a ``BadSetting``."""
        env = os.environ if environ is None else environ
        overrides = dict(overrides or {})
        for name in overrides:
            if name not in SETTINGS:
                raise BadSetting(f"unknown setting {name[:60]!r}; see 'illustra settings' for the list")
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for s in SETTINGS.values():
            if s.name in overrides:
                values[s.name] = s.parse(overrides[s.name], f"--setting {s.name}")
                sources[s.name] = "--setting"
            elif env.get(s.env, "").strip():
                values[s.name] = s.parse(env[s.env])
                sources[s.name] = "environment"
            else:
                values[s.name] = s.parse_with(s.default) if s.parse_with and isinstance(s.default, str) else s.default
                sources[s.name] = "default"
        return cls(values, sources)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed (already typed: for tests and library callers)."""
        for name in changes:
            if name not in SETTINGS:
                raise BadSetting(f"unknown setting {name!r}")
        return Settings({**self._values, **changes}, {**self.sources, **dict.fromkeys(changes, "code")})


_overrides: dict[str, str] = {}
_cache: tuple[tuple[tuple[str, str], ...], Settings] | None = None


def activate(overrides: Mapping[str, str] | None = None) -> Settings:
    """Check every setting now (at command or server start) with these ``--setting`` overrides,
    and make the result this process's ``current()``."""
    global _overrides, _cache
    settings = Settings.load(overrides)
    _overrides = dict(overrides or {})
    _cache = (_env_key(), settings)
    return settings


def use(settings: Settings) -> Settings:
    """Make an already validated ``Settings`` this process's ``current()`` (a server adjusting
    defaults for its workload)."""
    global _cache
    _cache = (_env_key(), settings)
    return settings


def reset() -> None:
    """Forget the settings a command made current: the next ``current()`` reads the environment."""
    global _overrides, _cache
    _overrides = {}
    _cache = None


def current() -> Settings:
    """This process's validated settings (checked again only if ``ILLUSTRA_*`` variables change)."""
    global _cache
    key = _env_key()
    if _cache is None or _cache[0] != key:
        _cache = (key, Settings.load(_overrides))
    return _cache[1]


def unknown_env_names() -> list[str]:
    """``ILLUSTRA_*`` variables that name no setting (likely typos)."""
    known = {s.env for s in SETTINGS.values()}
    return sorted(k for k in os.environ if k.startswith("ILLUSTRA_") and k not in known)


def _env_key() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("ILLUSTRA_")))


def get(name: str) -> Any:
    """One value of ``current()``, for code that is not handed a ``Settings`` object."""
    return current()[name]
