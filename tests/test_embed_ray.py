"""The Ray engine (``illustra embed --engine ray``) on a real local Ray instance with 2 CPUs: the
same vectors and skip list as the local engine, exactly-once after a killed driver or a killed
encoder actor, progress, and one-line errors."""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from illustra.cli import main
from illustra.collection import Collection
from illustra.embed import embed_collection
from illustra.embed_ray import RayEngine, embed_collection_ray
from illustra.embedding_store import EmbeddingStore
from illustra.encoders import load_encoder, register_encoder
from illustra.errors import ModelUnavailable

from . import tiny_clip
from .embed_runner import SlowFakeEncoder
from .fakes import FakeEncoder
from .hostile import EXPECTED
from .killkit import kill_after_chunks
from .test_embed import _colour_collection, _hostile_collection, _image_rows

tiny_clip_dir = tiny_clip.tiny_clip_dir

REPO = Path(__file__).resolve().parents[1]
ACTOR = "MapWorker(MapBatches(_Embedder))"  # the encoder actors' process title


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    """One local Ray instance for the module (starting one takes seconds), small and quiet."""
    import ray

    ray.init(
        address="local",  # this instance, whatever else runs on the machine
        num_cpus=2,
        object_store_memory=200 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        runtime_env={"env_vars": {"ILLUSTRA_TORCH_THREADS": "1", "SLOWFAKE_DELAY": "0.25"}},
    )
    yield ray
    ray.shutdown()


@pytest.fixture(autouse=True)
def _one_torch_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ILLUSTRA_TORCH_THREADS", "1")


def _skipped(coll: Collection, model: str) -> dict[str, str]:
    with open(EmbeddingStore(coll, model).skipped_path, encoding="utf-8") as fh:
        return {r["id"]: r["reason"] for r in csv.DictReader(fh, delimiter="\t")}


def _stored(root: Path, model: str) -> tuple[list[str], np.ndarray]:
    coll = Collection(root)
    store = EmbeddingStore(coll, model)
    return [str(coll.ids[r]) for r in store.rows()], np.asarray(store.vectors())


def _chunk_rows(root: Path, model: str) -> list[int]:
    embedded, _ = EmbeddingStore(Collection(root), model).done_rows()
    return embedded.tolist()


@pytest.mark.parametrize("model", ["lite", "tiny-clip"])
def test_vectors_and_skips_agree_with_the_local_engine(
    ray_instance: Any, hostile_dir: Path, tmp_path: Path, tiny_clip_dir: Path, model: str
) -> None:
    enc = load_encoder("lite" if model == "lite" else str(tiny_clip_dir))
    local = _hostile_collection(tmp_path / "local", hostile_dir)
    on_ray = _hostile_collection(tmp_path / "ray", hostile_dir)
    embed_collection(local, enc, batch_size=4, workers=2, chunk_rows=5, progress=False)
    summary = embed_collection_ray(on_ray, enc, RayEngine(), batch_size=4, chunk_rows=5, progress=False)

    accept = {f for f, e in EXPECTED.items() if e == "accept"}
    skip = {f for f, e in EXPECTED.items() if e == "skip"}
    assert (summary.embedded, summary.skipped, summary.no_image) == (len(accept), len(skip), 1)
    ids_local, vecs_local = _stored(local.root, enc.name)
    ids_ray, vecs_ray = _stored(on_ray.root, enc.name)
    assert ids_ray == ids_local and set(ids_ray) == accept  # row for row
    cosine = np.sum(vecs_local * vecs_ray, axis=1)
    assert cosine.min() >= 0.9999, cosine
    # Hostile images are skipped and listed with the same reasons as locally.
    reasons = _skipped(Collection(on_ray.root), enc.name)
    assert reasons == _skipped(Collection(local.root), enc.name)
    assert set(reasons) == skip and all(reasons.values())
    entry = Collection(on_ray.root).manifest["embeddings"][enc.name]
    assert entry["complete"] and entry["count"] == len(accept) and entry["skipped"] == len(skip)


def _clean_vectors(tmp_path: Path, n: int) -> np.ndarray:
    clean = _colour_collection(tmp_path / "clean", n)
    embed_collection(clean, SlowFakeEncoder(delay=0), progress=False)
    return _stored(clean.root, "slowfake")[1]


@pytest.mark.slow
def test_killed_driver_resumes_with_every_image_exactly_once(ray_instance: Any, tmp_path: Path) -> None:
    register_encoder("slowfake", SlowFakeEncoder)
    coll = _colour_collection(tmp_path / "coll", 48)
    all_rows = _image_rows(coll)
    chunk_dir = EmbeddingStore(coll, "slowfake").chunk_dir
    env = {**os.environ, "SLOWFAKE_DELAY": "0.3", "ILLUSTRA_EMBED_CHUNK_ROWS": "4"}
    env.pop("RAY_ADDRESS", None)  # the driver starts its own local instance, as the CLI does
    kill_after_chunks(
        [sys.executable, "-m", "tests.embed_runner", "embed", "--collection", str(coll.root)]
        + ["--model", "slowfake", "--engine", "ray", "--batch-size", "2", "--no-progress"],
        chunk_dir,
        cwd=REPO,
        env=env,
        timeout=240,
        and_descendants=True,
    )
    done_before = _chunk_rows(coll.root, "slowfake")
    assert 0 < len(done_before) < len(all_rows)
    assert not (EmbeddingStore(coll, "slowfake").dir / "vectors.npy").exists()

    summary = embed_collection_ray(
        Collection(coll.root),
        SlowFakeEncoder(delay=0),
        RayEngine(),
        batch_size=4,
        chunk_rows=4,
        progress=False,
    )
    assert summary.already_done == len(done_before)
    assert summary.embedded == len(all_rows) - len(done_before)  # nothing embedded twice
    chunk_rows = _chunk_rows(coll.root, "slowfake")
    assert sorted(chunk_rows) == all_rows  # every image in exactly one chunk
    ids, vecs = _stored(coll.root, "slowfake")
    assert len(ids) == len(all_rows)
    np.testing.assert_allclose(vecs, _clean_vectors(tmp_path, 48), atol=1e-6)


def _actor_processes() -> list[Any]:
    import psutil

    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if ACTOR in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:
            continue
    return found


@pytest.mark.slow
def test_killed_actor_loses_and_duplicates_nothing(ray_instance: Any, tmp_path: Path) -> None:
    register_encoder("slowfake", SlowFakeEncoder)  # 0.25 s a batch in the actors (SLOWFAKE_DELAY)
    coll = _colour_collection(tmp_path / "coll", 48)
    all_rows = _image_rows(coll)
    chunk_dir = EmbeddingStore(coll, "slowfake").chunk_dir
    killed: list[int] = []
    stop = threading.Event()

    def kill_an_actor_mid_run() -> None:
        while not stop.is_set():
            if chunk_dir.is_dir() and any(p.suffix == ".npz" for p in chunk_dir.iterdir()):
                for p in _actor_processes():
                    os.kill(p.pid, signal.SIGKILL)
                    killed.append(p.pid)
                if killed:
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_an_actor_mid_run, daemon=True)
    killer.start()
    try:
        summary = embed_collection_ray(
            coll, SlowFakeEncoder(delay=0), RayEngine(), batch_size=2, chunk_rows=4, progress=False
        )
    finally:
        stop.set()
        killer.join(timeout=10)
    assert killed, "no encoder actor was killed mid-run"
    assert summary.embedded == len(all_rows)
    chunk_rows = _chunk_rows(coll.root, "slowfake")
    assert sorted(chunk_rows) == all_rows  # the killed actor's batch came back once, not twice
    assert _stored(coll.root, "slowfake")[1].shape == (len(all_rows), 16)
    np.testing.assert_allclose(_stored(coll.root, "slowfake")[1], _clean_vectors(tmp_path, 48), atol=1e-6)
    again = embed_collection_ray(Collection(coll.root), SlowFakeEncoder(delay=0), RayEngine(), progress=False)
    assert again.embedded == 0 and again.already_done == len(all_rows)


def test_cli_runs_on_ray_with_progress_and_a_one_line_summary(ray_instance: Any, tmp_path: Path) -> None:
    coll = _colour_collection(tmp_path / "coll", 12)
    args = [
        "embed",
        "--collection",
        str(coll.root),
        "--model",
        "fake",
        "--engine",
        "ray",
        "--batch-size",
        "3",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"embedded {len(_image_rows(coll))} images with fake")
    assert "embedding with fake on Ray" in result.stderr and "100%" in result.stderr
    assert _stored(coll.root, "fake")[0] == [str(Collection(coll.root).ids[r]) for r in _image_rows(coll)]


def test_a_worker_that_sees_another_collection_stops_the_run_in_one_line(
    ray_instance: Any, tmp_path: Path
) -> None:
    from illustra.errors import CollectionError

    coll = _colour_collection(tmp_path / "coll", 8)  # the driver holds this one open
    shutil.rmtree(coll.root)
    Collection.create(
        tmp_path / "coll",
        [{"id": f"other-{i}", "image": {"bytes": b"not a picture", "path": None}} for i in range(8)],
        source={"kind": "test"},
    )
    with pytest.raises(CollectionError, match="holds another item on a Ray worker"):
        embed_collection_ray(coll, load_encoder("fake"), RayEngine(), progress=False)
    assert not EmbeddingStore(coll, "fake").chunk_paths()  # nothing written from the wrong pictures


class _FakeHereOnly(FakeEncoder):
    name = "fake-here-only"


def _missing_on_workers() -> FakeEncoder:
    raise ModelUnavailable("model 'fake-here-only' is not available on this worker")


def test_a_model_the_workers_cannot_load_stops_the_run_in_one_line(ray_instance: Any, tmp_path: Path) -> None:
    register_encoder("fake-here-only", _missing_on_workers)  # what the actors load
    coll = _colour_collection(tmp_path / "coll", 6)
    with pytest.raises(ModelUnavailable, match="not available on this worker"):
        embed_collection_ray(coll, _FakeHereOnly(), RayEngine(), progress=False)
    assert not EmbeddingStore(coll, "fake-here-only").chunk_paths()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_head() -> Iterator[tuple[str, dict[str, str]]]:
    """A Ray cluster of its own (``ray start --head``, one node), reached through Ray Client: its
    address and what a client needs to authenticate (token authentication is Ray's default)."""
    import psutil

    ray_bin = str(Path(sys.executable).with_name("ray"))
    subprocess.run([ray_bin, "get-auth-token", "--generate"], check=True, capture_output=True, timeout=60)
    token = subprocess.run(
        [ray_bin, "get-auth-token"], check=True, capture_output=True, text=True, timeout=60
    ).stdout.split()[-1]
    client_port = _free_port()
    # Its own temporary folder: the "current cluster" note `ray start` leaves there must not send
    # other ray.init() calls on this machine to this cluster.
    temp_dir = tempfile.mkdtemp(prefix="rayh", dir="/tmp")  # short: Ray's socket paths live in it
    head = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", "--num-cpus", "2", "--include-dashboard", "false"]
        + ["--temp-dir", temp_dir, "--port", str(_free_port()), "--ray-client-server-port", str(client_port)]
        + ["--dashboard-agent-listen-port", str(_free_port()), "--object-store-memory", str(200 * 2**20)],
        env={**os.environ, "PYTHONPATH": str(REPO)},  # the cluster's workers import the test encoders
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert head.poll() is None, "ray start --head stopped"
            assert time.monotonic() < deadline, "the Ray Client server did not start"
            try:
                socket.create_connection(("127.0.0.1", client_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        yield f"ray://127.0.0.1:{client_port}", {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    finally:
        for p in [*psutil.Process(head.pid).children(recursive=True), psutil.Process(head.pid)]:
            with contextlib.suppress(psutil.Error):
                p.kill()
        head.wait(timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)  # with the cluster's address note


@pytest.mark.slow
def test_a_ray_client_address_runs_the_pipeline_on_that_cluster(
    ray_head: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    address, auth = ray_head
    coll = _colour_collection(tmp_path / "coll", 20)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | auth
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.embed_runner",
            "embed",
            "--collection",
            str(coll.root),
            "--model",
            "fake",
        ]
        + ["--engine", "ray", "--ray-address", address, "--batch-size", "3", "--chunk-rows", "4"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _image_rows(coll)
    assert done.stdout.strip().startswith(f"embedded {len(rows)} images with fake")
    assert "embedding with fake on Ray" in done.stderr
    assert sorted(_chunk_rows(coll.root, "fake")) == rows  # every image in exactly one chunk
    clean = _colour_collection(tmp_path / "clean", 20)
    embed_collection(clean, load_encoder("fake"), progress=False)
    np.testing.assert_allclose(_stored(coll.root, "fake")[1], _stored(clean.root, "fake")[1], atol=1e-6)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_unreachable_cluster_is_one_line_and_loses_nothing(tmp_path: Path) -> None:
    coll = _colour_collection(tmp_path / "coll", 12)
    embed_collection(coll, load_encoder("fake"), chunk_rows=4, progress=False)
    before = _snapshot(coll.root / "embeddings")
    address = f"ray://127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    result = CliRunner().invoke(
        main,
        [
            "embed",
            "--collection",
            str(coll.root),
            "--model",
            "fake",
            "--engine",
            "ray",
            "--ray-address",
            address,
        ],
    )
    assert result.exit_code == 9, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: cannot reach the Ray cluster at {address}: Connection refused"
    ]
    assert "Traceback" not in result.output
    assert time.monotonic() - t0 < 60
    assert _snapshot(coll.root / "embeddings") == before


def test_ray_not_installed_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    coll = _colour_collection(tmp_path / "coll", 4)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    result = CliRunner().invoke(
        main, ["embed", "--collection", str(coll.root), "--model", "fake", "--engine", "ray"]
    )
    assert result.exit_code == 9, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'illustra[ray]'" in lines[0]
    assert not (coll.root / "embeddings").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ray-address", "auto"], "only apply with --engine ray"),
        (["--gpus-per-worker", "1"], "only apply with --engine ray"),
        (["--engine", "ray", "--ray-address", "ray://"], "--ray-address takes auto"),
    ],
)
def test_ray_options_are_checked(tmp_path: Path, extra: list[str], message: str) -> None:
    coll = _colour_collection(tmp_path / "coll", 4)
    result = CliRunner().invoke(main, ["embed", "--collection", str(coll.root), "--model", "fake", *extra])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


class _Cluster:
    """Stands in for the ``ray`` module where only the cluster's resources matter."""

    def __init__(self, **resources: float) -> None:
        self.resources = resources

    def cluster_resources(self) -> dict[str, float]:
        return dict(self.resources)


def _local(engine: RayEngine) -> RayEngine:
    engine._owned = True  # as if this process had started the instance: it cannot grow
    return engine


def test_a_local_instance_keeps_a_cpu_for_decoding_and_finds_its_gpus() -> None:
    from illustra.errors import BadInput

    assert RayEngine(workers=2).actor_count(_Cluster(CPU=2)) == 2  # a cluster may grow
    with pytest.raises(BadInput, match="--workers 1 or fewer"):
        _local(RayEngine(workers=2)).actor_count(_Cluster(CPU=2))
    assert _local(RayEngine(workers=2)).actor_count(_Cluster(CPU=3)) == 2
    assert RayEngine(gpus_per_worker=0.5).actor_count(_Cluster(CPU=8, GPU=2)) == 4  # one per half GPU
    with pytest.raises(BadInput, match="need 1 GPUs; this machine offers Ray 0"):
        _local(RayEngine(workers=2, gpus_per_worker=0.5)).actor_count(_Cluster(CPU=8))
