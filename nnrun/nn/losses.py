"""Losses: value(output, target) -> float and gradient(output, target) -> dL/doutput.

`target` is either integer labels (N,) or a one-hot / probability matrix (N, K).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from .registry import Registry

LOSSES: Registry[type[Loss]] = Registry("loss")
register = LOSSES.register


def one_hot(target: np.ndarray, num_classes: int, dtype: DTypeLike) -> np.ndarray:
    """Integer labels (N,) -> one-hot (N, K); a matrix is returned as is (cast to dtype)."""
    if target.ndim == 2:
        return target.astype(dtype, copy=False)
    out = np.zeros((len(target), num_classes), dtype)
    out[np.arange(len(target)), target] = 1
    return out


class Loss:
    """Base class: a scalar loss of the network's output (N, K) against targets (N,) or (N, K)."""

    name = "loss"
    # True when, after a softmax output, the gradient w.r.t. the logits is simply p - y.
    fuses_with_softmax = False

    def value(self, output: np.ndarray, target: np.ndarray) -> float:
        """The loss, averaged over the batch."""
        raise NotImplementedError

    def gradient(self, output: np.ndarray, target: np.ndarray) -> np.ndarray:
        """dL/doutput, shaped like output (N, K)."""
        raise NotImplementedError


@register("cross_entropy")
class CrossEntropy(Loss):
    """-mean_n sum_k y_nk log p_nk over the batch, where `output` holds probabilities p."""

    fuses_with_softmax = True

    def _clipped(self, p: np.ndarray) -> np.ndarray:
        return np.clip(p, np.finfo(p.dtype).tiny, 1.0)

    def value(self, output: np.ndarray, target: np.ndarray) -> float:
        y = one_hot(target, output.shape[1], output.dtype)
        return float(-(y * np.log(self._clipped(output))).sum() / len(output))

    def gradient(self, output: np.ndarray, target: np.ndarray) -> np.ndarray:
        y = one_hot(target, output.shape[1], output.dtype)
        return -y / self._clipped(output) / output.dtype.type(len(output))

    def logits_gradient(self, probabilities: np.ndarray, target: np.ndarray) -> np.ndarray:
        """dL/dz for p = softmax(z): (p - y) / N, stable and exact."""
        y = one_hot(target, probabilities.shape[1], probabilities.dtype)
        return (probabilities - y) / probabilities.dtype.type(len(probabilities))


@register("mse")
class MeanSquaredError(Loss):
    """mean over all elements of (output - y)^2, y one-hot for integer labels (as PyTorch/Keras)."""

    def value(self, output: np.ndarray, target: np.ndarray) -> float:
        y = one_hot(target, output.shape[1], output.dtype)
        return float(np.mean(np.square(output - y)))

    def gradient(self, output: np.ndarray, target: np.ndarray) -> np.ndarray:
        y = one_hot(target, output.shape[1], output.dtype)
        return (output - y) * output.dtype.type(2 / output.size)


def make_loss(name: str) -> Loss:
    """A loss by name; an unknown name raises UnknownName."""
    return LOSSES.get(name)()
