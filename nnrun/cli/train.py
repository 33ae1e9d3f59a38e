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
    Logger,
    app,
    command_line,
    err,
    examples,
    handle_errors,
    out,
    plain,
    print_error,
    shown_as_text,
    value_of,
)
from nnrun.fmt import pct
from nnrun.status import Status


# -- validate -------------------------------------------------------------------------------
def plan_table(net, batch_size: int, title: str) -> Table:
    """The model summary (layer, output shape, parameters) with each layer's cost: forward FLOPs
    per sample, output memory per batch."""
    from nnrun.fileio import size_text
    from nnrun.plan import count_text, layer_costs

    costs = layer_costs(net, batch_size)
    table = Table(title=plain(title), title_justify="left")
    for name, justify in (("#", "right"), ("layer", "left"), ("output shape", "left"), ("params", "right"),
                          ("FLOPs", "right"), ("memory", "right")):
        table.add_column(name, justify=justify, no_wrap=True)  # memory: the output of one batch
    for c in costs:
        table.add_row(str(c.index), plain(c.layer), str(c.output_shape), f"{c.params:,}", count_text(c.flops),
                      size_text(c.memory))
    table.add_section()
    table.add_row("", "total", f"input {net.input_shape}", f"{net.num_params:,}",
                  count_text(sum(c.flops for c in costs)), size_text(sum(c.memory for c in costs)))
    return table


@app.command(epilog=examples("nnrun validate configs/quickstart.yaml",
                             "nnrun validate configs/quickstart.yaml --set 'model.layers[0].filters=8'",
                             "nnrun validate configs/cnn.yaml --time --lr-plot lr.png"))
@handle_errors
def validate(config: Path = typer.Argument(..., help="Experiment YAML file."),
             set_: list[str] = typer.Option([], "--set", help=SET_HELP),
             time_: bool = typer.Option(False, "--time", help="Time a few training steps and estimate the run's time."),
             lr_plot: Path | None = typer.Option(None, "--lr-plot", help="Write the planned learning rate per epoch "
                                                                         "to this PNG (the run's lr_schedule.png).")):
    """Validate a config and print the plan: each layer's output shape, parameters, FLOPs and
    activation memory, and the learning rate over the planned epochs (with --time, the run's
    duration). It never downloads."""
    from nnrun.builder import build_network, load_data, needs_download
    from nnrun.config import load_config

    exp = load_config(config, tuple(set_))
    if needs_download(exp):
        net, data = catalogue_network(exp), None
    else:
        data = load_data(exp)
        net = build_network(exp, data.input_shape, data.num_classes)
    out.print(plan_table(net, exp.train.batch_size, f"{exp.name}: {config}"))
    print_plan(exp, net, data, time_, lr_plot)
    out.print(data_line(exp, data, net), markup=False, soft_wrap=True)
    out.print(f"{shown_as_text(str(config))}: valid", markup=False, soft_wrap=True)


def catalogue_network(exp):
    """The network of a config whose named dataset is not downloaded yet: shapes and classes
    from the dataset's catalogue entry, so that validating never downloads."""
    from nnrun.builder import build_network, catalogue_input

    input_shape, num_classes = catalogue_input(exp)
    return build_network(exp, input_shape, num_classes)


def data_line(exp, data, net) -> str:
    if data is not None:
        sizes = ", ".join(f"{k} {len(v[0])}" for k, v in
                          (("train", data.train), ("validation", data.val), ("test", data.test)) if v)
        return f"data: {sizes}; {data.num_classes} classes; input {data.input_shape}"
    from nnrun.builder import dataset_splits

    splits = dataset_splits(exp.data)
    return (f"data: {exp.data.dataset}'s {' and '.join(splits)} split{'s are' if len(splits) > 1 else ' is'} "
            f"not downloaded yet (nnrun train fetches it); checked with its catalogue entry: "
            f"input {net.input_shape}, {net.output_shape[0]} classes")


def print_plan(exp, net, data, timed: bool, lr_plot: Path | None) -> None:
    """The cost of a step, the learning rate over the run (and its picture), the time it takes."""
    from nnrun.builder import build_schedule
    from nnrun.fileio import size_text
    from nnrun.plan import count_text, layer_costs, planned_rates, split_sizes

    batch, costs = exp.train.batch_size, layer_costs(net, exp.train.batch_size)
    flops = sum(c.flops for c in costs)
    out.print(f"cost: {count_text(flops)} FLOPs per sample (forward), about {count_text(3 * flops * batch)} per "
              f"training step of {batch}; memory: activations (the layers' outputs) "
              f"{size_text(sum(c.memory for c in costs))} per batch of {batch}, parameters "
              f"{size_text(net.num_params * net.dtype.itemsize)}", markup=False, soft_wrap=True)
    rates = planned_rates(build_schedule(exp), exp.train.epochs)
    out.print(lr_line(exp, rates), markup=False, soft_wrap=True)
    if lr_plot is not None:
        from nnrun import plots

        plots.lr_schedule([{"epoch": t + 1, "lr": lr} for t, lr in enumerate(rates)], lr_plot,
                          title="Planned learning-rate schedule")
        out.print(f"lr plot: {lr_plot}", markup=False, soft_wrap=True)
    if timed:
        out.print(time_line(exp, net, split_sizes(exp, data), data), markup=False, soft_wrap=True)


def lr_line(exp, rates: list[float]) -> str:
    from nnrun.fmt import value
    from nnrun.plan import sparkline

    kind = exp.schedule.type
    note = " (lowered when the plateau monitor stalls; drawn without any plateau)" if kind == "reduce_on_plateau" else ""
    return (f"lr: {value(rates[0])} {sparkline(rates)} {value(rates[-1])} over {len(rates)} "
            f"epoch{'s' if len(rates) > 1 else ''} ({kind}){note}")


def time_line(exp, net, sizes: dict, data) -> str:
    """Time a few steps on a copy of the network and scale them to the run."""
    import copy

    from nnrun.builder import build_loss, build_optimizer
    from nnrun.fmt import duration
    from nnrun.plan import estimate_time

    estimate = estimate_time(copy.deepcopy(net), build_loss(exp), build_optimizer(exp), exp.optimizer.lr,
                             exp.train.batch_size, sizes, exp.train.epochs, net.output_shape[0],
                             x=data.train[0] if data is not None else None)
    validation = f" + validation of {sizes['validation']:,}" if sizes["validation"] else ""
    return (f"time: about {seconds_text(estimate.batch_seconds)} per step of {exp.train.batch_size} (median of "
            f"{estimate.timed_batches} timed), {duration(estimate.epoch_seconds)} per epoch ({estimate.batches:,} "
            f"steps{validation}), {duration(estimate.total_seconds)} for {exp.train.epochs} epochs")


def seconds_text(seconds: float) -> str:
    return f"{seconds * 1000:.3g}ms" if seconds < 1 else f"{seconds:.3g}s"


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
          log: list[Logger] = typer.Option([], "--log", metavar="<tensorboard|mlflow>", help="Also stream the metrics to tensorboard or mlflow "
                                                             "(repeatable; adds to train.log)."),
          resume: Path | None = typer.Option(None, "--resume",
                                             help="Go on with an interrupted run folder from its checkpoint."),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors.")):
    """Train the experiment a config declares and write its run folder (or finish an
    interrupted one with --resume RUN)."""
    from nnrun.cli.live import LiveDisplay
    from nnrun.config import load_config
    from nnrun.experiment import RunFinished, RunInterrupted, resume_run, train_run
    from nnrun.runs import read_json

    check_train_options(config, resume, set_, name, seed, init_weights, log)
    display = [] if quiet else [LiveDisplay(out)]
    try:
        if resume is not None:
            run_dir = resume_run(resolve_resume(resume, runs_dir), display)
        else:
            overrides = [*set_, *([name_override(name)] if name else []), *([f"seed={seed}"] if seed is not None else [])]
            run_dir = train_run(with_loggers(load_config(config, tuple(overrides)), log), runs_dir, init_weights, display,
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
        for finding in summary.get("findings") or []:
            print_finding(finding)
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


def with_loggers(exp, log: list[Logger]):
    """The experiment with --log's loggers added to train.log (config.yaml records them, so a
    resumed run logs to them too)."""
    if not log:
        return exp
    names = list(dict.fromkeys([*exp.train.log, *(value_of(choice) for choice in log)]))
    return exp.model_copy(update={"train": exp.train.model_copy(update={"log": names})})


def check_train_options(config, resume, set_, name, seed, init_weights, log=()) -> None:
    from nnrun.errors import ConfigError

    if resume is None and config is None:
        raise ConfigError("give a CONFIG to train (or --resume RUN to finish an interrupted run)")
    if resume is not None and (config is not None or set_ or name or seed is not None or init_weights or log):
        raise ConfigError("--resume goes on with the run as it was configured: drop CONFIG, --set, --name, "
                          "--seed, --init-weights and --log")


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


def print_finding(message: str) -> None:
    """`finding: <message>` on stderr: what the diagnostics saw inside the network, with a fix."""
    err.print(f"[bold cyan]finding:[/] {escape(shown_as_text(message))}", markup=True, soft_wrap=True)


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
