"""Hostile data files (issue 10): each gets one clear DataError line naming the file, what is wrong
and what to do; never a traceback, an unexpected exception or a silently wrong result."""

from __future__ import annotations

import gzip
import http.server
import io
import re
import struct
import threading
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nnrun.builder import load_data
from nnrun.cli import app
from nnrun.config import load_config
from nnrun.data import DATASETS, fetch, load_csv, load_dataset, load_idx_pair, load_npz, read_idx
from nnrun.errors import ConfigError, DataError, DownloadError
from tests.peak_memory import PeakMemory
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
    data = idx_header(0x0E, 250_000, 1000) + bytes(64)
    path = write(tmp_path / "huge.idx", gzip.compress(data) if compress else data)
    with PeakMemory() as peak:
        one_line_error(lambda: read_idx(path), r"huge\.idx: .*2000000000")
    assert peak.bytes < 10_000_000


def test_a_gzip_file_that_ends_early_costs_only_what_it_holds(tmp_path):
    """100 kB of noise under a header claiming 100 MB: plausible for a 100 kB gzip file (deflate
    can expand 1032-fold), so it is read, but the buffer grows only with the data that arrives."""
    noise = np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8).tobytes()
    path = write(tmp_path / "short.idx.gz", gzip.compress(idx_header(0x08, 100, 1000, 1000) + noise))
    with PeakMemory() as peak:
        one_line_error(lambda: read_idx(path), r"short\.idx\.gz: .*100000000 bytes.*holds 100000; .*truncated")
    assert peak.bytes < 10_000_000


def test_a_gzip_bomb_is_not_inflated(tmp_path):
    """A small header followed by 64 MB of zeros (64 kB compressed): refused after reading the
    declared values and one byte more, not after inflating it all."""
    path = write(tmp_path / "bomb.idx.gz", gzip.compress(idx_bytes(GOOD_LABELS) + bytes(64 << 20), 1))
    with PeakMemory() as peak:
        one_line_error(lambda: read_idx(path), r"bomb\.idx\.gz: ")
    assert peak.bytes < 10_000_000


def test_idx_good_files_still_load(tmp_path):
    for compress in (False, True):
        data = idx_bytes(GOOD_IMAGES)
        images = write(tmp_path / "i.idx", gzip.compress(data) if compress else data)
        x, y = load_idx_pair(images, good_labels_file(tmp_path))
        np.testing.assert_array_equal(x[:, 0], GOOD_IMAGES)
        assert y.tolist() == GOOD_LABELS.tolist()


# ---------------------------------------------------------------- CSV

CSV_CASES = {  # name: (file text, what the message must say)
    "ragged row": ("1,2,0\n3,4\n", r"row 2 has 2 fields but row 1 has 3"),
    "ragged after header": ("a,b,label\n1,2,0\n3,4,5,1\n", r"row 3 has 4 fields but row 2 has 3"),
    "non-numeric cell": ("a,b,label\n1,2,0\n3,x,1\n", r"row 3, column 2: 'x' is not a number"),
    "empty cell": ("1,2,0\n3,,1\n", r"row 2, column 2: '' is not a number"),
    "trailing comma": ("1,2,0\n3,4,1,\n", r"row 2 has 4 fields but row 1 has 3"),
    "nan cell": ("1,2,0\n3,nan,1\n", r"row 2, column 2: 'nan' is not a finite number"),
    "inf cell": ("1,2,0\ninf,4,1\n", r"row 2, column 1: 'inf' is not a finite number"),
    "control characters shown escaped": ("1,2,0\n3,\x1b[31m\x07,1\n", r"row 2, column 2: '\\x1b\[31m\\x07'"),
    "binary junk": (idx_bytes(GOOD_IMAGES).decode("latin-1") + "\n1,2\n", r"row \d"),
    "non-integer label": ("a,b,label\n1,2,0\n3,4,1.5\n", r"label 1\.5 at row 3"),
    "negative label": ("1,2,0\n3,4,-2\n", r"label -2 at row 2"),
    "label too large": ("1,2,0\n3,4,1e12\n", r"label 1e\+12 at row 2"),
    "empty file": ("", r"empty"),
    "blank lines only": ("\n\n  \n", r"empty"),
    "header only": ("a,b,label\n", r"no samples"),
    "one column": ("0\n1\n", r"at least 2 columns"),
    "first row half numbers": ("1,x,0\n3,4,1\n", r"row 1 mixes numbers and text"),
    "first row with one text cell": ("1,2,3,zero\n4,5,6,1\n", r"row 1 mixes numbers and text"),
    "header of numbers and names": ("label,0,1\n0,5,6\n", r"row 1 mixes numbers and text"),
}


@pytest.mark.parametrize("name", CSV_CASES)
def test_hostile_csv(tmp_path, name):
    text, expected = CSV_CASES[name]
    path = write(tmp_path / "data.csv", text)
    one_line_error(lambda: load_csv(path), r"data\.csv: ", expected)


def test_csv_row_numbers_count_blank_lines_and_the_header(tmp_path):
    path = write(tmp_path / "gaps.csv", "a,b,label\n\n1,2,0\n\n3,oops,1\n")
    one_line_error(lambda: load_csv(path), r"row 5, column 2: 'oops'")


def test_csv_a_header_row_has_no_numbers(tmp_path):
    x, y = load_csv(write(tmp_path / "h.csv", "p0,p1,label\n1,2,0\n3,4,1\n"))
    assert x.tolist() == [[1, 2], [3, 4]] and y.tolist() == [0, 1]
    x, _ = load_csv(write(tmp_path / "n.csv", "1,2,0\n3,4,1\n"))
    assert len(x) == 2  # no row lost


def test_csv_explicit_header_settings(tmp_path):
    path = write(tmp_path / "e.csv", "label,0,1\n0,5,6\n1,7,8\n")
    x, y = load_csv(path, label_column="first", header=True)
    assert x.tolist() == [[5, 6], [7, 8]] and y.tolist() == [0, 1]
    one_line_error(lambda: load_csv(write(tmp_path / "f.csv", "a,b,c\n1,2,0\n"), header=False),
                   r"f\.csv: row 1, column 1: 'a' is not a number")


def test_csv_windows_line_endings_and_bom(tmp_path):
    x, y = load_csv(write(tmp_path / "w.csv", "\ufeffa,b,label\r\n1,2,0\r\n3,4,1\r\n"))
    assert x.tolist() == [[1, 2], [3, 4]] and y.tolist() == [0, 1]


# ---------------------------------------------------------------- NPZ


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def npz_with_member(name: str, member: bytes, **others) -> bytes:
    """An .npz whose member `name`.npy holds exactly `member` (a valid zip around any bytes)."""
    buffer = io.BytesIO(npz_bytes(**others))
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(f"{name}.npy", member)
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


X4, Y4 = np.zeros((4, 6), np.float32), np.array([0, 1, 2, 1])


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


HUGE_NPY = npy_header((10**12, 6)) + bytes(96)

NPZ_CASES = {
    "missing x": (npz_bytes(data=X4, y=Y4), r"no array named 'x'; the file holds \['data', 'y'\]"),
    "missing y": (npz_bytes(x=X4, target=Y4), r"no array named 'y'; the file holds \['target', 'x'\]"),
    "object x": (npz_bytes(x=np.array([{"a": 1}, None, 3, 4], dtype=object), y=Y4),
                 r"'x' is an object array.*never unpickle"),
    "object y": (npz_bytes(x=X4, y=np.array([0, 1, "two", 3], dtype=object)), r"'y' is an object array"),
    "x/y length mismatch": (npz_bytes(x=X4, y=Y4[:3]), r"'x' has 4 samples but 'y' has 3 labels"),
    "non-integer labels": (npz_bytes(x=X4, y=np.array([0, 1, 0.5, 1])), r"label 0\.5 at index 2"),
    "string labels": (npz_bytes(x=X4, y=np.array(["a", "b", "c", "d"])), r"labels must be .*numeric"),
    "non-numeric x": (npz_bytes(x=np.array(["a", "b", "c", "d"]), y=Y4), r"'x' must be numeric"),
    "complex x": (npz_bytes(x=X4.astype(complex), y=Y4), r"'x' must be numeric"),
    "nan in x": (npz_bytes(x=np.where(np.eye(4, 6) > 0, np.nan, 0.0), y=Y4), r"nan.*not a finite number"),
    "zero samples": (npz_bytes(x=np.zeros((0, 6)), y=np.zeros(0)), r"no samples"),
    "1-D x": (npz_bytes(x=np.zeros(4), y=Y4), r"shape \(N,F\)"),
    "member claims 10^12 values": (npz_with_member("x", HUGE_NPY, y=Y4), r"'x'.*declares.*corrupt"),
    "member truncated": (npz_with_member("x", npy_bytes(X4)[:-10], y=Y4), r"'x'.*declares.*corrupt"),
    "member padded": (npz_with_member("x", npy_bytes(X4) + b"junk", y=Y4), r"'x'.*declares.*corrupt"),
    "member not .npy": (npz_with_member("x", b"hello, world", y=Y4), r"'x' is not a readable \.npy array"),
    "not a zip": (b"hello", r"not an \.npz archive"),
    "a .npy, not an .npz": (npy_bytes(X4), r"not an \.npz archive"),
    "zip cut short": (npz_bytes(x=X4, y=Y4)[:-30], r"not an \.npz archive|corrupt"),
    "labels as a column (N, 1)": (npz_bytes(x=X4, y=Y4.reshape(4, 1)), r"labels must be a 1-D .* \(4, 1\)"),
    "bzip2 member": (None, r"'x' is compressed with zip method 12"),
}


def bzip2_npz() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_BZIP2) as archive:
        archive.writestr("x.npy", npy_bytes(X4))
        archive.writestr("y.npy", npy_bytes(Y4))
    return buffer.getvalue()


NPZ_CASES["bzip2 member"] = (bzip2_npz(), NPZ_CASES["bzip2 member"][1])


@pytest.mark.parametrize("name", NPZ_CASES)
def test_hostile_npz(tmp_path, name):
    data, expected = NPZ_CASES[name]
    path = write(tmp_path / "data.npz", data)
    one_line_error(lambda: load_npz(path), r"data\.npz: ", expected)


def test_npz_corrupt_compressed_member(tmp_path):
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=np.arange(600.0).reshape(100, 6), y=np.arange(100) % 3)
    data = bytearray(buffer.getvalue())
    data[200] ^= 0xFF  # inside x's deflated bytes
    path = write(tmp_path / "bad.npz", bytes(data))
    one_line_error(lambda: load_npz(path), r"bad\.npz: .*corrupt")


def test_npz_object_array_is_never_unpickled(tmp_path, monkeypatch):
    import pickle

    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    path = write(tmp_path / "obj.npz", NPZ_CASES["object x"][0])
    one_line_error(lambda: load_npz(path), r"object array")


# ---------------------------------------------------------------- labels and classes

NET = {"layers": [{"type": "flatten"}, {"type": "dense", "units": 3, "activation": "softmax"}]}


def experiment(tmp_path: Path, data: dict):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "data": {"validation_split": 0, **data}, "model": NET}))
    return load_config(path, ())


def csv_file(path: Path, labels: list[int]) -> Path:
    return write(path, "".join(f"{i},{i + 1},{label}\n" for i, label in enumerate(labels)))


def test_a_test_label_the_training_data_lacks_names_the_test_file(tmp_path):
    exp = experiment(tmp_path, {"train": {"csv": str(csv_file(tmp_path / "train.csv", [0, 1, 2, 0]))},
                                "test": {"csv": str(csv_file(tmp_path / "test.csv", [0, 7, 1]))}})
    one_line_error(lambda: load_data(exp), r"test\.csv: label 7 outside the classes 0\.\.2 of the training data \(.*train\.csv\)")


def test_idx_test_labels_are_named_by_their_labels_file(tmp_path):
    images = write(tmp_path / "imgs.idx", idx_bytes(GOOD_IMAGES))
    labels = write(tmp_path / "labs.idx", idx_bytes(np.array([0, 1, 5, 1], np.uint8)))
    exp = experiment(tmp_path, {"train": {"images": str(images), "labels": str(good_labels_file(tmp_path))},
                                "test": {"images": str(images), "labels": str(labels)}})
    one_line_error(lambda: load_data(exp), r"labs\.idx: label 5")


def test_labels_beyond_a_named_datasets_classes_name_the_file(tmp_path):
    test_rows = "".join(f"{','.join(['0'] * 64)},{label}\n" for label in (0, 12, 3))
    exp = experiment(tmp_path, {"dataset": "digits", "test": {"csv": str(write(tmp_path / "t.csv", test_rows))}})
    one_line_error(lambda: load_data(exp), r"t\.csv: label 12 outside the classes 0\.\.9 of dataset digits")


def test_a_downloaded_labels_file_beyond_the_declared_classes_is_named(tmp_path, monkeypatch):
    """A cached file that passes its checksum but holds label 12 for a 10-class dataset."""
    import hashlib

    folder = tmp_path / "cache" / "mnist"
    folder.mkdir(parents=True)
    images, labels = np.zeros((3, 28, 28), np.uint8), np.array([0, 12, 3], np.uint8)
    hashes = {}
    for name, array in zip(DATASETS["mnist"].sha256, (images, labels, images, labels), strict=True):
        data = gzip.compress(idx_bytes(array))
        write(folder / name, data)
        hashes[name] = hashlib.sha256(data).hexdigest()
    monkeypatch.setitem(DATASETS, "mnist", replace(DATASETS["mnist"], sha256=hashes, mirrors=()))
    one_line_error(lambda: load_dataset("mnist", tmp_path / "cache"),
                   r"train-labels-idx1-ubyte\.gz: label 12 outside the classes 0\.\.9 of dataset mnist")


def test_the_network_still_gets_the_blame_when_it_is_wrong(tmp_path):
    from nnrun.builder import build_network

    exp = experiment(tmp_path, {"train": {"csv": str(csv_file(tmp_path / "train.csv", [0, 1, 2, 3, 4]))}})
    data = load_data(exp)
    with pytest.raises(ConfigError, match=r"model\.layers\[1\].*5 classes"):
        build_network(exp, data.input_shape, data.num_classes)


# ---------------------------------------------------------------- through the command line

CLI_CASES = {
    "truncated IDX": ("images", idx_bytes(GOOD_IMAGES)[:-5]),
    "ragged CSV": ("csv", "1,2,0\n3,4\n"),
    "object NPZ": ("npz", NPZ_CASES["object x"][0]),
}


@pytest.mark.parametrize("name", CLI_CASES)
def test_cli_shows_one_line_and_exits_2(tmp_path, name):
    kind, data = CLI_CASES[name]
    bad = write(tmp_path / f"bad.{kind}", data)
    source = ({"images": str(bad), "labels": str(good_labels_file(tmp_path))} if kind == "images"
              else {kind: str(bad)})
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"name": "c", "data": {"train": source}, "model": NET}))
    result = CliRunner().invoke(app, ["validate", str(config)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}: "), lines
    assert "Traceback" not in result.output and "unexpected" not in result.output


def test_cli_blames_a_test_label_on_the_test_file(tmp_path):
    train, test = csv_file(tmp_path / "train.csv", [0, 1, 2]), csv_file(tmp_path / "test.csv", [0, 3])
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"name": "c", "model": NET, "data": {
        "train": {"csv": str(train)}, "test": {"csv": str(test)}, "validation_split": 0}}))
    result = CliRunner().invoke(app, ["validate", str(config)])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: {test}: label 3 outside the classes 0..2 of the training data ({train}); "
        "use the same class indices in every split"]


# ---------------------------------------------------------------- downloads

FIRST = "train-images-idx3-ubyte.gz"


class ShortBodyHandler(http.server.BaseHTTPRequestHandler):
    """Serves the good files' bytes cut in half, then closes: with the full Content-Length
    (a server that dies mid-transfer) or with none (a close-delimited body that looks complete)."""

    root: Path
    send_length = True

    def do_GET(self):
        data = (self.root / Path(self.path).name).read_bytes()
        self.send_response(200)
        if self.send_length:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format, *args):
        pass


@pytest.fixture(params=[True, False], ids=["content-length", "no-length"])
def short_mirror(request, served_mnist, tmp_path):
    handler = type("Handler", (ShortBodyHandler,), {"root": tmp_path / "www" / "good",
                                                    "send_length": request.param})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def use_mirrors(monkeypatch, *urls: str) -> None:
    monkeypatch.setitem(DATASETS, "mnist", replace(DATASETS["mnist"], mirrors=urls))


def cached_files(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.rglob("*") if p.is_file())


def test_a_partial_download_is_never_kept(served_mnist, short_mirror, tmp_path, monkeypatch):
    use_mirrors(monkeypatch, short_mirror)
    with pytest.raises(DownloadError) as caught:
        fetch("mnist", FIRST, tmp_path / "cache")
    assert f"  {short_mirror + FIRST}: " in "\n".join(caught.value.lines)
    assert re.search(r"incomplete download|checksum mismatch", str(caught.value))
    assert cached_files(tmp_path / "cache") == []


def test_a_partial_download_falls_through_to_the_next_mirror(served_mnist, short_mirror, tmp_path, monkeypatch):
    use_mirrors(monkeypatch, short_mirror, served_mnist["good"])
    path = fetch("mnist", FIRST, tmp_path / "cache")
    assert path.read_bytes() == (tmp_path / "www" / "good" / FIRST).read_bytes()


def test_a_checksum_mismatch_is_never_used_or_cached(served_mnist, tmp_path, monkeypatch):
    use_mirrors(monkeypatch, served_mnist["bad"])
    with pytest.raises(DownloadError, match="checksum mismatch"):
        load_dataset("mnist", tmp_path / "cache")
    assert cached_files(tmp_path / "cache") == []


def test_a_cached_file_that_fails_its_checksum_is_downloaded_again(served_mnist, tmp_path, monkeypatch):
    use_mirrors(monkeypatch, served_mnist["good"])
    cached = fetch("mnist", FIRST, tmp_path / "cache")
    good = cached.read_bytes()
    cached.write_bytes(good[:-10])  # a cache truncated by a crash, or a disk error
    assert fetch("mnist", FIRST, tmp_path / "cache").read_bytes() == good


def test_a_stale_cache_without_mirrors_is_not_used(served_mnist, tmp_path, monkeypatch, closed_port_url):
    use_mirrors(monkeypatch, served_mnist["good"])
    cached = fetch("mnist", FIRST, tmp_path / "cache")
    cached.write_bytes(b"\x1f\x8b" + bytes(20))
    use_mirrors(monkeypatch, closed_port_url)
    with pytest.raises(DownloadError, match=r"cached copy .*failed its checksum"):
        fetch("mnist", FIRST, tmp_path / "cache")


# ---------------------------------------------------------------- properties: corrupt, then load

# Each mutation: ("truncate", fraction), ("flip", fraction, xor mask), ("append", junk) or
# ("overwrite", offset, bytes) for the header fields.
MUTATION = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255)),
    st.tuples(st.just("append"), st.binary(min_size=1, max_size=40)),
    st.tuples(st.just("overwrite"), st.sampled_from([0, 2, 3, 4, 7, 8, 12]),
              st.one_of(st.binary(min_size=1, max_size=4),
                        st.integers(0, 2**32 - 1).map(lambda n: struct.pack(">I", n)))),
)
MUTATIONS = st.lists(MUTATION, min_size=1, max_size=3)
PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
COUNTED = {"examples": 0, "loaded": 0, "seconds": 0.0}


def mutate(data: bytes, mutations) -> bytes:
    out = bytearray(data)
    for kind, *args in mutations:
        if kind == "truncate":
            del out[int(args[0] * len(out)):]
        elif kind == "flip" and out:
            out[min(int(args[0] * len(out)), len(out) - 1)] ^= args[1]
        elif kind == "append":
            out += args[0]
        elif kind == "overwrite":
            out[args[0]:args[0] + len(args[1])] = args[1]
    return bytes(out)


def assert_loaded_or_data_error(load, path: Path) -> None:
    """The property: a well-formed (x, y), or a one-line DataError naming the file; nothing else."""
    COUNTED["examples"] += 1
    try:
        x, y = load()
    except DataError as err:
        assert "\n" not in str(err) and path.name in str(err), str(err)
        return
    assert isinstance(x, np.ndarray) and x.dtype.kind in "uif" and x.ndim in (2, 4)
    assert len(x) == len(y) > 0 and x.size > 0
    assert y.dtype == np.int64 and y.ndim == 1 and y.min() >= 0
    assert x.dtype.kind in "ui" or np.isfinite(x).all()
    COUNTED["loaded"] += 1


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    started = time.perf_counter()
    yield tmp_path_factory.mktemp("hostile")
    COUNTED["seconds"] = time.perf_counter() - started
    print(f"\nproperty examples: {COUNTED['examples']} ({COUNTED['loaded']} loaded, the rest DataError) "
          f"in {COUNTED['seconds']:.1f} s")


VALID_IDX = idx_bytes(np.arange(5 * 4 * 4, dtype=np.uint8).reshape(5, 4, 4))
VALID_LABELS_IDX = idx_bytes(np.array([0, 1, 2, 1, 0], np.uint8))


@pytest.mark.parametrize("form", ["raw", "gzip of corrupt", "corrupt gzip"])
@pytest.mark.parametrize("which", ["images", "labels"])
@PROPERTY
@given(mutations=MUTATIONS)
def test_property_corrupt_idx(scratch, form, which, mutations):
    valid = VALID_IDX if which == "images" else VALID_LABELS_IDX
    data = {"raw": lambda: mutate(valid, mutations),
            "gzip of corrupt": lambda: gzip.compress(mutate(valid, mutations), mtime=0),
            "corrupt gzip": lambda: mutate(gzip.compress(valid, mtime=0), mutations)}[form]()
    corrupt = write(scratch / f"corrupt-{which}.idx", data)
    other = write(scratch / f"valid-{which}.idx", VALID_LABELS_IDX if which == "images" else VALID_IDX)
    pair = (corrupt, other) if which == "images" else (other, corrupt)
    assert_loaded_or_data_error(lambda: load_idx_pair(*pair), corrupt)


VALID_CSV = "p0,p1,p2,label\n" + "".join(f"{i},{i * 2},{i % 7},{i % 3}\n" for i in range(6))
CELL_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), max_size=8)


@st.composite
def csv_edits(draw) -> str:
    """Text-level corruptions: a cell replaced, a cell removed, a row added, or raw byte damage."""
    rows = [row.split(",") for row in VALID_CSV.splitlines()]
    for _ in range(draw(st.integers(1, 3))):
        row = draw(st.integers(0, len(rows) - 1))
        kind = draw(st.sampled_from(["replace", "remove", "add row"]))
        if kind == "replace":
            rows[row][draw(st.integers(0, len(rows[row]) - 1))] = draw(CELL_TEXT | st.sampled_from(
                ["nan", "-inf", "1e400", "-1", "2.5", "1e18", "", " 7 ", "0x10", "1_0", "\x00"]))
        elif kind == "remove" and len(rows[row]) > 1:
            del rows[row][-1]
        else:
            rows.insert(row, draw(st.lists(CELL_TEXT, min_size=1, max_size=5)))
    return "\n".join(",".join(row) for row in rows) + "\n"


@PROPERTY
@given(text=csv_edits(), mutations=st.lists(MUTATION, max_size=2), compress=st.booleans())
def test_property_corrupt_csv(scratch, text, mutations, compress):
    data = mutate(text.encode(), mutations)
    path = write(scratch / "corrupt.csv", gzip.compress(data, mtime=0) if compress else data)
    assert_loaded_or_data_error(lambda: load_csv(path), path)


VALID_X = np.arange(5 * 3 * 3, dtype=np.float32).reshape(5, 3, 3)
VALID_Y = np.array([0, 1, 2, 1, 0])


@pytest.mark.parametrize("target", ["archive", "x.npy", "y.npy"])
@PROPERTY
@given(mutations=MUTATIONS)
def test_property_corrupt_npz(scratch, target, mutations):
    """Damage the zip itself, or a member's .npy bytes inside a valid zip (so numpy parses them)."""
    if target == "archive":
        data = mutate(npz_bytes(x=VALID_X, y=VALID_Y), mutations)
    else:
        arrays = {"x": VALID_X, "y": VALID_Y}
        name = target[0]
        data = npz_with_member(name, mutate(npy_bytes(arrays.pop(name)), mutations), **arrays)
    path = write(scratch / "corrupt.npz", data)
    assert_loaded_or_data_error(lambda: load_npz(path), path)
