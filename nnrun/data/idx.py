"""IDX files (the MNIST container format), raw or gzip-compressed.

Layout: two zero bytes, a dtype code, the number of dimensions, one big-endian uint32 per
dimension, then the values in C order, big-endian.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from nnrun.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_bytes(path: str | os.PathLike) -> bytes:
    """Read a file whole, decompressing it when it starts with the gzip magic bytes."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    raw = path.read_bytes()
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: corrupt gzip data ({err}); download the file again") from err


def parse_idx_header(raw: bytes, path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """Return (big-endian dtype, shape, offset of the first value) from an IDX header."""
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in IDX_DTYPES or raw[3] == 0:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise DataError(f"{path}: truncated IDX header; download the file again")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    return np.dtype(IDX_DTYPES[raw[2]]), shape, offset


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file into an array of the header's shape, in native byte order."""
    path = Path(path)
    raw = read_bytes(path)
    dtype, shape, offset = parse_idx_header(raw, path)
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise DataError(
            f"{path}: IDX header {shape} needs {expected} data bytes but the file has "
            f"{len(raw) - offset}; the file is truncated or corrupt, download it again"
        )
    values = np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def load_idx_pair(
    images_path: str | os.PathLike, labels_path: str | os.PathLike
) -> tuple[np.ndarray, np.ndarray]:
    """Load an IDX image file (N,H,W) and its label file (N,) as x (N,1,H,W) and y int64 (N,)."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(f"{images_path}: expected IDX images of shape (N,H,W), got {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: expected IDX labels of shape (N,), got {labels.shape}")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} "
            "labels; point images and labels at files of the same set"
        )
    return images[:, np.newaxis], as_int_labels(labels, labels_path)


def as_int_labels(values: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    """Return class labels (N,) as int64, or raise DataError if any is not an integer >= 0."""
    values = np.asarray(values)
    if values.dtype.kind not in "iuf" or values.ndim != 1:
        raise DataError(f"{path}: labels must be a 1-D numeric array, got {values.dtype} {values.shape}")
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (values < 0) | (values != np.round(values))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: label {values[row]!r} at row {row} is not a class index; "
            "labels must be integers 0, 1, 2, ..."
        )
    return values.astype(np.int64)
