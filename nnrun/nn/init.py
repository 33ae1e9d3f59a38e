"""Weight initialisers: fn(shape, fan_in, fan_out, rng, dtype, **params) -> array.

fan_in/fan_out: dense (in, out); conv2d (in_channels*kh*kw, out_channels*kh*kw).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.random import Generator
from numpy.typing import DTypeLike

from .registry import Registry

INITIALIZERS: Registry[Callable[..., np.ndarray]] = Registry("initializer")
register = INITIALIZERS.register


@register("he_normal")
def he_normal(shape: tuple, fan_in: int, fan_out: int, rng: Generator, dtype: DTypeLike) -> np.ndarray:
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape).astype(dtype)


@register("he_uniform")
def he_uniform(shape: tuple, fan_in: int, fan_out: int, rng: Generator, dtype: DTypeLike) -> np.ndarray:
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, shape).astype(dtype)


@register("glorot_normal")
def glorot_normal(shape: tuple, fan_in: int, fan_out: int, rng: Generator, dtype: DTypeLike) -> np.ndarray:
    return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), shape).astype(dtype)


@register("glorot_uniform")
def glorot_uniform(shape: tuple, fan_in: int, fan_out: int, rng: Generator, dtype: DTypeLike) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(dtype)


@register("lecun_normal")
def lecun_normal(shape: tuple, fan_in: int, fan_out: int, rng: Generator, dtype: DTypeLike) -> np.ndarray:
    return rng.normal(0.0, np.sqrt(1.0 / fan_in), shape).astype(dtype)


@register("normal")
def normal(shape: tuple, fan_in: int, fan_out: int, rng: Generator, dtype: DTypeLike, std: float = 0.01,
           mean: float = 0.0) -> np.ndarray:
    return rng.normal(mean, std, shape).astype(dtype)


@register("uniform")
def uniform(shape: tuple, fan_in: int, fan_out: int, rng: Generator, dtype: DTypeLike, low: float = -0.05,
            high: float = 0.05) -> np.ndarray:
    return rng.uniform(low, high, shape).astype(dtype)


@register("zeros")
def zeros(shape: tuple, fan_in: int, fan_out: int, rng: Generator, dtype: DTypeLike) -> np.ndarray:
    return np.zeros(shape, dtype)


RELU_FAMILY = {"relu", "leaky_relu", "elu"}


def default_initializer(activation_name: str) -> str:
    """He for the relu family, LeCun for selu, Glorot (uniform) otherwise."""
    if activation_name in RELU_FAMILY:
        return "he_normal"
    if activation_name == "selu":
        return "lecun_normal"
    return "glorot_uniform"
