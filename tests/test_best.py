"""One meaning of "best" everywhere: the epoch the run's monitor chose, named with that metric."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from nnrun import sweep as S
from nnrun.cli import app
from nnrun.evaluate import compare_runs, list_runs
from tests.test_sweep import write_config

runner = CliRunner()
# Monitored by train_loss, which keeps falling, while val_accuracy peaks at epoch 5 of 6: the
# best epoch (6) is not the epoch of the highest val_accuracy.
SETUP = {"optimizer": {"type": "adam", "lr": 0.1},
         "train": {"epochs": 6, "batch_size": 64,
                   "early_stopping": {"monitor": "train_loss", "patience": 10, "restore_best_weights": False}}}


def test_train_sweep_runs_and_compare_agree_on_the_best_epoch(tmp_path):
    cfg = write_config(tmp_path, **SETUP)
    runs = tmp_path / "runs"
    result = runner.invoke(app, ["train", str(cfg), "--runs-dir", str(runs)])
    assert result.exit_code == 0, result.output
    run_dir = runs / result.output.strip().splitlines()[-1].split("/")[-1]
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = json.loads((run_dir / "metrics.json").read_text())
    best = summary["best_epoch"]
    val_acc = rows[best - 1]["val_accuracy"]
    assert summary["monitor"] == "train_loss" and best == min(rows, key=lambda r: r["train_loss"])["epoch"]
    assert summary["best"] == rows[best - 1]
    assert val_acc < max(r["val_accuracy"] for r in rows)  # the case this test is about
    assert f"best epoch {best} by train_loss: val_acc {100 * val_acc:.2f}%" in result.output

    sweep_dir = S.run_sweep(str(cfg), runs_dir=tmp_path / "sweeps", workers=1, trial_plots=False, plots=False,
                            params=["optimizer.lr=0.1"], metric="val_accuracy")
    trial = S.read_sweep(sweep_dir)["trials"][0]
    assert (trial["metric"], trial["best_epoch"]) == (val_acc, best)

    record = next(r for r in list_runs(runs) if r["path"] == str(run_dir))
    assert (record["best_epoch"], record["monitor"], record["best_val_accuracy"]) == (best, "train_loss", val_acc)
    listing = runner.invoke(app, ["runs", "--runs-dir", str(runs)])
    assert f"{best} (train_loss)" in listing.output and f"{100 * val_acc:.2f}%" in listing.output

    trial_dir = sweep_dir / trial["run_dir"]
    compared = compare_runs([run_dir, trial_dir], tmp_path / "out")
    assert [m["best_val_accuracy"] for m in compared["metrics"]] == [val_acc, val_acc]
    assert [m["best_epoch"] for m in compared["metrics"]] == [best, best]
