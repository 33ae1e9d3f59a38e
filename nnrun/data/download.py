"""Fetching a named dataset's files into the cache, through pooch (SHA-256 check, atomic writes).

The cache is the cache_dir argument, else $NNRUN_DATA_DIR, else the platform's cache folder
(~/.cache/nnrun on Linux, or $XDG_CACHE_HOME/nnrun), one folder per dataset. Mirrors are tried in order. Progress goes to a callback (see nnrun.data.progress);
nothing here prints.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pooch
import requests
import urllib3

from nnrun.data.catalog import DatasetInfo, dataset_info
from nnrun.data.mirrors import MirrorsFailed
from nnrun.data.progress import DownloadProgress, ProgressFn, installed_progress

DOWNLOAD_TIMEOUT_SECONDS = 60  # for the connection, and for each read
# A whole file must arrive within this (a server sending a byte a second never times out by the
# read timeout alone); and no dataset file is larger than this (MNIST's largest is 9.9 MB), so a
# larger response is refused, by its Content-Length before anything is stored.
DOWNLOAD_DEADLINE_SECONDS = 600
MAX_DOWNLOAD_BYTES = 64 << 20
READ_BYTES = 1024  # as pooch reads; progress reports follow the reads


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


ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")  # "[Errno 111] Connection refused"


def failure_reason(err: Exception) -> str:
    """Why one download failed, in a few words (requests' own text runs to hundreds of characters)."""
    text = str(err)
    if isinstance(err, ValueError) and "hash" in text.lower():
        return "checksum mismatch"
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        return "incomplete download (the connection closed before the end of the file)"
    if isinstance(err, requests.exceptions.HTTPError) and err.response is not None:
        return f"HTTP {err.response.status_code} {err.response.reason}"
    if isinstance(err, requests.exceptions.Timeout):
        return f"no answer within {DOWNLOAD_TIMEOUT_SECONDS} s"
    if isinstance(err, requests.exceptions.ConnectionError):
        return connection_reason(err)
    first_line = text.splitlines()[0] if text else type(err).__name__
    return first_line[:120]


def connection_reason(err: requests.exceptions.ConnectionError) -> str:
    cause = ERRNO_TEXT.search(str(err))
    via = " through the proxy" if isinstance(err, requests.exceptions.ProxyError) else ""
    return f"cannot connect{via}" + (f" ({cause.group(1).strip()})" if cause else "")


class DownloadRefused(Exception):
    """A response nnrun stops reading: too large, or too slow to finish."""


class BoundedDownloader:
    """pooch's downloader interface (called with the URL and the temporary file to fill), with a
    deadline for the whole file and a size limit; progress goes to a PoochProgress."""

    def __init__(self, progress: PoochProgress) -> None:
        self.progress = progress

    def __call__(self, url: str, output_file: str, pooch_obj=None, check_only: bool = False) -> None:
        started = time.monotonic()
        with requests.get(url, stream=True, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
            response.raise_for_status()
            length = declared_length(response)
            self.progress.total = length or 0
            with open(output_file, "wb") as out:
                self.copy(response.raw, out, started)

    def copy(self, body: urllib3.BaseHTTPResponse, out, started: float) -> None:
        done = 0
        while chunk := read_some(body):
            done += len(chunk)
            if done > MAX_DOWNLOAD_BYTES:
                raise DownloadRefused(f"larger than {MAX_DOWNLOAD_BYTES >> 20} MiB, more than any dataset file")
            if time.monotonic() - started > DOWNLOAD_DEADLINE_SECONDS:
                raise DownloadRefused(f"not complete after {DOWNLOAD_DEADLINE_SECONDS} s (the server is too slow)")
            out.write(chunk)
            self.progress.update(len(chunk))


def declared_length(response: requests.Response) -> int | None:
    """The Content-Length, refused (DownloadRefused) when over the limit: nothing is stored."""
    text = response.headers.get("Content-Length", "")
    length = int(text) if text.isdigit() else None
    if length is not None and length > MAX_DOWNLOAD_BYTES:
        raise DownloadRefused(f"the server announces {length:,} bytes; no dataset file is larger than "
                              f"{MAX_DOWNLOAD_BYTES >> 20} MiB")
    return length


def read_some(body: urllib3.BaseHTTPResponse) -> bytes:
    """What has arrived, at most READ_BYTES (one read of the socket, so that the deadline is
    checked between reads); urllib3's errors as the requests errors they stand for."""
    try:
        return body.read1(READ_BYTES, decode_content=True)
    except urllib3.exceptions.ReadTimeoutError as e:
        raise requests.exceptions.ReadTimeout(e) from None
    except (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError) as e:
        raise requests.exceptions.ChunkedEncodingError(e) from None


def no_progress(report: DownloadProgress) -> None:
    """Drop a report: the progress callback of a download nobody watches."""


def download_from(name: str, url: str, target: Path, known_hash: str, show: ProgressFn) -> Path:
    """Download one URL to target through pooch, which verifies the hash, reporting to show."""
    report = lambda done, total: show(DownloadProgress(name, target.name, url, done, total))
    report(0, None)
    bar = PoochProgress(report)
    downloader = BoundedDownloader(bar)
    with quiet_pooch():
        path = Path(pooch.retrieve(url, known_hash, fname=target.name, path=target.parent, downloader=downloader))
    size = path.stat().st_size
    if bar.reported != size:  # the server gave no length, so the end was not reported yet
        report(size, size)
    return path


def cache_path(name: str, filename: str, cache_dir: str | os.PathLike | None = None) -> Path:
    return cache_root(cache_dir) / name / filename


def is_cached(name: str, filename: str, cache_dir: str | os.PathLike | None = None) -> bool:
    """Whether the dataset file is in the cache with its checksum: no download needed."""
    target = cache_path(name, filename, cache_dir)
    return target.is_file() and pooch.hashes.hash_matches(str(target), dataset_info(name).sha256[filename])


def fetch(name: str, filename: str, cache_dir: str | os.PathLike | None = None,
          progress: ProgressFn | None = None) -> Path:
    """The cached path of one dataset file, downloaded from the mirrors if it is not there yet;
    MirrorsFailed when no mirror gives it.

    Progress goes to `progress`, else to the callback of the enclosing download_progress() block.
    """
    info = dataset_info(name)
    target = cache_path(name, filename, cache_dir)
    if is_cached(name, filename, cache_dir):
        return target
    show = progress or installed_progress() or no_progress
    # pooch replaces a cached file whose checksum fails; if no mirror works, it stays unused
    stale = ["the cached copy failed its checksum and was not used"] if target.is_file() else []
    tried = []
    for base in mirrors_for(info):
        try:
            return download_from(name, base + filename, target, info.sha256[filename], show)
        except Exception as err:  # any failure of one mirror means: try the next one
            tried.append((base + filename, failure_reason(err)))
    raise MirrorsFailed(name, filename, tried, target.parent, notes=stale)


def fetch_files(name: str, filenames: Sequence[str], cache_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """The cached paths of several files of a dataset, downloaded as needed; MirrorsFailed names
    every file still missing when one cannot be downloaded."""
    paths = {}
    for i, filename in enumerate(filenames):
        try:
            paths[filename] = fetch(name, filename, cache_dir)
        except MirrorsFailed as failed:
            raise failed.with_files([f for f in filenames[i:] if not is_cached(name, f, cache_dir)]) from None
    return paths
