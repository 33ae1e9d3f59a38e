"""Data loading: IDX, CSV and .npz files, named datasets, validation splits and scaling.

Images come back as x of shape (N, C, H, W), other features as (N, F), labels as int64 (N,),
all with the source's unscaled values; scale with scale_pixels(x, auto_divisor(x_train)).

The names below are imported from their module on first use, so that reading the catalogue
(nnrun.data.catalog, standard library only) costs no numpy, pooch or download machinery.
"""

from __future__ import annotations

import importlib

_MODULE_OF = {
    "DATASETS": "catalog",
    "DatasetInfo": "catalog",
    "dataset_info": "catalog",
    "Dataset": "datasets",
    "get_dataset": "datasets",
    "load_dataset": "datasets",
    "cache_root": "download",
    "fetch": "download",
    "MirrorsFailed": "mirrors",
    "check_labels_below": "checks",
    "DownloadProgress": "progress",
    "ProgressFn": "progress",
    "download_progress": "progress",
    "load_idx_pair": "idx",
    "read_idx": "idx",
    "auto_divisor": "prepare",
    "scale_pixels": "prepare",
    "scaled": "prepare",
    "ScaledSamples": "prepare",
    "stratified_split": "prepare",
    "load_csv": "tabular",
    "load_npz": "tabular",
}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
