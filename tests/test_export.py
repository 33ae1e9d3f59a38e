"""`nnrun export`: onnxruntime and PyTorch, given what nnrun exports, predict what nnrun predicts
(the same classes, probabilities within 1e-5) on 1,000 samples, for every shipped config and for
networks that use every registered layer and activation. The oracles are optional: their tests
skip without onnx/onnxruntime or torch."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nnrun import nn
from nnrun.builder import build_network
from nnrun.cli import app
from nnrun.config import load_config
from nnrun.data import dataset_info, load_idx_pair
from nnrun.errors import ConfigError
from nnrun.export import ONNX_OPSET, export_run, torch_arrays
from nnrun.images import recipe_for
from nnrun.predict import load_model
from nnrun.runs import write_weights

ROOT = Path(__file__).resolve().parents[1]
MNIST_TEST_DIR = ROOT.parent / "shared" / "data" / "mnist-test"
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
SAMPLES = 1000
TOLERANCE = 1e-5
runner = CliRunner()


def prediction_info(input_shape, classes: int, divisor: float | None = 1.0, dataset: str | None = None) -> dict:
    names = [str(c) for c in range(classes)]
    return {"class_names": names, "input": {"scale_divisor": divisor, "range": [0.0, 1.0], "dataset": dataset,
                                            "recipe": recipe_for(dataset, input_shape, names)}}


def samples_for(dataset: str, n: int = SAMPLES) -> np.ndarray:
    """n real samples of a dataset, scaled as training scales them: the bundled digits (test
    split, then training split), MNIST's test set when ../shared has it, else seeded noise."""
    if dataset == "digits":
        with np.load(ROOT / "nnrun" / "data" / "digits.npz") as d:
            return (np.concatenate([d["x_test"], d["x_train"]])[:n] / 16).astype(np.float32)
    if MNIST_TEST_DIR.is_dir():
        x, _ = load_idx_pair(MNIST_TEST_DIR / "t10k-images-idx3-ubyte.gz", MNIST_TEST_DIR / "t10k-labels-idx1-ubyte.gz")
        return (x[:n] / 255).astype(np.float32)
    return np.random.default_rng(0).integers(0, 256, (n, 1, 28, 28)).astype(np.float32) / 255


def shipped_network(config: Path, folder: Path) -> tuple[Path, np.ndarray]:
    """A shipped config's network with its seeded initial weights, written as weights.json, and
    1,000 samples of its dataset."""
    exp = load_config(config)
    info = dataset_info(exp.data.dataset)
    net = build_network(exp, info.input_shape, len(info.class_names))
    path = folder / "weights.json"
    write_weights(path, net, prediction_info(net.input_shape, len(info.class_names), info.max_value, info.name))
    return path, samples_for(info.name)


# Networks that between them use every registered layer type and activation, with non-default
# parameters: strides, rectangular kernels, "same" padding, no bias, softmax over channels.
EVERY_LAYER = [
    {"type": "conv2d", "filters": 4, "kernel_size": [3, 2], "stride": 2, "padding": 1, "use_bias": False,
     "activation": {"type": "elu", "alpha": 0.5}},
    {"type": "avgpool2d", "pool_size": 2, "stride": 1},
    {"type": "conv2d", "filters": 5, "kernel_size": 3, "padding": "same", "activation": "softmax"},
    {"type": "maxpool2d", "pool_size": 2},
    {"type": "leaky_relu", "alpha": 0.2},
    {"type": "conv2d", "filters": 3, "kernel_size": 1, "padding": "valid", "activation": "selu"},
    {"type": "dropout", "rate": 0.4},
    {"type": "flatten"},
    {"type": "dense", "units": 12, "activation": {"type": "swish", "beta": 1.7}, "use_bias": False},
    {"type": "swish"},
    {"type": "dense", "units": 10, "activation": "softmax"},
]


def activation_network(name: str) -> list[dict]:
    """A network with the activation both as a conv and dense activation and as a layer."""
    return [{"type": "conv2d", "filters": 3, "padding": 1, "activation": name}, {"type": "flatten"},
            {"type": "dense", "units": 16, "activation": name}, {"type": name},
            {"type": "dense", "units": 10, "activation": "softmax"}]


NETWORKS = {"every-layer": EVERY_LAYER, **{f"activation-{a}": activation_network(a) for a in nn.ACTIVATIONS}}


def test_the_test_networks_cover_every_registered_layer_and_activation():
    used_layers = {layer["type"] for layers in NETWORKS.values() for layer in layers}
    used_activations = {a if isinstance(a, str) else a["type"]
                        for layers in NETWORKS.values() for a in (layer.get("activation", "linear") for layer in layers)}
    assert set(nn.LAYERS) <= used_layers, set(nn.LAYERS) - used_layers
    assert set(nn.ACTIVATIONS) <= used_activations | used_layers


def variety_network(name: str, folder: Path, dtype: str = "float32") -> tuple[Path, np.ndarray]:
    """One of NETWORKS, seeded, written as weights.json, and 1,000 samples in [0, 1) for it."""
    layers = [nn.make_layer(spec) for spec in NETWORKS[name]]
    net = nn.Sequential(layers, (1, 8, 8), seed=7, dtype=dtype)
    for k, p in net.parameters().items():  # biases away from zero, so that they are tested too
        if k.endswith(".b"):
            p[...] = np.random.default_rng(1).normal(0, 0.5, p.shape)
    path = folder / "weights.json"
    write_weights(path, net, prediction_info(net.input_shape, 10))
    return path, np.random.default_rng(2).random((SAMPLES, 1, 8, 8)).astype(dtype)


def cases() -> list:
    return ([pytest.param("config", c.name, id=c.stem) for c in CONFIGS]
            + [pytest.param("network", n, id=n) for n in NETWORKS])


@pytest.fixture(scope="module")
def oracle_case(tmp_path_factory):
    """(weights file, samples, nnrun's outputs) of a case, built once for both oracles."""
    built = {}

    def get(kind: str, name: str) -> tuple[Path, np.ndarray, np.ndarray]:
        if (kind, name) not in built:
            folder = tmp_path_factory.mktemp(name)
            path, x = shipped_network(ROOT / "configs" / name, folder) if kind == "config" else variety_network(name, folder)
            built[kind, name] = path, x, load_model(path).net.predict(x)
        return built[kind, name]

    return get


def assert_agrees(name: str, theirs: np.ndarray, ours: np.ndarray) -> None:
    assert theirs.shape == ours.shape, name
    assert np.array_equal(theirs.argmax(axis=1), ours.argmax(axis=1)), f"{name}: classes differ"
    assert np.abs(theirs.astype(np.float64) - ours).max() <= TOLERANCE, name


def load_torch_module(folder: Path):
    spec = importlib.util.spec_from_file_location(f"exported_{abs(hash(folder))}", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("kind", "name"), cases())
def test_pytorch_predicts_what_nnrun_predicts(tmp_path, oracle_case, kind, name):
    torch = pytest.importorskip("torch")
    path, x, ours = oracle_case(kind, name)
    export_run(path, "torch", tmp_path)
    net = load_torch_module(tmp_path).load()
    with torch.no_grad():
        theirs = net(torch.from_numpy(x)).numpy()
    assert_agrees(f"torch {name}", theirs, ours)


@pytest.mark.parametrize(("kind", "name"), cases())
def test_onnxruntime_predicts_what_nnrun_predicts(tmp_path, oracle_case, kind, name):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    path, x, ours = oracle_case(kind, name)
    (onnx_file,) = export_run(path, "onnx", tmp_path).files
    proto = onnx.load(onnx_file)
    onnx.checker.check_model(proto, full_check=True)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", ONNX_OPSET)]
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (theirs,) = session.run(None, {"input": x})
    assert_agrees(f"onnx {name}", theirs, ours)


def test_a_float64_network_exports_as_float64_for_torch_and_float32_for_onnx(tmp_path):
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    path, x = variety_network("every-layer", tmp_path, dtype="float64")
    ours = load_model(path).net.predict(x)
    export_run(path, "torch")
    net = load_torch_module(tmp_path / "export").load()
    with torch.no_grad():
        theirs = net(torch.from_numpy(x)).numpy()
    assert theirs.dtype == np.float64 and np.abs(theirs - ours).max() <= 1e-12
    exported = export_run(path, "onnx")
    assert exported.notes == ["the float64 weights are written as float32: onnxruntime has no float64 convolution "
                              "or pooling (the npz and torch formats keep them)"]
    session = ort.InferenceSession(str(exported.files[0]), providers=["CPUExecutionProvider"])
    assert_agrees("onnx float64", session.run(None, {"input": x.astype(np.float32)})[0], ours)


def test_npz_holds_plain_arrays_in_pytorchs_names_and_layouts(tmp_path):
    path, _ = variety_network("every-layer", tmp_path)
    doc = json.loads(path.read_text())
    (npz,) = export_run(path, "npz").files
    assert npz == tmp_path / "export" / "weights.npz"
    with np.load(npz, allow_pickle=False) as arrays:
        got = {k: arrays[k] for k in arrays.files}
    assert all(a.dtype == np.float32 for a in got.values())
    expected = {}
    for i, layer in enumerate(doc["layers"]):
        for k, p in layer["params"].items():
            a = np.asarray(p["data"], np.float32).reshape(p["shape"])
            expected[f"layers.{i}.{'weight' if k == 'W' else 'bias'}"] = a.T if layer["type"] == "dense" else a
    assert sorted(got) == sorted(expected)
    for k in expected:
        np.testing.assert_array_equal(got[k], expected[k], err_msg=k)
    assert got["layers.8.weight"].shape[0] == 12  # Linear: (out, in)


def test_torch_state_dict_names_are_the_npz_names(tmp_path):
    torch = pytest.importorskip("torch")
    path, _ = variety_network("every-layer", tmp_path)
    export_run(path, "torch")
    net = load_torch_module(tmp_path / "export").Net()
    assert sorted(net.state_dict()) == sorted(torch_arrays(load_model(path)))
    assert isinstance(net.layers[0], torch.nn.Conv2d)


def test_exporting_needs_neither_torch_nor_onnxruntime(tmp_path):
    path, _ = variety_network("every-layer", tmp_path)
    code = ("import sys; sys.modules['torch'] = None; sys.modules['onnxruntime'] = None\n"
            "from nnrun.export import export_run\n"
            f"print(len(export_run({str(path)!r}, 'torch').files))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "2", done.stderr


def test_the_torch_export_loads_in_two_lines(tmp_path):
    pytest.importorskip("torch")
    path, x = variety_network("activation-relu", tmp_path)
    np.save(tmp_path / "x.npy", x[:5])
    code = ("from model import load\nnet = load()\n"
            "import numpy, torch\n"
            "print(repr(net(torch.from_numpy(numpy.load('../x.npy'))).detach().numpy().tolist()))")
    export_run(path, "torch")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path / "export",
                          timeout=120)
    assert done.returncode == 0, done.stderr
    theirs = np.array(eval(done.stdout))  # a list of lists of floats, printed by repr
    assert_agrees("two lines", theirs, load_model(path).net.predict(x[:5]))


def test_model_py_says_how_to_prepare_inputs(tmp_path):
    path, _ = shipped_network(ROOT / "configs" / "digits-mlp.yaml", tmp_path)
    (model_py, npz) = export_run(path, "torch").files
    text = model_py.read_text()
    assert npz.name == "weights.npz"
    assert "from model import load\n    net = load()" in text
    assert "float32 raw values divided by 16.0" in text
    assert 'CLASS_NAMES = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]' in text
    assert "('1', nn.Linear(64, 16))," in text and "('1_tanh', nn.Tanh())," in text
    assert "allow_pickle=False" in text and "torch.load" not in text  # no unpickling anywhere


def test_model_py_is_valid_python_whatever_the_folder_is_called(tmp_path):
    folder = tmp_path / 'odd """ \\U0001 \x1b folder'
    folder.mkdir()
    path, _ = variety_network("activation-tanh", folder)
    (model_py, _) = export_run(path, "torch").files
    compile(model_py.read_text(), str(model_py), "exec")


def test_onnx_carries_the_classes_and_input_preparation(tmp_path):
    onnx = pytest.importorskip("onnx")
    path, _ = shipped_network(ROOT / "configs" / "quickstart.yaml", tmp_path)
    (onnx_file,) = export_run(path, "onnx", out_dir=tmp_path / "deploy").files
    assert onnx_file == tmp_path / "deploy" / "model.onnx"
    proto = onnx.load(onnx_file)
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["class_names"]) == [str(d) for d in range(10)]
    assert json.loads(props["input"])["scale_divisor"] == 16
    assert [i.name for i in proto.graph.input] == ["input"] and [o.name for o in proto.graph.output] == ["output"]
    assert f"opset {ONNX_OPSET}" in (ROOT / "README.md").read_text()


def test_a_layer_without_a_counterpart_is_refused_naming_it(tmp_path, monkeypatch):
    from nnrun import export

    path, _ = variety_network("every-layer", tmp_path)
    monkeypatch.delitem(export.TORCH_ACTIVATIONS, "swish")
    with pytest.raises(ConfigError, match=r"^activation 'swish' of layers\[8\] \(dense\): torch has no faithful"):
        export_run(path, "torch")
    monkeypatch.setattr(export, "ACTIVATION_LAYERS", export.ACTIVATION_LAYERS - {"leaky_relu"})
    pytest.importorskip("onnx")
    with pytest.raises(ConfigError, match=r"^layers\[4\] \(leaky_relu\): ONNX has no faithful counterpart"):
        export_run(path, "onnx")
    assert not (tmp_path / "export" / "model.onnx").exists()


def test_onnx_without_the_onnx_package_says_what_to_install(tmp_path, monkeypatch):
    path, _ = variety_network("activation-relu", tmp_path)
    monkeypatch.setitem(sys.modules, "onnx", None)
    result = runner.invoke(app, ["export", str(path), "--format", "onnx"])
    assert result.exit_code == 2
    assert result.stderr == "error: --format onnx needs the onnx package: pip install 'nnrun[onnx]'\n"


def test_cli_export_into_the_run_folder_and_from_an_older_weights_file(tmp_path):
    from tests.test_evaluate import train_tiny

    run = train_tiny(tmp_path / "runs")
    result = runner.invoke(app, ["export", str(run), "--format", "torch"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"wrote {run / 'export' / 'model.py'}", f"wrote {run / 'export' / 'weights.npz'}",
                                          f"load it in PyTorch: cd {run / 'export'} && python -c 'from model import load; "
                                          "net = load()'"]
    doc = json.loads((run / "weights.json").read_text())
    del doc["class_names"], doc["input"]
    (run / "weights.json").write_text(json.dumps(doc))  # as nnrun wrote it before it recorded them
    result = runner.invoke(app, ["export", "latest", "--format", "torch", "--runs-dir", str(run.parent),
                                 "--out", str(tmp_path / "old")])
    assert result.exit_code == 0, result.output
    assert result.stderr == f"latest: {run}\n"
    text = (tmp_path / "old" / "model.py").read_text()  # classes and scaling from the run's summary.json
    assert 'CLASS_NAMES = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]' in text
    assert "INPUT = {'scale_divisor': 16.0, 'range': [0.0, 1.0], 'dataset': 'digits', 'recipe': 'digits'}" in text
