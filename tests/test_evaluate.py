"""`nnrun evaluate` end to end on runs trained inside the tests (a few seconds each)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nnrun.cli import app
from nnrun.config import load_config
from nnrun.errors import ConfigError
from nnrun.evaluate import evaluate_run, load_run, resolve_run
from nnrun.experiment import train_run

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "configs" / "quickstart.yaml"
runner = CliRunner()

MLP = ["model.layers=[{type: flatten}, {type: dense, units: 16, activation: relu}, "
       "{type: dense, units: 10, activation: softmax}]"]


def train_tiny(runs_dir: Path, *overrides: str, epochs: int = 1) -> Path:
    """A quickstart run (or MLP with MLP overrides) of `epochs` epochs, in about a second."""
    exp = load_config(QUICKSTART, (f"train.epochs={epochs}", *overrides))
    return train_run(exp, runs_dir)


def png_ok(path: Path, min_side: int = 150) -> np.ndarray:
    img = mpimg.imread(io.BytesIO(Path(path).read_bytes()), format="png")
    assert img.ndim == 3 and min(img.shape[:2]) >= min_side, (path, img.shape)
    assert img.shape[0] < 6000 and img.shape[1] < 6000, (path, img.shape)
    assert img[..., :3].std() > 0.01, f"{path} is blank"
    return img


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("runs"), epochs=2)


@pytest.fixture(scope="module")
def evaluated(run):
    result = runner.invoke(app, ["evaluate", str(run)])
    assert result.exit_code == 0, result.output
    return result, json.loads((run / "evaluation-test.json").read_text())


def test_accuracy_equals_what_train_recorded(run, evaluated):
    result, doc = evaluated
    summary = json.loads((run / "summary.json").read_text())
    assert doc["accuracy"] == summary["test_accuracy"]
    assert doc["loss"] == pytest.approx(summary["test_loss"], rel=1e-6)
    assert f"{100 * summary['test_accuracy']:.2f}%" in result.output


def test_numbers_are_consistent_with_the_predictions(run, evaluated):
    _, doc = evaluated
    exp, net, data = load_run(run)
    x, y = data.test
    pred = net.predict(x).argmax(axis=1)
    n, k = len(y), data.num_classes
    assert doc["num_samples"] == n == 450 and doc["class_names"] == data.class_names
    cm = np.array(doc["confusion_matrix"])
    assert cm.shape == (k, k) and cm.sum() == n
    expected = np.zeros((k, k), int)
    np.add.at(expected, (y, pred), 1)
    np.testing.assert_array_equal(cm, expected)
    assert doc["num_correct"] == int(np.trace(cm)) == int(np.sum(pred == y))
    for i, c in enumerate(doc["per_class"]):
        assert c["support"] == int(np.sum(y == i))
        assert c["recall"] == pytest.approx(cm[i, i] / cm[i].sum())
        if cm[:, i].sum():
            assert c["precision"] == pytest.approx(cm[i, i] / cm[:, i].sum())
    for r in doc["one_vs_rest"]:
        assert r["tp"] + r["fp"] + r["fn"] + r["tn"] == n
    assert doc["macro_avg"]["f1"] == pytest.approx(np.mean([c["f1"] for c in doc["per_class"]]))
    counts = [t["count"] for t in doc["top_confusions"]]
    assert counts == sorted(counts, reverse=True) and sum(counts) <= n - np.trace(cm)


def test_cli_prints_every_table(evaluated):
    out = evaluated[0].output
    for words in ("Confusion matrix", "Per-class metrics", "macro avg", "weighted avg",
                  "One vs rest", "TP", "loss (cross_entropy)", "evaluation-test.json"):
        assert words in out


def test_every_picture_decodes(run, evaluated):
    _, doc = evaluated
    plots = run / "plots"
    for name in ("confusion_matrix-test", "misclassified-test", "predictions-test", "per_class-test", "weights"):
        png_ok(plots / f"{name}.png")
    assert set(doc["plots"]) == {"confusion_matrix", "misclassified", "predictions", "per_class", "weights"}
    assert (run / "report.html").is_file()


def test_validation_split_is_the_one_training_used(run):
    doc = evaluate_run(run, "validation", make_plots=False)
    rows = json.loads((run / "metrics.json").read_text())
    assert doc["split"] == "validation" and doc["num_samples"] == 136
    assert doc["accuracy"] == pytest.approx(rows[-1]["val_accuracy"], abs=1e-12)
    assert json.loads((run / "evaluation-validation.json").read_text())["accuracy"] == doc["accuracy"]


def test_train_split(run):
    result = runner.invoke(app, ["evaluate", str(run), "--split", "train", "--quiet", "--no-plots"])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    assert json.loads((run / "evaluation-train.json").read_text())["num_samples"] == 1347 - 136


def test_other_data_with_set(run, tmp_path):
    exp, _, data = load_run(run)
    from nnrun.data import get_dataset

    x, y = get_dataset("digits").load()["test"]
    np.savez(tmp_path / "few.npz", x=x[:60], y=y[:60])
    result = runner.invoke(app, ["evaluate", str(run), "--no-plots", "--set", f"data.test.npz={tmp_path / 'few.npz'}"])
    assert result.exit_code == 0, result.output
    doc = json.loads((run / "evaluation-test.json").read_text())
    assert doc["num_samples"] == 60 and "few.npz" in doc["data"]
    # the same samples scored through the run's own test split agree
    full = load_run(run)
    pred = full[1].predict(full[2].test[0][:60]).argmax(axis=1)
    assert doc["accuracy"] == pytest.approx(np.mean(pred == y[:60]))


def test_latest_is_the_newest_run(run, tmp_path):
    runs_dir = run.parent
    assert resolve_run("latest", runs_dir) == run
    assert resolve_run(run.name, runs_dir) == run


# -- errors: one line, exit 2 -----------------------------------------------------------------
def error_of(args) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


def test_unknown_split_is_a_usage_error_naming_the_splits(run):
    result = runner.invoke(app, ["evaluate", str(run), "--split", "holdout"])
    assert result.exit_code == 2
    assert all(word in result.output for word in ("holdout", "test", "validation", "train"))


def test_missing_run_folder(tmp_path):
    line = error_of(["evaluate", str(tmp_path / "nope"), "--runs-dir", str(tmp_path)])
    assert "nope" in line and "no such run folder" in line


def test_latest_without_runs(tmp_path):
    line = error_of(["evaluate", "latest", "--runs-dir", str(tmp_path)])
    assert "nnrun train" in line and str(tmp_path) in line


def test_incomplete_run_folder(run, tmp_path):
    broken = tmp_path / run.name
    shutil.copytree(run, broken)
    (broken / "weights.json").unlink()
    line = error_of(["evaluate", str(broken)])
    assert "weights.json" in line and "complete run folder" in line
    (broken / "summary.json").unlink()
    assert "summary.json" in error_of(["evaluate", str(broken)])


def test_weights_that_do_not_match_the_config(run, tmp_path):
    broken = tmp_path / run.name
    shutil.copytree(run, broken)
    cfg = yaml.safe_load((broken / "config.yaml").read_text())
    first_dense = next(layer for layer in cfg["model"]["layers"] if layer["type"] == "dense")
    first_dense["units"] = 32
    (broken / "config.yaml").write_text(yaml.safe_dump(cfg))
    line = error_of(["evaluate", str(broken)])
    assert "weights.json" in line and "do not match" in line
    with pytest.raises(ConfigError):
        load_run(broken)


def test_split_without_data(run):
    line = error_of(["evaluate", str(run), "--split", "validation", "--set", "data.validation_split=0"])
    assert "no validation data" in line


def test_a_class_never_predicted_is_reported_without_warnings(tmp_path):
    # Zero output weights and a rate too small to move them: every sample gets equal
    # probabilities, so argmax is always class 0 and classes 1..9 are never predicted.
    run_dir = train_tiny(tmp_path, "model.layers[-1].init=zeros", "optimizer={type: sgd, lr: 1.0e-30}")
    result = runner.invoke(app, ["evaluate", str(run_dir), "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "never predicted: 1, 2, 3, 4, 5, 6, 7, 8, 9" in result.stdout
    doc = json.loads((run_dir / "evaluation-test.json").read_text())
    assert doc["never_predicted"] == [str(c) for c in range(1, 10)]
    assert all(c["precision"] == 0.0 for c in doc["per_class"][1:])
    assert doc["per_class"][0]["recall"] == 1.0
