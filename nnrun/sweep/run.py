"""run_sweep: a planned sweep (or the rest of an interrupted one) run into a sweep folder."""

from __future__ import annotations

import copy
import os
import shutil
import time
from pathlib import Path
from typing import Any

from nnrun.errors import ConfigError
from nnrun.fileio import check_inside, folder_lock
from nnrun.runs import create_run_dir, local_time
from nnrun.status import Status
from nnrun.sweep.document import checked_sweep
from nnrun.sweep.executors import (
    UnsafeResult,
    check_executor,
    default_workers,
    fetch_datasets,
    run_jobs,
    unzip_into,
)
from nnrun.sweep.plan import plan_sweep
from nnrun.sweep.results import DONE_STATUSES, finish_outputs, read_sweep, save
from nnrun.sweep.tuner import Tuner, prune_paused


class SweepReporter:
    """What run_sweep tells the outside world (the CLI draws a live table from it)."""

    def start(self, doc: dict, pending: int, workers: int) -> None: pass
    def trial_done(self, trial: dict, doc: dict) -> None: pass
    def finish(self, doc: dict) -> None: pass


def run_sweep(doc_or_config: dict | str | os.PathLike | None = None, *, runs_dir: str | os.PathLike = "runs",
              resume: str | os.PathLike | None = None, workers: int | None = None,
              executor: str = "local", scheduler: Any = None, trial_plots: bool = True,
              plots: bool = True, reporter: SweepReporter | None = None, sampler: Any = None,
              **plan_kwargs) -> Path:
    """Run a planned sweep (a plan_sweep() document, or a config path planned here with
    plan_kwargs), or resume the sweep folder `resume`. Returns the sweep folder; its sweep.json
    says "completed" or "interrupted" (Ctrl-C: what finished is kept). `sampler` replaces the
    model-based search's own (tests give a fake one)."""
    reporter = reporter or SweepReporter()
    check_executor(executor, scheduler)
    if resume is not None:
        sweep_dir, doc = Path(resume), None
        if not (sweep_dir / "sweep.json").is_file():
            raise ConfigError(f"{sweep_dir}: not a sweep folder (no sweep.json)")
    else:
        sweep_dir, doc = new_sweep(doc_or_config, runs_dir, plan_kwargs)
    with folder_lock(sweep_dir, "sweep"):
        doc = doc or reopen_sweep(sweep_dir)
        tuner = start_sweep(sweep_dir, doc, workers, executor, trial_plots, sampler)
        reporter.start(doc, tuner.to_run(), doc["workers"])
        run_and_record(tuner, executor, scheduler, reporter)
        finish_outputs(sweep_dir, doc, plots)
    reporter.finish(doc)
    return sweep_dir


def new_sweep(doc_or_config: dict | str | os.PathLike, runs_dir: str | os.PathLike,
              plan_kwargs: dict) -> tuple[Path, dict]:
    """A new sweep folder, and a copy of the plan (planned here when given a config path)."""
    doc = doc_or_config if isinstance(doc_or_config, dict) else plan_sweep(doc_or_config, **plan_kwargs)
    doc = copy.deepcopy(doc)
    return create_run_dir(runs_dir, f"sweep-{doc['name']}"), doc


def reopen_sweep(sweep_dir: Path) -> dict:
    """The sweep document of a folder to resume, its unfinished trials reset to pending. The
    whole file is checked before anything in the folder is touched (it names what gets deleted).
    A trial with a checkpoint keeps its progress: a paused one waits for promotion, a promoted
    one goes on to the epoch it was promoted to."""
    doc = checked_sweep(read_sweep(sweep_dir), sweep_dir / "sweep.json")
    for sub in ("trials", "plots"):
        check_inside(sweep_dir, sweep_dir / sub)
    for t in doc["trials"]:
        trial_path(sweep_dir, t)  # refused when a trial's folder leads outside (a symbolic link)
        if t["status"] in DONE_STATUSES or t["status"] == Status.PAUSED:
            continue
        t.update(status=Status.PENDING, error=None)
        if not remove_trial_folder(sweep_dir, t):
            t.update(metric=None, best_epoch=None, seconds=None, run_dir=None, history=[], epochs=0, target=None)
    return doc


def start_sweep(sweep_dir: Path, doc: dict, workers: int | None, executor: str, trial_plots: bool,
                sampler: Any = None) -> Tuner:
    """Mark the sweep running in sweep.json and return its tuner."""
    (sweep_dir / "trials").mkdir(parents=True, exist_ok=True)
    remove_staging(sweep_dir)
    tuner = Tuner(sweep_dir, doc, trial_plots, sampler)
    doc.update(status=Status.RUNNING, started=local_time(),
               workers=worker_count(workers or doc.get("workers"), tuner.to_run()),
               executor=executor, sweep_dir=sweep_dir.name)
    save(sweep_dir, doc)
    return tuner


def worker_count(requested: int | None, pending: int) -> int:
    """The requested number of workers (default: the cores), no more than there are trials."""
    return max(1, min(requested or default_workers(), max(pending, 1)))


def run_and_record(tuner: Tuner, executor: str, scheduler: Any, reporter: SweepReporter) -> None:
    """Run the tuner's jobs, saving sweep.json after each result; Ctrl-C marks the sweep
    interrupted. At the end, trials still paused are pruned."""
    sweep_dir, doc = tuner.sweep_dir, tuner.doc
    started = time.perf_counter()
    try:
        if executor == "local" and doc["workers"] > 1:
            fetch_datasets(tuner.dataset_jobs())
        run_jobs(tuner, lambda result: record_result(tuner, result, reporter), executor, doc["workers"], scheduler)
        prune_paused(sweep_dir, doc)
        doc["status"] = Status.COMPLETED
    except KeyboardInterrupt:
        doc["status"] = Status.INTERRUPTED
        forget_unfinished(sweep_dir, doc)
    finally:
        doc["wall_seconds"] = doc.get("wall_seconds", 0.0) + (time.perf_counter() - started)
        remove_staging(sweep_dir)
        save(sweep_dir, doc)


def record_result(tuner: Tuner, result: dict, reporter: SweepReporter) -> None:
    """A finished job into the document (and its zipped folder, from Dask, into trials/)."""
    sweep_dir, doc = tuner.sweep_dir, tuner.doc
    data = result.pop("zip", None)
    trial = doc["trials"][result["index"]]
    if data is not None:
        try:
            unzip_into(data, trial_path(sweep_dir, trial))
        except UnsafeResult as e:  # this trial fails; the sweep goes on
            shutil.rmtree(trial_path(sweep_dir, trial), ignore_errors=True)
            result = dict(result, status=Status.FAILED, metric=None, best_epoch=None, run_dir=None, error=str(e))
    if result["status"] == Status.INTERRUPTED:
        tuner.running.discard(trial["index"])
        return  # forget_unfinished decides what stays
    tuner.record(trial, result)
    save(sweep_dir, doc)
    reporter.trial_done(trial, doc)


def forget_unfinished(sweep_dir: Path, doc: dict) -> None:
    """After Ctrl-C: trials that did not finish become pending again, without a folder unless
    their checkpoint lets --resume go on with them."""
    for t in doc["trials"]:
        if t["status"] in (Status.PENDING, Status.INTERRUPTED):
            t.update(status=Status.PENDING, error=None)
            if not remove_trial_folder(sweep_dir, t):
                t.update(run_dir=None, seconds=None, history=[], epochs=0, target=None)


def remove_trial_folder(sweep_dir: Path, trial: dict) -> bool:
    """Remove what an unfinished trial left, unless its checkpoint lets --resume go on with it
    (then True)."""
    from nnrun.checkpoint import FILE as CHECKPOINT

    folder = trial_path(sweep_dir, trial)
    if (folder / CHECKPOINT).is_file():
        return True
    shutil.rmtree(folder, ignore_errors=True)
    return False


def trial_path(sweep_dir: Path, trial: dict) -> Path:
    """trials/<name>, refused (OutsideFolder) unless it stays inside the sweep folder."""
    return check_inside(sweep_dir / "trials", sweep_dir / "trials" / trial["name"])


def remove_staging(sweep_dir: Path) -> None:
    """Half-made trial folders, left by a worker that was stopped."""
    for stale in (sweep_dir / "trials").glob(".staging-*"):
        shutil.rmtree(stale, ignore_errors=True)
