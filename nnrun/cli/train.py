"""`nnrun validate` and `nnrun train`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from nnrun.cli.common import RUNS_DIR_HELP, SET_HELP, app, handle_errors, out, print_error
from nnrun.fmt import fixed, pct
from nnrun.train import Callback, Status


# -- validate -------------------------------------------------------------------------------
def summary_table(net, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("layer")
    table.add_column("output shape")
    table.add_column("params", justify="right")
    for row in net.summary():
        kind = row["type"] + (f" ({row['activation']})" if row["activation"] not in ("linear", row["type"]) else "")
        table.add_row(str(row["index"]), kind, str(row["output_shape"]), f"{row['params']:,}")
    table.add_section()
    table.add_row("", "total", f"input {net.input_shape}", f"{net.num_params:,}")
    return table


@app.command()
@handle_errors
def validate(config: Path = typer.Argument(..., help="Experiment YAML file."),
             set_: list[str] = typer.Option([], "--set", help=SET_HELP)):
    """Validate a config and print the model summary (layers, output shapes, parameters)."""
    from nnrun.builder import build_network, load_data
    from nnrun.config import load_config

    exp = load_config(config, tuple(set_))
    data = load_data(exp)
    net = build_network(exp, data.input_shape, data.num_classes)
    out.print(summary_table(net, f"{exp.name}: {config}"))
    sizes = ", ".join(f"{k} {len(v[0])}" for k, v in
                      (("train", data.train), ("validation", data.val), ("test", data.test)) if v)
    out.print(f"data: {sizes}; {data.num_classes} classes; input {data.input_shape}")
    out.print(f"{config}: valid")


# -- train ----------------------------------------------------------------------------------
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


@app.command()
@handle_errors
def train(config: Path = typer.Argument(..., help="Experiment YAML file."),
          set_: list[str] = typer.Option([], "--set", help=SET_HELP),
          runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_DIR_HELP),
          name: str | None = typer.Option(None, "--name", help="Run name (default: the config's name)."),
          seed: int | None = typer.Option(None, "--seed", help="Random seed (default: the config's seed)."),
          init_weights: Path | None = typer.Option(None, "--init-weights", help="Start from this weights.json."),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors.")):
    """Train the experiment a config declares and write its run folder."""
    from nnrun.config import load_config
    from nnrun.experiment import train_run

    overrides = list(set_) + ([f"name={name}"] if name else []) + ([f"seed={seed}"] if seed is not None else [])
    exp = load_config(config, tuple(overrides))
    display = [] if quiet else [LiveDisplay(out)]
    try:
        run_dir = train_run(exp, runs_dir, init_weights, display)
    finally:
        for d in display:
            d.close()
    from nnrun.runs import read_json

    summary = read_json(run_dir / "summary.json")
    if not quiet:
        print_train_summary(summary)
        out.print(str(run_dir), markup=False, soft_wrap=True)
    if summary["status"] == Status.INTERRUPTED:
        raise typer.Exit(130)
    if summary["status"] == Status.DIVERGED:
        print_error(f"training diverged: {summary['error']}")
        raise typer.Exit(1)


def print_train_summary(summary: dict) -> None:
    parts = [f"status {summary['status']}", f"{summary['epochs_run']} epochs",
             f"{summary['wall_seconds']:.1f}s"]
    best = summary.get("best")
    if best:
        parts.append(f"best epoch {best['epoch']} by {summary['monitor']}"
                     + (f": val_acc {pct(best['val_accuracy'])}" if best.get("val_accuracy") is not None else ""))
    if summary.get("test_accuracy") is not None:
        parts.append(f"test_acc {100 * summary['test_accuracy']:.2f}%")
    out.print("  ".join(parts), markup=False, soft_wrap=True)
