"""Hostile input (issue 10): every bad config, override or weights file is one clear line that
names the file (and key), says what is wrong and what to do; exit 2 for config and usage errors,
1 for failures at run time; never a traceback; sizes are checked before memory is spent; nothing
already written is lost or half-written; JSON that nnrun writes is strict JSON."""

from __future__ import annotations

import copy
import errno
import json
import math
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nnrun import fileio
from nnrun.cli import app
from nnrun.config import (
    ConfigError,
    apply_override,
    load_config,
    parse_key,
    read_yaml,
    resolved_dict,
    validate,
)
from nnrun.errors import NnrunError
from nnrun.runs import create_run_dir, load_weights_into, read_weights, weights_document, write_metrics
from nnrun.train import Callback
from tests.peak_memory import PeakMemory
from tests.test_config import GOOD

runner = CliRunner()
MLP = {"name": "mlp", "data": {"dataset": "digits"},
       "model": {"layers": [{"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]},
       "train": {"epochs": 2}}
GOOD_TEXT = yaml.safe_dump(GOOD, sort_keys=False)
MiB = 1 << 20


def one_error_line(result, names: str, expected: str, exit_code: int = 2) -> str:
    """The CLI said exactly one line, `error: ...`, naming `names`, containing `expected`."""
    assert result.exit_code == exit_code, (result.exit_code, result.output)
    assert "Traceback" not in result.output and "unexpected" not in result.output, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines
    assert names in lines[0] and expected in lines[0], lines[0]
    assert len(lines[0]) < 1100, lines[0]
    return lines[0]


def strict_json(text: str):
    """json.loads as strict readers (jq, JavaScript) do it: NaN and Infinity are errors."""
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def sparse(path: Path, size: int) -> None:
    """A file of `size` bytes that takes no disk space (and would take `size` of memory to read)."""
    with open(path, "wb") as f:
        f.truncate(size)


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    """The MLP config, a run folder for it (config, summary, weights; never trained) and the
    weights document of its freshly built network."""
    from nnrun.experiment import prepare

    root = tmp_path_factory.mktemp("mlp")
    config = root / "mlp.yaml"
    config.write_text(yaml.safe_dump(MLP))
    exp = load_config(config)
    _, net = prepare(exp)
    run = root / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(resolved_dict(exp), sort_keys=False))
    (run / "summary.json").write_text(json.dumps({"name": "mlp", "status": "completed"}))
    return {"config": config, "run": run, "doc": weights_document(net), "net": net}



# -- hostile configs -------------------------------------------------------------------------
def laughs(levels: int) -> list[str]:
    """a0: nine strings; a1: nine aliases of a0; ... a{levels-1}: 9**levels strings in all."""
    items = ["a0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    items += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return items


def billion_laughs(levels: int = 9, key: str = "lols", indent: int = 0) -> str:
    pad = " " * indent
    return f"{pad}{key}:\n" + "".join(f"{pad}  {item}\n" for item in laughs(levels))


def with_good(text: str) -> str:
    return GOOD_TEXT + text


def good_with(path: str, value) -> str:
    config = copy.deepcopy(GOOD)
    node = config
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return yaml.safe_dump(config, sort_keys=False)


# (id, what the file holds: str or bytes, or a callable(tmp_path) -> either; text the error must contain)
CONFIG_CASES: list[tuple[str, str | bytes | Callable, str]] = [
    ("over 1 MiB", with_good("#" * MiB + "\n"), "limit for a config file is 1 MiB"),
    ("64 MiB of zeros", lambda tmp: sparse(tmp / "bad.yaml", 64 * MiB), "limit for a config file is 1 MiB"),
    ("billion laughs", with_good(billion_laughs()), "aliases expand to more than"),
    ("billion laughs in the sweep", with_good("sweep:\n  params:\n" + billion_laughs(7, "x", indent=4)),
     "aliases expand to more than"),
    ("recursive alias", with_good("lols: &x [1, *x]\n"), "refers to itself"),
    ("python object tag", with_good("lols: !!python/object:os.system {}\n"),
     "tag !!python/object:os.system is not allowed"),
    ("python apply tag", "name: !!python/object/apply:os.system ['echo hi']\n",
     "tag !!python/object/apply:os.system is not allowed"),
    ("custom tag", "name: !include other.yaml\n", "tag !include is not allowed"),
    ("set tag", "name: !!set {a, b}\n", "tag !!set is not allowed"),
    ("empty file", "", "the config is empty"),
    ("only comments", "# name: x\n\n   \n", "the config is empty"),
    ("top level list", "- data\n- model\n", "the top level is a list; it must be a mapping"),
    ("top level string", "hello\n", "the top level is a string; it must be a mapping"),
    ("invalid UTF-8", b"name: caf\xe9\n" + GOOD_TEXT.encode(), "not UTF-8 text (byte 0xe9 at offset 9)"),
    ("UTF-16", GOOD_TEXT.encode("utf-16"), "not UTF-8 text"),
    ("NUL character", b"name: a\x00b\n", "unacceptable character #x0000"),
    ("duplicate key", with_good("optimizer: sgd\n"), "duplicate key 'optimizer' (first on line"),
    ("duplicate nested key", good_with("train", {"epochs": 1}).replace("epochs: 1", "epochs: 1\n  epochs: 2"),
     "duplicate key 'epochs'"),
    ("deep nesting", "name: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than"),
    ("5000-digit number", good_with("seed", 1).replace("seed: 1", "seed: 1" + "0" * 5000), "digits"),
    ("key with a newline", with_good('"a\\nb": 1\n'), "'a\\nb': unknown key"),
    ("long value", good_with("name", "x" * 100_000), "name: String should have at most 64 characters"),
    ("source not a mapping", good_with("data", {"dataset": "digits", "train": 5}), "data.train: give {images, labels}"),
    ("missing data file", good_with("data", {"train": {"csv": "no/such.csv"}}), "data.train.csv: no such file"),
    ("data file is a folder", good_with("data", {"train": {"csv": "."}}), "data.train.csv: is a folder"),
    ("data path not a string", good_with("data", {"train": {"csv": [1, 2]}}), "data.train.csv: expected a file path"),
    ("invalid YAML", "name: x\nmodel:\n  layers: [\n    {type: dense\n", "invalid YAML"),
    ("two documents", GOOD_TEXT + "---\n" + GOOD_TEXT, "invalid YAML: expected a single document in the stream, but found another"),
]


def make_config(tmp_path: Path, content) -> Path:
    path = tmp_path / "bad.yaml"
    if callable(content):
        content(tmp_path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["validate", "train"])
@pytest.mark.parametrize("content, expected", [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_a_hostile_config_is_one_line_naming_the_file(tmp_path, command, content, expected):
    path = make_config(tmp_path, content)
    runs = tmp_path / "runs"
    started = time.perf_counter()
    result = runner.invoke(app, [command, str(path), *(["--runs-dir", str(runs)] if command == "train" else [])])
    assert time.perf_counter() - started < 10
    one_error_line(result, str(path), expected)
    assert not runs.exists()  # a config error creates no run folder


# (id, the --set values, text the error must contain); each names the --set it is about
OVERRIDE_CASES = [
    ("alias bomb", ["sweep.params.x={" + ", ".join(laughs(8)) + "}"], "aliases expand to more than"),
    ("not KEY=VALUE", ["optimizer.lr"], "expected KEY=VALUE"),
    ("empty key", ["=3"], "is not a dotted key"),
    ("index out of range", ["model.layers[99].units=3"], "index 99 is out of range"),
    ("unsafe tag", ["name=!!python/object/apply:os.system [ls]"], "tag !!python/object/apply:os.system is not allowed"),
    ("newline in value", ["name=a\nb"], "name: String should match pattern"),
]


@pytest.mark.parametrize("sets, expected", [c[1:] for c in OVERRIDE_CASES], ids=[c[0] for c in OVERRIDE_CASES])
def test_a_hostile_override_is_one_line(tmp_path, sets, expected):
    path = tmp_path / "good.yaml"
    path.write_text(GOOD_TEXT)
    args = ["validate", str(path)]
    for s in sets:
        args += ["--set", s]
    result = runner.invoke(app, args)
    one_error_line(result, "" if expected.startswith("name:") else "--set", expected)


def test_a_config_path_that_is_a_folder(tmp_path):
    one_error_line(runner.invoke(app, ["validate", str(tmp_path)]), str(tmp_path), "is a folder")


def test_a_file_name_with_a_newline_stays_on_one_line(tmp_path):
    path = tmp_path / "two\nlines.yaml"
    one_error_line(runner.invoke(app, ["validate", str(path)]), "two\\nlines.yaml", "no such config file")


def test_size_is_checked_before_reading(tmp_path):
    path = tmp_path / "big.yaml"
    sparse(path, 256 * MiB)
    with PeakMemory() as peak, pytest.raises(ConfigError, match="limit for a config file is 1 MiB"):
        read_yaml(path)
    assert peak.bytes < 8 * MiB


def test_special_files_are_read_no_further_than_the_limit():
    with pytest.raises(ConfigError, match="limit for a config file is 1 MiB"):
        read_yaml(Path("/dev/zero"))


def test_an_alias_bomb_is_refused_quickly(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(with_good(billion_laughs(12)))
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="aliases expand to more than"):
        load_config(path)
    assert time.perf_counter() - started < 2


def test_modest_anchors_aliases_and_merge_keys_still_work(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text("""\
name: anchors
data: {dataset: digits}
model:
  layers:
    - &conv {type: conv2d, filters: 4, kernel_size: 3, padding: 1, activation: &act relu}
    - <<: *conv
      filters: 8
    - {type: maxpool2d}
    - {type: flatten}
    - {type: dense, units: 16, activation: *act}
    - {type: dense, units: 10, activation: softmax}
""")
    exp = load_config(path)
    assert [layer.type for layer in exp.model.layers][:2] == ["conv2d", "conv2d"]
    assert exp.model.layers[1].filters == 8 and exp.model.layers[1].padding == 1
    assert exp.model.layers[4].activation == "relu"


def test_a_date_like_name_stays_a_string(tmp_path):
    path = tmp_path / "dated.yaml"
    path.write_text(good_with("name", "x").replace("name: x", "name: 2025-01-31"))
    assert load_config(path).name == "2025-01-31"



# -- hostile weights files -------------------------------------------------------------------
def edit(change: Callable[[dict], None]) -> Callable[[dict], bytes]:
    """A weights file: the good document with `change` applied to (a copy of) it."""
    def make(doc: dict) -> bytes:
        doc = copy.deepcopy(doc)
        change(doc)
        return json.dumps(doc).encode()
    return make


def dense(doc: dict) -> dict:
    return doc["layers"][1]["params"]


def setter(target: Callable[[dict], dict], key: str, value) -> Callable[[dict], None]:
    return lambda doc: target(doc).__setitem__(key, value)


def deleter(target: Callable[[dict], dict], key: str) -> Callable[[dict], None]:
    return lambda doc: target(doc).__delitem__(key)


def raw(text: str | bytes) -> Callable[[dict], bytes]:
    return lambda doc: text.encode() if isinstance(text, str) else text


def top(doc: dict) -> dict:
    return doc


def layer1(doc: dict) -> dict:
    return doc["layers"][1]


def w(doc: dict) -> dict:
    return doc["layers"][1]["params"]["W"]


def nan_at(i: int, value: float) -> Callable[[dict], None]:
    def change(doc):
        w(doc)["data"][i] = value
    return change


def truncated(doc: dict) -> bytes:
    return json.dumps(doc).encode()[:5000]


def padded(doc: dict) -> bytes:
    return json.dumps(doc).encode() + b" " * (3 * MiB)


# (id, the weights file's bytes made from the good document, text the error must contain)
WEIGHTS_CASES: list[tuple[str, Callable[[dict], bytes], str]] = [
    ("truncated JSON", truncated, "not valid JSON"),
    ("empty file", raw(""), "not valid JSON"),
    ("not JSON", raw("W = [1, 2]"), "not valid JSON"),
    ("invalid UTF-8", raw(b'{"format": "nnrun.weights\xff"}'), "not UTF-8"),
    ("deeply nested", raw("[" * 100_000 + "]" * 100_000), "not valid JSON"),
    ("5000-digit number", raw('{"version": 1' + "0" * 5000 + "}"), "not valid JSON"),
    ("a list", raw("[1, 2, 3]"), "not an nnrun weights file"),
    ("wrong format", edit(setter(top, "format", "keras")), "not an nnrun weights file"),
    ("wrong version", edit(setter(top, "version", 7)), "weights format version 7 is not supported"),
    ("unknown dtype", edit(setter(top, "dtype", "float128")), "dtype: 'float128' is not float32 or float64"),
    ("no layers", edit(deleter(top, "layers")), "layers: missing"),
    ("layers a string", edit(setter(top, "layers", "dense")), "layers: expected a list, got a string"),
    ("no input shape", edit(deleter(top, "input_shape")), "input_shape: missing"),
    ("input shape of strings", edit(setter(top, "input_shape", ["1", "8", "8"])),
     "input_shape: expected a list of whole numbers"),
    ("layer a number", edit(lambda doc: doc["layers"].__setitem__(1, 3)), "layers[1]: expected an object, got a number"),
    ("layer without type", edit(deleter(layer1, "type")), "layers[1].type: missing"),
    ("layer without params", edit(deleter(layer1, "params")), "layers[1].params: missing"),
    ("params a list", edit(setter(layer1, "params", [1, 2])), "layers[1].params: expected an object, got a list"),
    ("param without shape", edit(deleter(w, "shape")), "layers[1].params.W.shape: missing"),
    ("param without data", edit(deleter(w, "data")), "layers[1].params.W.data: missing"),
    ("shape a string", edit(setter(w, "shape", "64, 10")), "layers[1].params.W.shape: expected a list"),
    ("negative shape", edit(setter(w, "shape", [-64, -10])), "layers[1].params.W.shape: expected a list of whole numbers"),
    ("data a string", edit(setter(w, "data", "0.1 0.2")), "layers[1].params.W.data: expected a list, got a string"),
    ("data a single number", edit(setter(dense, "b", {"shape": [1], "data": 0.5})),
     "layers[1].params.b.data: expected a list, got a number"),
    ("data of strings", edit(lambda doc: w(doc).__setitem__("data", [str(v) for v in w(doc)["data"]])),
     "layers[1].params.W.data: expected a flat list of numbers"),
    ("data with null", edit(nan_at(3, None)), "layers[1] (dense) W: 1 value is not a finite float32 number"),
    ("nested data", edit(lambda doc: w(doc).__setitem__("data", [w(doc)["data"]])),
     "layers[1].params.W.data: expected a flat list of numbers"),
    ("data too short", edit(lambda doc: w(doc)["data"].pop()), "layers[1].params.W: 639 values for shape [64, 10] (640 needed)"),
    ("data too long", edit(lambda doc: w(doc)["data"].append(0.0)), "641 values for shape [64, 10] (640 needed)"),
    ("NaN", edit(nan_at(5, math.nan)), "layers[1] (dense) W: 1 value is not a finite float32 number"),
    ("infinity", edit(nan_at(5, math.inf)), "layers[1] (dense) W: 1 value is not a finite float32 number"),
    ("too large for float32", edit(nan_at(5, 1e300)), "layers[1] (dense) W: 1 value is not a finite float32 number"),
    ("extra parameter", edit(setter(dense, "gamma", {"shape": [1], "data": [1.0]})),
     "layer 1 (dense) has a parameter 'gamma' that the model does not"),
    ("missing parameter", edit(deleter(dense, "b")), "layer 1 (dense) has no parameter 'b' in the file"),
    ("wrong layer type", edit(setter(layer1, "type", "conv2d")), "layer 1 is conv2d in the file but dense"),
    ("far too large", padded, "weights for a model of 650 parameters take at most 1.0 MiB"),
]


@pytest.mark.parametrize("command", ["train", "evaluate"])
@pytest.mark.parametrize("make, expected", [c[1:] for c in WEIGHTS_CASES], ids=[c[0] for c in WEIGHTS_CASES])
def test_a_hostile_weights_file_is_one_line_naming_the_file(mlp, tmp_path, command, make, expected):
    runs = tmp_path / "runs"
    if command == "train":
        path = tmp_path / "weights.json"
        args = ["train", str(mlp["config"]), "--init-weights", str(path), "--runs-dir", str(runs)]
    else:
        run = tmp_path / "run"
        run.mkdir()
        for name in ("config.yaml", "summary.json"):
            (run / name).write_bytes((mlp["run"] / name).read_bytes())
        path = run / "weights.json"
        args = ["evaluate", str(run)]
    path.write_bytes(make(mlp["doc"]))
    one_error_line(runner.invoke(app, args), str(path), expected)
    assert not runs.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        ["weights.json"] if command == "train" else ["weights.json", "config.yaml", "summary.json"])


def test_a_weights_file_too_large_for_its_model_is_refused_before_reading(mlp, tmp_path):
    path = tmp_path / "weights.json"
    sparse(path, 256 * MiB)
    with PeakMemory() as peak, pytest.raises(ConfigError, match="weights for a model of 650 parameters take at most 1.0 MiB"):
        load_weights_into(mlp["net"], path)
    assert peak.bytes < 8 * MiB


def test_good_weights_still_load_and_round_trip(mlp, tmp_path):
    path = tmp_path / "weights.json"
    path.write_text(json.dumps(mlp["doc"], indent=2))  # pretty-printed is fine too
    doc = read_weights(path)
    assert doc["arrays"]["layers.1.W"].shape == (64, 10) and doc["arrays"]["layers.1.W"].dtype == np.float32
    before = mlp["net"].get_weights()
    load_weights_into(mlp["net"], path)
    for k, v in mlp["net"].get_weights().items():
        np.testing.assert_array_equal(v, before[k])


def test_weights_with_non_finite_values_are_written_as_strict_json_and_refused_on_reading(mlp, tmp_path):
    from nnrun.runs import write_weights

    net = copy.deepcopy(mlp["net"])
    net.layers[1].params["W"][0, 0] = math.nan
    path = tmp_path / "weights.json"
    write_weights(path, net)
    assert strict_json(path.read_text())["layers"][1]["params"]["W"]["data"][0] is None
    with pytest.raises(ConfigError, match=r"layers\[1\] \(dense\) W: 1 value is not a finite float32 number"):
        read_weights(path)



# -- JSON that strict readers accept ---------------------------------------------------------
def test_write_json_writes_null_for_nan_and_infinity(tmp_path):
    path = tmp_path / "x.json"
    fileio.write_json(path, {"a": math.nan, "b": [math.inf, 1.5, -math.inf], "c": {"d": np.float64("nan")},
                             "e": (1, math.nan)})
    assert strict_json(path.read_text()) == {"a": None, "b": [None, 1.5, None], "c": {"d": None}, "e": [1, None]}


def test_metrics_with_non_finite_values_are_strict_json(tmp_path):
    rows = [{"epoch": 1, "lr": 0.1, "train_loss": math.inf, "train_accuracy": 0.1, "val_loss": math.nan,
             "val_accuracy": None, "seconds": 0.5}]
    write_metrics(tmp_path, rows)
    assert strict_json((tmp_path / "metrics.json").read_text())[0]["val_loss"] is None
    assert (tmp_path / "metrics.csv").read_text().splitlines()[1].startswith("1,0.1,inf,0.1,")


class OverflowAtTheEndOfEpoch2(Callback):
    """The last step of epoch 2 overflows the weights: epoch 2 never counts (divergence), and
    the run's last row, epoch 1, is what the files report."""

    def on_batch_end(self, state, loss, accuracy):
        if state.epoch == 2 and state.batch == state.batches:
            for p in state.net.parameters().values():
                p[...] = np.inf


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf - inf, on purpose
def test_a_diverged_run_writes_strict_json_everywhere(tmp_path):
    from nnrun import plots
    from nnrun.evaluate import list_runs
    from nnrun.experiment import train_run
    from nnrun.runs import read_rows

    config = tmp_path / "mlp.yaml"
    config.write_text(yaml.safe_dump(MLP))
    run = train_run(load_config(config, ("train.epochs=3",)), tmp_path / "runs", callbacks=[OverflowAtTheEndOfEpoch2()])
    summary = strict_json((run / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["final"]["epoch"] == 1
    assert [r["epoch"] for r in strict_json((run / "metrics.json").read_text())] == [1]
    for path in run.glob("*.json"):
        strict_json(path.read_text())
    assert list_runs(tmp_path / "runs")[0]["status"] == "diverged"  # null reads as missing
    plots.learning_curves(read_rows(run), tmp_path / "curves.png", best_epoch=1, monitor="val_loss")



# -- run folders and writes ------------------------------------------------------------------
def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path):
    now = time.time()
    barrier = threading.Barrier(8)
    made: list[Path] = []

    def start():
        barrier.wait()
        made.append(create_run_dir(tmp_path / "runs", "same", now=now))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 8 and all(p.is_dir() for p in made)
    assert sorted(p.name for p in made)[0] == time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + "-same"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores permissions")
def test_a_read_only_runs_folder_is_found_before_training(mlp, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    runs.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        result = runner.invoke(app, ["train", str(mlp["config"]), "--runs-dir", str(runs)])
        one_error_line(result, str(runs), "cannot create a run folder there")
        assert list(runs.iterdir()) == []
    finally:
        runs.chmod(0o700)


@pytest.mark.parametrize("under", ["the file itself", "a folder inside it"])
def test_a_runs_folder_under_a_regular_file_is_found_before_training(mlp, tmp_path, under):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file\n")
    runs = blocker if under == "the file itself" else blocker / "runs"
    result = runner.invoke(app, ["train", str(mlp["config"]), "--runs-dir", str(runs)])
    one_error_line(result, str(runs), "cannot create a run folder there")
    assert blocker.read_text() == "a regular file\n" and sorted(tmp_path.iterdir()) == [blocker]


def test_a_run_folder_where_no_file_can_be_made_is_removed_again(tmp_path, monkeypatch):
    """What a read-only folder does to a user who is not root (mkdir may still succeed on some
    file systems, e.g. a full quota): simulated, since the tests run as root."""
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    with pytest.raises(ConfigError, match="cannot create a run folder there .Read-only file system."):
        create_run_dir(tmp_path / "runs", "x")
    assert list((tmp_path / "runs").iterdir()) == []



@pytest.mark.parametrize("writes_before_the_disk_fills", [0, 1, 5, 8, 11])
def test_a_full_disk_keeps_every_file_complete_and_says_so(mlp, tmp_path, monkeypatch, writes_before_the_disk_fills):
    written: dict[Path, bytes] = {}
    calls: list[Path] = []
    real_commit = fileio.commit

    def commit(tmp: Path, path: Path) -> None:
        calls.append(path)
        if len(calls) > writes_before_the_disk_fills:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        data = Path(tmp).read_bytes()
        real_commit(tmp, path)
        written[path] = data

    monkeypatch.setattr(fileio, "commit", commit)
    runs = tmp_path / "runs"
    result = runner.invoke(app, ["train", str(mlp["config"]), "--runs-dir", str(runs), "-q"])
    line = one_error_line(result, str(runs), "No space left on device", exit_code=1)
    assert "every file already written keeps its last complete version" in line
    for path, data in written.items():
        assert path.read_bytes() == data, path
    leftovers = [p for p in runs.rglob("*") if p.is_file() and p not in written]
    assert leftovers == []  # no temporary or half-written file


def test_a_write_error_names_the_file_and_keeps_the_old_version(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    fileio.write_json(path, {"status": "completed"})

    def full(tmp, target):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio, "commit", full)
    with pytest.raises(NnrunError) as caught:
        fileio.write_json(path, {"status": "failed"})
    assert caught.value.exit_code == 1 and str(path) in str(caught.value)
    assert json.loads(path.read_text()) == {"status": "completed"}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]



# -- properties: whatever the input, load_config succeeds or raises ConfigError --------------
KNOWN_KEYS = ["name", "seed", "data", "model", "loss", "optimizer", "schedule", "train", "sweep", "dataset",
              "test", "validation_split", "scale", "csv", "npz", "images", "labels", "image_shape", "layers",
              "dtype", "type", "units", "filters", "kernel_size", "padding", "stride", "activation", "init",
              "rate", "lr", "momentum", "epochs", "batch_size", "early_stopping", "monitor", "params", "T"]


LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(), st.text(max_size=12),
                   st.sampled_from(["relu", "dense", "adam", "sgd", "digits", "cosine", "same", "auto", "x.csv"]))


VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=8) | st.sampled_from(KNOWN_KEYS), inner, max_size=3), max_leaves=6)


def key_paths(node, prefix: tuple = ()) -> list[tuple]:
    """Every path into node: dict keys and list indices."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    paths = []
    for k, v in items:
        paths += [(*prefix, k), *key_paths(v, (*prefix, k))]
    return paths


def dotted_path(path: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


# Keys of the schema that GOOD does not use, so that mutations reach them too.
SCHEMA_PATHS = ["data.train", "data.test", "data.train.csv", "data.train.images", "data.test.npz",
                "data.test.image_shape", "data.scale", "train.early_stopping", "train.early_stopping.monitor",
                "train.plateau_monitor", "schedule", "schedule.type", "schedule.T", "sweep", "sweep.params",
                "sweep.params.x", "sweep.metric", "model.dtype", "model.layers[0].init",
                "model.layers[0].init_params", "model.layers[-1].activation.type", "loss", "seed", "name"]


def mutate(config: dict, path: str, value) -> None:
    """config[path] = value (or deleted, for DROP), when the path can exist in config."""
    try:
        keys = parse_key(path)
        if value is DROP:
            apply_override(config, keys, None, path)  # makes sure the parents are there...
            parent = config
            for k in keys[:-1]:
                parent = parent[k]
            del parent[keys[-1]]  # ...then drops the key
        else:
            apply_override(config, keys, value, path)
    except (ConfigError, KeyError, IndexError, TypeError):
        pass  # a path through a value that is not a mapping or list: no mutation


DROP = object()


@st.composite
def mutated_configs(draw) -> dict:
    """GOOD with 1-4 random changes: a key dropped, a value replaced or added, anywhere in GOOD
    (as it is by then) or at one of the schema's other keys."""
    config = copy.deepcopy(GOOD)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(SCHEMA_PATHS) | st.sampled_from([dotted_path(p) for p in key_paths(config)]))
        mutate(config, path, draw(st.just(DROP) | VALUES))
    return config


@st.composite
def overrides(draw) -> str:
    key = draw(st.sampled_from([dotted_path(p) for p in key_paths(GOOD)] + SCHEMA_PATHS)
               | st.sampled_from(KNOWN_KEYS) | st.text(max_size=12))
    value = draw(st.text(max_size=16) | VALUES.map(json.dumps) | VALUES.map(yaml.safe_dump))
    return f"{key}={value}"


PROPERTY_SETTINGS = settings(derandomize=True, database=None, deadline=None, max_examples=400,
                             suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("property")


def loads_or_config_error(path: Path, sets: tuple[str, ...] = ()) -> None:
    try:
        load_config(path, sets)
        event("valid")
    except ConfigError as e:
        event("ConfigError")
        assert str(e).strip(), "an empty message"


@PROPERTY_SETTINGS
@given(config=mutated_configs(), sets=st.lists(overrides(), max_size=3))
def test_any_mutated_config_loads_or_is_a_config_error(folder, config, sets):
    path = folder / "mutated.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    loads_or_config_error(path, tuple(sets))


@PROPERTY_SETTINGS
@given(config=mutated_configs())
def test_any_mutated_mapping_validates_or_is_a_config_error(folder, config):
    try:
        validate(config, "mutated.yaml", folder)
        event("valid")
    except ConfigError:
        event("ConfigError")


@PROPERTY_SETTINGS
@given(text=st.text(max_size=200) | st.binary(max_size=200) | st.sampled_from(
    [GOOD_TEXT[:n] for n in range(0, len(GOOD_TEXT), 7)]))
def test_any_file_content_loads_or_is_a_config_error(folder, text):
    path = folder / "random.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    loads_or_config_error(path)


def test_terminal_escape_codes_in_an_error_are_shown_as_text(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(MLP))
    result = CliRunner().invoke(app, ["validate", str(config), "--set", "evil\x1b[2J\x07=1"])
    assert result.exit_code == 2
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "evil\\x1b[2J\\x07" in result.output
    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "run\x1b[2J")])
    assert result.exit_code == 2 and "\x1b" not in result.output and "run\\x1b[2J" in result.output
