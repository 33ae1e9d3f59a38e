"""Losses: value(output, target) -> float and gradient(output, target) -> dL/doutput.

`target` is either integer labels (N,) or a one-hot / probability matrix (N, K).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import DTypeLike

from .activations import row_max
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
    # True when, after a softmax output, the gradient w.r.t. the logits is simply p - y; such a
    # loss also has logits_gradient(p, target) and value_from_logits(logits, target).
    fuses_with_softmax = False
    # True when the loss needs probabilities (it takes their log): configs must end with softmax.
    needs_softmax = False

    def value(self, output: np.ndarray, target: np.ndarray) -> float:
        """The loss, averaged over the batch."""
        raise NotImplementedError

    def gradient(self, output: np.ndarray, target: np.ndarray, batch: int | None = None) -> np.ndarray:
        """dL/doutput, shaped like output (N, K). batch: how many samples the loss averages over,
        when output holds only some of them (a batch's half): their rows of the whole gradient."""
        raise NotImplementedError


@register("cross_entropy")
class CrossEntropy(Loss):
    """-mean_n sum_k y_nk log p_nk over the batch, where `output` holds probabilities p."""

    fuses_with_softmax = True
    needs_softmax = True

    def _clipped(self, p: np.ndarray) -> np.ndarray:
        # Only a floor: probabilities never exceed 1 (a softmax's e / sum(e) cannot round above it).
        return np.maximum(p, np.finfo(p.dtype).tiny)

    def value(self, output: np.ndarray, target: np.ndarray) -> float:
        y = one_hot(target, output.shape[1], output.dtype)
        return float(-(y * np.log(self._clipped(output))).sum() / len(output))

    def gradient(self, output: np.ndarray, target: np.ndarray, batch: int | None = None) -> np.ndarray:
        y = one_hot(target, output.shape[1], output.dtype)
        return -y / self._clipped(output) / output.dtype.type(batch or len(output))

    def value_from_logits(self, logits: np.ndarray, target: np.ndarray) -> float:
        """The value for p = softmax(logits), with log p = z - max z - log sum exp(z - max z):
        exact where p rounds to 0 (log of the clipped p stops at -log(tiny), 87.3 in float32)."""
        shifted = logits - row_max(logits)
        with np.errstate(under="ignore"):  # exp of very negative logits: 0 is exact enough
            log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        y = one_hot(target, logits.shape[1], logits.dtype)
        return float(-(y * log_p).sum() / len(logits))

    def logits_gradient(self, probabilities: np.ndarray, target: np.ndarray, batch: int | None = None) -> np.ndarray:
        """dL/dz for p = softmax(z): (p - y) / N, stable and exact (N: batch, as in gradient)."""
        y = one_hot(target, probabilities.shape[1], probabilities.dtype)
        return (probabilities - y) / probabilities.dtype.type(batch or len(probabilities))


@register("mse")
class MeanSquaredError(Loss):
    """mean over all elements of (output - y)^2, y one-hot for integer labels (as PyTorch/Keras)."""

    def value(self, output: np.ndarray, target: np.ndarray) -> float:
        y = one_hot(target, output.shape[1], output.dtype)
        return float(np.mean(np.square(output - y)))

    def gradient(self, output: np.ndarray, target: np.ndarray, batch: int | None = None) -> np.ndarray:
        y = one_hot(target, output.shape[1], output.dtype)
        return (output - y) * output.dtype.type(2 / ((batch or len(output)) * math.prod(output.shape[1:])))


def make_loss(name: str) -> Loss:
    """A loss by name; an unknown name raises UnknownName."""
    return LOSSES.get(name)()
