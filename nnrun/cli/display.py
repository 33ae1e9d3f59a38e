"""What the user sees while a dataset downloads: one line per attempt on stderr, and on a
terminal a transient progress bar (file, bar, bytes, speed) that vanishes when the file is done."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from nnrun.data.progress import DownloadProgress, download_progress


class DownloadDisplay:
    """A download progress callback drawing on a console; close() removes a bar left behind."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar: Progress | None = None
        self.task = None

    def __call__(self, report: DownloadProgress) -> None:
        if report.done == 0:
            self.close()  # a previous attempt that failed half-way
            self.console.print(f"downloading {report.dataset} {report.filename} from {report.url}",
                               markup=False, highlight=False, soft_wrap=True)
            return
        if self.console.is_terminal:
            self.draw(report)

    def draw(self, report: DownloadProgress) -> None:
        if self.bar is None:
            self.start_bar(report.filename)
        self.bar.update(self.task, completed=report.done, total=report.total)
        if report.done == report.total:
            self.close()

    def start_bar(self, filename: str) -> None:
        self.bar = Progress(TextColumn(escape(filename)), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                            console=self.console, transient=True)
        self.task = self.bar.add_task(filename, total=None)
        self.bar.start()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


@contextmanager
def show_downloads(console: Console) -> Iterator[None]:
    """Show every download inside the block on console."""
    display = DownloadDisplay(console)
    try:
        with download_progress(display):
            yield
    finally:
        display.close()
