"""The live display of `nnrun train`: a training-loop callback (loaded only when training)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from nnrun.fmt import fixed, pct
from nnrun.train import Callback


def epoch_line(row: dict, epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {fixed(row['train_loss'])}",
             f"acc {pct(row['train_accuracy'])}"]
    if row.get("val_loss") is not None:
        parts += [f"val_loss {fixed(row['val_loss'])}", f"val_acc {pct(row['val_accuracy'])}"]
    parts += [f"lr {row['lr']:.3g}", f"{row['seconds']:.1f}s"]
    return "  ".join(parts)


class LiveDisplay(Callback):
    """A live rich progress bar on a terminal; one plain line per epoch otherwise."""

    def __init__(self, console: Console):
        self.console = console
        self.progress: Progress | None = None
        self.task = None

    def on_epoch_begin(self, state):
        if not self.console.is_terminal:
            return
        fields = dict(epoch=state.epoch, epochs=state.epochs, loss=0.0, acc=0.0, lr=state.lr)
        if self.progress is None:
            self.progress = Progress(
                TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
                MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.4f}"),
                TextColumn("acc {task.fields[acc]:.2%}"), TextColumn("lr {task.fields[lr]:.3g}"),
                TimeRemainingColumn(), console=self.console, transient=True)
            self.progress.start()
            self.task = self.progress.add_task("train", total=state.batches, **fields)
        self.progress.reset(self.task, total=state.batches, **fields)

    def on_batch_end(self, state, loss, accuracy):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.batch, loss=state.train_loss,
                                 acc=state.train_accuracy)

    def on_epoch_end(self, state, row):
        self.console.print(epoch_line(row, state.epochs), markup=False, highlight=False, soft_wrap=True)

    def on_train_end(self, state):
        self.close()

    def close(self):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
