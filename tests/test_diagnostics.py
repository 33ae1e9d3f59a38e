"""Diagnostics while training: diagnostics.csv (checked against independent computations), the
run unchanged by them, each finding on a run built to show it, the report and the picture."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from nnrun import diagnostics as D
from nnrun.cli import app
from nnrun.config import validate
from nnrun.experiment import train_run

runner = CliRunner()


def experiment(layers: list[dict], optimizer: dict, epochs: int = 3, **data):
    config = {"name": "diag", "seed": 1, "data": {"dataset": "digits", **data},
              "model": {"layers": [{"type": "flatten"}, *layers, {"type": "dense", "units": 10, "activation": "softmax"}]},
              "optimizer": optimizer, "train": {"epochs": epochs, "batch_size": 32}}
    return validate(config, "test", None)


RELU = [{"type": "dense", "units": 64, "activation": "relu"}]
TANH = [{"type": "dense", "units": 32, "activation": "tanh"}]


def trained(tmp_path, exp, plots=False):
    run_dir = train_run(exp, tmp_path, make_plots=plots)
    return run_dir, json.loads((run_dir / "summary.json").read_text())


def csv_rows(run_dir):
    return list(csv.DictReader((run_dir / "diagnostics.csv").open()))


# -- the measures ---------------------------------------------------------------------------
def test_unit_fractions_by_their_definitions():
    y = np.zeros((5, 4))
    y[2, 1] = 0.3  # unit 1 fires once: alive
    y[:, 3] = 1.0
    assert D.dead_fraction(y) == 0.5  # units 0 and 2
    conv = np.zeros((3, 2, 4, 4))
    conv[1, 0, 3, 3] = 1e-3  # one position of one sample keeps filter 0 alive
    assert D.dead_fraction(conv) == 0.5
    t = np.full((10, 3), 0.995)
    t[:2, 1] = 0.5  # unit 1 saturated on 80% of the samples: not saturated
    t[:, 2] = -0.999
    assert D.saturated_fraction(t, "tanh") == pytest.approx(2 / 3)
    s = np.array([[0.005, 0.5, 0.995]] * 4)
    assert D.saturated_fraction(s, "sigmoid") == pytest.approx(2 / 3)
    assert D.sampled_batches(1) == {1} and D.sampled_batches(38) == {1, 38}
    assert len(D.probe_sample(np.zeros((1211, 3)))) == 121
    assert len(D.probe_sample(np.zeros((30, 3)))) == 30 and len(D.probe_sample(np.zeros((9000, 3)))) == 512


def test_gradient_norm_and_update_ratio_match_a_plain_sgd_step(tmp_path):
    # One batch per epoch and plain SGD: the step is -lr * g, so the update ratio must be
    # lr * |g| / |W| with W the weights before the step: the previous epoch's weights.
    exp = experiment(RELU, {"type": "sgd", "lr": 0.1}, epochs=2)
    exp.train.batch_size = 4096
    run_dir, _ = trained(tmp_path, exp)
    rows = csv_rows(run_dir)
    assert [(r["epoch"], r["layer"]) for r in rows] == [(str(e), str(i)) for e in range(3) for i in (1, 2)]
    assert all(r["grad_norm"] == r["update_ratio"] == "" for r in rows[:2])  # epoch 0: the initial weights

    from nnrun.builder import build_loss, build_network, load_data

    data = load_data(exp)
    net = build_network(exp, data.input_shape, data.num_classes)
    for epoch in (1, 2):
        before = {k: v.astype(np.float64) for k, v in net.get_weights().items()}
        net.loss_and_gradients(build_loss(exp), *data.train)
        grads = {k: g.astype(np.float64) for k, g in net.gradients().items()}
        for layer in (1, 2):
            keys = [k for k in grads if k.startswith(f"layers.{layer}.")]
            g = math.sqrt(sum(float(np.sum(grads[k] ** 2)) for k in keys))
            w = math.sqrt(sum(float(np.sum(before[k] ** 2)) for k in keys))
            row = next(r for r in rows if r["epoch"] == str(epoch) and r["layer"] == str(layer))
            assert float(row["grad_norm"]) == pytest.approx(g, rel=1e-4)
            assert float(row["update_ratio"]) == pytest.approx(0.1 * g / w, rel=1e-3)
        net.set_weights({k: before[k] - 0.1 * grads[k] for k in before})


def test_diagnostics_change_nothing_training_computes(tmp_path):
    on = experiment(RELU, {"type": "adam", "lr": 0.01}, epochs=2)
    off = on.model_copy(update={"train": on.train.model_copy(update={"diagnostics": False})})
    a, b = train_run(on, tmp_path / "on", make_plots=False), train_run(off, tmp_path / "off", make_plots=False)
    assert (a / "weights.json").read_bytes() == (b / "weights.json").read_bytes()
    strip = lambda run: [{k: v for k, v in r.items() if k != "seconds"} for r in json.loads((run / "metrics.json").read_text())]
    assert strip(a) == strip(b)
    assert (a / "diagnostics.csv").is_file() and not (b / "diagnostics.csv").exists()
    assert json.loads((b / "summary.json").read_text())["findings"] == []


# -- findings, each on a run built to show it ----------------------------------------------
def test_a_healthy_run_has_no_findings(tmp_path):
    _, summary = trained(tmp_path, experiment(RELU, {"type": "adam", "lr": 0.005}))
    assert summary["findings"] == [] and summary["status"] == "completed"


def test_dead_relus_from_a_learning_rate_too_high(tmp_path):
    run_dir, summary = trained(tmp_path, experiment(RELU, {"type": "sgd", "lr": 2.0}))
    last = [r for r in csv_rows(run_dir) if r["epoch"] == "3" and r["layer"] == "1"][0]
    assert float(last["dead_fraction"]) >= 0.9
    assert float([r for r in csv_rows(run_dir) if r["epoch"] == "0"][0]["dead_fraction"]) < 0.5
    finding, flat = summary["findings"]
    assert finding.startswith(f"layer 1 (dense): {round(100 * float(last['dead_fraction']))}% of its ReLU units "
                              "were dead in the last epoch")
    assert finding.endswith("the learning rate 2 is probably too high; try 0.2, or leaky_relu")
    losses = [r["train_loss"] for r in json.loads((run_dir / "metrics.json").read_text())]
    assert losses[-1] > 0.98 * losses[0]  # the flat loss is the dead units' doing, and says so
    assert flat == (f"the loss did not fall in 3 epochs (train_loss {losses[0]:.4f} -> {losses[-1]:.4f}): "
                    "see the findings above")


def test_dead_relus_from_the_start_blame_the_initial_weights(tmp_path):
    layers = [{"type": "dense", "units": 16, "activation": "relu", "init": "uniform",
               "init_params": {"low": -1.0, "high": -0.5}}]  # inputs >= 0: every pre-activation < 0
    _, summary = trained(tmp_path, experiment(layers, {"type": "adam", "lr": 0.001}, epochs=2))
    assert any("100% of its ReLU units were dead in the last epoch (zero for every probe sample), and already "
               "before the first step: the initial weights or biases push them below zero" in f
               for f in summary["findings"])


def test_tanh_saturated_from_the_start_blames_the_inputs(tmp_path):
    layers = [{"type": "dense", "units": 32, "activation": "tanh", "init": "normal", "init_params": {"std": 1.0}}]
    _, summary = trained(tmp_path, experiment(layers, {"type": "sgd", "lr": 0.1}, scale=None))  # pixels 0..16
    assert any(f.startswith("layer 1 (dense): 100% of its tanh units were saturated in the last epoch")
               and "already before the first step: their inputs are too large for the initial weights; "
                   "check data.scale" in f for f in summary["findings"])


def test_tanh_saturated_by_huge_steps_and_a_loss_that_does_not_fall(tmp_path):
    _, summary = trained(tmp_path, experiment(TANH, {"type": "sgd", "lr": 30.0}))
    saturated, flat = summary["findings"]
    assert saturated.startswith("layer 1 (dense): 100% of its tanh units were saturated")
    assert saturated.endswith("the weights grew too large; the learning rate 30 is probably too high; try 3")
    assert flat.startswith("the loss did not fall in 3 epochs (train_loss ")
    assert "of its weights (about 0.1% is typical): the learning rate 30 is too high; try 3" in flat


def test_a_loss_that_does_not_fall_with_tiny_steps(tmp_path):
    _, summary = trained(tmp_path, experiment(TANH, {"type": "sgd", "lr": 1e-7}))
    (finding,) = summary["findings"]
    assert finding.startswith("the loss did not fall in 3 epochs")
    assert finding.endswith("of their size (about 1e-3 is typical): the learning rate 1e-07 is too low; try 1e-06")


def test_a_loss_that_does_not_fall_because_the_gradient_vanishes(tmp_path):
    layers = [{"type": "dense", "units": 16, "activation": "sigmoid"}] * 10
    _, summary = trained(tmp_path, experiment(layers, {"type": "sgd", "lr": 0.1}))
    (finding,) = summary["findings"]
    assert finding.startswith("the loss did not fall below that of guessing every class equally (2.3026) in 3 epochs")
    assert "the gradient vanishes on its way back (the first layer's is" in finding


def test_divergence_names_the_first_non_finite_layer_and_the_batch(tmp_path):
    cfg = tmp_path / "diverge.yaml"
    exp = experiment(RELU, {"type": "sgd", "lr": 1e30})
    cfg.write_text(json.dumps({**json.loads(exp.model_dump_json()), "name": "diverge"}))
    result = runner.invoke(app, ["train", str(cfg), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert ("finding: the loss became nan in epoch 1, batch 2; layer 2 (dense) was the first whose output became "
            "non-finite, with weights up to") in text
    assert "Likely cause: steps too large for this network (learning rate 1e+30)" in text
    assert "error: training diverged" in text
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert [r["epoch"] for r in csv_rows(run_dir)] == ["0", "0"]  # the initial weights' row, then nothing


def test_the_cli_prints_findings_and_the_report_shows_them(tmp_path):
    cfg = tmp_path / "dead.yaml"
    exp = experiment(RELU, {"type": "sgd", "lr": 2.0}, epochs=2)
    cfg.write_text(json.dumps({**json.loads(exp.model_dump_json()), "name": "dead"}))
    result = runner.invoke(app, ["train", str(cfg), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("finding: ")]
    assert len(lines) == 2 and "of its ReLU units were dead in the last epoch" in lines[0]
    (run_dir,) = (tmp_path / "runs").iterdir()
    html = (run_dir / "report.html").read_text()
    assert '<section id="diagnostics">' in html and "<b>Finding:</b>" in html
    assert "Per layer: gradient norm, update-to-weight ratio" in html  # the picture, embedded
    assert (run_dir / "plots" / "diagnostics.png").stat().st_size > 10_000


def test_diagnostics_plot_draws_only_what_was_measured(tmp_path):
    from matplotlib.image import imread

    from nnrun.plots import diagnostics_plot

    rows = [{"epoch": e, "layer": 1, "type": "dense", "activation": "tanh", "grad_norm": 0.5 / (e + 1),
             "update_ratio": 1e-3, "dead_fraction": None, "saturated_fraction": 0.1 * e} for e in range(4)]
    wide = imread(diagnostics_plot(rows, tmp_path / "a.png"))
    rows = [{**r, "saturated_fraction": None} for r in rows]
    narrow = imread(diagnostics_plot(rows, tmp_path / "b.png"))
    assert wide.shape[1] > narrow.shape[1]  # three panels, then two
    empty = imread(diagnostics_plot([], tmp_path / "c.png"))
    assert empty.shape[0] < narrow.shape[0]  # the small "nothing recorded" picture
