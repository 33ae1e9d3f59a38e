"""What nnrun trusts (issue 15): files nobody here wrote. A shared sweep or run folder, a config
from a forum, a downloaded dataset, a Dask worker's result: none of them can make nnrun delete or
write outside the folder it works in, cost gigabytes for a small file, crash a listing, or put
markup or terminal escapes on the screen. Each test here failed on the code before its fix
(unless its docstring says the behaviour was already right and the test pins it)."""

from __future__ import annotations

import gzip
import http.server
import io
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import threading
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nnrun import sweep as S
from nnrun.cli import app
from nnrun.errors import ConfigError, DataError, DownloadError
from nnrun.status import Status

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
NO_COLUMNS = {"COLUMNS": None}
TINY = {"name": "tiny", "seed": 3, "data": {"dataset": "digits", "validation_split": 0.2},
        "model": {"layers": [{"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]},
        "optimizer": {"type": "adam", "lr": 0.01}, "train": {"epochs": 1, "batch_size": 256}}


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], env=NO_COLUMNS)


def one_error(result, *fragments: str, exit_code: int = 2) -> str:
    """The command failed with one line, `error: ...`, holding every fragment; no traceback."""
    assert result.exit_code == exit_code, (result.exit_code, result.output)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output and "unexpected" not in result.output, result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under folder (not following links) and its content."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def canary(folder: Path) -> Path:
    """A folder beside the one nnrun works in, with a file in it: it must stay exactly so."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "keep.txt").write_text("mine\n")
    return folder


def bounded_nnrun(*args: str, memory: int = 1 << 30, seconds: float = 60) -> subprocess.CompletedProcess:
    """`python -m nnrun ARGS` in a process that may use at most `memory` bytes of address space
    beyond its start (a command that would take gigabytes fails instead of swapping the machine)."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory + (2 << 30), memory + (2 << 30)))

    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "nnrun", *args], capture_output=True, text=True, env=env,
                          timeout=seconds, preexec_fn=limit)


# -- a sweep folder to tamper with ----------------------------------------------------------
@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory) -> Path:
    """A real two-trial sweep on the bundled digits, finished (one epoch a trial)."""
    root = tmp_path_factory.mktemp("sweep")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY, sort_keys=False))
    return S.run_sweep(str(config), runs_dir=root / "runs", workers=1, trial_plots=False, plots=False,
                       params=["optimizer.lr=0.01,0.1"])


@pytest.fixture
def sweep_copy(finished_sweep, tmp_path) -> Path:
    """A copy of the finished sweep at tmp_path/work/runs/<sweep>, with a canary at tmp_path/victim."""
    copy = tmp_path / "work" / "runs" / finished_sweep.name
    shutil.copytree(finished_sweep, copy)
    canary(tmp_path / "victim")
    return copy


def edit_sweep(sweep_dir: Path, change) -> None:
    doc = json.loads((sweep_dir / "sweep.json").read_text())
    change(doc)
    (sweep_dir / "sweep.json").write_text(json.dumps(doc))


def pending(doc: dict, **fields) -> None:
    doc["trials"][0].update({"status": "pending", **fields})


# -- sweep --resume trusts nothing in sweep.json --------------------------------------------
HOSTILE_SWEEP_FIELDS = {  # case: (change(doc, victim folder), the key the error names)
    "trial name up and out": (lambda d, v: pending(d, name="../../../victim"), "trials[0].name"),
    "trial name absolute": (lambda d, v: pending(d, name=str(v)), "trials[0].name"),
    "trial name through a subfolder": (lambda d, v: pending(d, name="t000/../../../../victim"), "trials[0].name"),
    "trial name of another trial": (lambda d, v: pending(d, name="t001-lr=0.1"), "trials[0]"),
    "run_dir outside": (lambda d, v: d["trials"][0].update(run_dir="../../../victim"), "trials[0]"),
    "base_dir relative": (lambda d, v: d.update(base_dir="../victim"), "base_dir"),
    "trials out of order": (lambda d, v: d["trials"][1].update(index=0), "trials"),
    "unknown status": (lambda d, v: pending(d, status="[red]x"), "trials[0].status"),
    "unknown metric": (lambda d, v: d.update(metric="[/]"), "metric"),
    "trials not a list": (lambda d, v: d.update(trials={"a": 1}), "trials"),
    "a trial not an object": (lambda d, v: d["trials"].__setitem__(0, "t000"), "trials[0]"),
    "too many trials": (lambda d, v: d.update(trials=d["trials"] * 6000), "trials"),
}


@pytest.mark.parametrize("case", HOSTILE_SWEEP_FIELDS)
def test_sweep_resume_checks_the_whole_sweep_json_before_acting(sweep_copy, tmp_path, case):
    """A sweep.json whose trial name held `..` had a folder beside the sweep deleted and replaced."""
    change, key = HOSTILE_SWEEP_FIELDS[case]
    victim = tmp_path / "victim"
    edit_sweep(sweep_copy, lambda doc: change(doc, victim))
    before = tree(sweep_copy)
    line = one_error(invoke("sweep", "--resume", sweep_copy, "-q", "--no-trial-plots"),
                     str(sweep_copy / "sweep.json"), key)
    assert "not written by nnrun" in line
    assert tree(victim) == {"keep.txt": b"mine\n"}
    assert tree(sweep_copy) == before  # nothing touched, not even sweep.json


def test_sweep_resume_refuses_a_trials_folder_that_links_outside(sweep_copy, tmp_path):
    victim = tmp_path / "victim"
    shutil.copytree(sweep_copy / "trials", victim / "trials")
    shutil.rmtree(sweep_copy / "trials")
    (sweep_copy / "trials").symlink_to(victim / "trials")
    edit_sweep(sweep_copy, pending)
    before = tree(victim)
    one_error(invoke("sweep", "--resume", sweep_copy, "-q"), "trials", "leads outside", "symbolic link")
    assert tree(victim) == before


def test_sweep_resume_still_runs_what_is_missing(sweep_copy):
    """The checks refuse nothing nnrun wrote: a pending trial is trained again."""
    edit_sweep(sweep_copy, pending)
    shutil.rmtree(sweep_copy / "trials" / "t000-lr=0.01")
    result = invoke("sweep", "--resume", sweep_copy, "-q", "--no-trial-plots")
    assert result.exit_code == 0, result.output
    doc = json.loads((sweep_copy / "sweep.json").read_text())
    assert [t["status"] for t in doc["trials"]] == ["completed", "completed"]
    assert (sweep_copy / "trials" / "t000-lr=0.01" / "weights.json").is_file()


# -- a Dask worker's result -----------------------------------------------------------------
def zipped(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def declared_size_bomb() -> bytes:
    """A zip whose one member says it unpacks to 4 GiB."""
    data = bytearray(zipped({"weights.json": b"0" * 1000}))
    for header in (b"PK\x03\x04", b"PK\x01\x02"):  # local header and central directory
        at = data.index(header)
        offset = at + (22 if header == b"PK\x03\x04" else 24)
        data[offset:offset + 4] = (0xFFFFFFF0).to_bytes(4, "little")
    return bytes(data)


BAD_ARCHIVES = {
    "not a zip": (b"this is not a zip", "not a readable zip"),
    "a member going up": (zipped({"../../../victim/evil.txt": b"x"}), "unsafe path"),
    "an absolute member": (zipped({"/tmp/evil.txt": b"x"}), "unsafe path"),
    "too many files": (zipped({f"f{i}": b"" for i in range(1001)}), "1,001 files"),
    "declared 4 GiB": (declared_size_bomb(), "GiB"),
    "not bytes": ("a string", "not a zip"),
}


@pytest.mark.parametrize("case", BAD_ARCHIVES)
def test_a_bad_trial_archive_fails_that_trial_only(sweep_copy, tmp_path, case, monkeypatch):
    """One trial's unreadable or oversized zip used to abort the whole sweep."""
    from nnrun.sweep.run import record_result

    doc = S.read_sweep(sweep_copy)
    good = zipped({"summary.json": b"{}"})
    bad, expected = BAD_ARCHIVES[case]
    base = {"status": Status.COMPLETED, "metric": 0.5, "best_epoch": 1, "seconds": 1.0, "error": None}
    record_result(sweep_copy, doc, dict(base, index=0, zip=bad, run_dir="trials/t000-lr=0.01"), S.SweepReporter())
    record_result(sweep_copy, doc, dict(base, index=1, zip=good, run_dir="trials/t001-lr=0.1"), S.SweepReporter())
    first, second = doc["trials"]
    assert first["status"] == "failed" and expected in first["error"] and first["run_dir"] is None
    assert second["status"] == "completed" and (sweep_copy / "trials" / "t001-lr=0.1" / "summary.json").is_file()
    assert not (sweep_copy / "trials" / "t000-lr=0.01").exists()
    assert tree(tmp_path / "victim") == {"keep.txt": b"mine\n"} and not Path("/tmp/evil.txt").exists()
    assert S.read_sweep(sweep_copy)["trials"][0]["status"] == "failed"


def test_a_worker_result_for_another_trial_is_a_crash():
    from nnrun.sweep.executors import result_of

    class Done:
        def __init__(self, value):
            self.value = value

        def result(self):
            return self.value

    job = {"index": 0, "name": "t000-lr=0.1"}
    ok = {"index": 0, "status": "completed", "metric": 0.5, "best_epoch": 1, "seconds": 1.0,
          "run_dir": "trials/t000-lr=0.1", "error": None}
    assert result_of(Done(ok), job) == ok
    for other in (dict(ok, index=1), dict(ok, run_dir="../../x"), dict(ok, status="[x]"), "junk",
                  dict(ok, metric="0.5")):
        assert result_of(Done(other), job)["status"] == Status.CRASHED


# -- a sweep plans what fits in memory ------------------------------------------------------
@pytest.mark.parametrize("spec", ["int:1:1000000000", "log:1e-5:1:1000000000", "lin:0:1:1000000000"])
def test_a_range_of_a_billion_values_is_refused_before_it_is_built(tmp_path, spec):
    """A few characters of range used to become a list of a billion values (gigabytes)."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    started = time.perf_counter()
    done = bounded_nnrun("sweep", str(config), "-p", f"train.batch_size={spec}", "--dry-run")
    assert done.returncode == 2, done.stderr
    assert "1,000,000,000 values; a sweep runs at most 10,000 trials" in done.stderr
    assert time.perf_counter() - started < 30 and "Traceback" not in done.stderr


def test_a_grid_or_random_search_over_the_trial_limit_is_refused(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "sweep": {"params": {f"model.layers[1].init_params.p{i}": list(range(10))
                                                                  for i in range(8)}}}))
    with pytest.raises(ConfigError, match=r"the grid \(10 x 10 x .*\): 100,000,000 values"):
        S.plan_sweep(config)
    with pytest.raises(ConfigError, match="--random 20000: 20,000 values"):
        S.plan_sweep(config, random=20000)


def test_an_alias_bomb_in_sweep_params_is_refused_at_load(tmp_path):
    """Already right before this issue (the YAML reader bounds what aliases add); pinned here
    for sweep.params, where the issue found it."""
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    text = yaml.safe_dump(TINY) + "sweep:\n  params:\n    optimizer.lr: *i\n"
    config = tmp_path / "bomb.yaml"
    config.write_text("x-anchors:\n" + "".join("  " + line + "\n" for line in bomb.splitlines()) + text)
    for command in ("validate", "sweep"):
        started = time.perf_counter()
        one_error(invoke(command, config), str(config), "aliases expand to more than 10,000 values")
        assert time.perf_counter() - started < 5
