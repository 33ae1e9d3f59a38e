"""Central finite differences for gradient checks (float64 only).

    numeric_i = (f(x + eps e_i) - f(x - eps e_i)) / (2 eps),   eps = 1e-6

Relative error (infinity-norm based, scale free, defined when both sides are ~0):

    rel_error(a, b) = max|a - b| / max(max|a| + max|b|, tiny)

Checks pass when rel_error < 1e-6. The scalar for a layer or network output is a random
linear functional L = sum(R * out), so every output element contributes to the gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

EPS = 1e-6
TOL = 1e-6


def numeric_gradient(f: Callable[[], float], x: np.ndarray, eps: float = EPS) -> np.ndarray:
    """d f() / d x by central differences; f must read x, which is perturbed in place."""
    assert x.dtype == np.float64 and x.flags.c_contiguous, "gradient checks need contiguous float64"
    flat = x.reshape(-1)  # a view: writing it perturbs x
    grad = np.zeros(x.size)
    for i in range(x.size):
        old = flat[i]
        flat[i] = old + eps
        f_plus = f()
        flat[i] = old - eps
        f_minus = f()
        flat[i] = old
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad.reshape(x.shape)


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, f"shape mismatch {a.shape} vs {b.shape}"
    den = max(np.max(np.abs(a), initial=0.0) + np.max(np.abs(b), initial=0.0),
              np.finfo(np.float64).tiny)
    return float(np.max(np.abs(a - b), initial=0.0) / den)


def assert_gradients(analytic: dict, numeric: dict, tol: float = TOL) -> None:
    assert analytic.keys() == numeric.keys()
    errors = {k: rel_error(analytic[k], numeric[k]) for k in analytic}
    bad = {k: e for k, e in errors.items() if not e < tol}
    assert not bad, f"relative errors above {tol}: {bad}"


def check_layer(layer, x: np.ndarray, before_forward=None, seed: int = 1) -> None:
    """Input and parameter gradients of a built float64 layer against finite differences of
    L = sum(R * layer.forward(x, training=True)) (backward needs a training forward).
    before_forward() runs before every forward (e.g. reset a dropout mask's generator)."""
    def forward():
        if before_forward is not None:
            before_forward()
        return layer.forward(x, training=True)

    out = forward()
    r = np.random.default_rng(seed).standard_normal(out.shape)
    analytic = {"input": layer.backward(r.copy())}
    analytic.update({k: g.copy() for k, g in layer.grads.items()})
    assert analytic.keys() - {"input"} == layer.params.keys()

    def loss():
        return float(np.sum(r * forward()))

    numeric = {"input": numeric_gradient(loss, x)}
    numeric.update({k: numeric_gradient(loss, p) for k, p in layer.params.items()})
    assert_gradients(analytic, numeric)


def input_gradient(net, loss, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dL/dx through the public forward and backward (a softmax output fused with its loss)."""
    logits, out = net.forward_with_logits(x, training=True)
    fused = net.fuses_softmax(loss)
    grad = loss.logits_gradient(out, y) if fused else loss.gradient(out, y)
    return net.backward(grad, skip_output_activation=fused, input_gradient=True)


def check_network_loss(net, loss, x: np.ndarray, y: np.ndarray) -> None:
    """net.loss_and_gradients (every parameter) and dL/dx against finite differences of the
    loss value itself."""
    value, _ = net.loss_and_gradients(loss, x, y, input_gradient=True)
    analytic = {k: g.copy() for k, g in net.gradients().items()}
    analytic["input"] = input_gradient(net, loss, x, y)

    def f():
        return loss.value(net.forward(x, training=True), y)

    assert np.isclose(value, f(), rtol=1e-14)
    numeric = {"input": numeric_gradient(f, x)}
    numeric.update({k: numeric_gradient(f, p) for k, p in net.parameters().items()})
    assert_gradients(analytic, numeric)
