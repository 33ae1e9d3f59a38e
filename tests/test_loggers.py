"""Loggers: a run streamed to TensorBoard and MLflow and read back with each tool's own reader;
a missing optional extra is one line saying what to install. Each test skips without its package."""

from __future__ import annotations

import csv
import importlib.util
import json
import struct
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from nnrun.cli import app
from nnrun.config import load_config
from nnrun.experiment import resume_run, train_run
from nnrun.train import Callback

runner = CliRunner()
CONFIG = {"name": "logged", "seed": 2, "data": {"dataset": "digits", "validation_split": 0.2},
          "model": {"layers": [{"type": "flatten"}, {"type": "dense", "units": 16, "activation": "relu"},
                               {"type": "dense", "units": 10, "activation": "softmax"}]},
          "optimizer": {"type": "adam", "lr": 0.01}, "train": {"epochs": 3, "batch_size": 128}}


def write_config(tmp_path: Path, log) -> Path:
    path = tmp_path / "logged.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, "train": {**CONFIG["train"], "log": log}}))
    return path


def metrics(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "metrics.json").read_text())


def diagnostics(run_dir: Path) -> list[dict]:
    return list(csv.DictReader((run_dir / "diagnostics.csv").open()))


class StopAt(Callback):
    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_batch_end(self, state, loss, accuracy):
        if state.epoch == self.epoch:
            raise KeyboardInterrupt


# -- TensorBoard: event files read back with tensorboardX's own record format and protobuf -----
def tensorboard_records(folder: Path) -> list:
    """Every Event in the folder's event files, checking each record's masked CRC-32C."""
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.record_writer import masked_crc32c

    events = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        at = 0
        while at < len(data):
            header = data[at:at + 8]
            (length,) = struct.unpack("Q", header)
            assert struct.unpack("I", data[at + 8:at + 12])[0] == masked_crc32c(header)
            body = data[at + 12:at + 12 + length]
            assert struct.unpack("I", data[at + 12 + length:at + 16 + length])[0] == masked_crc32c(body)
            events.append(Event.FromString(body))
            at += 16 + length
    return events


def scalars(events) -> dict[str, dict[int, float]]:
    found: dict[str, dict[int, float]] = {}
    for event in events:
        for value in event.summary.value:
            if value.HasField("simple_value"):
                found.setdefault(value.tag, {})[event.step] = value.simple_value
    return found


def test_tensorboard_gets_every_epochs_metrics_and_diagnostics(tmp_path):
    pytest.importorskip("tensorboardX")
    run_dir = train_run(load_config(write_config(tmp_path, "tensorboard")), tmp_path / "runs", make_plots=False)
    events = tensorboard_records(run_dir / "tensorboard")
    logged = scalars(events)
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
        assert logged[key] == pytest.approx({r["epoch"]: r[key] for r in metrics(run_dir)}, rel=1e-6)
    for row in diagnostics(run_dir):
        if row["epoch"] != "0" and row["grad_norm"]:
            tag = f"grad_norm/{row['layer']}_{row['type']}"
            assert logged[tag][int(row["epoch"])] == pytest.approx(float(row["grad_norm"]), rel=1e-6)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert logged["test_accuracy"] == pytest.approx({3: summary["test_accuracy"]}, rel=1e-6)
    texts = {v.tag: v.tensor.string_val[0].decode() for e in events for v in e.summary.value if v.tensor.string_val}
    assert any("optimizer:" in t for t in texts.values()) and any("status: completed" in t for t in texts.values())


def test_tensorboards_own_reader_reads_the_run_when_installed(tmp_path):
    pytest.importorskip("tensorboardX")
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    run_dir = train_run(load_config(write_config(tmp_path, "tensorboard")), tmp_path / "runs", make_plots=False)
    acc = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("val_accuracy")] == pytest.approx(
        [(r["epoch"], r["val_accuracy"]) for r in metrics(run_dir)])


# -- MLflow: read back with MlflowClient ---------------------------------------------------------
@pytest.fixture
def mlflow_client(monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # as nnrun sets it for its own file store
    from mlflow.tracking import MlflowClient

    return lambda runs: MlflowClient(tracking_uri=(runs / "mlruns").resolve().as_uri())


def mlflow_run(client, run_dir: Path):
    (run,) = client.search_runs([client.get_experiment_by_name("logged").experiment_id])
    assert run.info.run_name == run_dir.name and run.data.tags["nnrun.run_dir"] == str(run_dir.resolve())
    return run


def history(client, run, key: str) -> dict[int, float]:
    return {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}


def test_mlflow_gets_the_config_every_epochs_metrics_and_the_end(tmp_path, mlflow_client):
    runs = tmp_path / "runs"
    run_dir = train_run(load_config(write_config(tmp_path, ["mlflow"])), runs, make_plots=False)
    client = mlflow_client(runs)
    run = mlflow_run(client, run_dir)
    assert run.info.status == "FINISHED" and run.data.tags["nnrun.status"] == "completed"
    assert run.data.params["optimizer.lr"] == "0.01" and run.data.params["train.epochs"] == "3"
    for key in ("train_loss", "val_accuracy", "lr"):
        assert history(client, run, key) == pytest.approx({r["epoch"]: r[key] for r in metrics(run_dir)})
    dead = {int(r["epoch"]): float(r["dead_fraction"]) for r in diagnostics(run_dir) if r["layer"] == "1" and r["epoch"] != "0"}
    assert history(client, run, "dead_fraction/1_dense") == pytest.approx(dead)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert history(client, run, "test_accuracy") == pytest.approx({3: summary["test_accuracy"]})
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "summary.json", "diagnostics.csv"} <= artifacts


def test_a_resumed_run_goes_on_in_the_same_mlflow_run_and_tensorboard_folder(tmp_path, mlflow_client):
    pytest.importorskip("tensorboardX")
    runs = tmp_path / "runs"
    exp = load_config(write_config(tmp_path, ["mlflow", "tensorboard"]))
    run_dir = train_run(exp, runs, callbacks=[StopAt(epoch=3)], make_plots=False)
    client = mlflow_client(runs)
    assert mlflow_run(client, run_dir).info.status == "KILLED"
    resume_run(run_dir, make_plots=False)
    run = mlflow_run(client, run_dir)  # still one run
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [1, 2, 3]
    assert history(client, run, "val_loss") == pytest.approx({r["epoch"]: r["val_loss"] for r in metrics(run_dir)})
    steps = sorted(scalars(tensorboard_records(run_dir / "tensorboard"))["val_loss"])
    assert steps == [1, 2, 3]


# -- the command line and missing extras ---------------------------------------------------------
def test_log_on_the_command_line_adds_to_the_config(tmp_path, mlflow_client):
    runs = tmp_path / "runs"
    result = runner.invoke(app, ["train", str(write_config(tmp_path, [])), "--runs-dir", str(runs), "-q",
                                 "--log", "mlflow", "--log", "mlflow"])
    assert result.exit_code == 0, result.output
    (run_dir,) = [p for p in runs.iterdir() if p.name != "mlruns"]
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["log"] == ["mlflow"]
    assert mlflow_run(mlflow_client(runs), run_dir).info.status == "FINISHED"
    both = runner.invoke(app, ["train", "--resume", str(run_dir), "--log", "tensorboard"])
    assert both.exit_code == 2 and "--log" in both.output


@pytest.mark.parametrize("logger, module", [("tensorboard", "tensorboardX"), ("mlflow", "mlflow")])
def test_a_missing_extra_is_one_line_saying_what_to_install(tmp_path, monkeypatch, logger, module):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    runs = tmp_path / "runs"
    result = runner.invoke(app, ["train", str(write_config(tmp_path, [])), "--runs-dir", str(runs), "--log", logger])
    assert result.exit_code == 2
    assert result.output == (f"error: train.log: {logger} needs {module}, an optional extra: pip install "
                             f"'nnrun[{logger}]' (or drop {logger} from --log / train.log)\n")
    assert not runs.exists()  # refused before any folder was made


def test_an_unknown_logger_in_the_config_is_a_config_error(tmp_path):
    result = runner.invoke(app, ["validate", str(write_config(tmp_path, "wandb"))])
    assert result.exit_code == 2
    assert "train.log[0]: Input should be 'tensorboard' or 'mlflow'" in result.output
