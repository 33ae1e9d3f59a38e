"""The schema, overrides and error messages: every bad config is one clear line and exit 2."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from nnrun.cli import app
from nnrun.config import ConfigError, load_config, parse_override, resolved_dict
from nnrun.nn import ACTIVATIONS, LAYERS, OPTIMIZERS, SCHEDULES
from nnrun.sweep import plan_sweep

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent

GOOD = {
    "name": "good",
    "data": {"dataset": "digits"},
    "model": {"layers": [
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": 1, "activation": "relu"},
        {"type": "maxpool2d"},
        {"type": "flatten"},
        {"type": "dense", "units": 10, "activation": "softmax"},
    ]},
    "optimizer": {"type": "adam", "lr": 0.001},
    "train": {"epochs": 1},
}


def with_change(path: str, value) -> dict:
    """GOOD with one dotted key set (value None with 'DELETE' removes it)."""
    config = copy.deepcopy(GOOD)
    keys, _ = parse_override(f"{path}=0")
    node = config
    for k in keys[:-1]:
        node = node[k]
    if value == "DELETE":
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return config


# (description, config, text that the error line must contain)
BAD = [
    ("unknown top-level key", with_change("epochs", 3), "epochs: unknown key"),
    ("unknown nested key", with_change("train.epoch", 3), "train.epoch: unknown key (did you mean 'epochs'?)"),
    ("wrong type", with_change("train.epochs", "ten"), "train.epochs: Input should be a valid integer"),
    ("zero epochs", with_change("train.epochs", 0), "train.epochs: Input should be greater than 0"),
    ("negative rate", with_change("optimizer.lr", -0.1), "optimizer.lr: Input should be greater than 0"),
    ("unknown optimiser", with_change("optimizer.type", "adan"), "optimizer: unknown optimizer 'adan' (did you mean 'adam'?)"),
    ("param of another optimiser", with_change("optimizer.momentum", 0.9),
     "optimizer.momentum: is a key of sgd, not of adam; replace the whole block: --set 'optimizer={type: adam, lr: 0.001}'"),
    ("unknown schedule", with_change("schedule", {"type": "cosin"}), "schedule: unknown schedule 'cosin' (did you mean 'cosine'?)"),
    ("unknown layer", with_change("model.layers[1].type", "maxpool"), "model.layers[1]: unknown layer type 'maxpool' (did you mean 'maxpool2d'?)"),
    ("layer without type", with_change("model.layers[2]", {"units": 3}), "model.layers[2]: each layer needs a 'type'"),
    ("unknown activation", with_change("model.layers[0].activation", "rlu"), "model.layers[0].activation: unknown activation 'rlu' (did you mean 'relu'?)"),
    ("unknown layer key", with_change("model.layers[0].kernel", 3), "model.layers[0].kernel: unknown key (did you mean 'kernel_size'?)"),
    ("negative filters", with_change("model.layers[0].filters", -2), "model.layers[0].filters: Input should be greater than 0"),
    ("bad padding", with_change("model.layers[0].padding", "full"), "model.layers[0].padding"),
    ("kernel larger than input", with_change("model.layers[0].kernel_size", 11), "model.layers[0] (conv2d): kernel 11x11 is larger than its input 8x8"),
    ("dense on an image", with_change("model.layers[2]", {"type": "relu"}), "model.layers[3] (dense): expects flat input"),
    ("wrong number of outputs", with_change("model.layers[3].units", 7), "the data has 10 classes"),
    ("empty layer list", with_change("model.layers", []), "model.layers: List should have at least 1 item"),
    ("missing model", with_change("model", "DELETE"), "model: required key is missing"),
    ("unknown dataset", with_change("data.dataset", "mnsit"), "data.dataset: unknown dataset 'mnsit' (did you mean 'mnist'?)"),
    ("no data", with_change("data", {"validation_split": 0.1}), "give data.dataset (a named dataset) or data.train (files)"),
    ("missing data file", with_change("data.train", {"images": "no/such.gz", "labels": "no/labels.gz"}), "data.train.images: no such file"),
    ("unknown source kind", with_change("data.train", {"parquet": "x.pq"}), "data.train: give {images, labels} (IDX), {csv: file} or {npz: file}"),
    ("validation split of 1", with_change("data.validation_split", 1.0), "data.validation_split: Input should be less than 1"),
    ("unknown loss", with_change("loss", "crossentropy"), "loss: unknown loss 'crossentropy' (did you mean 'cross_entropy'?)"),
    ("bad dropout rate", with_change("model.layers[1]", {"type": "dropout", "rate": 1.5}), "model.layers[1].rate: Input should be less than 1"),
    ("bad name", with_change("name", "a b/c"), "name: String should match pattern"),
    ("bad monitor", with_change("train.early_stopping", {"monitor": "val_acc"}), "train.early_stopping.monitor: unknown monitor 'val_acc' (did you mean 'val_accuracy'?)"),
    ("rmsprop alpha above 1", with_change("optimizer", {"type": "rmsprop", "alpha": 1.5}), "optimizer.alpha: Input should be less than 1 (got 1.5)"),
    ("rmsprop alpha of 1", with_change("optimizer", {"type": "rmsprop", "alpha": 1}), "optimizer.alpha: Input should be less than 1 (got 1)"),
    ("negative step gamma", with_change("schedule", {"type": "step", "gamma": -0.5}), "schedule.gamma: Input should be greater than 0 (got -0.5)"),
    ("zero multistep gamma", with_change("schedule", {"type": "multistep", "gamma": 0}), "schedule.gamma: Input should be greater than 0 (got 0)"),
    ("negative milestone", with_change("schedule", {"type": "multistep", "milestones": [5, -1]}), "schedule.milestones[1]: Input should be greater than 0 (got -1)"),
    ("adam beta2 of 1", with_change("optimizer.beta2", 1.0), "optimizer.beta2: Input should be less than 1 (got 1.0)"),
    ("zero eps", with_change("optimizer.eps", 0), "optimizer.eps: Input should be greater than 0 (got 0)"),
    ("plateau factor of 1", with_change("schedule", {"type": "reduce_on_plateau", "factor": 1}), "schedule.factor: Input should be less than 1 (got 1)"),
    ("nesterov without momentum", with_change("optimizer", {"type": "sgd", "nesterov": True}),
     "optimizer.nesterov: Nesterov momentum needs momentum > 0 (with 0 it is plain SGD); set optimizer.momentum, e.g. 0.9"),
    ("warm-up as long as the cosine", with_change("schedule", {"type": "cosine", "warmup": 1}),
     "schedule.warmup: 1 epochs of warm-up leave none for the cosine (T = 1); use warmup < T (T defaults to train.epochs)"),
    ("adamw decay that flips the weights", with_change("optimizer", {"type": "adamw", "lr": 0.5, "weight_decay": 2}),
     "optimizer.weight_decay: adamw multiplies the weights by 1 - lr * weight_decay = 1 - 0.5 * 2 at the largest rate; use lr * weight_decay < 1"),
    ("cross-entropy after a linear output", with_change("model.layers[3].activation", "linear"),
     "loss: cross_entropy needs probabilities, but model.layers[3].activation is linear; end with softmax (model.layers[3].activation: softmax) or use loss: mse"),
    ("cross-entropy after a sigmoid", with_change("model.layers[3].activation", "sigmoid"),
     "loss: cross_entropy needs probabilities, but model.layers[3].activation is sigmoid"),
    ("cross-entropy after an activation layer", with_change("model.layers", [*GOOD["model"]["layers"], {"type": "relu"}]),
     "loss: cross_entropy needs probabilities, but model.layers[4] is a relu layer; end with softmax"),
]


@pytest.mark.parametrize("command", ["validate", "train"])
@pytest.mark.parametrize("description, config, expected", BAD, ids=[b[0] for b in BAD])
def test_bad_configs_exit_2_with_a_line_naming_the_key(tmp_path, command, description, config, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, [command, str(path), "--runs-dir", str(tmp_path / "runs")]
                           if command == "train" else [command, str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert any(expected in line and str(path) in line for line in lines) or \
        any(expected in line for line in lines), lines
    assert all(line.startswith("error: ") for line in lines)
    assert not (tmp_path / "runs").exists()  # a bad config creates no run folder


def test_invalid_yaml_names_file_line_and_column(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nmodel:\n  layers: [\n    {type: dense\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}:5:1: invalid YAML" in result.stderr


def test_missing_config_file(tmp_path):
    result = runner.invoke(app, ["train", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "nope.yaml: no such config file" in result.stderr


def test_debug_shows_the_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(with_change("optimizer.lr", -1)))
    result = runner.invoke(app, ["--debug", "validate", str(path)])
    assert result.exit_code != 0 and isinstance(result.exception, ConfigError)


@pytest.mark.parametrize("text, keys, value", [
    ("optimizer.lr=0.01", ["optimizer", "lr"], 0.01),
    ("optimizer.lr=1e-3", ["optimizer", "lr"], 0.001),
    ("train.shuffle=false", ["train", "shuffle"], False),
    ("model.layers[2].units=32", ["model", "layers", 2, "units"], 32),
    ("model.layers.2.units=32", ["model", "layers", 2, "units"], 32),
    ("data.csv.image_shape=[1,8,8]", ["data", "csv", "image_shape"], [1, 8, 8]),
    ("optimizer={type: sgd, lr: 0.1}", ["optimizer"], {"type": "sgd", "lr": 0.1}),
    ("name=my-run", ["name"], "my-run"),
])
def test_parse_override(text, keys, value):
    assert parse_override(text) == (keys, value)


@pytest.mark.parametrize("text", ["optimizer.lr", "a..b=1", "model.layers[x]=1"])
def test_bad_override_is_a_config_error(text):
    with pytest.raises(ConfigError, match="--set"):
        parse_override(text)


def test_overrides_validate_like_the_file(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    exp = load_config(path, ("optimizer.type=sgd", "optimizer.momentum=0.9", "train.epochs=4"))
    assert exp.optimizer.type == "sgd" and exp.optimizer.momentum == 0.9 and exp.train.epochs == 4
    with pytest.raises(ConfigError, match=r"optimizer\.lr: Input should be greater than 0"):
        load_config(path, ("optimizer.lr=-1",))
    with pytest.raises(ConfigError, match=r"index 9 is out of range \(model.layers has 4 items\)"):
        load_config(path, ("model.layers[9].units=3",))


# (--set given to the GOOD config, the whole error line after "error: ")
WRONG_KEYS = [
    ("optzimizer.lr=0.1", "--set 'optzimizer.lr=0.1': optzimizer: unknown key (did you mean 'optimizer'?)"),
    ("train.epoch=3", "--set 'train.epoch=3': train.epoch: unknown key (did you mean 'epochs'?)"),
    ("train.early_stopping.patiance=3",
     "--set 'train.early_stopping.patiance=3': train.early_stopping.patiance: unknown key (did you mean 'patience'?)"),
    ("model.layers[-1].unit=10", "--set 'model.layers[-1].unit=10': model.layers[3].unit: unknown key (did you mean 'units'?)"),
    ("data.train={csv: x.csv, headr: true}",
     "--set 'data.train={csv: x.csv, headr: true}': data.train.headr: unknown key (did you mean 'header'?)"),
    ("zzz=1", "--set 'zzz=1': zzz: unknown key; remove it or check its spelling"),
    ("optimizer={type: sgd, beta1: 0.8}", "--set 'optimizer={type: sgd, beta1: 0.8}': optimizer.beta1: is a key of "
     "adam and adamw, not of sgd; replace the whole block: --set 'optimizer={type: sgd}'"),
    ("schedule={type: cosine, k: 0.1}", "--set 'schedule={type: cosine, k: 0.1}': schedule.k: is a key of exponential, "
     "inverse_time, exponential_fifth and sigmoid_complement, not of cosine; replace the whole block: "
     "--set 'schedule={type: cosine}'"),
    ("model.layers[3].type=conv2d", "--set 'model.layers[3].type=conv2d': model.layers[3].units: is a key of dense, "
     "not of conv2d; replace the whole block: --set 'model.layers[3]={type: conv2d, activation: softmax}'"),
    ("model.layers[0].activation={type: relu, alpha: 0.1}", "--set 'model.layers[0].activation={type: relu, alpha: "
     "0.1}': model.layers[0].activation.alpha: is a key of leaky_relu and elu, not of relu; replace the whole block: "
     "--set 'model.layers[0].activation={type: relu}'"),
    ("model.layers[1]={type: relu, activation: tanh}", "--set 'model.layers[1]={type: relu, activation: tanh}': "
     "model.layers[1].activation: is a key of dense, conv2d, maxpool2d, avgpool2d, flatten and dropout, not of relu; "
     "replace the whole block: --set 'model.layers[1]={type: relu}'"),
]


@pytest.mark.parametrize("override, expected", WRONG_KEYS, ids=[w[0] for w in WRONG_KEYS])
def test_an_unknown_key_names_its_set_the_closest_key_or_the_type_that_owns_it(tmp_path, monkeypatch, override,
                                                                              expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.csv").write_text("1,2,0\n")
    result = runner.invoke(app, ["validate", write_good(tmp_path), "--set", override])
    assert result.exit_code == 2, result.output
    assert f"error: {expected}" in result.stderr.splitlines(), result.stderr


def test_an_unknown_key_in_the_file_names_the_file(tmp_path):
    optimizer = {"type": "sgd", "lr": 0.1, "momentum": 0.9, "beta1": 0.9}
    path = write_good(tmp_path, optimizer=optimizer, optimzer={"lr": 1})
    with pytest.raises(ConfigError) as caught:
        load_config(path, ("train.epochs=2",))
    assert caught.value.lines == [
        f"{path}: optimizer.beta1: is a key of adam and adamw, not of sgd; replace the whole block: "
        "--set 'optimizer={type: sgd, lr: 0.1, momentum: 0.9}'",
        f"{path}: optimzer: unknown key (did you mean 'optimizer'?)",
    ]


def test_changing_a_blocks_type_names_that_set_and_a_replacement_that_validates(tmp_path):
    path = write_good(tmp_path, optimizer={"type": "sgd", "lr": 0.1, "momentum": 0.9})
    with pytest.raises(ConfigError) as caught:
        load_config(path, ("train.epochs=2", "optimizer.type=adam"))
    replacement = "optimizer={type: adam, lr: 0.1}"
    assert str(caught.value) == ("--set 'optimizer.type=adam': optimizer.momentum: is a key of sgd, not of adam; "
                                 f"replace the whole block: --set '{replacement}'")
    assert load_config(path, ("optimizer.type=adam", replacement)).optimizer.type == "adam"


def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "train.csv").write_text("1,2,3,4,0\n")
    config = with_change("data", {"train": {"csv": "train.csv"}})
    (tmp_path / "sub" / "exp.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    exp = load_config("sub/exp.yaml")
    assert exp.data.train.csv == tmp_path / "sub" / "train.csv"
    # ...while paths typed in --set are relative to the current folder.
    exp = load_config("sub/exp.yaml", ("data.train.csv=sub/train.csv",))
    assert exp.data.train.csv == tmp_path / "sub" / "train.csv"


def test_resolved_config_fills_every_default_and_reloads_identically(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    resolved = resolved_dict(load_config(path))
    assert resolved["schedule"] == {"type": "constant"} and resolved["train"]["batch_size"] == 64
    assert resolved["optimizer"] == {"type": "adam", "lr": 0.001, "beta1": 0.9, "beta2": 0.999,
                                     "eps": 1e-08, "weight_decay": 0.0, "clip_norm": None}
    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump(resolved, sort_keys=False))
    assert resolved_dict(load_config(again)) == resolved


def test_cosine_length_defaults_to_the_number_of_epochs(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(yaml.safe_dump(with_change("schedule", {"type": "cosine"})))
    assert load_config(path, ("train.epochs=7",)).schedule.T == 7


def test_every_registered_name_is_configurable(tmp_path):
    """The schema is generated from the registries: each entry validates."""
    path = tmp_path / "good.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    for name in ACTIVATIONS:
        load_config(path, (f"model.layers[0].activation={name}",))
    for name in set(LAYERS) - {"dense", "conv2d"}:
        load_config(path, (f"model.layers[1]={{type: {name}}}",))
    for name in OPTIMIZERS:
        load_config(path, (f"optimizer={{type: {name}}}",))
    for name in SCHEDULES:
        load_config(path, (f"schedule={{type: {name}}}",))


def write_good(tmp_path, **changes) -> str:
    config = copy.deepcopy(GOOD)
    config.update(changes)
    path = tmp_path / "good.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_setting_a_sub_key_of_a_short_form_expands_it(tmp_path):
    path = write_good(tmp_path, optimizer="sgd")
    exp = load_config(path, ("optimizer.lr=0.1",))
    assert exp.optimizer.type == "sgd" and exp.optimizer.lr == 0.1
    layers = copy.deepcopy(GOOD["model"]["layers"])
    layers[0]["activation"] = "leaky_relu"
    path = write_good(tmp_path, model={"layers": layers})
    exp = load_config(path, ("model.layers[0].activation.alpha=0.2",))
    assert exp.model.layers[0].activation == {"type": "leaky_relu", "alpha": 0.2}


def test_negative_indices_count_from_the_end(tmp_path):
    exp = load_config(write_good(tmp_path), ("loss=mse", "model.layers[-1].activation=linear"))
    assert exp.model.layers[-1].activation == "linear" and exp.model.layers[0].activation == "relu"


def test_a_source_of_another_kind_replaces_the_old_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("a.gz", "b.gz", "test.npz"):
        (tmp_path / name).write_bytes(b"")
    path = write_good(tmp_path, data={"dataset": "digits", "test": {"images": "a.gz", "labels": "b.gz"}})
    exp = load_config(path, ("data.test.npz=test.npz",))
    assert exp.data.test.npz == tmp_path / "test.npz" and not hasattr(exp.data.test, "images")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    exp = load_config(path, ("data.test={npz: ../test.npz}",))  # dict values: relative to cwd too
    assert exp.data.test.npz.resolve() == (tmp_path / "test.npz").resolve()


@pytest.mark.parametrize("text, message", [
    ("model.layers.x=1", "model.layers is a list; index it like model.layers[0]"),
    ("model.layers[0][1]=1", "model.layers[0] is not a list"),
    ("model.layers[-9].units=1", "index -9 is out of range (model.layers has 4 items)"),
])
def test_override_path_errors_say_what_to_do(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        load_config(write_good(tmp_path), (text,))
    assert message in str(caught.value)


def test_cross_entropy_accepts_a_softmax_layer_and_mse_any_output(tmp_path):
    layers = [*GOOD["model"]["layers"][:3], {"type": "dense", "units": 10}, {"type": "softmax"}]
    load_config(write_good(tmp_path, model={"layers": layers}))
    load_config(write_good(tmp_path), ("loss=mse", "model.layers[3].activation=tanh"))


SHIPPED = sorted(p for folder in ("configs", "experiments") for p in (ROOT / folder).glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_configs_and_every_sweep_trial_validate(path):
    load_config(path)
    plan_sweep(path)  # validates every trial of the file's sweep: section


def test_bounds_belong_to_the_formula_not_the_name(tmp_path):
    """alpha < 1 is RMSprop's; leaky_relu's alpha may exceed 1. gamma > 0 is the step decays';
    the sigmoid policy's gamma may be negative (a decay)."""
    path = write_good(tmp_path)
    load_config(path, ("model.layers[0].activation={type: leaky_relu, alpha: 1.5}",))
    load_config(path, ("schedule={type: sigmoid, gamma: -0.5}",))
    load_config(path, ("optimizer={type: sgd, momentum: 0.9, nesterov: true}",))
    load_config(path, ("train.epochs=5", "schedule={type: cosine, warmup: 4}"))
    load_config(path, ("optimizer={type: rmsprop, alpha: 0}",))
