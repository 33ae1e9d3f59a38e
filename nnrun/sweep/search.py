"""Model-based search: the next trial's values chosen from the results so far.

`tpe` is Optuna's TPE sampler (the optional extra nnrun[tune]), used by ask and tell without
Optuna's storage: before each ask, a new in-memory study is told every trial the sweep document
knows (finished ones with their metric, paused and pruned ones with their metric per epoch, failed
ones as failed), so sweep.json stays the one record and --resume needs nothing else. The sampler's
seed comes from the sweep's seed and the trial's index: the same results give the same next trial.

The space is the sweep's own syntax: log:LOW:HIGH and lin:LOW:HIGH are sampled continuously,
int:LOW:HIGH as integers, and lists of values as categories.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnrun.errors import ConfigError
from nnrun.fmt import finite
from nnrun.status import Status, is_ok, is_partial
from nnrun.sweep.params import Param, round_sig

INSTALL_TUNE = "pip install 'nnrun[tune]'"


def require_optuna(search: str) -> None:
    """ConfigError with what to install when --search tpe cannot import Optuna."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ConfigError(f"--search {search} needs Optuna: {INSTALL_TUNE}") from None


def space_of(params: Sequence[Param]) -> list[dict]:
    """The params as sweep.json keeps them for a model-based search."""
    return [{"key": p.key, "space": list(p.space) if p.space else None, "values": p.values,
             "labels": p.labels} for p in params]


def params_of(space: Sequence[dict]) -> list[Param]:
    return [Param(s["key"], s["values"], s["labels"], tuple(s["space"]) if s["space"] else None) for s in space]


class TpeSampler:
    """Optuna's TPE, asked for one trial at a time (see the module's docstring)."""

    @staticmethod
    def check_available() -> None:
        require_optuna("tpe")

    def __init__(self, space: Sequence[dict], mode: str, seed: int):
        self.check_available()
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna, self.params, self.mode, self.seed = optuna, params_of(space), mode, seed
        self.distributions = {p.key: self.distribution(p) for p in self.params}

    def distribution(self, p: Param):
        D = self.optuna.distributions
        kind = p.space[0] if p.space else None
        if kind in ("log", "lin"):
            return D.FloatDistribution(p.space[1], p.space[2], log=kind == "log")
        if kind == "int":
            return D.IntDistribution(p.space[1], p.space[2])
        return D.CategoricalDistribution(list(range(len(p.values))))

    def suggest(self, trials: Sequence[dict], index: int) -> list[tuple]:
        """[(value, label), ...] in param order for trial `index`, given the trials so far."""
        seed = int(np.random.SeedSequence([self.seed, index]).generate_state(1)[0])  # distinct per sweep seed
        with warnings.catch_warnings():  # multivariate is "experimental" in Optuna's words, and stable
            warnings.simplefilter("ignore", self.optuna.exceptions.ExperimentalWarning)
            # multivariate: one density over all params, since rates and momenta interact
            sampler = self.optuna.samplers.TPESampler(seed=seed, multivariate=True)
        study = self.optuna.create_study(direction="maximize" if self.mode == "max" else "minimize", sampler=sampler)
        for t in trials:
            told = self.told(t)
            if told is not None:
                study.add_trial(told)
        asked = study.ask(self.distributions).params
        return [self.chosen(p, asked[p.key]) for p in self.params]

    def chosen(self, p: Param, value: Any) -> tuple:
        if not p.space:
            return p.values[value], p.labels[value]
        if p.space[0] == "int":
            return int(value), int(value)
        v = min(max(round_sig(float(value)), p.space[1]), p.space[2])  # 4 digits, still in range
        return v, v

    def told(self, trial: dict):
        """The trial as an Optuna FrozenTrial (None when it has not run yet or its params are not
        in the space, e.g. a config that failed validation)."""
        from optuna.trial import TrialState, create_trial

        values = self.internal(trial)
        if values is None:
            return None
        steps = {e + 1: v for e, v in enumerate(trial.get("history") or []) if finite(v) is not None}
        if is_ok(trial["status"]) and finite(trial["metric"]) is not None:
            return create_trial(params=values, distributions=self.distributions, value=trial["metric"],
                                intermediate_values=steps, state=TrialState.COMPLETE)
        if is_partial(trial["status"]):
            return create_trial(params=values, distributions=self.distributions, intermediate_values=steps,
                                state=TrialState.PRUNED)
        if trial["status"] == Status.PENDING:
            return None
        return create_trial(params=values, distributions=self.distributions, state=TrialState.FAIL)

    def internal(self, trial: dict) -> dict | None:
        """The trial's params in Optuna's terms (a category is its position in the list)."""
        out = {}
        for p in self.params:
            if p.key not in trial["params"]:
                return None
            shown = trial["params"][p.key]
            if p.space:
                if not (isinstance(shown, (int, float)) and math.isfinite(shown)
                        and p.space[1] <= shown <= p.space[2]):
                    return None
                out[p.key] = shown
            elif shown in p.labels:
                out[p.key] = p.labels.index(shown)
            else:
                return None
        return out


SAMPLERS = {"tpe": TpeSampler}


def sampler_for(search: str, space: Sequence[dict], mode: str, seed: int):
    """The model-based sampler of a sweep (None for grid and random, which are planned ahead)."""
    return SAMPLERS[search](space, mode, seed) if search in SAMPLERS else None
