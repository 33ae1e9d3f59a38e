"""Optimisers: each holds its own state and updates named parameters in place.

step(params, grads, lr): params and grads are dicts with the same keys ("layers.0.W", ...).
Order within a step: clip the gradients by global norm (if clip_norm), then weight decay
(L2 added to the gradient; decoupled for adamw), then the update. Defaults follow PyTorch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .registry import Registry

OPTIMIZERS: Registry[type[Optimizer]] = Registry("optimizer")
register = OPTIMIZERS.register


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

    def __init__(self, weight_decay: float = 0.0, clip_norm: float | None = None):
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.t = 0
        self._flat: dict[str, np.ndarray] | None = None  # the state as whole-model arrays

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
            self.decay_and_update(p, grads[key], lr, self.state.setdefault(key, {}))

    def step_flat(self, params: dict[str, np.ndarray], p: np.ndarray, g: np.ndarray, lr: float) -> None:
        if self.clip_norm:
            g = clip_by_global_norm({"all": g}, self.clip_norm)["all"]
        state = self.flat_state(params, p)
        known = len(state)
        self.decay_and_update(p, g, lr, state)
        if len(state) != known:  # the first step created the state: show it by parameter too
            self.state = {key: {} for key in params}
            self.link_state(params)

    def decay_and_update(self, p: np.ndarray, g: np.ndarray, lr: float, state: dict[str, np.ndarray]) -> None:
        if self.weight_decay and not self.decoupled_decay:
            g = g + p * p.dtype.type(self.weight_decay)
        if self.weight_decay and self.decoupled_decay:
            p *= p.dtype.type(1 - lr * self.weight_decay)
        self.update(p, g, p.dtype.type(lr), state)

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

    def update(self, p: np.ndarray, g: np.ndarray, lr: np.floating, state: dict[str, np.ndarray]) -> None:
        """Update one parameter p in place from its gradient g; state is p's own (moments...)."""
        raise NotImplementedError


@register("sgd")
class SGD(Optimizer):
    """v = momentum*v + g; p -= lr*(g + momentum*v) with nesterov, else p -= lr*v."""

    def __init__(self, momentum: float = 0.0, nesterov: bool = False, **kw: Any):
        super().__init__(**kw)
        self.momentum, self.nesterov = momentum, nesterov

    def update(self, p: np.ndarray, g: np.ndarray, lr: np.floating, state: dict[str, np.ndarray]) -> None:
        if not self.momentum:
            p -= lr * g
            return
        v = state.setdefault("velocity", np.zeros_like(p))
        v *= v.dtype.type(self.momentum)
        v += g
        p -= lr * (g + v.dtype.type(self.momentum) * v if self.nesterov else v)


@register("adam")
class Adam(Optimizer):
    """m, v: moving averages of g and g^2; p -= lr * m_hat / (sqrt(v_hat) + eps), bias-corrected."""

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, **kw: Any):
        super().__init__(**kw)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def update(self, p: np.ndarray, g: np.ndarray, lr: np.floating, state: dict[str, np.ndarray]) -> None:
        t = p.dtype.type
        m = state.setdefault("m", np.zeros_like(p))
        v = state.setdefault("v", np.zeros_like(p))
        m *= t(self.beta1)
        m += t(1 - self.beta1) * g
        v *= t(self.beta2)
        v += t(1 - self.beta2) * g * g
        m_hat = m / t(1 - self.beta1 ** self.t)
        v_hat = v / t(1 - self.beta2 ** self.t)
        # In place, in the order of lr * m_hat / (sqrt(v_hat) + eps): fewer temporary arrays.
        np.sqrt(v_hat, out=v_hat)
        v_hat += t(self.eps)
        m_hat *= lr
        m_hat /= v_hat
        p -= m_hat


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

    def update(self, p: np.ndarray, g: np.ndarray, lr: np.floating, state: dict[str, np.ndarray]) -> None:
        t = p.dtype.type
        v = state.setdefault("v", np.zeros_like(p))
        v *= t(self.alpha)
        v += t(1 - self.alpha) * g * g
        p -= lr * g / (np.sqrt(v) + t(self.eps))


def make_optimizer(name: str, **params: Any) -> Optimizer:
    """An optimiser by name with its parameters; an unknown name raises UnknownName."""
    return OPTIMIZERS.get(name)(**params)
