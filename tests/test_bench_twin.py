"""The PyTorch twin that `nnrun bench --compare torch` times is the same computation as nnrun's:
the same data and batches, the same initial weights, the same loss on the first batch and the same
updates (to 1e-5), for every layer, activation, loss and optimiser it maps. Skipped without PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nnrun import nn  # noqa: E402
from nnrun.bench.twin import Unmappable, build_twin  # noqa: E402
from nnrun.bench.worker import NnrunSide, TorchSide  # noqa: E402
from nnrun.errors import ConfigError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# Every layer type and activation the twin maps, with their options: padding same/valid/int,
# strides, a rectangular kernel, no bias, activation layers, pools with a stride of their own.
EVERYTHING = [
    {"type": "conv2d", "filters": 4, "kernel_size": 5, "padding": "same",
     "activation": {"type": "leaky_relu", "alpha": 0.2}},
    {"type": "conv2d", "filters": 5, "kernel_size": 3, "stride": 2, "padding": "valid",
     "activation": {"type": "elu", "alpha": 0.5}, "use_bias": False},
    {"type": "maxpool2d", "pool_size": 3, "stride": 1},
    {"type": "conv2d", "filters": 6, "kernel_size": [3, 2], "padding": 1},
    {"type": "selu"},
    {"type": "avgpool2d", "pool_size": 2},
    {"type": "flatten"},
    {"type": "dropout", "rate": 0.0},
    {"type": "dense", "units": 16, "activation": {"type": "swish", "beta": 1.5}},
    {"type": "dense", "units": 12, "activation": "swish"},
    {"type": "dense", "units": 11, "activation": "sigmoid"},
    {"type": "dense", "units": 10, "activation": "tanh"},
    {"type": "relu"},
]
SOFTMAX_OUT = [{"type": "dense", "units": 10, "activation": "softmax"}]
LINEAR_OUT = [{"type": "dense", "units": 10}]
INPUT = (2, 13, 13)


def network(layers: list[dict], dtype: str, seed: int = 1) -> nn.Sequential:
    return nn.Sequential([nn.make_layer(spec) for spec in layers], INPUT, seed=seed, dtype=dtype)


def batch(dtype: str, n: int = 16):
    rng = np.random.default_rng(5)
    return rng.random((n, *INPUT)).astype(dtype), rng.integers(0, 10, n)


def nnrun_step(net, loss: str, optimizer: dict, x, y, lr: float) -> float:
    from nnrun.train import train_step

    settings = {k: v for k, v in optimizer.items() if k not in ("type", "lr")}
    opt = nn.make_optimizer(optimizer["type"], **settings)
    losses = []
    for _ in range(2):  # two steps: the second uses the optimiser's state (momentum, moments)
        losses.append(train_step(net, nn.make_loss(loss), opt, x, y, lr)[0])
        yield losses[-1], net.get_weights()


def compare_training(layers, loss, optimizer, dtype, lr=0.01):
    net = network(layers, dtype)
    twin = build_twin(net, loss, optimizer, lr)
    before = net.get_weights()
    for name, w in twin.weights().items():
        assert np.array_equal(w, before[name]), f"{name}: the twin starts from other weights"
    assert set(twin.weights()) == set(before)
    x, y = batch(dtype)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    previous = before
    for value, weights in nnrun_step(net, loss, optimizer, x, y, lr):
        twin_value = twin.step(xt, yt)
        assert twin_value == pytest.approx(value, abs=1e-5)
        twin_weights = twin.weights()
        for name, w in weights.items():
            np.testing.assert_allclose(twin_weights[name] - previous[name], w - previous[name], rtol=0, atol=1e-5,
                                       err_msg=name)
        previous = weights


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_layer_and_activation_trains_alike_with_cross_entropy(dtype):
    compare_training(EVERYTHING + SOFTMAX_OUT, "cross_entropy", {"type": "adam", "lr": 0.01}, dtype)


@pytest.mark.parametrize("optimizer", [
    {"type": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
    {"type": "sgd"},
    {"type": "adam", "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 1e-3, "clip_norm": 0.5},
    {"type": "adamw", "weight_decay": 0.05},
    {"type": "rmsprop", "alpha": 0.9, "eps": 1e-7},
], ids=lambda o: o["type"] + ("-" + "-".join(k for k in o if k != "type") if len(o) > 1 else ""))
def test_every_optimiser_takes_the_same_steps(optimizer):
    # float64: a first Adam step moves every weight by about +-lr whatever the gradient's size,
    # so a gradient that float32 rounding leaves at +-1e-9 could flip an update by 2 lr.
    compare_training(EVERYTHING + SOFTMAX_OUT, "cross_entropy", optimizer, "float64", lr=0.05)


@pytest.mark.parametrize("tail", [LINEAR_OUT, SOFTMAX_OUT], ids=["linear", "softmax"])
def test_mse_trains_alike(tail):
    compare_training(EVERYTHING + tail, "mse", {"type": "sgd", "momentum": 0.5}, "float32", lr=0.1)


def test_binary_step_passes_a_zero_gradient_so_weight_decay_still_acts_before_it():
    layers = [{"type": "flatten"}, {"type": "dense", "units": 8, "activation": "binary_step"}, *SOFTMAX_OUT]
    compare_training(layers, "cross_entropy", {"type": "sgd", "weight_decay": 0.1}, "float32", lr=0.1)


def test_predictions_are_the_same_in_evaluation_mode_dropout_and_binary_step_included():
    layers = [*EVERYTHING[:7], {"type": "dropout", "rate": 0.5}, {"type": "dense", "units": 10,
              "activation": "binary_step"}, {"type": "dense", "units": 10, "activation": "softmax"}]
    net = network(layers, "float32")
    twin = build_twin(net, "cross_entropy", {"type": "adam"}, 0.001)
    x, _ = batch("float32", 50)
    expected = net.predict(x, batch_size=16)
    np.testing.assert_allclose(twin.predict(torch.from_numpy(x), 16).numpy(), expected, atol=1e-6)
    assert twin.model.training  # predict leaves it ready to train


@pytest.mark.parametrize("config", ["mlp", "small-cnn", "cnn"])
def test_the_benchs_two_sides_run_the_same_first_step(config):
    """What nnrun bench --compare torch times: the same data (bit for bit), batch, weights, loss
    on the first batch and first update."""
    job = {"config": str(ROOT / "configs" / f"{config}.yaml"), "data": "synthetic", "batches": 1,
           "warmup": 0, "seed": 0}
    mine, theirs = NnrunSide(job), TorchSide(job)
    assert mine.x.dtype == np.float32 and np.array_equal(mine.x, theirs.x.numpy())
    assert np.array_equal(mine.y, theirs.y.numpy())
    before = mine.net.get_weights()
    assert {k: w.tobytes() for k, w in theirs.twin.weights().items()} == {k: w.tobytes() for k, w in before.items()}
    idx = next(mine.order)
    assert np.array_equal(idx, next(theirs.order)) and len(idx) == 64
    assert theirs.step(idx) == pytest.approx(mine.step(idx), abs=1e-5)
    after, twin_after = mine.net.get_weights(), theirs.twin.weights()
    for name in before:
        np.testing.assert_allclose(twin_after[name] - before[name], after[name] - before[name], rtol=0, atol=1e-5,
                                   err_msg=name)
        assert np.abs(after[name] - before[name]).max() > 1e-4  # the step did move every parameter


class Mystery(nn.Layer):
    type = "mystery"


@pytest.mark.parametrize(("make", "message"), [
    (lambda net: build_twin(net, "cross_entropy", {"type": "adam", "amsgrad": True}, 0.001),
     "optimizer adam with {'amsgrad': True}"),
    (lambda net: build_twin(net, "cross_entropy", {"type": "lion"}, 0.001), "optimizer lion"),
    (lambda net: build_twin(net, "hinge", {"type": "sgd"}, 0.001), "loss hinge"),
    (lambda net: build_twin(nn.Sequential([nn.make_layer({"type": "flatten"}), Mystery(),
                                           nn.make_layer({"type": "dense", "units": 3, "activation": "softmax"})],
                                          INPUT), "cross_entropy", {"type": "sgd"}, 0.1), "layer 1 (mystery)"),
])
def test_what_has_no_twin_is_refused_by_name(make, message):
    net = network(EVERYTHING + SOFTMAX_OUT, "float32")
    with pytest.raises(Unmappable) as caught:
        make(net)
    assert isinstance(caught.value, ConfigError) and caught.value.exit_code == 2
    assert message in str(caught.value) and "--compare torch" in str(caught.value)
