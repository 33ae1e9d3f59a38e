"""Planning a sweep: the sweep document with every trial's overrides and folder name, validated
before anything runs (no files written)."""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nnrun import fmt
from nnrun.config import (
    SEARCHES,
    AshaPrune,
    Experiment,
    MedianPrune,
    NoPrune,
    SweepConfig,
    apply_overrides,
    canonical_override,
    check_name,
    read_yaml,
    unknown_name,
    validate,
)
from nnrun.errors import ConfigError
from nnrun.metrics import RUN_METRICS, metric_mode
from nnrun.status import Status
from nnrun.sweep.params import Param, concrete_key, expand, merge_params
from nnrun.sweep.search import SAMPLERS, space_of

PRUNE_MODELS = {"asha": AshaPrune, "median": MedianPrune, "none": NoPrune}
PRUNE_TYPES = tuple(PRUNE_MODELS)

SWEEP_FORMAT, SWEEP_VERSION = "nnrun.sweep", 1


# -- trial naming ---------------------------------------------------------------------------
def short_key(key: str) -> str:
    """'model.layers[-2].units' -> 'units'."""
    return re.sub(r"\[-?\d+\]", "", key.split(".")[-1]) or key


def short_params(params: dict) -> list[str]:
    """['lr=0.001', 'units=small']: the params as trial names and curve labels show them."""
    return [f"{short_key(k)}={fmt.value(v)}" for k, v in params.items()]


def trial_folder(index: int, params: dict) -> str:
    slug = "_".join(short_params(params))
    slug = re.sub(r"[^A-Za-z0-9._=+-]+", "-", slug).strip("-")[:48]
    return f"t{index:03d}" + (f"-{slug}" if slug else "")


def train_command(config: str, overrides: Sequence[str]) -> str:
    """The command that trains a trial on its own: 'nnrun train CONFIG --set ... --set ...'."""
    return shlex.join(["nnrun", "train", str(config), *(word for s in overrides for word in ("--set", s))])


# -- the plan -------------------------------------------------------------------------------
def default_metric(exp: Experiment) -> str:
    return "val_accuracy" if exp.data.validation_split > 0 else "test_accuracy"


def plan_sweep(config: str | os.PathLike, params: Sequence[str] = (), overrides: Sequence[str] = (),
               metric: str | None = None, mode: str | None = None, random: int | None = None,
               seed: int | None = None, name: str | None = None, search: str | None = None,
               trials: int | None = None, prune: str | None = None) -> dict:
    """Read the config and build the sweep document (no files written): the base config, the
    params, and every trial with its concrete --set overrides, validated up front (a tpe search
    chooses its trials as results arrive). A trial whose config is invalid is recorded as
    failed; when every trial is invalid, ConfigError."""
    config = Path(config)
    raw = read_yaml(config)
    base_dir = config.resolve().parent
    overrides = [canonical_override(text) for text in overrides]
    apply_overrides(raw, overrides)  # the base --set overrides; the section is read from the result
    base_exp = validate(copy.deepcopy(raw), str(config), base_dir)
    section = base_exp.sweep
    raw.pop("sweep", None)
    plist = merge_params(from_section(section, "params"), params)
    metric = checked_metric(metric or from_section(section, "metric") or default_metric(base_exp), base_exp)
    mode = checked_mode(mode or from_section(section, "mode") or metric_mode(metric))
    try:
        search, n_trials = checked_search(search, trials, random, section)
        pruning = checked_prune(prune, section, metric, base_exp.train.epochs, plist)
    except ConfigError as e:
        raise ConfigError(f"{config}: {e}") from None
    seed = first_given(seed, from_section(section, "seed"), base_exp.seed)
    if seed < 0:
        raise ConfigError(f"--seed {seed}: use an integer >= 0")
    planned = [] if search == "tpe" else plan_trials(
        plist, expand(plist, n_trials if search == "random" else None, seed), raw, overrides, config, base_dir)
    name = check_name(name) if name is not None else base_exp.name
    return {"format": SWEEP_FORMAT, "version": SWEEP_VERSION, "name": name,
            "config": str(config), "base_dir": str(base_dir), "base_config": raw,
            "base_overrides": list(overrides), "metric": metric, "mode": mode,
            "param_names": [p.key for p in plist], "search": search, "n_trials": n_trials,
            "random": n_trials if search == "random" else None, "prune": pruning,
            "space": space_of(plist) if search == "tpe" else None, "seed": seed,
            "workers": from_section(section, "workers"), "status": Status.PLANNED, "trials": planned,
            "best": None, "epochs_trained": 0}


def checked_search(search: str | None, trials: int | None, random: int | None,
                   section: SweepConfig | None) -> tuple[str, int | None]:
    """(search, number of trials) from the command line, else the sweep section; --random N is
    --search random --trials N."""
    if random is not None and (search not in (None, "random") or trials not in (None, random)):
        raise ConfigError("--random N is --search random --trials N: give one or the other")
    search = search or ("random" if random else None)
    if search is None:
        search = from_section(section, "search") or ("random" if from_section(section, "random") else "grid")
    trials = first_given(trials, random, from_section(section, "trials"),
                         from_section(section, "random") if search == "random" else None)
    if search not in SEARCHES:
        raise ConfigError(f"--search {search!r}: use {', '.join(SEARCHES)}")
    if search == "grid" and trials is not None:
        raise ConfigError("a number of trials (--trials, sweep.trials) is for a random or tpe search "
                          "(--search, sweep.search): a grid runs every combination")
    if search != "grid" and trials is None:
        raise ConfigError(f"--search {search} needs --trials N (or sweep.trials in the config)")
    if search in SAMPLERS:
        SAMPLERS[search].check_available()
    return search, trials


def checked_prune(prune: str | None, section: SweepConfig | None, metric: str, epochs: int,
                  plist: Sequence[Param]) -> dict | None:
    """The pruner's settings (None for none): --prune TYPE takes the section's settings of that
    type, else its defaults."""
    configured = from_section(section, "prune")
    if prune is not None and prune not in PRUNE_TYPES:
        raise ConfigError(f"--prune {prune!r}: use {', '.join(PRUNE_TYPES)}")
    if prune is not None and (configured is None or configured.type != prune):
        configured = PRUNE_MODELS[prune](type=prune)
    if configured is None or configured.type == "none":
        return None
    if metric.startswith("test_"):
        raise ConfigError(f"pruning ({configured.type}) compares trials epoch by epoch, and {metric} is measured "
                          "once, at the end: rank by a val_ or train_ metric (--metric val_accuracy)")
    if configured.min_epochs >= epochs:
        raise ConfigError(f"sweep.prune.min_epochs {configured.min_epochs}: must be below train.epochs "
                          f"({epochs}), or there is nothing to prune")
    if any(p.key == "train.epochs" for p in plist):
        raise ConfigError("--prune: train.epochs is swept; a pruned sweep needs one train.epochs for its rungs")
    return configured.model_dump()


def from_section(section: SweepConfig | None, field: str) -> Any:
    """A field of the config's sweep: section, None without one."""
    return getattr(section, field) if section else None


def first_given(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def checked_metric(metric: str, base_exp: Experiment) -> str:
    if metric not in RUN_METRICS:
        raise ConfigError(str(unknown_name("metric", metric, RUN_METRICS)))
    if metric.startswith("val_") and base_exp.data.validation_split == 0:
        raise ConfigError(f"--metric {metric}: the config has no validation data "
                          "(data.validation_split is 0); use a train_ or test_ metric")
    return metric


def checked_mode(mode: str) -> str:
    if mode not in ("max", "min"):
        raise ConfigError(f"--mode {mode!r}: use max or min")
    return mode


def plan_trials(plist: Sequence[Param], combos: list[list[tuple]], raw: dict, overrides: list[str],
                config: Path, base_dir: Path) -> list[dict]:
    trials = [plan_trial(index, plist, combo, raw, overrides, f"{config} (trial {index})", base_dir)
              for index, combo in enumerate(combos)]
    failed = [t for t in trials if t["status"] == Status.FAILED]
    if failed and len(failed) == len(trials):
        raise ConfigError(failed[0]["error"])
    return trials


def plan_trial(index: int, plist: Sequence[Param], combo: list[tuple], raw: dict, overrides: list[str],
               source: str, base_dir: Path) -> dict:
    """One trial: the base overrides then one concrete --set per param, applied in param order
    (so a negative index sees what earlier params made); invalid -> status failed."""
    scratch = copy.deepcopy(raw)
    sets, shown = list(overrides), {}
    trial = {"index": index, "params": shown, "overrides": sets, "status": Status.PENDING, "metric": None,
             "best_epoch": None, "seconds": None, "run_dir": None, "error": None}
    try:
        for p, (value, label) in zip(plist, combo, strict=True):
            text = canonical_override(f"{concrete_key(scratch, p.key)}={json.dumps(value)}")
            apply_overrides(scratch, [text])
            sets.append(text)
            shown[p.key] = label
        validate(scratch, source, base_dir)
    except ConfigError as e:
        trial.update(status=Status.FAILED, error=str(e))
        for p, (_, label) in zip(plist, combo, strict=True):
            shown.setdefault(p.key, label)
    trial["name"] = trial_folder(index, shown)
    return trial
