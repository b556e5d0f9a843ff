"""INT8 text tower for queries on CPU: the model's text side exported to ONNX, its weights quantised.

A CLIP-family text tower run per query is dominated by its Linear layers on a few dozen tokens.
ONNX Runtime's dynamic INT8 quantisation (INT8 weights, activations quantised per call) runs those
on the CPU's integer units (VNNI, AMX) several times faster than float32 torch, with query vectors
that agree with float32 at cosine ~0.999 — and the tokens, pooling and projection are the model's own.
Only the query side changes: pictures keep the precision they were embedded with.

The export and quantisation happen once per model, at first use, and are kept on disk — in a
``.illustra-text-int8`` folder inside the model directory when it is writable, else under
``$XDG_CACHE_HOME/illustra/text-int8`` — keyed by the model's files (names, sizes, times) and the
library versions, so a server starts fast the second time. Nothing is downloaded.

Each build is checked against float32 on a few probe queries; ``ClipEncoder`` uses the INT8 tower
only when their agreement reaches ``MIN_COSINE`` (the measured value is kept with the files).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

log = logging.getLogger(__name__)
T = TypeVar("T")

FORMAT = 1  # bump when what is written changes
MIN_COSINE = 0.99
FOLDER = ".illustra-text-int8"
# Varied queries for the agreement check made at build time: short and long, names, dates, non-ASCII.
PROBES = [
    "ship",
    "a map of london",
    "portrait of a woman in a bonnet",
    "engraving of a cathedral with a bridge over a river",
    "botanical drawing of ferns and leaves, hand-coloured",
    "1850s steam locomotive",
    "Napoléon à Sainte-Hélène",
    "decorated initial letter A with birds and vines",
    "a crowd watching a balloon ascent over the city at dusk",
    "skeleton",
    "title page with printer's device",
    "mountains, glaciers and a small hut; alpine scenery from a travel book of 1870",
]
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".model", ".txt")


def available() -> bool:
    """Whether ONNX Runtime and ONNX (for quantisation) are installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def model_key(source: str, input_names: Sequence[str], fixed_length: int | None) -> str:
    """A digest of the model's files (resolved names, sizes, modification times), how the tower is
    fed, and the versions of the libraries that write and read the result."""
    import onnxruntime
    import torch
    import transformers

    h = hashlib.sha256()
    h.update(
        json.dumps(
            [
                FORMAT,
                torch.__version__,
                transformers.__version__,
                onnxruntime.__version__,
                list(input_names),
                fixed_length,
            ]
        ).encode()
    )
    root = Path(source)
    files = sorted(p for p in root.iterdir() if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES))
    if not files:
        h.update(source.encode())
    for p in files:
        real = p.resolve()
        st = real.stat()
        h.update(f"{p.name}\0{real.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def cache_dir(source: str, tower: str = "text") -> Path:
    """Where this model's INT8 ``tower`` ("text" or "image") is kept: inside a writable model
    directory, else the user cache."""
    root = Path(source)
    if root.is_dir() and os.access(root, os.W_OK):
        return root / (FOLDER if tower == "text" else f".illustra-{tower}-int8")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    digest = hashlib.sha256(str(root.resolve() if root.exists() else source).encode()).hexdigest()[:16]
    return Path(base) / "illustra" / f"{tower}-int8" / digest


class Int8TextTower:
    """An ONNX Runtime session over the quantised text tower: token arrays in, text features out."""

    def __init__(self, folder: Path, threads: int) -> None:
        import onnxruntime as ort

        meta = json.loads((folder / "meta.json").read_text())
        self.folder = folder
        self.input_names: list[str] = list(meta["inputs"])
        self.agreement: float = float(meta["agreement"])
        self.fixed_length: int | None = meta.get("fixed_length")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle threads sleep instead of spinning: a server shares its cores with the index and HTTP.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(folder / "text_int8.onnx"), opts, providers=["CPUExecutionProvider"]
        )

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        # One text per run: activations are quantised with one scale per run, so batching texts
        # together would make a text's vector depend on its neighbours.
        # For the same reason a text padded to the longest of its batch is cut back to its own tokens.
        arrays = {k: np.ascontiguousarray(inputs[k], dtype=np.int64) for k in self.input_names}
        mask = arrays.get("attention_mask") if not self.fixed_length else None
        rows = []
        for i in range(len(arrays[self.input_names[0]])):
            end = None
            if mask is not None:
                n = int(mask[i].sum())
                if 0 < n < mask.shape[1] and bool(mask[i, :n].all()):
                    end = n
            rows.append(self.session.run(None, {k: a[i : i + 1, :end] for k, a in arrays.items()})[0])
        return np.concatenate(rows, axis=0).astype(np.float32, copy=False)


def _wrapper(model: Any, input_names: Sequence[str]) -> Any:
    import torch

    class TextFeatures(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: Any) -> Any:
            out = self.model.get_text_features(**dict(zip(input_names, args, strict=True)))
            return out if torch.is_tensor(out) else out.pooler_output

    return TextFeatures().eval()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # The exporter and quantiser warn about tracing details and their own deprecations.
    # The quantiser logs through the root logger.
    loggers = [logging.getLogger(n) for n in ("", "onnxruntime", "onnx", "torch.onnx")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, lv in zip(loggers, levels, strict=True):
                lg.setLevel(lv)


def build(
    model: Any,
    folder: Path,
    sample: dict[str, np.ndarray],
    fixed_length: int | None,
    reference: Any,
    tokenize: Any,
) -> None:
    """Export the text tower of ``model`` to ONNX, quantise it to INT8 and measure its agreement.

    ``sample``: tokenizer output for two texts (its keys name the inputs); ``fixed_length``: the
    padded length when texts are always padded to it (SigLIP), else ``None`` (any length);
    ``reference``: texts -> float32 vectors of the model as loaded; ``tokenize``: texts -> inputs.
    The result is written to a temporary folder and renamed into place, so concurrent builders and
    interrupted builds leave either nothing or a complete folder.
    """
    import torch

    names = list(sample)
    work = workspace(folder)
    try:
        args = tuple(torch.from_numpy(np.ascontiguousarray(sample[k], dtype=np.int64)) for k in names)
        axes = {k: ({0: "batch"} if fixed_length else {0: "batch", 1: "tokens"}) for k in names}
        axes["features"] = {0: "batch"}
        export_int8(_wrapper(model, names), args, work, "text", names, axes)
        (work / "meta.json").write_text(
            json.dumps({"format": FORMAT, "inputs": names, "fixed_length": fixed_length, "agreement": 0.0})
        )
        tower = Int8TextTower(work, threads=1)
        fast = _unit(tower(tokenize(PROBES)))
        ref = _unit(reference(PROBES))
        agreement = float(np.min(np.sum(fast * ref, axis=1)))
        (work / "meta.json").write_text(
            json.dumps(
                {
                    "format": FORMAT,
                    "inputs": names,
                    "fixed_length": fixed_length,
                    "agreement": round(agreement, 6),
                }
            )
        )
        del tower
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    install(work, folder)


def export_int8(
    module: Any,
    args: tuple[Any, ...],
    work: Path,
    stem: str,
    names: list[str],
    axes: dict[str, dict[int, str]],
) -> Path:
    """Export ``module`` (output ``features``) to ONNX in ``work`` and quantise its weights to
    INT8 as ``<stem>_int8.onnx``; the float32 export is not kept."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32 = work / f"{stem}_fp32.onnx"
    out = work / f"{stem}_int8.onnx"
    with _quiet(), torch.inference_mode():
        torch.onnx.export(
            module,
            args,
            str(fp32),
            input_names=names,
            output_names=["features"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, use_external_data_format=True)
    for p in work.iterdir():  # the float32 export (and its external weights)
        if p.name.startswith(f"{stem}_fp32"):
            p.unlink()
    return out


def load_or_build(
    folder: Path, what: str, open_tower: Callable[[Path], T], build: Callable[[Path], None]
) -> T:
    """The INT8 ``what`` tower kept in ``folder``, built there first when missing or damaged."""
    if (folder / "meta.json").is_file():
        try:
            return open_tower(folder)
        except Exception as exc:  # noqa: BLE001 - a damaged copy is rebuilt
            log.warning(
                "rebuilding the INT8 %s tower in %s (%s)",
                what,
                folder,
                str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__,
            )
            shutil.rmtree(folder, ignore_errors=True)
    log.info("building the INT8 %s tower in %s (once per model)", what, folder)
    build(folder)
    return open_tower(folder)


def workspace(folder: Path) -> Path:
    """A temporary folder beside ``folder`` to build into (see ``install``)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))


def install(work: Path, folder: Path) -> None:
    """Rename a finished build into place, so concurrent builders and interrupted builds leave
    either nothing or a complete folder; earlier builds for other versions of the model go."""
    try:
        if folder.exists():  # another process finished first: keep its copy
            shutil.rmtree(work, ignore_errors=True)
        else:
            try:
                work.rename(folder)
            except OSError:
                shutil.rmtree(work, ignore_errors=True)
                if not folder.exists():
                    raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    for old in folder.parent.glob("*"):
        if old.is_dir() and old != folder and old.name != work.name and _ours(old, folder):
            shutil.rmtree(old, ignore_errors=True)


def _ours(path: Path, folder: Path) -> bool:
    stem = folder.name.split("-")[0]
    return path.name.startswith(stem + "-") and ".tmp-" not in path.name


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
