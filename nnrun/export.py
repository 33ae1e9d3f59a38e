"""Weights that leave nnrun: `nnrun export RUN --format onnx|npz|torch`.

Everything is converted from the weights file's documented layouts (dense W (in, out), conv W
(out, in, kh, kw), flatten in C, H, W order), never from the engine's internals:

- `npz`: the parameters with PyTorch's names and layouts (`layers.3.weight` (out, in) for
  weights.json's `layers[3]` dense W (in, out)); plain arrays, no pickle;
- `torch`: `model.py`, a short readable torch.nn.Module whose state_dict is that npz, plus the
  npz (writing them needs no torch);
- `onnx`: a standard ONNX graph (opset ONNX_OPSET, needs the `onnx` package) of the network.

A layer or activation without a faithful counterpart is refused, naming it.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnrun import __version__
from nnrun.errors import ConfigError
from nnrun.fileio import write_bytes
from nnrun.predict import Model, load_model

PathLike = str | os.PathLike
FORMATS = ("onnx", "npz", "torch")
ONNX_OPSET = 17
ONNX_IR_VERSION = 8  # the IR of opset 17 (onnx 1.12), which every onnxruntime since 1.12 reads
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


@dataclass
class Layer:
    """One layer of the weights file: index, type, config and parameters (documented layouts)."""

    index: int
    type: str
    config: dict
    params: dict[str, np.ndarray]

    @property
    def activation(self) -> tuple[str, dict]:
        """(name, parameters) of the activation applied to this layer's output."""
        if self.type in ACTIVATION_LAYERS:
            return self.type, {k: v for k, v in self.config.items() if k != "type"}
        spec = self.config.get("activation") or "linear"
        if isinstance(spec, dict):
            return spec["type"], {k: v for k, v in spec.items() if k != "type"}
        return spec, {}

    @property
    def name(self) -> str:
        return f"layers[{self.index}] ({self.type})"


def layers_of(model: Model) -> list[Layer]:
    arrays = model.doc["arrays"]
    return [Layer(i, layer["type"], layer.get("config", {}),
                  {k: arrays[f"layers.{i}.{k}"] for k in layer["params"]})
            for i, layer in enumerate(model.doc["layers"])]


def conv_pads(layer: Layer) -> tuple[int, int]:
    """(rows, columns) of zeros added on each side, as the weights file's padding says."""
    padding = layer.config.get("padding", 0)
    kh, kw = layer.params["W"].shape[2:]
    if padding == "valid":
        return 0, 0
    if padding == "same":
        return kh // 2, kw // 2
    return int(padding), int(padding)


def refuse(layer: Layer, target: str, what: str | None = None) -> ConfigError:
    thing = f"activation {what!r} of " if what else ""
    return ConfigError(f"{thing}{layer.name}: {target} has no faithful counterpart for it, so the "
                       f"network cannot be exported as {target}; export as npz and write that layer yourself")


# -- npz: PyTorch's names and layouts ---------------------------------------------------------
def torch_arrays(model: Model) -> dict[str, np.ndarray]:
    """{"layers.<i>.weight": ..., "layers.<i>.bias": ...} in PyTorch's layouts: a dense W
    (in, out) becomes a Linear weight (out, in); a conv W is already (out, in, kh, kw)."""
    arrays = {}
    for layer in layers_of(model):
        if "W" in layer.params:
            w = layer.params["W"]
            arrays[f"layers.{layer.index}.weight"] = np.ascontiguousarray(w.T if layer.type == "dense" else w)
        if "b" in layer.params:
            arrays[f"layers.{layer.index}.bias"] = layer.params["b"]
    return arrays


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


# -- torch: model.py ----------------------------------------------------------------------------
TORCH_ACTIVATIONS: dict[str, Callable[[dict], str]] = {
    "relu": lambda p: "nn.ReLU()",
    "tanh": lambda p: "nn.Tanh()",
    "sigmoid": lambda p: "nn.Sigmoid()",
    "leaky_relu": lambda p: f"nn.LeakyReLU({p.get('alpha', 0.01)!r})",
    "elu": lambda p: f"nn.ELU({p.get('alpha', 1.0)!r})",
    "selu": lambda p: "nn.SELU()",  # the same alpha and scale as nnrun's, to float64 precision
    "swish": lambda p: "nn.SiLU()" if p.get("beta", 1.0) == 1 else f"Swish({p['beta']!r})",
    "binary_step": lambda p: "BinaryStep()",
    "softmax": lambda p: "nn.Softmax(dim=1)",
}
CUSTOM_MODULES = {
    "Swish": '''class Swish(nn.Module):
    """x * sigmoid(beta * x), nnrun's swish (beta = 1 is nn.SiLU)."""

    def __init__(self, beta: float):
        super().__init__()
        self.beta = beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.beta * x)
''',
    "BinaryStep": '''class BinaryStep(nn.Module):
    """1 where x > 0, else 0 (nnrun's binary_step)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x > 0).to(x.dtype)
''',
}


def torch_layer(layer: Layer) -> str | None:
    """The torch module of a layer's own transform, as source text (None: an activation layer)."""
    p, c = layer.params, layer.config
    if layer.type == "dense":
        n_in, n_out = p["W"].shape
        return f"nn.Linear({n_in}, {n_out}{'' if 'b' in p else ', bias=False'})"
    if layer.type == "conv2d":
        f, ch, kh, kw = p["W"].shape
        bias = "" if "b" in p else ", bias=False"
        return (f"nn.Conv2d({ch}, {f}, kernel_size=({kh}, {kw}), stride={c.get('stride', 1)}, "
                f"padding={conv_pads(layer)}{bias})")
    if layer.type in ("maxpool2d", "avgpool2d"):
        kind = "MaxPool2d" if layer.type == "maxpool2d" else "AvgPool2d"
        return f"nn.{kind}(kernel_size={c.get('pool_size', 2)}, stride={c.get('stride') or c.get('pool_size', 2)})"
    if layer.type == "flatten":
        return "nn.Flatten()"
    if layer.type == "dropout":
        return f"nn.Dropout({c.get('rate', 0.5)!r})"
    if layer.type in ACTIVATION_LAYERS:
        return None
    raise refuse(layer, "torch")


def torch_modules(layers: list[Layer]) -> list[tuple[str, str]]:
    """(name, source) of each torch module in order: "<i>" for layers[i]'s transform, then
    "<i>_<activation>" for its activation (an activation layer of its own is just "<i>")."""
    modules = []
    for layer in layers:
        own = torch_layer(layer)
        if own is not None:
            modules.append((str(layer.index), own))
        name, params = layer.activation
        if name == "linear":
            if own is None:
                modules.append((str(layer.index), "nn.Identity()"))
            continue
        if name not in TORCH_ACTIVATIONS:
            raise refuse(layer, "torch", name)
        modules.append((str(layer.index) if own is None else f"{layer.index}_{name}", TORCH_ACTIVATIONS[name](params)))
    return modules


def torch_source(model: Model, source: str) -> str:
    """model.py: the torch.nn.Module of the network, with its input preparation and classes."""
    modules = torch_modules(layers_of(model))
    custom = [code for name, code in CUSTOM_MODULES.items() if any(src.startswith(f"{name}(") for _, src in modules)]
    lines = "\n".join(f"            ({name!r}, {src})," for name, src in modules)
    dtype = "torch.float64" if model.net.dtype == np.float64 else "torch.float32"
    return TORCH_TEMPLATE.format(  # the path escaped (quotes, backslashes) to sit inside the docstring
        source=json.dumps(source)[1:-1], version=__version__, doc_input=input_text(model), k=len(model.class_names),
        output=output_text(model), input_shape=tuple(model.net.input_shape),
        class_names=json.dumps(model.class_names, ensure_ascii=False), input=repr(model.input.as_dict()),
        dtype=dtype, custom="".join(f"\n\n{c}" for c in custom), modules=lines)


TORCH_TEMPLATE = '''"""The network of {source}, exported by nnrun {version} for PyTorch.

Load it with its trained weights (weights.npz, beside this file):

    from model import load
    net = load()          # a torch.nn.Module in evaluation mode

Input: tensors of shape (N, *INPUT_SHAPE), {doc_input}.
Output: (N, {k}) {output}, in the order of CLASS_NAMES.
"""

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

INPUT_SHAPE = {input_shape}
CLASS_NAMES = {class_names}
# How the training inputs were prepared: raw values / scale_divisor, spanning `range` once scaled.
INPUT = {input}
DTYPE = {dtype}{custom}


class Net(nn.Module):
    """The layers of weights.json in order. Module "3" is its layers[3] and "3_relu" that layer's
    activation, so the state_dict names ("layers.3.weight") follow weights.json's indices."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(OrderedDict([
{modules}
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def load(path=Path(__file__).with_name("weights.npz")) -> Net:
    """The network with the trained weights of `path`, in evaluation mode (dropout off)."""
    net = Net().to(DTYPE)
    with np.load(path, allow_pickle=False) as arrays:
        net.load_state_dict({{name: torch.from_numpy(arrays[name]) for name in arrays.files}})
    return net.eval()
'''


def input_text(model: Model) -> str:
    """How to prepare inputs, in words: 'float32 raw values divided by 255.0'."""
    divisor = model.input.scale_divisor
    scaling = f"raw values divided by {divisor!r}" if divisor is not None else "raw values, unscaled"
    return f"{model.net.dtype} {scaling}"


def output_text(model: Model) -> str:
    last = layers_of(model)[-1].activation[0] if model.doc["layers"] else "linear"
    return "class probabilities (softmax)" if last == "softmax" else f"outputs of a {last} activation"


# -- onnx -----------------------------------------------------------------------------------
class OnnxGraph:
    """Nodes and initialisers appended layer by layer; `tip` is the name of the latest output."""

    def __init__(self, helper, dtype: np.dtype):
        self.helper, self.dtype = helper, dtype
        self.nodes, self.initializers, self.tip = [], [], "input"

    def constant(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.asarray(value, self.dtype), name))
        return name

    def node(self, op: str, name: str, *inputs: str, **attrs) -> None:
        """A node of `op` applied to the tip (and `inputs`); its output becomes the tip."""
        output = f"{name}.out"
        self.nodes.append(self.helper.make_node(op, [self.tip, *inputs], [output], name=name, **attrs))
        self.tip = output


def onnx_layer(g: OnnxGraph, layer: Layer) -> None:
    """The nodes of a layer's own transform (nothing for dropout and activation layers)."""
    at, p, c = f"layers.{layer.index}", layer.params, layer.config
    bias = [g.constant(f"{at}.bias", p["b"])] if "b" in p else []
    if layer.type == "dense":
        g.node("Gemm", f"{at}.dense", g.constant(f"{at}.weight", p["W"].T), *bias, transB=1)
    elif layer.type == "conv2d":
        (ph, pw), s = conv_pads(layer), c.get("stride", 1)
        g.node("Conv", f"{at}.conv2d", g.constant(f"{at}.weight", p["W"]), *bias,
               kernel_shape=list(p["W"].shape[2:]), strides=[s, s], pads=[ph, pw, ph, pw])
    elif layer.type in ("maxpool2d", "avgpool2d"):
        size = c.get("pool_size", 2)
        stride = c.get("stride") or size
        op = "MaxPool" if layer.type == "maxpool2d" else "AveragePool"
        g.node(op, f"{at}.{layer.type}", kernel_shape=[size, size], strides=[stride, stride])
    elif layer.type == "flatten":
        g.node("Flatten", f"{at}.flatten", axis=1)
    elif layer.type != "dropout" and layer.type not in ACTIVATION_LAYERS:
        raise refuse(layer, "ONNX")


def onnx_activation(g: OnnxGraph, layer: Layer) -> None:
    name, params = layer.activation
    at = f"layers.{layer.index}.{name}"
    simple = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}
    if name == "linear":
        return
    if name in simple:
        g.node(simple[name], at)
    elif name == "leaky_relu":
        g.node("LeakyRelu", at, alpha=float(params.get("alpha", 0.01)))
    elif name == "elu":
        g.node("Elu", at, alpha=float(params.get("alpha", 1.0)))
    elif name == "selu":
        g.node("Selu", at, alpha=SELU_ALPHA, gamma=SELU_SCALE)
    elif name == "softmax":
        g.node("Softmax", at, axis=1)  # opset 13+: over axis 1 alone (channels of an image)
    elif name == "binary_step":
        zero = g.constant(f"{at}.zero", np.zeros((), g.dtype))
        g.node("Greater", f"{at}.greater", zero)
        g.node("Cast", at, to=g.helper.np_dtype_to_tensor_dtype(g.dtype))
    elif name == "swish":
        onnx_swish(g, at, float(params.get("beta", 1.0)))
    else:
        raise refuse(layer, "ONNX", name)


def onnx_swish(g: OnnxGraph, at: str, beta: float) -> None:
    """x * sigmoid(beta x), from Mul and Sigmoid (ONNX's own Swish is newer than opset 17)."""
    x = g.tip
    if beta != 1:
        g.node("Mul", f"{at}.beta", g.constant(f"{at}.beta_value", np.array(beta)))
    g.node("Sigmoid", f"{at}.sigmoid")
    g.node("Mul", at, x)


def onnx_model(model: Model, source: str):
    """The ONNX ModelProto of the network: input `input` (N, *input_shape), output `output`
    (N, classes), the class names and input preparation in its metadata. Always float32:
    onnxruntime has no float64 convolution or pooling."""
    try:
        import onnx
        from onnx import helper
    except ImportError:
        raise ConfigError("--format onnx needs the onnx package: pip install 'nnrun[onnx]'") from None
    g = OnnxGraph(helper, np.dtype(np.float32))
    for layer in layers_of(model):
        onnx_layer(g, layer)
        onnx_activation(g, layer)
    g.nodes.append(helper.make_node("Identity", [g.tip], ["output"], name="output"))
    elem = helper.np_dtype_to_tensor_dtype(g.dtype)
    graph = helper.make_graph(
        g.nodes, "nnrun", [helper.make_tensor_value_info("input", elem, ["N", *model.net.input_shape])],
        [helper.make_tensor_value_info("output", elem, ["N", len(model.class_names)])], g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                              ir_version=ONNX_IR_VERSION, producer_name="nnrun", producer_version=__version__,
                              doc_string=f"The network of {source}. Input: {input_text(model)}; "
                                         f"output: {output_text(model)}.")
    helper.set_model_props(proto, {"class_names": json.dumps(model.class_names),
                                   "input": json.dumps(model.input.as_dict())})
    onnx.checker.check_model(proto, full_check=True)
    return proto


# -- the command ----------------------------------------------------------------------------
@dataclass
class Exported:
    """What export_run wrote, and anything the user should know about it."""

    files: list[Path]
    notes: list[str]


def export_run(run: PathLike, fmt: str, out_dir: PathLike | None = None, runs_dir: PathLike = "runs") -> Exported:
    """Export a run's (or a weights file's) network into out_dir (default: export/ beside the
    weights file)."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: unknown format; use onnx, npz or torch")
    model = load_model(run, runs_dir)
    out = Path(out_dir) if out_dir is not None else model.path.parent / "export"
    files, notes = export_files(model, fmt), []
    if fmt == "onnx" and model.net.dtype != np.float32:
        notes.append(f"the {model.net.dtype} weights are written as float32: onnxruntime has no {model.net.dtype} "
                     "convolution or pooling (the npz and torch formats keep them)")
    for name, data in files.items():
        write_bytes(out / name, data)
    return Exported([out / name for name in files], notes)


def export_files(model: Model, fmt: str) -> dict[str, bytes]:
    """{file name: contents} of one format."""
    source = str(model.path)
    if fmt == "onnx":
        return {"model.onnx": onnx_model(model, source).SerializeToString()}
    files = {"model.py": torch_source(model, source).encode()} if fmt == "torch" else {}
    return files | {"weights.npz": npz_bytes(torch_arrays(model))}


def _activation_layers() -> frozenset[str]:
    from nnrun.nn import ACTIVATIONS

    return frozenset(ACTIVATIONS)


ACTIVATION_LAYERS = _activation_layers()
