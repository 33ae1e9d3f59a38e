"""`nnrun train` end to end on small generated data: the run folder, its files, reproducibility."""

from __future__ import annotations

import csv
import json
import math
import re

import matplotlib.image as mpimg
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nnrun.builder import build_network, load_data
from nnrun.cli import app
from nnrun.config import load_config
from nnrun.experiment import hopeless_findings, likely_cause
from nnrun.nn import make_loss
from nnrun.runs import create_run_dir, load_weights_into, read_weights
from nnrun.train import evaluate_arrays
from tests.synthetic import blob_images, write_idx

runner = CliRunner()

SMALL_CNN = [
    {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
    {"type": "maxpool2d", "pool_size": 2},
    {"type": "flatten"},
    {"type": "dropout", "rate": 0.1},
    {"type": "dense", "units": 3, "activation": "softmax"},
]


def write_sources(folder, kind: str) -> dict:
    """Write train and test files in the given format; return the config's data section."""
    (xtr, ytr), (xte, yte) = blob_images(120, seed=1), blob_images(30, seed=2)
    if kind == "idx":
        for split, x, y in (("train", xtr, ytr), ("test", xte, yte)):
            write_idx(folder / f"{split}-images.gz", x, compress=True)
            write_idx(folder / f"{split}-labels.gz", y, compress=True)
        return {"train": {"images": "train-images.gz", "labels": "train-labels.gz"},
                "test": {"images": "test-images.gz", "labels": "test-labels.gz"}}
    if kind == "csv":
        for split, x, y in (("train", xtr, ytr), ("test", xte, yte)):
            rows = np.column_stack([y, x.reshape(len(x), -1)])
            np.savetxt(folder / f"{split}.csv", rows, fmt="%d", delimiter=",")
        return {"train": {"csv": "train.csv", "label_column": "first"},
                "test": {"csv": "test.csv", "label_column": "first"}}
    for split, x, y in (("train", xtr, ytr), ("test", xte, yte)):
        np.savez(folder / f"{split}.npz", images=x, labels=y)
    return {"train": {"npz": "train.npz", "x": "images", "y": "labels"},
            "test": {"npz": "test.npz", "x": "images", "y": "labels"}}


def write_config(folder, kind="idx", **top) -> str:
    data = write_sources(folder, kind)
    config = {"name": "tiny", "seed": 3, "data": {**data, "validation_split": 0.2},
              "model": {"layers": SMALL_CNN}, "optimizer": {"type": "adam", "lr": 0.01},
              "train": {"epochs": 3, "batch_size": 16}, **top}
    path = folder / "exp.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def train(*args: str):
    result = runner.invoke(app, ["train", *args])
    return result, result.stdout.strip().splitlines()


def assert_png(path):
    image = mpimg.imread(path)
    assert image.shape[0] >= 300 and image.shape[1] >= 400


@pytest.mark.parametrize("kind", ["idx", "csv", "npz"])
def test_train_writes_a_complete_run_folder(tmp_path, kind):
    config = write_config(tmp_path, kind)
    result, lines = train(config, "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / lines[-1].split("/")[-1]
    assert lines[-1].endswith(run_dir.name) and re.fullmatch(r"\d{8}-\d{6}-tiny", run_dir.name)
    assert "\x1b[" not in result.output  # not a terminal: plain lines only
    assert sum(line.startswith("epoch ") for line in lines) == 3

    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved["seed"] == 3 and resolved["train"]["shuffle"] is True  # defaults filled in
    assert resolved["optimizer"]["beta1"] == 0.9

    metrics = json.loads((run_dir / "metrics.json").read_text())
    with open(run_dir / "metrics.csv") as f:
        csv_rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in metrics] == [1, 2, 3] and len(csv_rows) == 3
    assert list(csv_rows[0]) == ["epoch", "lr", "train_loss", "train_accuracy", "val_loss",
                                 "val_accuracy", "seconds"]
    assert float(csv_rows[2]["val_loss"]) == pytest.approx(metrics[2]["val_loss"])

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 3
    assert summary["final"] == metrics[-1]
    assert 0 <= summary["test_accuracy"] <= 1 and summary["test_loss"] > 0
    assert set(summary["versions"]) == {"python", "numpy", "nnrun"}
    assert summary["best"]["epoch"] == summary["best_epoch"]

    weights = json.loads((run_dir / "weights.json").read_text())
    assert weights["format"] == "nnrun.weights" and weights["version"] == 1
    assert weights["input_shape"] == [1, 8, 8]
    assert [l["type"] for l in weights["layers"]] == [l["type"] for l in SMALL_CNN]
    assert weights["layers"][0]["params"]["W"]["shape"] == [4, 1, 3, 3]
    assert weights["layers"][1]["params"] == {}

    for name in ("learning_curves.png", "lr_schedule.png"):
        assert_png(run_dir / "plots" / name)
    assert not list(run_dir.rglob(".*"))  # no temp files left behind


def test_learning_happens_and_test_accuracy_matches_the_weights(tmp_path):
    config = write_config(tmp_path, "idx", train={"epochs": 8, "batch_size": 16})
    result, lines = train(config, "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / lines[-1].split("/")[-1]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.9  # the blobs are easy

    # Reload weights.json into a freshly built network: the same test accuracy, exactly.
    exp = load_config(run_dir / "config.yaml")
    data = load_data(exp)
    net = build_network(exp, data.input_shape, data.num_classes)
    load_weights_into(net, run_dir / "weights.json")
    loss, acc, _ = evaluate_arrays(net, make_loss(exp.loss), *data.test)
    assert acc == summary["test_accuracy"] and loss == summary["test_loss"]


def test_float32_weights_round_trip_exactly(tmp_path):
    config = write_config(tmp_path)
    result, lines = train(config, "--runs-dir", str(tmp_path / "runs"), "--set", "train.epochs=1")
    run_dir = tmp_path / "runs" / lines[-1].split("/")[-1]
    exp = load_config(run_dir / "config.yaml")
    net = build_network(exp, (1, 8, 8), 3)
    load_weights_into(net, run_dir / "weights.json")
    from nnrun.runs import write_weights

    saved = read_weights(run_dir / "weights.json")  # the classes and input preparation go along
    write_weights(tmp_path / "again.json", net, {"class_names": saved["class_names"], "input": saved["input"]})
    assert (tmp_path / "again.json").read_bytes() == (run_dir / "weights.json").read_bytes()
    arrays = read_weights(run_dir / "weights.json")["arrays"]
    assert all(a.dtype == np.float32 for a in arrays.values())


def test_same_seed_gives_identical_weights_and_metrics(tmp_path):
    config = write_config(tmp_path)
    runs = []
    for _ in range(2):
        result, lines = train(config, "--runs-dir", str(tmp_path / "runs"), "--quiet")
        assert result.exit_code == 0 and result.output == ""
        runs.append(sorted((tmp_path / "runs").iterdir())[-1])
    assert runs[0] != runs[1]
    assert (runs[0] / "weights.json").read_bytes() == (runs[1] / "weights.json").read_bytes()
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    m0, m1 = (json.loads((r / "metrics.json").read_text()) for r in runs)
    assert strip(m0) == strip(m1)
    # A different seed gives different weights.
    train(config, "--runs-dir", str(tmp_path / "other"), "--seed", "4", "--quiet")
    other = next((tmp_path / "other").iterdir())
    assert (other / "weights.json").read_bytes() != (runs[0] / "weights.json").read_bytes()


def test_overrides_name_and_seed_land_in_config_yaml(tmp_path):
    config = write_config(tmp_path)
    result, lines = train(config, "--runs-dir", str(tmp_path / "runs"), "--set", "optimizer.lr=0.003",
                          "--set", "train.epochs=2", "--set", "model.layers[0].filters=5",
                          "--name", "renamed", "--seed", "11")
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / lines[-1].split("/")[-1]
    assert run_dir.name.endswith("-renamed")
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved["optimizer"]["lr"] == 0.003 and resolved["train"]["epochs"] == 2
    assert resolved["model"]["layers"][0]["filters"] == 5 and resolved["seed"] == 11
    assert len(json.loads((run_dir / "metrics.json").read_text())) == 2


def test_init_weights_starts_from_a_weights_file(tmp_path):
    config = write_config(tmp_path)
    _, lines = train(config, "--runs-dir", str(tmp_path / "a"), "--set", "train.epochs=4")
    first = tmp_path / "a" / lines[-1].split("/")[-1]
    # A rate too small to move float32 weights: the run must reproduce the first one's accuracy.
    result, lines = train(config, "--runs-dir", str(tmp_path / "b"), "--init-weights",
                          str(first / "weights.json"), "--set", "optimizer={type: sgd, lr: 1.0e-30}",
                          "--set", "train.epochs=1")
    assert result.exit_code == 0, result.output
    second = tmp_path / "b" / lines[-1].split("/")[-1]
    s1, s2 = (json.loads((d / "summary.json").read_text()) for d in (first, second))
    assert s2["test_accuracy"] == s1["test_accuracy"]

    result, _ = train(config, "--runs-dir", str(tmp_path / "c"), "--init-weights",
                      str(first / "weights.json"), "--set", "model.layers[0].filters=6")
    assert result.exit_code == 2
    assert "weights do not match the model" in result.output and "layer 0 (conv2d) W" in result.output
    assert not (tmp_path / "c").exists()  # nothing half-made


def test_early_stopping_restores_the_best_weights(tmp_path):
    # min_delta so large that no epoch after the first counts as an improvement; patience 2
    # means, as in Keras and as for reduce_on_plateau, two epochs without improvement: stop after 3.
    config = write_config(tmp_path, train={"epochs": 10, "batch_size": 16, "early_stopping": {
        "monitor": "val_loss", "patience": 2, "min_delta": 100.0}})
    result, lines = train(config, "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / lines[-1].split("/")[-1]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "stopped_early" and summary["epochs_run"] == 3
    assert summary["best_epoch"] == 1 and summary["test_weights"] == "best"
    other = runner.invoke(app, ["train", config, "--runs-dir", str(tmp_path / "plain"), "--set",
                                "train.early_stopping=null", "--set", "train.epochs=1"])
    assert other.exit_code == 0
    plain = json.loads(next((tmp_path / "plain").iterdir()).joinpath("summary.json").read_text())
    assert plain["test_weights"] == "final"


def test_reduce_on_plateau_lowers_the_rate(tmp_path):
    config = write_config(tmp_path, schedule={"type": "reduce_on_plateau", "factor": 0.5,
                                              "patience": 0, "min_delta": 100.0},
                          train={"epochs": 4, "batch_size": 16})
    _, lines = train(config, "--runs-dir", str(tmp_path / "runs"))
    run_dir = tmp_path / "runs" / lines[-1].split("/")[-1]
    lrs = [r["lr"] for r in json.loads((run_dir / "metrics.json").read_text())]
    # epoch 1 sets the best; every later epoch fails to improve by min_delta and halves the rate
    assert lrs == pytest.approx([0.01, 0.01, 0.005, 0.0025])


def test_divergence_is_recorded_and_exits_1(tmp_path):
    config = write_config(tmp_path, optimizer={"type": "sgd", "lr": 1e30}, loss="mse")
    result, _ = train(config, "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 1
    assert "diverged" in result.output and "Traceback" not in result.output
    summary = json.loads(next((tmp_path / "runs").iterdir()).joinpath("summary.json").read_text())
    assert summary["status"] == "diverged" and "optimizer.lr" in summary["error"]
    # The weights kept are those of the last complete epoch: here, diverging in epoch 1, the
    # initial ones, not the blown-up ones.
    run_dir = next((tmp_path / "runs").iterdir())
    arrays = read_weights(run_dir / "weights.json")["arrays"]
    exp = load_config(run_dir / "config.yaml")
    initial = build_network(exp, (1, 8, 8), 3).get_weights()
    assert all(np.array_equal(arrays[k], initial[k]) for k in initial)


def test_named_dataset_downloads_from_a_local_mirror(tmp_path, served_mnist, monkeypatch):
    monkeypatch.setenv("NNRUN_MIRRORS_MNIST", served_mnist["good"])
    monkeypatch.setenv("NNRUN_DATA_DIR", str(tmp_path / "cache"))
    config = {"name": "dl", "data": {"dataset": "mnist", "validation_split": 0},
              "model": {"layers": [{"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]},
              "train": {"epochs": 1}}
    (tmp_path / "dl.yaml").write_text(yaml.safe_dump(config))
    result, lines = train(str(tmp_path / "dl.yaml"), "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cache" / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()
    summary = json.loads((tmp_path / "runs" / lines[-1].split("/")[-1] / "summary.json").read_text())
    assert summary["data"]["train"] == "mnist"


def test_run_folder_names_get_a_suffix_when_taken(tmp_path):
    made = [create_run_dir(tmp_path, "same", now=1_700_000_000.0) for _ in range(3)]
    assert made[0].name.endswith("-same") and all(p.is_dir() for p in made)
    assert made[1].name == made[0].name + "-2" and made[2].name == made[0].name + "-3"


def test_validate_prints_the_model_summary(tmp_path):
    config = write_config(tmp_path)
    result = runner.invoke(app, ["validate", config])
    assert result.exit_code == 0, result.output
    # conv 4*(1*3*3)+4 = 40; dense (4*4*4)*3+3 = 195
    assert "40" in result.output and "195" in result.output and "235" in result.output
    assert "valid" in result.output.splitlines()[-1]


def test_live_display_on_a_terminal(tmp_path):
    """On a terminal the reporter draws a progress bar and still prints one line per epoch."""
    import io

    from rich.console import Console

    from nnrun.cli.live import LiveDisplay
    from nnrun.train import TrainState

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100)
    display = LiveDisplay(console)
    state = TrainState(net=None, epochs=2, batches=3, lr=0.01)
    for epoch in (1, 2):
        state.epoch = epoch
        display.on_epoch_begin(state)
        for b in (1, 2, 3):
            state.batch, state.train_loss, state.train_accuracy = b, 0.5, 0.75
            display.on_batch_end(state, 0.5, 0.75)
        display.on_epoch_end(state, {"epoch": epoch, "lr": 0.01, "train_loss": 0.5, "train_accuracy": 0.75,
                                     "val_loss": 0.6, "val_accuracy": 0.7, "seconds": 0.1})
    display.on_train_end(state)
    text = buffer.getvalue()
    assert "\x1b[" in text  # control codes: a live display
    assert "epoch 2/2" in text and "val_acc 70.00%" in text


def test_run_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    config = write_config(tmp_path)
    _, lines = train(config, "--runs-dir", str(tmp_path / "runs"), "--set", "train.epochs=1")
    run_dir = tmp_path / "runs" / lines[-1].split("/")[-1]
    mask = os.umask(0)
    os.umask(mask)
    for name in ("config.yaml", "weights.json", "summary.json", "report.html"):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o666 & ~mask


def fitted(tmp_path, *overrides, callbacks=()):
    from nnrun.experiment import fit_experiment

    exp = load_config(write_config(tmp_path), overrides)
    data = load_data(exp)
    net = build_network(exp, data.input_shape, data.num_classes)
    return net, fit_experiment(exp, net, data, callbacks)


def test_plateau_monitor_falls_back_to_the_matching_train_metric(tmp_path):
    net, history = fitted(tmp_path, "data.validation_split=0", "train.plateau_monitor=val_accuracy",
                          "schedule={type: reduce_on_plateau, factor: 0.5, patience: 0, min_delta: 0}",
                          "optimizer.lr=0.002", "train.epochs=6")
    # Replay the rule on the recorded train accuracy (higher is better): the rate halves after
    # every epoch that did not beat the best accuracy so far.
    lr, best, expected = 0.002, None, []
    for row in history.rows:
        expected.append(lr)
        if best is None or row["train_accuracy"] > best:
            best = row["train_accuracy"]
        else:
            lr /= 2
    assert [r["lr"] for r in history.rows] == pytest.approx(expected)
    assert history.monitor == "train_loss"


def test_ctrl_c_mid_epoch_keeps_the_last_complete_epochs_weights(tmp_path):
    from nnrun.train import Callback

    class InterruptInEpoch2(Callback):
        def on_batch_end(self, state, loss, accuracy):
            if state.epoch == 2 and state.batch == 3:
                raise KeyboardInterrupt

    net, history = fitted(tmp_path, callbacks=[InterruptInEpoch2()])
    assert history.status == "interrupted" and len(history.rows) == 1
    one_epoch, _ = fitted(tmp_path, "train.epochs=1")
    for name, w in one_epoch.get_weights().items():
        assert np.array_equal(net.get_weights()[name], w), name


def test_flat_image_shape_keeps_square_csv_features_flat(tmp_path):
    rows = np.column_stack([np.arange(40) % 2, np.random.default_rng(0).integers(0, 9, (40, 16))])
    np.savetxt(tmp_path / "train.csv", rows, fmt="%d", delimiter=",")
    layers = [{"type": "dense", "units": 2, "activation": "softmax"}]
    config = {"data": {"train": {"csv": "train.csv", "label_column": "first"}},
              "model": {"layers": layers}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["validate", str(tmp_path / "exp.yaml")])
    assert result.exit_code == 2  # 16 features look like a 4x4 image...
    assert f"{tmp_path / 'exp.yaml'}: model.layers[0] (dense): expects flat input" in result.stderr
    assert "image_shape: [features]" in result.stderr
    result = runner.invoke(app, ["validate", str(tmp_path / "exp.yaml"),
                                 "--set", "data.train.image_shape=[16]"])
    assert result.exit_code == 0, result.output  # ...unless told otherwise


# -- a run that completes but learns nothing ------------------------------------------------
@pytest.mark.parametrize("lr, cause", [(1e6, "too high (optimizer.lr=1e+06)"), (1e-7, "too low (optimizer.lr=1e-07)")])
def test_a_hopeless_run_completes_with_a_warning_and_its_likely_cause(tmp_path, lr, cause):
    config = write_config(tmp_path, optimizer={"type": "sgd", "lr": lr})
    result, lines = train(config, "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output  # it did complete
    (warning,) = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert "training went nowhere" in warning and cause in warning, warning
    assert "warning" not in result.stdout and lines[-1].endswith("-tiny")  # the folder is still last
    run_dir = tmp_path / "runs" / lines[-1].split("/")[-1]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["warnings"] == [warning.removeprefix("warning: ")]
    report = (run_dir / "report.html").read_text()
    assert 'class="warning"' in report and "training went nowhere" in report


def test_a_run_that_learns_has_no_warning(tmp_path):
    config = write_config(tmp_path)
    result, lines = train(config, "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0 and "warning" not in result.output
    summary = json.loads((tmp_path / "runs" / lines[-1].split("/")[-1] / "summary.json").read_text())
    assert summary["warnings"] == []
    assert 'class="warning"' not in (tmp_path / "runs" / lines[-1].split("/")[-1] / "report.html").read_text()


GUESS = math.log(10)  # cross-entropy of guessing each of 10 classes equally


@pytest.mark.parametrize("train_losses, val_losses, cause", [
    ([6.4e6, 5.8, 2.63, 2.56], [13.1, 2.67, 2.64, 2.54], "too high"),  # blew up in the first epoch
    ([3.353, 2.320, 2.310, 2.310], [2.3120, 2.3083, 2.3050, GUESS], "too high"),  # collapsed to guessing
    ([2.40, 2.35, 2.45, 2.38], [2.40, 2.46, 2.38, 2.44], "too high"),  # jumps about
    ([2.3667, 2.3667, 2.3666, 2.3666], [2.3473, 2.3472, 2.3472, 2.3473], "too low"),  # barely moves
    ([2.6597, 2.6350, 2.6819, 2.6423], [2.5283, 2.5276, 2.5266, 2.5266], "too low"),  # never rises
    ([2.629, 2.549, 2.531, 2.470], [2.466, 2.417, 2.366, 2.354], "too low"),  # falls, too slowly
    ([2.5], [2.4], "check the learning rate"),  # one epoch: no telling
])
def test_the_likely_cause_of_a_hopeless_run(train_losses, val_losses, cause):
    assert cause in likely_cause(train_losses, val_losses, GUESS, 0.01)


def test_hopeless_means_at_chance_no_better_than_epoch_one_or_worse_than_guessing():
    assert hopeless_findings("val", [2.0, 1.0], [0.5, 0.9], 10, GUESS) == []
    (chance,) = hopeless_findings("val", [2.0, 1.9], [0.10, 0.19], 10, GUESS)  # 10 % + a tenth of 90 %
    assert chance == "val_accuracy 19.00% is at chance (10.00% for 10 classes)"
    assert hopeless_findings("val", [2.0, 1.9], [0.10, 0.20], 10, GUESS) == []
    assert hopeless_findings("train", [2.0, 1.9], [0.5, 0.54], 2, GUESS)[0].startswith("train_accuracy 54.00%")
    (same,) = hopeless_findings("val", [1.0, 1.1], [0.6, 0.6], 10, GUESS)
    assert same.startswith("the last epoch is no better than the first (val_loss 1 -> 1.1")
    (worse,) = hopeless_findings("val", [8.0, 7.0], [0.3, 0.31], 10, GUESS)
    assert worse == "val_loss 7 is above 2.3026, the loss of guessing every class equally"
    assert "not finite" in hopeless_findings("val", [8.0, math.inf], [0.3, 0.31], 10, GUESS)[0]


# -- the live display -------------------------------------------------------------------------
def epoch_row(epoch: int, seconds: float) -> dict:
    return {"epoch": epoch, "lr": 0.01, "train_loss": 0.5, "train_accuracy": 0.75, "val_loss": 0.6,
            "val_accuracy": 0.7, "seconds": seconds}


def test_epoch_lines_keep_their_columns_and_show_sub_second_times():
    from nnrun.cli.live import epoch_line

    lines = [epoch_line(epoch_row(e, 0.0123 * e), 12) for e in range(1, 13)]
    assert lines[0].startswith("epoch  1/12  loss") and lines[11].startswith("epoch 12/12  loss")
    assert len({line.index("loss") for line in lines}) == 1
    assert lines[0].endswith("  12ms") and lines[11].endswith("  148ms")
    assert epoch_line(epoch_row(3, 1.26), 3).endswith("  1.3s") and epoch_line(epoch_row(3, 0.9996), 3).endswith("1.0s")


def test_progress_bar_shows_a_dash_until_the_first_batch_and_the_runs_time_left(monkeypatch):
    import io

    from rich.console import Console

    from nnrun.cli import live
    from nnrun.train import TrainState

    now = [100.0]
    monkeypatch.setattr(live.time, "perf_counter", lambda: now[0])
    display = live.LiveDisplay(Console(file=io.StringIO(), force_terminal=True, width=120))
    state = TrainState(net=None, epochs=10, batches=4, lr=0.01, epoch=1)
    display.on_epoch_begin(state)
    fields = display.progress.tasks[0].fields
    assert (fields["epoch"], fields["loss"], fields["acc"], fields["left"]) == ("epoch  1/10", "-", "-", "-:--:--")
    now[0] += 1.0  # a batch a second: the epoch takes 4 s, the run 40 s, 39 s of it left
    state.batch, state.train_loss, state.train_accuracy = 1, 0.51234, 0.5
    display.on_batch_end(state, 0.5, 0.5)
    fields = display.progress.tasks[0].fields
    assert (fields["loss"], fields["acc"], fields["left"]) == ("0.5123", "50.00%", "0:00:39")
    display.on_epoch_end(state, epoch_row(1, 10.0))  # a slow validation: epochs take 10 s
    state.epoch, state.batch = 2, 0
    display.on_epoch_begin(state)
    assert display.progress.tasks[0].fields["left"] == "0:01:30"  # 9 epochs of 10 s
    now[0] += 2.0
    state.batch = 2
    display.on_batch_end(state, 0.5, 0.5)
    assert display.progress.tasks[0].fields["left"] == "0:01:22"  # 2 batches of 1 s + 8 epochs of 10 s
    display.close()


def fake_threadpoolctl(monkeypatch, blas: dict) -> None:
    import sys
    import types

    fake = types.ModuleType("threadpoolctl")
    fake.threadpool_info = lambda: [{"user_api": "openmp", "num_threads": 8}, {"user_api": "blas", **blas}]
    monkeypatch.setitem(sys.modules, "threadpoolctl", fake)


def test_training_starts_with_a_line_about_data_and_model(tmp_path, monkeypatch):
    fake_threadpoolctl(monkeypatch, {"internal_api": "openblas", "architecture": "Zen", "num_threads": 1})
    config = write_config(tmp_path)
    result, lines = train(config, "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    assert lines[0] == ("data: train 96, validation 24, test 30 samples of (1, 8, 8), 3 classes; "
                        "model: 235 parameters; BLAS: openblas Zen, 1 threads")
    assert lines[1].startswith("epoch 1/3  loss")
    _, quiet = train(config, "--runs-dir", str(tmp_path / "runs"), "-q")
    assert quiet == []


def test_the_blas_library_kernel_and_threads_are_named(monkeypatch):
    from nnrun.cli.live import blas_threads

    fake_threadpoolctl(monkeypatch, {"internal_api": "openblas", "architecture": "SkylakeX", "num_threads": 2})
    assert blas_threads() == "openblas SkylakeX, 2 threads"
    fake_threadpoolctl(monkeypatch, {"internal_api": "mkl", "num_threads": 4})
    assert blas_threads() == "mkl, 4 threads"
