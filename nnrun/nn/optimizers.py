"""Optimisers: each holds its own state and updates named parameters in place.

step(params, grads, lr): params and grads are dicts with the same keys ("layers.0.W", ...).
Order within a step: clip the gradients by global norm (if clip_norm), then weight decay
(L2 added to the gradient; decoupled for adamw), then the update. Defaults follow PyTorch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .registry import Registry

OPTIMIZERS: Registry[type[Optimizer]] = Registry("optimizer")
register = OPTIMIZERS.register

# A moment of a weight whose gradient is zero or nearly so (a dead unit's) decays geometrically
# into the subnormal floats, which the CPU computes about a hundred times slower: measured, 2 % of
# Adam's m subnormal (as after five MNIST epochs) made its step 2.4 times slower. Every FLUSH_EVERY
# steps, float32 state below FLUSH in magnitude, far too small to move a weight, is set to 0:
# a decay by 0.9 a step (beta1's default) takes 170 steps from there to the subnormals.
FLUSH, FLUSH_EVERY = 1e-30, 16


def clip_by_global_norm(grads: dict[str, np.ndarray], max_norm: float) -> dict[str, np.ndarray]:
    """The gradients scaled by max_norm / norm when their joint L2 norm exceeds max_norm (new
    arrays; the input is not changed), else the same dict."""
    norm = float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values())))
    if norm <= max_norm:
        return grads
    scale = max_norm / norm
    return {k: g * g.dtype.type(scale) for k, g in grads.items()}


class Optimizer:
    """Base class: the shared step (clipping, weight decay); subclasses write update()."""

    name = "optimizer"

    # The names of a parameter's state arrays (moments...), made as zeros before the first update.
    state_names: tuple[str, ...] = ()

    def __init__(self, weight_decay: float = 0.0, clip_norm: float | None = None):
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.t = 0
        self._flat: dict[str, np.ndarray] | None = None  # the state as whole-model arrays
        self._scratch: np.ndarray | None = None

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float,
             flat: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Update every named parameter in place from its gradient, at learning rate lr.

        flat: (parameters, gradients) as two 1-D arrays of which params and grads are views, in
        order (Sequential.flat_buffers): the same update done in a few whole-model operations."""
        self.t += 1
        if flat is not None:
            self.step_flat(params, *flat, lr)
            return
        if self.clip_norm:
            grads = clip_by_global_norm(grads, self.clip_norm)
        for key, p in params.items():
            state = self.state.setdefault(key, {})
            for name in self.state_names:
                if name not in state:
                    state[name] = np.zeros_like(p)
            self.decay_and_update(p, grads[key], lr, state, self.scratch(p))

    def step_flat(self, params: dict[str, np.ndarray], p: np.ndarray, g: np.ndarray, lr: float) -> None:
        if self.clip_norm:
            g = clip_by_global_norm({"all": g}, self.clip_norm)["all"]
        state = self.flat_state(params, p)
        missing = [name for name in self.state_names if name not in state]
        if missing:  # the first step: the state starts from zeros, shown by parameter too
            state.update({name: np.zeros_like(p) for name in missing})
            self.link_state(params)
        self.decay_and_update(p, g, lr, state, self.scratch(p))

    def decay_and_update(self, p: np.ndarray, g: np.ndarray, lr: float, state: dict[str, np.ndarray],
                         tmp: np.ndarray) -> None:
        if self.weight_decay and not self.decoupled_decay:
            g = g + p * p.dtype.type(self.weight_decay)
        if self.weight_decay and self.decoupled_decay:
            p *= p.dtype.type(1 - lr * self.weight_decay)
        self.update(p, g, p.dtype.type(lr), state, tmp)
        if self.t % FLUSH_EVERY == 0 and p.dtype == np.float32:
            for a in state.values():
                flush_tiny(a)

    def flat_state(self, params: dict[str, np.ndarray], p: np.ndarray) -> dict[str, np.ndarray]:
        """The state as whole-model arrays, gathered from the per-parameter state (after a
        load_state_dict or per-parameter steps) when it is not kept flat yet."""
        if self._flat is None or any(a.size != p.size for a in self._flat.values()):
            names = sorted({name for arrays in self.state.values() for name in arrays})
            # a parameter without a state yet starts from zeros, as a per-parameter step would
            self._flat = {name: np.concatenate([self.state.get(key, {}).get(name, np.zeros_like(q)).ravel()
                                                for key, q in params.items()]) for name in names}
            self.link_state(params)
        return self._flat

    def link_state(self, params: dict[str, np.ndarray]) -> None:
        """Make each parameter's state a view of the flat state (state_dict reads it there)."""
        start = 0
        for key, p in params.items():
            for name, a in self._flat.items():
                self.state.setdefault(key, {})[name] = a[start:start + p.size].reshape(p.shape)
            start += p.size

    decoupled_decay = False

    def state_dict(self) -> dict[str, np.ndarray]:
        """What the next steps depend on besides the parameters and the constructor's settings,
        as copies: each parameter's arrays by "<parameter>/<name>" ("layers.0.W/m") and the
        step count "t" as a 0-d array. load_state_dict restores it."""
        state = {f"{key}/{name}": a.copy() for key, arrays in self.state.items() for name, a in arrays.items()}
        state["t"] = np.array(self.t)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Continue from a state_dict() (its arrays are copied)."""
        if "t" not in state or not all(key == "t" or "/" in key for key in state):
            raise ValueError(f"not an optimizer state: expected 't' and '<parameter>/<name>' keys, "
                             f"got {sorted(state)}")
        self.t = int(state["t"])
        self.state, self._flat = {}, None
        for key, a in state.items():
            if key != "t":
                param, name = key.rsplit("/", 1)
                self.state.setdefault(param, {})[name] = np.array(a)

    def update(self, p: np.ndarray, g: np.ndarray, lr: np.floating, state: dict[str, np.ndarray],
               tmp: np.ndarray) -> None:
        """Update one parameter p in place from its gradient g; state is p's own (its arrays
        named by state_names), tmp an array like p for intermediate values."""
        raise NotImplementedError

    def scratch(self, like: np.ndarray) -> np.ndarray:
        """An array shaped like `like` for an update's intermediate values, kept between steps:
        a fresh one each step would cost a page fault every few thousand numbers."""
        kept = self._scratch
        if kept is None or kept.size < like.size or kept.dtype != like.dtype:
            kept = self._scratch = np.empty(like.size, like.dtype)
        return kept[:like.size].reshape(like.shape)


@register("sgd")
class SGD(Optimizer):
    """v = momentum*v + g; p -= lr*(g + momentum*v) with nesterov, else p -= lr*v."""

    def __init__(self, momentum: float = 0.0, nesterov: bool = False, **kw: Any):
        super().__init__(**kw)
        self.momentum, self.nesterov = momentum, nesterov

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("velocity",) if self.momentum else ()

    def update(self, p: np.ndarray, g: np.ndarray, lr: np.floating, state: dict[str, np.ndarray],
               tmp: np.ndarray) -> None:
        if not self.momentum:
            np.multiply(g, lr, out=tmp)
            p -= tmp
            return
        v = state["velocity"]
        v *= v.dtype.type(self.momentum)
        v += g
        if self.nesterov:
            np.multiply(v, v.dtype.type(self.momentum), out=tmp)
            np.add(g, tmp, out=tmp)
        else:
            tmp[...] = v
        tmp *= lr
        p -= tmp


@register("adam")
class Adam(Optimizer):
    """m, v: moving averages of g and g^2; p -= lr * m_hat / (sqrt(v_hat) + eps), bias-corrected."""

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, **kw: Any):
        super().__init__(**kw)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    state_names = ("m", "v")

    def update(self, p: np.ndarray, g: np.ndarray, lr: np.floating, state: dict[str, np.ndarray],
               tmp: np.ndarray) -> None:
        t = p.dtype.type
        m, v = state["m"], state["v"]  # every operation below in place: twelve passes, no new arrays
        m *= t(self.beta1)
        np.multiply(g, t(1 - self.beta1), out=tmp)
        m += tmp
        v *= t(self.beta2)
        np.multiply(g, t(1 - self.beta2), out=tmp)
        tmp *= g
        v += tmp
        # lr * m_hat / (sqrt(v_hat) + eps), with m_hat = m / c1 and v_hat = v / c2, taken as
        # (lr * sqrt(c2) / c1) * m / (sqrt(v) + eps * sqrt(c2)): no arrays for m_hat and v_hat.
        root_c2, c1 = math.sqrt(1 - self.beta2 ** self.t), 1 - self.beta1 ** self.t
        np.sqrt(v, out=tmp)
        tmp += t(self.eps * root_c2)
        np.divide(m, tmp, out=tmp)
        tmp *= t(float(lr) * root_c2 / c1)
        p -= tmp


@register("adamw")
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr*wd before the step."""

    decoupled_decay = True

    def __init__(self, weight_decay: float = 0.01, **kw: Any):
        super().__init__(weight_decay=weight_decay, **kw)


@register("rmsprop")
class RMSprop(Optimizer):
    """v = alpha*v + (1-alpha)*g^2; p -= lr * g / (sqrt(v) + eps)."""

    def __init__(self, alpha: float = 0.99, eps: float = 1e-8, **kw: Any):
        super().__init__(**kw)
        self.alpha, self.eps = alpha, eps

    state_names = ("v",)

    def update(self, p: np.ndarray, g: np.ndarray, lr: np.floating, state: dict[str, np.ndarray],
               tmp: np.ndarray) -> None:
        t = p.dtype.type
        v = state["v"]
        v *= t(self.alpha)
        np.multiply(g, t(1 - self.alpha), out=tmp)
        tmp *= g
        v += tmp
        np.sqrt(v, out=tmp)
        tmp += t(self.eps)
        np.divide(g, tmp, out=tmp)
        tmp *= lr
        p -= tmp


def flush_tiny(a: np.ndarray) -> None:
    """Set the values of a below FLUSH in magnitude to 0, in place."""
    np.copyto(a, 0, where=np.abs(a) < FLUSH)


def make_optimizer(name: str, **params: Any) -> Optimizer:
    """An optimiser by name with its parameters; an unknown name raises UnknownName."""
    return OPTIMIZERS.get(name)(**params)
