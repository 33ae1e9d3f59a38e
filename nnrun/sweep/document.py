"""sweep.json as a schema: what `nnrun sweep --resume` accepts from a sweep folder before it acts
on anything in it (it deletes and moves trial folders by the names the file gives).

A sweep folder may come from someone else, so every field that names a file or a folder must be
one nnrun itself writes: a trial's name matches the pattern of trial_folder(), its run_dir is
trials/<name>, base_dir is an absolute path (only ever read from: the config's data paths are
relative to it). Anything else is one ConfigError line naming the file and the key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nnrun.config import SEARCHES, PruneConfig
from nnrun.errors import ConfigError
from nnrun.status import Status
from nnrun.sweep.params import MAX_TRIALS

# What trial_folder() writes: t<index, 3 digits or more>, then an optional slug of safe characters.
TRIAL_NAME = re.compile(r"t\d{3,7}(-[A-Za-z0-9._=+-]{1,48})?")
Scalar = str | int | float | bool | None
MAX_EPOCHS = 100_000  # as many as a sweep.json's trial history may hold


class Loose(BaseModel):
    # extra keys are kept (a newer nnrun may add some); the ones below are checked
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class SpaceDoc(Loose):
    """A param of a model-based search: its range, or its values as categories."""
    key: str
    space: tuple[Literal["log", "lin", "int"], float, float] | None = None
    values: list[Any] = Field(min_length=1, max_length=MAX_TRIALS)
    labels: list[Any] = Field(min_length=1, max_length=MAX_TRIALS)

    @model_validator(mode="after")
    def a_range_optuna_accepts(self):
        if len(self.values) != len(self.labels):
            raise ValueError("values and labels differ in length")
        if self.space is not None:
            kind, low, high = self.space
            if not low <= high or (kind == "log" and low <= 0) or (kind == "int" and (low != int(low) or high != int(high))):
                raise ValueError(f"{kind}:{low}:{high} is not a range nnrun writes")
        return self


class TrialDoc(Loose):
    index: int = Field(ge=0)
    name: str
    params: dict[str, Any]
    overrides: list[str]
    status: Literal[tuple(s.value for s in Status if s not in (Status.PLANNED, Status.RUNNING))]  # type: ignore[valid-type]
    metric: float | None = None
    best_epoch: int | None = Field(None, ge=0)
    seconds: float | None = Field(None, ge=0)
    run_dir: str | None = None
    error: str | None = None
    history: list[float | None] = Field([], max_length=MAX_EPOCHS)  # the metric of each epoch run
    epochs: int = Field(0, ge=0)
    target: int | None = Field(None, ge=1)  # the epoch its next job trains to

    @field_validator("name")
    @classmethod
    def nnrun_trial_name(cls, name: str) -> str:
        if not TRIAL_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a trial folder name nnrun writes (t000-...)")
        return name

    @model_validator(mode="after")
    def folder_inside_trials(self):
        if not self.name.startswith(f"t{self.index:03d}"):
            raise ValueError(f"trial {self.index} is named {self.name!r}; its name starts with t{self.index:03d}")
        if self.run_dir is not None and self.run_dir != f"trials/{self.name}":
            raise ValueError(f"run_dir {self.run_dir!r} is not trials/{self.name}")
        return self


class SweepDoc(Loose):
    format: Literal["nnrun.sweep"]
    version: Literal[1]
    name: str
    config: str
    base_dir: str
    base_config: dict[str, Any]
    base_overrides: list[str] = []
    metric: str
    mode: Literal["max", "min"]
    param_names: list[str]
    workers: int | None = Field(None, gt=0)
    seed: int | None = Field(None, ge=0)
    search: Literal[SEARCHES] = "grid"  # type: ignore[valid-type]
    n_trials: int | None = Field(None, gt=0, le=MAX_TRIALS)
    prune: PruneConfig | None = None
    space: list[SpaceDoc] | None = Field(None, max_length=100)
    epochs_trained: int = Field(0, ge=0)
    status: Literal[tuple(s.value for s in Status)]  # type: ignore[valid-type]
    trials: list[TrialDoc] = Field(max_length=MAX_TRIALS)
    best: int | None = None
    wall_seconds: float = Field(0.0, ge=0)

    @field_validator("metric")
    @classmethod
    def known_metric(cls, metric: str) -> str:
        from nnrun.metrics import RUN_METRICS

        if metric not in RUN_METRICS:
            raise ValueError(f"{metric!r} is not one of {', '.join(RUN_METRICS)}")
        return metric

    @field_validator("base_config")
    @classmethod
    def train_epochs(cls, base_config: dict) -> dict:
        train = base_config.get("train", {})
        epochs = train.get("epochs", 10) if isinstance(train, dict) else None
        if not isinstance(epochs, int) or isinstance(epochs, bool) or not 1 <= epochs <= MAX_EPOCHS:
            raise ValueError(f"train.epochs must be an integer from 1 to {MAX_EPOCHS:,}")
        return base_config

    @field_validator("base_dir")
    @classmethod
    def absolute(cls, base_dir: str) -> str:
        if not Path(base_dir).is_absolute():
            raise ValueError(f"{base_dir!r} is not an absolute path")
        return base_dir

    @model_validator(mode="after")
    def trials_in_order(self):
        for position, trial in enumerate(self.trials):
            if trial.index != position:
                raise ValueError(f"trials[{position}] has index {trial.index}")
        names = [t.name for t in self.trials]
        if len(set(names)) != len(names):
            raise ValueError("two trials share a folder name")
        return self


def checked_sweep(doc: Any, path: Path) -> dict:
    """The sweep document, checked by the schema above (ConfigError, one line per problem)."""
    from nnrun.config import ConfigErrors, dotted, one_line

    if not isinstance(doc, dict) or doc.get("format") != "nnrun.sweep":
        raise ConfigError(f"{path}: not an nnrun sweep file")
    try:
        SweepDoc.model_validate(doc)
    except ValidationError as e:
        raise ConfigErrors([one_line(f"{path}: {dotted(err['loc']) or '(top level)'}: "
                                     f"{err['msg'].removeprefix('Value error, ')}; the file is damaged or was "
                                     "not written by nnrun") for err in e.errors()[:5]]) from None
    return doc
