"""Loading a named dataset as arrays: the bundled `digits`, or the IDX files of `mnist` and
`fashion-mnist` fetched into the cache on first use (see nnrun.data.download)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from importlib import resources

import numpy as np

from nnrun.data.catalog import DatasetInfo, dataset_info
from nnrun.data.checks import as_int_labels, check_labels_below
from nnrun.data.download import fetch
from nnrun.data.idx import load_idx_pair
from nnrun.errors import DataError

Splits = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Dataset:
    """A catalogue entry that loads: load() returns {"train": (x, y), "test": (x, y)},
    x (N, C, H, W) with the source's values, y int64 (N,)."""

    info: DatasetInfo

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def class_names(self) -> list[str]:
        return list(self.info.class_names)

    def load(self, cache_dir: str | os.PathLike | None = None) -> Splits:
        return load_dataset(self.info.name, cache_dir)


def get_dataset(name: str) -> Dataset:
    """A named dataset; an unknown name raises DataError naming the closest known one."""
    try:
        return Dataset(dataset_info(name))
    except ValueError as err:
        raise DataError(str(err)) from None


def load_dataset(name: str, cache_dir: str | os.PathLike | None = None) -> Splits:
    """Load a named dataset as {"train": (x, y), "test": (x, y)}, downloading it if needed."""
    info = get_dataset(name).info
    return load_bundled(info) if info.bundled else load_downloaded(info, cache_dir)


def load_downloaded(info: DatasetInfo, cache_dir: str | os.PathLike | None = None) -> Splits:
    """Fetch (or reuse) the IDX files of an MNIST-style dataset and load both splits."""
    paths = {split: [fetch(info.name, f, cache_dir) for f in files] for split, files in info.files.items()}
    splits = {split: load_idx_pair(images, labels) for split, (images, labels) in paths.items()}
    for split, (_, labels) in paths.items():
        check_labels_below(splits[split][1], len(info.class_names), str(labels), f"dataset {info.name}")
    return splits


def load_bundled(info: DatasetInfo) -> Splits:
    """A dataset stored in the package as x_train, y_train, x_test, y_test arrays."""
    bundled = resources.files(__package__).joinpath(info.bundled)
    try:
        raw = bundled.read_bytes()
    except OSError as err:
        raise DataError(f"{bundled}: bundled dataset missing; reinstall nnrun") from err
    with np.load(io.BytesIO(raw), allow_pickle=False) as arrays:
        splits = {
            split: (arrays[f"x_{split}"], as_int_labels(arrays[f"y_{split}"], bundled))
            for split in ("train", "test")
        }
    for _, labels in splits.values():
        check_labels_below(labels, len(info.class_names), str(bundled), f"dataset {info.name}")
    return splits
