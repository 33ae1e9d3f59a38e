"""Numerical stability: activations and losses on inputs of magnitude 1e4 (float32 and float64)
stay finite with no floating-point error or warning (np.errstate(all="raise"), warnings as errors).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np
import pytest

from nnrun.nn import ACTIVATIONS, LOSSES, Sequential, make_activation, make_layer, make_loss

DTYPES = [np.float32, np.float64]


@contextmanager
def strict():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            yield


def extreme(shape, dtype, seed=0):
    """Entries of +-1e4, each row holding both signs."""
    x = np.random.default_rng(seed).choice([-1e4, 1e4], shape)
    x[:, 0], x[:, 1] = 1e4, -1e4
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 2, 2)])
def test_activation_is_finite_at_extremes(name, dtype, shape):
    check_activation(name, extreme(shape, dtype))


def check_activation(name, x):
    dtype, shape = x.dtype, x.shape
    act = make_activation(name)
    dy = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    with strict():
        y = act.forward(x)
        dx = act.backward(x, y, dy)
    for a in (y, dx):
        assert a.dtype == dtype and a.shape == x.shape
        assert np.all(np.isfinite(a))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_of_opposite_extremes_sums_to_one(dtype):
    x = np.array([[1e4, -1e4], [-1e4, 1e4], [1e4, 1e4], [-1e4, -1e4]], dtype)
    with strict():
        p = make_activation("softmax").forward(x)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(p, np.array([[1, 0], [0, 1], [0.5, 0.5], [0.5, 0.5]], dtype))


@pytest.mark.parametrize("target_kind", ["labels", "one_hot"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_loss_is_finite_at_extremes(loss_name, dtype, target_kind):
    loss = make_loss(loss_name)
    labels = np.array([0, 1, 2, 1])
    y = labels if target_kind == "labels" else np.eye(3, dtype=dtype)[labels]
    with strict():
        logits = extreme((4, 3), dtype)
        probs = make_activation("softmax").forward(logits)  # exact zeros and ones
        for out in (logits, probs):
            value = loss.value(out, y)
            grad = loss.gradient(out, y)
            assert np.isfinite(value)
            assert grad.dtype == dtype and np.all(np.isfinite(grad))
        if loss.fuses_with_softmax:
            g = loss.logits_gradient(probs, y)
            assert g.dtype == dtype and np.all(np.isfinite(g))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_network_step_is_finite_at_extremes(loss_name, dtype):
    """A dense softmax network fed +-1e4: forward, loss and backward (fused or not) stay finite."""
    net = Sequential([make_layer({"type": "dense", "units": 3, "activation": "softmax"})], (6,),
                     seed=0, dtype=dtype)
    with strict():
        value, out = net.loss_and_gradients(make_loss(loss_name), extreme((4, 6), dtype),
                                            np.array([0, 1, 2, 0]))
    assert np.isfinite(value) and np.all(np.isfinite(out))
    for g in net.gradients().values():
        assert g.dtype == dtype and np.all(np.isfinite(g))


# The module promises "underflow to zero is harmless and silenced". Inputs whose exponentials
# land in the subnormal range (e^-100 ~ 4e-44 in float32, e^-720 ~ 2e-313 in float64) are the
# hard case: the exp is silenced, but later products/quotients of the subnormal still underflow.
SUBNORMAL_INPUT = {np.float32: -100.0, np.float64: -720.0}
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_underflow_is_silenced(name, dtype):
    sub = SUBNORMAL_INPUT[dtype]
    rows = [[1e4, -1e4, 0.0, 0.5, sub, -20.0, 3.0],
            [3.0, -20.0, sub, 0.5, 0.0, -1e4, 1e4],
            [0.0, 0.5, sub, -20.0, 3.0, 1.0, 2.0]]  # softmax: a row without the huge maximum
    check_activation(name, np.array(rows, dtype))


# Cross-entropy's value after a softmax comes from the logits (log-softmax), as its gradient
# does: the log of a probability clipped to float32's tiny would stop at 87.34.
def confident_net(dtype):
    """One dense softmax layer whose logits for the input [1] are [1000, 0, -1000]."""
    net = Sequential([make_layer({"type": "dense", "units": 3, "activation": "softmax"})], (1,),
                     seed=0, dtype=dtype)
    net.set_weights({"layers.0.W": np.array([[1000, 0, -1000]], dtype), "layers.0.b": np.zeros(3, dtype)})
    return net


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_of_a_confident_mistake_is_exact(dtype):
    net, loss = confident_net(dtype), make_loss("cross_entropy")
    x, wrong, right = np.ones((1, 1), dtype), np.array([2]), np.array([0])
    with strict():
        assert net.loss_and_gradients(loss, x, wrong)[0] == 2000.0
        # p - y = [1, 0, 0] - [0, 0, 1]: a probability rounded to 0 still gets its full gradient
        assert net.gradients()["layers.0.W"].tolist() == [[1.0, 0.0, -1.0]]
        assert net.evaluate(loss, x, wrong)[0] == 2000.0
        assert net.evaluate(loss, x, right)[0] == 0.0
        assert net.evaluate(loss, x, np.eye(3, dtype=dtype)[wrong])[0] == 2000.0


@pytest.mark.parametrize("target_kind", ["labels", "one_hot"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_from_logits_matches_the_probabilities_for_ordinary_inputs(dtype, target_kind):
    rng = np.random.default_rng(4)
    logits = (rng.standard_normal((64, 10)) * 3).astype(dtype)
    labels = rng.integers(0, 10, 64)
    y = labels if target_kind == "labels" else np.eye(10, dtype=dtype)[labels]
    loss = make_loss("cross_entropy")
    probabilities = make_activation("softmax").forward(logits)
    expected = loss.value(probabilities, y)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    assert loss.value_from_logits(logits, y) == pytest.approx(expected, rel=tol)
