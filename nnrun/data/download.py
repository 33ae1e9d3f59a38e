"""Fetching a named dataset's files into the cache, through pooch (SHA-256 check, atomic writes).

The cache is the cache_dir argument, else $NNRUN_DATA_DIR, else the platform's cache folder
(~/.cache/nnrun on Linux, or $XDG_CACHE_HOME/nnrun), one folder per dataset. Mirrors are tried in order. Progress goes to a callback (see nnrun.data.progress);
nothing here prints.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pooch
import requests

from nnrun.data.catalog import DatasetInfo, dataset_info
from nnrun.data.progress import DownloadProgress, ProgressFn, installed_progress
from nnrun.errors import DownloadError

DOWNLOAD_TIMEOUT_SECONDS = 60


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The download cache: cache_dir, else $NNRUN_DATA_DIR, else the platform's cache folder
    (pooch.os_cache: $XDG_CACHE_HOME/nnrun, by default ~/.cache/nnrun, on Linux;
    ~/Library/Caches/nnrun on macOS)."""
    chosen = cache_dir or os.environ.get("NNRUN_DATA_DIR") or pooch.os_cache("nnrun")
    return Path(chosen).expanduser()


def mirrors_for(info: DatasetInfo) -> list[str]:
    """Base URLs for a dataset, from its environment variable if set, else from the catalogue."""
    from_env = os.environ.get(info.mirror_env_var, "")
    urls = [url.strip() for url in from_env.split(",") if url.strip()] or list(info.mirrors)
    return [url if url.endswith("/") else url + "/" for url in urls]


class PoochProgress:
    """The tqdm-like object (total, update, reset, close) that pooch's HTTPDownloader drives,
    turned into growing byte counts for report(done, total)."""

    def __init__(self, report: Callable[[int, int | None], None]) -> None:
        self.total = 0  # pooch sets it from Content-Length; 0 when the server gives none
        self._counted = 0
        self.reported = 0
        self._report = report

    def update(self, advance: int) -> None:
        self._counted += advance
        total = self.total or None
        # pooch counts whole chunks, past the end, and replays the total after reset(): cap and
        # report only growth.
        done = min(self._counted, total) if total else self._counted
        if done > self.reported:
            self.reported = done
            self._report(done, total)

    def reset(self) -> None:
        self._counted = 0

    def close(self) -> None:
        pass


@contextmanager
def quiet_pooch() -> Iterator[None]:
    """Silence pooch's own INFO lines: the progress callback tells the story."""
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
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        return "incomplete download (the connection closed before the end of the file)"
    first_line = text.splitlines()[0] if text else type(err).__name__
    return first_line[:120]


def no_progress(report: DownloadProgress) -> None:
    """Drop a report: the progress callback of a download nobody watches."""


def download_from(name: str, url: str, target: Path, known_hash: str, show: ProgressFn) -> Path:
    """Download one URL to target through pooch, which verifies the hash, reporting to show."""
    report = lambda done, total: show(DownloadProgress(name, target.name, url, done, total))
    report(0, None)
    bar = PoochProgress(report)
    downloader = pooch.HTTPDownloader(progressbar=bar, timeout=DOWNLOAD_TIMEOUT_SECONDS)
    with quiet_pooch():
        path = Path(pooch.retrieve(url, known_hash, fname=target.name, path=target.parent, downloader=downloader))
    size = path.stat().st_size
    if bar.reported != size:  # the server gave no length, so the end was not reported yet
        report(size, size)
    return path


def fetch(name: str, filename: str, cache_dir: str | os.PathLike | None = None,
          progress: ProgressFn | None = None) -> Path:
    """The cached path of one dataset file, downloaded from the mirrors if it is not there yet.

    Progress goes to `progress`, else to the callback of the enclosing download_progress() block.
    """
    info = dataset_info(name)
    target = cache_root(cache_dir) / name / filename
    known_hash = info.sha256[filename]
    if target.is_file() and pooch.hashes.hash_matches(str(target), known_hash):
        return target
    show = progress or installed_progress() or no_progress
    # pooch replaces a cached file whose checksum fails; if no mirror works, it stays unused
    stale = "; the cached copy failed its checksum and was not used" if target.is_file() else ""
    reasons = []
    for base in mirrors_for(info):
        try:
            return download_from(name, base + filename, target, known_hash, show)
        except Exception as err:  # any failure of one mirror means: try the next one
            reasons.append(f"{base + filename}: {failure_reason(err)}")
    raise DownloadError(
        f"could not download {name} {filename} from any mirror ({'; '.join(reasons) or 'no mirrors configured'}){stale}; "
        f"fetch the {len(info.sha256)} files by hand into {target.parent} "
        f"or point data.train/data.test at local IDX files"
    )
