"""run_bench: each config's network timed in worker processes, nnrun and PyTorch interleaved.

Every side of every network gets a fresh worker process (nnrun.bench.worker), so that its peak
memory is its own and neither library's threads compete with the other's. The workers take turns
one repeat at a time (nnrun's repeat 1, PyTorch's repeat 1, nnrun's repeat 2, ...), so that a
change in the machine's load falls on both alike: first the training repeats, then the peak memory
is read (training only), then the inference repeats. Figures are medians over the repeats; a ratio
is nnrun's median over PyTorch's (time or memory: below 1, nnrun is faster or smaller).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess  # nosec B404
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import nnrun
from nnrun.bench.machine import blas_overrides, load_average, load_warning, machine, usable_cores
from nnrun.bench.worker import INFERENCE_BATCH, INFERENCE_SAMPLES, data_shape
from nnrun.errors import ConfigError, NnrunError
from nnrun.runs import local_time, versions

DEFAULT_CONFIGS = ("mlp.yaml", "small-cnn.yaml", "cnn.yaml")  # in the source tree's configs/
TORCH_MISSING = ("--compare torch needs PyTorch: pip install torch (a CPU build: pip install torch "
                 "--index-url https://download.pytorch.org/whl/cpu)")
DATA_CHOICES, COMPARE_CHOICES = ("synthetic", "config"), ("torch",)
# A library's threads keep spinning for a while after its last call (OpenBLAS's for 2**28 cycles,
# about 0.1 s; an Intel OpenMP's 0.2 s): a turn starting sooner shares the cores with them. Measured
# here, PyTorch's inference of mlp.yaml took 23-71 ms right after nnrun's turn, 13-14 ms after a pause.
SETTLE_SECONDS = 0.5
Progress = Callable[[dict], None]  # {"config", "name", "phase": start|train|inference, "side", "repeat"}


@dataclass(frozen=True)
class Settings:
    batches: int = 100  # timed training batches per repeat
    repeats: int = 5
    threads: int | None = None  # None: the cores this process may use
    data: str = "synthetic"  # or "config": the config's own data (offline only)
    compare: str | None = None  # "torch"
    warmup: int = 5  # untimed training batches before each repeat's timed ones
    seed: int = 0  # of the synthetic data and the batch order

    def check(self) -> None:
        for key in ("batches", "repeats", "threads"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"--{key} {value}: give a whole number of at least 1")
        if self.data not in DATA_CHOICES:
            raise ConfigError(f"--data {self.data}: use one of {', '.join(DATA_CHOICES)}")
        if self.compare is not None and self.compare not in COMPARE_CHOICES:
            raise ConfigError(f"--compare {self.compare}: only torch is known")


def default_configs() -> list[Path]:
    """configs/mlp.yaml, small-cnn.yaml and cnn.yaml of nnrun's source tree."""
    folder = Path(nnrun.__file__).resolve().parents[1] / "configs"
    paths = [folder / name for name in DEFAULT_CONFIGS]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise ConfigError(f"{missing[0]}: the default configs come with nnrun's source (its configs/ "
                          "folder) and are not here; give the configs to benchmark")
    return paths


def shown_path(path: Path) -> str:
    """The path relative to the current folder when it is inside it (configs/cnn.yaml)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def require_torch() -> str:
    """PyTorch's version; ConfigError (exit 2) with how to install it when it cannot be imported."""
    try:
        import torch
    except ImportError:
        raise ConfigError(TORCH_MISSING) from None
    return torch.__version__


# -- before any worker starts: every config checked ---------------------------------------
def check_network(path: Path, settings: Settings) -> dict:
    """The config loaded, its network built and (with --compare torch) its twin too, so that a bad
    config is refused before minutes of benchmarking; what the table names the network by."""
    from nnrun.builder import build_network, build_schedule, needs_download
    from nnrun.config import load_config

    exp = load_config(path)
    if settings.data == "config" and needs_download(exp):
        raise ConfigError(f"{path}: --data config needs {exp.data.dataset}, which is not downloaded yet "
                          f"(nnrun train {path} fetches it); or leave --data out for synthetic data")
    shape, classes, _ = data_shape(exp)
    net = build_network(exp, shape, classes)
    if settings.compare == "torch":
        from nnrun.bench.twin import build_twin

        build_twin(net, exp.loss, exp.optimizer.model_dump(), float(build_schedule(exp)(0)))
    return {"config": shown_path(path), "path": str(Path(path).resolve()), "name": exp.name,
            "optimizer": exp.optimizer.type, "loss": exp.loss, "dtype": exp.model.dtype}


# -- the workers ----------------------------------------------------------------------------
class Worker:
    """A worker process of one side; ask() sends one command and returns its JSON reply."""

    def __init__(self, side: str, job: dict, threads: int):
        from nnrun.sweep.executors import BLAS_VARS

        self.side, self.config = side, job["config"]
        source_root = str(Path(nnrun.__file__).resolve().parents[1])
        env = {**os.environ, **{k: str(threads) for k in BLAS_VARS},
               "PYTHONPATH": os.pathsep.join(filter(None, [source_root, os.environ.get("PYTHONPATH")]))}
        self.stderr = tempfile.TemporaryFile("w+")
        # This interpreter, our own worker module and a JSON job: no shell, nothing a user typed.
        self.process = subprocess.Popen(  # nosec B603
            [sys.executable, "-m", "nnrun.bench.worker", json.dumps({**job, "side": side, "threads": threads})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=env)

    def send(self, command: str) -> None:
        try:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        except OSError:  # it has died: receive() says why
            pass

    def receive(self) -> dict:
        line = self.process.stdout.readline()
        reply = json.loads(line) if line.strip() else {"error": self.death()}
        if "error" in reply:
            raise NnrunError(f"{self.config}: the {SIDE_NAMES[self.side]} worker failed: {reply['error']}")
        return reply

    def ask(self, command: str) -> dict:
        self.send(command)
        return self.receive()

    def death(self) -> str:
        """Why the process ended: the last line it wrote on stderr, or its exit status."""
        code = self.process.wait()
        self.stderr.seek(0)
        lines = [line.strip() for line in self.stderr.read().splitlines() if line.strip()]
        return lines[-1] if lines else f"it stopped with exit code {code}"

    def close(self, at_once: bool = False) -> None:
        """Let the worker quit after its current command; kill it `at_once` (Ctrl-C, an error)."""
        if at_once:
            self.process.kill()
        self.send("quit")
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.stderr):
            with contextlib.suppress(OSError):  # a dead worker's pipe: nothing left to say
                stream.close()


SIDE_NAMES = {"nnrun": "nnrun", "torch": "PyTorch"}


def interleaved(workers: list[Worker], command: str, repeats: int, notify: Callable[..., None],
                settle: float) -> dict:
    """Seconds of each repeat of `command` per side, the sides taking turns repeat by repeat, each
    turn `settle` seconds after the last ended."""
    seconds: dict[str, list[float]] = {w.side: [] for w in workers}
    for repeat in range(1, repeats + 1):
        for w in workers:
            notify(phase=command, side=w.side, repeat=repeat)
            time.sleep(settle)
            seconds[w.side].append(w.ask(command)["seconds"])
    return seconds


def bench_network(checked: dict, settings: Settings, threads: int, settle: float, progress: Progress) -> dict:
    """One network's figures on each side (and the ratios, with two sides)."""
    sides = ["nnrun", "torch"] if settings.compare == "torch" else ["nnrun"]
    job = {"config": checked["path"], "data": settings.data, "batches": settings.batches,
           "warmup": settings.warmup, "seed": settings.seed}
    notify = lambda **event: progress({"config": checked["config"], "name": checked["name"], **event})
    notify(phase="start", side=None, repeat=None)
    workers: list[Worker] = []
    finished = False
    try:
        workers = [Worker(side, job, threads) for side in sides]
        for w in workers:  # both build their data at once: that part is not timed
            w.send("start")
        started = {w.side: w.receive() for w in workers}
        train = interleaved(workers, "train", settings.repeats, notify, settle)
        peak = {w.side: w.ask("memory")["peak_memory_mb"] for w in workers}
        infer = interleaved(workers, "infer", settings.repeats, notify, settle)
        finished = True
    finally:
        for w in workers:
            w.close(at_once=not finished)
    return network_result(checked, settings, started, train, peak, infer)


# -- the figures ----------------------------------------------------------------------------
def side_result(started: dict, train: list[float], infer: list[float], peak: float, batches: int) -> dict:
    samples = batches * started["batch_size"]
    return {"train_samples_per_s": round(samples / statistics.median(train), 1),
            "train_ms_per_batch": round(1000 * statistics.median(train) / batches, 3),
            "inference_samples_per_s": round(INFERENCE_SAMPLES / statistics.median(infer), 1),
            "peak_memory_mb": round(peak, 1),
            "memory_before_training_mb": round(started["memory_before_training_mb"] or 0, 1) or None,
            "train_seconds": train, "inference_seconds": infer,
            "blas": started["blas"], **({"torch": started["torch"]} if "torch" in started else {})}


def ratios(train: dict, infer: dict, peak: dict) -> dict:
    """nnrun's median time (or peak memory) over PyTorch's: below 1, nnrun is faster (smaller)."""
    ratio = lambda mine, theirs: round(mine / theirs, 3)
    return {"train_time_ratio": ratio(statistics.median(train["nnrun"]), statistics.median(train["torch"])),
            "inference_time_ratio": ratio(statistics.median(infer["nnrun"]), statistics.median(infer["torch"])),
            "peak_memory_ratio": ratio(round(peak["nnrun"], 1), round(peak["torch"], 1))}  # as the JSON shows them


def network_result(checked: dict, settings: Settings, started: dict, train: dict, peak: dict, infer: dict) -> dict:
    first = started["nnrun"]
    result = {**{k: checked[k] for k in ("config", "name", "optimizer", "loss", "dtype")},
              "parameters": first["parameters"], "batch_size": first["batch_size"], "lr": first["lr"],
              "train_samples": first["train_samples"], "input_shape": first["input_shape"]}
    for side in started:
        result[side] = side_result(started[side], train[side], infer[side], peak[side], settings.batches)
    if len(started) == 2:
        result.update(ratios(train, infer, peak))
    return result


def run_bench(configs: Sequence[str | os.PathLike] | None = None, settings: Settings = Settings(),
              progress: Progress | None = None) -> dict:
    """Benchmark the networks of `configs` (default: default_configs()); the whole record, as
    `nnrun bench --json` writes it. ConfigError before anything runs for a bad setting or config
    (or PyTorch missing with compare="torch"); NnrunError when a worker fails."""
    settings.check()
    torch_version = require_torch() if settings.compare == "torch" else None
    paths = [Path(p) for p in configs] if configs else default_configs()
    checked = [check_network(p, settings) for p in paths]
    threads = settings.threads or usable_cores()
    started, load_at_start = local_time(), load_average()
    # With two sides, each turn waits for the other side's threads to stop spinning.
    settle = SETTLE_SECONDS if settings.compare else 0
    networks = [bench_network(c, settings, threads, settle, progress or (lambda event: None)) for c in checked]
    return {"started": started, "finished": local_time(), "machine": machine(),
            "versions": {**versions(), "torch": torch_version},
            "settings": {**asdict(settings), "threads": threads, "inference_samples": INFERENCE_SAMPLES,
                         "inference_batch": INFERENCE_BATCH,
                         "settle_seconds": settle},
            "blas": networks[0]["nnrun"]["blas"], "blas_overrides": blas_overrides(),
            "torch": networks[0]["torch"]["torch"] if torch_version else None,
            "load_average": {"start": load_at_start, "end": load_average()},
            "warnings": [w for w in [load_warning(load_at_start)] if w],
            "networks": networks}
