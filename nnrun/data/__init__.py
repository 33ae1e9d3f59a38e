"""Data loading: IDX, CSV and .npz files, named datasets, validation splits and scaling.

Images come back as x of shape (N, C, H, W), other features as (N, F), labels as int64 (N,),
all with the source's unscaled values; scale with scale_pixels(x, auto_divisor(x_train)).
"""

from nnrun.data.datasets import (
    DATASETS,
    MIRRORS,
    SHA256,
    Dataset,
    cache_root,
    get_dataset,
    load_dataset,
)
from nnrun.data.idx import load_idx_pair, read_idx
from nnrun.data.prepare import auto_divisor, scale_pixels, stratified_split
from nnrun.data.tabular import load_csv, load_npz

__all__ = [
    "DATASETS",
    "MIRRORS",
    "SHA256",
    "Dataset",
    "auto_divisor",
    "cache_root",
    "get_dataset",
    "load_csv",
    "load_dataset",
    "load_idx_pair",
    "load_npz",
    "read_idx",
    "scale_pixels",
    "stratified_split",
]
