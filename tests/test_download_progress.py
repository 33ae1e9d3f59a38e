"""Download progress: the data layer reports to a callback, the CLI draws it (tests stay on 127.0.0.1)."""

from __future__ import annotations

import io

import yaml
from rich.console import Console
from typer.testing import CliRunner

from nnrun.cli import app
from nnrun.cli.display import DownloadDisplay
from nnrun.data import DATASETS, DownloadProgress, download_progress, load_dataset
from nnrun.data.download import PoochProgress, fetch
from nnrun.data.progress import installed_progress

FIRST_FILE = "train-images-idx3-ubyte.gz"


def by_file(reports: list[DownloadProgress]) -> dict[str, list[DownloadProgress]]:
    files: dict[str, list[DownloadProgress]] = {}
    for report in reports:
        files.setdefault(report.filename, []).append(report)
    return files


def test_pooch_progress_reports_growing_counts_ending_at_the_total():
    seen = []
    bar = PoochProgress(lambda done, total: seen.append((done, total)))
    bar.total = 2500  # what pooch does: whole chunks, then reset() and the total once more
    for _ in range(3):
        bar.update(1024)
    bar.reset()
    bar.update(2500)
    bar.close()
    assert seen == [(1024, 2500), (2048, 2500), (2500, 2500)]


def test_callback_sees_every_file_from_zero_to_its_total(served_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("NNRUN_MIRRORS_MNIST", served_mnist["good"])
    reports: list[DownloadProgress] = []
    with download_progress(reports.append):
        load_dataset("mnist", cache_dir=tmp_path / "cache")
    files = by_file(reports)
    assert sorted(files) == sorted(DATASETS["mnist"].sha256)
    for name, seen in files.items():
        done = [r.done for r in seen]
        size = (tmp_path / "cache" / "mnist" / name).stat().st_size
        assert done[0] == 0 and done == sorted(set(done)) and done[-1] == size == seen[-1].total
        assert all(r.dataset == "mnist" and r.url == served_mnist["good"] + name for r in seen)
    assert len(files[FIRST_FILE]) > 3  # several chunks, not just start and end


def test_explicit_progress_wins_and_the_hook_is_restored(served_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("NNRUN_MIRRORS_MNIST", served_mnist["good"])
    installed, explicit = [], []
    with download_progress(installed.append):
        fetch("mnist", FIRST_FILE, tmp_path / "cache", progress=explicit.append)
        with download_progress(None):
            assert installed_progress() is None
        assert installed_progress() == installed.append
    assert installed_progress() is None
    assert installed == [] and explicit[-1].done == explicit[-1].total


def test_a_failed_mirror_is_followed_by_a_fresh_start(served_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("NNRUN_MIRRORS_MNIST", f"{served_mnist['bad']},{served_mnist['good']}")
    reports: list[DownloadProgress] = []
    fetch("mnist", FIRST_FILE, tmp_path / "cache", progress=reports.append)
    starts = [r.url for r in reports if r.done == 0]
    assert starts == [served_mnist["bad"] + FIRST_FILE, served_mnist["good"] + FIRST_FILE]
    assert reports[-1].url.startswith(served_mnist["good"]) and reports[-1].done == reports[-1].total


def test_cli_prints_a_line_per_download_on_stderr(served_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("NNRUN_MIRRORS_MNIST", served_mnist["good"])
    monkeypatch.setenv("NNRUN_DATA_DIR", str(tmp_path / "cache"))
    config = {"name": "dl", "data": {"dataset": "mnist", "validation_split": 0},
              "model": {"layers": [{"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]}}
    (tmp_path / "dl.yaml").write_text(yaml.safe_dump(config))
    train = ["train", str(tmp_path / "dl.yaml"), "--set", "train.epochs=1", "--runs-dir", str(tmp_path / "runs")]
    result = CliRunner().invoke(app, train)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("downloading ")]
    assert lines == [f"downloading mnist {name} from {served_mnist['good']}{name}" for name in DATASETS["mnist"].sha256]
    assert "downloading" not in result.stdout

    again = CliRunner().invoke(app, train)
    assert again.exit_code == 0 and "downloading" not in again.output


def report(done: int, total: int | None, url: str = "http://127.0.0.1:1/a/") -> DownloadProgress:
    return DownloadProgress("mnist", "file.gz", url + "file.gz", done, total)


def test_display_draws_a_transient_bar_on_a_terminal():
    screen = io.StringIO()
    display = DownloadDisplay(Console(file=screen, force_terminal=True, width=100))
    display(report(0, None))
    display(report(600, 1000))
    assert display.bar is not None and "file.gz" in screen.getvalue()
    display(report(1000, 1000))
    assert display.bar is None
    assert "downloading mnist file.gz from http://127.0.0.1:1/a/file.gz" in screen.getvalue()


def test_display_closes_a_failed_attempt_and_prints_only_lines_off_a_terminal():
    screen = io.StringIO()
    display = DownloadDisplay(Console(file=screen, force_terminal=True, width=100))
    display(report(0, None))
    display(report(300, 1000))
    display(report(0, None, url="http://127.0.0.1:1/b/"))
    assert display.bar is None
    display.close()

    plain = io.StringIO()
    display = DownloadDisplay(Console(file=plain, force_terminal=False, width=100))
    for done in (0, 500, 1000):
        display(report(done, 1000))
    assert display.bar is None
    assert plain.getvalue() == "downloading mnist file.gz from http://127.0.0.1:1/a/file.gz\n"
