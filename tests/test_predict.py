"""`nnrun predict` end to end: real test digits rendered as PNGs the way people draw them agree
with `evaluate` on the originals; unlabelled IDX, CSV and NPZ files give evaluate's exact
numbers; weights.json alone (or an older one beside its run folder) is enough."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from nnrun.cli import app
from nnrun.config import load_config
from nnrun.data import load_idx_pair
from nnrun.evaluate import load_run
from nnrun.experiment import train_run
from nnrun.predict import load_model, predict_files, read_inputs
from tests.handmade import STYLES, render_all
from tests.synthetic import write_idx

ROOT = Path(__file__).resolve().parents[1]
MNIST_TEST_DIR = ROOT.parent / "shared" / "data" / "mnist-test"
runner = CliRunner()


def digits_test() -> tuple[np.ndarray, np.ndarray]:
    """The bundled digits' test split: raw values 0..16 (N, 8, 8) and labels."""
    with np.load(ROOT / "nnrun" / "data" / "digits.npz") as d:
        return d["x_test"][:, 0], d["y_test"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """The quickstart CNN on the bundled digits, trained for a few seconds (about 97%)."""
    exp = load_config(ROOT / "configs" / "quickstart.yaml", ("train.epochs=10",))
    return train_run(exp, tmp_path_factory.mktemp("runs"), make_plots=False)


def evaluate_predictions(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """What `nnrun evaluate` computes on the test split: (probabilities, predicted classes)."""
    _, net, data = load_run(run_dir)
    out = net.predict(data.test[0])
    return out, out.argmax(axis=1)


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    return result, result.stdout


def test_weights_json_carries_what_a_prediction_needs(run):
    doc = json.loads((run / "weights.json").read_text())
    assert [doc["format"], doc["version"], doc["dtype"], doc["input_shape"]] == ["nnrun.weights", 1, "float32", [1, 8, 8]]
    assert doc["class_names"] == [str(d) for d in range(10)]
    assert doc["input"] == {"scale_divisor": 16.0, "range": [0.0, 1.0], "dataset": "digits", "recipe": "digits"}
    assert [layer["type"] for layer in doc["layers"]][:2] == ["conv2d", "maxpool2d"]
    assert doc["layers"][-1]["params"]["W"]["shape"] == [64, 10]  # dense W stays (in, out)


def test_rendered_pngs_of_test_digits_agree_with_evaluate_on_the_originals(run, tmp_path):
    x, y = digits_test()
    paths = render_all(x / 16, tmp_path / "png")
    modes = {Image.open(p).mode for p in paths}
    assert modes == {"L", "RGB", "RGBA"} and len(STYLES) == 3
    sizes = [Image.open(p).size for p in paths]
    assert min(min(s) for s in sizes) >= 40  # 5x larger at least, with margins
    _, expected = evaluate_predictions(run)
    records, _, probs = predict_files(load_model(run), paths, top=1)
    agreement = float(np.mean(probs.argmax(axis=1) == expected))
    assert agreement >= 0.95, agreement  # measured 96-97%: 8x8 blocks leave little room
    assert [r["top"][0]["class"] for r in records] == [str(c) for c in probs.argmax(axis=1)]


@pytest.mark.skipif(not MNIST_TEST_DIR.is_dir(), reason=f"real MNIST test files not present at {MNIST_TEST_DIR}")
def test_rendered_pngs_of_mnist_digits_agree_with_evaluate_on_the_originals(tmp_path):
    """An MLP trained in seconds on 4,000 real MNIST digits; 300 others rendered as PNGs."""
    x, y = load_idx_pair(MNIST_TEST_DIR / "t10k-images-idx3-ubyte.gz", MNIST_TEST_DIR / "t10k-labels-idx1-ubyte.gz")
    np.savez(tmp_path / "train.npz", x=x[1000:5000], y=y[1000:5000])
    np.savez(tmp_path / "test.npz", x=x[:300], y=y[:300])
    exp = load_config(ROOT / "configs" / "mlp.yaml", (
        "data.dataset=null", f"data.train.npz={tmp_path / 'train.npz'}", f"data.test.npz={tmp_path / 'test.npz'}",
        "data.validation_split=0", "train.epochs=6", "optimizer.lr=0.002"))
    run_dir = train_run(exp, tmp_path / "runs", make_plots=False)
    model = load_model(run_dir)
    assert model.input.recipe == "mnist"  # 28x28 digits from files, not the named dataset
    _, expected = evaluate_predictions(run_dir)
    assert np.mean(expected == y[:300]) > 0.95
    paths = render_all(x[:300, 0] / 255, tmp_path / "png")
    _, _, probs = predict_files(model, paths, top=1)
    agreement = float(np.mean(probs.argmax(axis=1) == expected))
    assert agreement >= 0.97, agreement  # measured 99.3%


def test_unlabelled_idx_csv_and_npz_files_give_evaluates_numbers(run, tmp_path):
    x, _ = digits_test()
    write_idx(tmp_path / "digits.idx", x.astype(np.uint8))
    np.savetxt(tmp_path / "digits.csv", x.reshape(len(x), -1), fmt="%d", delimiter=",")
    np.savez(tmp_path / "digits.npz", x=x)
    np.savez(tmp_path / "flat.npz", samples=x.reshape(len(x), -1).astype(np.float64))  # its only array
    expected, _ = evaluate_predictions(run)
    model = load_model(run)
    for name in ("digits.idx", "digits.csv", "digits.npz", "flat.npz"):
        inputs = read_inputs(model, [tmp_path / name])
        assert inputs.names[3] == f"{tmp_path / name}[3]" and inputs.indices[:2] == [0, 1]
        np.testing.assert_array_equal(model.net.predict(inputs.x), expected, err_msg=name)


def test_predict_needs_only_the_weights_file(run, tmp_path):
    alone = tmp_path / "elsewhere" / "my-weights.json"
    alone.parent.mkdir()
    shutil.copy(run / "weights.json", alone)
    x, _ = digits_test()
    write_idx(tmp_path / "few.idx", x[:5].astype(np.uint8))
    from_run, from_file = invoke("predict", run, tmp_path / "few.idx")[1], invoke("predict", alone, tmp_path / "few.idx")[1]
    assert from_file == from_run and len(from_file.splitlines()) == 5


def strip_prediction_keys(path: Path) -> None:
    doc = json.loads(path.read_text())
    del doc["class_names"], doc["input"]
    path.write_text(json.dumps(doc))


def test_an_older_weights_file_takes_classes_and_scaling_from_its_run_folder(run, tmp_path):
    old = tmp_path / "old-run"
    shutil.copytree(run, old)
    strip_prediction_keys(old / "weights.json")
    new_model, old_model = load_model(run), load_model(old)
    assert old_model.class_names == new_model.class_names
    assert old_model.input.as_dict() == new_model.input.as_dict()
    x, _ = digits_test()
    paths = render_all(x[:6] / 16, tmp_path / "png")
    np.testing.assert_array_equal(predict_files(old_model, paths)[2], predict_files(new_model, paths)[2])


def test_an_older_weights_file_alone_is_one_clear_error(run, tmp_path):
    strip_prediction_keys(shutil.copy(run / "weights.json", tmp_path / "weights.json"))
    write_idx(tmp_path / "one.idx", np.zeros((1, 8, 8), np.uint8))
    result, _ = invoke("predict", tmp_path / "weights.json", tmp_path / "one.idx")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {tmp_path / 'weights.json'}: the file has no class_names and input")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output


def test_cli_lines_json_csv_and_show(run, tmp_path, monkeypatch):
    x, _ = digits_test()
    monkeypatch.chdir(tmp_path)  # relative paths, as typed
    folder = Path("drawings")
    render_all(x[:3] / 16, folder)
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub").mkdir()
    formula = Path(shutil.copy(folder / "00000.png", "=1+2.png"))  # a name a spreadsheet would run
    result, text = invoke("predict", run, folder, formula, "--top", "2", "--out", "p.csv", "--show", "seen")
    assert result.exit_code == 0, result.output
    lines = text.splitlines()
    assert [line.split()[0] for line in lines] == [*(str(folder / f"0000{i}.png") for i in range(3)), "=1+2.png"]
    assert all(len(line.split()) == 5 and line.split()[2].endswith("%") for line in lines)  # name, 2 x (class, %)
    as_json = json.loads(invoke("predict", run, folder, formula, "--top", "2", "--json")[1])
    assert [r["input"] for r in as_json] == [line.split()[0] for line in lines]
    assert as_json[0]["file"] == as_json[0]["input"] and as_json[0]["index"] is None
    assert len(as_json[0]["top"]) == 2 and as_json[0]["top"][0]["probability"] >= as_json[0]["top"][1]["probability"]
    rows = list(csv.DictReader(io.StringIO(Path("p.csv").read_text())))
    assert list(rows[0]) == ["input", "file", "index", "class_1", "probability_1", "class_2", "probability_2"]
    assert [r["input"] for r in rows] == [r["input"] for r in as_json[:3]] + ["'=1+2.png"]
    assert rows[3]["file"] == "'=1+2.png" and rows[0]["index"] == ""
    assert float(rows[0]["probability_1"]) == as_json[0]["top"][0]["probability"]
    assert rows[0]["class_1"] == lines[0].split()[1] == as_json[0]["top"][0]["class"]
    pictures = sorted(p.name for p in Path("seen").iterdir())
    assert pictures == ["00000.png", "00001.png", "00002.png", "=1+2.png"]
    assert min(Image.open("seen/00000.png").size) > 150
    assert "wrote 4 pictures of what the network saw into seen" in result.stderr


def test_csv_safe_cell_guards_formulas_only():
    from nnrun.fileio import csv_safe_cell

    for text in ("=HYPERLINK(1)", "+A1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert csv_safe_cell(text) == "'" + text
    for value in ("digit.png", "a=b", "", -1.5, 3, None, "-0.5", "+1"):  # numbers stay numbers
        assert csv_safe_cell(value) == value


def test_show_names_samples_of_a_file_by_index(run, tmp_path):
    x, _ = digits_test()
    write_idx(tmp_path / "two.idx", x[:2].astype(np.uint8))
    result, _ = invoke("predict", run, tmp_path / "two.idx", "--show", tmp_path / "seen")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "seen").iterdir()) == ["two-0.png", "two-1.png"]


@pytest.mark.parametrize(("setup", "message"), [
    (lambda d: d / "missing.png", "missing.png: no such file"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "empty: no images in this folder"),
    (lambda d: write_text(d / "fake.png", "hello"), "fake.png: not an image Pillow can read"),
    (lambda d: write_csv(d / "labelled.csv", 65), "is its label column still in?"),
    (lambda d: write_csv(d / "narrow.csv", 10), "samples of shape (10,) (10 values) do not fit the network's input (1, 8, 8)"),
    (lambda d: write_idx(d / "labels.idx", np.arange(5, dtype=np.uint8)), "not samples"),
    (lambda d: np.savez(d / "two.npz", a=np.zeros((2, 64)), b=np.zeros(2)) or d / "two.npz", "no array named 'x' among ['a', 'b']"),
])
def test_bad_inputs_are_one_clear_line(run, tmp_path, setup, message):
    path = setup(tmp_path)
    result, _ = invoke("predict", run, path)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def write_csv(path: Path, columns: int) -> Path:
    np.savetxt(path, np.ones((3, columns)), fmt="%d", delimiter=",")
    return path


def test_bad_options_and_runs(run, tmp_path):
    write_idx(tmp_path / "one.idx", np.zeros((1, 8, 8), np.uint8))
    result, _ = invoke("predict", run, tmp_path / "one.idx", "--top", "0")
    assert result.exit_code == 2 and "--top 0: give 1 or more" in result.stderr
    result, _ = invoke("predict", tmp_path / "nowhere", tmp_path / "one.idx")
    assert result.exit_code == 2 and "no such run folder" in result.stderr
    result, _ = invoke("predict", run, tmp_path / "one.idx", "--recipe", "photo")
    assert result.exit_code == 2 and "mnist" in result.output  # typer lists the recipes
    damaged = json.loads((run / "weights.json").read_text())
    damaged["class_names"] = ["a", "b"]
    (tmp_path / "weights.json").write_text(json.dumps(damaged))
    result, _ = invoke("predict", tmp_path / "weights.json", tmp_path / "one.idx")
    assert result.exit_code == 2 and "class_names: 2 names for the network's 10 outputs" in result.stderr


def test_latest_is_said_on_stderr_and_the_top_is_capped_at_the_classes(run, tmp_path):
    write_idx(tmp_path / "one.idx", np.zeros((1, 8, 8), np.uint8))
    result, text = invoke("predict", "latest", tmp_path / "one.idx", "--top", "50", "--runs-dir", run.parent)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"latest: {run}")
    assert len(text.split()) == 1 + 2 * 10
