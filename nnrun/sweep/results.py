"""What a sweep's results mean and where they go: a trial's metric, the ranking, sweep.json,
sweep.csv, best.yaml and the plots."""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

from nnrun import fmt
from nnrun.config import one_line, read_config_text
from nnrun.fileio import csv_safe_cell, write_json, write_text
from nnrun.fmt import finite
from nnrun.runs import read_json, read_rows
from nnrun.status import Status, is_ok, is_partial
from nnrun.sweep.plan import short_params, train_command

# A finished trial keeps its result on --resume; a paused one waits for promotion; any other
# status is run again (from its checkpoint when it has one).
DONE_STATUSES = (Status.COMPLETED, Status.STOPPED_EARLY, Status.DIVERGED, Status.FAILED, Status.PRUNED)


def metric_of(summary: dict, metric: str) -> tuple[float | None, int | None]:
    """(value, epoch) of a run: a train/val metric at the run's best epoch (the epoch its
    monitor chose, as everywhere in nnrun); a test metric as measured once at the end, with
    the weights the run ended with."""
    if metric.startswith("test_"):
        epoch = summary.get("best_epoch") if summary.get("test_weights") == "best" else summary.get("epochs_run")
        return finite(summary.get(metric)), epoch
    best = summary.get("best") or {}
    value = finite(best.get(metric))
    return (value, best.get("epoch")) if value is not None else (None, None)


# -- ranking --------------------------------------------------------------------------------
def successful(doc: dict) -> list[dict]:
    return [t for t in doc["trials"] if is_ok(t["status"]) and t["metric"] is not None]


def ranking(doc: dict) -> list[dict]:
    """Trials that ran to their end best first (ties: lower index first), then the pruned ones
    by their metric so far, then failed ones in index order."""
    sign = -1 if doc["mode"] == "max" else 1
    ok = successful(doc)
    partial = [t for t in doc["trials"] if is_partial(t["status"]) and t["metric"] is not None]
    ranked = [t for group in (ok, partial) for t in sorted(group, key=lambda t: (sign * t["metric"], t["index"]))]
    return ranked + [t for t in doc["trials"] if t not in ranked]


def best_index(doc: dict) -> int | None:
    return ranking(doc)[0]["index"] if successful(doc) else None


# -- sweep.json and sweep.csv ---------------------------------------------------------------
def save(sweep_dir: Path, doc: dict) -> None:
    """sweep.json and sweep.csv, with doc['best'] brought up to date."""
    doc["best"] = best_index(doc)
    write_json(sweep_dir / "sweep.json", doc)
    write_csv(sweep_dir, doc)


def write_csv(sweep_dir: Path, doc: dict) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([csv_safe_cell(v) for v in ("trial", *doc["param_names"], "status", doc["metric"],
                                                "best_epoch", "epochs", "seconds", "run_dir", "error")])
    for t in doc["trials"]:
        params = [t["params"].get(k, "") for k in doc["param_names"]]
        seconds = "" if t["seconds"] is None else f"{t['seconds']:.3f}"
        writer.writerow([csv_safe_cell(v) for v in (
            t["index"], *params, t["status"], "" if t["metric"] is None else t["metric"],
            "" if t["best_epoch"] is None else t["best_epoch"], epochs_run(t), seconds, t["run_dir"] or "",
            t["error"] or "")])
    write_text(sweep_dir / "sweep.csv", buf.getvalue())


def epochs_run(trial: dict) -> int | str:
    """The epochs a trial has trained ("" before it ran; older sweep files did not keep it)."""
    epochs = trial.get("epochs") or len(trial.get("history") or [])
    return epochs if epochs or trial["status"] != Status.PENDING else ""


def read_sweep(sweep_dir: str | os.PathLike) -> dict:
    return read_json(Path(sweep_dir) / "sweep.json", "sweep file")


# -- best.yaml and plots --------------------------------------------------------------------
def finish_outputs(sweep_dir: Path, doc: dict, plots: bool = True) -> None:
    """best.yaml and the two plots, from what has finished."""
    if doc["best"] is not None:
        write_best_yaml(sweep_dir, doc)
    if plots:
        draw_plots(sweep_dir, doc)


def write_best_yaml(sweep_dir: Path, doc: dict) -> None:
    """The best trial's config, headed by its score and the command that reproduces it."""
    trial = doc["trials"][doc["best"]]
    config_text = read_config_text(sweep_dir / trial["run_dir"] / "config.yaml")  # size-capped, UTF-8
    header = (f"# best trial of sweep {sweep_dir.name}: {trial['name']} "
              f"({doc['metric']} = {trial['metric']:.6g}, epoch {trial['best_epoch']})\n"
              f"# reproduce: {one_line(train_command(doc['config'], trial['overrides']), width=1 << 20)}\n")
    write_text(sweep_dir / "best.yaml", header + config_text)


def draw_plots(sweep_dir: Path, doc: dict) -> None:
    """plots/sweep.png (metric against params) and plots/sweep_curves.png (every trial's curve)."""
    from nnrun import plots as P

    names = doc["param_names"]
    shown = [t for t in doc["trials"] if t["status"] != Status.PENDING]
    P.sweep_plot(shown, names, doc["metric"], sweep_dir / "plots" / "sweep.png",
                 log_x=True if all_learning_rates(names, shown) else None, higher_is_better=doc["mode"] == "max")
    runs, best, pruned = curves(sweep_dir, doc, shown)
    P.sweep_curves(runs, sweep_dir / "plots" / "sweep_curves.png",
                   title=f"Sweep {doc['name']}: validation accuracy", best=best, faded=pruned)


def all_learning_rates(names: list[str], trials: list[dict]) -> bool:
    """Every param is a positive learning rate (so the plot uses a log axis)."""
    return bool(names) and all(re.search(r"(^|\.)lr\w*$|rate$", k) for k in names) and all(
        isinstance(t["params"].get(k), (int, float)) and t["params"][k] > 0 for t in trials for k in names)


def curves(sweep_dir: Path, doc: dict, trials: list[dict]) -> tuple[list[tuple[str, list[dict]]], int | None, set[int]]:
    """(label, metrics rows) of each trial that has rows, the best trial's position among them,
    and the positions of the pruned (or paused) ones."""
    runs, best, pruned = [], None, set()
    for t in trials:
        rows = read_rows(sweep_dir / t["run_dir"]) if t["run_dir"] else []
        if rows:
            best = len(runs) if t["index"] == doc["best"] else best
            if is_partial(t["status"]):
                pruned.add(len(runs))
            label = ", ".join(short_params(t["params"])) or t["name"]
            runs.append((f"{label} ({fmt.metric(doc['metric'], t['metric'])})", rows))
    return runs, best, pruned
