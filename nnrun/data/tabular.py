"""User data in CSV (optionally gzip) and NumPy .npz files."""

from __future__ import annotations

import lzma
import math
import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Literal

import numpy as np

from nnrun.data.checks import as_int_labels, check_samples, shown_text
from nnrun.data.idx import MAX_DEFLATE_RATIO, read_bytes
from nnrun.errors import DataError

NumberedRow = tuple[int, str]  # (row number in the file, counting from 1; the line's text)


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


# -- CSV ------------------------------------------------------------------------------------


def is_number(field: str) -> bool:
    """Whether numpy's CSV reader takes field as a number (float() also takes '1_0' and
    non-ASCII digits, which it refuses)."""
    if not field.isascii() or "_" in field or "\r" in field:
        return False
    try:
        float(field)
    except ValueError:
        return False
    return True


def numbered_rows(path: Path) -> list[NumberedRow]:
    """The file's non-blank lines with their row numbers, as an editor counts them."""
    text = read_bytes(path).decode("utf-8", errors="replace").removeprefix("\ufeff")
    rows = [(number, line.removesuffix("\r")) for number, line in enumerate(text.split("\n"), 1)]
    return [(number, line) for number, line in rows if line.strip()]


def first_row_is_header(line: str, header: bool | Literal["auto"], path: Path) -> bool:
    """Whether row 1 is a header: as configured, else when none of its fields is a number."""
    if header != "auto":
        return bool(header)
    fields = line.split(",")
    numeric = [is_number(field) for field in fields]
    if all(numeric):
        return False
    if not any(numeric):
        return True
    column = numeric.index(False)
    raise DataError(
        f"{path}: row 1 mixes numbers and text ({shown_text(fields[column].strip())} in column "
        f"{column + 1}); a header row holds names only and a data row numbers only: fix row 1, "
        "or set header: true (or false) for this file in the config"
    )


def first_bad_field(rows: list[NumberedRow]) -> str | None:
    """What is wrong with the first row that is ragged or holds a field that is not a number."""
    first_number, width = rows[0][0], len(rows[0][1].split(","))
    for number, line in rows:
        fields = line.split(",")
        if len(fields) != width:
            return (f"row {number} has {len(fields)} fields but row {first_number} has {width}; "
                    "every row needs the same number of fields")
        for column, field in enumerate(fields, 1):
            if not is_number(field):
                return (f"row {number}, column {column}: {shown_text(field.strip())} is not a number; "
                        "every field after the header must be a number")
    return None


def parse_numbers(rows: list[NumberedRow], path: Path) -> np.ndarray:
    """The rows as a float64 table (rows, columns); on failure, say which field is wrong."""
    try:
        return np.loadtxt([line for _, line in rows], delimiter=",", comments=None, dtype=np.float64, ndmin=2)
    except ValueError as err:  # numpy's message counts rows from the first parsed one: find our own
        problem = first_bad_field(rows) or f"not a numeric CSV ({err})"
        raise DataError(f"{path}: {problem}") from None


def check_finite_fields(table: np.ndarray, rows: list[NumberedRow], path: Path) -> None:
    finite = np.isfinite(table)
    if finite.all():
        return
    row, column = (int(i) for i in np.argwhere(~finite)[0])
    number, line = rows[row]
    raise DataError(f"{path}: row {number}, column {column + 1}: {shown_text(line.split(',')[column].strip())} "
                    "is not a finite number; every field must be a finite number")


def read_csv_table(path: Path, header: bool | Literal["auto"]) -> tuple[np.ndarray, list[int]]:
    """Parse a numeric CSV into a float64 table (rows, columns) and each table row's row number."""
    rows = numbered_rows(path)
    if not rows:
        raise DataError(f"{path}: empty CSV file; it needs one sample per row, the label first or last")
    if first_row_is_header(rows[0][1], header, path):
        rows = rows[1:]
    if not rows:
        raise DataError(f"{path}: no samples, only a header row; it needs one sample per row")
    table = parse_numbers(rows, path)
    if table.shape[1] < 2:
        raise DataError(f"{path}: {table.shape[1]} column; a CSV needs at least 2 columns, a label and a feature")
    check_finite_fields(table, rows, path)
    return table, [number for number, _ in rows]


def load_csv(
    path: str | os.PathLike,
    label_column: Literal["first", "last"] = "last",
    image_shape: Sequence[int] | None = None,
    header: bool | Literal["auto"] = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Load a CSV of one sample per row: x (N,C,H,W) or (N,F), y int64 (N,).

    Without image_shape, F = n*n features become (N,1,n,n) images; other counts stay (N,F).
    The first row is a header when none of its fields is a number (header="auto").
    """
    path = Path(path)
    if label_column not in ("first", "last"):
        raise DataError(f"{path}: label_column must be 'first' or 'last', got {label_column!r}")
    table, row_numbers = read_csv_table(path, header)
    label_at = 0 if label_column == "first" else -1
    y = as_int_labels(table[:, label_at], path, row_numbers)
    x = compact(np.delete(table, label_at, axis=1))
    if image_shape is not None:
        return to_images(x, image_shape, path), y
    side = math.isqrt(x.shape[1])
    if side * side == x.shape[1]:
        return x.reshape(len(x), 1, side, side), y
    return x, y


# -- NPZ ------------------------------------------------------------------------------------

# What a damaged zip or .npy member raises from zipfile, zlib, lzma or numpy's reader.
ARCHIVE_ERRORS = (ValueError, OSError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error, lzma.LZMAError)


def read_npy_header(member: IO[bytes], key: str, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """The (shape, dtype) a .npy member declares; its data is not read."""
    try:
        version = np.lib.format.read_magic(member)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = reader(member)
    except Exception as err:  # numpy parses the header with ast, which raises anything on garbage
        raise DataError(f"{path}: {key!r} is not a readable .npy array ({type(err).__name__}); the file is "
                        "corrupt or was not written by numpy.savez: save it again") from None
    if any(d < 0 for d in shape):
        raise DataError(f"{path}: {key!r} declares the shape {shape}; the file is corrupt: save it again")
    return shape, dtype


def check_npy_member(info: zipfile.ZipInfo, header_bytes: int, shape: tuple[int, ...], dtype: np.dtype,
                     key: str, path: Path) -> None:
    """Refuse an object array, and a member whose declared size its bytes do not hold."""
    if dtype.hasobject:
        raise DataError(f"{path}: {key!r} is an object array (pickled Python objects); nnrun never "
                        "unpickles data files: save plain numeric arrays with numpy.savez")
    expected = header_bytes + math.prod(shape) * dtype.itemsize
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise DataError(f"{path}: {key!r} is compressed with zip method {info.compress_type}; "
                        "save the file with numpy.savez or numpy.savez_compressed")
    ratio = 1 if info.compress_type == zipfile.ZIP_STORED else MAX_DEFLATE_RATIO
    if expected != info.file_size or info.file_size > info.compress_size * ratio + 1024:
        raise DataError(f"{path}: {key!r} declares shape {shape} {dtype} ({expected} bytes with its header) "
                        f"but its archive member holds {info.file_size}; the file is corrupt: save it again")


def read_npz_member(archive: zipfile.ZipFile, key: str, path: Path) -> np.ndarray:
    """One array of an .npz, its header checked before its data is read; nothing is unpickled."""
    members = {name.removesuffix(".npy"): name for name in archive.namelist()}
    if key not in members:
        raise DataError(f"{path}: no array named {key!r}; the file holds {sorted(members)}"
                        " (set x / y in your config)")
    info = archive.getinfo(members[key])
    with archive.open(info) as member:
        shape, dtype = read_npy_header(member, key, path)
        check_npy_member(info, member.tell(), shape, dtype, key, path)
    with archive.open(info) as member:
        return np.lib.format.read_array(member, allow_pickle=False)


def read_npz_arrays(path: Path, keys: Sequence[str]) -> list[np.ndarray]:
    """Read the named arrays from an .npz archive without ever unpickling."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not an .npz archive; save it with numpy.savez")
    try:
        with zipfile.ZipFile(path) as archive:
            return [read_npz_member(archive, key, path) for key in keys]
    except ARCHIVE_ERRORS as err:
        reason = (str(err).splitlines() or [type(err).__name__])[0][:120]
        raise DataError(f"{path}: corrupt .npz archive ({reason}); save it again with numpy.savez") from err


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
        raise DataError(f"{path}: {x_key!r} must be numeric of shape (N,F), (N,H,W) or (N,C,H,W), got {x.dtype} "
                        f"{x.shape}; save the samples as one numeric array")
    check_samples(x, path)
    y = as_int_labels(y, path)
    if len(x) != len(y):
        raise DataError(f"{path}: {x_key!r} has {len(x)} samples but {y_key!r} has {len(y)} labels; "
                        "give one label per sample")
    if image_shape is not None:
        return to_images(x, image_shape, path), y
    if x.ndim == 3:
        return x[:, np.newaxis], y
    return x, y
