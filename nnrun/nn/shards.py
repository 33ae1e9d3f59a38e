"""A conv net's batch computed as two halves, which two threads can run side by side.

NumPy's kernels release the GIL, so two Python threads, each with half the BLAS threads, keep both
cores busy through the copies and element-wise passes that a multi-threaded BLAS leaves serial.
The split is a property of the network, not of the machine: a batch is always computed as the
same halves, on one thread or two, so the numbers are the same bits whatever the thread count.
"""

from __future__ import annotations

import contextvars
import copy
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import numpy as np

from . import stages as stage_plans
from .layers import Conv2D, Layer

SHARDS = 2
# Below this many multiply-adds per half, handing a half to another thread costs more than it
# saves (a small net on 8x8 digits), so both halves run here, one after the other.
THREAD_WORK = 4_000_000
# Samples an evaluation forward of a conv net runs at a time (network.py, _forward_in_chunks).
EVAL_CHUNK = 64


# Below this many multiply-adds per sample, a conv net computes whole batches: its numpy calls
# are too small for a second thread to repay the calls a half adds (the 8x8-digits CNN of
# experiments/bench_sweep.py, 92,000 a sample, trains 0.74x the time per step as whole batches of
# 32 and 0.76x at 128, where its halves had run on two threads; small-cnn.yaml has 322,000).
MIN_SHARD_WORK = 200_000


def shard_count(layers: list[Layer]) -> int:
    """2 for a network with a convolution, no random layer (a dropout mask is drawn for the
    whole batch from one stream; halves would draw it in a thread-dependent order) and at least
    MIN_SHARD_WORK multiply-adds a sample, else 1."""
    has_conv = any(isinstance(layer, Conv2D) for layer in layers)
    splittable = has_conv and not any(layer.stochastic for layer in layers)
    return SHARDS if splittable and work_per_sample(layers) >= MIN_SHARD_WORK else 1


def work_per_sample(layers: list[Layer]) -> int:
    """Multiply-adds per sample of the convolutions and dense layers (forward)."""
    # Each weight is used once per output position: H*W of a convolution's output, 1 for dense.
    return sum(int(np.prod(layer.output_shape[1:])) * layer.params["W"].size
               for layer in layers if "W" in layer.params)


def replica(layer: Layer) -> Layer:
    """The same layer (its parameter arrays shared) with its own gradients, caches and buffers."""
    twin = copy.copy(layer)
    twin.grads = {k: np.zeros_like(g) for k, g in layer.grads.items()}
    twin.__dict__.pop("_buffers", None)
    return twin


class Shards:
    """The stage lists of each shard (the network's own first) and the threads that run them."""

    def __init__(self, layers: list[Layer], stages: list, fuse: bool, count: int):
        self.layers = [layers] + [[replica(layer) for layer in layers] for _ in range(count - 1)]
        self.stages = [stages] + [stage_plans.plan(twins, fuse) for twins in self.layers[1:]]
        self.pool: ThreadPoolExecutor | None = None
        self.work_per_sample = work_per_sample(layers)

    def __len__(self) -> int:
        return len(self.stages)

    def set_threads(self, threads: int) -> None:
        """Run the shards on min(threads, shards) threads (1: one after the other)."""
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None
        if min(threads, len(self)) > 1:
            self.pool = ThreadPoolExecutor(len(self) - 1, thread_name_prefix="nnrun-shard")

    def slices(self, n: int) -> list[slice]:
        """The halves of a batch of n (one slice when n is too small to split)."""
        count = min(len(self), n)
        return [slice(n * i // count, n * (i + 1) // count) for i in range(count)]

    def map(self, work: Callable[[list, slice], Any], parts: list[slice]) -> list:
        """work(stages, part) for each shard's stages and its part; the first in this thread."""
        small = parts[0].stop * self.work_per_sample < THREAD_WORK  # the first part starts at 0
        if self.pool is None or len(parts) < 2 or small:
            return [work(self.stages[i], part) for i, part in enumerate(parts)]
        # Each half runs in this thread's context: numpy's errstate (a context variable) too.
        futures = [self.pool.submit(contextvars.copy_context().run, work, self.stages[i], parts[i])
                   for i in range(1, len(parts))]
        try:
            first = work(self.stages[0], parts[0])
        except BaseException:
            wait(futures)  # no half still running on the network once the error is out
            raise
        return [first] + [f.result() for f in futures]

    def sum_gradients(self, used: int) -> None:
        """Add the gradients of the other `used - 1` shards into the network's own layers'."""
        for i, layer in enumerate(self.layers[0]):
            for key, g in layer.grads.items():
                for twins in self.layers[1:used]:
                    g += twins[i].grads[key]
