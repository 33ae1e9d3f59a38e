"""Finite-difference gradient checks (float64) for every layer, activation, loss and two whole
networks. Method and error measure: tests/gradcheck.py."""

from __future__ import annotations

import numpy as np
import pytest

from nnrun.nn import ACTIVATIONS, LOSSES, Sequential, make_layer, make_loss
from tests.gradcheck import EPS, TOL, check_layer, check_network_loss, numeric_gradient, rel_error

F64 = np.float64
KINK_MARGIN = 1e3 * EPS  # no pre-activation within this distance of 0 (the kink of relu & co.)


def built(spec: dict, input_shape: tuple, seed: int = 0):
    layer = make_layer(spec)
    layer.build(input_shape, np.random.default_rng(seed), F64)
    return layer


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def away_from_zero(*shape, seed=0):
    """Random values with |x| in [0.1, 2): finite differences never straddle a kink at 0."""
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 2.0, shape)


def randomise_bias(layer, seed=3):
    if "b" in layer.params:  # zero by default; random biases exercise the bias gradient better
        layer.params["b"][...] = np.random.default_rng(seed).uniform(-0.5, 0.5, layer.params["b"].shape)


# -- conv2d ------------------------------------------------------------------------------------

CONV_CASES = [  # (input (N, C, H, W), layer spec)
    ((2, 3, 7, 5), {"filters": 4, "kernel_size": 3, "stride": 1, "padding": 0}),
    ((2, 3, 7, 5), {"filters": 2, "kernel_size": 3, "stride": 2, "padding": 1}),
    ((2, 2, 7, 5), {"filters": 3, "kernel_size": 3, "stride": 1, "padding": "same"}),
    ((2, 3, 7, 5), {"filters": 4, "kernel_size": [2, 3], "stride": 1, "padding": 1}),
    ((2, 1, 6, 8), {"filters": 5, "kernel_size": [2, 3], "stride": 2, "padding": 0}),
    ((2, 4, 8, 6), {"filters": 1, "kernel_size": 3, "stride": 2, "padding": 0}),
    ((1, 2, 5, 6), {"filters": 3, "kernel_size": 1, "stride": 1, "padding": 0}),
    ((2, 3, 7, 5), {"filters": 2, "kernel_size": 3, "stride": 2, "padding": 1, "use_bias": False}),
    ((2, 2, 5, 4), {"filters": 2, "kernel_size": [1, 3], "stride": 1, "padding": 1}),  # padding = kh
    ((2, 2, 5, 4), {"filters": 2, "kernel_size": [3, 1], "stride": 1, "padding": 1}),  # padding = kw
]


@pytest.mark.parametrize("shape, spec", CONV_CASES, ids=lambda v: str(v).replace(" ", ""))
def test_conv2d_gradients(shape, spec):
    layer = built({"type": "conv2d", **spec}, shape[1:])
    randomise_bias(layer)
    check_layer(layer, randn(*shape))


# -- pooling -----------------------------------------------------------------------------------

POOL_CASES = [  # (input (N, C, H, W), pool_size, stride)
    ((2, 3, 7, 5), 2, None),
    ((2, 3, 7, 5), 3, None),
    ((2, 3, 7, 5), 3, 2),   # overlapping windows
    ((2, 2, 6, 8), 2, 1),   # overlapping windows
    ((1, 2, 8, 7), 2, 3),   # gaps between windows
]


@pytest.mark.parametrize("kind", ["maxpool2d", "avgpool2d"])
@pytest.mark.parametrize("shape, pool, stride", POOL_CASES)
def test_pool_gradients(kind, shape, pool, stride):
    layer = built({"type": kind, "pool_size": pool, "stride": stride}, shape[1:])
    x = randn(*shape)
    # Max-pool: distinct values spaced far more than EPS apart, so no tie or kink is crossed.
    assert np.min(np.diff(np.sort(x.ravel()))) > 2 * EPS
    check_layer(layer, x)


# -- dense, flatten, dropout -------------------------------------------------------------------

@pytest.mark.parametrize("spec", [{"units": 3}, {"units": 1}, {"units": 4, "use_bias": False}],
                         ids=str)
def test_dense_gradients(spec):
    layer = built({"type": "dense", **spec}, (5,))
    randomise_bias(layer)
    check_layer(layer, randn(4, 5))


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 1, 2, 7)])
def test_flatten_gradients(shape):
    check_layer(built({"type": "flatten"}, shape[1:]), randn(*shape))


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 4, 5)])
def test_dropout_gradients_with_fixed_mask(rate, shape):
    layer = built({"type": "dropout", "rate": rate}, shape[1:])

    def reset():
        layer.rng = np.random.default_rng(0)

    check_layer(layer, randn(*shape), before_forward=reset)
    if rate:  # the mask really dropped something, so the check was not of the identity
        reset()
        assert np.any(layer.forward(np.ones(shape), training=True) == 0)


# -- activations -------------------------------------------------------------------------------

SMOOTH_ACTIVATIONS = sorted(set(ACTIVATIONS) - {"binary_step"})


@pytest.mark.parametrize("name", SMOOTH_ACTIVATIONS)
@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 2, 3)])  # softmax: features / channels axis
def test_activation_layer_gradients(name, shape):
    check_layer(built({"type": name}, shape[1:]), away_from_zero(*shape))


@pytest.mark.parametrize("name", SMOOTH_ACTIVATIONS)
def test_dense_activation_gradients(name):
    layer = built({"type": "dense", "units": 4, "activation": name}, (5,), seed=2)
    randomise_bias(layer)
    x = randn(6, 5, seed=4)
    z = x @ layer.params["W"] + layer.params["b"]
    assert np.min(np.abs(z)) > KINK_MARGIN, "test setup: a pre-activation sits on the kink"
    check_layer(layer, x)


@pytest.mark.parametrize("name, params", [("leaky_relu", {"alpha": 0.2}), ("elu", {"alpha": 0.5}),
                                          ("swish", {"beta": 1.7})], ids=str)
def test_parametrised_activation_gradients(name, params):
    check_layer(built({"type": name, **params}, (6,)), away_from_zero(4, 6))


def test_binary_step_gradient_is_exactly_zero():
    layer = built({"type": "binary_step"}, (6,))
    x = away_from_zero(4, 6)
    assert set(np.unique(layer.forward(x, training=True))) == {0.0, 1.0}
    assert np.array_equal(layer.backward(randn(4, 6)), np.zeros((4, 6)))

    dense = built({"type": "dense", "units": 3, "activation": "binary_step"}, (6,))
    dense.forward(x, training=True)
    assert np.array_equal(dense.backward(randn(4, 3)), np.zeros((4, 6)))
    for k, g in dense.grads.items():
        assert np.array_equal(g, np.zeros_like(dense.params[k])), k


# -- losses ------------------------------------------------------------------------------------

def targets(kind: str, n: int, k: int, seed=5):
    labels = np.random.default_rng(seed).integers(0, k, n)
    return labels if kind == "labels" else np.eye(k)[labels]


@pytest.mark.parametrize("target_kind", ["labels", "one_hot"])
@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_loss_gradient_wrt_output(loss_name, target_kind):
    loss = make_loss(loss_name)
    rng = np.random.default_rng(6)
    out = rng.uniform(0.05, 1.0, (5, 4))  # positive, so cross-entropy's log is defined
    y = targets(target_kind, 5, 4)
    analytic = loss.gradient(out, y)
    numeric = numeric_gradient(lambda: loss.value(out, y), out)
    assert rel_error(analytic, numeric) < TOL


@pytest.mark.parametrize("target_kind", ["labels", "one_hot"])
@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_a_parts_loss_gradient_is_its_rows_of_the_whole_batchs(loss_name, target_kind):
    # A conv net's halves each take their own rows (loss_and_gradients): the same bits.
    loss = make_loss(loss_name)
    out = np.random.default_rng(6).uniform(0.05, 1.0, (7, 4)).astype(np.float32)
    y = targets(target_kind, 7, 4)
    gradients = [loss.gradient] + ([loss.logits_gradient] if loss.fuses_with_softmax else [])
    for gradient in gradients:
        whole = gradient(out, y)
        parts = [gradient(out[a:b], y[a:b], 7) for a, b in ((0, 3), (3, 7))]
        assert np.array_equal(np.concatenate(parts), whole)
        assert not np.array_equal(gradient(out[:3], y[:3]), whole[:3])  # averaged over 3, not 7


@pytest.mark.parametrize("target_kind", ["labels", "one_hot"])
def test_fused_softmax_cross_entropy(target_kind):
    net = Sequential([make_layer({"type": "dense", "units": 6, "activation": "tanh"}),
                      make_layer({"type": "dense", "units": 4, "activation": "softmax"})],
                     (5,), seed=7, dtype=F64)
    loss = make_loss("cross_entropy")
    assert net.fuses_softmax(loss)
    check_network_loss(net, loss, randn(3, 5, seed=8), targets(target_kind, 3, 4))


# -- whole networks ----------------------------------------------------------------------------

def mlp():
    return [{"type": "dense", "units": 7, "activation": "tanh"},
            {"type": "dense", "units": 6, "activation": "relu"},
            {"type": "dense", "units": 3, "activation": "softmax"}]


def convnet(tail: str):
    head = [{"type": "conv2d", "filters": 3, "kernel_size": 3, "padding": 1, "activation": "relu"},
            {"type": "maxpool2d", "pool_size": 2},
            {"type": "conv2d", "filters": 4, "kernel_size": 3, "stride": 2, "padding": 1}]
    pool = [{"type": "avgpool2d", "pool_size": 2}] if tail == "avgpool" else []
    return head + pool + [{"type": "flatten"}, {"type": "dense", "units": 3, "activation": "softmax"}]


NETWORKS = [  # (id, layer specs, input shape, loss)
    ("mlp-ce", mlp(), (5,), "cross_entropy"),
    ("mlp-mse", mlp(), (5,), "mse"),
    ("conv-avgpool-ce", convnet("avgpool"), (2, 9, 8), "cross_entropy"),
    ("conv-flatten-ce", convnet("flatten"), (2, 9, 8), "cross_entropy"),
    ("conv-avgpool-mse", convnet("avgpool"), (2, 9, 8), "mse"),
    ("conv-flatten-mse", convnet("flatten"), (2, 9, 8), "mse"),
    ("flatten-mlp-ce", [{"type": "flatten"}, *mlp()], (2, 3), "cross_entropy"),  # no parameters first
]


@pytest.mark.parametrize("specs, input_shape, loss_name", [n[1:] for n in NETWORKS],
                         ids=[n[0] for n in NETWORKS])
def test_network_gradients_end_to_end(specs, input_shape, loss_name):
    net = Sequential([make_layer(s) for s in specs], input_shape, seed=11, dtype=F64)
    for layer in net.layers:
        randomise_bias(layer)
    x = randn(3, *input_shape, seed=12)
    check_network_loss(net, make_loss(loss_name), x, targets("labels", 3, 3))


@pytest.mark.parametrize("specs, input_shape, loss_name", [n[1:] for n in NETWORKS],
                         ids=[n[0] for n in NETWORKS])
def test_skipping_the_input_gradient_changes_no_parameter_gradient(specs, input_shape, loss_name):
    """Training skips dL/dx at the first trainable layer: every parameter gradient is the same,
    bit for bit, as when dL/dx is computed."""
    x, y = randn(3, *input_shape, seed=12), targets("labels", 3, 3)
    grads = {}
    for input_gradient in (True, False):
        net = Sequential([make_layer(s) for s in specs], input_shape, seed=11, dtype=F64)
        net.loss_and_gradients(make_loss(loss_name), x, y, input_gradient=input_gradient)
        grads[input_gradient] = net.gradients()
    for name, g in grads[True].items():
        assert np.array_equal(g, grads[False][name]), name


@pytest.mark.parametrize("spec, input_shape", [({"type": "dense", "units": 3}, (4,)),
                                               ({"type": "conv2d", "filters": 2}, (1, 5, 5))])
def test_layer_backward_without_input_gradient(spec, input_shape):
    layer = built(spec, input_shape)
    x = randn(2, *input_shape)
    dy = np.ones_like(layer.forward(x, training=True))
    assert layer.backward(dy, input_gradient=False) is None
    without = {k: g.copy() for k, g in layer.grads.items()}
    assert layer.backward(dy).shape == x.shape
    for k, g in layer.grads.items():
        assert np.array_equal(g, without[k]), k


# -- evaluation between forward and backward ---------------------------------------------------

EVERY_CACHING_LAYER = [
    {"type": "conv2d", "filters": 3, "kernel_size": 3, "padding": 1, "activation": "relu"},
    {"type": "maxpool2d", "pool_size": 2},
    {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": 1},
    {"type": "tanh"},
    {"type": "avgpool2d", "pool_size": 2},
    {"type": "flatten"},
    {"type": "dropout", "rate": 0.5},
    {"type": "dense", "units": 3, "activation": "softmax"},
]


@pytest.mark.parametrize("evaluate", ["forward", "predict"])
def test_an_evaluation_forward_before_backward_changes_no_gradient(evaluate):
    """A library user may score a batch between a training forward and its backward: that must
    not overwrite what backward needs (each layer's caches, dropout's mask)."""
    x, y = randn(4, 2, 8, 8, seed=1), targets("labels", 4, 3)
    other = randn(5, 2, 8, 8, seed=2)
    grads = []
    for interrupt in (False, True):
        net = Sequential([make_layer(s) for s in EVERY_CACHING_LAYER], (2, 8, 8), seed=3, dtype=F64)
        out = net.forward(x, training=True)
        if interrupt:
            net.forward(other) if evaluate == "forward" else net.predict(other)
        loss = make_loss("cross_entropy")
        grads.append(net.backward(loss.logits_gradient(out, y), skip_output_activation=True))
        grads[-1] = {"input": grads[-1], **{k: g.copy() for k, g in net.gradients().items()}}
    for name, g in grads[0].items():
        assert np.array_equal(g, grads[1][name]), name


def test_backward_without_a_training_forward_says_so():
    layer = built({"type": "dense", "units": 2}, (3,))
    layer.forward(randn(2, 3))
    with pytest.raises(RuntimeError, match="training=True"):
        layer.backward(randn(2, 2))


# -- the network's backward and its defaults -----------------------------------------------------

def test_network_backward_applies_the_output_activation_unless_told_to_skip_it():
    net = Sequential([make_layer({"type": "dense", "units": 3, "activation": "tanh"})], (4,), seed=1, dtype=F64)
    x, dy = randn(2, 4, seed=2), randn(2, 3, seed=3)
    net.forward(x, training=True)
    dx = net.backward(dy)
    assert rel_error(dx, numeric_gradient(lambda: float(np.sum(dy * net.forward(x))), x)) < TOL
    grads = {k: g.copy() for k, g in net.gradients().items()}
    assert net.backward(dy, input_gradient=False) is None  # the gradients are still filled
    for k, g in net.gradients().items():
        assert np.array_equal(g, grads[k]), k


def test_a_network_without_parameters_still_back_propagates():
    net = Sequential([make_layer({"type": "tanh"}), make_layer({"type": "softmax"})], (3,), dtype=F64)
    assert net.first_index_with_params() == 0
    loss, x, y = make_loss("cross_entropy"), randn(2, 3), np.array([0, 2])
    value, out = net.loss_and_gradients(loss, x, y)
    assert value == pytest.approx(loss.value(out, y), rel=1e-12)
    check_network_loss(net, loss, x, y)


def test_training_back_propagates_no_further_than_the_first_layer_with_parameters(monkeypatch):
    """Nobody reads dL/dx in training: the parameter-free layers before the first dense are skipped."""
    net = Sequential([make_layer(s) for s in [{"type": "flatten"}, *mlp()]], (2, 3), dtype=F64)
    skipped = net.layers[0]
    monkeypatch.setattr(skipped, "backward", lambda *args, **kwargs: pytest.fail("flatten's backward ran"))
    net.loss_and_gradients(make_loss("cross_entropy"), randn(4, 2, 3), targets("labels", 4, 3))
    assert all(np.any(g) for g in net.gradients().values())
