"""The PyTorch twin of an nnrun network, for `nnrun bench --compare torch`: the same layers with the
same initial weights, the same loss, the same optimiser with the same hyper-parameters, and a
training step that does what nnrun.train.train_step does. Imports torch: load it only when asked.

Weights map through the documented layout of weights.json: a dense W (in, out) is Linear's weight
transposed; a conv2d W (F, C, kh, kw) is Conv2d's weight as it is; flatten keeps C, H, W order in
both. A softmax output with cross_entropy becomes logits and F.cross_entropy (what nnrun computes,
fused, as p - y). Dropout draws its masks from PyTorch's generator, so with dropout the two networks
differ by their masks; gradient clipping follows PyTorch's clip_grad_norm_ (norm + 1e-6).
What has no twin (a new layer, activation, key or optimiser) is refused by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn as tnn

from nnrun import nn
from nnrun.errors import ConfigError

DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


class Unmappable(ConfigError):
    """Something of the nnrun network or its training has no PyTorch twin here (exit code 2)."""

    def __init__(self, what: str):
        super().__init__(f"--compare torch: {what} has no PyTorch twin in nnrun bench; "
                         "benchmark it without --compare")


class Swish(tnn.Module):
    """x * sigmoid(beta x) (SiLU is beta = 1)."""

    def __init__(self, beta: float):
        super().__init__()
        self.beta = beta

    def forward(self, x):
        return x * torch.sigmoid(self.beta * x)


class BinaryStep(tnn.Module):
    """1 where x > 0, else 0, with a zero gradient (not none: weight decay still acts before it)."""

    def forward(self, x):
        return (x > 0).to(x.dtype) + 0 * x


ACTIVATIONS: dict[str, Callable[..., tnn.Module | None]] = {
    "linear": lambda: None,
    "tanh": tnn.Tanh,
    "relu": tnn.ReLU,
    "leaky_relu": lambda alpha=0.01: tnn.LeakyReLU(alpha),
    "elu": lambda alpha=1.0: tnn.ELU(alpha),
    "selu": tnn.SELU,
    "binary_step": BinaryStep,
    "sigmoid": tnn.Sigmoid,
    "swish": lambda beta=1.0: tnn.SiLU() if beta == 1 else Swish(beta),
    "softmax": lambda: tnn.Softmax(dim=1),
}


def conv_padding(cfg: dict) -> tuple[int, int]:
    kh, kw = cfg["kernel_size"]
    if cfg["padding"] == "valid":
        return 0, 0
    if cfg["padding"] == "same":  # nnrun allows it with stride 1 and odd kernels only
        return kh // 2, kw // 2
    return int(cfg["padding"]), int(cfg["padding"])


LAYERS: dict[str, Callable[[nn.Layer, dict], tnn.Module]] = {
    "dense": lambda layer, cfg: tnn.Linear(layer.input_shape[0], cfg["units"], bias=cfg["use_bias"]),
    "conv2d": lambda layer, cfg: tnn.Conv2d(layer.input_shape[0], cfg["filters"], tuple(cfg["kernel_size"]),
                                            cfg["stride"], conv_padding(cfg), bias=cfg["use_bias"]),
    "maxpool2d": lambda layer, cfg: tnn.MaxPool2d(cfg["pool_size"], cfg["stride"]),
    "avgpool2d": lambda layer, cfg: tnn.AvgPool2d(cfg["pool_size"], cfg["stride"]),
    "flatten": lambda layer, cfg: tnn.Flatten(),
    "dropout": lambda layer, cfg: tnn.Dropout(cfg["rate"]),
}
# The keys of each layer's config() that its twin reads; init only chose the initial weights,
# which are copied.
LAYER_KEYS = {"dense": {"units", "use_bias"}, "conv2d": {"filters", "kernel_size", "stride", "padding", "use_bias"},
              "maxpool2d": {"pool_size", "stride"}, "avgpool2d": {"pool_size", "stride"}, "flatten": set(),
              "dropout": {"rate"}}
IGNORED_KEYS = {"activation", "init", "init_params"}


def activation_module(index: int, layer: nn.Layer) -> tnn.Module | None:
    name, params = layer.activation.name, layer.activation.config()
    if name not in ACTIVATIONS:
        raise Unmappable(f"layer {index} ({layer.type}): activation {name}")
    try:
        return ACTIVATIONS[name](**params)
    except TypeError:
        raise Unmappable(f"layer {index} ({layer.type}): activation {name} with {params}") from None


def core_module(index: int, layer: nn.Layer) -> tnn.Module | None:
    """The layer without its activation; None for an activation layer ({type: relu})."""
    if layer.type in nn.ACTIVATIONS and layer.type == layer.activation.name:
        return None
    if layer.type not in LAYERS:
        raise Unmappable(f"layer {index} ({layer.type})")
    cfg = layer.config()
    unread = set(cfg) - LAYER_KEYS[layer.type] - IGNORED_KEYS
    if unread:
        raise Unmappable(f"layer {index} ({layer.type})'s {', '.join(sorted(unread))}")
    return LAYERS[layer.type](layer, cfg)


def modules_of(net: nn.Sequential, fused_softmax: bool) -> list[tuple[int, tnn.Module | None, tnn.Module | None]]:
    """(index, core module, activation module) per layer; the output softmax left out when fused."""
    last = len(net.layers) - 1
    return [(i, core_module(i, layer), None if fused_softmax and i == last else activation_module(i, layer))
            for i, layer in enumerate(net.layers)]


# Torch optimisers by nnrun's name, with nnrun's keys as keyword arguments (their defaults are
# nnrun's, which follow PyTorch's); weight_decay and clip_norm are handled for all of them.
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda params, lr, wd, momentum=0.0, nesterov=False: torch.optim.SGD(
        params, lr, momentum=momentum, nesterov=nesterov, weight_decay=wd),
    "adam": lambda params, lr, wd, beta1=0.9, beta2=0.999, eps=1e-8: torch.optim.Adam(
        params, lr, betas=(beta1, beta2), eps=eps, weight_decay=wd),
    "adamw": lambda params, lr, wd, beta1=0.9, beta2=0.999, eps=1e-8: torch.optim.AdamW(
        params, lr, betas=(beta1, beta2), eps=eps, weight_decay=wd),
    "rmsprop": lambda params, lr, wd, alpha=0.99, eps=1e-8: torch.optim.RMSprop(
        params, lr, alpha=alpha, eps=eps, weight_decay=wd),
}


def twin_optimizer(params, optimizer: dict, lr: float) -> tuple[torch.optim.Optimizer, float | None]:
    """(the torch optimiser, clip_norm) for an optimizer config ({"type": "adam", "lr": ..., ...});
    `lr` is the rate to train at (the schedule's first)."""
    keys = dict(optimizer)
    kind = keys.pop("type")
    keys.pop("lr", None)
    clip_norm, wd = keys.pop("clip_norm", None), keys.pop("weight_decay", 0.0)
    if kind not in OPTIMIZERS:
        raise Unmappable(f"optimizer {kind}")
    try:
        return OPTIMIZERS[kind](params, float(lr), float(wd), **keys), clip_norm
    except TypeError:
        raise Unmappable(f"optimizer {kind} with {keys}") from None


@dataclass
class Twin:
    """The twin network and its training: step(x, y) is one mini-batch as train_step does it."""

    model: tnn.Sequential
    optimizer: torch.optim.Optimizer
    loss_name: str
    fused_softmax: bool  # the model ends at the logits: outputs are softmax(model(x))
    clip_norm: float | None
    # (nnrun's parameter name, torch parameter, whether nnrun keeps it transposed)
    names: list[tuple[str, torch.nn.Parameter, bool]] = field(default_factory=list)

    def loss(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.fused_softmax:
            return F.cross_entropy(z, y)
        return F.mse_loss(z, F.one_hot(y, z.shape[1]).to(z.dtype))

    def step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Forward, loss, backward and the optimiser's update; the loss value. A non-finite loss
        takes no step, as in nnrun."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(self.model(x), y)
        loss.backward()
        value = loss.item()
        if math.isfinite(value):
            if self.clip_norm:
                tnn.utils.clip_grad_norm_(self.model.parameters(), self.clip_norm)
            self.optimizer.step()
        return value

    def predict(self, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Outputs (probabilities after a softmax) in evaluation mode, batch_size at a time, as
        Sequential.predict."""
        self.model.eval()
        try:
            with torch.inference_mode():
                parts = [self.model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
                out = torch.cat(parts)
                return torch.softmax(out, dim=1) if self.fused_softmax else out
        finally:
            self.model.train()

    def weights(self) -> dict[str, np.ndarray]:
        """The parameters in nnrun's layout, by nnrun's names."""
        return {name: (p.detach().T if transposed else p.detach()).numpy().copy()
                for name, p, transposed in self.names}


def copy_weights(index: int, layer: nn.Layer, module: tnn.Module) -> list[tuple[str, tnn.Parameter, bool]]:
    transposed = isinstance(module, tnn.Linear)
    pairs = [("W", module.weight, transposed)] + ([("b", module.bias, False)] if module.bias is not None else [])
    with torch.no_grad():
        for key, p, t in pairs:
            w = torch.from_numpy(np.ascontiguousarray(layer.params[key]))
            p.copy_(w.T if t else w)
    return [(f"layers.{index}.{key}", p, t) for key, p, t in pairs]


def build_twin(net: nn.Sequential, loss: str, optimizer: dict, lr: float) -> Twin:
    """The twin of `net` (with its current weights) trained with `loss` and `optimizer` (a config's
    optimizer section as a dict) at rate lr; Unmappable for what has no twin."""
    output = net.layers[-1].activation.name
    if loss == "cross_entropy" and output != "softmax":
        raise Unmappable("cross_entropy without a softmax output")
    if loss not in ("cross_entropy", "mse"):
        raise Unmappable(f"loss {loss}")
    fused = loss == "cross_entropy"
    dtype = DTYPES[np.dtype(net.dtype)]
    modules, names = [], []
    for index, core, activation in modules_of(net, fused):
        if core is not None:
            core = core.to(dtype)  # before the weights are copied in, so that float64 stays exact
            modules.append(core)
            if net.layers[index].params:
                names += copy_weights(index, net.layers[index], core)
        if activation is not None:
            modules.append(activation)
    model = tnn.Sequential(*modules).to(dtype)
    model.train()
    torch_optimizer, clip_norm = twin_optimizer(model.parameters(), optimizer, lr)
    return Twin(model, torch_optimizer, loss, fused, clip_norm, names)


def backend() -> dict:
    """What PyTorch computes with on this CPU: its version, threads, kernels' instruction set."""
    return {"version": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkl": torch.backends.mkl.is_available(), "mkldnn": torch.backends.mkldnn.is_available()}
