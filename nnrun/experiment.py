"""The one place that turns an experiment into a run: load data, build, train, write the folder.

`nnrun train`, `evaluate`, `sweep` and `lr-find` call these functions (or the pieces they use).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnrun import fmt, nn
from nnrun.builder import Data, build_loss, build_network, build_optimizer, build_schedule, load_data
from nnrun.checkpoint import FILE as CHECKPOINT
from nnrun.checkpoint import Checkpoint, Trainer, restore
from nnrun.checkpoint import load as load_checkpoint
from nnrun.config import Experiment, load_config, resolved_dict
from nnrun.diagnostics import Diagnostics, findings, probe_sample
from nnrun.errors import ConfigError, NnrunError
from nnrun.fileio import check_inside, folder_lock, remove_leftovers, write_json, write_text
from nnrun.images import recipe_for
from nnrun.loggers import require as require_loggers
from nnrun.loggers import start_loggers
from nnrun.metrics import SmoothedLoss, ema
from nnrun.parallel import blas
from nnrun.runs import (
    create_run_dir,
    load_weights_into,
    local_time,
    read_summary,
    versions,
    write_config,
    write_diagnostics,
    write_metrics,
    write_summary,
    write_weights,
)
from nnrun.status import is_ok, is_partial
from nnrun.train import (
    BestEpoch,
    Callback,
    EarlyStopping,
    ReduceOnPlateau,
    RestoreBestWeights,
    Status,
    StopOnDivergence,
    TrainState,
    available_metric,
    evaluate_arrays,
    fit,
)

PathLike = str | os.PathLike


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) after training, while the run folder's last files were written."""

    def __init__(self, run_dir: Path):
        super().__init__(str(run_dir))
        self.run_dir = run_dir


class RunFinished(NnrunError):
    """A run asked to resume has nothing left to do (exit code 0)."""

    exit_code = 0


def prepare(exp: Experiment, init_weights: PathLike | None = None) -> tuple[Data, nn.Sequential]:
    """The experiment's data and its network (from init_weights when given); config errors
    (bad data, shapes, weights) raise here, before anything is written."""
    data = load_data(exp)
    net = build_network(exp, data.input_shape, data.num_classes)
    if init_weights:
        load_weights_into(net, init_weights)
    return data, net


def standard_callbacks(exp: Experiment, data: Data, schedule: nn.Schedule) -> list[Callback]:
    """What the config's train section asks of the loop: the best epoch by the early-stopping
    monitor (val_loss without one), the divergence stop, plateau, early stopping, best weights,
    and the diagnostics (on a probe of the training data)."""
    has_val = data.val is not None
    stopping = exp.train.early_stopping
    best = BestEpoch(available_metric(stopping.monitor if stopping else "val_loss", has_val),
                     stopping.min_delta if stopping else 0.0)
    callbacks: list[Callback] = [best, StopOnDivergence()]
    if exp.schedule.type == "reduce_on_plateau":
        callbacks.append(ReduceOnPlateau(schedule, available_metric(exp.train.plateau_monitor, has_val)))
    if stopping:
        callbacks.append(EarlyStopping(best, stopping.patience))
        if stopping.restore_best_weights:
            callbacks.append(RestoreBestWeights(best))
    if exp.train.diagnostics:
        callbacks.append(Diagnostics(probe_sample(data.train[0])))
    return callbacks


def shuffle_stream(exp: Experiment) -> np.random.Generator | None:
    """The stream that orders the batches ([seed, 1]); None when train.shuffle is off."""
    return np.random.default_rng([exp.seed, 1]) if exp.train.shuffle else None


def trainer_for(exp: Experiment, net: nn.Sequential, data: Data) -> Trainer:
    """The optimiser, schedule, shuffling stream and standard callbacks the config asks for."""
    schedule = build_schedule(exp, available_metric(exp.train.plateau_monitor, data.val is not None))
    return Trainer(net, build_optimizer(exp), schedule, shuffle_stream(exp), standard_callbacks(exp, data, schedule))


def diagnostics_of(trainer: Trainer) -> Diagnostics | None:
    return next((c for c in trainer.callbacks if isinstance(c, Diagnostics)), None)


@dataclass
class Resume:
    """A run's saved training state, already restored into `trainer`, and its old summary."""

    trainer: Trainer
    done: list[dict]
    stopped: tuple[Status, str | None] | None
    previous: dict


class RunCallback(Callback):
    """A callback that is also shown the run's data and network before training starts (a
    display that describes them, say); the loop itself knows neither."""

    def on_run_begin(self, data: Data, net: nn.Sequential) -> None: ...


def fit_experiment(exp: Experiment, net: nn.Sequential, data: Data, callbacks: Sequence[Callback] = (),
                   checkpoint: Path | None = None, resume: Resume | None = None,
                   trainer: Trainer | None = None) -> TrainState:
    """Train net on data as exp.train says, with the standard callbacks (those of `trainer`, when
    given) then `callbacks`; saving a checkpoint after each epoch when given its path, and going
    on from `resume`."""
    for callback in callbacks:
        if isinstance(callback, RunCallback):
            callback.on_run_begin(data, net)
    trainer = resume.trainer if resume else trainer or trainer_for(exp, net, data)
    saving = [Checkpoint(checkpoint, trainer, fingerprint(exp, data))] if checkpoint else []
    return fit(net, data.train, data.val, build_loss(exp), trainer.optimizer, trainer.schedule,
               exp.train.epochs, exp.train.batch_size, trainer.shuffle, [*trainer.callbacks, *saving, *callbacks],
               resume.done if resume else (), resume.stopped if resume else None)


def fingerprint(exp: Experiment, data: Data) -> dict:
    """What a checkpoint must match to be resumed: the resolved config and the data's sizes."""
    text = json.dumps(resolved_dict(exp), sort_keys=True, default=str)
    return {"config_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "samples": [len(split[0]) if split is not None else 0 for split in (data.train, data.val, data.test)]}


class MetricsWriter(Callback):
    """metrics.csv and metrics.json (and diagnostics.csv), rewritten after every epoch: a run that
    stops for any reason leaves the metrics of every epoch it finished."""

    def __init__(self, run_dir: Path, diagnostics: Diagnostics | None = None):
        self.run_dir, self.diagnostics = run_dir, diagnostics

    def on_epoch_end(self, state, row):
        self.write(state)

    def on_train_end(self, state):
        self.write(state)

    def write(self, state):
        write_metrics(self.run_dir, state.rows)
        if self.diagnostics is not None:
            write_diagnostics(self.run_dir, self.diagnostics.named_rows(state.net))


def train_run(exp: Experiment, runs_dir: PathLike = "runs", init_weights: PathLike | None = None,
              callbacks: Sequence[Callback] = (), make_plots: bool = True, folder: PathLike | None = None,
              command: str | None = None) -> Path:
    """Train the experiment and write its run folder, <runs_dir>/<time>-<name> (or `folder`
    itself, which must not exist yet); returns the folder's path. `callbacks` (a live display,
    say) run after the standard ones; `command`, the command line that started it, goes into
    the summary.

    Config errors (bad data, shapes, weights, a logger's missing extra) raise before the folder
    is created."""
    require_loggers(exp.train.log)
    data, net = prepare(exp, init_weights)
    run_dir = create_run_dir(runs_dir, exp.name) if folder is None else make_folder(Path(folder))
    with folder_lock(run_dir, "run"):  # a --resume of this folder waits for the end
        try:
            write_config(run_dir / "config.yaml", resolved_dict(exp))
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)  # a folder without its config is no run
            raise
        return run_into(run_dir, exp, data, net, callbacks, make_plots, command=command)


def make_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return folder


def resume_run(run_dir: PathLike, callbacks: Sequence[Callback] = (), make_plots: bool = True) -> Path:
    """Go on with a run folder from its checkpoint (an interrupted or killed run) to the same
    end as if it had never stopped. RunFinished when there is nothing left to do; FolderBusy when
    another process is resuming it."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir}: not a run folder (no config.yaml); give the folder `nnrun train` printed")
    with folder_lock(run_dir, "run"):
        summary = read_summary(run_dir) or {}
        if not (run_dir / CHECKPOINT).is_file() and is_ok(summary.get("status")):
            raise RunFinished(f"{run_dir}: already {summary['status']}; nothing to resume")
        check_inside(run_dir, run_dir / "plots")
        saved = load_checkpoint(run_dir / CHECKPOINT)
        exp = load_config(run_dir / "config.yaml")
        require_loggers(exp.train.log)
        data, net = prepare(exp)
        trainer = trainer_for(exp, net, data)
        done, stopped = restore(saved, trainer, fingerprint(exp, data), exp.train.epochs, run_dir / CHECKPOINT)
        remove_leftovers(run_dir)
        return run_into(run_dir, exp, data, net, callbacks, make_plots, Resume(trainer, done, stopped, summary))


def run_into(run_dir: Path, exp: Experiment, data: Data, net: nn.Sequential, callbacks: Sequence[Callback],
             make_plots: bool, resume: Resume | None = None, command: str | None = None) -> Path:
    """Train (or go on training) into run_dir and write its files; the checkpoint stays only
    while the run can be resumed. The loggers train.log asks for follow the run."""
    summary = {"name": exp.name, "status": Status.FAILED, "seed": exp.seed, "run_dir": run_dir.name,
               **({"command": command} if command else {}),
               "started": local_time(), "versions": versions(), "blas": blas()}
    summary.update(resumed_summary(resume.previous, summary["started"]) if resume else {})
    trainer = resume.trainer if resume else trainer_for(exp, net, data)
    diagnostics = diagnostics_of(trainer)
    loggers = start_loggers(exp, run_dir, diagnostics)
    try:
        fit_and_write(run_dir, exp, data, net, [MetricsWriter(run_dir, diagnostics), *loggers, *callbacks],
                      make_plots, trainer, resume, summary)
    finally:
        stop_loggers(loggers, summary)
    return run_dir


def fit_and_write(run_dir: Path, exp: Experiment, data: Data, net: nn.Sequential, callbacks: list[Callback],
                  make_plots: bool, trainer: Trainer, resume: Resume | None, summary: dict) -> None:
    """Train, score the test set, write the weights, plots, summary and report."""
    started, earlier = time.perf_counter(), summary.get("wall_seconds", 0.0)
    diagnostics = diagnostics_of(trainer)
    try:
        state = fit_experiment(exp, net, data, callbacks, run_dir / CHECKPOINT, resume, trainer)
        summary.update(run_summary(state, net, data))
        summary["warnings"] = training_warnings(exp, state, data)
        summary["findings"] = findings(state.rows, diagnostics.named_rows(net), diagnostics.divergence,
                                       guessing_loss(exp, data, data.train[1])) if diagnostics else []
        if data.test is not None and state.rows:
            test_loss, test_acc, _ = evaluate_arrays(net, build_loss(exp), *data.test)
            summary.update(test_loss=test_loss, test_accuracy=test_acc, test_weights=state.weights)
        write_weights(run_dir / "weights.json", net, prediction_info(exp, data))
        make_plots = make_plots and not is_partial(state.status)  # drawn when it has run to its end
        if make_plots and state.rows:
            draw_training_plots(exp.name, state, run_dir, diagnostics.named_rows(net) if diagnostics else [])
    except BaseException as e:
        interrupted = isinstance(e, KeyboardInterrupt)
        summary["status"] = Status.INTERRUPTED if interrupted else summary["status"]
        summary["error"] = None if interrupted else summary.get("error") or f"{type(e).__name__}: {e}"
        if interrupted:
            raise RunInterrupted(run_dir) from None
        raise
    finally:
        summary["wall_seconds"] = earlier + time.perf_counter() - started
        write_summary(run_dir, summary)
    finish(run_dir, summary, make_plots)


def stop_loggers(loggers: list, summary: dict) -> None:
    """Each logger's end of the run; while another error is on its way, a logger's own failure
    does not hide it."""
    failing = sys.exc_info()[1] is not None
    for logger in loggers:
        try:
            logger.finish(summary)
        except Exception:
            if not failing:
                raise


def resumed_summary(previous: dict, now: str) -> dict:
    """What a resumed run's summary keeps of the last one (a killed run wrote none; a damaged
    one is ignored): the command that started it, the first start, when it resumed, the time spent
    so far."""
    started = previous.get("started") if isinstance(previous.get("started"), str) else now
    resumed = previous.get("resumed") if isinstance(previous.get("resumed"), list) else []
    seconds = fmt.finite(previous.get("wall_seconds")) or 0.0
    command = {"command": previous["command"]} if isinstance(previous.get("command"), str) else {}
    return {**command, "started": started, "resumed": [*map(str, resumed), now], "wall_seconds": seconds}


def finish(run_dir: Path, summary: dict, make_plots: bool) -> None:
    """The report, then the checkpoint goes: only now is the run complete. Ctrl-C in between
    leaves it interrupted (and resumable), never 'completed' without its report. A paused or
    pruned run keeps its checkpoint: it can go on."""
    try:
        if make_plots:
            from nnrun.report import write_report

            write_report(run_dir)
    except KeyboardInterrupt:
        write_summary(run_dir, {**summary, "status": Status.INTERRUPTED, "error": None})
        raise RunInterrupted(run_dir) from None
    if summary["status"] != Status.INTERRUPTED and not is_partial(summary["status"]):
        (run_dir / CHECKPOINT).unlink(missing_ok=True)


def run_summary(state: TrainState, net: nn.Sequential, data: Data) -> dict:
    best = next((r for r in state.rows if r["epoch"] == state.best_epoch), None)
    return {"status": state.status, "epochs_run": len(state.rows), "best_epoch": state.best_epoch,
            "monitor": state.monitor, "final": state.rows[-1] if state.rows else None, "best": best,
            "error": state.error, "num_params": net.num_params, "data": data.sources,
            "class_names": data.class_names, "scale_divisor": data.divisor}


def prediction_info(exp: Experiment, data: Data) -> dict:
    """What weights.json carries for `nnrun predict` beyond the layers: the class names and how
    inputs were prepared (the scaling divisor, the range of the scaled training values, the
    named dataset the training split came from and the image recipe it implies)."""
    x = data.train[0]
    dataset = exp.data.dataset if exp.data.train is None else None
    return {"class_names": list(data.class_names),
            "input": {"scale_divisor": data.divisor, "range": [float(x.min()), float(x.max())],
                      "dataset": dataset, "recipe": recipe_for(dataset, data.input_shape, data.class_names)}}


def draw_training_plots(name: str, state: TrainState, run_dir: Path, diagnostics: list[dict]) -> None:
    from nnrun import plots

    plots.learning_curves(state.rows, run_dir / "plots" / "learning_curves.png",
                          title=f"{name}: learning curves", best_epoch=state.best_epoch,
                          monitor=state.monitor)
    plots.lr_schedule(state.rows, run_dir / "plots" / "lr_schedule.png")
    if diagnostics:
        plots.diagnostics_plot(diagnostics, run_dir / "plots" / "diagnostics.png", title=f"{name}: diagnostics")



# -- a run that completed but learned nothing -----------------------------------------------
# "At chance" means up to a tenth of the way from chance (1/classes) to 100 %: 19 % for 10
# classes, 55 % for 2. Validation-set noise stays well inside that; a run that learned
# anything worth keeping does not.
CHANCE_MARGIN = 0.1


def training_warnings(exp: Experiment, state: TrainState, data: Data) -> list[str]:
    """One warning, with its likely cause, when a run that completed ended at chance accuracy,
    no better than its first epoch, or with a loss above that of guessing every class equally;
    judged on validation metrics (train ones without validation data)."""
    if not state.rows or not is_ok(state.status):
        return []
    split = "val" if state.rows[-1].get("val_accuracy") is not None else "train"
    guess = guessing_loss(exp, data, (data.val if split == "val" else data.train)[1])
    losses = [loss_value(row[f"{split}_loss"]) for row in state.rows]
    accuracies = [float(row[f"{split}_accuracy"]) for row in state.rows]
    findings = hopeless_findings(split, losses, accuracies, data.num_classes, guess)
    if not findings:
        return []
    train_losses = [loss_value(row["train_loss"]) for row in state.rows]
    cause = likely_cause(train_losses, losses, guess, exp.optimizer.lr)
    return [f"training went nowhere: {'; '.join(findings)}. Likely cause: {cause}"]


def guessing_loss(exp: Experiment, data: Data, labels: np.ndarray) -> float:
    """The loss of predicting every class equally for these labels (ln 10 = 2.30 for
    cross-entropy on 10 classes)."""
    return build_loss(exp).value(np.full((len(labels), data.num_classes), 1 / data.num_classes), labels)


def loss_value(v) -> float:
    """A recorded loss, infinite when it was not finite."""
    f = fmt.finite(v)
    return math.inf if f is None else f


def hopeless_findings(split: str, losses: list[float], accuracies: list[float], classes: int,
                      guess: float) -> list[str]:
    chance, loss, acc = 1 / classes, f"{split}_loss", f"{split}_accuracy"
    found = []
    if accuracies[-1] <= chance + CHANCE_MARGIN * (1 - chance):
        found.append(f"{acc} {fmt.pct(accuracies[-1])} is at chance ({fmt.pct(chance)} for {classes} classes)")
    if len(losses) > 1 and losses[-1] >= losses[0] and accuracies[-1] <= accuracies[0]:
        found.append(f"the last epoch is no better than the first ({loss} {loss_text(losses[0])} -> "
                     f"{loss_text(losses[-1])}, {acc} {fmt.pct(accuracies[0])} -> {fmt.pct(accuracies[-1])})")
    if losses[-1] > guess:
        found.append(f"{loss} {loss_text(losses[-1])} is above {guess:.4f}, the loss of guessing every class equally")
    return found


def loss_text(v: float) -> str:
    return fmt.significant(v, missing="not finite")


def likely_cause(train_losses: list[float], losses: list[float], guess: float, lr: float) -> str:
    """Steps too large blow the train loss up (a mean over the epoch's steps, it shows what the
    end-of-epoch validation loss hides), or leave a network that predicts the same for every
    input (its loss is then the guessing loss), or make the loss jump; steps too small barely
    move the train loss, or move the (validation) loss down, but too slowly."""
    rate = f"optimizer.lr={lr:g}"
    high = f"the learning rate is too high ({rate}): try a tenth of it, or find one with nnrun lr-find"
    low = f"the learning rate is too low ({rate}): try ten times it, or find one with nnrun lr-find"
    steps = list(zip(losses, losses[1:], strict=False))
    if max(train_losses) > 2 * guess or abs(losses[-1] - guess) <= 1e-3 * guess:
        return high
    if steps and max(train_losses) - min(train_losses) <= 0.01 * train_losses[0]:
        return low
    if steps and all(b <= a for a, b in steps):
        return low
    if steps:
        return high
    return f"check the learning rate ({rate}; nnrun lr-find finds one) and that the labels match the inputs"


# -- the learning-rate range test -----------------------------------------------------------
@dataclass
class RangeTest(Callback):
    """Raises the rate exponentially from lr_min to lr_max over `steps` batches, recording each
    batch's loss; stops early when the loss is not finite or the smoothed loss exceeds
    `diverge` times its minimum."""

    lr_min: float
    lr_max: float
    steps: int
    diverge: float = 4.0

    def __post_init__(self):
        self.ratio = (self.lr_max / self.lr_min) ** (1 / (self.steps - 1))
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.stopped = "reached lr_max"
        self.smoothed, self.lowest = SmoothedLoss(), math.inf

    def on_batch_begin(self, state):
        state.lr = self.lr_min * self.ratio ** len(self.lrs)

    def on_batch_end(self, state, loss, accuracy):
        self.lrs.append(state.lr)
        self.losses.append(float(loss))
        if self.should_stop(state.lr, loss) or len(self.lrs) == self.steps:
            state.request_stop()

    def should_stop(self, lr: float, loss: float) -> bool:
        if not math.isfinite(loss):
            self.stopped = f"loss became {loss} at lr {lr:.3g}"
            return True
        smooth = self.smoothed.update(loss)
        self.lowest = min(self.lowest, smooth)
        if self.smoothed.count > 5 and smooth > self.diverge * self.lowest:
            self.stopped = f"loss exploded at lr {lr:.3g}"
            return True
        return False


def suggest_lr(lrs: Sequence[float], losses: Sequence[float], beta: float = 0.9,
               skip_start: int = 3) -> float | None:
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
            runs_dir: PathLike = "runs", diverge: float = 4.0,
            callbacks: Sequence[Callback] = ()) -> tuple[Path, dict]:
    """The learning-rate range test: train once from the config's initial weights with the
    training loop and a RangeTest callback (cycling through the data as long as it takes).
    Writes <runs_dir>/<time>-lr-find-<name>/ (config.yaml, lr_find.json, lr_find.csv,
    plots/lr_find.png) and returns (folder, result)."""
    if steps < 5:
        raise ConfigError(f"--steps {steps}: the range test needs at least 5 steps")
    if not 0 < lr_min < lr_max:
        raise ConfigError(f"--min-lr {lr_min:g} --max-lr {lr_max:g}: need 0 < min-lr < max-lr")
    data, net = prepare(exp)
    test = RangeTest(lr_min, lr_max, steps, diverge)
    epochs = math.ceil(steps / math.ceil(len(data.train[0]) / exp.train.batch_size))
    state = fit(net, data.train, None, build_loss(exp), build_optimizer(exp), nn.make_schedule("constant", lr_min),
                epochs, exp.train.batch_size, shuffle_stream(exp), [test, *callbacks])
    if state.status == Status.INTERRUPTED:
        raise KeyboardInterrupt  # nothing written: a partial ramp suggests nothing
    result = {"name": exp.name, "lr_min": lr_min, "lr_max": lr_max, "steps": len(test.lrs),
              "stopped": test.stopped, "suggestion": suggest_lr(test.lrs, test.losses),
              "lrs": test.lrs, "losses": [v if math.isfinite(v) else None for v in test.losses],
              "smoothed": [None if not math.isfinite(v) else float(v) for v in ema(test.losses)]}
    run_dir = create_run_dir(runs_dir, f"lr-find-{exp.name}")
    write_range_test(run_dir, exp, result, test.losses)
    return run_dir, result


def write_range_test(run_dir: Path, exp: Experiment, result: dict, losses: list[float]) -> None:
    from nnrun import plots

    write_config(run_dir / "config.yaml", resolved_dict(exp))
    write_json(run_dir / "lr_find.json", result)
    buf = io.StringIO()
    buf.write("step,lr,loss,smoothed\n")
    for i, (lr, v, s) in enumerate(zip(result["lrs"], result["losses"], result["smoothed"], strict=True)):
        buf.write(f"{i + 1},{lr!r},{'' if v is None else v!r},{'' if s is None else s!r}\n")
    write_text(run_dir / "lr_find.csv", buf.getvalue())
    plots.lr_range_plot(result["lrs"], losses, run_dir / "plots" / "lr_find.png",
                        suggestion=result["suggestion"], title=f"{exp.name}: learning-rate range test")
