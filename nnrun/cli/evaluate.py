"""`nnrun evaluate`, `nnrun runs` and `nnrun compare`: thin layers over nnrun.evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from nnrun.cli.common import RUNS_DIR_ENV, RUNS_DIR_HELP, SET_HELP, Split, app, examples, handle_errors, out
from nnrun.fmt import duration, fixed, pct
from nnrun.status import status_tone

RUN_HELP = "A run folder, a folder name inside --runs-dir, or `latest`."


def show(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def print_wide(table: Table) -> None:
    """On a terminal rich fits the table to the window; into a pipe or file it would squeeze it
    into 80 columns, so print it there as wide as it needs."""
    if out.is_terminal:
        out.print(table)
        return
    need = out.measure(table, options=out.options.update_width(1000)).maximum
    Console(file=out.file, width=max(out.width, need), highlight=False, color_system=None).print(table)


# -- evaluate -------------------------------------------------------------------------------
def confusion_table(doc: dict) -> Table:
    names = doc["class_names"]
    table = Table(title="Confusion matrix (rows = true class, columns = predicted)", title_justify="left")
    table.add_column("true \\ pred", style="bold")
    for n in names:
        table.add_column(str(n), justify="right")
    for i, row in enumerate(doc["confusion_matrix"]):
        cells = [f"[bold green]{c}[/]" if i == j else (f"[red]{c}[/]" if c else "[dim]0[/]")
                 for j, c in enumerate(row)]
        table.add_row(str(names[i]), *cells)
    return table


def per_class_table(doc: dict) -> Table:
    table = Table(title="Per-class metrics", title_justify="left")
    for col, justify in (("class", "left"), ("precision", "right"), ("recall", "right"),
                         ("F1", "right"), ("support", "right")):
        table.add_column(col, justify=justify)
    for c in doc["per_class"]:
        table.add_row(str(c["name"]), fixed(c["precision"], 3), fixed(c["recall"], 3), fixed(c["f1"], 3),
                      str(c["support"]))
    table.add_section()
    for label, avg in (("macro avg", doc["macro_avg"]), ("weighted avg", doc["weighted_avg"])):
        table.add_row(label, fixed(avg["precision"], 3), fixed(avg["recall"], 3), fixed(avg["f1"], 3),
                      str(doc["num_samples"]), style="bold")
    return table


def one_vs_rest_table(doc: dict) -> Table:
    table = Table(title="One vs rest", title_justify="left")
    table.add_column("class")
    for col in ("TP", "FP", "FN", "TN"):
        table.add_column(col, justify="right")
    for r in doc["one_vs_rest"]:
        table.add_row(str(r["class"]), str(r["tp"]), str(r["fp"]), str(r["fn"]), str(r["tn"]))
    return table


def confusions_table(doc: dict) -> Table:
    table = Table(title="Most frequent confusions", title_justify="left")
    table.add_column("true")
    table.add_column("predicted")
    table.add_column("count", justify="right")
    for t in doc["top_confusions"]:
        table.add_row(str(t["true"]), str(t["predicted"]), str(t["count"]))
    return table


@app.command(epilog=examples("nnrun evaluate latest",
                             "nnrun evaluate runs/20261130-101500-cnn --split validation",
                             "nnrun evaluate latest --split train --no-plots"))
@handle_errors
def evaluate(run: str = typer.Argument(..., help=RUN_HELP),
             split: Split = typer.Option(Split.test, "--split", help="Which data to score."),
             set_: list[str] = typer.Option([], "--set", help=SET_HELP + " E.g. --set data.test.images=FILE "
                                                                         "--set data.test.labels=FILE scores other data."),
             runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", envvar=RUNS_DIR_ENV, help=RUNS_DIR_HELP),
             no_plots: bool = typer.Option(False, "--no-plots", help="Skip the PNG pictures."),
             quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors.")):
    """Score a trained run on a split; write evaluation-<split>.json, plots and report.html."""
    from nnrun.evaluate import evaluate_run, resolve_run

    run_dir = resolve_run(run, runs_dir)
    doc = evaluate_run(run_dir, split.value, tuple(set_), make_plots=not no_plots)
    if quiet:
        return
    out.print(f"{run_dir} ({doc['split']} split, {doc['num_samples']} samples)", markup=False, soft_wrap=True)
    out.print(f"loss ({doc['loss_name']}) {doc['loss']:.4f}   accuracy {pct(doc['accuracy'])} "
              f"({doc['num_correct']}/{doc['num_samples']})", markup=False)
    out.print(confusion_table(doc))
    out.print(per_class_table(doc))
    if doc["never_predicted"]:
        out.print(f"never predicted: {', '.join(map(str, doc['never_predicted']))} "
                  "(precision shown as 0: no prediction of that class to be right about)",
                  markup=False, soft_wrap=True)
    out.print(one_vs_rest_table(doc))
    if doc["top_confusions"]:
        out.print(confusions_table(doc))
    else:
        out.print("no confusions: every sample is classified correctly")
    written = [f"evaluation-{doc['split']}.json", *doc["plots"].values(), "report.html"]
    out.print("wrote " + ", ".join(written), markup=False, soft_wrap=True)


# -- runs -----------------------------------------------------------------------------------
TONE_STYLE = {"ok": "green", "warn": "yellow", "bad": "red"}


@app.command(epilog=examples("nnrun runs", "nnrun runs --runs-dir other-runs"))
@handle_errors
def runs(runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", envvar=RUNS_DIR_ENV, help=RUNS_DIR_HELP)):
    """List the runs in --runs-dir, newest first."""
    from nnrun.evaluate import list_runs

    records = list_runs(runs_dir)
    if not records:
        out.print(f"no runs in {runs_dir}; train one with `nnrun train CONFIG`", markup=False)
        return
    table = Table(title=f"{len(records)} run{'s' if len(records) != 1 else ''} in {runs_dir}", title_justify="left")
    for col, justify in (("folder", "left"), ("name", "left"), ("date", "left"), ("status", "left"),
                         ("epochs", "right"), ("best epoch", "right"), ("val acc", "right"), ("test acc", "right"),
                         ("wall time", "right")):
        table.add_column(col, justify=justify, no_wrap=col in ("folder", "date"))
    for r in records:
        status = str(r["status"])
        table.add_row(r["folder"], str(r["name"] or "-"), (r["started"] or "-").replace("T", " "),
                      f"[{TONE_STYLE[status_tone(status)]}]{status}[/]", show(r["epochs"] if r["epochs"] is not None else "-"),
                      best_epoch(r), pct(r["best_val_accuracy"]), pct(r["test_accuracy"]),
                      duration(r["wall_seconds"]))
    print_wide(table)


def best_epoch(record: dict) -> str:
    """'7 (val_loss)': the best epoch, named with the metric that chose it."""
    if record.get("best_epoch") is None:
        return "-"
    return f"{record['best_epoch']} ({record['monitor']})" if record.get("monitor") else str(record["best_epoch"])


# -- compare --------------------------------------------------------------------------------
@app.command(epilog=examples("nnrun compare runs/20261130-101500-cnn latest",
                             "nnrun compare RUN1 RUN2 RUN3 --out comparisons"))
@handle_errors
def compare(run: list[str] = typer.Argument(..., help="Two or more runs: folders, names inside --runs-dir, or `latest`."),
            runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", envvar=RUNS_DIR_ENV, help=RUNS_DIR_HELP),
            out_dir: Path = typer.Option(Path("."), "--out", help="Folder to write compare.png in.")):
    """Config differences and final metrics of several runs; writes compare.png (learning curves)."""
    from nnrun.evaluate import compare_runs, resolve_run

    run_dirs = [resolve_run(r, runs_dir) for r in run]
    result = compare_runs(run_dirs, out_dir)
    labels = result["runs"]
    if result["differences"]:
        table = Table(title="Config differences", title_justify="left")
        table.add_column("key")
        for label in labels:
            table.add_column(label, overflow="fold")
        for key, values in result["differences"].items():
            table.add_row(key, *(show(v) for v in values))
        print_wide(table)
    else:
        out.print("the configs are identical")
    table = Table(title="Final metrics", title_justify="left")
    table.add_column("metric")
    for label in labels:
        table.add_column(label, justify="right", overflow="fold")
    rows = [("status", lambda m: str(m["status"])), ("epochs", lambda m: show(m["epochs"])),
            ("train loss", lambda m: fixed(m["final_train_loss"])),
            ("train acc", lambda m: pct(m["final_train_accuracy"])),
            ("val loss", lambda m: fixed(m["final_val_loss"])),
            ("val acc", lambda m: pct(m["final_val_accuracy"])),
            ("best epoch", best_epoch), ("val acc, best epoch", lambda m: pct(m["best_val_accuracy"])),
            ("test loss", lambda m: fixed(m["test_loss"])), ("test acc", lambda m: pct(m["test_accuracy"])),
            ("wall time", lambda m: duration(m["wall_seconds"]))]
    for name, fmt in rows:
        table.add_row(name, *(fmt(m) for m in result["metrics"]))
    print_wide(table)
    out.print(f"wrote {result['plot']}", markup=False, soft_wrap=True)
