"""`nnrun evaluate`, `nnrun runs` and `nnrun compare`: thin layers over nnrun.evaluate."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from nnrun.cli.common import (
    RUNS_DIR_ENV,
    RUNS_DIR_HELP,
    SET_HELP,
    Split,
    app,
    err,
    examples,
    handle_errors,
    out,
    plain,
    shown_as_text,
)
from nnrun.errors import ConfigError
from nnrun.fileio import csv_safe_cell
from nnrun.fmt import duration, fixed, metric, pct
from nnrun.status import status_tone

RUN_HELP = "A run folder, a folder name inside --runs-dir, or `latest`."


def show(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def table_width() -> int | None:
    """The width tables must fit: $COLUMNS when set, else the terminal's; None into a pipe or a
    file, where a table prints as wide as it needs (scripts should use --json or --csv)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return int(columns)
    return out.width if out.is_terminal else None


def natural_width(table: Table) -> int:
    return out.measure(table, options=out.options.update_width(10_000)).maximum


def print_table(table: Table, width: int | None) -> None:
    """Print the table fitted to `width` (None: as wide as it needs)."""
    if out.is_terminal and width == out.width:
        out.print(table)
        return
    color = out.color_system if out.is_terminal else None
    Console(file=out.file, width=width or natural_width(table), highlight=False, emoji=False,
            color_system=color).print(table)


def resolve(run: str, runs_dir: Path, quiet: bool = False) -> Path:
    """The run folder RUN names; `latest` is said on stderr (stdout stays the command's output)."""
    from nnrun.evaluate import resolve_run

    run_dir = resolve_run(run, runs_dir)
    if run == "latest" and not quiet:
        err.print(f"latest: {shown_as_text(str(run_dir))}", markup=False, soft_wrap=True)
    return run_dir


def output_format(as_json: bool, as_csv: bool) -> str:
    if as_json and as_csv:
        raise ConfigError("--json and --csv: give one of them")
    return "json" if as_json else "csv" if as_csv else "table"


def print_json(records: list[dict]) -> None:
    """The records as JSON; a character a terminal would act on (an escape, C1 controls) is
    written as its \\u escape, which means the same to a JSON reader."""
    text = json.dumps(records, indent=2, ensure_ascii=False)
    typer.echo("".join(c if c.isprintable() or c == "\n" else f"\\u{ord(c):04x}" for c in text))


def csv_value(v: Any) -> str:
    """Empty for None, strings as they are (but control characters escaped, as \\x1b, and a
    spreadsheet formula shown as text: '=1+1), anything else as JSON (true, 0.002, {})."""
    if v is None:
        return ""
    return csv_safe_cell(shown_as_text(v) if isinstance(v, str) else json.dumps(v))


def print_csv(records: list[dict], fields: Sequence[str]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    writer.writerows([csv_value(r.get(f)) for f in fields] for r in records)
    typer.echo(buf.getvalue(), nl=False)


# -- evaluate -------------------------------------------------------------------------------
def confusion_table(doc: dict) -> Table:
    names = doc["class_names"]
    table = Table(title="Confusion matrix (rows = true class, columns = predicted)", title_justify="left")
    table.add_column("true \\ pred", style="bold")
    for n in names:
        table.add_column(plain(n), justify="right")
    for i, row in enumerate(doc["confusion_matrix"]):
        cells = [Text(str(c), style="bold green" if i == j else ("red" if c else "dim")) for j, c in enumerate(row)]
        table.add_row(plain(names[i]), *cells)
    return table


def per_class_table(doc: dict) -> Table:
    table = Table(title="Per-class metrics", title_justify="left")
    for col, justify in (("class", "left"), ("precision", "right"), ("recall", "right"),
                         ("F1", "right"), ("support", "right")):
        table.add_column(col, justify=justify)
    for c in doc["per_class"]:
        table.add_row(plain(c["name"]), fixed(c["precision"], 3), fixed(c["recall"], 3), fixed(c["f1"], 3),
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
        table.add_row(plain(r["class"]), str(r["tp"]), str(r["fp"]), str(r["fn"]), str(r["tn"]))
    return table


def confusions_table(doc: dict) -> Table:
    table = Table(title="Most frequent confusions", title_justify="left")
    table.add_column("true")
    table.add_column("predicted")
    table.add_column("count", justify="right")
    for t in doc["top_confusions"]:
        table.add_row(plain(t["true"]), plain(t["predicted"]), str(t["count"]))
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
    from nnrun.evaluate import evaluate_run

    run_dir = resolve(run, runs_dir, quiet)
    doc = evaluate_run(run_dir, split.value, tuple(set_), make_plots=not no_plots)
    if quiet:
        return
    out.print(f"{shown_as_text(str(run_dir))} ({doc['split']} split, {doc['num_samples']} samples)", markup=False,
              soft_wrap=True)
    out.print(f"loss ({doc['loss_name']}) {doc['loss']:.4f}   accuracy {pct(doc['accuracy'])} "
              f"({doc['num_correct']}/{doc['num_samples']})", markup=False)
    out.print(confusion_table(doc))
    out.print(per_class_table(doc))
    if doc["never_predicted"]:
        out.print(f"never predicted: {shown_as_text(', '.join(map(str, doc['never_predicted'])))} "
                  "(precision shown as 0: no prediction of that class to be right about)",
                  markup=False, soft_wrap=True)
    out.print(one_vs_rest_table(doc))
    if doc["top_confusions"]:
        out.print(confusions_table(doc))
    else:
        out.print("no confusions: every sample is classified correctly")
    written = [f"evaluation-{doc['split']}.json", *doc["plots"].values(), "report.html"]
    out.print("wrote " + shown_as_text(", ".join(written)), markup=False, soft_wrap=True)


# -- runs -----------------------------------------------------------------------------------
TONE_STYLE = {"ok": "green", "warn": "yellow", "bad": "red"}


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[dict], str | Text]
    justify: str = "left"


def folder_cell(record: dict) -> Text:
    """A sweep's folder with its best trial under it; a trial indented under its sweep."""
    if record["kind"] == "trial":
        return plain("  " + Path(record["folder"]).name)
    if record["kind"] == "sweep" and record["best_trial"]:
        trial = Path(record["best_trial"]).name.split("-")[0]
        name = record["metric"] or "metric"
        return plain(record["folder"], f"  best {trial}: {name} {metric(name, record['metric_value'])}")
    return plain(record["folder"])


def status_cell(record: dict) -> Text:
    status = str(record["status"])
    return plain(status, style=TONE_STYLE[status_tone(status)])


def epochs_cell(record: dict) -> str:
    if record["kind"] == "sweep":
        return plural(record["trials"], "trial")
    return show(record["epochs"] if record["epochs"] is not None else "-")


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def best_epoch(record: dict) -> str:
    """'7 (val_loss)': the best epoch, named with the metric that chose it."""
    if record.get("best_epoch") is None:
        return "-"
    return f"{record['best_epoch']} ({record['monitor']})" if record.get("monitor") else str(record["best_epoch"])


RUN_COLUMNS = (
    Column("folder", folder_cell),
    Column("name", lambda r: str(r["name"] or "-")),
    Column("date", lambda r: str(r["started"] or "-").replace("T", " ")),
    Column("status", status_cell),
    Column("epochs", epochs_cell, "right"),
    Column("best epoch", best_epoch, "right"),
    Column("val acc", lambda r: pct(r["best_val_accuracy"]), "right"),
    Column("test acc", lambda r: pct(r["test_accuracy"]), "right"),
    Column("wall time", lambda r: duration(r["wall_seconds"]), "right"),
)
# Left out in this order when the table is wider than the terminal: first what the folder name
# already says, then details; folder, status, epochs (a sweep's trial count) and accuracies stay.
DROP_ORDER = ("name", "date", "wall time", "best epoch")


def runs_table(records: list[dict], columns: Sequence[Column], title: str) -> Table:
    table = Table(title=plain(title), title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    for col in columns:
        table.add_column(col.header, justify=col.justify, no_wrap=col.header != "folder", overflow="fold")
    for r in records:
        best = r["kind"] == "trial" and r["folder"] == best_trial_of(records, r["sweep"])
        table.add_row(*(as_text(col.cell(r)) for col in columns), style="bold" if best else None)
    return table


def as_text(cell: str | Text) -> Text:
    """Cells are text, never markup: a folder may hold brackets, a name a terminal escape."""
    return cell if isinstance(cell, Text) else plain(cell)


def best_trial_of(records: list[dict], sweep: str) -> str | None:
    return next((r["best_trial"] for r in records if r["kind"] == "sweep" and r["folder"] == sweep), None)


def fitted_runs_table(records: list[dict], title: str, width: int | None) -> Table:
    """The runs table with as many columns as fit in `width` (all of them when None)."""
    columns = list(RUN_COLUMNS)
    table = runs_table(records, columns, title)
    for header in DROP_ORDER:
        if width is None or natural_width(table) <= width:
            break
        columns = [c for c in columns if c.header != header]
        table = runs_table(records, columns, title)
    return table


def listing_title(records: list[dict], runs_dir: Path, all_trials: bool) -> str:
    """'2 runs and 1 sweep (8 trials) in runs'."""
    sweeps = [r for r in records if r["kind"] == "sweep"]
    title = plural(sum(r["kind"] == "run" for r in records), "run")
    if sweeps:
        title += f" and {plural(len(sweeps), 'sweep')} ({plural(sum(r['trials'] or 0 for r in sweeps), 'trial')})"
    title += f" in {runs_dir}"
    return title + ("; --all lists the trials" if sweeps and not all_trials else "")


@app.command(epilog=examples("nnrun runs", "nnrun runs --all", "nnrun runs --json > runs.json"))
@handle_errors
def runs(runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", envvar=RUNS_DIR_ENV, help=RUNS_DIR_HELP),
         all_trials: bool = typer.Option(False, "--all", help="List each sweep's trials under it."),
         as_json: bool = typer.Option(False, "--json", help="Print the records as JSON (one per row)."),
         as_csv: bool = typer.Option(False, "--csv", help="Print the records as CSV (one per row).")):
    """List the runs in --runs-dir, newest first; a sweep is one row (its best trial)."""
    from nnrun.evaluate import RUN_FIELDS, list_runs

    fmt = output_format(as_json, as_csv)
    records = list_runs(runs_dir, trials=all_trials)
    if fmt == "json":
        print_json(records)
    elif fmt == "csv":
        print_csv(records, RUN_FIELDS)
    elif not records:
        out.print(f"no runs in {runs_dir}; train one with `nnrun train CONFIG`", markup=False)
    else:
        width = table_width()
        print_table(fitted_runs_table(records, listing_title(records, runs_dir, all_trials), width), width)


# -- compare --------------------------------------------------------------------------------
COMPARE_ROWS = (("status", lambda m: str(m["status"])), ("epochs", lambda m: show(m["epochs"])),
                ("train loss", lambda m: fixed(m["final_train_loss"])),
                ("train acc", lambda m: pct(m["final_train_accuracy"])),
                ("val loss", lambda m: fixed(m["final_val_loss"])),
                ("val acc", lambda m: pct(m["final_val_accuracy"])),
                ("best epoch", best_epoch), ("val acc, best epoch", lambda m: pct(m["best_val_accuracy"])),
                ("test loss", lambda m: fixed(m["test_loss"])), ("test acc", lambda m: pct(m["test_accuracy"])),
                ("wall time", lambda m: duration(m["wall_seconds"])))


def run_header(label: str) -> Text:
    """A run folder's name on two lines, time (or trial number) over the rest, so that runs
    side by side fit in 80 columns: '20261130-101500-quickstart' -> '20261130-101500\nquickstart'."""
    head = re.match(r"(.*/)?(\d{8}-\d{6}|t\d{3})-(.+)$", label, re.DOTALL)
    return plain(f"{head[1] or ''}{head[2]}", head[3]) if head else plain(label)


def differences_table(result: dict) -> Table:
    table = Table(title="Config differences", title_justify="left")
    table.add_column("key", overflow="fold")
    for label in result["runs"]:
        table.add_column(run_header(label), overflow="fold")
    for key, values in result["differences"].items():
        table.add_row(plain(key), *(plain(show(v)) for v in values))
    return table


def metrics_table(result: dict) -> Table:
    table = Table(title="Final metrics", title_justify="left")
    table.add_column("metric", overflow="fold")
    for label in result["runs"]:
        table.add_column(run_header(label), justify="right", overflow="fold")
    for name, cell in COMPARE_ROWS:
        table.add_row(name, *(plain(cell(m)) for m in result["metrics"]))
    return table


def print_compare_records(result: dict, fmt: str) -> None:
    from nnrun.evaluate import COMPARE_FIELDS, compare_records

    records = compare_records(result)
    if fmt == "json":
        print_json(records)
        return
    keys = list(result["differences"])
    print_csv([r | {f"config.{k}": r["config"][k] for k in keys} for r in records],
              [*COMPARE_FIELDS, *(f"config.{k}" for k in keys)])


@app.command(epilog=examples("nnrun compare runs/20261130-101500-cnn latest",
                             "nnrun compare RUN1 RUN2 RUN3 --out comparisons"))
@handle_errors
def compare(run: list[str] = typer.Argument(..., help="Two or more runs: folders, names inside --runs-dir, or `latest`."),
            runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", envvar=RUNS_DIR_ENV, help=RUNS_DIR_HELP),
            out_dir: Path | None = typer.Option(None, "--out", help="Folder to write compare.png in "
                                                             "(default: <runs-dir>/compare/<time>.png)."),
            as_json: bool = typer.Option(False, "--json", help="Print one JSON record per run."),
            as_csv: bool = typer.Option(False, "--csv", help="Print one CSV row per run.")):
    """Config differences and final metrics of several runs; draws their learning curves."""
    from nnrun.evaluate import compare_runs

    fmt = output_format(as_json, as_csv)
    run_dirs = [resolve(r, runs_dir) for r in run]
    result = compare_runs(run_dirs, out_dir, runs_dir)
    if fmt != "table":
        print_compare_records(result, fmt)
        err.print(f"wrote {result['plot']}", markup=False, soft_wrap=True)
        return
    width = table_width()
    if result["differences"]:
        print_table(differences_table(result), width)
    else:
        out.print("the configs are identical")
    print_table(metrics_table(result), width)
    out.print(f"wrote {result['plot']}", markup=False, soft_wrap=True)
