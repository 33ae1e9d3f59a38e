"""Pruning: which trials of a sweep get more epochs. Pure decisions on the sweep document's trials
(no files, no training); the tuner turns them into jobs.

A trial's score at epoch e is its best value of the sweep metric in epochs 1..e (`history` holds
the metric of each epoch it ran). Ties go to the lower trial index.

  asha    asynchronous successive halving: rungs at min_epochs, min_epochs*eta, ... and
          train.epochs. A trial stops (pauses, keeping its checkpoint) at each rung; it goes on
          while it is in the top 1/eta of the trials that have reached that rung, decided as results
          arrive (nobody waits for a rung to fill). When nothing else can run, the best paused
          trial of each rung goes on, so at least one trial reaches train.epochs.
  median  a trial stops for good when its best so far is worse than the median of the other
          trials at the same epoch (from min_epochs on, once min_trials others have reached it).
          The worker decides, from the other trials' scores when its job was handed out.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from nnrun.fmt import finite
from nnrun.status import Status, is_ok, is_partial
from nnrun.train import Callback

# A trial in the race at a rung: still going, or ended well. A failed or diverged trial takes no place.
RACING = (Status.PENDING, Status.PAUSED)


def racing(trial: dict) -> bool:
    return trial["status"] in RACING or is_ok(trial["status"]) or is_partial(trial["status"])


def score_at(history: Sequence[float | None], epoch: int, mode: str) -> float | None:
    """The best finite value in the first `epoch` entries of history (None when there is none)."""
    best = best_so_far(history[:epoch], mode)
    return best[-1] if best else None


def best_so_far(history: Sequence[float | None], mode: str) -> list[float | None]:
    """score_at(history, e) for every epoch e, in one pass."""
    out, best = [], None
    for v in history:
        if finite(v) is not None and (best is None or (v > best if mode == "max" else v < best)):
            best = v
        out.append(best)
    return out


def ranked(trials: Sequence[dict], epoch: int, mode: str) -> list[dict]:
    """Trials best first by their score at epoch (no score last, ties: lower index first)."""
    sign = -1 if mode == "max" else 1

    def key(t: dict) -> tuple:
        s = score_at(t["history"], epoch, mode)
        return (s is None, 0.0 if s is None else sign * s, t["index"])

    return sorted(trials, key=key)


def rungs(min_epochs: int, eta: int, epochs: int) -> list[int]:
    """[min_epochs, min_epochs*eta, min_epochs*eta**2, ..., epochs] (the last is always epochs)."""
    out, r = [], min_epochs
    while r < epochs:
        out.append(r)
        r *= eta
    return [*out, epochs]


class NoPruning:
    """Every trial trains to its end in one job."""

    kind = "none"

    def __init__(self, epochs: int, mode: str):
        self.epochs, self.mode = epochs, mode

    def first_target(self) -> int | None:
        """The epoch a new trial's first job stops at (None: its end)."""
        return None

    def next_target(self, reached: int) -> int | None:
        """Where a trial that has trained `reached` epochs goes next (None: its end)."""
        return None

    def promotion(self, trials: Sequence[dict], closing: bool) -> tuple[dict, int] | None:
        return None

    def job_extras(self, trial: dict, trials: Sequence[dict]) -> dict:
        return {}


class Asha(NoPruning):
    kind = "asha"

    def __init__(self, epochs: int, mode: str, min_epochs: int = 1, eta: int = 3):
        super().__init__(epochs, mode)
        self.eta, self.rungs = eta, rungs(min_epochs, eta, epochs)

    def first_target(self) -> int:
        return self.rungs[0]

    def next_target(self, reached: int) -> int:
        return next((r for r in self.rungs if r > reached), self.rungs[-1])

    def rung_of(self, reached: int) -> int | None:
        """The highest rung a trial that trained `reached` epochs has reached (None: not the first)."""
        below = [k for k, r in enumerate(self.rungs) if r <= reached]
        return below[-1] if below else None

    def promotion(self, trials: Sequence[dict], closing: bool) -> tuple[dict, int] | None:
        """(a paused trial, the epoch it now trains to), from the highest rung down; None when no
        trial may go on yet. `closing`: nothing else can run, so each rung lets at least one go on."""
        for k in range(len(self.rungs) - 2, -1, -1):
            rung = self.rungs[k]
            reached = [t for t in trials if len(t["history"]) >= rung and racing(t)]
            quota = len(reached) // self.eta
            if closing and reached:
                quota = max(quota, 1)
            for t in ranked(reached, rung, self.mode)[:quota]:
                if t["status"] == Status.PAUSED and self.rung_of(len(t["history"])) == k:
                    return t, self.rungs[k + 1]
        return None


class Median(NoPruning):
    kind = "median"

    def __init__(self, epochs: int, mode: str, min_epochs: int = 1, min_trials: int = 3):
        super().__init__(epochs, mode)
        self.min_epochs, self.min_trials = min_epochs, min_trials

    def job_extras(self, trial: dict, trials: Sequence[dict]) -> dict:
        """The other trials' scores at each epoch from min_epochs on, for the worker's MedianStop."""
        by_epoch: dict[int, list[float]] = {}
        for t in trials:
            if t["index"] != trial["index"]:
                for epoch, best in enumerate(best_so_far(t["history"], self.mode), start=1):
                    if epoch >= self.min_epochs and best is not None:
                        by_epoch.setdefault(epoch, []).append(best)
        table = {str(e): scores for e, scores in sorted(by_epoch.items()) if len(scores) >= self.min_trials}
        return {"median": {"mode": self.mode, "table": table}}


class MedianStop(Callback):
    """Stops a trial for good (status pruned) at the end of an epoch where its best metric so far
    is worse than the median of the other trials' at that epoch. Put it after the checkpoint
    callback, so the pruned run can still be finished by hand (`nnrun train --resume`)."""

    def __init__(self, metric: str, mode: str, table: dict[str, list[float]]):
        self.metric, self.mode, self.table, self.history = metric, mode, table, []

    def on_train_begin(self, state):
        self.history = [row.get(self.metric) for row in state.rows]

    def on_epoch_end(self, state, row):
        self.history.append(row.get(self.metric))
        others = self.table.get(str(state.epoch))
        mine = score_at(self.history, len(self.history), self.mode)
        if not others or state.epoch >= state.epochs:
            return
        median = statistics.median(others)
        if mine is None or (mine < median if self.mode == "max" else mine > median):
            state.request_stop(Status.PRUNED)


PRUNERS = {"none": NoPruning, "asha": Asha, "median": Median}


def pruner_for(prune: dict[str, Any] | None, epochs: int, mode: str) -> NoPruning:
    """The pruner a sweep document's `prune` section describes."""
    settings = dict(prune or {"type": "none"})
    return PRUNERS[settings.pop("type")](epochs, mode, **settings)
