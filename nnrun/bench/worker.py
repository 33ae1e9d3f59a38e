"""One side (nnrun or PyTorch) of one network, timed in a process of its own:

    python -m nnrun.bench.worker JOB_JSON

It reads commands on stdin, one a line, and answers each with one JSON line on its own stdout
(anything else printed goes to stderr): `start` (load the config, make the data, build the
network), `train` (one training repeat), `memory` (the peak so far), `infer` (one inference
repeat), `quit`. An error is answered as {"error": "..."}.

A training repeat: `warmup` batches, then `batches` timed ones, each what the training loop does
per batch: take the batch by index from the training arrays and call nnrun.train.train_step (the
PyTorch side: the same batch of the same data through the twin's step). Batches are full ones
from successive seeded permutations of the training set, the same on both sides.
An inference repeat: one warm-up batch, then predict over INFERENCE_SAMPLES at INFERENCE_BATCH,
from the same array on both sides: the samples scaled to the network's dtype beforehand (the
training arrays, by contrast, are each side's own: nnrun's uint8 pixels are scaled batch by batch).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnrun.bench.machine import memory_now_mb, peak_memory_mb
from nnrun.parallel import blas

INFERENCE_BATCH = 1000
INFERENCE_SAMPLES = 10_000
DATA_STREAM, INFERENCE_STREAM, ORDER_STREAM = 0, 1, 2  # seeded streams: [seed, stream]


# -- data -----------------------------------------------------------------------------------
@dataclass
class Source:
    """The training data as the config's source holds it, before the framework takes it."""

    x: np.ndarray  # samples; synthetic ones as uint8 pixels, the config's already scaled
    y: np.ndarray  # int64 labels
    divisor: float | None  # what x is to be divided by (None: x is scaled already)
    classes: int
    inference: Callable[[], np.ndarray]  # INFERENCE_SAMPLES samples like x, made when asked

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x.shape[1:])


def data_shape(exp) -> tuple[tuple, int, int]:
    """(input shape, classes, training samples) of the config's data, without downloading: the
    named dataset's catalogue entry, else the config's own training files."""
    from nnrun.builder import catalogue_input, load_source
    from nnrun.data import dataset_info

    if exp.data.dataset:
        shape, classes = catalogue_input(exp)
        return tuple(shape), classes, dataset_info(exp.data.dataset).train_size
    x, y = load_source(exp.data.train)
    return tuple(x.shape[1:]), int(y.max()) + 1, len(x)


def synthetic_source(exp, seed: int) -> Source:
    """Random uint8 images of the config's data shape and training-set size, random labels."""
    from nnrun.data import auto_divisor

    shape, classes, n = data_shape(exp)
    rng = np.random.default_rng([seed, DATA_STREAM])
    x = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    y = rng.integers(0, classes, size=n)
    inference = lambda: np.random.default_rng([seed, INFERENCE_STREAM]).integers(
        0, 256, size=(INFERENCE_SAMPLES, *shape), dtype=np.uint8)
    return Source(x, y, auto_divisor(x), classes, inference)


def config_source(exp) -> Source:
    """The config's own data through nnrun's pipeline (split and scaled); inference on its test
    split (else validation, else training), repeated to INFERENCE_SAMPLES."""
    from nnrun.builder import load_data

    data = load_data(exp)
    scored = (data.test or data.val or data.train)[0]
    inference = lambda: scored[np.arange(INFERENCE_SAMPLES) % len(scored)]
    return Source(data.train[0], data.train[1], None, data.num_classes, inference)


def full_batches(n: int, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Batch indices without end: full batches of successive seeded permutations of n samples."""
    rng = np.random.default_rng([seed, ORDER_STREAM])
    while True:
        order = rng.permutation(n)
        for start in range(0, max(n - batch_size + 1, 1), batch_size):
            yield order[start:start + batch_size]


# -- the two sides --------------------------------------------------------------------------
class Side:
    """The config's network (seeded, so both sides start from the same weights), its data and
    batch order, and the timing of training and inference repeats."""

    def __init__(self, job: dict):
        from nnrun.builder import build_network, build_schedule
        from nnrun.config import load_config

        exp = load_config(job["config"])
        source = synthetic_source(exp, job["seed"]) if job["data"] == "synthetic" else config_source(exp)
        self.batch_size = min(exp.train.batch_size, len(source.y))
        self.lr = float(build_schedule(exp)(0))
        self.batches, self.warmup = job["batches"], job["warmup"]
        self.order = full_batches(len(source.y), self.batch_size, job["seed"])
        self.train_samples, self.input_shape = len(source.y), source.input_shape
        net = build_network(exp, source.input_shape, source.classes)
        self.parameters = net.num_params
        self.divisor, self.inference_source = source.divisor, source.inference
        self.inference_x: Any = None
        # As the process has it: nnrun's side then shares these threads out between a conv
        # net's batch halves (one each on two cores).
        self.blas = blas()
        self.take(exp, net, source)  # after this the source's raw arrays may go

    def take(self, exp, net, source: Source) -> None:
        """Keep the network, loss, optimiser and training data in this side's own form."""
        raise NotImplementedError

    def step(self, idx: np.ndarray) -> float:
        """One training batch by index; the loss value."""
        raise NotImplementedError

    def predict(self, x: Any) -> Any:
        raise NotImplementedError

    def inference_inputs(self) -> Any:
        raise NotImplementedError

    def info(self) -> dict:
        return {"parameters": self.parameters, "batch_size": self.batch_size, "lr": self.lr,
                "train_samples": self.train_samples, "input_shape": list(self.input_shape),
                "blas": self.blas, "memory_before_training_mb": memory_now_mb()}

    def train(self) -> float:
        """Seconds of `batches` training steps after `warmup` untimed ones."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # as run_epoch
            for _ in range(self.warmup):
                self.step(next(self.order))
            start = time.perf_counter()
            for _ in range(self.batches):
                self.step(next(self.order))
            return time.perf_counter() - start

    def infer(self) -> float:
        """Seconds to predict INFERENCE_SAMPLES samples at INFERENCE_BATCH, after one warm-up batch."""
        if self.inference_x is None:
            self.inference_x = self.inference_inputs()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self.predict(self.inference_x[:INFERENCE_BATCH])
            start = time.perf_counter()
            self.predict(self.inference_x)
            return time.perf_counter() - start


def nnrun_arrays(x: np.ndarray, divisor: float | None, dtype):
    """The samples as nnrun's data pipeline hands them to training (builder.load_data's scaling:
    uint8 pixels stay uint8 and are scaled a batch at a time)."""
    from nnrun.data import scaled

    return x if divisor is None else scaled(x, divisor, dtype)


class NnrunSide(Side):
    """nnrun's engine, trained by the training loop's own step."""

    def take(self, exp, net, source):
        from nnrun.builder import build_loss, build_optimizer
        from nnrun.train import train_step

        self.train_step = train_step  # the training loop's own step, whatever it becomes
        self.net, self.loss, self.optimizer = net, build_loss(exp), build_optimizer(exp)
        self.x, self.y = nnrun_arrays(source.x, self.divisor, net.dtype), source.y
        from nnrun.parallel import shard_threads

        # As fit and evaluation run it: a conv net's batch halves side by side on the threads,
        # for the rest of this worker's life.
        self.threads = shard_threads(net)
        self.threads.__enter__()

    def step(self, idx):
        return self.train_step(self.net, self.loss, self.optimizer, self.x[idx], self.y[idx], self.lr)[0]

    def predict(self, x):
        return self.net.predict(x, INFERENCE_BATCH)

    def inference_inputs(self):
        # Scaled up front, as the PyTorch side's tensor is: the product is timed, not the scaling.
        return np.asarray(nnrun_arrays(self.inference_source(), self.divisor, self.net.dtype))


class TorchSide(Side):
    """The twin in PyTorch. Its data is one tensor of the whole training set, converted from the
    raw samples as a PyTorch script would (the same values as nnrun's, bit for bit)."""

    def take(self, exp, net, source):
        import torch

        from nnrun.bench.twin import DTYPES, build_twin

        self.torch, self.dtype = torch, DTYPES[np.dtype(net.dtype)]
        self.twin = build_twin(net, exp.loss, exp.optimizer.model_dump(), self.lr)
        self.x, self.y = self.tensor(source.x), torch.from_numpy(source.y)

    def tensor(self, x: np.ndarray):
        t = self.torch.from_numpy(np.asarray(x))  # np.asarray: the config's own data may be ScaledSamples
        return t if self.divisor is None else t.to(self.dtype).div_(self.divisor)

    def step(self, idx):
        i = self.torch.from_numpy(idx)
        return self.twin.step(self.x[i], self.y[i])

    def predict(self, x):
        return self.twin.predict(x, INFERENCE_BATCH)

    def inference_inputs(self):
        return self.tensor(self.inference_source())

    def info(self):
        from nnrun.bench.twin import backend

        return {**super().info(), "torch": backend()}


SIDES = {"nnrun": NnrunSide, "torch": TorchSide}


# -- the process ----------------------------------------------------------------------------
def limit_threads(side: str, threads: int) -> Any:
    """This process's BLAS (and PyTorch's) to `threads`; keep the returned limiter alive."""
    from threadpoolctl import threadpool_limits

    if side == "torch":
        import torch

        torch.set_num_threads(threads)
    return threadpool_limits(limits=threads)


def answer(command: str, job: dict, state: dict) -> dict:
    if command == "start":
        state["side"] = SIDES[job["side"]](job)
        return state["side"].info()
    if command == "memory":
        return {"peak_memory_mb": peak_memory_mb()}
    if command == "train":
        return {"seconds": state["side"].train()}
    if command == "infer":
        return {"seconds": state["side"].infer()}
    raise ValueError(f"unknown command {command!r}")


def main(argv: list[str]) -> None:
    job = json.loads(argv[1])
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from any library go to stderr, not into the replies
    limiter = limit_threads(job["side"], job["threads"])  # noqa: F841 (kept alive on purpose)
    state: dict = {}
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        try:
            reply = answer(command, job, state)
        except Exception as e:  # the parent reports it, naming the side and the config
            reply = {"error": str(e) if e.__class__.__module__.startswith("nnrun") else f"{type(e).__name__}: {e}"}
        replies.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main(sys.argv)
