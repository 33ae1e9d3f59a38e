"""Run folders: naming, the weights file, metrics, summary and listing. Every file is written
atomically (temp file + rename), so a crash never leaves a half-written file behind."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nnrun import __version__
from nnrun.errors import ConfigError
from nnrun.fileio import write_json, write_text
from nnrun.metrics import EPOCH_METRICS
from nnrun.nn import Sequential

WEIGHTS_FORMAT, WEIGHTS_VERSION = "nnrun.weights", 1
METRIC_COLUMNS = ["epoch", "lr", *EPOCH_METRICS, "seconds"]


def create_run_dir(runs_dir: str | os.PathLike, name: str, now: float | None = None) -> Path:
    """<runs_dir>/<YYYYMMDD-HHMMSS>-<name>, with -2, -3... when taken (mkdir is the lock)."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}-{name}"
    for n in range(1, 10_000):
        path = runs_dir / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ConfigError(f"{runs_dir}: too many runs named {stem}")


# -- weights --------------------------------------------------------------------------------
def weights_document(net: Sequential) -> dict:
    layers = []
    for layer in net.layers:
        params = {k: {"shape": list(v.shape), "data": json_numbers(v)} for k, v in layer.params.items()}
        layers.append({"type": layer.type, "config": layer.config(), "params": params})
    return {"format": WEIGHTS_FORMAT, "version": WEIGHTS_VERSION, "dtype": str(net.dtype),
            "input_shape": list(net.input_shape), "layers": layers}


def json_numbers(array: np.ndarray) -> list:
    """The array flattened to a list; NaN and infinities as None (null), as strict JSON needs."""
    values = array.ravel().tolist()
    if np.isfinite(array).all():
        return values
    return [v if math.isfinite(v) else None for v in values]


def write_weights(path: str | os.PathLike, net: Sequential) -> None:
    write_text(path, json.dumps(weights_document(net), separators=(",", ":"), allow_nan=False) + "\n")


def read_weights(path: str | os.PathLike) -> dict:
    """Parse a weights file: {"input_shape": tuple, "layers": [...], "arrays": {name: array}}."""
    doc = read_json(path, "weights file")
    if not isinstance(doc, dict) or doc.get("format") != WEIGHTS_FORMAT:
        raise ConfigError(f"{path}: not an nnrun weights file (format should be {WEIGHTS_FORMAT!r})")
    if doc.get("version") != WEIGHTS_VERSION:
        raise ConfigError(f"{path}: weights format version {doc.get('version')} is not supported "
                          f"(this nnrun reads version {WEIGHTS_VERSION})")
    dtype = np.dtype(doc.get("dtype", "float32"))
    arrays = {}
    for i, layer in enumerate(doc["layers"]):
        for k, p in layer.get("params", {}).items():
            arrays[f"layers.{i}.{k}"] = np.asarray(p["data"], dtype).reshape(p["shape"])
    return {"input_shape": tuple(doc["input_shape"]), "layers": doc["layers"], "arrays": arrays}


def load_weights_into(net: Sequential, path: str | os.PathLike) -> None:
    """Load a weights file into a built network, with one clear line on any mismatch."""
    doc = read_weights(path)
    problem = weights_mismatch(net, doc)
    if problem:
        raise ConfigError(f"{path}: weights do not match the model: {problem}")
    net.set_weights(doc["arrays"])


def weights_mismatch(net: Sequential, doc: dict) -> str | None:
    if doc["input_shape"] != net.input_shape:
        return f"input shape {doc['input_shape']} in the file, {net.input_shape} from the data"
    if len(doc["layers"]) != len(net.layers):
        return f"{len(doc['layers'])} layers in the file, {len(net.layers)} in the model"
    for i, (saved, layer) in enumerate(zip(doc["layers"], net.layers, strict=True)):
        if saved["type"] != layer.type:
            return f"layer {i} is {saved['type']} in the file but {layer.type} in the model"
        for k, p in layer.params.items():
            shape = tuple(saved.get("params", {}).get(k, {}).get("shape", ()))
            if shape != p.shape:
                return f"layer {i} ({layer.type}) {k} has shape {shape} in the file, {p.shape} in the model"
    return None


# -- config, metrics and summary ------------------------------------------------------------
def write_config(path: str | os.PathLike, resolved: dict) -> None:
    write_text(path, yaml.safe_dump(resolved, sort_keys=False))


def write_metrics(run_dir: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if row.get(k) is None else row[k]) for k in METRIC_COLUMNS} for row in rows)
    write_text(run_dir / "metrics.csv", buf.getvalue())
    write_json(run_dir / "metrics.json", rows)


def versions() -> dict:
    return {"python": platform.python_version(), "numpy": np.__version__, "nnrun": __version__}


def write_summary(run_dir: Path, summary: dict) -> None:
    write_json(run_dir / "summary.json", summary)


def read_json(path: str | os.PathLike, what: str = "run file") -> Any:
    """The parsed JSON file; ConfigError in the one wording for every JSON file nnrun reads."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not a valid {what} ({type(e).__name__}: {e})") from None


def read_json_or(path: str | os.PathLike, default: Any = None) -> Any:
    """The parsed JSON file, or `default` when it is missing or unreadable (for listings)."""
    try:
        return read_json(path)
    except ConfigError:
        return default


def read_summary(run_dir: Path) -> dict | None:
    """summary.json as a dict, or None when missing or unreadable."""
    doc = read_json_or(Path(run_dir) / "summary.json")
    return doc if isinstance(doc, dict) else None


def read_rows(run_dir: Path) -> list[dict]:
    """metrics.json's rows, or [] when missing or unreadable."""
    rows = read_json_or(Path(run_dir) / "metrics.json", [])
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
