"""Score a finished run and look back at runs: evaluate, list, compare.

evaluate_run() rebuilds the run's network from its resolved config.yaml, loads weights.json,
scores one split of the data (the same seeded split training used) and writes
evaluation-<split>.json, plots under plots/ and a refreshed report.html. list_runs() (runs and
sweeps, a sweep as one record) and compare_runs() read run folders; compare_runs() writes only
its picture. `latest` is the newest run directly in the runs folder, never a sweep's trial.
Errors a user can fix raise ConfigError (exit 2).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnrun.errors import ConfigError
from nnrun.fileio import check_inside, write_json
from nnrun.fmt import finite, pct
from nnrun.metrics import RUN_METRICS
from nnrun.runs import read_json_or, read_rows, read_summary

SPLITS = {"test": "test", "validation": "val", "val": "val", "train": "train"}
RUN_FILES = ("config.yaml", "summary.json")
MISSING = "(absent)"  # shown by config_differences for a key one config does not have
UNREADABLE = "(unreadable)"  # ... for every key of a config.yaml that cannot be read


# -- finding runs ---------------------------------------------------------------------------
def is_run_dir(path: Path) -> bool:
    return path.is_dir() and all((path / f).is_file() for f in RUN_FILES)


def is_sweep_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "sweep.json").is_file() or (path / "trials").is_dir())


def resolve_run(run: str | os.PathLike, runs_dir: str | os.PathLike = "runs") -> Path:
    """A run folder from a path, a folder name inside runs_dir, or `latest`."""
    runs_dir = Path(runs_dir)
    if str(run) == "latest":
        return latest_run(runs_dir)
    path = Path(run)
    if not path.exists() and not path.is_absolute() and (runs_dir / path).exists():
        path = runs_dir / path
    if not path.exists():
        raise ConfigError(f"{run}: no such run folder; give a run folder path, a folder name "
                          f"inside {runs_dir}, or `latest` (see `nnrun runs`)")
    if not path.is_dir():
        raise ConfigError(f"{path}: not a folder; give a run folder (it holds config.yaml, "
                          "weights.json and summary.json)")
    check_run_files(path, RUN_FILES)
    return path


def latest_run(runs_dir: str | os.PathLike = "runs") -> Path:
    """The newest run directly in runs_dir. A sweep's trials are never `latest`: the newest
    trial is only the last one to finish, often not the one worth looking at."""
    runs_dir = Path(runs_dir)
    records = list_runs(runs_dir)
    runs = [r for r in records if r["kind"] == "run"]
    if runs:
        return Path(runs[0]["path"])
    if records:
        raise ConfigError(f"latest: no runs in {runs_dir}, only sweeps, whose trials are never `latest`; "
                          "give a trial's folder (`nnrun runs --all` lists them)")
    where = f"{runs_dir} does not exist" if not runs_dir.is_dir() else f"no runs in {runs_dir}"
    raise ConfigError(f"latest: {where}; train one with `nnrun train CONFIG` "
                      f"or point --runs-dir at the folder that holds your runs")


def check_run_files(run_dir: Path, names) -> None:
    for name in names:
        if not (run_dir / name).is_file():
            raise ConfigError(f"{run_dir / name}: missing; {run_dir} is not a complete run folder "
                              "(was the training interrupted before it was written?)")


# -- loading and scoring --------------------------------------------------------------------
def load_run(run_dir: str | os.PathLike, overrides: Sequence[str] = ()):
    """(exp, net, data): the run's resolved config (with --set overrides), its network with the
    trained weights loaded, and the data loaded exactly as training loaded it."""
    from nnrun.builder import build_network, load_data
    from nnrun.config import load_config
    from nnrun.runs import load_weights_into

    run_dir = Path(run_dir)
    check_run_files(run_dir, ("config.yaml", "weights.json"))
    exp = load_config(run_dir / "config.yaml", tuple(overrides))
    data = load_data(exp)
    trained = (read_summary(run_dir) or {}).get("class_names")
    if trained:
        if data.num_classes > len(trained):
            raise ConfigError(f"{exp.source}: the data has labels up to {data.num_classes - 1} but "
                              f"the run was trained on {len(trained)} classes ({', '.join(trained)}); "
                              "use data with the same classes")
        data.class_names = list(trained)
    net = build_network(exp, data.input_shape, data.num_classes)
    load_weights_into(net, run_dir / "weights.json")
    return exp, net, data


def split_key(split: str) -> str:
    if split not in SPLITS:
        raise ConfigError(f"--split {split!r}: unknown split; use test, validation or train")
    return SPLITS[split]


def split_name(split: str) -> str:
    return {"val": "validation"}.get(SPLITS[split], SPLITS[split])


def probabilities(out: np.ndarray) -> np.ndarray:
    """The network's outputs as class probabilities (softmax them unless they already are)."""
    out = np.asarray(out, np.float64)
    if out.size and np.all(out >= 0) and np.allclose(out.sum(axis=1), 1.0, atol=1e-3):
        return out
    z = out - out.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def is_image_shape(shape: Sequence[int]) -> bool:
    if len(shape) >= 2:
        return True
    return len(shape) == 1 and shape[0] >= 4 and math.isqrt(shape[0]) ** 2 == shape[0]


def first_layer_with_weights(net) -> tuple[int, Any] | None:
    """(index, layer) of the first layer with a weight matrix W (its weights are plotted)."""
    return next(((i, l) for i, l in enumerate(net.layers) if "W" in l.params), None)


def evaluate_run(run_dir: str | os.PathLike, split: str = "test", overrides: Sequence[str] = (),
                 make_plots: bool = True) -> dict:
    """Score one split; write evaluation-<split>.json, plots/*-<split>.png, plots/weights.png and
    report.html in the run folder. Returns the evaluation document."""
    from nnrun import metrics
    from nnrun.builder import build_loss
    from nnrun.train import evaluate_arrays

    run_dir = Path(run_dir)
    key = split_key(split)
    name = split_name(split)
    if make_plots:
        check_inside(run_dir, run_dir / "plots")
    exp, net, data = load_run(run_dir, overrides)
    arrays = getattr(data, key)
    if arrays is None or len(arrays[0]) == 0:
        hint = {"test": "add data.test to the config or pass --set data.test.images=... "
                        "--set data.test.labels=...",
                "val": "the run has data.validation_split 0; use --split test or train"}.get(key, "")
        raise ConfigError(f"{run_dir}: the run has no {name} data; {hint}".rstrip("; "))
    x, y = arrays
    k = data.num_classes
    loss, accuracy, out = evaluate_arrays(net, build_loss(exp), x, y)
    probs = probabilities(out)
    pred = probs.argmax(axis=1)
    confidence = probs[np.arange(len(pred)), pred]
    cm = metrics.confusion_matrix(y, pred, k)
    report = metrics.classification_report(cm, data.class_names)
    ovr = metrics.one_vs_rest(cm)
    source = data.sources.get("test") if key == "test" else data.sources.get("train")
    doc = {
        "run": run_dir.name, "name": exp.name, "split": name,
        "data": str(source) if source is not None else None,
        "overrides": list(overrides),
        "evaluated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "num_samples": int(len(y)), "num_classes": k, "class_names": list(data.class_names),
        "loss_name": exp.loss, "loss": float(loss), "accuracy": float(accuracy),
        "num_correct": int(np.sum(pred == y)),
        "confusion_matrix": cm.tolist(),
        "per_class": [{k2: c[k2] for k2 in ("name", "precision", "recall", "f1", "support")}
                      for c in report["classes"]],
        "macro_avg": report["macro"], "weighted_avg": report["weighted"],
        "never_predicted": report["never_predicted"],
        "one_vs_rest": [{"class": c, "tp": int(r[0]), "fp": int(r[1]), "fn": int(r[2]), "tn": int(r[3])}
                        for c, r in zip(data.class_names, ovr, strict=True)],
        "top_confusions": metrics.top_confusions(cm, data.class_names, n=10),
        "plots": {},
    }
    if make_plots:
        doc["plots"] = draw_plots(run_dir, name, net, data, x, y, pred, probs, confidence, cm, report)
    write_json(run_dir / f"evaluation-{name}.json", doc)
    refresh_report(run_dir)
    return doc


def draw_plots(run_dir: Path, name: str, net, data, x, y, pred, probs, confidence, cm, report) -> dict:
    from nnrun import plots

    folder = run_dir / "plots"
    made = {"confusion_matrix": plots.confusion_matrix_plot(
        cm, data.class_names, folder / f"confusion_matrix-{name}.png", title=f"Confusion matrix ({name})")}
    if is_image_shape(data.input_shape):
        wrong = np.flatnonzero(pred != y)
        made["misclassified"] = plots.misclassified_grid(
            x[wrong], y[wrong], pred[wrong], confidence[wrong], data.class_names,
            folder / f"misclassified-{name}.png")
        pick = sample_indices(len(y), wrong, confidence)
        made["predictions"] = plots.predictions_plot(
            x[pick], probs[pick], y[pick], data.class_names, folder / f"predictions-{name}.png")
    made["per_class"] = plots.per_class_plot(report, folder / f"per_class-{name}.png",
                                             title=f"Per-class metrics ({name})")
    first = first_layer_with_weights(net)
    if first is not None:
        index, layer = first
        W = layer.params["W"]
        if W.ndim == 4:
            made["weights"] = plots.weights_plot(W, folder / "weights.png", "conv",
                                                 title=f"Layer {index} (conv2d): {W.shape[0]} learned "
                                                       f"{W.shape[2]}x{W.shape[3]} filters")
        elif W.ndim == 2:
            shape = tuple(data.input_shape) if only_reshapes_before(net, index) else None
            if shape is not None and len(shape) == 1:
                side = math.isqrt(shape[0])
                shape = (side, side) if side * side == shape[0] and side >= 2 else None
            made["weights"] = plots.weights_plot(W, folder / "weights.png", "dense", image_shape=shape)
    return {k: str(Path(p).relative_to(run_dir)) for k, p in made.items()}


def only_reshapes_before(net, index: int) -> bool:
    """True when every layer before `index` only reshapes the input (flatten, dropout): only
    then do a dense layer's input weights line up with the image's pixels."""
    return all(l.type in ("flatten", "dropout") and not l.params for l in net.layers[:index])


def sample_indices(n: int, wrong: np.ndarray, confidence: np.ndarray, count: int = 6) -> np.ndarray:
    """A few samples for the predictions plot: evenly spread, plus the 2 most confident mistakes."""
    worst = wrong[np.argsort(-confidence[wrong], kind="stable")][:2] if len(wrong) else np.array([], int)
    spread = np.unique(np.linspace(0, n - 1, count).round().astype(int))
    spread = [i for i in spread if i not in set(worst.tolist())][:count - len(worst)]
    return np.asarray(sorted(list(spread) + worst.tolist()), dtype=int)


def refresh_report(run_dir: Path) -> None:
    from nnrun.report import write_report

    write_report(run_dir)


# -- listing --------------------------------------------------------------------------------
# The keys of every record list_runs() returns, in this order (`nnrun runs --json/--csv`).
RUN_FIELDS = ("kind", "folder", "name", "started", "status", "epochs", "best_epoch", "monitor",
              "best_val_accuracy", "test_accuracy", "wall_seconds", "trials", "metric", "metric_value",
              "best_trial", "sweep", "path")


def blank_record(kind: str, path: Path, runs_dir: Path | None) -> dict:
    return dict.fromkeys(RUN_FIELDS) | {"kind": kind, "folder": relative_folder(path, runs_dir), "path": str(path)}


def relative_folder(path: Path, runs_dir: Path | None) -> str:
    try:
        return str(path.relative_to(runs_dir)) if runs_dir is not None else path.name
    except ValueError:
        return path.name


def run_record(run_dir: Path, runs_dir: Path | None = None, kind: str = "run") -> dict:
    """A run folder's record (RUN_FIELDS; the sweep fields empty)."""
    record = blank_record(kind, run_dir, runs_dir)
    summary = read_summary(run_dir)
    if summary is None:
        return record | {"status": "unreadable"}
    best = summary.get("best") or {}
    return record | {
        "name": summary.get("name"), "started": summary.get("started"),
        "status": summary.get("status", "unreadable"),
        "epochs": summary.get("epochs_run", len(read_rows(run_dir))),
        "best_epoch": summary.get("best_epoch"), "monitor": summary.get("monitor"),
        "best_val_accuracy": finite(best.get("val_accuracy")),
        "test_accuracy": finite(summary.get("test_accuracy")),
        "wall_seconds": finite(summary.get("wall_seconds"))}


def read_sweep_doc(sweep_dir: Path) -> dict | None:
    """What listings use of sweep.json: its name, start, status and wall time (None when not of
    their type), its metric (one nnrun knows), best and its trials, only those that are objects
    whose run_dir is a trial folder nnrun writes, trials/t000-... (anything else reads as no
    folder). None when the file is missing or unreadable."""
    doc = read_json_or(sweep_dir / "sweep.json")
    if not isinstance(doc, dict) or not isinstance(doc.get("trials"), list):
        return None
    texts = {k: doc[k] if isinstance(doc.get(k), str) else None for k in ("name", "started", "status")}
    trials = [t | {"run_dir": t["run_dir"] if is_trial_dir(t.get("run_dir")) else None}
              if isinstance(t, dict) else {"run_dir": None} for t in doc["trials"]]
    return texts | {"metric": sweep_metric(doc), "wall_seconds": finite(doc.get("wall_seconds")),
                    "best": doc.get("best"), "trials": trials}


def is_trial_dir(run_dir: Any) -> bool:
    from nnrun.sweep.document import TRIAL_NAME

    return isinstance(run_dir, str) and run_dir.startswith("trials/") and bool(TRIAL_NAME.fullmatch(run_dir[7:]))


def trial_dirs(sweep_dir: Path) -> list[Path]:
    trials = sweep_dir / "trials"
    return [d for d in sorted(trials.iterdir()) if is_run_dir(d)] if trials.is_dir() else []


def best_trial(doc: dict) -> dict | None:
    """The sweep's best trial (sweep.json's `best` is its index), or None before one finished."""
    best, trials = doc.get("best"), doc["trials"]
    ok = isinstance(best, int) and not isinstance(best, bool) and 0 <= best < len(trials)
    return trials[best] if ok and isinstance(trials[best], dict) else None


def sweep_metric(doc: dict) -> str | None:
    """The metric that ranks the sweep's trials (val_accuracy, test_loss, ...)."""
    metric = doc.get("metric")
    return metric if isinstance(metric, str) and metric in RUN_METRICS else None


def sweep_record(sweep_dir: Path, runs_dir: Path | None = None) -> dict:
    """A sweep as one record: its status and trial count, its best trial's metric (named by
    `metric`), folder and accuracies."""
    record = blank_record("sweep", sweep_dir, runs_dir)
    doc = read_sweep_doc(sweep_dir)
    if doc is None:
        return record | {"status": "unreadable", "trials": len(trial_dirs(sweep_dir))}
    record |= {"name": doc.get("name"), "started": doc.get("started"), "status": doc.get("status"),
               "trials": len(doc["trials"]), "metric": sweep_metric(doc),
               "wall_seconds": finite(doc.get("wall_seconds"))}
    best = best_trial(doc)
    if best is None or best["run_dir"] is None or not is_run_dir(sweep_dir / best["run_dir"]):
        return record
    best_run = run_record(sweep_dir / best["run_dir"], runs_dir)
    return record | {"metric_value": finite(best.get("metric")), "best_trial": best_run["folder"],
                     "best_val_accuracy": best_run["best_val_accuracy"],
                     "test_accuracy": best_run["test_accuracy"]}


def trial_records(sweep_dir: Path, runs_dir: Path | None = None) -> list[dict]:
    """The sweep's trial folders in trial order, each with its metric as sweep.json has it."""
    doc = read_sweep_doc(sweep_dir) or {"trials": []}
    metrics = {t["run_dir"]: t.get("metric") for t in doc["trials"] if t["run_dir"]}
    sweep = relative_folder(sweep_dir, runs_dir)
    return [run_record(d, runs_dir, "trial") | {
        "sweep": sweep, "metric": sweep_metric(doc),
        "metric_value": finite(metrics.get(f"trials/{d.name}"))} for d in trial_dirs(sweep_dir)]


def list_runs(runs_dir: str | os.PathLike = "runs", trials: bool = False) -> list[dict]:
    """One record (RUN_FIELDS) per run folder and per sweep folder in runs_dir, newest first;
    `kind` says which. With trials, each sweep's trials (kind `trial`) follow its record."""
    runs_dir = Path(runs_dir)
    records = []
    for record in newest_first(runs_dir):
        records.append(record)
        if trials and record["kind"] == "sweep":
            records.extend(trial_records(Path(record["path"]), runs_dir))
    return records


def newest_first(runs_dir: Path) -> list[dict]:
    """The records of the runs and sweeps directly in runs_dir, newest first."""
    found = []
    for child in sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []:
        if is_run_dir(child):
            found.append((run_record(child, runs_dir), child / "summary.json"))
        elif is_sweep_dir(child):
            found.append((sweep_record(child, runs_dir), child / "sweep.json"))
    # By the time nnrun wrote into the folder's name (a summary's "started" could say anything);
    # the summary's write time orders runs within a second.
    found.sort(key=lambda pair: (folder_time(Path(pair[0]["path"]).name), mtime(pair[1])), reverse=True)
    return [record for record, _ in found]


FOLDER_TIME = re.compile(r"\d{8}-\d{6}(?=-)")


def folder_time(name: str) -> str:
    """'20261130-101500' of a folder nnrun named (<YYYYMMDD-HHMMSS>-<name>); '' for any other
    name, which sorts as the oldest."""
    found = FOLDER_TIME.match(name)
    return found[0] if found else ""


def mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


# -- comparing ------------------------------------------------------------------------------
def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """{'optimizer': {'lr': 0.1}, 'model': {'layers': [{'units': 8}]}} ->
    {'optimizer.lr': 0.1, 'model.layers[0].units': 8}."""
    if isinstance(node, dict) and node:
        out = {}
        for k, v in node.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(node, list) and node:
        out = {}
        for i, v in enumerate(node):
            out.update(flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: node}


def config_differences(dicts: Sequence[dict]) -> dict[str, list]:
    """Dotted keys whose values differ between the configs -> one value per config
    (MISSING where a config lacks the key; UNREADABLE for a config that is None), in their order
    in the configs."""
    flats = [flatten(d) if d is not None else None for d in dicts]
    diffs = {}
    for key in key_order([f for f in flats if f is not None]):
        values = [f.get(key, MISSING) if f is not None else UNREADABLE for f in flats]
        if any(v != values[0] for v in values[1:]):
            diffs[key] = values
    return diffs


def key_order(flats: Sequence[dict]) -> list[str]:
    """Every key of the flattened configs in its place in the configs: a key only a later config
    has goes right after the key it follows there (a dense layer's `units` after its `activation`,
    not after the last key of the first config)."""
    order: list[str] = []
    for flat in flats:
        previous = None
        for key in flat:
            if key not in order:
                order.insert(order.index(previous) + 1 if previous is not None else 0, key)
            previous = key
    return order


def read_config(run_dir: Path) -> dict | None:
    """The run's config.yaml as data, read like every config (size, aliases, tags, duplicate keys
    and nesting bounded: see nnrun.config.read_yaml); None when it cannot be read."""
    from nnrun.config import read_yaml

    try:
        return read_yaml(run_dir / "config.yaml")
    except ConfigError:
        return None


# The keys of each run's metrics in compare_runs(), in this order (`nnrun compare --json/--csv`).
COMPARE_FIELDS = ("run", "path", "name", "status", "epochs", "final_train_loss", "final_train_accuracy",
                  "final_val_loss", "final_val_accuracy", "best_epoch", "monitor", "best_val_accuracy",
                  "test_loss", "test_accuracy", "wall_seconds")


def compare_runs(run_dirs: Iterable[str | os.PathLike], out_dir: str | os.PathLike | None = None,
                 runs_dir: str | os.PathLike = "runs") -> dict:
    """Config differences and final metrics of several runs; draws their curves into
    <out_dir>/compare.png, or without out_dir into <runs_dir>/compare/<YYYYMMDD-HHMMSS>.png."""
    from nnrun import plots

    run_dirs = [Path(d) for d in run_dirs]
    if len(run_dirs) < 2:
        raise ConfigError("compare: give two or more run folders")
    for d in run_dirs:
        resolve_run(d, d.parent)  # checks the folder is complete, with one clear line if not
    labels = unique_labels(run_dirs)
    configs = [read_config(d) for d in run_dirs]
    metrics = [final_metrics(label, d) for label, d in zip(labels, run_dirs, strict=True)]
    path = Path(out_dir) / "compare.png" if out_dir is not None else new_compare_path(Path(runs_dir))
    plot = plots.compare_curves([(curve_label(m), read_rows(d)) for m, d in zip(metrics, run_dirs, strict=True)],
                                path, title=f"Comparing {len(run_dirs)} runs")
    return {"runs": labels, "paths": [str(d) for d in run_dirs],
            "differences": config_differences(configs), "metrics": metrics, "plot": str(plot)}


def curve_label(m: dict) -> str:
    """A run's legend entry: its name, and its best epoch named with the metric that chose it."""
    if m.get("best_epoch") is None:
        return m["run"]
    accuracy = f": val acc {pct(m['best_val_accuracy'], 1)}" if m.get("best_val_accuracy") is not None else ""
    return f"{m['run']}\nbest epoch {m['best_epoch']} by {m['monitor']}{accuracy}"


def final_metrics(label: str, run_dir: Path) -> dict:
    """One run's metrics for compare_runs (COMPARE_FIELDS)."""
    summary = read_summary(run_dir) or {}
    rows = read_rows(run_dir)
    final = rows[-1] if rows else summary.get("final", {})
    record = run_record(run_dir)
    return {"run": label, "path": str(run_dir), "name": summary.get("name"),
            "status": summary.get("status", "unreadable"), "epochs": record["epochs"],
            "final_train_loss": finite(final.get("train_loss")),
            "final_train_accuracy": finite(final.get("train_accuracy")),
            "final_val_loss": finite(final.get("val_loss")),
            "final_val_accuracy": finite(final.get("val_accuracy")),
            "best_epoch": record["best_epoch"], "monitor": record["monitor"],
            "best_val_accuracy": record["best_val_accuracy"],
            "test_loss": finite(summary.get("test_loss")),
            "test_accuracy": finite(summary.get("test_accuracy")),
            "wall_seconds": finite(summary.get("wall_seconds"))}


def new_compare_path(runs_dir: Path, now: float | None = None) -> Path:
    """<runs_dir>/compare/<YYYYMMDD-HHMMSS>.png, with -2, -3... when taken."""
    stem = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    folder = runs_dir / "compare"
    path, n = folder / f"{stem}.png", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.png"
    return path


def compare_records(result: dict) -> list[dict]:
    """One record per compared run: its metrics (COMPARE_FIELDS), then `config`, the differing
    keys with this run's value (MISSING where its config lacks the key)."""
    return [metrics | {"config": {key: values[i] for key, values in result["differences"].items()}}
            for i, metrics in enumerate(result["metrics"])]


def unique_labels(run_dirs: Sequence[Path]) -> list[str]:
    """Folder names, with the parent folder prepended where two names clash."""
    names = [d.name for d in run_dirs]
    return [f"{d.parent.name}/{d.name}" if names.count(d.name) > 1 else d.name for d in run_dirs]
