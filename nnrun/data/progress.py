"""How downloads report progress: to a callback, never to the terminal.

The download happens deep inside data loading, so a caller installs its callback once around
the work (`with download_progress(show): ...`) instead of passing it through every call.
Standard library only: the CLI installs its display without importing the downloader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class DownloadProgress:
    """One report on one download attempt: done is 0 when the attempt starts, then grows to total.

    total is None until the server gives a length; the last report of a successful download has
    done == total. A failed attempt simply stops reporting (the next mirror starts again at 0).
    """

    dataset: str
    filename: str
    url: str
    done: int
    total: int | None


ProgressFn = Callable[[DownloadProgress], None]

_installed: ContextVar[ProgressFn | None] = ContextVar("nnrun_download_progress", default=None)


@contextmanager
def download_progress(fn: ProgressFn | None) -> Iterator[None]:
    """Send the reports of every download inside the block to fn (None: to nobody)."""
    token = _installed.set(fn)
    try:
        yield
    finally:
        _installed.reset(token)


def installed_progress() -> ProgressFn | None:
    """The callback of the innermost download_progress() block, or None."""
    return _installed.get()
