"""The error of a dataset file no mirror gave: light (no download machinery), so that code which
only catches it does not import pooch and requests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nnrun.data.catalog import dataset_info
from nnrun.errors import DownloadError


class MirrorsFailed(DownloadError):
    """No mirror gave a dataset file. The message is a short block, one line each: what failed;
    then, indented, each URL tried and why it failed, the files to fetch by hand and the folder
    to put them in, and any notes (the config key that avoids the download)."""

    def __init__(self, dataset: str, filename: str, tried: Sequence[tuple[str, str]], folder: Path,
                 files: Sequence[str] = (), notes: Sequence[str] = ()):
        self.dataset, self.filename, self.tried, self.folder = dataset, filename, list(tried), folder
        self.files, self.notes = list(files) or [filename], list(notes)
        self.lines = self.block()
        super().__init__("\n".join(self.lines))

    def block(self) -> list[str]:
        tried = [f"  {url}: {reason}" for url, reason in self.tried] or [
            f"  no mirror is configured; set {dataset_info(self.dataset).mirror_env_var} to base URLs"]
        return [f"could not download {self.dataset} {self.filename} from any mirror:", *tried,
                f"  to work offline, copy these files from a mirror into {self.folder} "
                "(NNRUN_DATA_DIR sets the data folder):",
                f"    {' '.join(self.files)}",
                *(f"  {note}" for note in self.notes)]

    def with_files(self, files: Sequence[str]) -> MirrorsFailed:
        """The same failure, naming all the files still missing."""
        return MirrorsFailed(self.dataset, self.filename, self.tried, self.folder, files, self.notes)

    def with_note(self, note: str) -> MirrorsFailed:
        return MirrorsFailed(self.dataset, self.filename, self.tried, self.folder, self.files, [*self.notes, note])
