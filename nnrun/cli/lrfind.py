"""`nnrun lr-find`: the learning-rate range test."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from nnrun.cli.common import (
    RUNS_DIR_ENV,
    RUNS_DIR_HELP,
    SET_HELP,
    app,
    examples,
    handle_errors,
    out,
    shown_as_text,
)


@app.command("lr-find", epilog=examples("nnrun lr-find configs/digits-mlp.yaml",
                                        "nnrun lr-find configs/cnn.yaml --min-lr 1e-5 --max-lr 0.1 --steps 50"))
@handle_errors
def lr_find(config: Path = typer.Argument(..., help="Experiment YAML file."),
            min_lr: float = typer.Option(1e-6, "--min-lr", help="First learning rate of the ramp."),
            max_lr: float = typer.Option(1.0, "--max-lr", help="Last learning rate of the ramp."),
            steps: int = typer.Option(100, "--steps", help="Batches of the ramp (at least 5)."),
            set_: list[str] = typer.Option([], "--set", help=SET_HELP),
            runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", envvar=RUNS_DIR_ENV, help=RUNS_DIR_HELP),
            name: str | None = typer.Option(None, "--name", help="Name of the folder (default: the config's name)."),
            quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors and the folder.")):
    """Find a learning rate: train once while the rate grows from --min-lr to --max-lr.

    Writes <runs-dir>/<time>-lr-find-<name>/ with lr_find.json, lr_find.csv and
    plots/lr_find.png, and suggests the rate where the loss falls fastest."""
    from nnrun.cli.train import name_override
    from nnrun.config import load_config
    from nnrun.experiment import lr_find as find

    exp = load_config(config, tuple(set_) + ((name_override(name),) if name else ()))
    run_dir, result = find(exp, min_lr, max_lr, steps, runs_dir)
    if not quiet:
        print_result(config, min_lr, max_lr, result)
    out.print(str(run_dir), markup=False, soft_wrap=True)


def print_result(config: Path, min_lr: float, max_lr: float, result: dict) -> None:
    out.print(f"{result['steps']} steps from {min_lr:g} to {max_lr:g}: {result['stopped']}", markup=False,
              soft_wrap=True)
    lr = result["suggestion"]
    if lr is None:
        out.print("no suggestion: the loss never decreased; widen the range", markup=False, soft_wrap=True)
        return
    out.print(f"suggested learning rate: {lr:.3g}  (steepest descent of the smoothed loss; "
              "plot in plots/lr_find.png)", markup=False, soft_wrap=True)
    sweep = shlex.join(["nnrun", "sweep", str(config), "--param", f"optimizer.lr=log:{lr / 10:.2g}:{lr * 3:.2g}:5"])
    out.print(f"next, a sweep around it: {shown_as_text(sweep)}",
              markup=False, soft_wrap=True)
