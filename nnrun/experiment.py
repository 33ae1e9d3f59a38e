"""The one place that turns an experiment into a run: load data, build, train, write the folder.

`nnrun train`, `evaluate`, `sweep` and `lr-find` call these functions (or the pieces they use).
"""

from __future__ import annotations

import io
import math
import os
import time
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from nnrun.builder import build_loss, build_network, build_optimizer, load_data
from nnrun.config import Experiment, resolved_dict
from nnrun.errors import ConfigError
from nnrun.fileio import write_json, write_text
from nnrun.metrics import ema
from nnrun.runs import (create_run_dir, load_weights_into, versions, write_config, write_metrics,
                        write_summary, write_weights)
from nnrun.train import Reporter, SilentReporter, batches, evaluate_arrays, fit


def row_for(history, epoch: Optional[int]) -> Optional[dict]:
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
                                  title=f"{exp.name}: learning curves", best_epoch=history.best_epoch)
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


def suggest_lr(lrs: Sequence[float], losses: Sequence[float], beta: float = 0.9,
               skip_start: int = 3) -> Optional[float]:
    """The rate where the smoothed loss falls fastest (most negative slope against log rate),
    looking only before the smoothed minimum."""
    lrs = np.asarray(lrs, float)
    smooth = ema(losses, beta)
    finite = np.isfinite(smooth)
    if finite.sum() < skip_start + 3:
        return None
    n = int(np.flatnonzero(finite)[-1]) + 1
    lo_idx = int(np.nanargmin(smooth[:n]))
    stop = max(lo_idx + 1, skip_start + 3)
    x, y = np.log(lrs[:stop]), smooth[:stop]
    slope = np.gradient(y, x)
    i = skip_start + int(np.argmin(slope[skip_start:]))
    return float(lrs[i])


def lr_find(exp: Experiment, lr_min: float = 1e-6, lr_max: float = 1.0, steps: int = 100,
                  runs_dir: Union[str, os.PathLike] = "runs", diverge: float = 4.0,
                  progress: Optional[Callable[[int, float, float], None]] = None) -> tuple[Path, dict]:
    """Train once from the config's initial weights while the rate grows exponentially from
    lr_min to lr_max over `steps` batches (cycling through the data); stop early when the loss
    is not finite or the smoothed loss exceeds `diverge` times its minimum. Writes
    <runs_dir>/<time>-lr-find-<name>/ (config.yaml, lr_find.json, lr_find.csv,
    plots/lr_find.png) and returns (folder, result)."""
    from nnrun import plots as P

    if steps < 5:
        raise ConfigError(f"--steps {steps}: the range test needs at least 5 steps")
    if not 0 < lr_min < lr_max:
        raise ConfigError(f"--min-lr {lr_min:g} --max-lr {lr_max:g}: need 0 < min-lr < max-lr")
    data = load_data(exp)
    net = build_network(exp, data.input_shape, data.num_classes)
    loss_fn, optimizer = build_loss(exp), build_optimizer(exp)
    rng = np.random.default_rng([exp.seed, 1]) if exp.train.shuffle else None
    x, y = data.train
    ratio = (lr_max / lr_min) ** (1 / (steps - 1))
    lrs, losses, reason = [], [], "reached lr_max"
    best, avg, k = math.inf, 0.0, 0

    def stream():
        while True:
            yield from batches(len(x), exp.train.batch_size, rng)

    for step, idx in zip(range(steps), stream()):
        lr = lr_min * ratio ** step
        value, _ = net.loss_and_gradients(loss_fn, x[idx], y[idx])
        lrs.append(lr)
        losses.append(float(value))
        if not math.isfinite(value):
            reason = f"loss became {value} at lr {lr:.3g}"
            break
        k += 1
        avg = 0.9 * avg + 0.1 * value
        smooth = avg / (1 - 0.9 ** k)
        best = min(best, smooth)
        if progress:
            progress(step + 1, lr, float(value))
        if k > 5 and smooth > diverge * best:
            reason = f"loss exploded at lr {lr:.3g}"
            break
        optimizer.step(net.parameters(), net.gradients(), lr)
    suggestion = suggest_lr(lrs, losses)
    run_dir = create_run_dir(runs_dir, f"lr-find-{exp.name}")
    write_config(run_dir / "config.yaml", resolved_dict(exp))
    result = {"name": exp.name, "lr_min": lr_min, "lr_max": lr_max, "steps": len(lrs),
              "stopped": reason, "suggestion": suggestion,
              "lrs": lrs, "losses": [v if math.isfinite(v) else None for v in losses],
              "smoothed": [None if not math.isfinite(v) else float(v) for v in ema(losses)]}
    write_json(run_dir / "lr_find.json", result)
    buf = io.StringIO()
    buf.write("step,lr,loss,smoothed\n")
    for i, (lr, v, s) in enumerate(zip(lrs, result["losses"], result["smoothed"])):
        buf.write(f"{i + 1},{lr!r},{'' if v is None else v!r},{'' if s is None else s!r}\n")
    write_text(run_dir / "lr_find.csv", buf.getvalue())
    P.lr_range_plot(lrs, losses, run_dir / "plots" / "lr_find.png", suggestion=suggestion,
                    title=f"{exp.name}: learning-rate range test")
    return run_dir, result
