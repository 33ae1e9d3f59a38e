"""Activation functions as pure kernels: forward(x) -> y and backward(x, y, dy) -> dx.

Every kernel is stable for inputs of magnitude 1e4: exponentials only ever see non-positive
arguments, so they cannot overflow; underflow to zero is harmless and silenced.
Softmax normalises over axis 1 (features for (N, F), channels for (N, C, H, W)).
"""

from __future__ import annotations

import numpy as np

from .registry import Registry

ACTIVATIONS: Registry[type[Activation]] = Registry("activation")
register = ACTIVATIONS.register


def _quiet_underflow(method):
    """Results that underflow to (sub)normal zero are exact enough; don't let them raise."""

    def wrapper(*args):
        with np.errstate(under="ignore"):
            return method(*args)

    wrapper.__name__, wrapper.__doc__ = method.__name__, method.__doc__
    return wrapper


# Up to this many columns, row_max compares whole columns of a transposed copy: numpy reduces a
# short contiguous row slowly (a (1000, 10) batch of outputs: 100 us against 14 for the copy
# and its maximum).
NARROW_COLUMNS = 64


def row_max(x: np.ndarray) -> np.ndarray:
    """x.max(axis=1, keepdims=True): the same values (a maximum is exact in any order), but for
    the sign of a zero where a row's maximum is a tie of 0.0 and -0.0."""
    if x.ndim == 2 and x.shape[1] <= NARROW_COLUMNS:
        return np.ascontiguousarray(x.T).max(axis=0)[:, None]
    return x.max(axis=1, keepdims=True)


@_quiet_underflow
def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Activation:
    """Base class: an element-wise (or softmax) function with its derivative.

    Arrays have any batched shape, (batch, features) or (batch, channels, height, width).
    """

    name = "activation"

    def config(self) -> dict:
        """Its parameters ({} when it has none), as given to the constructor."""
        return {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        """y = f(x), the same shape as x."""
        raise NotImplementedError

    def backward(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """dL/dx from dL/dy; x and y = f(x) are those of the forward pass (whichever is cheaper)."""
        raise NotImplementedError


@register("linear")
class Linear(Activation):
    """The identity: no activation."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x

    def backward(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return dy


@register("tanh")
class Tanh(Activation):
    """tanh(x); dy/dx = 1 - y^2."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)

    def backward(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return dy * (1 - y * y)


@register("relu")
class ReLU(Activation):
    """max(x, 0); the gradient at 0 is taken as 0."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0)

    def backward(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return dy * (x > 0)


@register("leaky_relu")
class LeakyReLU(Activation):
    """x for x > 0, alpha * x otherwise."""

    def __init__(self, alpha: float = 0.01):
        self.alpha = alpha

    def config(self) -> dict:
        return {"alpha": self.alpha}

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, x, x * x.dtype.type(self.alpha))

    def backward(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return np.where(x > 0, dy, dy * dy.dtype.type(self.alpha))


@register("elu")
class ELU(Activation):
    """x for x > 0, alpha * (exp(x) - 1) otherwise (Clevert et al., 2015)."""

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def config(self) -> dict:
        return {"alpha": self.alpha}

    @_quiet_underflow
    def forward(self, x: np.ndarray) -> np.ndarray:
        neg = x.dtype.type(self.alpha) * np.expm1(np.minimum(x, 0))
        return np.where(x > 0, x, neg)

    @_quiet_underflow
    def backward(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        # For x <= 0, d/dx alpha*(e^x - 1) = y + alpha.
        return np.where(x > 0, dy, dy * (y + x.dtype.type(self.alpha)))


@register("selu")
class SELU(Activation):
    """Klambauer et al. (2017): the constants that make activations self-normalising."""

    ALPHA = 1.6732632423543772
    SCALE = 1.0507009873554805

    @_quiet_underflow
    def forward(self, x: np.ndarray) -> np.ndarray:
        t = x.dtype.type
        neg = t(self.ALPHA) * np.expm1(np.minimum(x, 0))
        return t(self.SCALE) * np.where(x > 0, x, neg)

    @_quiet_underflow
    def backward(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        t = x.dtype.type
        return np.where(x > 0, dy * t(self.SCALE), dy * (y + t(self.SCALE * self.ALPHA)))


@register("binary_step")
class BinaryStep(Activation):
    """Outputs 1 where x > 0, else 0. Its gradient is zero everywhere: nothing trains through it."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return (x > 0).astype(x.dtype)

    def backward(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return np.zeros_like(dy)


@register("sigmoid")
class Sigmoid(Activation):
    """1 / (1 + exp(-x)); dy/dx = y (1 - y)."""

    @_quiet_underflow
    def forward(self, x: np.ndarray) -> np.ndarray:
        return _sigmoid(x)

    @_quiet_underflow
    def backward(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return dy * y * (1 - y)


@register("swish")
class Swish(Activation):
    """x * sigmoid(beta * x) (Ramachandran et al., 2017); beta = 1 is SiLU."""

    def __init__(self, beta: float = 1.0):
        self.beta = beta

    def config(self) -> dict:
        return {"beta": self.beta}

    @_quiet_underflow
    def forward(self, x: np.ndarray) -> np.ndarray:
        return x * _sigmoid(x * x.dtype.type(self.beta))

    @_quiet_underflow
    def backward(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        beta = x.dtype.type(self.beta)
        s = _sigmoid(x * beta)
        return dy * (s + beta * y * (1 - s))


@register("softmax")
class Softmax(Activation):
    """exp(x) / sum(exp(x)) over axis 1, shifted by the maximum so that exp never overflows."""

    @_quiet_underflow
    def forward(self, x: np.ndarray) -> np.ndarray:
        e = x - row_max(x)
        e = np.exp(e, out=e) if e.dtype.kind == "f" else np.exp(e)  # integers: exp makes floats
        e /= e.sum(axis=1, keepdims=True)
        return e

    @_quiet_underflow
    def backward(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return y * (dy - (dy * y).sum(axis=1, keepdims=True))


def make_activation(spec: str | dict | Activation | None) -> Activation:
    """An Activation from a name, a {"type": name, **params} dict or an instance; None is linear.
    An unknown name raises UnknownName."""
    if isinstance(spec, Activation):
        return spec
    params = dict(spec) if isinstance(spec, dict) else {}
    name = params.pop("type", None) if isinstance(spec, dict) else spec
    return ACTIVATIONS.get(name or "linear")(**params)
