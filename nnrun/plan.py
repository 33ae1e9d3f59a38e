"""What a run will cost before it starts: per-layer FLOPs and activation memory, the learning rate
over the planned epochs, and (timed on a few batches) its duration. `nnrun validate` prints it.

FLOPs are those of one sample's forward pass, a multiply-add counting two: dense 2 in units, conv2d
2 C kh kw per output value, plus one per output value for a bias, a pooling window's each input,
and a non-linear activation. A training step costs about three forwards (the backward pass computes
two products for each of the forward's). Activation memory is a layer's output for one batch at the
model's dtype: what a forward hands on (training keeps about as much again for backward).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from nnrun import nn

SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 60


@dataclass
class LayerCost:
    index: int
    layer: str  # "conv2d (relu)"
    output_shape: tuple
    params: int
    flops: int  # per sample, forward
    memory: int  # bytes of the output for one batch


def layer_name(layer) -> str:
    act = layer.activation.name
    return layer.type + (f" ({act})" if act not in ("linear", layer.type) else "")


def layer_flops(layer) -> int:
    """One sample's forward FLOPs (see the module's docstring)."""
    out = math.prod(layer.output_shape)
    cfg = layer.config()
    flops = 0
    if layer.type == "dense":
        flops = 2 * layer.input_shape[0] * out
    elif layer.type == "conv2d":
        kh, kw = cfg["kernel_size"]
        flops = 2 * layer.input_shape[0] * kh * kw * out
    elif layer.type in ("maxpool2d", "avgpool2d"):
        flops = cfg["pool_size"] ** 2 * out
    flops += out if "b" in layer.params else 0
    return flops + (out if layer.activation.name != "linear" else 0)


def layer_costs(net: nn.Sequential, batch_size: int) -> list[LayerCost]:
    itemsize = net.dtype.itemsize
    return [LayerCost(i, layer_name(layer), layer.output_shape, layer.num_params, layer_flops(layer),
                      batch_size * math.prod(layer.output_shape) * itemsize)
            for i, layer in enumerate(net.layers)]


def count_text(n: float) -> str:
    """12,345 -> '12.3k', 2.5e9 -> '2.5G' (FLOPs)."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


# -- the learning rate -------------------------------------------------------------------------
def planned_rates(schedule: nn.Schedule, epochs: int) -> list[float]:
    """The rate of each epoch as the schedule sets it (reduce_on_plateau without any plateau)."""
    return [float(schedule(t)) for t in range(epochs)]


def sparkline(values: list[float], width: int = SPARK_WIDTH) -> str:
    """One character per value (evenly spaced values when there are more than `width`), from ▁
    for the smallest to █ for the largest; a constant is a flat line of ▄."""
    if len(values) > width:
        values = [values[round(i * (len(values) - 1) / (width - 1))] for i in range(width)]
    low, high = min(values), max(values)
    if high - low <= 1e-12 * max(abs(high), 1e-300):
        return SPARK[3] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, int((v - low) / (high - low) * len(SPARK)))] for v in values)


# -- time ---------------------------------------------------------------------------------------
@dataclass
class TimeEstimate:
    batch_seconds: float  # one training step (forward, backward, optimiser)
    timed_batches: int
    batches: int  # per epoch
    eval_seconds: float  # scoring the validation split once
    epochs: int

    @property
    def epoch_seconds(self) -> float:
        return self.batches * self.batch_seconds + self.eval_seconds

    @property
    def total_seconds(self) -> float:
        return self.epochs * self.epoch_seconds


def time_steps(net: nn.Sequential, loss: nn.Loss, optimizer: nn.Optimizer, x: np.ndarray, y: np.ndarray,
               lr: float, steps: int) -> float:
    """Seconds per training step on the batch (x, y), the median of `steps` after one to warm up."""
    from nnrun.parallel import shard_threads
    from nnrun.train import train_step

    times = []
    with shard_threads(net, len(x)):  # as fit runs it
        for _ in range(steps + 1):
            start = time.perf_counter()
            train_step(net, loss, optimizer, x, y, lr)
            times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def time_forward(net: nn.Sequential, x: np.ndarray) -> float:
    """Seconds per sample of an evaluation forward (the validation split's), on x."""
    net.predict(x[:1])  # warm up
    start = time.perf_counter()
    net.predict(x)
    return (time.perf_counter() - start) / len(x)


def estimate_time(net: nn.Sequential, loss: nn.Loss, optimizer: nn.Optimizer, lr: float, batch_size: int,
                  sizes: dict[str, int], epochs: int, num_classes: int, steps: int = 5,
                  x: np.ndarray | None = None) -> TimeEstimate:
    """Time a few training steps of `batch_size` samples (x's first ones, or random values of
    the input shape) and one evaluation forward, and scale them to `sizes` (train, validation
    samples) and `epochs`. The network is trained by the timed steps: give it a copy."""
    rng = np.random.default_rng(0)
    batch = min(batch_size, sizes["train"]) or 1
    if x is None or len(x) < batch:
        x = rng.random((max(batch, 64), *net.input_shape)).astype(net.dtype)
    y = rng.integers(0, num_classes, len(x))
    step = time_steps(net, loss, optimizer, x[:batch], y[:batch], lr, steps)
    per_sample = time_forward(net, x[:min(len(x), 512)]) if sizes.get("validation") else 0.0
    return TimeEstimate(step, steps, math.ceil(sizes["train"] / batch_size), per_sample * sizes.get("validation", 0),
                        epochs)


def split_sizes(exp, data=None) -> dict[str, int]:
    """Samples per split (train, validation, test): the data's when it is loaded, else the named
    dataset's catalogue's (any files given for a split counted), the validation split taken out
    of the training samples as the config says (per class, so the count may differ by a few)."""
    if data is not None:
        return {name: len(split[0]) if split is not None else 0
                for name, split in (("train", data.train), ("validation", data.val), ("test", data.test))}
    from nnrun.builder import dataset_splits, load_source
    from nnrun.data import dataset_info

    info = dataset_info(exp.data.dataset)
    named = dataset_splits(exp.data)
    counts = {split: getattr(info, f"{split}_size") if split in named else
              (len(load_source(getattr(exp.data, split))[0]) if getattr(exp.data, split) else 0)
              for split in ("train", "test")}
    val = round(exp.data.validation_split * counts["train"])
    return {"train": counts["train"] - val, "validation": val, "test": counts["test"]}
