"""Loading a named dataset as arrays: the bundled `digits`, or the IDX files of `mnist` and
`fashion-mnist` fetched into the cache on first use (see nnrun.data.download)."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from nnrun.data.catalog import DatasetInfo, dataset_info
from nnrun.data.checks import as_int_labels, check_labels_below
from nnrun.data.idx import load_idx_pair
from nnrun.errors import DataError

Splits = dict[str, tuple[np.ndarray, np.ndarray]]
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Dataset:
    """A catalogue entry that loads: load() returns {"train": (x, y), "test": (x, y)} (or the
    splits asked for), x (N, C, H, W) with the source's values, y int64 (N,)."""

    info: DatasetInfo

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def class_names(self) -> list[str]:
        return list(self.info.class_names)

    def load(self, cache_dir: str | os.PathLike | None = None, splits: Sequence[str] = SPLITS) -> Splits:
        return load_dataset(self.info.name, cache_dir, splits)

    def is_local(self, splits: Sequence[str] = SPLITS, cache_dir: str | os.PathLike | None = None) -> bool:
        """Whether these splits load without a download (bundled, or already in the cache)."""
        if self.info.bundled:
            return True
        from nnrun.data.download import is_cached  # pooch and requests only for a downloaded dataset

        return all(is_cached(self.name, f, cache_dir) for split in splits for f in self.info.files[split])


def get_dataset(name: str) -> Dataset:
    """A named dataset; an unknown name raises DataError naming the closest known one."""
    try:
        return Dataset(dataset_info(name))
    except ValueError as err:
        raise DataError(str(err)) from None


def load_dataset(name: str, cache_dir: str | os.PathLike | None = None, splits: Sequence[str] = SPLITS) -> Splits:
    """Load a named dataset as {"train": (x, y), "test": (x, y)} (only the splits asked for),
    downloading their files if needed."""
    info = get_dataset(name).info
    loaded = load_bundled(info) if info.bundled else load_downloaded(info, cache_dir, splits)
    return {split: loaded[split] for split in splits}


def load_downloaded(info: DatasetInfo, cache_dir: str | os.PathLike | None = None,
                    splits: Sequence[str] = SPLITS) -> Splits:
    """Fetch (or reuse) the IDX files of an MNIST-style dataset and load the splits asked for."""
    from nnrun.data.download import fetch_files

    files = {split: info.files[split] for split in splits}
    paths = fetch_files(info.name, [f for pair in files.values() for f in pair], cache_dir)
    loaded = {split: load_idx_pair(paths[images], paths[labels]) for split, (images, labels) in files.items()}
    for split, (_, labels) in files.items():
        check_labels_below(loaded[split][1], len(info.class_names), str(paths[labels]), f"dataset {info.name}")
    return loaded


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
