"""Named datasets: the bundled `digits`, and `mnist` / `fashion-mnist` fetched on first use.

Downloads go through pooch (checksum verification, atomic writes) into a per-dataset folder of
the cache directory: the cache_dir argument, else $NNRUN_DATA_DIR, else ~/.cache/nnrun.
"""

from __future__ import annotations

import difflib
import io
import logging
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pooch
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from nnrun.data.idx import as_int_labels, load_idx_pair
from nnrun.errors import DataError, DownloadError

Splits = dict[str, tuple[np.ndarray, np.ndarray]]

IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

# Base URLs tried in order; $NNRUN_MIRRORS_<NAME> (comma-separated) replaces a list.
MIRRORS: dict[str, list[str]] = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
}
MIRROR_ENV_VARS = {"mnist": "NNRUN_MIRRORS_MNIST", "fashion-mnist": "NNRUN_MIRRORS_FASHION_MNIST"}

# SHA-256 of the published .gz files (a value may also be pooch-style "md5:<hex>").
SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    # Published MD5s: 8d4fb7e6c68d591d4c3dfef9ec88bf0d, 25c81989df183df01b3e8a0aad5dffbe,
    # bef4ecab320f06d8554ea6380940ec79, bb300cfdad3c16e7a12a480ee83cd310 (same order).
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}

DOWNLOAD_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Dataset:
    """A named dataset; load() returns {"train": (x, y), "test": (x, y)}, x (N,C,H,W), y int64 (N,)."""

    name: str
    description: str
    class_names: list[str] = field(repr=False)
    loader: Callable[[str | os.PathLike | None], Splits] = field(repr=False, compare=False)

    def load(self, cache_dir: str | os.PathLike | None = None) -> Splits:
        return self.loader(cache_dir)


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The download cache: cache_dir, else $NNRUN_DATA_DIR, else ~/.cache/nnrun."""
    chosen = cache_dir or os.environ.get("NNRUN_DATA_DIR") or Path.home() / ".cache" / "nnrun"
    return Path(chosen).expanduser()


def mirrors_for(name: str) -> list[str]:
    """Base URLs for a dataset, from its environment variable if set, else from MIRRORS."""
    from_env = os.environ.get(MIRROR_ENV_VARS.get(name, ""), "")
    urls = [url.strip() for url in from_env.split(",") if url.strip()] or MIRRORS[name]
    return [url if url.endswith("/") else url + "/" for url in urls]


class RichProgressBar:
    """The tqdm-like object (total, update, reset, close) that pooch's HTTPDownloader drives."""

    def __init__(self, description: str) -> None:
        self.total: int | None = None
        self._progress = Progress(
            TextColumn(description), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            console=Console(stderr=True), transient=True,
        )
        self._task = self._progress.add_task(description, total=None)
        self._started = False

    def update(self, advance: int) -> None:
        if not self._started:
            self._progress.start()
            self._started = True
        self._progress.update(self._task, total=self.total or None, advance=advance)

    def reset(self) -> None:
        self._progress.reset(self._task, total=self.total or None)

    def close(self) -> None:
        if self._started:
            self._progress.stop()
            self._started = False


@contextmanager
def quiet_pooch() -> Iterator[None]:
    """Silence pooch's own INFO lines; we print one shorter message per download."""
    logger = pooch.get_logger()
    previous = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)


def failure_reason(err: Exception) -> str:
    text = str(err)
    if isinstance(err, ValueError) and "hash" in text.lower():
        return "checksum mismatch"
    first_line = text.splitlines()[0] if text else type(err).__name__
    return first_line[:120]


def download_from(url: str, filename: str, folder: Path, known_hash: str) -> Path:
    """Download one URL into folder/filename through pooch, which verifies the hash."""
    bar = RichProgressBar(filename) if sys.stderr.isatty() else False
    downloader = pooch.HTTPDownloader(progressbar=bar, timeout=DOWNLOAD_TIMEOUT_SECONDS)
    try:
        with quiet_pooch():
            return Path(pooch.retrieve(url, known_hash, fname=filename, path=folder, downloader=downloader))
    finally:
        if bar:
            bar.close()


def fetch(name: str, filename: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Return the cached path of one dataset file, downloading it from the mirrors if needed."""
    folder = cache_root(cache_dir) / name
    known_hash = SHA256[name][filename]
    cached = folder / filename
    if cached.is_file() and pooch.hashes.hash_matches(str(cached), known_hash):
        return cached
    mirrors = mirrors_for(name)
    reasons = []
    for base in mirrors:
        url = base + filename
        print(f"downloading {name} {filename} from {url}", file=sys.stderr)
        try:
            return download_from(url, filename, folder, known_hash)
        except Exception as err:  # any failure of one mirror means: try the next one
            reasons.append(f"{url}: {failure_reason(err)}")
    raise DownloadError(
        f"could not download {name} {filename} from any mirror ({'; '.join(reasons) or 'no mirrors configured'}); "
        f"fetch the 4 files by hand into {folder} or point data.train/data.test at local IDX files"
    )


def load_downloaded(name: str, cache_dir: str | os.PathLike | None = None) -> Splits:
    """Fetch (or reuse) the 4 IDX files of an MNIST-style dataset and load both splits."""
    paths = {split: [fetch(name, f, cache_dir) for f in files] for split, files in IDX_FILES.items()}
    return {split: load_idx_pair(images, labels) for split, (images, labels) in paths.items()}


def load_digits(cache_dir: str | os.PathLike | None = None) -> Splits:
    """The bundled digits: train (1347,1,8,8) and test (450,1,8,8), uint8 values 0..16."""
    bundled = resources.files(__package__).joinpath("digits.npz")
    try:
        raw = bundled.read_bytes()
    except OSError as err:
        raise DataError(f"{bundled}: bundled dataset missing; reinstall nnrun") from err
    with np.load(io.BytesIO(raw), allow_pickle=False) as arrays:
        return {
            split: (arrays[f"x_{split}"], as_int_labels(arrays[f"y_{split}"], bundled))
            for split in ("train", "test")
        }


DIGIT_NAMES = [str(d) for d in range(10)]
DATASETS: dict[str, Dataset] = {
    "digits": Dataset(
        "digits",
        "UCI handwritten digits, 8x8 grey levels 0..16, 1347 train / 450 test (bundled, offline)",
        DIGIT_NAMES,
        load_digits,
    ),
    "mnist": Dataset(
        "mnist",
        "MNIST handwritten digits, 28x28 grey 0..255, 60000 train / 10000 test (downloaded once)",
        DIGIT_NAMES,
        lambda cache_dir=None: load_downloaded("mnist", cache_dir),
    ),
    "fashion-mnist": Dataset(
        "fashion-mnist",
        "Zalando Fashion-MNIST clothing, 28x28 grey 0..255, 60000 train / 10000 test (downloaded once)",
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
        lambda cache_dir=None: load_downloaded("fashion-mnist", cache_dir),
    ),
}


def get_dataset(name: str) -> Dataset:
    """Look a dataset up by name; an unknown name raises DataError with the closest known one."""
    if name in DATASETS:
        return DATASETS[name]
    known = sorted(DATASETS)
    close = difflib.get_close_matches(name.lower(), known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise DataError(f"unknown dataset {name!r}; {hint}known datasets: {', '.join(known)}")


def load_dataset(name: str, cache_dir: str | os.PathLike | None = None) -> Splits:
    """Load a named dataset as {"train": (x, y), "test": (x, y)}."""
    return get_dataset(name).load(cache_dir)
