"""Hyper-parameter sweeps and the learning-rate range test (the library behind `nnrun sweep`).

A sweep is a list of trials; a trial is a list of `--set` overrides applied to the config (with its
`sweep:` section removed) and trained by train_run() exactly as `nnrun train CONFIG --set ...`
would, so every trial is reproducible on its own. Trials run in this process (1 worker), in
spawned worker processes (BLAS limited to one thread each), or on a Dask cluster (the trial's run
folder comes back zipped). The sweep folder holds the trial folders (trials/t000-...), sweep.json
(the plan and every result; it is rewritten after each trial, so an interrupted sweep can resume),
sweep.csv, best.yaml and plots/.

Parameter values (command line `--param KEY=SPEC` or the `sweep.params` mapping):
  0.001,0.01,0.1      a list (top-level commas; each value read as JSON, then YAML)
  log:1e-5:1:8        8 values spaced evenly in log scale from 1e-5 to 1 (random: log-uniform)
  lin:0:0.5:6         6 values spaced evenly (random: uniform)
  int:16:128:16       integers 16, 32, ... 128 (random: any integer in the range)
In YAML a list gives the values, and a mapping {label: value} names them (handy for whole
values such as model.layers). Keys are dotted as for --set; a negative index counts from the end
(model.layers[-1].activation), resolved per trial after earlier params were applied.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import itertools
import json
import math
import os
import re
import shlex
import shutil
import signal
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np

from nnrun.config import (apply_overrides, canonical_override, check_name, monitor_mode, parse_key,
                          parse_value, read_yaml, validate)
from nnrun.errors import ConfigError
from nnrun.runs import read_json, read_json_or, read_rows
from nnrun.fileio import write_bytes, write_json, write_text

SWEEP_FORMAT, SWEEP_VERSION = "nnrun.sweep", 1
METRICS = ["val_accuracy", "val_loss", "train_accuracy", "train_loss", "test_accuracy", "test_loss"]
OK_STATUSES = {"completed", "stopped_early"}
DONE_STATUSES = OK_STATUSES | {"diverged", "failed"}  # --resume reruns anything else
BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
             "NUMEXPR_NUM_THREADS")
RANGE_RE = re.compile(r"^(log|lin|int):([^:]+):([^:]+)(?::([^:]+))?$")


# -- parameters -----------------------------------------------------------------------------
class Param:
    """One swept key: its grid values, a label for each, and (for ranges) the space to sample."""

    def __init__(self, key: str, values: list, labels: Optional[list[str]] = None,
                 space: Optional[tuple] = None):
        if not values:
            raise ConfigError(f"sweep param {key!r}: no values")
        self.key, self.values, self.space = key, list(values), space
        self.labels = labels or [label_for(v, i) for i, v in enumerate(values)]

    def __repr__(self):
        return f"Param({self.key!r}, {self.values!r})"


def round_sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def label_for(value: Any, i: int) -> Any:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, (int, float, str)):
        return value
    return f"#{i + 1}"


def fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def parse_range(key: str, text: str) -> Optional[Param]:
    """'log:1e-5:1:8' -> Param with 8 log-spaced values; None when text is not a range."""
    m = RANGE_RE.match(text.strip())
    if not m:
        return None
    kind, lo_s, hi_s, n_s = m.groups()
    where = f"sweep param {key}={text}"
    try:
        lo, hi = float(lo_s), float(hi_s)
        n = int(n_s) if n_s is not None else None
    except ValueError:
        raise ConfigError(f"{where}: expected {kind}:LOW:HIGH[:N] with numbers") from None
    if kind == "int":
        if lo != int(lo) or hi != int(hi) or hi < lo:
            raise ConfigError(f"{where}: int:LOW:HIGH[:STEP] needs integers with LOW <= HIGH")
        step = 1 if n is None else n
        if step <= 0:
            raise ConfigError(f"{where}: the step must be positive")
        return Param(key, list(range(int(lo), int(hi) + 1, step)), space=("int", int(lo), int(hi)))
    n = 5 if n is None else n
    if n < 1:
        raise ConfigError(f"{where}: the number of values must be at least 1")
    if kind == "log":
        if lo <= 0 or hi <= 0:
            raise ConfigError(f"{where}: log ranges need positive bounds")
        values = np.logspace(math.log10(lo), math.log10(hi), n)
    else:
        values = np.linspace(lo, hi, n)
    values = [round_sig(float(v)) for v in values] if n > 1 else [lo]
    return Param(key, values, space=(kind, lo, hi))


def split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets, braces and quotes."""
    parts, depth, quote, cur = [], 0, None, ""
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def parse_param_text(text: str) -> Param:
    """A command-line --param: 'optimizer.lr=0.001,0.01' or 'optimizer.lr=log:1e-5:1:8'."""
    if "=" not in text:
        raise ConfigError(f"--param {text!r}: expected KEY=VALUES, e.g. --param optimizer.lr=0.001,0.01")
    key, raw = (s.strip() for s in text.split("=", 1))
    return param_from_spec(key, raw)


def param_from_spec(key: str, spec: Any) -> Param:
    """A param from a YAML value: list, {label: value}, range string, comma string or scalar."""
    parse_key(key, "sweep param")  # syntax check
    if isinstance(spec, dict):
        return Param(key, list(spec.values()), [str(k) for k in spec])
    if isinstance(spec, list):
        return Param(key, spec)
    if isinstance(spec, str):
        ranged = parse_range(key, spec)
        if ranged is not None:
            return ranged
        pieces = split_top_level(spec)
        if any(p == "" for p in pieces):
            raise ConfigError(f"sweep param {key}={spec}: empty value in the list")
        return Param(key, [parse_value(p) for p in pieces])
    return Param(key, [spec])


def concrete_key(raw: dict, key: str) -> str:
    """The key with negative list indices resolved against raw (for a plain --set)."""
    node: Any = raw
    out = ""
    for part in parse_key(key, "sweep param"):
        if isinstance(part, int):
            if not isinstance(node, list):
                raise ConfigError(f"sweep param {key!r}: [{part}] indexes something that is not a list")
            idx = part + len(node) if part < 0 else part
            if not 0 <= idx < len(node):
                raise ConfigError(f"sweep param {key!r}: index {part} is out of range ({len(node)} items)")
            out += f"[{idx}]"
            node = node[idx]
        else:
            out += f".{part}" if out else part
            node = node.get(part) if isinstance(node, dict) else None
    return out


def merge_params(section: Optional[dict], cli: Sequence[str]) -> list[Param]:
    """The sweep section's params, then the command line's (same key: the command line wins)."""
    params: dict[str, Param] = {}
    for key, spec in (section or {}).items():
        params[key] = param_from_spec(key, spec)
    for text in cli:
        p = parse_param_text(text)
        params[p.key] = p
    return list(params.values())


# -- the plan -------------------------------------------------------------------------------
def expand(params: Sequence[Param], random: Optional[int] = None, seed: int = 0) -> list[list[tuple]]:
    """Every trial as [(value, label), ...] in param order: the grid product, or `random` draws
    (ranges sampled continuously, lists uniformly)."""
    if not params:
        return [[]]
    if not random:
        return [list(combo) for combo in itertools.product(*[list(zip(p.values, p.labels)) for p in params])]
    rng = np.random.default_rng(seed)
    trials = []
    for _ in range(random):
        trial = []
        for p in params:
            if p.space and p.space[0] == "log":
                v = round_sig(float(math.exp(rng.uniform(math.log(p.space[1]), math.log(p.space[2])))))
                trial.append((v, v))
            elif p.space and p.space[0] == "lin":
                v = round_sig(float(rng.uniform(p.space[1], p.space[2])))
                trial.append((v, v))
            elif p.space and p.space[0] == "int":
                v = int(rng.integers(p.space[1], p.space[2] + 1))
                trial.append((v, v))
            else:
                i = int(rng.integers(len(p.values)))
                trial.append((p.values[i], p.labels[i]))
        trials.append(trial)
    return trials


def short_key(key: str) -> str:
    return re.sub(r"\[-?\d+\]", "", key.split(".")[-1]) or key


def trial_folder(index: int, params: dict) -> str:
    slug = "_".join(f"{short_key(k)}={fmt_value(v)}" for k, v in params.items())
    slug = re.sub(r"[^A-Za-z0-9._=+-]+", "-", slug).strip("-")[:48]
    return f"t{index:03d}" + (f"-{slug}" if slug else "")


def default_metric(raw_exp) -> str:
    return "val_accuracy" if raw_exp.data.validation_split > 0 else "test_accuracy"


def plan_sweep(config: Union[str, os.PathLike], params: Sequence[str] = (), overrides: Sequence[str] = (),
               metric: Optional[str] = None, mode: Optional[str] = None, random: Optional[int] = None,
               seed: Optional[int] = None, name: Optional[str] = None) -> dict:
    """Read the config and build the sweep document (no files written): the base config, the
    params, and every trial with its concrete --set overrides, validated up front. A trial whose
    config is invalid is recorded as failed; when every trial is invalid, ConfigError."""
    config = Path(config)
    raw = read_yaml(config)
    base_dir = config.resolve().parent
    overrides = [canonical_override(text) for text in overrides]
    apply_overrides(raw, overrides)  # the base --set overrides; the section is read from the result
    base_exp = validate(copy.deepcopy(raw), str(config), base_dir)
    section = base_exp.sweep
    raw.pop("sweep", None)
    plist = merge_params(section.params if section else None, params)
    metric = metric or (section.metric if section else None) or default_metric(base_exp)
    if metric not in METRICS:
        from nnrun.config import unknown_name
        raise ConfigError(str(unknown_name("metric", metric, METRICS)))
    if metric.startswith("val_") and base_exp.data.validation_split == 0:
        raise ConfigError(f"--metric {metric}: the config has no validation data "
                          "(data.validation_split is 0); use a train_ or test_ metric")
    mode = mode or (section.mode if section else None) or monitor_mode(metric)
    if mode not in ("max", "min"):
        raise ConfigError(f"--mode {mode!r}: use max or min")
    random = random if random is not None else (section.random if section else None)
    seed = seed if seed is not None else (section.seed if section and section.seed is not None else base_exp.seed)
    combos = expand(plist, random, seed)
    trials, errors = [], []
    for index, combo in enumerate(combos):
        scratch = copy.deepcopy(raw)
        sets, shown = list(overrides), {}
        trial = {"index": index, "params": shown, "overrides": sets, "status": "pending", "metric": None,
                 "best_epoch": None, "seconds": None, "run_dir": None, "error": None}
        try:
            for p, (value, label) in zip(plist, combo):
                text = canonical_override(f"{concrete_key(scratch, p.key)}={json.dumps(value)}")
                apply_overrides(scratch, [text])
                sets.append(text)
                shown[p.key] = label
            validate(scratch, f"{config} (trial {index})", base_dir)
        except ConfigError as e:
            trial.update(status="failed", error=str(e))
            errors.append(str(e))
            for p, (value, label) in zip(plist, combo):
                shown.setdefault(p.key, label)
        trial["name"] = trial_folder(index, shown)
        trials.append(trial)
    if errors and len(errors) == len(trials):
        raise ConfigError(errors[0])
    return {"format": SWEEP_FORMAT, "version": SWEEP_VERSION, "name": check_name(name) if name is not None else base_exp.name,
            "config": str(config), "base_dir": str(base_dir), "base_config": raw,
            "base_overrides": list(overrides), "metric": metric, "mode": mode,
            "param_names": [p.key for p in plist], "random": random, "seed": seed,
            "workers": section.workers if section else None, "status": "planned", "trials": trials, "best": None}


# -- one trial (runs in a worker) -----------------------------------------------------------
def trial_experiment(job: dict):
    """The validated Experiment of a trial: base config + overrides, exactly as load_config."""
    raw = copy.deepcopy(job["base_config"])
    apply_overrides(raw, job["overrides"])
    return validate(raw, job.get("source", "config"), Path(job["base_dir"]))


def metric_of(summary: dict, rows: list[dict], metric: str, mode: str) -> tuple[Optional[float], Optional[int]]:
    """(value, epoch): the best epoch's value for train/val metrics, the final test metric."""
    if metric.startswith("test_"):
        v = summary.get(metric)
        epoch = summary.get("best_epoch") if summary.get("test_weights") == "best" else summary.get("epochs_run")
        return (v if v is not None and math.isfinite(v) else None), epoch
    best = None
    for r in rows:
        v = r.get(metric)
        if v is None or not math.isfinite(v):
            continue
        if best is None or (v > best[0] if mode == "max" else v < best[0]):
            best = (v, r["epoch"])
    return best if best else (None, None)


def run_trial(job: dict) -> dict:
    """Train one trial into job['trials_dir']/job['name'] (or, with job['zip'], into a temporary
    folder returned as zip bytes). Never raises: failures are in the result's status/error."""
    start = time.perf_counter()
    result = {"index": job["index"], "status": "failed", "metric": None, "best_epoch": None,
              "run_dir": None, "error": None}
    local = Path(tempfile.mkdtemp(prefix="nnrun-trial-")) if job.get("zip") else Path(job["trials_dir"])
    staging = local / f".staging-{job['name']}-{uuid.uuid4().hex[:8]}"
    final = local / job["name"]
    try:
        from nnrun.experiment import train_run

        exp = trial_experiment(job)
        train_run(exp, staging, make_plots=job.get("plots", True))
    except KeyboardInterrupt:
        result.update(status="interrupted", error="interrupted")
    except Exception as e:  # recorded; the sweep goes on
        result["error"] = str(e) if isinstance(e, ConfigError) else f"{type(e).__name__}: {e}"
    try:
        made = sorted(staging.iterdir()) if staging.is_dir() else []
        if made:
            if final.exists():
                shutil.rmtree(final)
            os.replace(made[0], final)
            summary_path = final / "summary.json"
            summary = read_json_or(summary_path)
            if isinstance(summary, dict):
                summary["run_dir"] = final.name
                write_json(summary_path, summary)
                rows = read_json_or(final / "metrics.json", [])
                if result["error"] is None:  # the run's own verdict, unless something was raised
                    result.update(status=summary.get("status", "failed"), error=summary.get("error"))
                if result["status"] in OK_STATUSES:
                    result["metric"], result["best_epoch"] = metric_of(summary, rows, job["metric"], job["mode"])
                    if result["metric"] is None:
                        result.update(status="failed", error=f"no finite {job['metric']} in this run")
            result["run_dir"] = f"trials/{final.name}"
        if job.get("zip") and final.is_dir():
            result["zip"] = zip_folder(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if job.get("zip"):
            shutil.rmtree(local, ignore_errors=True)
    result["seconds"] = time.perf_counter() - start
    return result


def zip_folder(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return buf.getvalue()


def unzip_into(data: bytes, folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            target = (folder / info.filename).resolve()
            if folder.resolve() not in target.parents:
                raise ValueError(f"unsafe path in a trial archive: {info.filename}")
            if not info.is_dir():
                write_bytes(target, zf.read(info))


# -- executors ------------------------------------------------------------------------------
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


def crashed(job: dict, error: str) -> dict:
    return {"index": job["index"], "status": "crashed", "metric": None, "best_epoch": None,
            "run_dir": None, "error": error, "seconds": None}


def run_inline(jobs: list[dict], on_result: Callable[[dict], None]) -> None:
    for job in jobs:
        result = run_trial(job)
        on_result(result)
        if result["status"] == "interrupted":
            raise KeyboardInterrupt


def run_processes(jobs: list[dict], workers: int, on_result: Callable[[dict], None]) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with blas_threads(1):  # spawned children read these before they import numpy
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=worker_init)
        futures = {pool.submit(run_trial, job): job for job in jobs}
    handled = set()
    try:
        for fut in as_completed(futures):
            try:
                result = fut.result()
            except Exception as e:  # the worker process died (BrokenProcessPool, ...)
                result = crashed(futures[fut], f"{type(e).__name__}: {e}")
            handled.add(fut)
            on_result(result)
    except BaseException:
        for fut in futures:
            fut.cancel()
        for fut in futures.keys() - handled:  # finished while we were interrupted: keep them
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                on_result(fut.result())
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


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


def run_dask(jobs: list[dict], scheduler: Any, on_result: Callable[[dict], None]) -> None:
    from distributed import Client, as_completed

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler, timeout="20s")
    try:
        futures = {}
        for job in jobs:
            fut = client.submit(run_trial, dict(job, zip=True), pure=False,
                                key=f"nnrun-trial-{job['index']}-{uuid.uuid4().hex[:8]}")
            futures[fut] = job
        try:
            for fut in as_completed(list(futures)):
                try:
                    result = fut.result()
                except Exception as e:
                    result = crashed(futures[fut], f"{type(e).__name__}: {e}")
                on_result(result)
        except BaseException:
            client.cancel(list(futures))
            raise
    finally:
        if client is not scheduler:
            client.close()


# -- the sweep ------------------------------------------------------------------------------
class SweepReporter:
    """What run_sweep tells the outside world (the CLI draws a live table from it)."""

    def start(self, doc: dict, pending: int, workers: int) -> None: pass
    def trial_done(self, trial: dict, doc: dict) -> None: pass
    def finish(self, doc: dict) -> None: pass


def successful(doc: dict) -> list[dict]:
    return [t for t in doc["trials"] if t["status"] in OK_STATUSES and t["metric"] is not None]


def ranking(doc: dict) -> list[dict]:
    """Trials best first (ties: lower index first); failed ones last, in index order."""
    sign = -1 if doc["mode"] == "max" else 1
    ok = successful(doc)
    return sorted(ok, key=lambda t: (sign * t["metric"], t["index"])) + [t for t in doc["trials"] if t not in ok]


def best_index(doc: dict) -> Optional[int]:
    return ranking(doc)[0]["index"] if successful(doc) else None


def write_csv(sweep_dir: Path, doc: dict) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["trial", *doc["param_names"], "status", doc["metric"], "best_epoch", "seconds",
                     "run_dir", "error"])
    for t in doc["trials"]:
        params = [t["params"].get(k, "") for k in doc["param_names"]]
        seconds = "" if t["seconds"] is None else f"{t['seconds']:.3f}"
        writer.writerow([t["index"], *params, t["status"], "" if t["metric"] is None else t["metric"],
                         "" if t["best_epoch"] is None else t["best_epoch"], seconds,
                         t["run_dir"] or "", t["error"] or ""])
    write_text(sweep_dir / "sweep.csv", buf.getvalue())


def save(sweep_dir: Path, doc: dict) -> None:
    doc["best"] = best_index(doc)
    write_json(sweep_dir / "sweep.json", doc)
    write_csv(sweep_dir, doc)


def finish_outputs(sweep_dir: Path, doc: dict, plots: bool = True) -> None:
    """best.yaml and the two plots, from what has finished."""
    best = doc["best"]
    if best is not None:
        trial = doc["trials"][best]
        config_text = (sweep_dir / trial["run_dir"] / "config.yaml").read_text(encoding="utf-8")
        header = (f"# best trial of sweep {sweep_dir.name}: {trial['name']} "
                  f"({doc['metric']} = {trial['metric']:.6g}, epoch {trial['best_epoch']})\n"
                  f"# reproduce: nnrun train {doc['config']} "
                  + " ".join(f"--set {shlex.quote(s)}" for s in trial["overrides"]) + "\n")
        write_text(sweep_dir / "best.yaml", header + config_text)
    if not plots:
        return
    from nnrun import plots as P

    names = doc["param_names"]
    shown = [t for t in doc["trials"] if t["status"] != "pending"]
    rates = names and all(re.search(r"(^|\.)lr\w*$|rate$", k) for k in names) and all(
        isinstance(t["params"].get(k), (int, float)) and t["params"][k] > 0 for t in shown for k in names)
    P.sweep_plot(shown, names, doc["metric"], sweep_dir / "plots" / "sweep.png",
                 log_x=True if rates else None, higher_is_better=doc["mode"] == "max")
    runs, best = [], None
    for t in shown:
        rows = read_rows(sweep_dir / t["run_dir"]) if t["run_dir"] else []
        if rows:
            best = len(runs) if t["index"] == doc["best"] else best
            label = ", ".join(f"{short_key(k)}={fmt_value(v)}" for k, v in t["params"].items()) or t["name"]
            runs.append((label, rows))
    P.sweep_curves(runs, sweep_dir / "plots" / "sweep_curves.png",
                   title=f"Sweep {doc['name']}: validation accuracy", best=best)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def run_sweep(doc_or_config: Union[dict, str, os.PathLike, None] = None, *, runs_dir="runs",
              resume: Optional[Union[str, os.PathLike]] = None, workers: Optional[int] = None,
              executor: str = "local", scheduler: Any = None, trial_plots: bool = True,
              plots: bool = True, reporter: Optional[SweepReporter] = None, **plan_kwargs) -> Path:
    """Run a planned sweep (a plan_sweep() document, or a config path planned here with
    plan_kwargs), or resume the sweep folder `resume`. Returns the sweep folder; its sweep.json
    says "completed" or "interrupted" (Ctrl-C: what finished is kept)."""
    from nnrun.runs import create_run_dir

    reporter = reporter or SweepReporter()
    check_executor(executor, scheduler)
    if resume is not None:
        sweep_dir = Path(resume)
        path = sweep_dir / "sweep.json"
        if not path.is_file():
            raise ConfigError(f"{sweep_dir}: not a sweep folder (no sweep.json)")
        doc = read_json(path)
        if not isinstance(doc, dict) or doc.get("format") != SWEEP_FORMAT:
            raise ConfigError(f"{path}: not an nnrun sweep file")
        for t in doc["trials"]:
            if t["status"] not in DONE_STATUSES:
                t.update(status="pending", metric=None, best_epoch=None, seconds=None, run_dir=None, error=None)
                shutil.rmtree(sweep_dir / "trials" / t["name"], ignore_errors=True)
    else:
        doc = doc_or_config if isinstance(doc_or_config, dict) else plan_sweep(doc_or_config, **plan_kwargs)
        doc = copy.deepcopy(doc)
        sweep_dir = create_run_dir(runs_dir, f"sweep-{doc['name']}")
    (sweep_dir / "trials").mkdir(parents=True, exist_ok=True)
    for stale in (sweep_dir / "trials").glob(".staging-*"):
        shutil.rmtree(stale, ignore_errors=True)
    pending = [t for t in doc["trials"] if t["status"] == "pending"]
    workers = max(1, min(workers or (doc.get("workers") or default_workers()), max(len(pending), 1)))
    doc.update(status="running", started=time.strftime("%Y-%m-%dT%H:%M:%S"), workers=workers,
               executor=executor, sweep_dir=sweep_dir.name)
    save(sweep_dir, doc)
    jobs = [{"index": t["index"], "name": t["name"], "overrides": t["overrides"],
             "base_config": doc["base_config"], "base_dir": doc["base_dir"], "source": doc["config"],
             "trials_dir": str((sweep_dir / "trials").resolve()), "metric": doc["metric"],
             "mode": doc["mode"], "plots": trial_plots} for t in pending]
    reporter.start(doc, len(jobs), workers)
    started = time.perf_counter()

    def on_result(result: dict) -> None:
        data = result.pop("zip", None)
        trial = doc["trials"][result["index"]]
        if data is not None:
            unzip_into(data, sweep_dir / "trials" / trial["name"])
        if result["status"] == "interrupted":
            shutil.rmtree(sweep_dir / "trials" / trial["name"], ignore_errors=True)
            result = dict(result, run_dir=None)
        trial.update({k: result.get(k) for k in ("status", "metric", "best_epoch", "seconds", "run_dir", "error")})
        save(sweep_dir, doc)
        reporter.trial_done(trial, doc)

    try:
        if not jobs:
            pass
        elif executor == "dask":
            run_dask(jobs, scheduler, on_result)
        elif workers == 1:
            run_inline(jobs, on_result)
        else:
            run_processes(jobs, workers, on_result)
        doc["status"] = "completed"
    except KeyboardInterrupt:
        doc["status"] = "interrupted"
        for t in doc["trials"]:
            if t["status"] in ("pending", "interrupted"):
                t.update(status="pending", run_dir=None)
                shutil.rmtree(sweep_dir / "trials" / t["name"], ignore_errors=True)
    finally:
        doc["wall_seconds"] = doc.get("wall_seconds", 0.0) + (time.perf_counter() - started)
        for stale in (sweep_dir / "trials").glob(".staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        save(sweep_dir, doc)
    finish_outputs(sweep_dir, doc, plots)
    reporter.finish(doc)
    return sweep_dir


def read_sweep(sweep_dir: Union[str, os.PathLike]) -> dict:
    return json.loads((Path(sweep_dir) / "sweep.json").read_text(encoding="utf-8"))
