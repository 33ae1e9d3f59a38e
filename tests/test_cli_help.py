"""The command line's help as a user reads it at 80 columns: flags without a type, choices listed
and completed by the shell, examples that fit, NNRUN_RUNS_DIR for every --runs-dir."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from nnrun.cli import app
from nnrun.cli.common import Executor, ExportFormat, Logger, Metric, Mode, Recipe, Split
from nnrun.evaluate import SPLITS
from nnrun.export import FORMATS
from nnrun.images import RECIPES
from nnrun.metrics import RUN_METRICS
from tests.test_sweep import write_config

runner = CliRunner()
COMMANDS = ["validate", "check", "schema", "train", "evaluate", "runs", "compare", "sweep", "lr-find",
            "bench", "predict", "export"]
RUNS_DIR_COMMANDS = ["train", "evaluate", "runs", "compare", "sweep", "lr-find", "predict", "export"]


def help_text(*command: str) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


def examples_of(command: str) -> list[str]:
    (info,) = [c for c in app.registered_commands if (c.name or c.callback.__name__) == command]
    return [line.strip() for line in info.epilog.split("Examples:", 1)[1].splitlines() if line.strip()]


@pytest.mark.parametrize("command", [[], *[[c] for c in COMMANDS]], ids=["nnrun", *COMMANDS])
def test_flags_show_no_type(command):
    text = help_text(*command)
    assert "<bool>" not in text
    assert re.search(r"--help\s+Show this message", text)


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_shows_its_examples_whole_at_80_columns(command):
    text = help_text(command)
    examples = examples_of(command)
    assert examples and all(line.startswith("nnrun ") for line in examples)
    for line in examples:
        assert line in text, f"{command} --help cuts or wraps the example {line!r}"
    assert max(map(len, text.splitlines())) <= 80


@pytest.mark.parametrize(("command", "option", "choices"), [
    ("evaluate", "--split", "<test|validation|train>"),
    ("sweep", "--mode", "<max|min>"),
    ("sweep", "--executor", "<local|dask>"),
    ("train", "--log", "<tensorboard|mlflow>"),
    ("predict", "--recipe", "<mnist|digits|resize>"),
    ("export", "--format", "<onnx|npz|torch>"),
])
def test_choices_are_listed(command, option, choices):
    line = next(line for line in help_text(command).splitlines() if option in line)
    assert choices in line


def test_sweep_help_lists_the_metrics_and_the_param_syntax_uncut():
    text = help_text("sweep")
    flat = " ".join(text.replace("│", " ").split())
    assert all(m.value in flat for m in Metric)
    for spec in ("KEY=V1,V2,...", "KEY=log:LOW:HIGH[:N]", "KEY=lin:LOW:HIGH[:N]", "KEY=int:LOW:HIGH[:STEP]"):
        assert re.search(rf"^\s+{re.escape(spec)}\s+\w", text, re.MULTILINE), spec
    assert "…" not in text


def test_choices_are_the_librarys_names():
    assert {m.value for m in Metric} == set(RUN_METRICS)
    assert {s.value for s in Split} == {"test", "validation", "train"} <= set(SPLITS)
    assert {m.value for m in Mode} == {"max", "min"}
    assert {e.value for e in Executor} == {"local", "dask"}
    from nnrun.config import LOGGERS

    assert [lg.value for lg in Logger] == list(LOGGERS)
    assert [r.value for r in Recipe] == list(RECIPES)
    assert tuple(f.value for f in ExportFormat) == FORMATS


def complete(words: str) -> list[str]:
    """What bash completion offers for the last word of `words`."""
    env = {"_NNRUN_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1)}
    result = runner.invoke(app, [], prog_name="nnrun", env=env)
    assert result.exit_code == 0, result.output
    return result.output.split()


def test_shell_completion_offers_commands_and_choices():
    assert complete("nnrun ev") == ["evaluate"]
    assert complete("nnrun evaluate latest --split ") == ["test", "validation", "train"]
    assert complete("nnrun sweep c.yaml --metric val_") == ["val_accuracy", "val_loss"]
    assert complete("nnrun sweep c.yaml --executor ") == ["local", "dask"]
    assert complete("nnrun export latest --format ") == ["onnx", "npz", "torch"]
    assert "--install-completion" in help_text()


def test_a_choice_outside_the_list_is_a_usage_error_naming_the_choices():
    result = runner.invoke(app, ["evaluate", "latest", "--split", "tets"])
    assert result.exit_code == 2
    assert "tets" in result.output and "validation" in result.output


@pytest.mark.parametrize("command", RUNS_DIR_COMMANDS)
def test_runs_dir_help_names_the_env_var(command):
    assert "NNRUN_RUNS_DIR" in help_text(command)


def test_nnrun_runs_dir_is_the_default_runs_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, train={"epochs": 1, "batch_size": 128})
    env = {"NNRUN_RUNS_DIR": str(tmp_path / "elsewhere")}
    trained = runner.invoke(app, ["train", str(config), "-q"], env=env)
    assert trained.exit_code == 0, trained.output
    (run_dir,) = (tmp_path / "elsewhere").iterdir()
    assert not (tmp_path / "runs").exists()
    evaluated = runner.invoke(app, ["evaluate", "latest", "--no-plots"], env=env)
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads((run_dir / "evaluation-test.json").read_text())["split"] == "test"
    listed = runner.invoke(app, ["runs"], env=env)
    assert run_dir.name in listed.output
    flag_wins = runner.invoke(app, ["runs", "--runs-dir", str(tmp_path / "empty")], env=env)
    assert run_dir.name not in flag_wins.output
