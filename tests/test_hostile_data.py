"""Hostile data files (issue 10): each gets one clear DataError line naming the file, what is wrong
and what to do; never a traceback, an unexpected exception or a silently wrong result."""

from __future__ import annotations

import gzip
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from nnrun.data import load_idx_pair, read_idx
from nnrun.errors import DataError
from tests.synthetic import idx_bytes

# ---------------------------------------------------------------- helpers


def one_line_error(call, *fragments: str) -> str:
    """Run call(); it must raise DataError with a one-line message holding every fragment."""
    with pytest.raises(DataError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message, message
    for fragment in fragments:
        assert re.search(fragment, message), f"{fragment!r} not in {message!r}"
    return message


def idx_header(code: int, *dims: int) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


GOOD_IMAGES = np.arange(4 * 3 * 3, dtype=np.uint8).reshape(4, 3, 3)
GOOD_LABELS = np.array([0, 1, 2, 1], dtype=np.uint8)


def good_labels_file(folder: Path) -> Path:
    return write(folder / "labels.idx", idx_bytes(GOOD_LABELS))


# ---------------------------------------------------------------- IDX

IDX_CASES = {  # name: (the images file's bytes, what the message must say)
    "wrong magic": (b"\x12\x34\x08\x03" + idx_bytes(GOOD_IMAGES)[4:], r"not an IDX file"),
    "wrong type code": (b"\x00\x00\x07\x03" + idx_bytes(GOOD_IMAGES)[4:], r"unknown IDX type code 0x07"),
    "zero dimensions": (b"\x00\x00\x08\x00", r"0 dimensions"),
    "empty file": (b"", r"empty file"),
    "header cut short": (idx_header(0x08, 4, 3, 3)[:9], r"truncated IDX header"),
    "truncated values": (idx_bytes(GOOD_IMAGES)[:-5], r"31 bytes.*needs 36|truncated"),
    "padded with extra bytes": (idx_bytes(GOOD_IMAGES) + b"junk", r"4 bytes more than"),
    "dims inconsistent with length": (idx_header(0x08, 4, 3, 4) + GOOD_IMAGES.tobytes(), r"\(4, 3, 4\).*48"),
    "header claims 10^12 bytes": (idx_header(0x08, 10**6, 1000, 1000), r"1000000000000 bytes"),
    "dims whose product overflows int64": (idx_header(0x08, 65536, 65536, 65536, 65536), r"bytes"),
    "header claims 10^12 bytes, gzip": (gzip.compress(idx_header(0x08, 10**6, 1000, 1000) + bytes(1000)),
                                        r"more than a gzip file of \d+ bytes can hold"),
    "corrupt gzip": (gzip.compress(idx_bytes(GOOD_IMAGES))[:-6], r"corrupt gzip"),
    "gzip with a flipped CRC": (gzip.compress(idx_bytes(GOOD_IMAGES))[:-8] + b"\0\0\0\0"
                                + gzip.compress(idx_bytes(GOOD_IMAGES))[-4:], r"corrupt gzip"),
    "no images": (idx_header(0x08, 0, 3, 3), r"no samples"),
    "images 1-D": (idx_bytes(GOOD_LABELS), r"shape \(N,H,W\)"),
    "nan pixel": (idx_bytes(np.array([[[0.0, np.nan]]] * 4, dtype=np.float32)), r"nan.*not a finite number"),
}


@pytest.mark.parametrize("name", IDX_CASES)
def test_hostile_idx_images(tmp_path, name):
    data, expected = IDX_CASES[name]
    images = write(tmp_path / "images.idx", data)
    one_line_error(lambda: load_idx_pair(images, good_labels_file(tmp_path)), r"images\.idx: ", expected)


IDX_LABEL_CASES = {
    "count mismatch": (idx_bytes(GOOD_LABELS[:3]), r"has 4 images but .*labels\.idx has 3 labels"),
    "labels 2-D": (idx_bytes(GOOD_LABELS.reshape(2, 2)), r"labels\.idx: .*shape \(N,\)"),
    "negative label": (idx_bytes(GOOD_LABELS.astype(np.int8) - 1), r"labels\.idx: label -1 at index 0"),
    "fractional label": (idx_bytes(np.array([0, 1.5, 2, 0], np.float32)), r"labels\.idx: label 1\.5 at index 1"),
    "label too large to be a class": (idx_bytes(np.array([0, 1, 2, 2**31 - 1], np.int32)),
                                      r"labels\.idx: label 2147483647 at index 3"),
    "label 1e300": (idx_bytes(np.array([0, 1, 2, 1e300])), r"labels\.idx: label 1e\+300 at index 3"),
}


@pytest.mark.parametrize("name", IDX_LABEL_CASES)
def test_hostile_idx_labels(tmp_path, name):
    data, expected = IDX_LABEL_CASES[name]
    images = write(tmp_path / "images.idx", idx_bytes(GOOD_IMAGES))
    labels = write(tmp_path / "labels.idx", data)
    one_line_error(lambda: load_idx_pair(images, labels), expected)


@pytest.mark.parametrize("compress", [False, True])
def test_a_huge_claim_is_refused_before_allocating(tmp_path, compress):
    """A header claiming 2 GB in a small file is refused with no buffer of that size allocated."""
    import tracemalloc

    data = idx_header(0x0E, 250_000, 1000) + bytes(64)
    path = write(tmp_path / "huge.idx", gzip.compress(data) if compress else data)
    tracemalloc.start()
    try:
        one_line_error(lambda: read_idx(path), r"huge\.idx: .*2000000000")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000


def test_a_gzip_file_that_ends_early_costs_only_what_it_holds(tmp_path):
    """100 kB of noise under a header claiming 100 MB: plausible for a 100 kB gzip file (deflate
    can expand 1032-fold), so it is read, but the buffer grows only with the data that arrives."""
    import tracemalloc

    noise = np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8).tobytes()
    path = write(tmp_path / "short.idx.gz", gzip.compress(idx_header(0x08, 100, 1000, 1000) + noise))
    tracemalloc.start()
    try:
        one_line_error(lambda: read_idx(path), r"short\.idx\.gz: .*100000000 bytes.*holds 100000; .*truncated")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000


def test_a_gzip_bomb_is_not_inflated(tmp_path):
    """A small header followed by 64 MB of zeros (64 kB compressed): refused after reading the
    declared values and one byte more, not after inflating it all."""
    import tracemalloc

    path = write(tmp_path / "bomb.idx.gz", gzip.compress(idx_bytes(GOOD_LABELS) + bytes(64 << 20), 1))
    tracemalloc.start()
    try:
        one_line_error(lambda: read_idx(path), r"bomb\.idx\.gz: ")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000


def test_idx_good_files_still_load(tmp_path):
    for compress in (False, True):
        data = idx_bytes(GOOD_IMAGES)
        images = write(tmp_path / "i.idx", gzip.compress(data) if compress else data)
        x, y = load_idx_pair(images, good_labels_file(tmp_path))
        np.testing.assert_array_equal(x[:, 0], GOOD_IMAGES)
        assert y.tolist() == GOOD_LABELS.tolist()
