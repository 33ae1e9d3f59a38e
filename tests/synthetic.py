"""Small generated datasets and file writers shared by the tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
             np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as an IDX file (big-endian header and values)."""
    header = bytes([0, 0, IDX_CODES[array.dtype], array.ndim])
    dims = np.array(array.shape, dtype=">u4").tobytes()
    return header + dims + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def blob_images(n: int, seed: int = 0, classes: int = 3, size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 images (n, size, size) of `classes` easy classes: a bright bar in a class-specific
    row band plus noise, so that a tiny network learns them in a few epochs."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.integers(0, 60, size=(n, size, size))
    band = size // classes
    rows = (y[:, None] * band + np.arange(band)[None, :])  # (n, band)
    x[np.arange(n)[:, None], rows, :] += 180
    return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.uint8)
