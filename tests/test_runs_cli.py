"""`nnrun runs` and `nnrun compare`, and the library functions behind them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from nnrun.cli import app
from nnrun.cli.evaluate import fitted_runs_table
from nnrun.errors import ConfigError
from nnrun.evaluate import (
    COMPARE_FIELDS,
    MISSING,
    RUN_FIELDS,
    compare_runs,
    config_differences,
    evaluate_run,
    flatten,
    list_runs,
    new_compare_path,
    resolve_run,
)
from nnrun.fmt import pct
from tests.test_evaluate import MLP, png_ok, train_tiny

runner = CliRunner()
QUICKSTART = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
WIDE = {"COLUMNS": None}  # into a pipe without $COLUMNS a table prints as wide as it needs


def sweep_folder(runs_dir: Path) -> str:
    return next(p.name for p in runs_dir.iterdir() if "-sweep-" in p.name)


def run_sweep(runs_dir: Path, lrs: str = "0.002,0.02") -> Path:
    from nnrun.sweep import run_sweep as sweep

    return sweep(str(QUICKSTART), runs_dir=runs_dir, workers=1, trial_plots=False, plots=False,
                 params=[f"optimizer.lr={lrs}"], overrides=["train.epochs=1"], name="demo")


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    """Two runs (a CNN, then an MLP), then a two-trial sweep, the newest of all; and two folders
    that are not runs (no summary.json; an empty folder)."""
    root = tmp_path_factory.mktemp("runs")
    train_tiny(root)
    train_tiny(root, *MLP, "optimizer.lr=0.01", "name=mlp", epochs=2)
    run_sweep(root)
    (root / "not-a-run").mkdir()
    (root / "not-a-run" / "config.yaml").write_text("name: x\n")
    (root / "empty").mkdir()
    return root


def sweep_doc(runs_dir: Path) -> dict:
    return json.loads((runs_dir / sweep_folder(runs_dir) / "sweep.json").read_text())


def invoke(*args: str, env: dict | None = None):
    result = runner.invoke(app, list(args), env=WIDE if env is None else env)
    assert result.exit_code == 0, result.output
    return result


# -- listing ----------------------------------------------------------------------------------
def test_list_runs_newest_first_with_a_sweep_as_one_record(runs_dir):
    records = list_runs(runs_dir)
    assert [(r["kind"], r["name"]) for r in records] == [("sweep", "demo"), ("run", "mlp"), ("run", "quickstart")]
    assert all(list(r) == list(RUN_FIELDS) for r in records)
    sweep, mlp, cnn = records
    assert mlp["epochs"] == 2 and cnn["epochs"] == 1 and mlp["status"] == "completed"
    for r in records:
        assert 0 < r["test_accuracy"] <= 1 and 0 < r["best_val_accuracy"] <= 1 and r["wall_seconds"] > 0
    doc = sweep_doc(runs_dir)
    best = doc["trials"][doc["best"]]
    assert sweep["folder"] == sweep_folder(runs_dir) and sweep["status"] == "completed" and sweep["trials"] == 2
    assert (sweep["metric"], sweep["metric_value"]) == ("val_accuracy", best["metric"])
    assert sweep["metric_value"] == max(t["metric"] for t in doc["trials"])
    assert sweep["best_trial"] == f"{sweep['folder']}/{best['run_dir']}"
    best_summary = json.loads((runs_dir / sweep["best_trial"] / "summary.json").read_text())
    assert sweep["test_accuracy"] == best_summary["test_accuracy"]
    assert list_runs(runs_dir / "missing") == []


def test_list_runs_with_trials(runs_dir):
    records = list_runs(runs_dir, trials=True)
    assert [r["kind"] for r in records] == ["sweep", "trial", "trial", "run", "run"]
    doc = sweep_doc(runs_dir)
    for trial, planned in zip(records[1:3], doc["trials"], strict=True):
        assert trial["folder"] == f"{records[0]['folder']}/{planned['run_dir']}"
        assert (trial["sweep"], trial["metric"], trial["metric_value"]) == (records[0]["folder"], "val_accuracy",
                                                                           planned["metric"])
        assert list(trial) == list(RUN_FIELDS)


def test_runs_command(runs_dir):
    out = invoke("runs", "--runs-dir", str(runs_dir)).output
    sweep, mlp, cnn = list_runs(runs_dir)
    for words in ("2 runs and 1 sweep (2 trials)", "--all lists the trials", "folder", "best epoch",
                  "1 (val_loss)", "val acc", "test acc", "wall time", "completed", "2 trials",
                  f"best t00{sweep_doc(runs_dir)['best']}: val_accuracy {pct(sweep['metric_value'])}"):
        assert words in out
    assert "not-a-run" not in out and "empty" not in out and "t000-" not in out
    assert out.index(sweep["folder"]) < out.index(mlp["folder"]) < out.index(cnn["folder"])
    assert f"{100 * mlp['test_accuracy']:.2f}%" in out


def test_runs_all_lists_each_sweeps_trials_under_it(runs_dir):
    out = invoke("runs", "--all", "--runs-dir", str(runs_dir)).output
    trials = [r for r in list_runs(runs_dir, trials=True) if r["kind"] == "trial"]
    assert "--all lists" not in out
    positions = [out.index(Path(t["folder"]).name) for t in trials]
    assert out.index(sweep_folder(runs_dir)) < positions[0] < positions[1] < out.index("mlp")


def assert_fits(out: str, width: int = 80) -> None:
    assert "…" not in out, out
    assert max(len(line) for line in out.splitlines()) <= width, out


def test_runs_at_80_columns_keeps_name_status_and_accuracies(runs_dir):
    out = invoke("runs", "--all", "--runs-dir", str(runs_dir), env={"COLUMNS": "80"}).output
    assert_fits(out)
    for r in list_runs(runs_dir, trials=True):
        row = next(line for line in out.splitlines() if Path(r["folder"]).name in line)
        assert r["status"] in row and pct(r["best_val_accuracy"]) in row and pct(r["test_accuracy"]) in row
    assert "2 trials" in out and "val_accuracy" in out


def record(kind: str, folder: str, status: str, **values) -> dict:
    return dict.fromkeys(RUN_FIELDS) | {"kind": kind, "folder": folder, "status": status, "epochs": 120,
                                        "best_epoch": 117, "monitor": "val_accuracy", "best_val_accuracy": 0.98765,
                                        "test_accuracy": 1.0, "wall_seconds": 7321.0,
                                        "started": "2026-11-30T10:15:00"} | values


def test_runs_table_at_80_columns_with_long_names():
    """Long folder names and the widest status: the folder may wrap, nothing else may shrink."""
    name = "a-rather-long-experiment-name"
    records = [record("run", f"20261130-101500-{name}", "stopped_early", name=name),
               record("sweep", f"20261130-101400-sweep-{name}", "interrupted", trials=120, metric="val_loss",
                      metric_value=0.012345, best_trial=f"20261130-101400-sweep-{name}/trials/t017-lr=0.1")]
    console = Console(width=80, file=io.StringIO(), color_system=None)
    console.print(fitted_runs_table(records, "title", 80))
    out = console.file.getvalue()
    assert_fits(out)
    for words in ("stopped_early", "interrupted", "98.77%", "100.00%", "120 trials", "val_loss 0.0123"):
        assert words in out
    first_column = "".join(line.split("   ")[0].strip() for line in out.splitlines())
    assert f"20261130-101500-{name}20261130-101400-sweep-{name}" in first_column  # wrapped, whole


def test_runs_json_and_csv(runs_dir):
    records = json.loads(invoke("runs", "--all", "--json", "--runs-dir", str(runs_dir)).stdout)
    assert records == json.loads(json.dumps(list_runs(runs_dir, trials=True)))
    assert [list(r) for r in records] == [list(RUN_FIELDS)] * 5
    rows = list(csv.DictReader(io.StringIO(invoke("runs", "--csv", "--runs-dir", str(runs_dir)).stdout)))
    assert [r["kind"] for r in rows] == ["sweep", "run", "run"] and list(rows[0]) == list(RUN_FIELDS)
    assert float(rows[1]["test_accuracy"]) == records[3]["test_accuracy"] and rows[1]["trials"] == ""
    result = runner.invoke(app, ["runs", "--json", "--csv", "--runs-dir", str(runs_dir)])
    assert result.exit_code == 2 and "--json and --csv" in result.output


def test_runs_command_without_runs(tmp_path):
    result = runner.invoke(app, ["runs", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0 and "no runs" in result.output
    assert invoke("runs", "--json", "--runs-dir", str(tmp_path)).stdout.strip() == "[]"


# -- latest -----------------------------------------------------------------------------------
def test_latest_is_the_newest_top_level_run_not_a_sweep_trial(runs_dir):
    mlp = Path(list_runs(runs_dir)[1]["path"])
    assert resolve_run("latest", runs_dir) == mlp  # the sweep and its trials are newer


def test_latest_is_said_on_stderr(runs_dir):
    result = invoke("evaluate", "latest", "--no-plots", "--runs-dir", str(runs_dir))
    mlp = resolve_run("latest", runs_dir)
    assert result.stderr == f"latest: {mlp}\n" and str(mlp) in result.stdout
    assert invoke("evaluate", "latest", "-q", "--no-plots", "--runs-dir", str(runs_dir)).output == ""


def test_latest_with_only_sweeps(tmp_path):
    run_sweep(tmp_path, "0.002")
    with pytest.raises(ConfigError, match="only sweeps.*nnrun runs --all"):
        resolve_run("latest", tmp_path)


# -- comparing --------------------------------------------------------------------------------
def test_config_differences():
    a = {"name": "a", "optimizer": {"type": "adam", "lr": 0.1}, "model": {"layers": [{"units": 8}, {"units": 2}]}}
    b = {"name": "a", "optimizer": {"type": "adam", "lr": 0.2}, "model": {"layers": [{"units": 8}]},
         "extra": {"x": 1}}
    assert flatten(a)["model.layers[1].units"] == 2
    assert config_differences([a, b]) == {"optimizer.lr": [0.1, 0.2],
                                          "model.layers[1].units": [2, MISSING],
                                          "extra.x": [MISSING, 1]}
    assert config_differences([a, a]) == {}


def test_config_differences_in_config_order():
    """A key only the second config has sits where that config has it, not at the end."""
    cnn = {"model": {"layers": [{"type": "maxpool2d", "activation": "linear", "pool_size": 2}]},
           "optimizer": {"type": "adam", "lr": 0.1, "beta1": 0.9}, "train": {"epochs": 1}}
    mlp = {"model": {"layers": [{"type": "dense", "activation": "relu", "units": 8}]},
           "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9}, "train": {"epochs": 2}}
    assert list(config_differences([cnn, mlp])) == [
        "model.layers[0].type", "model.layers[0].activation", "model.layers[0].units", "model.layers[0].pool_size",
        "optimizer.type", "optimizer.momentum", "optimizer.beta1", "train.epochs"]


def test_compare_runs(runs_dir, tmp_path):
    _, mlp, cnn = (Path(r["path"]) for r in list_runs(runs_dir))
    result = compare_runs([cnn, mlp], tmp_path / "out")
    diffs = result["differences"]
    assert diffs["name"] == ["quickstart", "mlp"] and diffs["optimizer.lr"] == [0.002, 0.01]
    assert diffs["train.epochs"] == [1, 2] and diffs["model.layers[1].type"] == ["maxpool2d", "dense"]
    assert "seed" not in diffs and "loss" not in diffs
    keys = list(diffs)
    assert keys.index("model.layers[1].units") < keys.index("optimizer.lr") < keys.index("train.epochs")
    assert [m["epochs"] for m in result["metrics"]] == [1, 2]
    assert all(list(m) == list(COMPARE_FIELDS) for m in result["metrics"])
    summary = json.loads((mlp / "summary.json").read_text())
    assert result["metrics"][1]["test_accuracy"] == summary["test_accuracy"]
    png_ok(Path(result["plot"]))
    assert Path(result["plot"]) == tmp_path / "out" / "compare.png"


def test_compare_writes_into_the_runs_folder_by_default(runs_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, mlp, cnn = (r["folder"] for r in list_runs(runs_dir))
    result = invoke("compare", cnn, "latest", "--runs-dir", str(runs_dir))
    assert list(tmp_path.iterdir()) == []
    plot = next((runs_dir / "compare").glob("*.png"))
    assert f"wrote {plot}" in result.stdout and result.stderr.startswith("latest: ")
    png_ok(plot)
    assert [r["kind"] for r in list_runs(runs_dir)] == ["sweep", "run", "run"]  # compare/ is no run


def test_new_compare_path_never_replaces_a_picture(tmp_path):
    first = new_compare_path(tmp_path, now=0)
    assert first.parent == tmp_path / "compare" and first.suffix == ".png"
    first.parent.mkdir()
    first.write_bytes(b"")
    assert new_compare_path(tmp_path, now=0) == first.with_name(f"{first.stem}-2.png")


def test_compare_command(runs_dir, tmp_path):
    cnn = list_runs(runs_dir)[2]["folder"]
    result = invoke("compare", cnn, "latest", "--runs-dir", str(runs_dir), "--out", str(tmp_path))
    for words in ("Config differences", "optimizer.lr", "0.002", "0.01", "Final metrics", "test acc",
                  "compare.png"):
        assert words in result.output
    png_ok(tmp_path / "compare.png")


def test_compare_at_80_columns(runs_dir, tmp_path):
    records = list_runs(runs_dir, trials=True)
    folders = [r["folder"] for r in records if r["kind"] != "sweep"]
    out = invoke("compare", *folders, "--runs-dir", str(runs_dir), "--out", str(tmp_path),
                 env={"COLUMNS": "80"}).stdout
    assert_fits(out)
    metrics_line = next(line for line in out.splitlines() if line.startswith("│ test acc"))
    for r in records[1:]:
        assert pct(r["test_accuracy"]) in metrics_line


def test_compare_json_and_csv(runs_dir, tmp_path):
    _, mlp, cnn = list_runs(runs_dir)
    args = ("compare", cnn["folder"], mlp["folder"], "--runs-dir", str(runs_dir), "--out", str(tmp_path))
    result = invoke(*args, "--json")
    records = json.loads(result.stdout)
    assert [r["run"] for r in records] == [cnn["folder"], mlp["folder"]]
    assert [list(r) for r in records] == [[*COMPARE_FIELDS, "config"]] * 2
    assert records[1]["config"]["optimizer.lr"] == 0.01 and records[1]["test_accuracy"] == mlp["test_accuracy"]
    assert "compare.png" in result.stderr
    rows = list(csv.DictReader(io.StringIO(invoke(*args, "--csv").stdout)))
    assert list(rows[0])[:len(COMPARE_FIELDS)] == list(COMPARE_FIELDS)
    assert [k for k in rows[0] if k.startswith("config.")] == [f"config.{k}" for k in records[0]["config"]]
    assert rows[0]["config.optimizer.lr"] == "0.002" and rows[1]["config.model.layers[1].units"] == "16"


def test_compare_errors(runs_dir, tmp_path):
    result = runner.invoke(app, ["compare", "latest", str(runs_dir / "not-a-run"), "--runs-dir", str(runs_dir)])
    assert result.exit_code == 2 and "summary.json" in result.output
    assert not (tmp_path / "compare.png").exists()


def test_dense_first_layer_weights_as_images(runs_dir):
    mlp = Path(list_runs(runs_dir)[1]["path"])
    doc = evaluate_run(mlp)
    assert doc["plots"]["weights"] == "plots/weights.png"
    img = png_ok(mlp / "plots" / "weights.png")
    assert img.shape[1] > 300
    assert doc["accuracy"] == json.loads((mlp / "summary.json").read_text())["test_accuracy"]


@pytest.mark.parametrize("content", ['[]', '{"trials": 3}', '{"trials": [1, null], "best": 0}', '{"trials": [',
                                     '{"trials": [{"run_dir": [5], "metric": "x"}], "best": 0, "metric": 5, '
                                     '"started": 7, "status": ["[bold]x"], "name": {"a": 1}}'])
def test_runs_lists_a_damaged_sweep_folder(tmp_path, content):
    sweep = tmp_path / "20261130-101500-sweep-x"
    (sweep / "trials").mkdir(parents=True)
    (sweep / "sweep.json").write_text(content)
    out = invoke("runs", "--all", "--runs-dir", str(tmp_path), env={"COLUMNS": "80"}).output
    assert sweep.name in out
    assert [r["kind"] for r in json.loads(invoke("runs", "--json", "--runs-dir", str(tmp_path)).stdout)] == ["sweep"]
