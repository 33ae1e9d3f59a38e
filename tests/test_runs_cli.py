"""`nnrun runs` and `nnrun compare`, and the library functions behind them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nnrun.cli import app
from nnrun.evaluate import MISSING, compare_runs, config_differences, evaluate_run, flatten, list_runs
from tests.test_evaluate import MLP, png_ok, train_tiny

runner = CliRunner()
QUICKSTART = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"


def sweep_folder(runs_dir: Path) -> str:
    return next(p.name for p in runs_dir.iterdir() if "-sweep-" in p.name)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    """A real one-trial sweep (its trial dated 2000), then two runs (a CNN, then an MLP), and two
    folders that are not runs (no summary.json; an empty folder)."""
    from nnrun.sweep import run_sweep

    root = tmp_path_factory.mktemp("runs")
    sweep = run_sweep(str(QUICKSTART), runs_dir=root, workers=1, trial_plots=False, plots=False,
                      params=["optimizer.lr=0.002"], overrides=["train.epochs=1"], name="demo")
    trial = next((sweep / "trials").iterdir())
    summary = json.loads((trial / "summary.json").read_text())
    (trial / "summary.json").write_text(json.dumps(summary | {"started": "2000-01-01T00:00:00"}))
    train_tiny(root)
    train_tiny(root, *MLP, "optimizer.lr=0.01", "name=mlp", epochs=2)
    (root / "not-a-run").mkdir()
    (root / "not-a-run" / "config.yaml").write_text("name: x\n")
    (root / "empty").mkdir()
    return root


def test_list_runs_newest_first(runs_dir):
    records = list_runs(runs_dir)
    assert [r["name"] for r in records] == ["mlp", "quickstart", "quickstart"]
    mlp, cnn, trial = records
    assert trial["folder"].startswith(f"{sweep_folder(runs_dir)}/trials/t000")
    assert mlp["epochs"] == 2 and cnn["epochs"] == 1 and mlp["status"] == "completed"
    for r in records:
        assert 0 < r["test_accuracy"] <= 1 and 0 < r["best_val_accuracy"] <= 1 and r["wall_seconds"] > 0
    assert list_runs(runs_dir / "missing") == []


def test_runs_command(runs_dir):
    result = runner.invoke(app, ["runs", "--runs-dir", str(runs_dir)])
    assert result.exit_code == 0, result.output
    out = result.output
    for words in ("3 runs", "folder", "best epoch", "1 (val_loss)", "val acc", "test acc", "wall time",
                  "completed", "mlp", "trials/t000"):
        assert words in out
    assert "not-a-run" not in out and "empty" not in out
    records = list_runs(runs_dir)
    assert out.index(records[0]["folder"]) < out.index(records[1]["folder"])
    assert f"{100 * records[0]['test_accuracy']:.2f}%" in out


def test_runs_command_without_runs(tmp_path):
    result = runner.invoke(app, ["runs", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0 and "no runs" in result.output


def test_config_differences():
    a = {"name": "a", "optimizer": {"type": "adam", "lr": 0.1}, "model": {"layers": [{"units": 8}, {"units": 2}]}}
    b = {"name": "a", "optimizer": {"type": "adam", "lr": 0.2}, "model": {"layers": [{"units": 8}]},
         "extra": {"x": 1}}
    assert flatten(a)["model.layers[1].units"] == 2
    assert config_differences([a, b]) == {"optimizer.lr": [0.1, 0.2],
                                          "model.layers[1].units": [2, MISSING],
                                          "extra.x": [MISSING, 1]}
    assert config_differences([a, a]) == {}


def test_compare_runs(runs_dir, tmp_path):
    mlp, cnn = (Path(r["path"]) for r in list_runs(runs_dir)[:2])
    result = compare_runs([cnn, mlp], tmp_path / "out")
    diffs = result["differences"]
    assert diffs["name"] == ["quickstart", "mlp"] and diffs["optimizer.lr"] == [0.002, 0.01]
    assert diffs["train.epochs"] == [1, 2] and diffs["model.layers[1].type"] == ["maxpool2d", "dense"]
    assert "seed" not in diffs and "loss" not in diffs
    assert [m["epochs"] for m in result["metrics"]] == [1, 2]
    summary = json.loads((mlp / "summary.json").read_text())
    assert result["metrics"][1]["test_accuracy"] == summary["test_accuracy"]
    png_ok(Path(result["plot"]))
    assert Path(result["plot"]) == tmp_path / "out" / "compare.png"


def test_compare_command(runs_dir, tmp_path):
    records = list_runs(runs_dir)
    result = runner.invoke(app, ["compare", records[1]["folder"], "latest", "--runs-dir", str(runs_dir),
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for words in ("Config differences", "optimizer.lr", "0.002", "0.01", "Final metrics", "test acc",
                  "compare.png"):
        assert words in result.output
    png_ok(tmp_path / "compare.png")


def test_compare_errors(runs_dir, tmp_path):
    result = runner.invoke(app, ["compare", "latest", str(runs_dir / "not-a-run"), "--runs-dir", str(runs_dir)])
    assert result.exit_code == 2 and "summary.json" in result.output
    assert not (tmp_path / "compare.png").exists()


def test_dense_first_layer_weights_as_images(runs_dir):
    mlp = Path(list_runs(runs_dir)[0]["path"])
    doc = evaluate_run(mlp)
    assert doc["plots"]["weights"] == "plots/weights.png"
    img = png_ok(mlp / "plots" / "weights.png")
    assert img.shape[1] > 300
    assert doc["accuracy"] == json.loads((mlp / "summary.json").read_text())["test_accuracy"]
