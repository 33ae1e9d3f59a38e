"""`nnrun validate` and `nnrun train`."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from nnrun.cli.common import (
    RUNS_DIR_ENV,
    RUNS_DIR_HELP,
    SET_HELP,
    app,
    command_line,
    err,
    examples,
    handle_errors,
    out,
    plain,
    print_error,
    shown_as_text,
)
from nnrun.fmt import pct
from nnrun.status import Status


# -- validate -------------------------------------------------------------------------------
def summary_table(net, title: str) -> Table:
    table = Table(title=plain(title), title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("layer")
    table.add_column("output shape")
    table.add_column("params", justify="right")
    for row in net.summary():
        kind = row["type"] + (f" ({row['activation']})" if row["activation"] not in ("linear", row["type"]) else "")
        table.add_row(str(row["index"]), plain(kind), str(row["output_shape"]), f"{row['params']:,}")
    table.add_section()
    table.add_row("", "total", f"input {net.input_shape}", f"{net.num_params:,}")
    return table


@app.command(epilog=examples("nnrun validate configs/quickstart.yaml",
                             "nnrun validate configs/quickstart.yaml --set 'model.layers[0].filters=8'"))
@handle_errors
def validate(config: Path = typer.Argument(..., help="Experiment YAML file."),
             set_: list[str] = typer.Option([], "--set", help=SET_HELP)):
    """Validate a config and print the model summary (layers, output shapes, parameters)."""
    from nnrun.builder import build_network, load_data, needs_download
    from nnrun.config import load_config

    exp = load_config(config, tuple(set_))
    if needs_download(exp):
        validate_without_download(exp, config)
        return
    data = load_data(exp)
    net = build_network(exp, data.input_shape, data.num_classes)
    out.print(summary_table(net, f"{exp.name}: {config}"))
    sizes = ", ".join(f"{k} {len(v[0])}" for k, v in
                      (("train", data.train), ("validation", data.val), ("test", data.test)) if v)
    out.print(f"data: {sizes}; {data.num_classes} classes; input {data.input_shape}", markup=False)
    out.print(f"{shown_as_text(str(config))}: valid", markup=False, soft_wrap=True)


def validate_without_download(exp, config: Path) -> None:
    """The summary of a config whose named dataset is not downloaded yet: shapes and classes
    from the dataset's catalogue entry, so that validating never downloads."""
    from nnrun.builder import build_network, catalogue_input, dataset_splits

    input_shape, num_classes = catalogue_input(exp)
    net = build_network(exp, input_shape, num_classes)
    out.print(summary_table(net, f"{exp.name}: {config}"))
    splits = dataset_splits(exp.data)
    out.print(f"data: {exp.data.dataset}'s {' and '.join(splits)} split{'s are' if len(splits) > 1 else ' is'} "
              f"not downloaded yet (nnrun train fetches it); checked with its catalogue entry: "
              f"input {input_shape}, {num_classes} classes", markup=False, soft_wrap=True)
    out.print(f"{shown_as_text(str(config))}: valid", markup=False, soft_wrap=True)


# -- train ----------------------------------------------------------------------------------
@app.command(epilog=examples("nnrun train configs/quickstart.yaml",
                             "nnrun train configs/digits-mlp.yaml --set optimizer.lr=0.01",
                             "nnrun train --resume runs/20261130-101500-cnn"))
@handle_errors
def train(config: Path | None = typer.Argument(None, help="Experiment YAML file (not with --resume)."),
          set_: list[str] = typer.Option([], "--set", help=SET_HELP),
          runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", envvar=RUNS_DIR_ENV, help=RUNS_DIR_HELP),
          name: str | None = typer.Option(None, "--name", help="Run name (default: the config's name)."),
          seed: int | None = typer.Option(None, "--seed", help="Random seed (default: the config's seed)."),
          init_weights: Path | None = typer.Option(None, "--init-weights", help="Start from this weights.json."),
          resume: Path | None = typer.Option(None, "--resume",
                                             help="Go on with an interrupted run folder from its checkpoint."),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors.")):
    """Train the experiment a config declares and write its run folder (or finish an
    interrupted one with --resume RUN)."""
    from nnrun.cli.live import LiveDisplay
    from nnrun.config import load_config
    from nnrun.experiment import RunFinished, RunInterrupted, resume_run, train_run
    from nnrun.runs import read_json

    check_train_options(config, resume, set_, name, seed, init_weights)
    display = [] if quiet else [LiveDisplay(out)]
    try:
        if resume is not None:
            run_dir = resume_run(resolve_resume(resume, runs_dir), display)
        else:
            overrides = [*set_, *([name_override(name)] if name else []), *([f"seed={seed}"] if seed is not None else [])]
            run_dir = train_run(load_config(config, tuple(overrides)), runs_dir, init_weights, display,
                                command=command_line())
    except RunFinished as done:
        out.print(shown_as_text(str(done)), markup=False, soft_wrap=True)
        return
    except RunInterrupted as stopped:
        exit_interrupted(stopped.run_dir)
    finally:
        for d in display:
            d.close()
    summary = read_json(run_dir / "summary.json")
    if not quiet:
        print_train_summary(summary)
        for warning in summary.get("warnings") or []:
            print_warning(warning)
        out.print(shown_as_text(str(run_dir)), markup=False, soft_wrap=True)
    if summary["status"] == Status.INTERRUPTED:
        exit_interrupted(run_dir)
    if summary["status"] == Status.DIVERGED:
        print_error(f"training diverged: {summary['error']}")
        raise typer.Exit(1)


def name_override(name: str) -> str:
    """--name NAME as a --set: a name is a string, even `yes`, `2024` or `0x10` (a bare
    name=yes would be read as YAML, a boolean)."""
    from nnrun.config import check_name

    return f"name={json.dumps(check_name(name))}"


def exit_interrupted(run_dir: Path) -> None:
    from nnrun.checkpoint import FILE as CHECKPOINT

    if (run_dir / CHECKPOINT).is_file():
        err.print(f"interrupted; resume with: {shown_as_text(shlex.join(['nnrun', 'train', '--resume', str(run_dir)]))}",
                  markup=False, soft_wrap=True)
    else:
        err.print(f"interrupted before its first checkpoint; train again ({run_dir} holds nothing to resume)",
                  markup=False, soft_wrap=True)
    raise typer.Exit(130)


def check_train_options(config, resume, set_, name, seed, init_weights) -> None:
    from nnrun.errors import ConfigError

    if resume is None and config is None:
        raise ConfigError("give a CONFIG to train (or --resume RUN to finish an interrupted run)")
    if resume is not None and (config is not None or set_ or name or seed is not None or init_weights):
        raise ConfigError("--resume goes on with the run as it was configured: drop CONFIG, --set, --name, "
                          "--seed and --init-weights")


def resolve_resume(resume: Path, runs_dir: Path) -> Path:
    """A run folder given by its path, or by its name inside --runs-dir."""
    from nnrun.errors import ConfigError

    for candidate in (resume, runs_dir / resume):
        if candidate.is_dir():
            return candidate
    if resume.exists():
        raise ConfigError(f"{resume}: not a folder; --resume takes the run folder `nnrun train` printed")
    raise ConfigError(f"{resume}: no such run folder (nor {runs_dir / resume})")


def print_warning(message: str) -> None:
    """`warning: <message>` on stderr: the run completed (exit code 0) but should not be trusted."""
    err.print(f"[bold yellow]warning:[/] {escape(shown_as_text(message))}", markup=True, soft_wrap=True)


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
