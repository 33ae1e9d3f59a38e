"""Running trials: one trial in a worker (run_trial), and the executors that run a list of them
in this process, in spawned worker processes (BLAS limited to one thread each), or on a Dask
cluster (the trial's run folder comes back zipped)."""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from nnrun.config import Experiment, apply_overrides, validate
from nnrun.errors import ConfigError, NnrunError
from nnrun.fileio import write_bytes, write_json
from nnrun.runs import read_json_or
from nnrun.status import Status, is_ok, is_partial
from nnrun.sweep.results import metric_of

BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
             "NUMEXPR_NUM_THREADS")
OnResult = Callable[[dict], None]


# -- one trial (runs in a worker) -----------------------------------------------------------
def trial_experiment(job: dict) -> Experiment:
    """The validated Experiment of a trial: base config + overrides, exactly as load_config."""
    raw = copy.deepcopy(job["base_config"])
    apply_overrides(raw, job["overrides"])
    return validate(raw, job.get("source", "config"), Path(job["base_dir"]))


def run_trial(job: dict) -> dict:
    """Train one trial into job['trials_dir']/job['name'] (or, with job['zip'], into a temporary
    folder returned as zip bytes), going on from its checkpoint when an earlier attempt was
    interrupted. Never raises: failures are in the result's status/error."""
    start = time.perf_counter()
    result = {"index": job["index"], "status": Status.FAILED, "metric": None, "best_epoch": None,
              "run_dir": None, "error": None}
    local = Path(tempfile.mkdtemp(prefix="nnrun-trial-")) if job.get("zip") else Path(job["trials_dir"])
    folder = local / job["name"]
    if job.get("folder_zip"):  # a promoted trial on a Dask worker: its folder, checkpoint included
        unzip_into(job["folder_zip"], folder)
    train_into(folder, job, result)
    try:
        if (folder / "summary.json").is_file():
            score(folder, job, result)
            result["run_dir"] = f"trials/{folder.name}"
        if job.get("zip") and folder.is_dir():
            result["zip"] = zip_folder(folder)
    finally:
        if job.get("zip"):
            shutil.rmtree(local, ignore_errors=True)
    result["seconds"] = time.perf_counter() - start
    return result


def train_into(folder: Path, job: dict, result: dict) -> None:
    """Train the trial into folder (resuming it when it has a checkpoint); an exception or
    Ctrl-C is recorded in result, not raised."""
    from nnrun.experiment import train_run

    try:
        if not resumed(folder, job):
            shutil.rmtree(folder, ignore_errors=True)  # what an attempt left, with no usable checkpoint
            train_run(trial_experiment(job), folder=folder, make_plots=job.get("plots", True),
                      callbacks=pruning_callbacks(job))
    except KeyboardInterrupt:
        result.update(status=Status.INTERRUPTED, error="interrupted")
    except Exception as e:  # recorded; the sweep goes on
        result["error"] = str(e) if isinstance(e, ConfigError) else f"{type(e).__name__}: {e}"


def resumed(folder: Path, job: dict) -> bool:
    """Go on with a trial from its checkpoint; False when there is none or it cannot be used (a
    newer nnrun, a damaged file): then the trial starts again."""
    from nnrun.checkpoint import FILE as CHECKPOINT
    from nnrun.experiment import resume_run

    if not (folder / CHECKPOINT).is_file():
        return False
    try:
        resume_run(folder, pruning_callbacks(job), make_plots=job.get("plots", True))
    except ConfigError:
        return False
    return True


def pruning_callbacks(job: dict) -> list:
    """The pause at the job's rung, and the median pruner's stop, when the job has them."""
    from nnrun.sweep.prune import MedianStop
    from nnrun.train import PauseAt

    callbacks = [PauseAt(job["stop_at"])] if job.get("stop_at") else []
    if job.get("median"):
        callbacks.append(MedianStop(job["metric"], job["median"]["mode"], job["median"]["table"]))
    return callbacks


def score(run_dir: Path, job: dict, result: dict) -> None:
    """The run's own status and the trial's metric, into result; summary.json learns the run's
    folder name in the sweep."""
    summary = read_json_or(run_dir / "summary.json")
    if not isinstance(summary, dict):
        return
    summary["run_dir"] = run_dir.name
    write_json(run_dir / "summary.json", summary)
    if result["error"] is None:  # the run's own verdict, unless something was raised
        result.update(status=summary.get("status", Status.FAILED), error=summary.get("error"))
    result["history"] = history_of(run_dir, job["metric"])
    if is_ok(result["status"]) or is_partial(result["status"]):
        result["metric"], result["best_epoch"] = metric_of(summary, job["metric"])
        if result["metric"] is None:
            where = "in this run" if job["metric"].startswith("test_") else "at this run's best epoch"
            result.update(status=Status.FAILED, error=f"no finite {job['metric']} {where}")


def history_of(run_dir: Path, metric: str) -> list[float | None]:
    """The metric of each epoch the run has finished (test metrics have none)."""
    from nnrun.fmt import finite
    from nnrun.runs import read_rows

    return [finite(row.get(metric)) for row in read_rows(run_dir)]


def zip_folder(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return buf.getvalue()


# What a Dask worker may send back for one trial: a run folder is a few MiB (weights, plots,
# report); far more is a broken or hostile worker, refused before anything is unpacked.
MAX_RESULT_ZIP_BYTES = 256 << 20
MAX_RESULT_UNZIPPED_BYTES = 1 << 30
MAX_RESULT_FILES = 1000


class UnsafeResult(NnrunError):
    """A trial's zipped folder that cannot be unpacked safely: that trial fails, the sweep goes on."""


def unzip_into(data: bytes, folder: Path) -> None:
    """Unpack a trial's zipped run folder into folder, after checking that it is a zip archive
    within the limits above whose every member stays inside folder (UnsafeResult otherwise)."""
    members = checked_members(data, folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in members:
            try:
                content = zf.read(info)
            except (zipfile.BadZipFile, zlib.error, ValueError, EOFError, NotImplementedError) as e:
                raise UnsafeResult(f"the trial's zipped folder is damaged ({info.filename}: {e})") from None
            write_bytes(folder / info.filename, content)


def checked_members(data: Any, folder: Path) -> list[zipfile.ZipInfo]:
    """The files of a trial archive; UnsafeResult for anything but a zip within the limits whose
    members are plain relative paths."""
    if not isinstance(data, bytes) or len(data) > MAX_RESULT_ZIP_BYTES:
        size = f"{len(data):,} bytes" if isinstance(data, bytes) else type(data).__name__
        raise UnsafeResult(f"the trial's zipped folder ({size}) is not a zip of at most {MAX_RESULT_ZIP_BYTES >> 20} MiB")
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as e:
        raise UnsafeResult(f"the trial's zipped folder is not a readable zip ({e})") from None
    files = [info for info in infos if not info.is_dir()]
    if len(files) > MAX_RESULT_FILES or sum(info.file_size for info in files) > MAX_RESULT_UNZIPPED_BYTES:
        raise UnsafeResult(f"the trial's zipped folder unpacks to {len(files):,} files and "
                           f"{sum(info.file_size for info in files):,} bytes; a trial's folder holds at most "
                           f"{MAX_RESULT_FILES:,} files and {MAX_RESULT_UNZIPPED_BYTES >> 30} GiB")
    root = folder.resolve()
    for info in files:
        name = info.filename
        if name.startswith("/") or "\\" in name or ".." in Path(name).parts or root not in (root / name).resolve().parents:
            raise UnsafeResult(f"unsafe path in the trial's zipped folder: {name!r}")
    return files


# -- executors ------------------------------------------------------------------------------
def check_executor(executor: str, scheduler: Any) -> None:
    """Usage errors of --executor/--scheduler, raised before any folder is made."""
    if executor not in ("local", "dask"):
        raise ConfigError(f"--executor {executor!r}: use local or dask")
    if executor == "dask":
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise ConfigError("--executor dask needs Dask distributed: pip install 'nnrun[dask]'") from None
        if not scheduler:
            raise ConfigError("--executor dask needs --scheduler ADDRESS (e.g. tcp://127.0.0.1:8786)")


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class JobSource(Protocol):
    """Where the executors take jobs from: next_job() is None when nothing can run now (a
    result still to come may change that)."""

    def next_job(self) -> dict | None: ...


def run_jobs(source: JobSource | list[dict], on_result: OnResult, executor: str = "local", workers: int = 1,
             scheduler: Any = None) -> None:
    """Run the jobs source hands out (keeping up to `workers` running), calling on_result(result)
    in this process as each one finishes, until none is running and source has no more."""
    source = Queue(source) if isinstance(source, list) else source
    if executor == "dask":
        run_dask(source, scheduler, on_result, workers)
    elif workers == 1:
        run_inline(source, on_result)
    else:
        run_processes(source, workers, on_result)


class Queue:
    """A fixed list of jobs as a job source."""

    def __init__(self, jobs: list[dict]):
        self.jobs = list(jobs)

    def next_job(self) -> dict | None:
        return self.jobs.pop(0) if self.jobs else None


def fetch_datasets(jobs: list[dict]) -> None:
    """Download the named datasets the trials need once, here, before the workers start: they
    then find them in the cache instead of all downloading at once, and the download shows in
    this process's display. A failed download is left for the trials to report."""
    from nnrun.data.catalog import dataset_info
    from nnrun.data.download import fetch

    for name in sorted({name for job in jobs if (name := dataset_needed(job))}):
        for filename in (f for pair in dataset_info(name).files.values() for f in pair):
            try:
                fetch(name, filename)
            except NnrunError:
                break


def dataset_needed(job: dict) -> str | None:
    """The named dataset a trial loads, if any; a trial whose config fails says so when it runs."""
    try:
        data = trial_experiment(job).data
    except NnrunError:
        return None
    return data.dataset if data.dataset and not (data.train and data.test) else None


def run_inline(source: JobSource, on_result: OnResult) -> None:
    while (job := source.next_job()) is not None:
        result = run_trial(job)
        on_result(result)
        if result["status"] == Status.INTERRUPTED:
            raise KeyboardInterrupt


def crashed(job: dict, error: str) -> dict:
    return {"index": job["index"], "status": Status.CRASHED, "metric": None, "best_epoch": None,
            "run_dir": None, "error": error, "seconds": None}


def result_of(future: Any, job: dict) -> dict:
    """A finished future's result; a crashed one when the worker died (BrokenProcessPool, ...)
    or sent back something that is not this job's result."""
    try:
        result = future.result()
    except Exception as e:
        return crashed(job, f"{type(e).__name__}: {e}")
    return result if is_result_of(result, job) else crashed(job, "the worker sent back something else than the trial's result")


RESULT_TYPES = {"status": str, "metric": (int, float, type(None)), "best_epoch": (int, type(None)),
                "seconds": (int, float, type(None)), "run_dir": (str, type(None)), "error": (str, type(None)),
                "history": (list, type(None))}
MAX_HISTORY = 100_000  # epochs: far more than any run, a bound on what a worker may send back


def is_result_of(result: Any, job: dict) -> bool:
    """Whether result has run_trial's shape, for this job (a Dask worker is another machine)."""
    return (isinstance(result, dict) and result.get("index") == job["index"]
            and all(isinstance(result.get(k), kinds) for k, kinds in RESULT_TYPES.items())
            and result["status"] in [s.value for s in Status]
            and result["run_dir"] in (None, f"trials/{job['name']}")
            and len(result.get("history") or []) <= MAX_HISTORY
            and all(isinstance(v, (int, float, type(None))) for v in result.get("history") or []))


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Set the BLAS thread variables for the processes spawned inside the block."""
    saved = {k: os.environ.get(k) for k in BLAS_VARS}
    os.environ.update({k: str(n) for k in BLAS_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def worker_init() -> None:
    """Workers ignore Ctrl-C: the parent stops them, so the pool never breaks half-way."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_processes(source: JobSource, workers: int, on_result: OnResult) -> None:
    """Spawned worker processes. On Ctrl-C (or an error in on_result) the results that are in
    are kept, the rest cancelled, and the workers terminated at once."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    children_before = child_pids()
    running: dict = {}
    with blas_threads(1):  # spawned children read these before they import numpy
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=worker_init)
        submit = functools.partial(pool.submit, run_trial)
        try:
            fill(running, source, workers, submit)
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    on_result(result_of(fut, running.pop(fut)))
                fill(running, source, workers, submit)
        except BaseException:
            record_finished(running, on_result)
            terminate_children(except_pids=children_before)
            # No future is cancelled by hand: the executor's own thread then fails the unfinished
            # ones as a broken pool (cancelled ones would make it print a traceback).
            pool.shutdown(wait=True)
            raise
    pool.shutdown(wait=True)


def fill(running: dict, source: JobSource, slots: int, submit: Callable[[dict], Any]) -> None:
    """Submit the source's jobs until `slots` are running or it has none for now."""
    while len(running) < slots and (job := source.next_job()) is not None:
        running[submit(job)] = job


def record_finished(running: dict, on_result: OnResult) -> None:
    """Results that came in while we were being interrupted: keep them."""
    for fut, job in running.items():
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            on_result(result_of(fut, job))


def child_pids() -> set[int]:
    return {p.pid for p in multiprocessing.active_children()}


def terminate_children(except_pids: set[int], timeout: float = 5.0) -> None:
    """Terminate this process's children that are not in except_pids (the pool's workers: the
    executor does not publish its processes) and wait for them, so no trial writes after this."""
    procs = [p for p in multiprocessing.active_children() if p.pid not in except_pids]
    for p in procs:
        p.terminate()
    for p in procs:
        p.join(timeout)


def with_folder(job: dict) -> dict:
    """A job whose trial has a checkpoint here carries its folder (the worker may be elsewhere)."""
    from nnrun.checkpoint import FILE as CHECKPOINT

    folder = Path(job["trials_dir"]) / job["name"]
    return dict(job, folder_zip=zip_folder(folder)) if (folder / CHECKPOINT).is_file() else job


def run_dask(source: JobSource, scheduler: Any, on_result: OnResult, workers: int) -> None:
    """Jobs on a Dask cluster, as many at a time as it has threads (or `workers`, the larger);
    a promoted trial travels with its folder (checkpoint included) and comes back zipped."""
    from distributed import Client, as_completed

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler, timeout="20s")
    try:
        slots = max(workers, sum(client.nthreads().values()))
        running: dict = {}
        completed = as_completed()

        def submit(job: dict):
            fut = client.submit(run_trial, with_folder(dict(job, zip=True)), pure=False,
                                key=f"nnrun-trial-{job['index']}-{uuid.uuid4().hex[:8]}")
            completed.add(fut)
            return fut

        try:
            fill(running, source, slots, submit)
            while running:
                fut = next(completed)
                on_result(result_of(fut, running.pop(fut)))
                fill(running, source, slots, submit)
        except BaseException:
            client.cancel(list(running))
            raise
    finally:
        if client is not scheduler:
            client.close()
