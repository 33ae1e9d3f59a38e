"""The live display of `nnrun train`: a training-loop callback (loaded only when training)."""

from __future__ import annotations

import statistics
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from nnrun.experiment import RunCallback
from nnrun.fmt import duration, fixed, pct


def epoch_text(epoch: int, epochs: int) -> str:
    """'epoch  7/12': as wide at epoch 7 as at epoch 12, so the columns never shift."""
    return f"epoch {epoch:>{len(str(epochs))}}/{epochs}"


def seconds_text(seconds: float) -> str:
    """'85ms' below a second (epochs on small data are that fast), '1.2s', '2m05s' above."""
    if round(seconds * 1000) < 1000:
        return f"{seconds * 1000:.0f}ms"
    return duration(seconds)


def clock(seconds: float) -> str:
    """'0:01:05', like rich's time columns."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def epoch_line(row: dict, epochs: int) -> str:
    parts = [epoch_text(row["epoch"], epochs), f"loss {fixed(row['train_loss'])}",
             f"acc {pct(row['train_accuracy'])}"]
    if row.get("val_loss") is not None:
        parts += [f"val_loss {fixed(row['val_loss'])}", f"val_acc {pct(row['val_accuracy'])}"]
    parts += [f"lr {row['lr']:.3g}", seconds_text(row["seconds"])]
    return "  ".join(parts)


def sample_counts(data) -> str:
    """'train 1617, validation 180, test 360' (the splits the data has)."""
    splits = (("train", data.train), ("validation", data.val), ("test", data.test))
    return ", ".join(f"{name} {len(split[0])}" for name, split in splits if split is not None)


def blas_threads() -> str | None:
    """'openblas Haswell, 2 threads': the BLAS library numpy calls, its kernel and threads."""
    from nnrun.parallel import blas

    info = blas()
    if info is None or info["threads"] is None:
        return None
    kernel = f" {info['kernel']}" if info["kernel"] else ""
    return f"{info['library'] or 'blas'}{kernel}, {info['threads']} threads"


def run_line(data, net) -> str:
    """What training is about to work on, as Keras's fit says before its first epoch."""
    parts = [f"data: {sample_counts(data)} samples of {data.input_shape}, {data.num_classes} classes",
             f"model: {net.num_params:,} parameters"]
    threads = blas_threads()
    return "; ".join(parts + ([f"BLAS: {threads}"] if threads else []))


class RunClock:
    """Time left in the whole run: the current epoch's remainder at its own pace, plus the
    epochs after it at the mean epoch time so far (this epoch's projection before any ends)."""

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self.epoch_started = time.perf_counter()

    def start_epoch(self) -> None:
        self.epoch_started = time.perf_counter()

    def end_epoch(self, seconds: float) -> None:
        self.epoch_seconds.append(seconds)

    def left(self, state) -> str:
        mean = statistics.fmean(self.epoch_seconds) if self.epoch_seconds else None
        if state.batch == 0:
            return "-:--:--" if mean is None else clock((state.epochs - state.epoch + 1) * mean)
        per_batch = (time.perf_counter() - self.epoch_started) / state.batch
        mean = per_batch * state.batches if mean is None else mean
        return clock(per_batch * (state.batches - state.batch) + (state.epochs - state.epoch) * mean)


class LiveDisplay(RunCallback):
    """One line about the data and model, then a live rich progress bar on a terminal and one
    plain line per epoch (the plain lines only when the output is not a terminal)."""

    def __init__(self, console: Console):
        self.console = console
        self.progress: Progress | None = None
        self.task = None
        self.clock = RunClock()

    def on_run_begin(self, data, net):
        self.console.print(run_line(data, net), markup=False, highlight=False, soft_wrap=True)

    def on_epoch_begin(self, state):
        self.clock.start_epoch()
        if not self.console.is_terminal:
            return
        fields = dict(epoch=epoch_text(state.epoch, state.epochs), loss="-", acc="-", lr=state.lr,
                      left=self.clock.left(state))
        if self.progress is None:
            self.progress = Progress(
                TextColumn("[bold]{task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"), TextColumn("acc {task.fields[acc]}"),
                TextColumn("lr {task.fields[lr]:.3g}"), TextColumn("{task.fields[left]} left"),
                console=self.console, transient=True)
            self.progress.start()
            self.task = self.progress.add_task("train", total=state.batches, **fields)
        self.progress.reset(self.task, total=state.batches, **fields)

    def on_batch_end(self, state, loss, accuracy):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.batch, loss=fixed(state.train_loss),
                                 acc=pct(state.train_accuracy), left=self.clock.left(state))

    def on_epoch_end(self, state, row):
        self.clock.end_epoch(row["seconds"])
        self.console.print(epoch_line(row, state.epochs), markup=False, highlight=False, soft_wrap=True)

    def on_train_end(self, state):
        self.close()

    def close(self):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
