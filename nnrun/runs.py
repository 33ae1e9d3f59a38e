"""Run folders: naming, the weights file, metrics, summary and listing. Every file is written
atomically (temp file + rename), so a crash never leaves a half-written file behind."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nnrun import __version__
from nnrun.diagnostics import COLUMNS as DIAGNOSTIC_COLUMNS
from nnrun.errors import ConfigError
from nnrun.fileio import TooLarge, csv_safe_cell, read_limited, size_text, write_json, write_text
from nnrun.metrics import EPOCH_METRICS
from nnrun.nn import Sequential

WEIGHTS_FORMAT, WEIGHTS_VERSION = "nnrun.weights", 1
METRIC_COLUMNS = ["epoch", "lr", *EPOCH_METRICS, "seconds"]


def create_run_dir(runs_dir: str | os.PathLike, name: str, now: float | None = None) -> Path:
    """<runs_dir>/<YYYYMMDD-HHMMSS>-<name>, with -2, -3... when taken (mkdir is the lock, so runs
    started in the same second get folders of their own). A runs folder that cannot hold a run
    is ConfigError, with nothing left behind."""
    runs_dir = Path(runs_dir)
    stem = f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}-{name}"
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        path = claim_folder(runs_dir, stem)
        check_writable(path)
    except OSError as e:
        reason = "it is a file" if runs_dir.is_file() else e.strerror or str(e)
        raise ConfigError(f"{runs_dir}: cannot create a run folder there ({reason}); "
                          "pass --runs-dir a folder you can write to") from None
    return path


def claim_folder(runs_dir: Path, stem: str) -> Path:
    for n in range(1, 10_000):
        path = runs_dir / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ConfigError(f"{runs_dir}: too many runs named {stem}")


def check_writable(folder: Path) -> None:
    """Create and delete a file in the new folder; on failure remove the folder and raise."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        folder.rmdir()
        raise


# -- weights --------------------------------------------------------------------------------
def weights_document(net: Sequential, prediction: dict | None = None) -> dict:
    """The weights file's document; `prediction` (its class_names and input, see
    experiment.prediction_info) is what a prediction needs beyond the layers."""
    layers = []
    for layer in net.layers:
        params = {k: {"shape": list(v.shape), "data": json_numbers(v)} for k, v in layer.params.items()}
        layers.append({"type": layer.type, "config": layer.config(), "params": params})
    return {"format": WEIGHTS_FORMAT, "version": WEIGHTS_VERSION, "dtype": str(net.dtype),
            "input_shape": list(net.input_shape), **(prediction or {}), "layers": layers}


def json_numbers(array: np.ndarray) -> list:
    """The array flattened to a list; NaN and infinities as None (null), which reading refuses."""
    values = array.ravel().tolist()
    if np.isfinite(array).all():
        return values
    return [v if math.isfinite(v) else None for v in values]


def write_weights(path: str | os.PathLike, net: Sequential, prediction: dict | None = None) -> None:
    write_text(path, json.dumps(weights_document(net, prediction), separators=(",", ":"), allow_nan=False) + "\n")


# Generous room per parameter: a float's shortest repr, a comma, even pretty-printing.
WEIGHTS_BYTES_PER_PARAM, WEIGHTS_BYTES_SLACK = 64, 1 << 20


def weights_size_limit(num_params: int) -> int:
    """The largest weights file a model of num_params parameters could need, and then some."""
    return WEIGHTS_BYTES_SLACK + WEIGHTS_BYTES_PER_PARAM * num_params


def read_weights(path: str | os.PathLike, num_params: int | None = None) -> dict:
    """Parse and check a weights file: {"input_shape": tuple, "layers": [...], "arrays": {name:
    array}, "dtype": np.dtype, "class_names" and "input" (None when absent; unchecked, see
    nnrun.predict)}. Anything malformed or non-finite is one ConfigError line naming the file and the
    key; given the model's num_params, a file far larger than it could need is refused unread."""
    limit, why = MAX_JSON_BYTES, ""
    if num_params is not None:
        limit = weights_size_limit(num_params)
        why = f"weights for a model of {num_params:,} parameters take at most {size_text(limit)}"
    doc = read_json(path, "weights file", limit, why)
    if not isinstance(doc, dict) or doc.get("format") != WEIGHTS_FORMAT:
        raise ConfigError(f"{path}: not an nnrun weights file (format should be {WEIGHTS_FORMAT!r})")
    if doc.get("version") != WEIGHTS_VERSION:
        raise ConfigError(f"{path}: weights format version {doc.get('version')} is not supported "
                          f"(this nnrun reads version {WEIGHTS_VERSION})")
    check = WeightsCheck(path)
    dtype = check.dtype(doc.get("dtype", "float32"))
    input_shape = check.shape(check.get(doc, "input_shape", list), "input_shape")
    layers = check.get(doc, "layers", list)
    arrays = {}
    for i, layer in enumerate(layers):
        where = f"layers[{i}]"
        check.kind(layer, dict, where)
        layer_type = check.get(layer, "type", str, where)
        for k, p in check.get(layer, "params", dict, where).items():
            arrays[f"layers.{i}.{k}"] = check.array(p, dtype, f"{where}.params.{k}", f"{where} ({layer_type}) {k}")
    return {"input_shape": input_shape, "layers": layers, "arrays": arrays, "dtype": dtype,
            "class_names": doc.get("class_names"), "input": doc.get("input")}


class WeightsCheck:
    """The checks of one weights file; each failure is a ConfigError naming the file and key."""

    def __init__(self, path: str | os.PathLike):
        self.path = path

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {problem}; the file is damaged or was not "
                           "written by nnrun")

    def kind(self, value: Any, kind: type, where: str) -> Any:
        if not isinstance(value, kind) or isinstance(value, bool):
            raise self.fail(where, f"expected {JSON_KINDS[kind]}, got {json_kind(value)}")
        return value

    def get(self, doc: dict, key: str, kind: type, where: str = "") -> Any:
        """doc[key], which must be there and of the JSON type `kind`."""
        at = f"{where}.{key}" if where else key
        if key not in doc:
            raise self.fail(at, "missing")
        return self.kind(doc[key], kind, at)

    def dtype(self, name: Any) -> np.dtype:
        if name not in ("float32", "float64"):
            raise self.fail("dtype", f"{name!r} is not float32 or float64")
        return np.dtype(name)

    def shape(self, value: list, where: str) -> tuple[int, ...]:
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value):
            raise self.fail(where, f"expected a list of whole numbers >= 0, got {str(value)[:60]}")
        return tuple(value)

    def array(self, param: Any, dtype: np.dtype, where: str, name: str) -> np.ndarray:
        param = self.kind(param, dict, where)
        shape = self.shape(self.get(param, "shape", list, where), f"{where}.shape")
        values = self.numbers(self.get(param, "data", list, where), f"{where}.data")
        if values.size != math.prod(shape):
            raise self.fail(where, f"{values.size} values for shape {list(shape)} ({math.prod(shape)} needed)")
        with np.errstate(over="ignore"):  # a value too large for float32 becomes inf, refused below
            array = values.astype(dtype).reshape(shape)
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise ConfigError(f"{self.path}: {name}: {bad} value{' is' if bad == 1 else 's are'} not a finite "
                              f"{dtype} number (NaN, infinity, null or too large); use weights from a run "
                              "that did not diverge")
        return array

    def numbers(self, data: list, where: str) -> np.ndarray:
        """A flat list of numbers as float64 (null as NaN); strings, booleans, lists refused."""
        try:
            values = np.asarray(data)
            if values.dtype.kind == "O" and all(v is None or type(v) in (int, float) for v in data):
                values = np.asarray(data, np.float64)  # null -> NaN; ints beyond int64
        except (ValueError, TypeError, OverflowError):  # ragged nesting
            raise self.fail(where, "expected a flat list of numbers") from None
        if values.ndim != 1 or values.dtype.kind not in "iuf":
            raise self.fail(where, "expected a flat list of numbers")
        return values


JSON_KINDS = {list: "a list", dict: "an object", str: "a string"}


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return JSON_KINDS.get(type(value), type(value).__name__)


def load_weights_into(net: Sequential, path: str | os.PathLike) -> None:
    """Load a weights file into a built network, with one clear line on any mismatch; a file far
    larger than the model could need is refused before it is read."""
    doc = read_weights(path, net.num_params)
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
        problem = layer_mismatch(i, saved, layer)
        if problem:
            return problem
    return None


def layer_mismatch(i: int, saved: dict, layer) -> str | None:
    if saved["type"] != layer.type:
        return f"layer {i} is {saved['type']} in the file but {layer.type} in the model"
    extra = sorted(saved["params"].keys() - layer.params.keys())
    if extra:
        return f"layer {i} ({layer.type}) has a parameter {extra[0]!r} that the model does not"
    for k, p in layer.params.items():
        if k not in saved["params"]:
            return f"layer {i} ({layer.type}) has no parameter {k!r} in the file"
        shape = tuple(saved["params"][k]["shape"])
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
    writer.writerows({k: ("" if row.get(k) is None else csv_safe_cell(row[k])) for k in METRIC_COLUMNS} for row in rows)
    write_text(run_dir / "metrics.csv", buf.getvalue())
    write_json(run_dir / "metrics.json", rows)


def write_diagnostics(run_dir: Path, rows: list[dict]) -> None:
    """diagnostics.csv: one row per layer and epoch (see nnrun.diagnostics)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=DIAGNOSTIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if row.get(k) is None else row[k]) for k in DIAGNOSTIC_COLUMNS} for row in rows)
    write_text(run_dir / "diagnostics.csv", buf.getvalue())


def read_diagnostics(run_dir: Path) -> list[dict]:
    """diagnostics.csv's rows (numbers as numbers, empty cells as None), or [] when missing or
    unreadable."""
    try:
        text = (Path(run_dir) / "diagnostics.csv").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return [{k: csv_value(k, v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]


def csv_value(key: str, text: str | None):
    if key in ("type", "activation") or text is None:
        return text
    try:
        return None if text == "" else int(text) if key in ("epoch", "layer") else float(text)
    except ValueError:
        return None


def versions() -> dict:
    """The versions that decide a run's numbers (the others, YAML's or rich's, cannot change them)."""
    return {"python": platform.python_version(), "numpy": np.__version__, "nnrun": __version__}


def local_time() -> str:
    """Now, to the second, with the UTC offset: 2026-11-30T10:15:00+01:00."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def write_summary(run_dir: Path, summary: dict) -> None:
    write_json(run_dir / "summary.json", summary)


# The largest JSON file nnrun reads unless a reader says otherwise (a weights file's limit follows
# its model): summaries, metrics and sweep files are kilobytes to a few MiB.
MAX_JSON_BYTES = 64 << 20


def read_json(path: str | os.PathLike, what: str = "run file", max_bytes: int | None = MAX_JSON_BYTES,
              limit_why: str = "") -> Any:
    """The parsed JSON file; ConfigError in the one wording for every JSON file nnrun reads. A
    file larger than max_bytes is refused before it is read (`limit_why` says why it is too large)."""
    path = Path(path)
    try:
        data = read_limited(path, max_bytes)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except TooLarge as e:
        why = limit_why or f"a {what} is at most {size_text(e.limit)}"
        raise ConfigError(f"{path}: the file is {e.size_text}; {why}; is it the right file?") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the {what} ({e.strerror})") from None
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a valid {what}: not UTF-8 text (byte 0x{data[e.start]:02x} "
                          f"at offset {e.start})") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not a valid {what}: not valid JSON ({e.msg} at line {e.lineno} "
                          f"column {e.colno}; is it truncated?)") from None
    except (ValueError, RecursionError) as e:  # a 5000-digit number; nesting deeper than Python's stack
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e).split(";")[0]
        raise ConfigError(f"{path}: not a valid {what}: not valid JSON ({reason})") from None


def read_json_or(path: str | os.PathLike, default: Any = None) -> Any:
    """The parsed JSON file, or `default` when it is missing or unreadable (for listings)."""
    try:
        return read_json(path)
    except ConfigError:
        return default


# The keys of summary.json that readers use, and their JSON types: a value of another type (a
# damaged or planted file) reads as missing, so that no reader trips over it.
TEXT, WHOLE, NUMBER, OBJECT, LIST = (str,), (int,), (int, float), (dict,), (list,)
SUMMARY_TYPES = {**dict.fromkeys(("name", "status", "started", "command", "run_dir", "monitor", "error",
                                  "test_weights"), TEXT),
                 **dict.fromkeys(("epochs_run", "best_epoch", "num_params", "seed"), WHOLE),
                 **dict.fromkeys(("wall_seconds", "test_loss", "test_accuracy", "scale_divisor"), NUMBER),
                 **dict.fromkeys(("best", "final", "versions", "data", "blas"), OBJECT),
                 **dict.fromkeys(("warnings", "resumed"), LIST), "class_names": LIST}


def of_kind(value: Any, kinds: tuple) -> bool:
    return isinstance(value, kinds) and not isinstance(value, bool)


def read_summary(run_dir: Path) -> dict | None:
    """summary.json as a dict, or None when missing or unreadable; a known key whose value has
    the wrong JSON type is left out (as are class names that are not all strings)."""
    doc = read_json_or(Path(run_dir) / "summary.json")
    if not isinstance(doc, dict):
        return None
    kept = {k: v for k, v in doc.items() if k not in SUMMARY_TYPES or of_kind(v, SUMMARY_TYPES[k])}
    if not all(isinstance(c, str) for c in kept.get("class_names", [])):
        kept.pop("class_names")
    return kept


def read_rows(run_dir: Path) -> list[dict]:
    """metrics.json's rows, or [] when missing or unreadable."""
    rows = read_json_or(Path(run_dir) / "metrics.json", [])
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
