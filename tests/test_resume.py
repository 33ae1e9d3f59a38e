"""Checkpoints and --resume: a run stopped at any moment (Ctrl-C, SIGTERM, kill -9) goes on to
the very weights and metrics of a run that was never stopped."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nnrun.checkpoint import FILE as CHECKPOINT
from nnrun.checkpoint import load as load_checkpoint
from nnrun.cli import app
from nnrun.config import load_config
from nnrun.experiment import resume_run, train_run
from nnrun.train import Callback

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()
# Dropout, Adam, a plateau schedule and early stopping with best weights: every kind of state.
CONFIG = {"name": "r", "seed": 5, "data": {"dataset": "digits", "validation_split": 0.2},
          "model": {"layers": [{"type": "flatten"}, {"type": "dense", "units": 32, "activation": "relu"},
                               {"type": "dropout", "rate": 0.3}, {"type": "dense", "units": 10, "activation": "softmax"}]},
          "optimizer": {"type": "adam", "lr": 0.01},
          "schedule": {"type": "reduce_on_plateau", "patience": 1, "factor": 0.5},
          "train": {"epochs": 8, "batch_size": 64, "early_stopping": {"patience": 3, "restore_best_weights": True}}}


def write_config(tmp_path: Path, **train) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, "train": {**CONFIG["train"], **train}}))
    return path


def metrics_without_seconds(run_dir: Path) -> list[dict]:
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def assert_same_run(run_dir: Path, reference: Path) -> None:
    assert (run_dir / "weights.json").read_bytes() == (reference / "weights.json").read_bytes()
    assert metrics_without_seconds(run_dir) == metrics_without_seconds(reference)
    assert (run_dir / "diagnostics.csv").read_text() == (reference / "diagnostics.csv").read_text()
    assert not (run_dir / CHECKPOINT).exists()  # a finished run keeps no checkpoint


class StopAt(Callback):
    """Ctrl-C in a given batch of a given epoch."""

    def __init__(self, epoch: int, batch: int):
        self.epoch, self.batch = epoch, batch

    def on_batch_end(self, state, loss, accuracy):
        if (state.epoch, state.batch) == (self.epoch, self.batch):
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ref")
    cfg = write_config(root)
    return cfg, train_run(load_config(cfg), root / "runs", make_plots=False)


@pytest.mark.parametrize("epoch, batch", [(1, 2), (2, 1), (4, 17), (8, 3)])
def test_resume_after_ctrl_c_anywhere_is_bit_identical(reference, tmp_path, epoch, batch):
    cfg, full = reference
    run_dir = train_run(load_config(cfg), tmp_path, callbacks=[StopAt(epoch, batch)], make_plots=False)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["epochs_run"] == epoch - 1
    assert load_checkpoint(run_dir / CHECKPOINT)["meta"]["rows"] == json.loads((run_dir / "metrics.json").read_text())
    resume_run(run_dir, make_plots=False)
    assert_same_run(run_dir, full)
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["status"] == json.loads((full / "summary.json").read_text())["status"]
    assert resumed["started"] == summary["started"] and len(resumed["resumed"]) == 1


def test_a_run_that_stopped_early_is_not_trained_further(tmp_path):
    # patience 0 with a huge min_delta: early stopping ends the run after epoch 2 of 8.
    cfg = write_config(tmp_path, early_stopping={"patience": 0, "min_delta": 100.0})
    full = train_run(load_config(cfg), tmp_path / "a", make_plots=False)
    assert json.loads((full / "summary.json").read_text())["epochs_run"] == 2

    class CtrlCAtTheEnd(Callback):  # after the stopping epoch's checkpoint, before the final files
        def on_train_end(self, state):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(load_config(cfg), tmp_path / "b", callbacks=[CtrlCAtTheEnd()], make_plots=False)
    run_dir = next((tmp_path / "b").iterdir())
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"
    resume_run(run_dir, make_plots=False)
    assert_same_run(run_dir, full)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "stopped_early"


def test_cli_resume_finished_bad_and_conflicting(reference, tmp_path):
    cfg, full = reference
    result = runner.invoke(app, ["train", "--resume", str(full)])
    assert result.exit_code == 0 and "already completed; nothing to resume" in result.output
    result = runner.invoke(app, ["train", str(cfg), "--resume", str(full)])
    assert result.exit_code == 2 and "drop CONFIG" in result.output
    result = runner.invoke(app, ["train", "--resume", str(tmp_path)])
    assert result.exit_code == 2 and "not a run folder" in result.output
    (tmp_path / "config.yaml").write_text((full / "config.yaml").read_text())
    (tmp_path / CHECKPOINT).write_bytes(b"PK\x03\x04 not really a zip")
    result = runner.invoke(app, ["train", "--resume", str(tmp_path)])
    assert result.exit_code == 2 and "not a readable checkpoint" in result.output
    assert "Traceback" not in result.output


# -- real processes -------------------------------------------------------------------------
def start_training(cfg: Path, runs: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "nnrun", "train", str(cfg), "--runs-dir", str(runs)],
                            cwd=runs.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def resume(run_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "nnrun", "train", "--resume", str(run_dir)], env=env,
                          capture_output=True, text=True, timeout=120)


def wait_for(proc: subprocess.Popen, runs: Path, moment: str) -> None:
    """Poll until the run reaches `moment`: "start" (its first checkpoint), "epoch N" (N epochs
    in metrics.json) or "final" (weights.json written: plots, report and summary still to come)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        run_dir = next(runs.iterdir(), None) if runs.is_dir() else None
        if run_dir is not None and reached(run_dir, moment):
            return
        time.sleep(0.005)


def reached(run_dir: Path, moment: str) -> bool:
    if moment == "start":
        return (run_dir / CHECKPOINT).is_file()
    if moment == "final":
        return (run_dir / "weights.json").is_file()
    rows = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else []
    return len(rows) >= int(moment.split()[1])


@pytest.fixture(scope="module")
def cli_reference(tmp_path_factory) -> tuple[Path, Path]:
    """A config long enough to interrupt (a few seconds) and its uninterrupted run."""
    root = tmp_path_factory.mktemp("cli")
    cfg = write_config(root, epochs=12, batch_size=16)
    proc = start_training(cfg, root / "runs")
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    return cfg, next((root / "runs").iterdir())


@pytest.mark.parametrize("sig, moment", [(signal.SIGINT, "start"), (signal.SIGINT, "epoch 3"),
                                         (signal.SIGINT, "final"), (signal.SIGTERM, "epoch 6"),
                                         (signal.SIGTERM, "final")])
def test_a_signalled_process_resumes_bit_identical(cli_reference, tmp_path, sig, moment):
    cfg, full = cli_reference
    proc = start_training(cfg, tmp_path / "runs")
    wait_for(proc, tmp_path / "runs", moment)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    run_dir = next((tmp_path / "runs").iterdir())
    if proc.returncode == 0:  # it finished before the signal: nothing to check but the result
        assert_same_run(run_dir, full)
        return
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == f"interrupted; resume with: nnrun train --resume {run_dir}"
    done = resume(run_dir)
    assert done.returncode == 0, done.stderr
    assert_same_run(run_dir, full)


@pytest.mark.parametrize("moment", ["start", "epoch 5", "final"])
def test_kill_9_never_leaves_a_corrupt_file(cli_reference, tmp_path, moment):
    cfg, full = cli_reference
    proc = start_training(cfg, tmp_path / "runs")
    wait_for(proc, tmp_path / "runs", moment)
    proc.kill()
    proc.communicate(timeout=60)
    run_dir = next((tmp_path / "runs").iterdir())
    for path in run_dir.rglob("*.json"):
        if not path.name.startswith("."):  # a write cut short leaves its temporary file, never a half file
            json.loads(path.read_text())
    if (run_dir / CHECKPOINT).exists():
        load_checkpoint(run_dir / CHECKPOINT)
        done = resume(run_dir)
        assert done.returncode == 0, done.stderr
        assert_same_run(run_dir, full)
        assert not list(run_dir.rglob(".*")), "resume removes what the killed writes left"
    else:  # killed after the run finished
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


def test_checkpoint_holds_no_pickled_object(reference, tmp_path):
    cfg, _ = reference
    run_dir = train_run(load_config(cfg), tmp_path, callbacks=[StopAt(3, 1)], make_plots=False)
    with np.load(run_dir / CHECKPOINT, allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)


def interrupted_run(cfg: Path, folder: Path) -> Path:
    return train_run(load_config(cfg), folder, callbacks=[StopAt(3, 2)], make_plots=False)


def test_a_checkpoint_for_another_config_is_refused_and_the_run_kept(reference, tmp_path):
    cfg, _ = reference
    run_dir = interrupted_run(cfg, tmp_path)
    before = (run_dir / "summary.json").read_text()
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("lr: 0.01", "lr: 0.02"))
    result = runner.invoke(app, ["train", "--resume", str(run_dir)])
    assert result.exit_code == 2, result.output
    assert "written for another config.yaml" in result.output and "Traceback" not in result.output
    assert (run_dir / "summary.json").read_text() == before  # still interrupted, still resumable


@pytest.mark.parametrize("damage", ["callback_types", "rows", "shuffle", "stopped", "callbacks"])
def test_a_damaged_checkpoint_is_one_line_exit_2_and_the_run_kept(reference, tmp_path, damage):
    cfg, _ = reference
    run_dir = interrupted_run(cfg, tmp_path)
    before = (run_dir / "summary.json").read_text()
    with np.load(run_dir / CHECKPOINT) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["meta"]))
    meta[damage] = {"callback_types": ["Nope"], "rows": "x", "shuffle": {"state": 1}, "stopped": ["odd", None],
                    "callbacks": []}[damage]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(run_dir / CHECKPOINT, **arrays)
    result = runner.invoke(app, ["train", "--resume", str(run_dir)])
    assert result.exit_code == 2, result.output
    assert f"{run_dir / CHECKPOINT}: does not fit this run" in result.output
    assert (run_dir / "summary.json").read_text() == before


def test_ctrl_c_while_the_report_is_written_leaves_a_resumable_run(reference, tmp_path, monkeypatch):
    import nnrun.report

    cfg, _ = reference
    real = nnrun.report.write_report

    def interrupted(run_dir):
        raise KeyboardInterrupt

    monkeypatch.setattr(nnrun.report, "write_report", interrupted)
    result = runner.invoke(app, ["train", str(cfg), "--runs-dir", str(tmp_path)])
    assert result.exit_code == 130
    run_dir = next(tmp_path.iterdir())
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"
    assert result.output.strip().splitlines()[-1] == f"interrupted; resume with: nnrun train --resume {run_dir}"
    monkeypatch.setattr(nnrun.report, "write_report", real)
    assert runner.invoke(app, ["train", "--resume", str(run_dir)]).exit_code == 0
    assert (run_dir / "report.html").is_file() and not (run_dir / CHECKPOINT).exists()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


def test_resume_names_what_it_was_given(tmp_path):
    (tmp_path / "c.yaml").write_text("x: 1\n")
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "c.yaml")])
    assert result.exit_code == 2 and f"{tmp_path / 'c.yaml'}: not a folder" in result.output
    result = runner.invoke(app, ["train", "--resume", "nope", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and f"nope: no such run folder (nor {tmp_path / 'nope'})" in result.output


def test_a_damaged_summary_does_not_stop_a_resume(reference, tmp_path):
    cfg, full = reference
    run_dir = interrupted_run(cfg, tmp_path)
    (run_dir / "summary.json").write_text('{"wall_seconds": null, "resumed": 5, "started": 3}')
    resume_run(run_dir, make_plots=False)
    assert_same_run(run_dir, full)


def test_a_checkpoint_that_unpacks_too_large_is_refused_before_reading(reference, tmp_path, monkeypatch):
    import nnrun.checkpoint

    cfg, _ = reference
    run_dir = interrupted_run(cfg, tmp_path)
    monkeypatch.setattr(nnrun.checkpoint, "MAX_BYTES", 1000)  # a zip bomb, scaled down
    result = runner.invoke(app, ["train", "--resume", str(run_dir)])
    assert result.exit_code == 2 and "not a readable checkpoint (ValueError: it unpacks to more than" in result.output
