"""Learning-rate schedules: rate(t) for the 0-based epoch t, from the optimiser's base rate lr0.

The rate is set once at the start of each epoch. Formulas (documented in the README too):
  constant            lr0
  step                lr0 * gamma ** floor(t / step_size)
  multistep           lr0 * gamma ** (number of milestones <= t)
  exponential         lr0 * exp(-k t)
  inverse_time        lr0 / (1 + k t)
  polynomial          lr_end + (lr0 - lr_end) * (1 - min(t, T) / T) ** power
  cosine              warm-up lr0 * (t + 1) / (warmup + 1) for t < warmup (rising every epoch
                      to lr0 at t = warmup), then
                      lr_min + (lr0 - lr_min) * (1 + cos(pi * min(t - warmup, T') / T')) / 2,
                      T' = T - warmup
  sigmoid             lr0 / (1 + exp(-gamma (t - step_size)))            (Caffe's policy)
  exponential_fifth   exp(-k t) / 5             (original project; ignores lr0)
  sigmoid_complement  1 - sigmoid(k t) / 2.5    (original project; ignores lr0)
  reduce_on_plateau   lr0, multiplied by factor after `patience` epochs without improvement
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .monitor import Monitor
from .registry import Registry

SCHEDULES: Registry[type[Schedule]] = Registry("schedule")
register = SCHEDULES.register


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


class Schedule:
    """Base class: the learning rate for each epoch, from the base rate lr0."""

    name = "schedule"

    def __init__(self, lr0: float):
        self.lr0 = lr0

    def __call__(self, t: int) -> float:
        """The learning rate for the 0-based epoch t."""
        raise NotImplementedError

    def observe(self, value: float) -> None:
        """Told the monitored metric after each epoch; only feedback schedules use it."""

    def state_dict(self) -> dict[str, np.ndarray]:
        """What the rate depends on besides the epoch and the settings (0-d arrays): nothing,
        except for feedback schedules. load_state_dict restores it."""
        return {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if state:
            raise ValueError(f"schedule {self.name} keeps no state, got {sorted(state)}")


@register("constant")
class Constant(Schedule):
    def __call__(self, t: int) -> float:
        return self.lr0


@register("step")
class Step(Schedule):
    def __init__(self, lr0: float, step_size: int = 10, gamma: float = 0.1):
        super().__init__(lr0)
        self.step_size, self.gamma = step_size, gamma

    def __call__(self, t: int) -> float:
        return self.lr0 * self.gamma ** (t // self.step_size)


@register("multistep")
class MultiStep(Schedule):
    def __init__(self, lr0: float, milestones: list[int] = (30, 60), gamma: float = 0.1):
        super().__init__(lr0)
        self.milestones, self.gamma = sorted(milestones), gamma

    def __call__(self, t: int) -> float:
        return self.lr0 * self.gamma ** sum(m <= t for m in self.milestones)


@register("exponential")
class Exponential(Schedule):
    def __init__(self, lr0: float, k: float = 0.1):
        super().__init__(lr0)
        self.k = k

    def __call__(self, t: int) -> float:
        return self.lr0 * math.exp(-self.k * t)


@register("inverse_time")
class InverseTime(Schedule):
    def __init__(self, lr0: float, k: float = 0.1):
        super().__init__(lr0)
        self.k = k

    def __call__(self, t: int) -> float:
        return self.lr0 / (1 + self.k * t)


@register("polynomial")
class Polynomial(Schedule):
    def __init__(self, lr0: float, T: int = 10, lr_end: float = 0.0, power: float = 1.0):
        super().__init__(lr0)
        self.T, self.lr_end, self.power = T, lr_end, power

    def __call__(self, t: int) -> float:
        frac = 1 - min(t, self.T) / self.T
        return self.lr_end + (self.lr0 - self.lr_end) * frac ** self.power


@register("cosine")
class Cosine(Schedule):
    def __init__(self, lr0: float, T: int = 10, lr_min: float = 0.0, warmup: int = 0):
        super().__init__(lr0)
        self.T, self.lr_min, self.warmup = T, lr_min, warmup

    def __call__(self, t: int) -> float:
        if t < self.warmup:  # ends one step below lr0, which the cosine starts from at t = warmup
            return self.lr0 * (t + 1) / (self.warmup + 1)
        span = max(self.T - self.warmup, 1)
        progress = min(t - self.warmup, span) / span
        return self.lr_min + (self.lr0 - self.lr_min) * (1 + math.cos(math.pi * progress)) / 2


@register("sigmoid")
class SigmoidPolicy(Schedule):
    def __init__(self, lr0: float, gamma: float = -0.5, step_size: int = 10):
        super().__init__(lr0)
        self.gamma, self.step_size = gamma, step_size

    def __call__(self, t: int) -> float:
        return self.lr0 * _sigmoid(self.gamma * (t - self.step_size))


@register("exponential_fifth")
class ExponentialFifth(Schedule):
    """The original project's decay: exp(-k t) / 5 (0.2 at t=0); the base rate is not used."""

    def __init__(self, lr0: float, k: float = 0.1):
        super().__init__(lr0)
        self.k = k

    def __call__(self, t: int) -> float:
        return math.exp(-self.k * t) / 5


@register("sigmoid_complement")
class SigmoidComplement(Schedule):
    """The original project's decay: 1 - sigmoid(k t) / 2.5 (0.8 at t=0, tending to 0.6)."""

    def __init__(self, lr0: float, k: float = 0.1):
        super().__init__(lr0)
        self.k = k

    def __call__(self, t: int) -> float:
        return 1 - _sigmoid(self.k * t) / 2.5


@register("reduce_on_plateau")
class ReduceOnPlateau(Schedule):
    """Multiply the rate by `factor` when the monitored value has not improved by more than
    `min_delta` for `patience` epochs (Keras's ReduceLROnPlateau); never below lr_min."""

    def __init__(self, lr0: float, factor: float = 0.1, patience: int = 5, min_delta: float = 1e-4,
                 mode: str = "min", lr_min: float = 0.0):
        super().__init__(lr0)
        self.factor, self.patience, self.lr_min = factor, patience, lr_min
        self.monitor = Monitor(mode, min_delta)
        self.lr = lr0

    def __call__(self, t: int) -> float:
        return self.lr

    def observe(self, value: float) -> None:
        if not self.monitor.update(value) and self.monitor.wait >= self.patience:
            self.lr, self.monitor.wait = max(self.lr * self.factor, self.lr_min), 0

    def state_dict(self) -> dict[str, np.ndarray]:
        """The current rate "lr" and the monitor's "monitor/best" and "monitor/wait"."""
        return {"lr": np.array(self.lr), **{f"monitor/{k}": v for k, v in self.monitor.state_dict().items()}}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.lr = float(state["lr"])
        self.monitor.load_state_dict({"best": state["monitor/best"], "wait": state["monitor/wait"]})


def make_schedule(name: str, lr0: float, **params: Any) -> Schedule:
    """A schedule by name from the base rate lr0; an unknown name raises UnknownName."""
    return SCHEDULES.get(name)(lr0, **params)
