"""User data in CSV (optionally gzip) and NumPy .npz files."""

from __future__ import annotations

import io
import math
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from nnrun.data.idx import as_int_labels, read_bytes
from nnrun.errors import DataError


def to_images(x: np.ndarray, image_shape: Sequence[int], path: Path) -> np.ndarray:
    """Reshape samples (N, ...) to (N, C, H, W), or to flat (N, F) when image_shape is (F,);
    image_shape is (C,H,W), (H,W) or (F,)."""
    shape = tuple(int(d) for d in image_shape)
    if len(shape) == 2:
        shape = (1, *shape)
    features = int(np.prod(x.shape[1:], dtype=np.int64))
    if len(shape) not in (1, 3) or math.prod(shape) != features:
        raise DataError(
            f"{path}: image_shape {tuple(image_shape)} holds {math.prod(shape)} values but each "
            f"sample has {features}; fix image_shape in your config"
        )
    return x.reshape(len(x), *shape)


def compact(values: np.ndarray) -> np.ndarray:
    """Store whole numbers 0..255 as uint8 (like image files), anything else as float32."""
    if values.size and np.all((values >= 0) & (values <= 255) & (values == np.round(values))):
        return values.astype(np.uint8)
    return values.astype(np.float32)


def has_header(first_line: str) -> bool:
    """A header row is one whose fields are not all numbers."""
    try:
        [float(field) for field in first_line.split(",")]
    except ValueError:
        return True
    return False


def read_csv_table(path: Path, header: bool | Literal["auto"]) -> np.ndarray:
    """Parse a numeric CSV into a float64 table (rows, columns)."""
    text = read_bytes(path).decode("utf-8", errors="replace")
    first_line = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    if not first_line:
        raise DataError(f"{path}: empty CSV file")
    skip = int(has_header(first_line) if header == "auto" else bool(header))
    try:
        table = np.loadtxt(io.StringIO(text.lstrip("\ufeff")), delimiter=",", skiprows=skip,
                           dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise DataError(f"{path}: not a numeric CSV ({err}); every field after the header must be a number") from err
    if table.shape[0] == 0 or table.shape[1] < 2:
        raise DataError(f"{path}: need at least one row with a label and one feature, got shape {table.shape}")
    return table


def load_csv(
    path: str | os.PathLike,
    label_column: Literal["first", "last"] = "last",
    image_shape: Sequence[int] | None = None,
    header: bool | Literal["auto"] = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Load a CSV of one sample per row: x (N,C,H,W) or (N,F), y int64 (N,).

    Without image_shape, F = n*n features become (N,1,n,n) images; other counts stay (N,F).
    """
    path = Path(path)
    if label_column not in ("first", "last"):
        raise DataError(f"{path}: label_column must be 'first' or 'last', got {label_column!r}")
    table = read_csv_table(path, header)
    label_at = 0 if label_column == "first" else -1
    y = as_int_labels(table[:, label_at], path)
    x = compact(np.delete(table, label_at, axis=1))
    if image_shape is not None:
        return to_images(x, image_shape, path), y
    side = math.isqrt(x.shape[1])
    if side * side == x.shape[1]:
        return x.reshape(len(x), 1, side, side), y
    return x, y


def read_npz_arrays(path: Path, keys: Sequence[str]) -> list[np.ndarray]:
    """Read the named arrays from an .npz archive without ever unpickling."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not an .npz archive; save it with numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise DataError(
                    f"{path}: no array named {missing[0]!r}; the file holds {sorted(archive.files)}"
                    " (set x_key / y_key in your config)"
                )
            return [archive[key] for key in keys]
    except (ValueError, OSError, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: not a readable .npz of plain numeric arrays ({err})") from err


def load_npz(
    path: str | os.PathLike,
    x_key: str = "x",
    y_key: str = "y",
    image_shape: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load x and y from an .npz: x (N,H,W) -> (N,1,H,W); (N,F) and (N,C,H,W) kept; y int64 (N,)."""
    path = Path(path)
    x, y = read_npz_arrays(path, (x_key, y_key))
    if x.dtype.kind not in "iuf" or x.ndim not in (2, 3, 4):
        raise DataError(f"{path}: {x_key!r} must be numeric of shape (N,F), (N,H,W) or (N,C,H,W), got {x.dtype} {x.shape}")
    y = as_int_labels(y, path)
    if len(x) != len(y):
        raise DataError(f"{path}: {x_key!r} has {len(x)} samples but {y_key!r} has {len(y)} labels")
    if image_shape is not None:
        return to_images(x, image_shape, path), y
    if x.ndim == 3:
        return x[:, np.newaxis], y
    return x, y
