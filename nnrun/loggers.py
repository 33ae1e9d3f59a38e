"""Streaming a run to the loggers people already use: TensorBoard (through tensorboardX) and MLflow
(mlflow-skinny), each an optional extra (`pip install 'nnrun[tensorboard]'`, `'nnrun[mlflow]'`).

Each epoch's metrics row (the names of metrics.csv: train_loss, val_accuracy, lr, ...) and its
diagnostics (`grad_norm/1_dense`, `dead_fraction/1_dense`, ...) are logged at step = epoch; at the
end, the test metrics, the warnings and findings, and the run's status. A resumed run goes on in
the same place (TensorBoard's folder, the MLflow run tagged with the run folder).
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import yaml

from nnrun import fmt
from nnrun.config import LOGGERS, Experiment, resolved_dict
from nnrun.errors import ConfigError
from nnrun.status import Status
from nnrun.train import Callback

# logger -> (the module it needs, the extra that installs it)
NEEDS = {"tensorboard": ("tensorboardX", "tensorboard"), "mlflow": ("mlflow", "mlflow")}
if set(NEEDS) != set(LOGGERS):
    raise RuntimeError(f"loggers without an install hint: {sorted(set(LOGGERS) ^ set(NEEDS))}")
METRIC_KEYS = ("lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")
DIAGNOSTIC_KEYS = ("grad_norm", "update_ratio", "dead_fraction", "saturated_fraction")
MLFLOW_STATUS = {Status.COMPLETED: "FINISHED", Status.STOPPED_EARLY: "FINISHED", Status.INTERRUPTED: "KILLED",
                 Status.PAUSED: "KILLED", Status.PRUNED: "KILLED"}  # stopped on purpose, not failed


def require(names: list[str]) -> None:
    """ConfigError (one line: what to install) when a logger's optional extra is missing."""
    for name in names:
        module, extra = NEEDS[name]
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"train.log: {name} needs {module}, an optional extra: "
                              f"pip install 'nnrun[{extra}]' (or drop {name} from --log / train.log)")


def epoch_scalars(row: dict, diagnostics: list[dict]) -> dict[str, float]:
    """The finite numbers of an epoch: its metrics row, and each layer's diagnostics as
    `<measure>/<layer>_<type>`."""
    scalars = {key: fmt.finite(row.get(key)) for key in METRIC_KEYS}
    for d in diagnostics:
        for key in DIAGNOSTIC_KEYS:
            scalars[f"{key}/{d['layer']}_{d['type']}"] = fmt.finite(d.get(key))
    return {k: v for k, v in scalars.items() if v is not None}


def flat_params(config: dict, prefix: str = "") -> dict[str, str]:
    """The resolved config as dotted keys (optimizer.lr) and short text values (MLflow params)."""
    params = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            params.update(flat_params(value, f"{dotted}."))
        else:
            params[dotted] = json.dumps(value, default=str)[:500]
    return params


class RunLogger(Callback):
    """Logs each finished epoch; finish() adds the end of the run and closes."""

    def __init__(self, run_dir: Path, exp: Experiment, diagnostics=None):
        self.run_dir, self.exp, self.diagnostics = run_dir, exp, diagnostics

    def on_epoch_end(self, state, row):
        rows = self.diagnostics.named_rows(state.net) if self.diagnostics is not None else []
        self.log(epoch_scalars(row, [d for d in rows if d["epoch"] == row["epoch"]]), row["epoch"])

    def log(self, scalars: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def finish(self, summary: dict) -> None:
        """The end of the run: test metrics, warnings and findings, status; then close."""
        raise NotImplementedError


class TensorBoardLogger(RunLogger):
    """Event files in <run>/tensorboard (`tensorboard --logdir runs` shows every run)."""

    def __init__(self, run_dir: Path, exp: Experiment, diagnostics=None):
        super().__init__(run_dir, exp, diagnostics)
        from tensorboardX import SummaryWriter

        # A resumed run adds a file of its own: event files are named by the second they start in.
        self.writer = SummaryWriter(logdir=str(run_dir / "tensorboard"), filename_suffix=f".{time.time_ns()}")
        self.writer.add_text("config", "```\n" + yaml.safe_dump(resolved_dict(exp), sort_keys=False) + "```", 0)

    def log(self, scalars, step):
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def finish(self, summary):
        step = summary.get("epochs_run") or 0
        for key in ("test_loss", "test_accuracy"):
            if fmt.finite(summary.get(key)) is not None:
                self.writer.add_scalar(key, summary[key], step)
        notes = [*(summary.get("warnings") or []), *(summary.get("findings") or [])]
        self.writer.add_text("summary", "\n\n".join([f"status: {summary.get('status')}", *notes]), step)
        self.writer.close()


class MLflowLogger(RunLogger):
    """An MLflow run named after the run folder, in the experiment named after the config, at
    $MLFLOW_TRACKING_URI or else the file store <runs-dir>/mlruns (`mlflow ui --backend-store-uri
    runs/mlruns`)."""

    def __init__(self, run_dir: Path, exp: Experiment, diagnostics=None):
        super().__init__(run_dir, exp, diagnostics)
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            # MLflow 3 keeps its file store in maintenance mode behind this switch; it is still the
            # one store that needs nothing but files.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = (run_dir.parent / "mlruns").resolve().as_uri()
        self.client = MlflowClient(tracking_uri=uri)
        self.run_id = self.start_or_resume()

    def start_or_resume(self) -> str:
        found = self.client.get_experiment_by_name(self.exp.name)
        experiment = found.experiment_id if found else self.client.create_experiment(self.exp.name)
        tag = str(self.run_dir.resolve())
        earlier = self.client.search_runs([experiment], filter_string=f"tags.`nnrun.run_dir` = '{tag}'")
        if earlier:
            self.client.update_run(earlier[0].info.run_id, status="RUNNING")
            return earlier[0].info.run_id
        run = self.client.create_run(experiment, run_name=self.run_dir.name, tags={"nnrun.run_dir": tag})
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in flat_params(resolved_dict(self.exp)).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params a call
            self.client.log_batch(run.info.run_id, params=params[start:start + 100])
        return run.info.run_id

    def log(self, scalars, step):
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, step) for key, value in scalars.items()]
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[start:start + 1000])

    def finish(self, summary):
        scalars = {k: fmt.finite(summary.get(k)) for k in ("test_loss", "test_accuracy")}
        self.log({k: v for k, v in scalars.items() if v is not None}, summary.get("epochs_run") or 0)
        self.client.set_tag(self.run_id, "nnrun.status", str(summary.get("status")))
        notes = [*(summary.get("warnings") or []), *(summary.get("findings") or [])]
        if notes:
            self.client.set_tag(self.run_id, "nnrun.findings", "\n".join(notes)[:5000])
        for name in ("config.yaml", "summary.json", "diagnostics.csv", "report.html"):
            if (self.run_dir / name).is_file():
                self.client.log_artifact(self.run_id, str(self.run_dir / name))
        self.client.set_terminated(self.run_id, MLFLOW_STATUS.get(summary.get("status"), "FAILED"))


CLASSES = {"tensorboard": TensorBoardLogger, "mlflow": MLflowLogger}


def start_loggers(exp: Experiment, run_dir: Path, diagnostics=None) -> list[RunLogger]:
    """The loggers train.log asks for, started for this run folder."""
    require(exp.train.log)
    return [CLASSES[name](run_dir, exp, diagnostics) for name in exp.train.log]
