"""The README is the user's manual: every registered name and every config key must be in it."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from nnrun import config
from nnrun.data import DATASETS
from nnrun.nn import ACTIVATIONS, INITIALIZERS, LAYERS, LOSSES, OPTIMIZERS, SCHEDULES

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def models_in(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in models_in(arg)]


def config_keys() -> set[str]:
    seen, keys, todo = set(), set(), [config.Experiment]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            keys.add(name)
            todo.extend(models_in(field.annotation))
    return keys


@pytest.mark.parametrize("registry", [LAYERS, ACTIVATIONS, LOSSES, OPTIMIZERS, SCHEDULES,
                                      INITIALIZERS, DATASETS],
                         ids=["layers", "activations", "losses", "optimizers", "schedules",
                              "initializers", "datasets"])
def test_every_registered_name_is_documented(registry):
    missing = [name for name in registry if f"`{name}`" not in README]
    assert not missing, f"README.md does not document: {missing}"


def test_every_config_key_is_documented():
    missing = sorted(k for k in config_keys() if f"`{k}" not in README and f"{k}:" not in README)
    assert not missing, f"README.md does not document the config keys: {missing}"


def test_quickstart_is_make_demo_then_make_test():
    quickstart = README.split("## Quickstart", 1)[1].split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in quickstart.splitlines()[1:] if line.strip()]
    assert commands == ["make demo", "make test"]
