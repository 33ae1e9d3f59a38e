"""Hostile input (issue 10): every bad config, override or weights file is one clear line that
names the file (and key), says what is wrong and what to do; exit 2 for config and usage errors,
1 for failures at run time; never a traceback; sizes are checked before memory is spent; nothing
already written is lost or half-written; JSON that nnrun writes is strict JSON."""

from __future__ import annotations

import errno
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nnrun import fileio
from nnrun.cli import app
from nnrun.config import (
    load_config,
    resolved_dict,
)
from nnrun.errors import NnrunError
from nnrun.runs import weights_document, write_metrics
from nnrun.train import Callback
from tests.test_config import GOOD

runner = CliRunner()
MLP = {"name": "mlp", "data": {"dataset": "digits"},
       "model": {"layers": [{"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]},
       "train": {"epochs": 2}}
GOOD_TEXT = yaml.safe_dump(GOOD, sort_keys=False)
MiB = 1 << 20


def one_error_line(result, names: str, expected: str, exit_code: int = 2) -> str:
    """The CLI said exactly one line, `error: ...`, naming `names`, containing `expected`."""
    assert result.exit_code == exit_code, (result.exit_code, result.output)
    assert "Traceback" not in result.output and "unexpected" not in result.output, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines
    assert names in lines[0] and expected in lines[0], lines[0]
    assert len(lines[0]) < 1100, lines[0]
    return lines[0]


def strict_json(text: str):
    """json.loads as strict readers (jq, JavaScript) do it: NaN and Infinity are errors."""
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def sparse(path: Path, size: int) -> None:
    """A file of `size` bytes that takes no disk space (and would take `size` of memory to read)."""
    with open(path, "wb") as f:
        f.truncate(size)


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    """The MLP config, a run folder for it (config, summary, weights; never trained) and the
    weights document of its freshly built network."""
    from nnrun.experiment import prepare

    root = tmp_path_factory.mktemp("mlp")
    config = root / "mlp.yaml"
    config.write_text(yaml.safe_dump(MLP))
    exp = load_config(config)
    _, net = prepare(exp)
    run = root / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(resolved_dict(exp), sort_keys=False))
    (run / "summary.json").write_text(json.dumps({"name": "mlp", "status": "completed"}))
    return {"config": config, "run": run, "doc": weights_document(net), "net": net}



# -- JSON that strict readers accept ---------------------------------------------------------
def test_write_json_writes_null_for_nan_and_infinity(tmp_path):
    path = tmp_path / "x.json"
    fileio.write_json(path, {"a": math.nan, "b": [math.inf, 1.5, -math.inf], "c": {"d": np.float64("nan")},
                             "e": (1, math.nan)})
    assert strict_json(path.read_text()) == {"a": None, "b": [None, 1.5, None], "c": {"d": None}, "e": [1, None]}


def test_metrics_with_non_finite_values_are_strict_json(tmp_path):
    rows = [{"epoch": 1, "lr": 0.1, "train_loss": math.inf, "train_accuracy": 0.1, "val_loss": math.nan,
             "val_accuracy": None, "seconds": 0.5}]
    write_metrics(tmp_path, rows)
    assert strict_json((tmp_path / "metrics.json").read_text())[0]["val_loss"] is None
    assert (tmp_path / "metrics.csv").read_text().splitlines()[1].startswith("1,0.1,inf,0.1,")


class OverflowAtTheEndOfEpoch1(Callback):
    """The last step of epoch 1 overflows the weights: the epoch's validation loss is NaN, and
    the first batch of epoch 2 diverges."""

    def on_batch_end(self, state, loss, accuracy):
        if state.epoch == 1 and state.batch == state.batches:
            for p in state.net.parameters().values():
                p[...] = np.inf


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf - inf, on purpose
def test_a_diverged_run_writes_strict_json_everywhere(tmp_path):
    from nnrun import plots
    from nnrun.evaluate import list_runs
    from nnrun.experiment import train_run
    from nnrun.runs import read_rows

    config = tmp_path / "mlp.yaml"
    config.write_text(yaml.safe_dump(MLP))
    run = train_run(load_config(config, ("train.epochs=3",)), tmp_path / "runs", callbacks=[OverflowAtTheEndOfEpoch1()])
    summary = strict_json((run / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["final"]["val_loss"] is None
    assert strict_json((run / "metrics.json").read_text())[0]["val_loss"] is None
    for path in run.glob("*.json"):
        strict_json(path.read_text())
    assert list_runs(tmp_path / "runs")[0]["status"] == "diverged"  # null reads as missing
    plots.learning_curves(read_rows(run), tmp_path / "curves.png", best_epoch=1, monitor="val_loss")



# -- run folders and writes ------------------------------------------------------------------
@pytest.mark.parametrize("writes_before_the_disk_fills", [0, 1, 5, 8, 11])
def test_a_full_disk_keeps_every_file_complete_and_says_so(mlp, tmp_path, monkeypatch, writes_before_the_disk_fills):
    written: dict[Path, bytes] = {}
    calls: list[Path] = []
    real_commit = fileio.commit

    def commit(tmp: Path, path: Path) -> None:
        calls.append(path)
        if len(calls) > writes_before_the_disk_fills:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        data = Path(tmp).read_bytes()
        real_commit(tmp, path)
        written[path] = data

    monkeypatch.setattr(fileio, "commit", commit)
    runs = tmp_path / "runs"
    result = runner.invoke(app, ["train", str(mlp["config"]), "--runs-dir", str(runs), "-q"])
    line = one_error_line(result, str(runs), "No space left on device", exit_code=1)
    assert "every file already written keeps its last complete version" in line
    for path, data in written.items():
        assert path.read_bytes() == data, path
    leftovers = [p for p in runs.rglob("*") if p.is_file() and p not in written]
    assert leftovers == []  # no temporary or half-written file


def test_a_write_error_names_the_file_and_keeps_the_old_version(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    fileio.write_json(path, {"status": "completed"})

    def full(tmp, target):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio, "commit", full)
    with pytest.raises(NnrunError) as caught:
        fileio.write_json(path, {"status": "failed"})
    assert caught.value.exit_code == 1 and str(path) in str(caught.value)
    assert json.loads(path.read_text()) == {"status": "completed"}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
