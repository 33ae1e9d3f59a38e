"""IDX files (the MNIST container format), raw or gzip-compressed.

Layout: two zero bytes, a dtype code, the number of dimensions, one big-endian uint32 per
dimension, then the values in C order, big-endian. The header is checked against the file's
length before any buffer of the size it claims is allocated.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nnrun.data.checks import as_int_labels, check_samples
from nnrun.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# Deflate expands its input at most 1032-fold, so a gzip file of n bytes holds at most this many
# times n: a header claiming more is corrupt, and is refused before anything is decompressed.
MAX_DEFLATE_RATIO = 1032
CHUNK_BYTES = 1 << 20
GZIP_ERRORS = (OSError, EOFError, zlib.error)
# The largest data nnrun reads from one file (after decompression): far more than MNIST (47 MB of
# images) or a CSV of it (110 MB), far less than a gzip bomb would make of a small file.
MAX_IDX_BYTES = 1 << 30
MAX_TEXT_BYTES = 256 << 20


def read_bytes(path: str | os.PathLike, limit: int | None = None) -> bytes:
    """A file's bytes, decompressed when it starts with the gzip magic bytes; DataError when
    there are more than `limit` (default MAX_TEXT_BYTES) of them, found before more than
    limit + 1 are read."""
    limit = MAX_TEXT_BYTES if limit is None else limit
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with path.open("rb") as file:
        compressed = file.read(2) == GZIP_MAGIC
        file.seek(0)
        try:
            data = read_exactly(gzip.GzipFile(fileobj=file) if compressed else file, limit + 1)
        except GZIP_ERRORS as err:
            raise DataError(f"{path}: corrupt gzip data ({err}); download the file again") from err
    if len(data) > limit:
        what = "decompresses to" if compressed else "holds"
        raise DataError(f"{path}: {what} more than {limit >> 20} MiB; nnrun reads data files of at most "
                        f"{limit >> 20} MiB (use .npz or IDX for more)")
    return bytes(data)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file into an array of the header's shape, in native byte order."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    size = path.stat().st_size
    with path.open("rb") as file:
        compressed = file.read(2) == GZIP_MAGIC
        file.seek(0)
        try:
            return read_idx_stream(gzip.GzipFile(fileobj=file) if compressed else file, path, size, compressed)
        except GZIP_ERRORS as err:
            what = "corrupt gzip data" if compressed else "cannot read the file"
            raise DataError(f"{path}: {what} ({err}); download or export the file again") from err


def read_idx_stream(stream: BinaryIO, path: Path, size: int, compressed: bool) -> np.ndarray:
    """The array of an IDX stream whose file is `size` bytes long (compressed or not)."""
    dtype, shape = read_idx_header(stream, path)
    offset = 4 + 4 * len(shape)
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow, whatever the header says
    check_claim(path, shape, expected, size, offset, compressed)
    data = read_exactly(stream, expected)
    if len(data) < expected:
        raise DataError(f"{path}: the IDX header declares {shape} values ({expected} bytes) but the file "
                        f"holds {len(data)}; the file is truncated: download or export it again")
    if stream.read(1):  # also reads to the end of a gzip stream, which verifies its checksum
        raise DataError(f"{path}: more bytes than the {expected} the IDX header declares for {shape}; "
                        "the file is corrupt or its header is wrong: download or export it again")
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def read_idx_header(stream: BinaryIO, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    """The (big-endian dtype, shape) an IDX header declares, or a DataError saying what is wrong."""
    head = stream.read(4)
    if not head:
        raise DataError(f"{path}: empty file; expected an IDX file (the MNIST format)")
    if head[:2] != b"\x00\x00" or len(head) < 4:
        raise DataError(f"{path}: not an IDX file (its magic number is {head.hex(' ')}, not 00 00 <type> <dims>); "
                        "give the path of an IDX file (the MNIST format)")
    code, ndim = head[2], head[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise DataError(f"{path}: unknown IDX type code 0x{code:02x} (known: {known}); "
                        "the file is corrupt or not an IDX file")
    if ndim == 0:
        raise DataError(f"{path}: the IDX header declares 0 dimensions; the file is corrupt or not an IDX file")
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header ({4 + len(dims)} bytes; {ndim} dimensions need "
                        f"{4 + 4 * ndim}); download or export the file again")
    return np.dtype(IDX_DTYPES[code]), struct.unpack(f">{ndim}I", dims)


def check_claim(path: Path, shape: tuple[int, ...], expected: int, size: int, offset: int,
                compressed: bool) -> None:
    """Refuse a header whose data cannot fit the file: exactly for a raw file, by the deflate
    limit for a gzip one; and any that declares more than MAX_IDX_BYTES."""
    if compressed and offset + expected > size * MAX_DEFLATE_RATIO:
        raise DataError(f"{path}: the IDX header declares {shape} values ({expected} bytes), more than "
                        f"a gzip file of {size} bytes can hold; the header is corrupt: "
                        "download or export the file again")
    available = size - offset
    if not compressed and available < expected:
        raise DataError(f"{path}: the IDX header declares {shape} values ({expected} bytes) but the file "
                        f"holds {available} after the header; the file is truncated or its header is "
                        "corrupt: download or export it again")
    if not compressed and available > expected:
        raise DataError(f"{path}: {available - expected} bytes more than the {expected} bytes the IDX "
                        f"header declares for {shape}; the file is corrupt or its header is wrong: "
                        "download or export it again")
    if expected > MAX_IDX_BYTES:
        raise DataError(f"{path}: the IDX header declares {shape} values ({expected} bytes), more than the "
                        f"{MAX_IDX_BYTES >> 30} GiB nnrun reads from one file; the header is corrupt or the "
                        "file too large")


def read_exactly(stream: BinaryIO, count: int) -> bytearray:
    """Up to `count` bytes from stream (fewer at its end). The buffer grows with the data that
    arrives, so a gzip stream that ends early never costs the size its header claimed."""
    buffer = bytearray()
    while len(buffer) < count:
        chunk = stream.read(min(CHUNK_BYTES, count - len(buffer)))
        if not chunk:
            break
        buffer += chunk
    return buffer


def load_idx_pair(
    images_path: str | os.PathLike, labels_path: str | os.PathLike
) -> tuple[np.ndarray, np.ndarray]:
    """Load an IDX image file (N,H,W) and its label file (N,) as x (N,1,H,W) and y int64 (N,)."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(f"{images_path}: expected IDX images of shape (N,H,W), got {images.shape}; "
                        "point images at an IDX file of images")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: expected IDX labels of shape (N,), got {labels.shape}; "
                        "point labels at an IDX file of labels")
    check_samples(images, images_path)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} "
            "labels; point images and labels at files of the same set"
        )
    return images[:, np.newaxis], as_int_labels(labels, labels_path)
