"""Where things live and what a run folder records to reproduce it: the download cache folder,
the command line, timezone-aware times, the BLAS and the versions that decide the numbers."""

from __future__ import annotations

import json
import shlex
import sys
import types
from datetime import datetime

import numpy as np
import pytest
from typer.testing import CliRunner

from nnrun import __version__
from nnrun.cli import app
from nnrun.config import load_config
from nnrun.data.download import cache_root
from nnrun.experiment import resumed_summary, train_run
from nnrun.parallel import blas
from nnrun.runs import local_time
from tests.test_sweep import write_config


def read_summary(run_dir) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def assert_reproducible_record(summary: dict) -> None:
    assert datetime.fromisoformat(summary["started"]).utcoffset() is not None
    assert summary["versions"] == {"python": sys.version.split()[0], "numpy": np.__version__, "nnrun": __version__}
    assert summary["blas"] is None or set(summary["blas"]) == {"library", "version", "kernel", "threads"}


def test_the_cli_records_the_command_line(tmp_path, monkeypatch):
    config = write_config(tmp_path)
    args = ["train", str(config), "--set", "train.epochs=1", "--set", "optimizer={type: adam, lr: 0.01}", "-q",
            "--runs-dir", str(tmp_path / "runs")]
    monkeypatch.setattr(sys, "argv", ["/somewhere/.venv/bin/nnrun", *args])
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = read_summary(run_dir)
    assert summary["command"] == shlex.join(["nnrun", *args])
    assert shlex.split(summary["command"])[1:] == args
    assert_reproducible_record(summary)


def test_the_library_records_no_command(tmp_path):
    run_dir = train_run(load_config(write_config(tmp_path), ("train.epochs=1",)), tmp_path / "runs",
                        make_plots=False)
    summary = read_summary(run_dir)
    assert "command" not in summary
    assert_reproducible_record(summary)


def test_a_resumed_run_keeps_the_command_that_started_it():
    previous = {"command": "nnrun train exp.yaml", "started": "2026-11-30T10:15:00+01:00", "wall_seconds": 3.0}
    kept = resumed_summary(previous, local_time())
    assert kept["command"] == "nnrun train exp.yaml" and kept["started"] == previous["started"]
    assert "command" not in resumed_summary({}, local_time())


def test_blas_with_threadpoolctl_names_the_library_in_use_and_its_threads(monkeypatch):
    fake = types.ModuleType("threadpoolctl")
    fake.threadpool_info = lambda: [
        {"user_api": "openmp", "internal_api": "openmp", "version": None, "num_threads": 8},
        {"user_api": "blas", "internal_api": "openblas", "version": "0.3.27", "num_threads": 4,
         "architecture": "Haswell"}]
    monkeypatch.setitem(sys.modules, "threadpoolctl", fake)
    assert blas() == {"library": "openblas", "version": "0.3.27", "kernel": "Haswell", "threads": 4}


def test_blas_that_threadpoolctl_cannot_see_is_named_from_numpys_build(monkeypatch):
    fake = types.ModuleType("threadpoolctl")
    fake.threadpool_info = lambda: [{"user_api": "openmp", "internal_api": "openmp", "num_threads": 8}]
    monkeypatch.setitem(sys.modules, "threadpoolctl", fake)
    built = getattr(np.__config__, "CONFIG", {}).get("Build Dependencies", {}).get("blas")
    expected = ({"library": built["name"], "version": built.get("version"), "kernel": None, "threads": None}
                if built else None)
    assert blas() == expected


def test_the_cache_is_the_platforms_unless_nnrun_data_dir_says(tmp_path, monkeypatch):
    monkeypatch.delenv("NNRUN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert cache_root() == tmp_path / "xdg" / "nnrun"
    monkeypatch.setenv("NNRUN_DATA_DIR", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    assert cache_root(tmp_path / "given") == tmp_path / "given"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG is the Linux convention")
def test_the_default_cache_is_under_home_without_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("NNRUN_DATA_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_root() == tmp_path / ".cache" / "nnrun"
