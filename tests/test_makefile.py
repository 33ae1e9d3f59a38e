"""The Makefile from a fresh clone (`make -n`, nothing run): `make demo` installs the runtime
dependencies only, `make test` adds the test tools, alone or after the demo; the demo ends with
what to try next."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


@pytest.fixture
def clone(tmp_path) -> Path:
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def planned(folder: Path, target: str, *variables: str) -> list[str]:
    """The commands `make target` would run there (also when the tests run under `make test`)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "WITH_TORCH")}
    result = subprocess.run(["make", "--no-print-directory", "-n", target, *variables], cwd=folder, env=env,
                            capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def installs(commands: list[str]) -> list[str]:
    return [c for c in commands if "pip install" in c and "--upgrade pip" not in c]


def test_demo_installs_the_runtime_only_and_says_what_next(clone):
    commands = planned(clone, "demo")
    assert commands[0].endswith("-m venv .venv")
    assert installs(commands) == [".venv/bin/pip install --quiet -e ."]
    assert ".venv/bin/nnrun train configs/quickstart.yaml" in commands
    next_steps = "\n".join(commands[commands.index(".venv/bin/nnrun train configs/quickstart.yaml"):])
    for command in ("nnrun evaluate latest", "nnrun lr-find configs/", "nnrun sweep configs/"):
        assert command in next_steps


def test_test_alone_creates_the_venv_and_installs_everything(clone):
    commands = planned(clone, "test")
    assert commands[0].endswith("-m venv .venv")
    assert installs(commands) == [".venv/bin/pip install --quiet -e .", ".venv/bin/pip install --quiet -e '.[dev]'"]
    assert commands.index(".venv/bin/ruff check nnrun tests experiments") < commands.index(".venv/bin/python -m pytest")


def test_test_after_demo_adds_the_dev_tools_only(clone):
    (clone / ".venv" / "bin").mkdir(parents=True)
    (clone / ".venv" / "bin" / "python").touch()
    (clone / ".venv" / ".installed-runtime").touch()  # what `make demo` leaves
    commands = planned(clone, "test")
    assert installs(commands) == [".venv/bin/pip install --quiet -e '.[dev]'"]
    assert not any("-m venv" in c for c in commands)
    (clone / ".venv" / ".installed-dev").touch()
    assert installs(planned(clone, "test")) == []
    assert installs(planned(clone, "demo")) == []


def test_ci_runs_make_test_with_pytorch():
    lines = [line.split("#")[0].strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "make test WITH_TORCH=1" in lines


def test_make_test_installs_pytorch_only_when_asked(clone):
    assert not any("torch" in c for c in planned(clone, "test"))
    assert any(c.endswith("pip install --quiet 'torch==2.13.0'") for c in planned(clone, "test", "WITH_TORCH=1"))


def test_bench_runs_nnrun_bench_against_pytorch_when_it_is_there_then_the_sweep_benchmark(clone):
    commands = planned(clone, "bench")
    bench = "\n".join(commands)
    assert "if .venv/bin/python -c 'import torch'" in bench and "compare='--compare torch'" in bench
    assert "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/nnrun bench $compare" in bench
    assert commands[-1] == "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python experiments/bench_sweep.py"
    assert not any("benchmark.py" in c for c in commands)
    assert not (ROOT / "experiments" / "benchmark.py").exists()


def test_mutation_runs_mutmut_over_the_engine_with_every_engine_test_and_make_test_does_not(clone):
    import tomllib

    assert [c for c in planned(clone, "mutation") if "mutmut" in c] == [".venv/bin/mutmut run",
                                                                          ".venv/bin/mutmut results"]
    assert not any("mutmut" in c for c in planned(clone, "test"))
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    assert config["only_mutate"] == ["nnrun/nn/*"]
    engine_tests = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_nn_*.py"))
    assert sorted(config["pytest_add_cli_args_test_selection"]) == engine_tests
