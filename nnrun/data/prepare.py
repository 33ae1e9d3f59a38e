"""Turning loaded arrays into training inputs: validation splits and pixel scaling."""

from __future__ import annotations

import numpy as np


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices into sorted (train_idx, val_idx), stratified by the labels y (N,).

    Each class gives round(fraction * count) samples to validation, at least one when
    fraction > 0 and the class has two or more, and never all of them. The draw uses the
    stream default_rng([seed, 2]).
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    y = np.asarray(y)
    if fraction == 0.0:
        return np.arange(len(y)), np.empty(0, dtype=np.int64)
    rng = np.random.default_rng([seed, 2])  # its own stream: [seed, 0] initialises, [seed, 1] shuffles
    val_parts = []
    for label in np.unique(y):  # a loop over classes, not samples
        members = np.flatnonzero(y == label)
        count = len(members)
        n_val = min(max(round(fraction * count), 1 if count >= 2 else 0), count - 1)
        val_parts.append(rng.permutation(members)[:n_val])
    val_idx = np.sort(np.concatenate(val_parts)).astype(np.int64)
    is_val = np.zeros(len(y), dtype=bool)
    is_val[val_idx] = True
    return np.flatnonzero(~is_val).astype(np.int64), val_idx


def auto_divisor(x_train: np.ndarray) -> float:
    """The divisor that maps the training data's largest value to 1 (1.0 if that is <= 0)."""
    peak = float(np.max(x_train)) if np.size(x_train) else 0.0
    return peak if peak > 0 else 1.0


def scale_pixels(x: np.ndarray, divisor: float | None, dtype: np.dtype = np.float32) -> np.ndarray:
    """Return x as `dtype` divided by `divisor` (unchanged values when divisor is None), a new
    C-ordered array."""
    if divisor is not None and divisor <= 0:
        raise ValueError(f"pixel divisor must be positive, got {divisor}")
    # Converted, then divided in place: the same numbers as np.divide(x, divisor, dtype=dtype),
    # whose cast inside the division is slower (uint8 pixels: 21 against 35 us a batch of 64).
    out = np.array(x, dtype=dtype, order="C")
    return out if divisor is None else np.divide(out, out.dtype.type(divisor), out=out)


class ScaledSamples:
    """Samples kept as loaded (uint8 pixels: a quarter of float32's memory) and scaled to
    `dtype` a batch at a time: x[index] is scale_pixels(raw[index]), the same numbers as
    scaling everything up front. np.asarray(x) scales all of it."""

    def __init__(self, raw: np.ndarray, divisor: float | None, dtype: np.dtype):
        self.raw, self.divisor, self.dtype = raw, divisor, np.dtype(dtype)
        self.shape, self.ndim, self.size = raw.shape, raw.ndim, raw.size

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, np.ndarray) and index.dtype.kind in "iu":  # a batch's indices
            return scale_pixels(self.raw.take(index, axis=0), self.divisor, self.dtype)  # take: 10 us, [] 18
        return scale_pixels(self.raw[index], self.divisor, self.dtype)

    def min(self) -> np.floating:
        """The smallest scaled value (scaling is monotone: the raw minimum, scaled)."""
        return scale_pixels(self.raw.min(), self.divisor, self.dtype)[()]

    def max(self) -> np.floating:
        return scale_pixels(self.raw.max(), self.divisor, self.dtype)[()]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = scale_pixels(self.raw, self.divisor, self.dtype)
        return whole if dtype is None else whole.astype(dtype, copy=False)


def scaled(x: np.ndarray, divisor: float | None, dtype: np.dtype) -> np.ndarray | ScaledSamples:
    """x scaled to dtype: small integers (pixels) stay as they are until a batch is taken."""
    if x.dtype.kind == "u" and x.dtype.itemsize <= 2:
        return ScaledSamples(x, divisor, dtype)
    return scale_pixels(x, divisor, dtype)
