"""nnrun schema: a JSON Schema that accepts every config the loader accepts (short forms
included), refuses misspelt keys and unknown names, lists the registered names, and describes
every key."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given
from typer.testing import CliRunner

from nnrun.cli import app
from nnrun.config import ConfigError, validate
from nnrun.data import DATASETS
from nnrun.metrics import EPOCH_METRICS
from nnrun.nn import ACTIVATIONS, INITIALIZERS, LAYERS, LOSSES, OPTIMIZERS, SCHEDULES
from nnrun.schema import build_schema
from tests.test_config import BAD, GOOD, with_change
from tests.test_hostile_inputs import PROPERTY_SETTINGS, mutated_configs

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = build_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def accepted(config) -> bool:
    return VALIDATOR.is_valid(config)


def readme_yaml_blocks() -> list[dict]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [yaml.safe_load(block) for block in re.findall(r"^```yaml\n(.*?)^```", text, re.MULTILINE | re.DOTALL)]


def test_it_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("path", sorted(p.relative_to(ROOT).as_posix() for p in
                                        [*ROOT.glob("configs/*.yaml"), *ROOT.glob("experiments/*.yaml")]))
def test_every_shipped_config_validates(path):
    errors = [e.message for e in VALIDATOR.iter_errors(yaml.safe_load((ROOT / path).read_text()))]
    assert not errors, errors


def test_every_readme_example_validates():
    blocks = readme_yaml_blocks()
    assert len(blocks) >= 3
    for block in blocks:
        # A fragment (a sweep: or train: section) is checked as part of a minimal config.
        config = block if "model" in block else {**copy.deepcopy(GOOD), **block}
        errors = [e.message for e in VALIDATOR.iter_errors(config)]
        assert not errors, (block, errors)


SHORT_FORMS = [  # (dotted key, value): forms the loader accepts besides GOOD's
    ("optimizer", "sgd"), ("optimizer", {"type": "sgd", "momentum": 0.9, "nesterov": True}),
    ("schedule", "cosine"), ("schedule", {"type": "multistep", "milestones": [2, 4]}),
    ("model.layers[0].activation", None), ("model.layers[0].activation", {"type": "leaky_relu", "alpha": 0.2}),
    ("model.layers[0].activation", {"type": "relu"}), ("model.layers[0].kernel_size", [3, 3]),
    ("model.layers[0].padding", "same"), ("model.layers[0].init", "he_uniform"),
    ("model.layers[0].init_params", {"std": 0.1}), ("model.layers[1]", {"type": "maxpool2d", "stride": None}),
    ("model.layers[1]", {"type": "elu", "alpha": 0.5}), ("data.scale", None), ("data.scale", 255),
    ("data", {"dataset": None, "train": {"csv": "x.csv"}}), ("data.train", {"csv": "x.csv", "image_shape": [8, 8]}),
    ("data.test", {"npz": "t.npz", "x": "images"}), ("train.early_stopping", {"monitor": "val_accuracy"}),
    ("train.early_stopping", None), ("train.diagnostics", False), ("train.log", "tensorboard"),
    ("train.log", ["tensorboard", "mlflow"]), ("sweep", {"params": {"optimizer.lr": "log:1e-4:1:4"}}),
    ("model.dtype", "float64"), ("loss", "mse"),
]


@pytest.mark.parametrize("key, value", SHORT_FORMS, ids=[f"{k}={v}" for k, v in SHORT_FORMS])
def test_every_form_the_loader_accepts_validates(key, value, tmp_path):
    config = with_change(key, value)
    for name in ("x.csv", "t.npz"):
        (tmp_path / name).write_text("")  # the loader wants the files to exist (it reads them later)
    if key == "loss":
        config["model"]["layers"][-1]["activation"] = "linear"
    validate(copy.deepcopy(config), "short.yaml", tmp_path)  # the loader accepts it...
    assert accepted(config), [e.message for e in VALIDATOR.iter_errors(config)]  # ...and so does the schema


# Problems of one key (a name, a type, a bound); the checks across keys (shapes, files, softmax
# for cross-entropy, warm-up < T) are the loader's alone.
ACROSS_KEYS = {"kernel larger than input", "dense on an image", "wrong number of outputs", "missing data file",
               "nesterov without momentum", "warm-up as long as the cosine", "adamw decay that flips the weights",
               "cross-entropy after a linear output", "cross-entropy after a sigmoid",
               "cross-entropy after an activation layer"}


@pytest.mark.parametrize("what, config", [(w, c) for w, c, _ in BAD if w not in ACROSS_KEYS],
                         ids=[w for w, _, _ in BAD if w not in ACROSS_KEYS])
def test_what_the_loader_refuses_in_one_key_the_schema_refuses(what, config):
    with pytest.raises(ConfigError):
        validate(copy.deepcopy(config), "bad.yaml", None)
    assert not accepted(config)


def test_a_misspelt_key_and_an_unknown_activation_are_refused():
    assert accepted(GOOD)
    misspelt = copy.deepcopy(GOOD)
    misspelt["optimzer"] = misspelt.pop("optimizer")
    (error,) = VALIDATOR.iter_errors(misspelt)
    assert "'optimzer' was unexpected" in error.message
    assert not accepted(with_change("model.layers[0].activation", "rlu"))
    assert not accepted(with_change("model.layers[0].activation", {"type": "leaky_relu", "alpha": -1}))
    assert not accepted(with_change("model.layers[0].activation", {"type": "relu", "alpha": 0.1}))


@PROPERTY_SETTINGS
@given(config=mutated_configs())
def test_any_config_the_loader_accepts_the_schema_accepts(tmp_path_factory, config):
    raw = copy.deepcopy(config)
    try:
        validate(config, "mutated.yaml", tmp_path_factory.getbasetemp())
    except ConfigError as e:
        if "unknown key" in str(e) or "unknown activation" in str(e):
            assert not accepted(raw), str(e)
        return
    assert accepted(raw), [e.message for e in VALIDATOR.iter_errors(raw)]


def enum_at(prop: dict) -> list:
    return next(a["enum"] for a in prop.get("anyOf", [prop]) if "enum" in a)


def test_registered_names_are_enums():
    props, defs = SCHEMA["properties"], SCHEMA["$defs"]
    assert enum_at(props["loss"]) == list(LOSSES)
    assert enum_at(props["optimizer"]) == list(OPTIMIZERS)
    assert enum_at(props["schedule"]) == list(SCHEDULES)
    assert enum_at(defs["Activation"]) == list(ACTIVATIONS)
    assert enum_at(defs["DataConfig"]["properties"]["dataset"]) == list(DATASETS)
    assert enum_at(defs["DenseConfig"]["properties"]["init"]) == list(INITIALIZERS)
    assert enum_at(defs["TrainConfig"]["properties"]["plateau_monitor"]) == list(EPOCH_METRICS)
    assert enum_at(defs["EarlyStopping"]["properties"]["monitor"]) == list(EPOCH_METRICS)
    layer_types = [defs[ref["$ref"].split("/")[-1]]["properties"]["type"]["const"]
                   for ref in defs["ModelConfig"]["properties"]["layers"]["items"]["oneOf"]]
    assert layer_types == list(LAYERS)


def properties(node, path=""):
    """(path, property schema, required) for every property of every object in the schema."""
    if isinstance(node, dict):
        for key, prop in (node.get("properties") or {}).items():
            yield f"{path}.{key}", prop, key in node.get("required", [])
        for key, child in node.items():
            if key != "properties":
                yield from properties(child, f"{path}/{key}")
            else:
                for name, prop in child.items():
                    yield from properties(prop, f"{path}.{name}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from properties(child, f"{path}[{i}]")


def test_every_key_has_a_description_and_every_optional_key_a_default():
    seen = list(properties(SCHEMA))
    assert len(seen) > 150
    undescribed = [p for p, prop, _ in seen if not prop.get("description")]
    assert not undescribed, undescribed
    no_default = [p for p, prop, required in seen if not required and "default" not in prop]
    assert not no_default, no_default


def test_the_cli_prints_and_writes_the_schema(tmp_path):
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == SCHEMA
    out = tmp_path / "nnrun.schema.json"
    result = CliRunner().invoke(app, ["schema", "--out", str(out)])
    assert result.exit_code == 0 and json.loads(out.read_text()) == SCHEMA


def test_the_readme_shows_the_editor_line():
    assert "# yaml-language-server: $schema=nnrun.schema.json" in (ROOT / "README.md").read_text(encoding="utf-8")
