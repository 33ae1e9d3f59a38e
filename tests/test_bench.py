"""`nnrun bench` end to end on a tiny network (seconds): the table, the JSON read back, the sides
interleaved, the threads reaching the workers, each worker's own peak memory, and the errors."""

from __future__ import annotations

import itertools
import json
import platform
import statistics
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nnrun.bench import TORCH_MISSING, Settings, default_configs
from nnrun.bench import run as bench_run
from nnrun.bench.machine import load_warning
from nnrun.bench.run import Worker
from nnrun.cli import app
from nnrun.errors import ConfigError, NnrunError

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
TINY = {"name": "tiny-bench", "seed": 0, "data": {"dataset": "digits", "validation_split": 0.1},
        "model": {"layers": [{"type": "flatten"}, {"type": "dense", "units": 16, "activation": "relu"},
                             {"type": "dense", "units": 10, "activation": "softmax"}]},
        "optimizer": {"type": "adam", "lr": 0.001}, "train": {"epochs": 1, "batch_size": 32}}
SIDE_FIELDS = {"train_samples_per_s", "train_ms_per_batch", "inference_samples_per_s", "peak_memory_mb",
               "memory_before_training_mb", "train_seconds", "inference_seconds", "blas"}


def has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


needs_torch = pytest.mark.skipif(not has_torch(), reason="needs PyTorch")


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY, sort_keys=False))
    return path


def bench(*args: str):
    return runner.invoke(app, ["bench", *args], env={"COLUMNS": "120"})


@pytest.mark.skipif(__import__("os").cpu_count() < 2, reason="needs two cores")
def test_a_conv_nets_bench_reports_the_processes_blas_threads_not_a_halfs(tmp_path):
    """nnrun's side shares the BLAS threads out between a conv net's two halves (one each on two
    cores); the record names the threads the process was given, as the table's footer says."""
    from nnrun.builder import build_network
    from nnrun.config import load_config

    conv = dict(TINY, model={"layers": [
        {"type": "conv2d", "filters": 64, "kernel_size": 3, "padding": 1, "activation": "relu"},
        {"type": "maxpool2d", "pool_size": 2},
        {"type": "conv2d", "filters": 64, "kernel_size": 3, "padding": 1, "activation": "relu"},
        {"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]})
    path, out = tmp_path / "conv.yaml", tmp_path / "bench.json"
    path.write_text(yaml.safe_dump(conv, sort_keys=False))
    assert len(build_network(load_config(path), (1, 8, 8), 10).shards) == 2  # enough work to split
    result = bench(str(path), "--batches", "2", "--repeats", "1", "--threads", "2", "--json", str(out))
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["blas"]["threads"] == 2 and ", 2 threads" in result.output


def test_bench_prints_the_table_and_writes_the_json(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(bench_run, "load_average", lambda: [3.25, 2.0, 1.0])  # a busy machine
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")  # a kernel chosen for OpenBLAS
    out = tmp_path / "bench.json"
    result = bench(str(tiny), "--batches", "2", "--repeats", "1", "--threads", "1", "--json", str(out))
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["settings"] | {"batches": 2, "repeats": 1, "threads": 1, "data": "synthetic", "compare": None,
                                 "inference_samples": 10000, "inference_batch": 1000, "settle_seconds": 0} == record["settings"]
    assert set(record["machine"]) >= {"cpu", "cores", "usable_cores"} and record["machine"]["cores"] >= 1
    assert record["versions"]["numpy"] == np.__version__ and record["versions"]["torch"] is None
    assert record["blas"]["threads"] == 1  # the limit reached the worker
    assert record["blas_overrides"] == {"OPENBLAS_CORETYPE": "Haswell"}
    assert "BLAS overrides set: OPENBLAS_CORETYPE=Haswell" in result.output
    if record["blas"]["library"] == "openblas" and platform.machine() in ("x86_64", "AMD64"):
        assert record["blas"]["kernel"] == "Haswell"  # the kernel the worker ran, not the one it would pick
        assert "(kernel Haswell)" in result.output
    assert record["load_average"]["start"] == [3.25, 2.0, 1.0] and len(record["load_average"]["end"]) == 3
    assert record["warnings"] == [load_warning([3.25, 2.0, 1.0])]
    (net,) = record["networks"]
    assert net["name"] == "tiny-bench" and net["batch_size"] == 32 and net["train_samples"] == 1347  # digits' size
    assert net["input_shape"] == [1, 8, 8] and net["parameters"] == 64 * 16 + 16 + 16 * 10 + 10
    assert "torch" not in net and not any(k.endswith("_ratio") for k in net)
    side = net["nnrun"]
    assert set(side) == SIDE_FIELDS
    assert len(side["train_seconds"]) == 1 and len(side["inference_seconds"]) == 1
    assert side["train_samples_per_s"] == pytest.approx(2 * 32 / side["train_seconds"][0], rel=1e-3)
    assert side["inference_samples_per_s"] == pytest.approx(10000 / side["inference_seconds"][0], rel=1e-3)
    assert 10 < side["peak_memory_mb"] < 1000 and side["memory_before_training_mb"] <= side["peak_memory_mb"]
    assert "tiny.yaml" in result.output and "peak memory" in result.output
    assert f"{side['train_samples_per_s']:,.0f}/s" in result.output
    assert "ratios only mean something on a quiet machine" in result.output
    assert f"wrote {out}" in result.output


def test_quiet_machine_no_warning():
    assert load_warning([0.2, 1.5, 2.0]) is None and load_warning(None) is None
    assert "quiet machine" in load_warning([0.9, 0.1, 0.1])


@needs_torch
def test_compare_torch_interleaves_the_sides_and_reports_ratios_of_the_medians(tiny, tmp_path, monkeypatch):
    from nnrun.cli import bench as bench_cli

    events = []
    shown = bench_cli.progress_text
    monkeypatch.setattr(bench_cli, "progress_text", lambda event: events.append(event) or shown(event))
    monkeypatch.setattr(bench_run, "SETTLE_SECONDS", 0.05)
    out = tmp_path / "bench.json"
    result = bench(str(tiny), "--batches", "2", "--repeats", "2", "--compare", "torch", "--threads", "1",
                   "--json", str(out))
    assert result.exit_code == 0, result.output
    turns = [(e["phase"], e["side"], e["repeat"]) for e in events if e["phase"] != "start"]
    assert turns == [("train", "nnrun", 1), ("train", "torch", 1), ("train", "nnrun", 2), ("train", "torch", 2),
                     ("infer", "nnrun", 1), ("infer", "torch", 1), ("infer", "nnrun", 2), ("infer", "torch", 2)]
    record = json.loads(out.read_text())
    (net,) = record["networks"]
    assert set(net["torch"]) == SIDE_FIELDS | {"torch"}
    assert net["torch"]["torch"]["threads"] == 1 and record["torch"]["version"] == record["versions"]["torch"]
    assert record["settings"]["settle_seconds"] == 0.05  # the pause it took, as patched above
    median = lambda side, key: statistics.median(net[side][key])
    assert net["train_time_ratio"] == round(median("nnrun", "train_seconds") / median("torch", "train_seconds"), 3)
    assert net["inference_time_ratio"] == round(
        median("nnrun", "inference_seconds") / median("torch", "inference_seconds"), 3)
    assert net["peak_memory_ratio"] == round(net["nnrun"]["peak_memory_mb"] / net["torch"]["peak_memory_mb"], 3)
    # each side measured in its own process: PyTorch's import alone outweighs this network
    assert net["torch"]["peak_memory_mb"] > net["nnrun"]["peak_memory_mb"]
    assert "nnrun/PyTorch" in result.output and f"{net['train_time_ratio']:.2f}x" in result.output
    assert "PyTorch: " in result.output  # its kernels and threads in the footer


class ClockedWorker:
    """A stand-in worker that notes when each of its turns starts and ends."""

    def __init__(self, side: str, log: list):
        self.side, self.log = side, log

    def ask(self, command: str) -> dict:
        import time

        start = time.monotonic()
        time.sleep(0.01)
        self.log.append((self.side, start, time.monotonic()))
        return {"seconds": 0.01}


def test_each_sides_turn_starts_after_the_others_threads_have_settled():
    # OpenBLAS's threads spin ~0.1 s after nnrun's turn: PyTorch's inference took 2-5 times as long
    # when its turn began at once.
    log: list = []
    workers = [ClockedWorker("nnrun", log), ClockedWorker("torch", log)]
    seconds = bench_run.interleaved(workers, "infer", 2, lambda **event: None, settle=0.05)
    assert seconds == {"nnrun": [0.01, 0.01], "torch": [0.01, 0.01]}
    assert [side for side, _, _ in log] == ["nnrun", "torch", "nnrun", "torch"]
    assert all(start - previous_end >= 0.05 for (_, _, previous_end), (_, start, _) in itertools.pairwise(log))


@needs_torch
def test_both_sides_infer_from_the_same_scaled_float32_samples(tiny):
    from nnrun.bench.worker import NnrunSide, TorchSide

    job = {"config": str(tiny), "data": "synthetic", "batches": 1, "warmup": 0, "seed": 0, "threads": 1}
    ours, theirs = NnrunSide({**job, "side": "nnrun"}), TorchSide({**job, "side": "torch"})
    x, t = ours.inference_inputs(), theirs.inference_inputs()
    assert isinstance(x, np.ndarray) and x.dtype == np.float32 and x.max() <= 1
    assert np.array_equal(x, t.numpy())


def test_compare_torch_without_pytorch_says_how_to_install_it(tiny, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "torch", None)  # `import torch` fails
    result = bench(str(tiny), "--compare", "torch")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {TORCH_MISSING}"]
    assert TORCH_MISSING.startswith("--compare torch needs PyTorch: pip install torch (a CPU build: ")


def test_the_configs_own_data(tiny, tmp_path):
    out = tmp_path / "bench.json"
    result = bench(str(tiny), "--data", "config", "--batches", "2", "--repeats", "1", "--json", str(out))
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["settings"]["data"] == "config"
    assert record["networks"][0]["train_samples"] == 1211  # digits' training split less the validation tenth


def test_the_configs_own_uint8_pixels_reach_pytorch_too(tiny, tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "bench.json"
    result = bench(str(tiny), "--data", "config", "--compare", "torch", "--batches", "2", "--repeats", "1",
                   "--json", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["networks"][0]["train_time_ratio"] > 0


def test_the_configs_own_data_is_never_downloaded(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("NNRUN_DATA_DIR", str(tmp_path / "empty"))
    cfg = dict(TINY, data={"dataset": "mnist"})
    tiny.write_text(yaml.safe_dump(cfg))
    result = bench(str(tiny), "--data", "config")
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "--data config needs mnist, which is not downloaded yet" in line and str(tiny) in line
    assert not (tmp_path / "empty").exists() or not any((tmp_path / "empty").rglob("*.gz"))


@pytest.mark.parametrize(("args", "message"), [
    (["missing.yaml"], "missing.yaml"),
    (["--batches", "0"], "--batches"),
    (["--data", "mine"], "mine"),
])
def test_usage_and_config_errors_exit_2(tiny, args, message):
    result = bench(*args)
    assert result.exit_code == 2 and message in result.output


def test_a_network_that_does_not_fit_the_data_is_refused_before_anything_runs(tiny):
    tiny.write_text(yaml.safe_dump(dict(TINY, model={"layers": [{"type": "dense", "units": 10,
                                                                 "activation": "softmax"}]})))
    result = bench(str(tiny))
    assert result.exit_code == 2
    assert "model.layers[0] (dense)" in result.output and "Traceback" not in result.output


def test_the_defaults_are_the_shipped_mlp_small_cnn_and_cnn():
    assert default_configs() == [ROOT / "configs" / n for n in ("mlp.yaml", "small-cnn.yaml", "cnn.yaml")]
    with pytest.raises(ConfigError, match="--repeats 0"):
        Settings(repeats=0).check()


def test_a_worker_that_fails_is_named_with_its_reason(tmp_path):
    job = {"config": str(tmp_path / "gone.yaml"), "data": "synthetic", "batches": 1, "warmup": 0, "seed": 0}
    worker = Worker("nnrun", job, threads=1)
    try:
        with pytest.raises(NnrunError, match=r"gone.yaml: the nnrun worker failed: .*gone.yaml"):
            worker.ask("start")
        worker.process.kill()
        with pytest.raises(NnrunError, match="the nnrun worker failed: it stopped with exit code -9"):
            worker.ask("train")
    finally:
        worker.close()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_a_workers_peak_memory_is_its_own_not_its_parents(tiny):
    ballast = np.ones(300 << 17)  # 300 MiB in this process, touched
    job = {"config": str(tiny), "data": "synthetic", "batches": 1, "warmup": 0, "seed": 0}
    worker = Worker("nnrun", job, threads=1)
    try:
        assert worker.ask("memory")["peak_memory_mb"] < 200 < ballast.nbytes / 2**20
    finally:
        worker.close()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux's /proc")
def test_stopping_the_bench_stops_its_workers_at_once(tiny):
    """SIGTERM (as Ctrl-C) in the middle of a long training repeat: exit 130 within seconds, and
    no worker left running."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bench = subprocess.Popen([sys.executable, "-m", "nnrun", "bench", str(tiny), "--batches", "10000000"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children, worker = Path(f"/proc/{bench.pid}/task/{bench.pid}/children"), None
    try:
        deadline = time.monotonic() + 60
        while not children.read_text().split() and time.monotonic() < deadline:
            time.sleep(0.1)
        (worker,) = children.read_text().split()
        time.sleep(2)  # into its training repeat
        bench.send_signal(signal.SIGTERM)
        _, stderr = bench.communicate(timeout=15)
        assert bench.returncode == 130 and "interrupted" in stderr
        assert not Path(f"/proc/{worker}").exists()
    finally:  # whatever failed, leave nothing running
        for pid in (bench.pid, worker):
            if pid is not None and Path(f"/proc/{pid}").exists():
                os.kill(int(pid), signal.SIGKILL)
        bench.wait()
