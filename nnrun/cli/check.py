"""`nnrun check`: the configured network's gradients against finite differences."""

from __future__ import annotations

from pathlib import Path

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from nnrun.cli.common import SET_HELP, app, examples, handle_errors, out, print_error


def error_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}"


def report_table(report, title: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name, justify in (("layer", "left"), ("of", "left"), ("checked", "right"),
                          ("max|grad|", "right"), ("rel.error", "right"), ("result", "left")):
        table.add_column(name, justify=justify, no_wrap=name != "result")
    last = None
    for row in report.rows:
        verdict = {"FAIL": "[bold red]FAIL[/]", "ok": "[green]ok[/]"}.get(row.verdict, escape(row.verdict))
        notes = [row.note] if row.note else []
        notes += [f"{row.skipped} at kinks"] if row.skipped else []
        table.add_row(escape(row.name) if row.name != last else "", row.what, f"{row.checked}/{row.size}",
                      f"{row.scale:.2g}", error_text(row.error),
                      verdict + (f" ({escape('; '.join(notes))})" if notes else ""))
        last = row.name
    return table


@app.command(epilog=examples("nnrun check configs/quickstart.yaml",
                             "nnrun check configs/cnn.yaml --batch 4"))
@handle_errors
def check(config: Path = typer.Argument(..., help="Experiment YAML file."),
          batch: int = typer.Option(2, "--batch", min=1, help="Samples in the checked batch."),
          set_: list[str] = typer.Option([], "--set", help=SET_HELP)):
    """Check the network's gradients against central finite differences, in float64.

    Every layer's parameters and input gradient, and every loss, on a tiny batch of random
    inputs; points at a kink (relu at 0, max-pool ties) are skipped. Exit code 1 when a
    gradient is wrong."""
    from nnrun.config import load_config
    from nnrun.gradcheck import check_experiment

    exp = load_config(config, tuple(set_))
    report, note = check_experiment(exp, batch)
    if note:
        out.print(f"data: {note}", markup=False, soft_wrap=True)
    out.print(report_table(report, f"{exp.name}: gradients in float64, batch of {report.batch}, "
                                   f"loss {report.loss}"))
    for line in report.notes:
        out.print(f"note: {line}", markup=False, soft_wrap=True)
    worst = report.worst
    out.print(f"worst relative error {error_text(worst.error)} ({worst.name} {worst.what}); tolerance "
              f"{report.tol:.0e}; {len(report.rows)} arrays in {report.seconds:.1f}s", markup=False, soft_wrap=True)
    if report.failed:
        for row in report.failed:
            where = f"layer {row.name}" if row.layer is not None else row.name
            print_error(f"{config}: {where}: the gradient of its {row.what} is wrong "
                        f"(relative error {error_text(row.error)} > {report.tol:.0e})")
        raise typer.Exit(1)
