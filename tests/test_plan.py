"""The plan nnrun validate prints: per-layer FLOPs and activation memory, the learning rate over
the planned epochs (a sparkline and the picture), and the run's time from a few timed steps."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from nnrun import nn, plan
from nnrun.builder import build_network, load_data
from nnrun.cli import app
from nnrun.config import load_config
from nnrun.experiment import train_run

runner = CliRunner()


def test_flops_and_memory_by_their_definitions():
    exp = load_config("configs/cnn.yaml")
    net = build_network(exp, (1, 28, 28), 10)
    costs = plan.layer_costs(net, batch_size=64)
    conv = 16 * 28 * 28  # output values of layer 0
    assert costs[0].flops == 2 * (1 * 3 * 3) * conv + conv + conv  # multiply-adds, bias, relu
    assert costs[1].flops == 2 * 2 * (16 * 14 * 14)  # each window's 4 inputs
    assert costs[6].flops == 0  # flatten
    assert costs[7].flops == 2 * 576 * 128 + 128 + 128
    assert costs[8].flops == 2 * 128 * 10 + 10 + 10  # softmax counts one per output
    assert [c.memory for c in costs] == [64 * math.prod(layer.output_shape) * 4 for layer in net.layers]
    assert [c.params for c in costs] == [layer.num_params for layer in net.layers]
    assert plan.count_text(4_052_210) == "4.05M" and plan.count_text(999) == "999"


def test_sparkline_draws_the_shape_of_the_rates():
    assert plan.sparkline([0.1] * 5) == "▄▄▄▄▄"
    assert plan.sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert plan.sparkline([3, 2, 1]) == "█▅▁"
    long = plan.sparkline(list(range(500)))
    assert len(long) == plan.SPARK_WIDTH and long[0] == "▁" and long[-1] == "█"


def test_planned_rates_are_the_rates_the_run_uses(tmp_path):
    overrides = ("train.epochs=4", "schedule={type: step, step_size: 2, gamma: 0.5}", "optimizer.lr=0.01")
    exp = load_config("configs/digits-mlp.yaml", overrides)
    from nnrun.builder import build_schedule

    planned = plan.planned_rates(build_schedule(exp), exp.train.epochs)
    run_dir = train_run(exp, tmp_path, make_plots=False)
    assert planned == [row["lr"] for row in json.loads((run_dir / "metrics.json").read_text())]
    assert planned == [0.01, 0.01, 0.005, 0.005]


def test_validate_prints_the_plan_and_draws_the_rate(tmp_path):
    png = tmp_path / "lr.png"
    result = runner.invoke(app, ["validate", "configs/quickstart.yaml", "--lr-plot", str(png)])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert re.search(r"│ 0 │ conv2d \(relu\) +│ \(16, 8, 8\) +│ +160 │ +20.5k │ +128 KiB │", text)
    assert "cost: 237k FLOPs per sample (forward), about 22.7M per training step of 32" in text
    assert re.search(r"^lr: 0.002 [▁▂▃▄▅▆▇█]{20} 1.231e-05 over 20 epochs \(cosine\)$", text, re.MULTILINE)
    assert "lr: 0.002 █" in text and text.splitlines()[-1] == "configs/quickstart.yaml: valid"
    from matplotlib.image import imread

    assert imread(png).shape[2] in (3, 4) and f"lr plot: {png}" in text


def test_validate_time_estimates_a_named_dataset_not_downloaded(tmp_path):
    result = runner.invoke(app, ["validate", "configs/mlp.yaml", "--time", "--set", "train.epochs=3"],
                           env={"NNRUN_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith("time: "))
    # 60,000 MNIST training images less a validation tenth: 54,000 in steps of 64.
    assert re.fullmatch(r"time: about [\d.]+m?s per step of 64 \(median of 5 timed\), [\dm.]+s per epoch "
                        r"\(844 steps \+ validation of 6,000\), [\dm.]+s for 3 epochs", line), line
    assert not list(tmp_path.iterdir())


def test_the_time_estimate_adds_up_and_is_near_a_real_epoch(tmp_path):
    exp = load_config("configs/digits-mlp.yaml", ("train.epochs=2",))
    data = load_data(exp)
    net = build_network(exp, data.input_shape, data.num_classes)
    sizes = plan.split_sizes(exp, data)
    assert sizes == {"train": 1211, "validation": 136, "test": 450}
    estimate = plan.estimate_time(net, nn.make_loss("cross_entropy"), nn.make_optimizer("sgd"), 0.1, 32, sizes, 2, 10,
                                  x=data.train[0])
    assert estimate.batches == math.ceil(1211 / 32)
    assert estimate.epoch_seconds == pytest.approx(estimate.batches * estimate.batch_seconds + estimate.eval_seconds)
    assert estimate.total_seconds == pytest.approx(2 * estimate.epoch_seconds)
    run_dir = train_run(exp, tmp_path, make_plots=False)
    real = np.median([row["seconds"] for row in json.loads((run_dir / "metrics.json").read_text())])
    assert real / 10 < estimate.epoch_seconds < real * 10  # a busy machine moves both; the order is right


def test_catalogue_sizes_count_your_own_files_and_the_split(tmp_path):
    from tests.synthetic import write_idx

    images, labels = tmp_path / "i.idx", tmp_path / "l.idx"
    write_idx(images, np.zeros((50, 28, 28), np.uint8))
    write_idx(labels, np.arange(50, dtype=np.uint8) % 10)
    exp = load_config("configs/mlp.yaml", (f"data.test.images={images}", f"data.test.labels={labels}",
                                           "data.validation_split=0.2"))
    assert plan.split_sizes(exp) == {"train": 48000, "validation": 12000, "test": 50}
