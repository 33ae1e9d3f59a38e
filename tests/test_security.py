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
import zipfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from nnrun import sweep as S
from nnrun.cli import app
from nnrun.errors import DataError, DownloadError
from nnrun.status import Status
from tests.peak_memory import PeakMemory

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
    from nnrun.sweep.tuner import Tuner

    doc = S.read_sweep(sweep_copy)
    tuner = Tuner(sweep_copy, doc)
    good = zipped({"summary.json": b"{}"})
    bad, expected = BAD_ARCHIVES[case]
    base = {"status": Status.COMPLETED, "metric": 0.5, "best_epoch": 1, "seconds": 1.0, "error": None}
    record_result(tuner, dict(base, index=0, zip=bad, run_dir="trials/t000-lr=0.01"), S.SweepReporter())
    record_result(tuner, dict(base, index=1, zip=good, run_dir="trials/t001-lr=0.1"), S.SweepReporter())
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


@pytest.mark.parametrize("how", ["grid", "random"])
def test_a_grid_or_random_search_over_the_trial_limit_is_refused(tmp_path, how):
    """Ten params of ten values (or --random 10**9) used to plan every trial first."""
    config = tmp_path / "tiny.yaml"
    params = {f"model.layers[1].init_params.p{i}": list(range(10)) for i in range(9)}
    config.write_text(yaml.safe_dump({**TINY, "sweep": {"params": params}}))
    extra = ["--random", "1000000000"] if how == "random" else []
    done = bounded_nnrun("sweep", str(config), "--dry-run", *extra)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    expected = "--random 1000000000: 1,000,000,000 values" if extra else "the grid (10 x 10 x 10"
    assert expected in done.stderr and "a sweep runs at most 10,000 trials" in done.stderr


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


# -- a run folder to tamper with ------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A real run of the tiny MLP (one epoch on the bundled digits), without plots."""
    from nnrun.config import load_config
    from nnrun.experiment import train_run

    root = tmp_path_factory.mktemp("run")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY, sort_keys=False))
    return train_run(load_config(config), root / "runs", make_plots=False)


@pytest.fixture
def runs_dir(trained_run, tmp_path) -> Path:
    """A runs folder holding a copy of the trained run (as runs/<its folder name>)."""
    runs = tmp_path / "runs"
    shutil.copytree(trained_run, runs / trained_run.name)
    return runs


def plant(runs: Path, folder: str, trained_run: Path, **summary) -> Path:
    """Another copy of the run, as runs/<folder>, its summary.json's keys set to `summary`."""
    run = runs / folder
    shutil.copytree(trained_run, run)
    doc = json.loads((run / "summary.json").read_text()) | summary
    (run / "summary.json").write_text(json.dumps(doc))
    return run


# -- text from files reaches the terminal as text -------------------------------------------
MARKUP = "[/][bold red]x[/]"
ESCAPE = "\x1b[2J\x1b]0;pwned\x07"


def test_runs_and_compare_show_markup_and_escapes_as_text(runs_dir, trained_run):
    """`nnrun compare` crashed on a status holding [/] (rich's MarkupError), and `nnrun runs` sent
    escape sequences from summary.json to the terminal."""
    planted = plant(runs_dir, "20990101-000000-other", trained_run, name=MARKUP, status=ESCAPE + MARKUP)
    listing = invoke("runs", "--runs-dir", runs_dir)
    compared = invoke("compare", planted, runs_dir / trained_run.name, "--out", runs_dir.parent)
    for result in (listing, compared):
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x07" not in result.output
        assert "\\x1b[2J\\x1b]0;pwned\\x07" in result.output and MARKUP in result.output


def test_evaluate_shows_class_names_from_the_run_as_text(runs_dir, trained_run):
    run = runs_dir / trained_run.name
    summary = json.loads((run / "summary.json").read_text())
    summary["class_names"] = [MARKUP, ESCAPE, *map(str, range(2, 10))]
    (run / "summary.json").write_text(json.dumps(summary))
    result = invoke("evaluate", run, "--no-plots")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and MARKUP in result.output and "\\x1b[2J" in result.output


def test_a_sweep_table_shows_labels_and_errors_as_text(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "sweep": {"params": {"optimizer.lr": {MARKUP: 0.01, ESCAPE: -1.0}}}}))
    result = runner.invoke(app, ["sweep", str(config), "--dry-run"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert MARKUP in result.output and "\\x1b[2J" in result.output and "\x1b" not in result.output


def test_validate_shows_a_config_path_with_brackets(tmp_path):
    folder = tmp_path / "[bold]odd [red]"
    folder.mkdir()
    (folder / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    result = invoke("validate", folder / "tiny.yaml")
    assert result.exit_code == 0, result.output
    assert f"{folder / 'tiny.yaml'}: valid" in result.output


# -- one unreadable file never hides or breaks the rest -------------------------------------
MALFORMED_SUMMARIES = {
    "best is a list": {"best": [1, 2]},
    "final is a string": {"final": "x"},
    "status a number, epochs text": {"status": 5, "epochs_run": "many", "best_epoch": "x"},
    "class names not text": {"class_names": [1, {"a": 2}]},
    "monitor an object": {"monitor": {"x": 1}, "started": ["2026"]},
    "everything null": {k: None for k in ("name", "status", "best", "final", "started", "wall_seconds")},
}


def test_a_malformed_summary_never_hides_the_other_runs(runs_dir, trained_run):
    """A summary whose `best` was a list (or a deeply nested one, before) failed `nnrun runs`
    for the whole folder."""
    for i, (case, fields) in enumerate(MALFORMED_SUMMARIES.items()):
        plant(runs_dir, f"2026010{i}-000000-{case.replace(' ', '-')}", trained_run, **fields)
    deep = runs_dir / "20260200-000000-deep"
    shutil.copytree(trained_run, deep)
    (deep / "summary.json").write_text("[" * 100_000 + "]" * 100_000)
    for args in (["runs"], ["runs", "--json"], ["runs", "--csv"], ["runs", "--all"]):
        result = invoke(*args, "--runs-dir", runs_dir)
        assert result.exit_code == 0, (args, result.output)
    records = json.loads(invoke("runs", "--json", "--runs-dir", runs_dir).stdout)
    assert len(records) == len(MALFORMED_SUMMARIES) + 2
    assert {r["folder"]: r["status"] for r in records}["20260200-000000-deep"] == "unreadable"
    run = runs_dir / trained_run.name
    for planted in sorted(runs_dir.iterdir()):
        if planted != run:
            result = invoke("compare", planted, run, "--out", runs_dir.parent, "--json")
            assert result.exit_code == 0, (planted.name, result.output)


def test_latest_is_chosen_by_folder_name_not_by_the_summary(runs_dir, trained_run):
    """`latest` chose by the summary's `started`, so a planted folder won."""
    from nnrun.evaluate import resolve_run

    plant(runs_dir, "20000101-000000-planted", trained_run, started="9999-12-31T23:59:59")
    newest = plant(runs_dir, "20991231-235959-newest", trained_run, started="2000-01-01T00:00:00")
    assert resolve_run("latest", runs_dir) == newest
    listed = [r["folder"] for r in json.loads(invoke("runs", "--json", "--runs-dir", runs_dir).stdout)]
    assert listed == ["20991231-235959-newest", trained_run.name, "20000101-000000-planted"]


def test_compare_reads_config_yaml_with_the_bounded_reader(runs_dir, trained_run, tmp_path):
    """compare read config.yaml with yaml.safe_load, so an alias bomb in a shared run folder
    expanded into millions of keys; now it is refused and the run's config marked unreadable."""
    bombed = plant(runs_dir, "20260101-000000-bombed", trained_run)
    levels = "".join(f"l{i + 1}: &l{i + 1} [" + ", ".join([f"*l{i}"] * 10) + "]\n" for i in range(6))
    (bombed / "config.yaml").write_text("l0: &l0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n" + levels)
    started = time.perf_counter()
    with PeakMemory() as peak:
        result = invoke("compare", bombed, runs_dir / trained_run.name, "--out", tmp_path, "--json")
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    assert seconds < 10 and peak.bytes < 100 << 20, (seconds, peak.bytes)
    records = json.loads(result.stdout)
    assert set(records[0]["config"].values()) == {"(unreadable)"}


# -- command-line names and written commands ------------------------------------------------
@pytest.mark.parametrize("name", ["yes", "2024", "0x10", "null", "1e3"])
def test_command_line_names_are_strings(tmp_path, name):
    """`--name yes` was read as YAML (true) and refused as "not a valid string"."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    result = invoke("train", config, "--name", name, "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.endswith(f"-{name}") and json.loads((run / "summary.json").read_text())["name"] == name


def test_a_bad_command_line_name_names_the_option(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    one_error(invoke("train", config, "--name", "../up", "--runs-dir", tmp_path / "runs"), "--name '../up'")
    assert not (tmp_path / "runs").exists()


def test_reproduce_commands_are_shell_quoted(tmp_path):
    """A config path with a space or $(...) gave a reproduce command that ran something else."""
    folder = tmp_path / "my configs $(touch pwned) `x`"
    folder.mkdir()
    config = folder / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    sweep_dir = S.run_sweep(str(config), runs_dir=tmp_path / "runs", workers=1, trial_plots=False,
                            plots=False, params=["optimizer.lr=0.01,0.1"])
    line = next(l for l in (sweep_dir / "best.yaml").read_text().splitlines() if l.startswith("# reproduce: "))
    argv = shlex.split(line.removeprefix("# reproduce: "))
    assert argv[:3] == ["nnrun", "train", str(config)] and argv[3] == "--set"
    dry = invoke("sweep", config, "-p", "optimizer.lr=0.01", "--dry-run")
    shown = next(l for l in dry.output.splitlines() if l.startswith("t000: "))
    assert shlex.split(shown.removeprefix("t000: "))[:3] == ["nnrun", "train", str(config)]


def test_a_config_path_with_a_newline_keeps_best_yaml_a_comment(tmp_path):
    folder = tmp_path / "two\nlines: 1"
    folder.mkdir()
    config = folder / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    sweep_dir = S.run_sweep(str(config), runs_dir=tmp_path / "runs", workers=1, trial_plots=False,
                            plots=False, params=["optimizer.lr=0.01"])
    best = yaml.safe_load((sweep_dir / "best.yaml").read_text())
    assert "lines" not in best and best["name"] == "tiny"


# -- no writes through a link out of the run folder -----------------------------------------
def test_evaluate_never_writes_plots_through_a_link_out_of_the_run(runs_dir, trained_run, tmp_path):
    """`nnrun evaluate` wrote its plots through a plots/ link pointing outside the run folder."""
    run = runs_dir / trained_run.name
    victim = canary(tmp_path / "victim")
    (run / "plots").symlink_to(victim, target_is_directory=True)
    before = tree(run)
    one_error(invoke("evaluate", run), f"{run / 'plots'}: leads outside {run}")
    assert tree(victim) == {"keep.txt": b"mine\n"} and tree(run) == before
    assert invoke("evaluate", run, "--no-plots").exit_code == 0  # nothing goes into plots/ then
    assert tree(victim) == {"keep.txt": b"mine\n"}


def test_a_plots_link_inside_the_run_is_fine(runs_dir, trained_run):
    run = runs_dir / trained_run.name
    (run / "pictures").mkdir()
    (run / "plots").symlink_to(run / "pictures", target_is_directory=True)
    assert invoke("evaluate", run).exit_code == 0
    assert (run / "pictures" / "confusion_matrix-test.png").is_file()


# -- downloads: a deadline for the whole file, a size limit, nothing left behind ------------
class TrickleHandler(http.server.BaseHTTPRequestHandler):
    """Serves `size` bytes (announced when `announce`), one every `pause` seconds after the first
    `fast` ones; stops when the client goes away."""

    size, announce, pause, fast = 100_000, True, 0.0, 0

    def do_GET(self):
        self.send_response(200)
        if self.announce:
            self.send_header("Content-Length", str(self.size))
        self.end_headers()
        try:
            self.wfile.write(bytes(min(self.fast, self.size)))
            for _ in range(self.size - self.fast):
                self.wfile.write(b"\0")
                self.wfile.flush()
                time.sleep(self.pause)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format, *args):
        pass


@pytest.fixture
def trickle(monkeypatch):
    """Start a TrickleHandler server with the given settings; returns its base URL."""
    servers = []
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    def start(**settings) -> str:
        handler = type("Handler", (TrickleHandler,), settings)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def fetch_from(url: str, cache: Path, monkeypatch) -> tuple[Exception, list]:
    """fetch() the first MNIST file from url alone; (the error, the progress reports)."""
    from dataclasses import replace

    from nnrun.data.catalog import DATASETS
    from nnrun.data.download import fetch

    monkeypatch.setitem(DATASETS, "mnist", replace(DATASETS["mnist"], mirrors=(url,)))
    monkeypatch.delenv("NNRUN_MIRRORS_MNIST", raising=False)
    reports = []
    with pytest.raises(DownloadError) as caught:
        fetch("mnist", "t10k-labels-idx1-ubyte.gz", cache, progress=reports.append)
    return caught.value, reports


def test_a_server_sending_a_byte_at_a_time_hits_the_deadline(trickle, tmp_path, monkeypatch):
    """A byte a second kept a download going for ever (the read timeout never fired)."""
    from nnrun.data import download

    monkeypatch.setattr(download, "DOWNLOAD_DEADLINE_SECONDS", 1.0)
    started = time.perf_counter()
    error, _ = fetch_from(trickle(size=10_000, pause=0.02), tmp_path / "cache", monkeypatch)
    assert time.perf_counter() - started < 5
    assert "not complete after 1.0 s (the server is too slow)" in str(error)
    assert tree(tmp_path / "cache") == {}  # no partial or temporary file left


@pytest.mark.parametrize("announce", [True, False], ids=["content-length", "no-length"])
def test_an_oversize_response_is_refused_before_it_is_stored(trickle, tmp_path, monkeypatch, announce):
    """An oversize response was stored whole before its checksum refused it."""
    from nnrun.data import download

    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 50_000)
    error, reports = fetch_from(trickle(size=2_000_000, fast=2_000_000, announce=announce), tmp_path / "cache",
                                monkeypatch)
    assert tree(tmp_path / "cache") == {}
    if announce:  # refused on the announced length: not one byte read
        assert "the server announces 2,000,000 bytes" in str(error) and [r.done for r in reports] == [0]
    else:  # read no further than the limit
        assert "larger than 0 MiB" in str(error) or "larger than" in str(error)
        assert max(r.done for r in reports) <= 50_000


# -- text cells in CSV files a spreadsheet opens --------------------------------------------
def test_csv_safe_cell():
    from nnrun.fileio import csv_safe_cell

    for formula in ("=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "=1"):
        assert csv_safe_cell(formula) == "'" + formula
    for kept in ("-0.5", "+1e-05", "-inf", "relu", "", 3, -2.5, None, "a=b"):
        assert csv_safe_cell(kept) == kept


def test_text_cells_that_start_a_formula_are_written_as_text(tmp_path):
    import csv

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "name": "sweep",  # (keys sorted: "-x" first)
                                      "sweep": {"params": {"optimizer.lr": {"=HYPERLINK(1)": 0.01, "-x": 0.1}}}}))
    sweep_dir = S.run_sweep(S.plan_sweep(config), runs_dir=tmp_path / "runs", workers=1, trial_plots=False, plots=False)
    rows = list(csv.reader((sweep_dir / "sweep.csv").open()))
    assert sorted(r[1] for r in rows[1:]) == ["'-x", "'=HYPERLINK(1)"]
    assert all(not cell.startswith(("=", "+", "@")) for row in rows for cell in row)
    (trial,) = (p for p in (sweep_dir / "trials").iterdir() if "HYPERLINK" in p.name)
    summary = json.loads((trial / "summary.json").read_text())
    (trial / "summary.json").write_text(json.dumps(summary | {"name": "=cmd|' /C calc'!A0"}))
    listed = list(csv.DictReader(io.StringIO(invoke("runs", "--all", "--csv", "--runs-dir", tmp_path / "runs").stdout)))
    assert "'=cmd|' /C calc'!A0" in [r["name"] for r in listed]
    metrics = list(csv.DictReader((trial / "metrics.csv").open()))
    assert float(metrics[0]["train_loss"]) > 0  # numbers stay numbers


# -- data files: labels in range, gzip text bounded -----------------------------------------
@pytest.mark.parametrize("label", ["10000", "1000000000", "1e300", "-1", "2.5"])
def test_csv_labels_are_class_indices_below_ten_thousand(tmp_path, label):
    """A CSV label of 1000000000 built a class list up to it; the range is now 0..9999."""
    data = tmp_path / "data.csv"
    data.write_text("1,2,0\n3,4,1\n5,6," + label + "\n")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**TINY, "data": {"train": {"csv": "data.csv"}, "validation_split": 0}}))
    with PeakMemory() as peak:
        result = invoke("validate", config)
    one_error(result, f"{data}: label", "at row 3 is not a class index", "below 10000")
    assert peak.bytes < 100 << 20


def test_a_gzip_csv_bomb_is_refused_without_inflating(tmp_path, monkeypatch):
    """A gzip CSV was decompressed whole before anything was checked."""
    from nnrun.data import idx
    from nnrun.data.tabular import load_csv

    monkeypatch.setattr(idx, "MAX_TEXT_BYTES", 4 << 20)
    bomb = tmp_path / "bomb.csv.gz"
    compressor = gzip.GzipFile(bomb, "wb")
    for _ in range(64):
        compressor.write(b"0,0\n" * (1 << 18))  # 64 MiB of text in all
    compressor.close()
    with PeakMemory() as peak, pytest.raises(DataError, match=r"bomb\.csv\.gz: decompresses to more than 4 MiB"):
        load_csv(bomb)
    assert peak.bytes < 16 << 20, peak.bytes


def test_a_gzip_idx_of_zeros_costs_nothing(tmp_path):
    """Already right before this issue (the header is read first and checked, then the data
    streamed up to the declared size): a 2 MB gzip of zeros is refused at once."""
    from nnrun.data.idx import read_idx

    path = tmp_path / "zeros.idx.gz"
    with gzip.GzipFile(path, "wb", compresslevel=1) as compressor:
        for _ in range(64):
            compressor.write(bytes(1 << 20))
    started = time.perf_counter()
    with PeakMemory() as peak, pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)
    assert time.perf_counter() - started < 1 and peak.bytes < 8 << 20


# -- the code itself ------------------------------------------------------------------------
def test_no_eval_or_exec_in_the_package():
    """config.py called eval() on the engine's annotation strings; typing.get_type_hints reads
    them now (the schema it builds is checked by tests/test_config.py)."""
    import ast

    calls = [f"{path.relative_to(ROOT)}:{node.lineno}" for path in sorted((ROOT / "nnrun").rglob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec")]
    assert calls == []


def test_lint_runs_bandit_over_the_package(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("needs make")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    planned = subprocess.run(["make", "--no-print-directory", "-n", "lint"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, check=True).stdout.splitlines()
    assert ".venv/bin/bandit -q -r nnrun" in planned
    import tomllib

    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    assert any(requirement.startswith("bandit") for requirement in dev)


def test_bandit_finds_nothing_in_the_package():
    """Each finding is fixed, or justified beside it with `# nosec` and the reason."""
    pytest.importorskip("bandit", reason="bandit comes with the dev extra (make install-dev)")
    done = subprocess.run([sys.executable, "-m", "bandit", "-q", "-r", str(ROOT / "nnrun")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


# -- report.html shows the run folder's files, within limits --------------------------------
def test_the_report_embeds_no_huge_or_outside_picture(runs_dir, trained_run, tmp_path):
    """report.html embedded every plots/*.png whole: a 200 MB file, a link to a file outside
    the run (its content then travelled with the report)."""
    run = runs_dir / trained_run.name
    (run / "plots").mkdir(exist_ok=True)
    with open(run / "plots" / "huge.png", "wb") as f:
        f.truncate(200 << 20)  # sparse: no disk space, 200 MB to read
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret " * 10)
    (run / "plots" / "leak.png").symlink_to(secret)
    with PeakMemory() as peak:
        assert invoke("evaluate", run, "--no-plots").exit_code == 0
    page = (run / "report.html").read_text()
    assert len(page) < 10 << 20 and peak.bytes < 100 << 20, (len(page), peak.bytes)
    import base64

    assert base64.b64encode(secret.read_bytes()).decode() not in page


def test_a_damaged_evaluation_file_never_breaks_the_report(runs_dir, trained_run):
    run = runs_dir / trained_run.name
    assert invoke("evaluate", run, "--no-plots").exit_code == 0
    doc = json.loads((run / "evaluation-test.json").read_text())
    doc.update(per_class=[1, 2], macro_avg=[], one_vs_rest="x", overrides=[1, None], top_confusions={"a": 1})
    (run / "evaluation-test.json").write_text(json.dumps(doc))
    (run / "evaluation-../../x.json".replace("/", "_")).write_text("{}")
    result = invoke("evaluate", run, "--no-plots", "--split", "validation")
    assert result.exit_code == 0, result.output
    page = (run / "report.html").read_text()
    assert "evaluation-test.json cannot be shown" in page and "Evaluation: validation split" in page
