"""Activation functions as pure kernels: forward(x) -> y and backward(x, y, dy) -> dx.

Every kernel is stable for inputs of magnitude 1e4: exponentials only ever see non-positive
arguments, so they cannot overflow; underflow to zero is harmless and silenced.
Softmax normalises over axis 1 (features for (N, F), channels for (N, C, H, W)).
"""

from __future__ import annotations

import numpy as np

from .registry import Registry

ACTIVATIONS: Registry[type["Activation"]] = Registry("activation")
register = ACTIVATIONS.register


def _quiet_underflow(method):
    """Results that underflow to (sub)normal zero are exact enough; don't let them raise."""

    def wrapper(*args):
        with np.errstate(under="ignore"):
            return method(*args)

    wrapper.__name__, wrapper.__doc__ = method.__name__, method.__doc__
    return wrapper


@_quiet_underflow
def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Activation:
    """Base class: an element-wise (or softmax) function with its derivative."""

    name = "activation"

    def config(self) -> dict:
        return {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@register("linear")
class Linear(Activation):
    def forward(self, x):
        return x

    def backward(self, x, y, dy):
        return dy


@register("tanh")
class Tanh(Activation):
    def forward(self, x):
        return np.tanh(x)

    def backward(self, x, y, dy):
        return dy * (1 - y * y)


@register("relu")
class ReLU(Activation):
    def forward(self, x):
        return np.maximum(x, 0)

    def backward(self, x, y, dy):
        return dy * (x > 0)


@register("leaky_relu")
class LeakyReLU(Activation):
    def __init__(self, alpha: float = 0.01):
        self.alpha = alpha

    def config(self):
        return {"alpha": self.alpha}

    def forward(self, x):
        return np.where(x > 0, x, x * x.dtype.type(self.alpha))

    def backward(self, x, y, dy):
        return np.where(x > 0, dy, dy * dy.dtype.type(self.alpha))


@register("elu")
class ELU(Activation):
    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def config(self):
        return {"alpha": self.alpha}

    @_quiet_underflow
    def forward(self, x):
        neg = x.dtype.type(self.alpha) * np.expm1(np.minimum(x, 0))
        return np.where(x > 0, x, neg)

    @_quiet_underflow
    def backward(self, x, y, dy):
        # For x <= 0, d/dx alpha*(e^x - 1) = y + alpha.
        return np.where(x > 0, dy, dy * (y + x.dtype.type(self.alpha)))


@register("selu")
class SELU(Activation):
    """Klambauer et al. (2017): the constants that make activations self-normalising."""

    ALPHA = 1.6732632423543772
    SCALE = 1.0507009873554805

    @_quiet_underflow
    def forward(self, x):
        t = x.dtype.type
        neg = t(self.ALPHA) * np.expm1(np.minimum(x, 0))
        return t(self.SCALE) * np.where(x > 0, x, neg)

    @_quiet_underflow
    def backward(self, x, y, dy):
        t = x.dtype.type
        return np.where(x > 0, dy * t(self.SCALE), dy * (y + t(self.SCALE * self.ALPHA)))


@register("binary_step")
class BinaryStep(Activation):
    """Outputs 1 where x > 0, else 0. Its gradient is zero everywhere: nothing trains through it."""

    def forward(self, x):
        return (x > 0).astype(x.dtype)

    def backward(self, x, y, dy):
        return np.zeros_like(dy)


@register("sigmoid")
class Sigmoid(Activation):
    @_quiet_underflow
    def forward(self, x):
        return _sigmoid(x)

    @_quiet_underflow
    def backward(self, x, y, dy):
        return dy * y * (1 - y)


@register("swish")
class Swish(Activation):
    """x * sigmoid(beta * x) (Ramachandran et al., 2017); beta = 1 is SiLU."""

    def __init__(self, beta: float = 1.0):
        self.beta = beta

    def config(self):
        return {"beta": self.beta}

    @_quiet_underflow
    def forward(self, x):
        return x * _sigmoid(x * x.dtype.type(self.beta))

    @_quiet_underflow
    def backward(self, x, y, dy):
        beta = x.dtype.type(self.beta)
        s = _sigmoid(x * beta)
        return dy * (s + beta * y * (1 - s))


@register("softmax")
class Softmax(Activation):
    @_quiet_underflow
    def forward(self, x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    @_quiet_underflow
    def backward(self, x, y, dy):
        return y * (dy - (dy * y).sum(axis=1, keepdims=True))


def make_activation(spec: "str | dict | Activation | None") -> Activation:
    """An Activation from a name, a {"type": name, **params} dict or an instance; None is linear."""
    if isinstance(spec, Activation):
        return spec
    params = dict(spec) if isinstance(spec, dict) else {}
    name = params.pop("type", None) if isinstance(spec, dict) else spec
    return ACTIVATIONS.get(name or "linear")(**params)
