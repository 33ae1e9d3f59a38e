"""Speed of one training epoch of configs/cnn.yaml's network: nnrun vs PyTorch on the CPU.

Data: the first 8,000 images of the MNIST test set (../shared/data/mnist-test, or --data DIR),
batch 64, Adam 0.001, float32, no validation. Each framework runs in its own interpreter:

    .venv/bin/python experiments/benchmark.py                         # nnrun
    /path/to/torch-venv/bin/python experiments/benchmark.py --torch   # PyTorch, same network

Prints seconds per epoch (median of --repeat epochs after one warm-up epoch) as one JSON line.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-test"
N, BATCH = 8000, 64


def read_idx(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(data_dir: Path):
    x = read_idx(data_dir / "t10k-images-idx3-ubyte.gz")[:N, None].astype(np.float32) / 255
    y = read_idx(data_dir / "t10k-labels-idx1-ubyte.gz")[:N].astype(np.int64)
    return x, y


def epoch_seconds(n: int, repeat: int, step) -> list[float]:
    """Seconds of `repeat` epochs (after one warm-up) calling step(indices) per shuffled batch."""
    rng = np.random.default_rng(0)
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        order = rng.permutation(n)
        for i in range(0, n, BATCH):
            step(order[i:i + BATCH])
        times.append(time.perf_counter() - start)
    return times[1:]


def nnrun_epoch_seconds(x, y, repeat: int) -> list[float]:
    from nnrun import nn
    from nnrun.config import load_config

    exp = load_config(Path(__file__).resolve().parents[1] / "configs" / "cnn.yaml")
    layers = [nn.make_layer(layer.model_dump()) for layer in exp.model.layers]
    net = nn.Sequential(layers, x.shape[1:], seed=0)
    loss, opt = nn.make_loss("cross_entropy"), nn.make_optimizer("adam")

    def step(idx):
        net.loss_and_gradients(loss, x[idx], y[idx])
        opt.step(net.parameters(), net.gradients(), 1e-3)

    return epoch_seconds(len(x), repeat, step)


def torch_epoch_seconds(x, y, repeat: int) -> list[float]:
    import torch
    from torch import nn as tnn

    torch.manual_seed(0)
    net = tnn.Sequential(
        tnn.Conv2d(1, 16, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(16, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(32, 64, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(576, 128), tnn.ReLU(), tnn.Linear(128, 10))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    loss_fn = tnn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step(idx):
        idx = torch.from_numpy(idx)
        opt.zero_grad()
        loss_fn(net(xt[idx]), yt[idx]).backward()
        opt.step()

    return epoch_seconds(len(x), repeat, step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch", action="store_true", help="time PyTorch instead of nnrun")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    x, y = load(args.data)
    times = (torch_epoch_seconds if args.torch else nnrun_epoch_seconds)(x, y, args.repeat)
    print(json.dumps({"framework": "torch" if args.torch else "nnrun", "samples": len(x),
                      "batch_size": BATCH, "epoch_seconds": round(statistics.median(times), 3),
                      "all": [round(t, 3) for t in times]}))


if __name__ == "__main__":
    main()
