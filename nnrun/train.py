"""The training loop, and train_run(): a config in, a complete run folder out."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Protocol

import numpy as np

from nnrun import nn
from nnrun.builder import Data, build_loss, build_network, build_optimizer, build_schedule, load_data
from nnrun.config import Experiment, monitor_mode, resolved_dict
from nnrun.runs import (create_run_dir, load_weights_into, versions, write_config, write_metrics,
                        write_summary, write_weights)


class Reporter(Protocol):
    """What the loop tells the outside world (the CLI draws a live display from it)."""

    def epoch_start(self, epoch: int, epochs: int, lr: float, batches: int) -> None: ...
    def batch_end(self, batch: int, loss: float, accuracy: float) -> None: ...
    def epoch_end(self, row: dict) -> None: ...


class SilentReporter:
    def epoch_start(self, epoch, epochs, lr, batches): pass
    def batch_end(self, batch, loss, accuracy): pass
    def epoch_end(self, row): pass


@dataclass
class History:
    rows: list[dict] = field(default_factory=list)
    status: str = "completed"
    best_epoch: Optional[int] = None
    monitor: str = "val_loss"
    error: Optional[str] = None
    weights: str = "final"  # the network ends with "final" or "best" weights


def evaluate_arrays(net: nn.Sequential, loss: nn.Loss, x: np.ndarray, y: np.ndarray,
                    batch_size: int = 512) -> tuple[float, float, np.ndarray]:
    """(mean loss, accuracy, outputs) of the network on (x, y) in evaluation mode."""
    out = net.predict(x, batch_size)
    return loss.value(out, y), float(np.mean(out.argmax(axis=1) == y)), out


class Monitor:
    """Tracks the best value of a metric (min for losses, max for accuracies)."""

    def __init__(self, name: str, min_delta: float = 0.0):
        self.name, self.min_delta = name, min_delta
        self.sign = 1 if monitor_mode(name) == "min" else -1
        self.best: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self.wait = 0

    def update(self, row: dict) -> bool:
        """Record an epoch; True when it is the best so far."""
        value = row.get(self.name)
        if value is None or not math.isfinite(value):
            self.wait += 1
            return False
        if self.best is None or self.sign * (self.best - value) > self.min_delta:
            self.best, self.best_epoch, self.wait = value, row["epoch"], 0
            return True
        self.wait += 1
        return False


def batches(n: int, batch_size: int, rng: Optional[np.random.Generator]):
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def available_metric(name: str, has_val: bool) -> str:
    """val_* metrics fall back to the matching train_* metric when there is no validation data."""
    return name.replace("val_", "train_", 1) if name.startswith("val_") and not has_val else name


def fit(exp: Experiment, net: nn.Sequential, data: Data, reporter: Reporter = SilentReporter()) -> History:
    """Train net on data as exp.train says; returns the per-epoch history. The network ends with
    the best weights when early stopping asks to restore them, else those of the last complete
    epoch (also after Ctrl-C in the middle of one)."""
    has_val = data.val is not None
    es = exp.train.early_stopping
    monitor = Monitor(available_metric(es.monitor if es else "val_loss", has_val),
                      es.min_delta if es else 0.0)
    plateau_metric = available_metric(exp.train.plateau_monitor, has_val)
    history = History(monitor=monitor.name)
    schedule = build_schedule(exp, plateau_metric)
    best_weights, last_complete = None, net.get_weights()
    try:
        for row in run_epochs(exp, net, data, schedule, reporter, history):
            last_complete = net.get_weights()
            schedule.observe(row[plateau_metric])
            if monitor.update(row) and es and es.restore_best_weights:
                best_weights = last_complete
            if es and monitor.wait > es.patience:
                history.status = "stopped_early"
                break
    except KeyboardInterrupt:
        history.status = "interrupted"
    if history.status in ("interrupted", "diverged"):
        net.set_weights(last_complete)  # not the half-trained or non-finite weights
    history.best_epoch = monitor.best_epoch
    if best_weights is not None:
        net.set_weights(best_weights)
        history.weights = "best"
    return history


def run_epochs(exp: Experiment, net: nn.Sequential, data: Data, schedule: nn.Schedule,
               reporter: Reporter, history: History):
    """Yield each finished epoch's metrics row (also appended to history.rows)."""
    cfg = exp.train
    loss_fn, optimizer = build_loss(exp), build_optimizer(exp)
    shuffle_rng = np.random.default_rng([exp.seed, 1]) if cfg.shuffle else None
    x, y = data.train
    n_batches = math.ceil(len(x) / cfg.batch_size)
    for t in range(cfg.epochs):
        start = time.perf_counter()
        lr = schedule(t)
        reporter.epoch_start(t + 1, cfg.epochs, lr, n_batches)
        total_loss = correct = seen = 0.0
        # Overflow while diverging is expected: it shows as a non-finite loss and becomes
        # status "diverged", so numpy's warnings would only be noise.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for b, idx in enumerate(batches(len(x), cfg.batch_size, shuffle_rng)):
                value, out = net.loss_and_gradients(loss_fn, x[idx], y[idx])
                if not math.isfinite(value):
                    history.status = "diverged"
                    history.error = f"loss became {value} in epoch {t + 1}; try a smaller optimizer.lr"
                    return
                optimizer.step(net.parameters(), net.gradients(), lr)
                total_loss += value * len(idx)
                correct += float(np.sum(out.argmax(axis=1) == y[idx]))
                seen += len(idx)
                reporter.batch_end(b + 1, total_loss / seen, correct / seen)
        row = {"epoch": t + 1, "lr": lr, "train_loss": total_loss / seen,
               "train_accuracy": correct / seen, "val_loss": None, "val_accuracy": None}
        if data.val is not None:
            row["val_loss"], row["val_accuracy"], _ = evaluate_arrays(net, loss_fn, *data.val)
        row["seconds"] = time.perf_counter() - start
        history.rows.append(row)
        reporter.epoch_end(row)
        yield row


def row_for(history: History, epoch: Optional[int]) -> Optional[dict]:
    return next((r for r in history.rows if r["epoch"] == epoch), None)


def train_run(exp: Experiment, runs_dir: str | os.PathLike = "runs", init_weights: Optional[str] = None,
              reporter: Reporter = SilentReporter(), make_plots: bool = True) -> Path:
    """Train the experiment and write its run folder; returns the folder's path.

    Config errors (bad data, shapes, weights) raise before the folder is created."""
    data = load_data(exp)
    net = build_network(exp, data.input_shape, data.num_classes)
    if init_weights:
        load_weights_into(net, init_weights)
    run_dir = create_run_dir(runs_dir, exp.name)
    write_config(run_dir / "config.yaml", resolved_dict(exp))
    started = time.perf_counter()
    summary = {"name": exp.name, "status": "failed", "seed": exp.seed, "run_dir": run_dir.name,
               "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "versions": versions()}
    try:
        history = fit(exp, net, data, reporter)
        summary.update(status=history.status, epochs_run=len(history.rows),
                       best_epoch=history.best_epoch, monitor=history.monitor,
                       final=history.rows[-1] if history.rows else None,
                       best=row_for(history, history.best_epoch), error=history.error,
                       num_params=net.num_params, data=data.sources,
                       class_names=data.class_names, scale_divisor=data.divisor)
        if data.test is not None and history.rows:
            test_loss, test_acc, _ = evaluate_arrays(net, build_loss(exp), *data.test)
            summary.update(test_loss=test_loss, test_accuracy=test_acc, test_weights=history.weights)
        write_weights(run_dir / "weights.json", net)
        write_metrics(run_dir, history.rows)
        if make_plots and history.rows:
            from nnrun import plots

            plots.learning_curves(history.rows, run_dir / "plots" / "learning_curves.png",
                                  title=f"{exp.name}: learning curves", best_epoch=history.best_epoch,
                                  monitor=history.monitor)
            plots.lr_schedule(history.rows, run_dir / "plots" / "lr_schedule.png")
    except BaseException as e:
        summary["error"] = summary.get("error") or f"{type(e).__name__}: {e}"
        raise
    finally:
        summary["wall_seconds"] = time.perf_counter() - started
        write_summary(run_dir, summary)
    if make_plots:
        from nnrun.report import write_report

        write_report(run_dir)
    return run_dir
