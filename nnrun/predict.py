"""Use a trained network on new inputs: `nnrun predict`.

load_model() rebuilds the network from a weights file alone (weights.json carries the layers,
the class names and how inputs were prepared; an older file takes the last two from the run
folder around it). read_inputs() turns image files (prepared by the run's recipe, see
nnrun.images) and IDX, CSV or NPZ files of samples without labels into the network's input,
scaled as in training. predict_files() gives each input's top classes.
"""

from __future__ import annotations

import csv
import io
import math
import os
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnrun import nn
from nnrun.data.catalog import DATASETS
from nnrun.errors import ConfigError, DataError
from nnrun.evaluate import check_run_files, probabilities, read_config, resolve_run
from nnrun.fileio import csv_safe_cell, write_text
from nnrun.images import RECIPES, image_shape_of, is_image_file, prepare_image, recipe_for
from nnrun.runs import read_summary, read_weights, weights_mismatch

PathLike = str | os.PathLike


# -- the model ------------------------------------------------------------------------------
@dataclass
class InputInfo:
    """How the training inputs were prepared: raw values divided by scale_divisor (None: kept),
    spanning `range` once scaled (None: unknown, so pictures cannot be mapped onto it); the
    named dataset the training split came from, and the recipe that prepares pictures."""

    shape: tuple[int, ...]
    scale_divisor: float | None
    range: tuple[float, float] | None
    dataset: str | None
    recipe: str

    def as_dict(self) -> dict:
        return {"scale_divisor": self.scale_divisor, "range": None if self.range is None else list(self.range),
                "dataset": self.dataset, "recipe": self.recipe}


@dataclass
class Model:
    """A trained network with what a prediction needs: its class names and input preparation."""

    net: nn.Sequential
    class_names: list[str]
    input: InputInfo
    path: Path  # the weights file
    doc: dict = field(repr=False)  # read_weights()'s document: layers, arrays, dtype

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """(N, K) class probabilities of prepared inputs x (N, *input_shape)."""
        return probabilities(self.net.predict(x))


def weights_file(run: PathLike, runs_dir: PathLike = "runs") -> Path:
    """The weights file RUN names: a weights file itself, a folder holding weights.json (a run
    folder, or a name inside runs_dir), or `latest`."""
    path, runs_dir = Path(run), Path(runs_dir)
    candidates = [] if str(run) == "latest" else [path] + ([runs_dir / path] if not path.is_absolute() else [])
    for candidate in candidates:
        if candidate.is_file():
            return candidate
        if candidate.is_dir() and (candidate / "weights.json").is_file():
            return candidate / "weights.json"
    run_dir = resolve_run(run, runs_dir)
    check_run_files(run_dir, ("weights.json",))
    return run_dir / "weights.json"


def load_model(run: PathLike, runs_dir: PathLike = "runs") -> Model:
    """The trained network of a run folder or a weights file, built from the file alone."""
    path = weights_file(run, runs_dir)
    doc = read_weights(path)
    net = network_of(doc, path)
    info = doc_info(doc, path, net) if doc["class_names"] is not None else folder_info(path, net)
    class_names, input_info = info
    return Model(net, class_names, input_info, path, doc)


def network_of(doc: dict, path: Path) -> nn.Sequential:
    """The network a weights document describes, with its weights loaded."""
    layers = [layer_of(i, layer, path) for i, layer in enumerate(doc["layers"])]
    try:
        net = nn.Sequential(layers, doc["input_shape"], dtype=doc["dtype"])
    except nn.ShapeError as e:
        raise ConfigError(f"{path}: layers[{e.layer_index}] ({e.layer_type}): {e.reason}; the file is "
                          "damaged or was not written by nnrun") from None
    problem = weights_mismatch(net, doc)
    if problem:
        raise ConfigError(f"{path}: the weights do not match the layers they describe: {problem}")
    net.set_weights(doc["arrays"])
    return net


def layer_of(i: int, layer: dict, path: Path) -> nn.Layer:
    config = layer.get("config", {})
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: layers[{i}].config: expected an object; the file is damaged")
    try:
        return nn.make_layer({**config, "type": layer["type"]})
    except (TypeError, ValueError) as e:  # an unknown type or key, a bad value
        raise ConfigError(f"{path}: layers[{i}] ({layer['type']}): cannot build it ({e}); the file "
                          "is damaged or was written by a newer nnrun") from None


def doc_info(doc: dict, path: Path, net: nn.Sequential) -> tuple[list[str], InputInfo]:
    """The class names and input preparation weights.json records, checked."""
    names = checked_class_names(doc["class_names"], path, net)
    spec = doc["input"]
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: input: expected an object (scale_divisor, range, dataset, recipe)")
    divisor = checked_number(spec.get("scale_divisor"), path, "input.scale_divisor", positive=True)
    value_range = spec.get("range")
    if value_range is not None and not (isinstance(value_range, list) and len(value_range) == 2):
        raise ConfigError(f"{path}: input.range: expected [low, high], got {str(value_range)[:40]}")
    if value_range is not None:
        value_range = tuple(checked_number(v, path, "input.range") for v in value_range)
    dataset = spec.get("dataset") if isinstance(spec.get("dataset"), str) else None
    recipe = spec.get("recipe")
    if recipe not in RECIPES:
        raise ConfigError(f"{path}: input.recipe: unknown recipe {recipe!r}; known: {', '.join(RECIPES)}")
    return names, InputInfo(net.input_shape, divisor, value_range, dataset, recipe)


def checked_class_names(names: Any, path: Path, net: nn.Sequential) -> list[str]:
    classes = int(np.prod(net.output_shape))
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{path}: class_names: expected a list of strings")
    if len(names) != classes:
        raise ConfigError(f"{path}: class_names: {len(names)} names for the network's {classes} outputs")
    return names


def checked_number(v: Any, path: Path, key: str, positive: bool = False) -> float | None:
    if v is None and positive:
        return None
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (v > 0 or not positive)
    if not ok:
        raise ConfigError(f"{path}: {key}: expected a {'positive ' if positive else ''}number, got {str(v)[:40]}")
    return float(v)


def folder_info(path: Path, net: nn.Sequential) -> tuple[list[str], InputInfo]:
    """For a weights file written before weights.json carried them: the class names and the
    scaling from the run folder's summary.json, the dataset from its config.yaml."""
    summary = read_summary(path.parent) or {}
    if "class_names" not in summary or "scale_divisor" not in summary:
        raise ConfigError(f"{path}: the file has no class_names and input (an older weights file) and "
                          f"{path.parent} has no summary.json with them; predict from the run folder it "
                          "came from, or train the run again")
    names = checked_class_names(summary["class_names"], path.parent / "summary.json", net)
    divisor = checked_number(summary["scale_divisor"], path.parent / "summary.json", "scale_divisor", positive=True)
    data = (read_config(path.parent) if (path.parent / "config.yaml").is_file() else {}).get("data") or {}
    dataset = data.get("dataset") if not data.get("train") and data.get("dataset") in DATASETS else None
    value_range = old_range(data.get("scale", "auto"), dataset, divisor)
    info = InputInfo(net.input_shape, divisor, value_range, dataset, recipe_for(dataset, net.input_shape, names))
    return names, info


def old_range(scale: Any, dataset: str | None, divisor: float | None) -> tuple[float, float] | None:
    """The range of the scaled training values, as far as a run folder tells without its data:
    [0, 1] under auto scaling, the named dataset's values over the divisor, else unknown."""
    if scale == "auto":
        return 0.0, 1.0
    if dataset is not None:
        return 0.0, DATASETS[dataset].max_value / (divisor or 1.0)
    return None


# -- inputs ---------------------------------------------------------------------------------
@dataclass
class Inputs:
    """Prepared inputs (N, *input_shape), scaled as in training, and where each came from."""

    x: np.ndarray
    names: list[str]  # how each is shown: the file, or file[index] for a sample in a file
    files: list[str]
    indices: list[int | None]  # the sample's index in its file (None for an image)


def expand(paths: Iterable[PathLike]) -> list[Path]:
    """The paths, each folder replaced by its images in name order."""
    out = []
    for path in map(Path, paths):
        if not path.is_dir():
            out.append(path)
            continue
        images = sorted(p for p in path.iterdir() if p.is_file() and is_image_file(p))
        if not images:
            raise DataError(f"{path}: no images in this folder (PNG, JPEG, ...); give image files, or "
                            "IDX, CSV or NPZ files of samples")
        out.extend(images)
    return out


def read_inputs(model: Model, paths: Sequence[PathLike], recipe: str | None = None) -> Inputs:
    """Images prepared by `recipe` (default: the run's) and the samples of IDX, CSV and NPZ files,
    in the order given, as the network's scaled inputs."""
    recipe = recipe or model.input.recipe
    arrays, names, files, indices = [], [], [], []
    for path in expand(paths):
        if looks_like_image(path):
            arrays.append(image_input(model, path, recipe)[None])
            names.append(str(path))
            indices.append(None)
        else:
            x = file_samples(model, path)
            arrays.append(x)
            names.extend(f"{path}[{i}]" for i in range(len(x)))
            indices.extend(range(len(x)))
        files.extend([str(path)] * len(arrays[-1]))
    if not arrays:
        raise DataError("no inputs; give image files, folders of images, or IDX, CSV or NPZ files")
    return Inputs(np.concatenate(arrays).astype(model.net.dtype, copy=False), names, files, indices)


def looks_like_image(path: Path) -> bool:
    """Images by their suffix; a file without a known suffix that does not start like IDX or
    gzip is tried as an image too."""
    name = path.name.lower()
    if is_image_file(path):
        return True
    if name.endswith((".npz", ".csv", ".csv.gz")) or not path.is_file():
        return False
    with open(path, "rb") as f:
        head = f.read(2)
    return head not in (b"\x00\x00", b"\x1f\x8b")


def image_input(model: Model, path: Path, recipe: str) -> np.ndarray:
    """A picture prepared by the recipe, mapped onto the training inputs' range."""
    if model.input.range is None:
        raise ConfigError(f"{model.path}: the range of the training inputs is not recorded (an older "
                          "weights file of data scaled by a fixed number), so pictures cannot be scaled "
                          "like them; give IDX, CSV or NPZ files of samples instead")
    low, high = model.input.range
    return (low + prepare_image(path, recipe, model.net.input_shape) * (high - low)).astype(model.net.dtype)


def file_samples(model: Model, path: Path) -> np.ndarray:
    """The samples of an IDX, CSV or NPZ file (no labels), shaped and scaled for the network."""
    x = read_samples(path)
    if x.ndim < 2 or x.dtype.kind not in "iuf":
        raise DataError(f"{path}: holds {x.dtype} values of shape {x.shape}, not samples; give a file of "
                        "samples, one per row (CSV) or along the first axis (IDX, NPZ)")
    need, per = int(np.prod(model.net.input_shape)), int(np.prod(x.shape[1:]))
    if per != need:
        hint = "; is its label column still in? predict takes samples without labels" if per == need + 1 else ""
        raise DataError(f"{path}: samples of shape {x.shape[1:]} ({per} values) do not fit the network's "
                        f"input {model.net.input_shape} ({need} values){hint}")
    from nnrun.data import scale_pixels
    from nnrun.data.checks import check_samples

    check_samples(x, path)
    x = x.reshape(len(x), *model.net.input_shape)
    return scale_pixels(x, model.input.scale_divisor, model.net.dtype)


def read_samples(path: Path) -> np.ndarray:
    from nnrun.data import read_idx
    from nnrun.data.tabular import read_csv_table, read_npz_arrays

    if not path.exists():
        raise DataError(f"{path}: no such file")
    name = path.name.lower()
    if name.endswith(".npz"):
        return read_npz_arrays(path, (samples_key(path),))[0]
    if name.endswith((".csv", ".csv.gz")):
        return read_csv_table(path, "auto")[0]
    return read_idx(path)


def samples_key(path: Path) -> str:
    """The array of an .npz that holds the samples: `x`, or its only array."""
    if not zipfile.is_zipfile(path):
        return "x"  # read_npz_arrays says what is wrong
    with zipfile.ZipFile(path) as archive:
        names = [n.removesuffix(".npy") for n in archive.namelist()]
    if "x" in names or len(names) != 1:
        if "x" not in names:
            raise DataError(f"{path}: no array named 'x' among {names}; save the samples as x "
                            "(numpy.savez(path, x=samples))")
        return "x"
    return names[0]


# -- predictions ----------------------------------------------------------------------------
def top_classes(p: np.ndarray, class_names: Sequence[str], k: int) -> list[dict]:
    """The k most probable classes of one probability vector, most probable first (ties in
    class order)."""
    order = np.argsort(-p, kind="stable")[:k]
    return [{"class": class_names[i], "probability": float(p[i])} for i in order]


def predict_files(model: Model, paths: Sequence[PathLike], top: int = 3,
                  recipe: str | None = None) -> tuple[list[dict], Inputs, np.ndarray]:
    """(records, inputs, probabilities): one record per input (`input`, `file`, `index`, `top`:
    the `top` most probable classes with their probabilities)."""
    if top < 1:
        raise ConfigError(f"--top {top}: give 1 or more")
    inputs = read_inputs(model, paths, recipe)
    probs = model.probabilities(inputs.x)
    k = min(top, len(model.class_names))
    records = [{"input": name, "file": file, "index": index, "top": top_classes(p, model.class_names, k)}
               for name, file, index, p in zip(inputs.names, inputs.files, inputs.indices, probs, strict=True)]
    return records, inputs, probs


def csv_text(records: Sequence[dict]) -> str:
    """The records as CSV: input, file, index, then class_1, probability_1, ... for the top classes.
    Text cells that a spreadsheet would run as a formula are made plain text."""
    k = max((len(r["top"]) for r in records), default=1)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["input", "file", "index", *(f"{c}_{i}" for i in range(1, k + 1) for c in ("class", "probability"))])
    for r in records:
        top = [v for t in r["top"] for v in (csv_safe_cell(t["class"]), repr(t["probability"]))]
        index = "" if r["index"] is None else r["index"]
        writer.writerow([csv_safe_cell(r["input"]), csv_safe_cell(r["file"]), index, *top])
    return buf.getvalue()


def write_csv(path: PathLike, records: Sequence[dict]) -> Path:
    write_text(path, csv_text(records))
    return Path(path)


# -- what the network saw -------------------------------------------------------------------
def show_inputs(model: Model, inputs: Inputs, probs: np.ndarray, folder: PathLike, limit: int = 100) -> list[Path]:
    """One PNG per input (the first `limit`) in folder: the prepared input as the network saw it,
    beside its class probabilities. Named after the input (file-index.png for a sample)."""
    from nnrun import plots

    folder, taken, written = Path(folder), set(), []
    image = image_shape_of(model.net.input_shape)
    for i in range(min(limit, len(inputs.x))):
        stem = Path(inputs.files[i]).name.split(".")[0] or "input"
        stem += "" if inputs.indices[i] is None else f"-{inputs.indices[i]}"
        name = unique_name(stem, taken)
        picture = inputs.x[i].reshape(image) if image is not None else None
        written.append(plots.prepared_input_plot(picture, probs[i], model.class_names, folder / f"{name}.png",
                                                 title=inputs.names[i]))
    return written


def unique_name(stem: str, taken: set[str]) -> str:
    name, n = stem, 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}"
    taken.add(name)
    return name
