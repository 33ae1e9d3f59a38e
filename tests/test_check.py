"""nnrun check: the configured network's gradients against central finite differences in
float64, kinks skipped, wrong gradients found and named (exit code 1)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nnrun import gradcheck, nn
from nnrun.cli import app

runner = CliRunner()

EVERY_KIND = {  # every layer type and activation, on the bundled digits
    "name": "every-kind", "data": {"dataset": "digits"}, "loss": "mse",
    "model": {"layers": [
        {"type": "conv2d", "filters": 3, "kernel_size": [3, 5], "padding": "same",
         "activation": {"type": "leaky_relu", "alpha": 0.1}},
        {"type": "avgpool2d", "pool_size": 2},
        {"type": "elu", "alpha": 0.5},
        {"type": "conv2d", "filters": 4, "kernel_size": 2, "stride": 2, "padding": 1, "activation": "selu"},
        {"type": "maxpool2d", "pool_size": 2, "stride": 1},
        {"type": "flatten"},
        {"type": "dropout", "rate": 0.3},
        {"type": "dense", "units": 12, "activation": "swish"},
        {"type": "dense", "units": 11, "activation": "sigmoid", "use_bias": False},
        {"type": "relu"},
        {"type": "dense", "units": 10, "activation": "tanh"},
        {"type": "dense", "units": 10, "activation": "linear"}]},
}


def write(tmp_path, config: dict):
    path = tmp_path / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def check(*args, env=None):
    return runner.invoke(app, ["check", *map(str, args)], env=env)


@pytest.mark.parametrize("config", ["quickstart", "digits-mlp", "mlp", "cnn"])
def test_every_shipped_config_passes(config, tmp_path):
    # An empty data folder: MNIST is "not downloaded", and the check takes its shapes from the catalogue.
    result = check(f"configs/{config}.yaml", env={"NNRUN_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert "worst relative error" in result.output and "FAIL" not in result.output
    if config in ("mlp", "cnn"):
        assert "shapes from its catalogue entry: input (1, 28, 28), 10 classes" in result.output
    assert not list(tmp_path.iterdir())  # nothing downloaded


def test_every_layer_parameter_input_and_loss_is_compared(tmp_path):
    from nnrun.config import load_config

    exp = load_config(write(tmp_path, EVERY_KIND))
    report, note = gradcheck.check_experiment(exp)
    assert note is None  # digits is bundled: the shapes come from the data
    rows = {(r.layer, r.what): r for r in report.rows}
    for i, spec in enumerate(EVERY_KIND["model"]["layers"]):
        assert rows[i, "input"].checked > 0
        keys = {"W", "b"} if spec["type"] in ("dense", "conv2d") and spec.get("use_bias", True) else \
            {"W"} if spec["type"] in ("dense", "conv2d") else set()
        assert {w for (layer, w) in rows if layer == i} == keys | {"input"}
    losses = {(r.name, r.what) for r in report.rows if r.layer is None}
    assert losses == {("loss mse", "output"), ("loss cross_entropy", "output"), ("loss cross_entropy", "logits")}
    assert not report.failed and report.worst.error < gradcheck.TOL
    assert all(r.scale > 0 for r in report.rows)  # every gradient compared is a real one, not zeros


def test_a_wrong_activation_derivative_fails_naming_the_layer(tmp_path, monkeypatch):
    tanh = nn.ACTIVATIONS["tanh"]
    monkeypatch.setattr(tanh, "backward", lambda self, x, y, dy: dy * (1 - y))  # should be 1 - y^2
    result = check("configs/digits-mlp.yaml")
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output
    assert "error: configs/digits-mlp.yaml: layer 2 dense (tanh): the gradient of its input is wrong" in result.output
    assert "layer 3 dense (softmax)" not in result.output.split("worst relative error")[1]  # after the tanh layers


def test_a_wrong_loss_gradient_fails_naming_the_loss(monkeypatch):
    mse = nn.LOSSES["mse"]
    right = mse.gradient
    monkeypatch.setattr(mse, "gradient", lambda self, out, y: right(self, out, y) * 1.001)
    result = check("configs/digits-mlp.yaml")
    assert result.exit_code == 1, result.output
    assert "loss mse: the gradient of its output is wrong" in result.output


def relu_then_maxpool(input_shape=(1, 4, 4)):
    layers = [nn.make_layer({"type": "relu"}), nn.make_layer({"type": "maxpool2d", "pool_size": 2}),
              nn.make_layer({"type": "flatten"}), nn.make_layer({"type": "dense", "units": 3, "activation": "softmax"})]
    return nn.Sequential(layers, input_shape, seed=0, dtype=np.float64)


def kinked_input() -> np.ndarray:
    """Exact zeros (the relu's kink) and windows whose maximum is tied."""
    x = np.random.default_rng(1).standard_normal((2, 1, 4, 4))
    x[:, :, :2, :2] = 0.0  # relu at 0, and a four-way tie in the first pooling window
    x[:, :, 2:, 2:] = 0.7  # a tie among positive values
    return x


def test_steps_across_a_kink_are_skipped_and_the_rest_is_checked():
    report = gradcheck.check_network(relu_then_maxpool(), nn.make_loss("cross_entropy"), 3, x=kinked_input())
    relu_input = next(r for r in report.rows if r.layer == 0)
    pool_input = next(r for r in report.rows if r.layer == 1)
    assert relu_input.skipped >= 8 and pool_input.skipped >= 4
    assert relu_input.checked > 0 and pool_input.checked > 0
    assert not report.failed


def test_without_skipping_kinks_the_same_point_would_fail(monkeypatch):
    monkeypatch.setattr(gradcheck, "kink_signature", lambda layer, a, z: None)
    report = gradcheck.check_network(relu_then_maxpool(), nn.make_loss("cross_entropy"), 3, x=kinked_input())
    assert {r.layer for r in report.failed} >= {0}


def test_binary_step_is_reported_as_passing_no_gradient(tmp_path):
    config = {**EVERY_KIND, "name": "step"}
    config["model"] = {"layers": [{"type": "flatten"}, {"type": "dense", "units": 8, "activation": "binary_step"},
                                  {"type": "dense", "units": 10, "activation": "softmax"}]}
    result = check(write(tmp_path, {**config, "loss": "cross_entropy"}))
    assert result.exit_code == 0, result.output
    assert "layer 1 (dense) uses binary_step, whose derivative is zero" in " ".join(result.output.split())
    zero_rows = [line for line in result.output.splitlines() if line.rstrip().endswith("zero")]
    assert len(zero_rows) == 4  # layer 0's input, layer 1's W, b and input


def test_the_check_needs_float64():
    net = nn.Sequential([nn.make_layer({"type": "dense", "units": 2})], (3,), seed=0)
    with pytest.raises(ValueError, match="float64"):
        gradcheck.check_network(net, nn.make_loss("mse"), 2)


def test_a_bad_config_is_a_config_error(tmp_path):
    result = check(write(tmp_path, {**EVERY_KIND, "name": "bad", "model": {"layers": [{"type": "dense", "units": 0}]}}))
    assert result.exit_code == 2
    assert "model.layers[0].units" in result.output
