"""The training loop and its callbacks. It knows no YAML and no files: everything beyond
"for each epoch, for each batch: forward, backward, step" is a callback.

The hooks, in order: on_train_begin, then per epoch on_epoch_begin, per batch on_batch_begin
and on_batch_end, on_epoch_end; on_train_end last, always (also after Ctrl-C or an error). A
callback stops training with `state.request_stop()`: checked after every batch and every epoch,
and never taken back. An epoch that does not finish leaves no trace: no metrics row, and the
weights go back to the end of the last complete epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from nnrun import nn
from nnrun.metrics import metric_mode
from nnrun.parallel import shard_threads
from nnrun.status import Status

Split = tuple[np.ndarray, np.ndarray]


def available_metric(metric: str, has_val: bool) -> str:
    """val_* metrics fall back to the matching train_* metric when there is no validation data."""
    return metric.replace("val_", "train_", 1) if metric.startswith("val_") and not has_val else metric


@dataclass
class TrainState:
    """What the loop shares with its callbacks, and what fit() returns."""

    net: nn.Sequential
    epochs: int
    batches: int  # per epoch
    epoch: int = 0  # the current epoch, from 1
    batch: int = 0  # the current batch of the epoch, from 1
    lr: float = 0.0
    train_loss: float = math.nan  # running means over the current epoch's batches so far
    train_accuracy: float = math.nan
    rows: list[dict] = field(default_factory=list)  # one metrics row per complete epoch
    status: Status = Status.COMPLETED
    error: str | None = None
    stopping: bool = False  # a callback asked to end training: see request_stop
    last_complete_weights: dict = field(default_factory=dict)  # a copy, taken at each epoch's end
    best_epoch: int | None = None
    monitor: str | None = None  # the metric that chose best_epoch
    weights: str = "final"  # the network ends with the "final" or the "best" weights

    def request_stop(self, status: Status = Status.STOPPED_EARLY, error: str | None = None) -> None:
        """End training after this batch (or epoch); the first request's status and error stand."""
        if not self.stopping:
            self.stopping, self.status, self.error = True, status, error


class Callback:
    """Override the hooks you need; each receives the loop's state."""

    def on_train_begin(self, state: TrainState) -> None: ...
    def on_epoch_begin(self, state: TrainState) -> None: ...
    def on_batch_begin(self, state: TrainState) -> None: ...
    def on_batch_end(self, state: TrainState, loss: float, accuracy: float) -> None:
        """`loss` and `accuracy` are this batch's; state.train_loss/train_accuracy the epoch's so far."""
    def on_epoch_end(self, state: TrainState, row: dict) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...

    def state_dict(self) -> dict:
        """What a checkpoint must keep of this callback: numbers, None, or numpy arrays."""
        return {}

    def load_state_dict(self, saved: dict) -> None:
        """Continue from a state_dict()."""


class Callbacks(Callback):
    """Several callbacks called in order."""

    def __init__(self, callbacks: Sequence[Callback]):
        self.callbacks = list(callbacks)

    def on_train_begin(self, state):
        for c in self.callbacks:
            c.on_train_begin(state)

    def on_epoch_begin(self, state):
        for c in self.callbacks:
            c.on_epoch_begin(state)

    def on_batch_begin(self, state):
        for c in self.callbacks:
            c.on_batch_begin(state)

    def on_batch_end(self, state, loss, accuracy):
        for c in self.callbacks:
            c.on_batch_end(state, loss, accuracy)

    def on_epoch_end(self, state, row):
        for c in self.callbacks:
            c.on_epoch_end(state, row)

    def on_train_end(self, state):
        for c in self.callbacks:
            c.on_train_end(state)


# -- the loop -------------------------------------------------------------------------------
def batches(n: int, batch_size: int, rng: np.random.Generator | None) -> Iterator[np.ndarray]:
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def evaluate_arrays(net: nn.Sequential, loss: nn.Loss, x: np.ndarray, y: np.ndarray,
                    batch_size: int = 512) -> tuple[float, float, np.ndarray]:
    """(mean loss, accuracy, outputs) of the network on (x, y) in evaluation mode."""
    with shard_threads(net, batch_size):
        value, out = net.evaluate(loss, x, y, batch_size)
    return value, float(np.mean(out.argmax(axis=1) == y)), out


def fit(net: nn.Sequential, train: Split, val: Split | None, loss: nn.Loss, optimizer: nn.Optimizer,
        schedule: nn.Schedule, epochs: int, batch_size: int, shuffle: np.random.Generator | None = None,
        callbacks: Sequence[Callback] = (), done: Sequence[dict] = (),
        stopped: tuple[Status, str | None] | None = None) -> TrainState:
    """Train net on `train` for up to `epochs` epochs of mini-batches (in the order `shuffle`
    permutes them, or as given), at the rate schedule(epoch index); score `val` after each epoch.
    `done` holds the rows of epochs already trained (when resuming): training goes on after them,
    unless `stopped` says how a callback had already ended it.
    Returns the state: per-epoch rows, status, best epoch, which weights the network ends with."""
    state = TrainState(net, epochs, math.ceil(len(train[0]) / batch_size), rows=list(done),
                       epoch=len(done), last_complete_weights=net.get_weights())
    if stopped:
        state.request_stop(*stopped)
    hooks = Callbacks(callbacks)
    with shard_threads(net, batch_size):
        try:
            hooks.on_train_begin(state)
            for t in range(len(done), epochs):
                if state.stopping:  # asked at the end of the last epoch (or before: a resumed stop)
                    break
                state.epoch, state.lr = t + 1, schedule(t)
                hooks.on_epoch_begin(state)
                start = time.perf_counter()
                if not run_epoch(state, train, loss, optimizer, batch_size, shuffle, hooks):
                    break
                row = {"epoch": state.epoch, "lr": state.lr, "train_loss": state.train_loss,
                       "train_accuracy": state.train_accuracy, "val_loss": None, "val_accuracy": None}
                if val is not None:
                    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # see run_epoch
                        row["val_loss"], row["val_accuracy"], _ = evaluate_arrays(net, loss, *val)
                row["seconds"] = time.perf_counter() - start
                if not sound(net, row):
                    state.request_stop(Status.DIVERGED, f"the weights or the validation loss stopped being finite "
                                                        f"in epoch {state.epoch}; try a smaller optimizer.lr")
                    break
                state.rows.append(row)
                state.last_complete_weights = net.get_weights()
                hooks.on_epoch_end(state, row)
        except KeyboardInterrupt:
            state.status = Status.INTERRUPTED
        finally:
            if len(state.rows) < state.epoch:  # an unfinished epoch: not its half-trained weights
                net.set_weights(state.last_complete_weights)
            hooks.on_train_end(state)
    return state


def sound(net: nn.Sequential, row: dict) -> bool:
    """An epoch counts only if every weight, and the validation loss, is finite."""
    return (row["val_loss"] is None or math.isfinite(row["val_loss"])) and all(
        np.isfinite(p).all() for p in net.parameters().values())


def train_step(net: nn.Sequential, loss: nn.Loss, optimizer: nn.Optimizer, x: np.ndarray,
               y: np.ndarray, lr: float) -> tuple[float, np.ndarray]:
    """One mini-batch: forward, loss, backward and the optimiser's update; (loss value, outputs).
    A non-finite loss takes no step (there is nothing worth taking)."""
    value, out = net.loss_and_gradients(loss, x, y)
    if math.isfinite(value):
        optimizer.step(net.parameters(), net.gradients(), lr, flat=net.flat_buffers())
    return value, out


def run_epoch(state: TrainState, train: Split, loss: nn.Loss, optimizer: nn.Optimizer, batch_size: int,
              shuffle: np.random.Generator | None, hooks: Callback) -> bool:
    """One pass over the training data, keeping the running means in state; False when a
    callback stopped it before the end."""
    x, y = train
    total_loss = correct = seen = 0.0
    # Overflow while diverging is expected: it shows as a non-finite loss, which a callback
    # acts on, so numpy's warnings would only be noise.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for b, idx in enumerate(batches(len(x), batch_size, shuffle)):
            state.batch = b + 1
            hooks.on_batch_begin(state)
            value, out = train_step(state.net, loss, optimizer, x[idx], y[idx], state.lr)
            hits = out.argmax(axis=1) == y[idx]
            total_loss += value * len(idx)
            correct += float(np.sum(hits))
            seen += len(idx)
            state.train_loss, state.train_accuracy = total_loss / seen, correct / seen
            hooks.on_batch_end(state, value, float(np.mean(hits)))
            if state.stopping:
                return False
    return True


# -- callbacks ------------------------------------------------------------------------------
class BestEpoch(Callback):
    """The one "best so far": the epoch with the best value of one metric (lowest loss, highest
    accuracy), improving only by more than min_delta. Other callbacks read it; the run's
    summary reports it as best_epoch."""

    def __init__(self, metric: str, min_delta: float = 0.0):
        self.metric = metric
        self.tracker = nn.Monitor(metric_mode(metric), min_delta)
        self.improved = False
        self.best_epoch: int | None = None

    @property
    def wait(self) -> int:
        """Epochs since the last improvement."""
        return self.tracker.wait

    def on_train_begin(self, state):
        state.monitor, state.best_epoch = self.metric, self.best_epoch

    def on_epoch_end(self, state, row):
        self.improved = self.tracker.update(row.get(self.metric))
        if self.improved:
            state.best_epoch = self.best_epoch = row["epoch"]

    def state_dict(self):
        return {"best": self.tracker.best, "wait": self.tracker.wait, "improved": self.improved,
                "best_epoch": self.best_epoch}

    def load_state_dict(self, saved):
        self.tracker.best, self.tracker.wait = saved["best"], saved["wait"]
        self.improved, self.best_epoch = saved["improved"], saved["best_epoch"]


class EarlyStopping(Callback):
    """Stop when the best epoch is `patience` epochs old (as Keras: patience 2 stops after two
    epochs without improvement)."""

    def __init__(self, best: BestEpoch, patience: int):
        self.best, self.patience = best, patience

    def on_epoch_end(self, state, row):
        if not self.best.improved and self.best.wait >= self.patience:
            state.request_stop(Status.STOPPED_EARLY)


class RestoreBestWeights(Callback):
    """At the end, the network goes back to the best epoch's weights, whether or not training
    stopped early."""

    def __init__(self, best: BestEpoch):
        self.best, self.weights = best, None

    def on_epoch_end(self, state, row):
        if self.best.improved:
            self.weights = state.last_complete_weights  # already a copy: fit makes a new one each epoch

    def on_train_end(self, state):
        if self.weights is not None:
            state.net.set_weights(self.weights)
            state.weights = "best"

    def state_dict(self):
        return dict(self.weights or {})

    def load_state_dict(self, saved):
        self.weights = dict(saved) or None


class ReduceOnPlateau(Callback):
    """Feeds one metric to a reduce_on_plateau schedule after each epoch; the schedule lowers
    the rate when the metric stops improving."""

    def __init__(self, schedule: nn.Schedule, metric: str):
        self.schedule, self.metric = schedule, metric

    def on_epoch_end(self, state, row):
        self.schedule.observe(row[self.metric])


class StopOnDivergence(Callback):
    """Ends training when the loss stops being finite (status diverged)."""

    def on_batch_end(self, state, loss, accuracy):
        if not math.isfinite(loss):
            state.request_stop(Status.DIVERGED,
                               f"loss became {loss} in epoch {state.epoch}; try a smaller optimizer.lr")


class PauseAt(Callback):
    """Ends training after epoch `epoch` with status paused (a sweep's rung), or at once when a
    resumed run is already there. Put it after the checkpoint callback: the saved state then
    knows nothing of the pause, so resuming goes on as if it had never stopped."""

    def __init__(self, epoch: int, status: Status = Status.PAUSED):
        self.epoch, self.status = epoch, status

    def on_train_begin(self, state):
        self.pause_after(state, len(state.rows))

    def on_epoch_end(self, state, row):
        self.pause_after(state, state.epoch)

    def pause_after(self, state, epochs_done: int) -> None:
        """A run that has reached its last epoch ends as usual: there is nothing to pause."""
        if self.epoch <= epochs_done < state.epochs and not state.stopping:
            state.request_stop(self.status)
