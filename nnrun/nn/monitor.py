"""Monitor: the best value so far of a number that should go down (or up)."""

from __future__ import annotations

import math

import numpy as np


class Monitor:
    """Tracks the best of a series of values: the lowest with mode "min", the highest with
    "max". A value improves on the best only by more than min_delta; a missing or non-finite
    value never does. `wait` counts the updates since the last improvement."""

    def __init__(self, mode: str = "min", min_delta: float = 0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode!r}: use 'min' or 'max'")
        self.sign = 1 if mode == "min" else -1
        self.min_delta = min_delta
        self.best: float | None = None
        self.wait = 0

    def update(self, value: float | None) -> bool:
        """Record a value; True when it is the new best."""
        if value is not None and math.isfinite(value) and (
                self.best is None or self.sign * (self.best - value) > self.min_delta):
            self.best, self.wait = value, 0
            return True
        self.wait += 1
        return False

    def state_dict(self) -> dict[str, np.ndarray]:
        """"best" (NaN before any finite value) and "wait", as 0-d arrays for a checkpoint."""
        return {"best": np.array(math.nan if self.best is None else self.best), "wait": np.array(self.wait)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        best = float(state["best"])
        self.best, self.wait = None if math.isnan(best) else best, int(state["wait"])
