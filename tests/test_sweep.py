"""nnrun sweep: parameter expansion, the sweep section, parallel end-to-end runs, failures,
resume and the Dask executor. Tiny MLPs on the bundled digits."""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nnrun import sweep as S
from nnrun.cli import app
from nnrun.config import load_config
from nnrun.errors import ConfigError
from nnrun.experiment import train_run

TINY = {
    "name": "tiny", "seed": 3,
    "data": {"dataset": "digits", "validation_split": 0.2},
    "model": {"layers": [{"type": "flatten"}, {"type": "dense", "units": 8, "activation": "relu"},
                         {"type": "dense", "units": 10, "activation": "softmax"}]},
    "optimizer": {"type": "adam", "lr": 0.01},
    "train": {"epochs": 2, "batch_size": 128},
}


def write_config(tmp_path: Path, **extra) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, **extra}, sort_keys=False))
    return path


# -- expansion and parsing ------------------------------------------------------------------
def test_grid_lists_ranges_and_product():
    lr = S.parse_param_text("optimizer.lr=log:1e-5:1:6")
    assert lr.values == [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    assert S.parse_param_text("x.y=lin:0:1:3").values == [0.0, 0.5, 1.0]
    assert S.parse_param_text("train.batch_size=int:16:64:16").values == [16, 32, 48, 64]
    act = S.parse_param_text("model.layers[-1].activation=softmax,tanh")
    assert act.values == ["softmax", "tanh"]
    lists = S.parse_param_text('model.layers=[{"type":"flatten"}],[{"type":"dense","units":2}]')
    assert len(lists.values) == 2 and lists.labels == ["#1", "#2"]
    combos = S.expand([S.parse_param_text("a=1,2,3"), act])
    assert [[v for v, _ in c] for c in combos] == [[1, "softmax"], [1, "tanh"], [2, "softmax"],
                                                  [2, "tanh"], [3, "softmax"], [3, "tanh"]]
    for bad in ("optimizer.lr", "optimizer.lr=log:0:1:3", "optimizer.lr=1,,2", "9bad=1",
                "train.batch_size=int:16:32:0"):
        with pytest.raises(ConfigError):
            S.parse_param_text(bad)


def test_random_search_is_seeded_and_in_range():
    params = [S.parse_param_text("optimizer.lr=log:1e-4:1e-1"), S.parse_param_text("b=x,y")]
    a, b = S.expand(params, random=20, seed=1), S.expand(params, random=20, seed=1)
    assert a == b and len(a) == 20
    assert all(1e-4 <= t[0][0] <= 1e-1 and t[1][0] in ("x", "y") for t in a)
    assert a != S.expand(params, random=20, seed=2)


def test_sweep_section_parsing_and_command_line_wins(tmp_path):
    cfg = write_config(tmp_path, sweep={
        "params": {"optimizer.lr": "log:1e-3:1e-1:3", "model.layers[-2].units": {"small": 4, "big": 16}},
        "metric": "val_loss", "random": None})
    doc = S.plan_sweep(cfg)
    assert doc["metric"] == "val_loss" and doc["mode"] == "min"
    assert doc["param_names"] == ["optimizer.lr", "model.layers[-2].units"]
    assert len(doc["trials"]) == 6 and "sweep" not in doc["base_config"]
    first = doc["trials"][0]
    assert first["overrides"] == ["optimizer.lr=0.001", "model.layers[1].units=4"]
    assert first["params"] == {"optimizer.lr": 0.001, "model.layers[-2].units": "small"}
    assert first["name"] == "t000-lr=0.001_units=small"
    # the command line replaces the same key and keeps the others; flags beat the section
    doc = S.plan_sweep(cfg, params=["optimizer.lr=0.5"], metric="train_accuracy", mode="min")
    assert len(doc["trials"]) == 2 and doc["metric"] == "train_accuracy" and doc["mode"] == "min"
    # default metric: validation accuracy, else test accuracy
    assert S.plan_sweep(write_config(tmp_path))["metric"] == "val_accuracy"
    no_val = write_config(tmp_path, data={"dataset": "digits", "validation_split": 0})
    assert S.plan_sweep(no_val)["metric"] == "test_accuracy"
    # schema errors in the section, an unknown metric, every trial invalid
    with pytest.raises(ConfigError, match="sweep.mode"):
        S.plan_sweep(write_config(tmp_path, sweep={"mode": "maximum"}))
    with pytest.raises(ConfigError, match="metric"):
        S.plan_sweep(write_config(tmp_path), metric="val_acc")
    with pytest.raises(ConfigError, match="optimizer.lrr"):
        S.plan_sweep(write_config(tmp_path), params=["optimizer.lrr=1,2"])


# -- running --------------------------------------------------------------------------------
def test_four_trials_with_two_workers_end_to_end(tmp_path):
    cfg = write_config(tmp_path)
    doc = S.plan_sweep(cfg, params=["optimizer.lr=0.003,0.03", "model.layers[1].units=4,16"])
    sweep_dir = S.run_sweep(doc, runs_dir=tmp_path / "runs", workers=2, trial_plots=False)
    assert sweep_dir.parent == tmp_path / "runs" and sweep_dir.name.endswith("-sweep-tiny")
    saved = S.read_sweep(sweep_dir)
    assert saved["status"] == "completed" and saved["workers"] == 2
    assert [t["status"] for t in saved["trials"]] == ["completed"] * 4
    folders = sorted(p.name for p in (sweep_dir / "trials").iterdir())
    assert folders == [t["name"] for t in saved["trials"]]
    for t in saved["trials"]:
        run = sweep_dir / t["run_dir"]
        assert {"config.yaml", "summary.json", "metrics.csv", "weights.json"} <= {p.name for p in run.iterdir()}
        assert json.loads((run / "summary.json").read_text())["run_dir"] == run.name
        assert 0 < t["metric"] <= 1 and t["best_epoch"] in (1, 2) and t["seconds"] > 0
    rows = list(csv.DictReader((sweep_dir / "sweep.csv").open()))
    assert len(rows) == 4 and set(rows[0]) >= {"trial", "optimizer.lr", "model.layers[1].units", "status",
                                                 "val_accuracy", "best_epoch", "seconds"}
    best = saved["trials"][saved["best"]]
    assert best["metric"] == max(t["metric"] for t in saved["trials"])
    best_cfg = yaml.safe_load((sweep_dir / "best.yaml").read_text())
    assert best_cfg["optimizer"]["lr"] == best["params"]["optimizer.lr"]
    assert "sweep" not in best_cfg or best_cfg["sweep"] is None
    for plot in ("sweep.png", "sweep_curves.png"):
        assert (sweep_dir / "plots" / plot).stat().st_size > 1000
    # a trial is bit-identical to a standalone train run with the same --set overrides
    t = saved["trials"][3]
    alone = train_run(load_config(cfg, tuple(t["overrides"])), tmp_path / "alone", make_plots=False)
    assert (alone / "weights.json").read_bytes() == (sweep_dir / t["run_dir"] / "weights.json").read_bytes()


def test_failing_trials_do_not_stop_the_sweep(tmp_path):
    bad_shape = [{"type": "conv2d", "filters": 2, "kernel_size": 9},  # 9x9 kernel on 8x8 digits
                 {"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]
    cfg = write_config(tmp_path, sweep={"params": {
        "model.layers": {"good": TINY["model"]["layers"], "bad": bad_shape},
        "optimizer.lr": [0.01, -1, 0.02]}})
    doc = S.plan_sweep(cfg)
    # lr=-1 is refused by the schema: recorded as failed up front, never run
    assert [t["status"] for t in doc["trials"]] == ["pending", "failed", "pending"] * 2
    out = S.run_sweep(doc, runs_dir=tmp_path / "runs", workers=2, trial_plots=False)
    saved = S.read_sweep(out)
    statuses = [t["status"] for t in saved["trials"]]
    assert statuses == ["completed", "failed", "completed", "failed", "failed", "failed"]
    assert "optimizer.lr" in saved["trials"][1]["error"]
    assert "kernel" in saved["trials"][3]["error"] or "8" in saved["trials"][3]["error"]
    assert saved["status"] == "completed" and saved["best"] in (0, 2)
    assert saved["trials"][3]["params"] == {"model.layers": "bad", "optimizer.lr": 0.01}
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [r["status"] for r in rows] == statuses and rows[3]["error"]
    assert (out / "plots" / "sweep.png").is_file()


class StopAfter(S.SweepReporter):
    """Simulates Ctrl-C after n trials finished."""

    def __init__(self, n):
        self.n, self.seen = n, 0

    def trial_done(self, trial, doc):
        self.seen += 1
        if self.seen == self.n:
            raise KeyboardInterrupt


def test_interrupt_keeps_finished_trials_and_resume_runs_the_rest(tmp_path):
    cfg = write_config(tmp_path)
    doc = S.plan_sweep(cfg, params=["optimizer.lr=0.001,0.01,0.1"])
    sweep_dir = S.run_sweep(doc, runs_dir=tmp_path / "runs", workers=1, trial_plots=False,
                            reporter=StopAfter(1))
    saved = S.read_sweep(sweep_dir)
    assert saved["status"] == "interrupted"
    assert [t["status"] for t in saved["trials"]] == ["completed", "pending", "pending"]
    assert [p.name for p in (sweep_dir / "trials").iterdir()] == [saved["trials"][0]["name"]]
    first_weights = (sweep_dir / saved["trials"][0]["run_dir"] / "weights.json").stat().st_mtime_ns
    resumed = S.run_sweep(resume=sweep_dir, workers=2, trial_plots=False)
    assert resumed == sweep_dir
    saved = S.read_sweep(sweep_dir)
    assert saved["status"] == "completed" and all(t["status"] == "completed" for t in saved["trials"])
    assert (sweep_dir / saved["trials"][0]["run_dir"] / "weights.json").stat().st_mtime_ns == first_weights
    assert (sweep_dir / "best.yaml").is_file() and len(list((sweep_dir / "trials").iterdir())) == 3
    # a missing (deleted) trial is run again; nothing else is
    shutil.rmtree(sweep_dir / saved["trials"][2]["run_dir"])
    saved["trials"][2]["status"] = "crashed"
    (sweep_dir / "sweep.json").write_text(json.dumps(saved))
    S.run_sweep(resume=sweep_dir, workers=1, trial_plots=False)
    assert S.read_sweep(sweep_dir)["trials"][2]["status"] == "completed"
    with pytest.raises(ConfigError, match="not a sweep folder"):
        S.run_sweep(resume=tmp_path)


def test_ctrl_c_with_worker_processes_stops_them_and_resume_runs_the_rest(tmp_path, capfd):
    import multiprocessing

    children_before = {p.pid for p in multiprocessing.active_children()}
    doc = S.plan_sweep(write_config(tmp_path), params=["train.epochs=20,150,150"])
    class StopOnceT001HasACheckpoint(S.SweepReporter):
        """Ctrl-C when the 20-epoch trial is in and t001 is under way (however slow its start)."""

        def trial_done(self, trial, doc):
            checkpoint = tmp_path / "runs" / doc["sweep_dir"] / "trials" / doc["trials"][1]["name"] / "checkpoint.npz"
            deadline = time.monotonic() + 60
            while not checkpoint.is_file() and time.monotonic() < deadline:
                time.sleep(0.01)
            raise KeyboardInterrupt

    sweep_dir = S.run_sweep(doc, runs_dir=tmp_path / "runs", workers=2, trial_plots=False, plots=False,
                            reporter=StopOnceT001HasACheckpoint())
    assert [p for p in multiprocessing.active_children() if p.pid not in children_before] == []
    assert "Traceback" not in capfd.readouterr().err  # not even from the executor's own thread
    saved = S.read_sweep(sweep_dir)
    assert saved["status"] == "interrupted"
    assert [t["status"] for t in saved["trials"]] == ["completed", "pending", "pending"]
    # t001 was stopped mid-run: kept, with the checkpoint --resume goes on from
    assert (sweep_dir / "trials" / saved["trials"][1]["name"] / "checkpoint.npz").is_file()
    S.run_sweep(resume=sweep_dir, workers=2, trial_plots=False, plots=False)
    saved = S.read_sweep(sweep_dir)
    assert saved["status"] == "completed" and all(t["status"] == "completed" for t in saved["trials"])
    resumed = sweep_dir / saved["trials"][1]["run_dir"]
    alone = train_run(load_config(tmp_path / "tiny.yaml", tuple(saved["trials"][1]["overrides"])),
                      tmp_path / "alone", make_plots=False)
    assert (resumed / "weights.json").read_bytes() == (alone / "weights.json").read_bytes()
    assert not (resumed / "checkpoint.npz").exists()
    assert len(json.loads((resumed / "summary.json").read_text())["resumed"]) == 1  # went on, not restarted


SCRIPT_LIKE_NNRUN = """\
import sys
from nnrun.cli import main  # the first lines of the `nnrun` script pip writes


def loaded(_):
    return sorted(m for m in ("typer", "rich", "click", "matplotlib", "nnrun.cli.common") if m in sys.modules)


if __name__ == "__main__":
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        print(pool.submit(loaded, 0).result())
"""


def test_a_worker_spawned_by_the_nnrun_script_does_not_load_the_command_line(tmp_path):
    # A spawned worker re-runs the script it was started from: under `nnrun sweep`, the script's
    # `from nnrun.cli import main` once loaded every command, typer and rich (0.4 s a worker).
    import os
    import subprocess
    import sys

    script = tmp_path / "nnrun_like.py"
    script.write_text(SCRIPT_LIKE_NNRUN)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    import nnrun.cli

    assert "app" in dir(nnrun.cli) and nnrun.cli.app.registered_commands  # still there, on demand


def test_cli_dry_run_and_sweep(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from nnrun.cli import app

    cfg = write_config(tmp_path, sweep={"params": {"optimizer.lr": [0.01, 0.02]}})
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["sweep", str(cfg), "--dry-run"])
    assert res.exit_code == 0 and "--set optimizer.lr=0.02" in res.output
    res = CliRunner().invoke(app, ["sweep", str(cfg), "-j", "1", "--no-trial-plots", "--runs-dir", "runs"])
    assert res.exit_code == 0, res.output
    assert "ranking" in res.output and "best: t00" in res.output
    res = CliRunner().invoke(app, ["sweep", str(cfg), "--lr-range", "1e-6:1"])
    assert res.exit_code == 2 and "nnrun lr-find CONFIG --min-lr MIN --max-lr MAX" in res.output


# -- Dask -----------------------------------------------------------------------------------
def test_dask_executor_with_a_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    cfg = write_config(tmp_path)
    doc = S.plan_sweep(cfg, params=["optimizer.lr=0.005,0.05"])
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                                  dashboard_address=None, worker_dashboard_address=None) as cluster:
        sweep_dir = S.run_sweep(doc, runs_dir=tmp_path / "runs", executor="dask",
                                scheduler=cluster.scheduler_address, trial_plots=False)
    saved = S.read_sweep(sweep_dir)
    assert saved["executor"] == "dask" and [t["status"] for t in saved["trials"]] == ["completed"] * 2
    for t in saved["trials"]:  # artifacts came back (zipped) into the client's sweep folder
        run = sweep_dir / t["run_dir"]
        assert (run / "weights.json").is_file() and (run / "summary.json").is_file()
    alone = train_run(load_config(cfg, tuple(saved["trials"][1]["overrides"])), tmp_path / "a", make_plots=False)
    assert (alone / "weights.json").read_bytes() == (sweep_dir / saved["trials"][1]["run_dir"] / "weights.json").read_bytes()


@pytest.mark.parametrize("name", ["a/b", "../x", "a b", ""])
def test_sweep_name_must_make_a_folder_name(tmp_path, name):
    result = CliRunner().invoke(app, ["sweep", str(write_config(tmp_path)), "--param", "optimizer.lr=0.1",
                                      "--name", name, "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "--name" in result.stderr, result.output
    assert not (tmp_path / "runs").exists()


# -- regressions ----------------------------------------------------------------------------
def test_relative_set_paths_mean_the_folder_they_were_typed_in(tmp_path, monkeypatch):
    from nnrun.data import load_dataset

    x, y = load_dataset("digits")["train"]
    np.savez(tmp_path / "tr.npz", x=x[:300], y=y[:300])
    monkeypatch.chdir(tmp_path)
    doc = S.plan_sweep(write_config(tmp_path), params=["optimizer.lr=0.01"],
                       overrides=["data.dataset=null", "data.train.npz=tr.npz"])
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # as a later --resume or a Dask worker would be
    sweep_dir = S.run_sweep(doc, runs_dir=tmp_path / "runs", workers=1, trial_plots=False, plots=False)
    trial = S.read_sweep(sweep_dir)["trials"][0]
    assert trial["status"] == "completed", trial["error"]


def test_ctrl_c_while_a_trial_writes_its_plots_stops_the_sweep(tmp_path, monkeypatch):
    from nnrun import plots

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "learning_curves", interrupted)
    doc = S.plan_sweep(write_config(tmp_path), params=["optimizer.lr=0.01,0.02"])
    sweep_dir = S.run_sweep(doc, runs_dir=tmp_path / "runs", workers=1, plots=False)
    done = S.read_sweep(sweep_dir)
    assert done["status"] == "interrupted"
    assert [t["status"] for t in done["trials"]] == ["pending", "pending"]  # none wrongly "completed"


def test_usage_errors_make_no_sweep_folder(tmp_path):
    doc = S.plan_sweep(write_config(tmp_path), params=["optimizer.lr=0.01"])
    for executor, scheduler in (("foo", None), ("dask", None)):
        with pytest.raises(ConfigError, match="--executor|--scheduler"):
            S.run_sweep(doc, runs_dir=tmp_path / "runs", executor=executor, scheduler=scheduler)
    assert not (tmp_path / "runs").exists()
    no_val = write_config(tmp_path, data={"dataset": "digits", "validation_split": 0})
    with pytest.raises(ConfigError, match="no validation data"):
        S.plan_sweep(no_val, params=["optimizer.lr=0.01"], metric="val_accuracy")


def test_parallel_sweeps_download_named_datasets_once_before_the_workers(served_mnist, tmp_path, monkeypatch):
    from nnrun.data.catalog import dataset_info
    from nnrun.data.progress import download_progress
    from nnrun.sweep.executors import fetch_datasets
    from nnrun.sweep.tuner import Tuner

    monkeypatch.setenv("NNRUN_MIRRORS_MNIST", served_mnist["good"])
    monkeypatch.setenv("NNRUN_DATA_DIR", str(tmp_path / "cache"))
    cfg = write_config(tmp_path, data={"dataset": "mnist", "validation_split": 0})
    doc = S.plan_sweep(cfg, params=["optimizer.lr=0.01,0.02"])
    tuner = Tuner(tmp_path, doc, trial_plots=False)
    jobs = [tuner.job(t) for t in doc["trials"]]
    reports = []
    with download_progress(reports.append):
        fetch_datasets(jobs)
        fetch_datasets(jobs)  # cached: nothing more to download
    started = sorted(r.filename for r in reports if r.done == 0)
    assert started == sorted(f for pair in dataset_info("mnist").files.values() for f in pair)
    assert all((tmp_path / "cache" / "mnist" / name).is_file() for name in started)


def test_a_trial_whose_files_vanished_fails_alone_in_a_parallel_resume(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.random((40, 64)), y=np.arange(40) % 10)
    cfg = write_config(tmp_path, data={"train": {"npz": "d.npz"}, "validation_split": 0.25})
    doc = S.plan_sweep(cfg, params=["optimizer.lr=0.01,0.02"])
    (tmp_path / "d.npz").unlink()
    sweep_dir = S.run_sweep(doc, runs_dir=tmp_path / "runs", workers=2, trial_plots=False, plots=False)
    saved = S.read_sweep(sweep_dir)
    assert saved["status"] == "completed"
    assert [t["status"] for t in saved["trials"]] == ["failed", "failed"]
    assert all("d.npz" in t["error"] for t in saved["trials"])


# -- the ranking table ------------------------------------------------------------------------
def test_the_ranking_shows_each_trials_rank_and_its_id():
    import io

    from rich.console import Console

    from nnrun.cli.sweep import ranks, trials_table

    def trial(index, metric, status="completed"):
        return {"index": index, "params": {"optimizer.lr": 0.1 * (index + 1)}, "status": status, "metric": metric,
                "best_epoch": 2, "seconds": 1.0, "error": None}

    doc = {"param_names": ["optimizer.lr"], "metric": "val_accuracy", "mode": "max"}
    ranked = [trial(3, 0.95), trial(0, 0.95), trial(2, 0.90), trial(1, None, "failed")]
    assert ranks(ranked) == ["1", "1", "3", "-"]
    console = Console(file=io.StringIO(), width=120)
    console.print(trials_table(doc, ranked, "ranking", best=3, ranked=True))
    cells = [line.replace("│", " ").replace("┃", " ").split() for line in console.file.getvalue().splitlines()]
    assert [row[:2] for row in cells if any("t00" in c for c in row)] == [
        ["1", "t003"], ["1", "t000"], ["3", "t002"], ["-", "t001"]]
    assert next(row for row in cells if "trial" in row)[:2] == ["rank", "trial"]
    console = Console(file=io.StringIO(), width=120)
    console.print(trials_table(doc, ranked, "finished"))  # the live table of finished trials: no ranks
    assert "rank" not in console.file.getvalue() and "t003" in console.file.getvalue()


@pytest.mark.parametrize("mode, best_first", [("max", [2, 0, 3, 1]), ("min", [1, 0, 3, 2])])
def test_the_ranking_puts_the_highest_metric_first_in_max_mode_and_the_lowest_in_min(mode, best_first):
    from nnrun.sweep.results import best_index, ranking

    metrics = [0.5, 0.1, 0.9, 0.5, None]  # trial 3 ties trial 0 (lower index first); 4 failed
    trials = [{"index": i, "status": "completed" if m is not None else "failed", "metric": m}
              for i, m in enumerate(metrics)]
    doc = {"mode": mode, "trials": trials}
    assert [t["index"] for t in ranking(doc)] == [*best_first, 4]
    assert best_index(doc) == best_first[0]
