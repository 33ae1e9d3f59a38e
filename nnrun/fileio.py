"""Atomic file writes: a file is either its old self or completely new, never half-written.
Also the size-capped reader, so that a huge file is refused before memory is spent on it."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nnrun.errors import ConfigError, NnrunError


class WriteError(NnrunError):
    """A file could not be written (a full disk, a read-only folder): exit code 1."""

    def __init__(self, path: Path, error: OSError):
        reason = error.strerror or str(error)
        super().__init__(f"cannot write {path}: {reason}; every file already written keeps its "
                         "last complete version")
        self.path = path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def commit(tmp: Path, path: Path) -> None:
    """Give the finished temporary file the usual mode and rename it onto path."""
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
    os.replace(tmp, path)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` if the block succeeds.
    An OSError (a full disk, say) becomes WriteError, and `path` keeps its previous version."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise WriteError(path, e) from e
    try:
        yield Path(tmp)
        commit(Path(tmp), path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise WriteError(path, e) from e
        raise


class FolderBusy(NnrunError):
    """Another nnrun process is working in the folder (exit code 1)."""


LOCK_FILE = ".nnrun.lock"


@contextmanager
def folder_lock(folder: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold <folder>/.nnrun.lock while working in the folder, so that two processes (the same
    --resume command typed in two terminals) never write one folder at once; FolderBusy when
    another holds it. The operating system releases the lock when the process ends, however it
    ends; a clean end also removes the file (a killed process leaves it, and the next command
    that takes the lock removes it). The file is never followed through a symbolic link. Where
    advisory locks do not exist (Windows), nothing is locked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover (not POSIX)
        yield
        return
    path = Path(folder) / LOCK_FILE
    busy = FolderBusy(f"{folder}: another nnrun process is working on this {what}; wait for it to "
                      "finish (or stop it), then run the command again")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as e:
        raise OutsideFolder(f"{path}: cannot be nnrun's lock file ({e.strerror}; a link or a folder?); "
                            "remove it") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        if not same_file(path, fd):  # its holder removed it as we opened it: it was busy then
            raise busy
        try:
            yield
        finally:
            path.unlink(missing_ok=True)  # before the lock goes, so nobody locks a removed file
    finally:
        os.close(fd)


def same_file(path: Path, fd: int) -> bool:
    try:
        return os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def remove_leftovers(folder: str | os.PathLike) -> None:
    """Delete the temporary files of writes that a kill -9 cut short (atomic_path's `.<name>.*`)."""
    for path in Path(folder).rglob(".*"):
        if path.is_file() and path.name != LOCK_FILE:
            path.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def json_safe(obj: Any) -> Any:
    """obj with NaN and infinities replaced by None (null): strict JSON readers (jq, JavaScript)
    refuse NaN and Infinity, and nnrun's readers treat null as a missing value."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    """Strict JSON: NaN and infinities are written as null."""
    write_text(path, json.dumps(json_safe(obj), indent=indent, allow_nan=False) + "\n")


def csv_safe_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: a string that starts with = + - @ (or a tab or
    carriage return) would be read as a formula by Excel, LibreOffice and Google Sheets
    (`=HYPERLINK(...)` in a file name runs when the CSV is opened), so it gets a leading
    apostrophe (OWASP's advice). Numbers, and strings that are numbers ("-0.5", "1e-05"), are
    left as they are."""
    if not isinstance(value, str) or not value or value[0] not in "=+-@\t\r":
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


class OutsideFolder(ConfigError):
    """A path nnrun would write through leads outside the folder it was asked to work in."""


def check_inside(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """path, when it (followed through any symbolic link) stays inside root; OutsideFolder
    otherwise, before anything is written."""
    root, path = Path(root), Path(path)
    real_root = root.resolve()
    real = path.resolve()
    if real != real_root and real_root not in real.parents:
        raise OutsideFolder(f"{path}: leads outside {root} (to {real}; a symbolic link?); nnrun writes "
                            f"only inside the folder it works in: remove the link")
    return path


# -- reading --------------------------------------------------------------------------------
def size_text(n: int) -> str:
    """Bytes in people's units: 512 B, 1 MiB, 3.2 KiB, 64.0 MiB, 1.5 GiB."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n // scale} {unit}" if n % scale == 0 else f"{n / scale:.1f} {unit}"
    return f"{n} B"


class TooLarge(ValueError):
    """A file over a size limit; `size` is None when it was only found out by reading."""

    def __init__(self, size: int | None, limit: int):
        self.size, self.limit = size, limit
        super().__init__(self.size_text)

    @property
    def size_text(self) -> str:
        if self.size is None:
            return f"larger than {size_text(self.limit)}"
        return f"{self.size:,} bytes ({size_text(self.size)})"


def read_limited(path: str | os.PathLike, limit: int) -> bytes:
    """The file's bytes; TooLarge, before anything is read, when it is larger than `limit`. A
    file whose size is unknown beforehand (a pipe, /dev/zero) is read no further than the limit."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise TooLarge(size, limit)
        data = f.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(None, limit)
    return data


# -- CSV for spreadsheets -------------------------------------------------------------------
