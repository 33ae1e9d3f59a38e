"""nnrun lr-find: the learning-rate range test, as a library call and as a command."""

from __future__ import annotations

import csv
import json

from typer.testing import CliRunner

from nnrun.cli import app
from nnrun.config import load_config
from nnrun.experiment import lr_find, suggest_lr, train_run
from tests.test_sweep import write_config

SOFTMAX_REGRESSION = {"layers": [{"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]}


def softmax_regression(tmp_path):
    return write_config(tmp_path, model=SOFTMAX_REGRESSION, optimizer={"type": "sgd", "lr": 0.1},
                        train={"epochs": 3, "batch_size": 32})


def test_lr_find_suggests_a_known_good_rate(tmp_path):
    # Softmax regression on digits with plain SGD: a grid shows rates ~0.3-30 all reach > 85%
    # validation accuracy in 3 epochs, and rates <= 0.01 stay near chance.
    cfg = softmax_regression(tmp_path)
    run_dir, result = lr_find(load_config(cfg), 1e-5, 100, steps=90, runs_dir=tmp_path / "runs")
    assert "exploded" in result["stopped"] or "became" in result["stopped"]
    assert 0.1 <= result["suggestion"] <= 10
    assert run_dir.name.endswith("-lr-find-tiny")
    assert (run_dir / "plots" / "lr_find.png").stat().st_size > 1000
    assert json.loads((run_dir / "lr_find.json").read_text())["suggestion"] == result["suggestion"]
    rows = list(csv.DictReader((run_dir / "lr_find.csv").open()))
    assert len(rows) == result["steps"] and float(rows[0]["lr"]) == 1e-5
    good = train_run(load_config(cfg, (f"optimizer.lr={result['suggestion']}",)), tmp_path / "r", make_plots=False)
    assert json.loads((good / "summary.json").read_text())["best"]["val_accuracy"] > 0.85


def test_suggest_lr_needs_enough_points():
    assert suggest_lr([1e-3, 1e-2], [1.0, 0.5]) is None


def test_cli_lr_find_prints_the_suggestion_and_a_sweep_around_it(tmp_path, monkeypatch):
    cfg = softmax_regression(tmp_path)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["lr-find", str(cfg), "--min-lr", "1e-5", "--max-lr", "100", "--steps", "60"])
    assert res.exit_code == 0, res.output
    assert "suggested learning rate:" in res.output
    assert f"nnrun sweep {cfg} --param optimizer.lr=log:" in res.output
    folder = res.output.strip().splitlines()[-1]
    assert (tmp_path / folder / "lr_find.json").is_file()


def test_cli_lr_find_refuses_bad_ranges(tmp_path):
    cfg = softmax_regression(tmp_path)
    runs = tmp_path / "runs"
    for args, words in ((["--min-lr", "1", "--max-lr", "0.1"], "need 0 < min-lr < max-lr"),
                        (["--steps", "3"], "at least 5 steps")):
        res = CliRunner().invoke(app, ["lr-find", str(cfg), "--runs-dir", str(runs), *args])
        assert res.exit_code == 2 and words in res.output, res.output
    assert not runs.exists()  # nothing written for a usage error


def test_ctrl_c_during_lr_find_writes_nothing(tmp_path):
    import pytest

    from nnrun.train import Callback

    class CtrlC(Callback):
        def on_batch_end(self, state, loss, accuracy):
            if state.batch == 10:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lr_find(load_config(softmax_regression(tmp_path)), steps=50, runs_dir=tmp_path / "runs", callbacks=[CtrlC()])
    assert not (tmp_path / "runs").exists()
