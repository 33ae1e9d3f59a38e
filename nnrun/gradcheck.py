"""`nnrun check`: the configured network's gradients against central finite differences.

The network is built from the config in float64 (its own layers and initialisers) and run on a
tiny batch of random inputs with random labels; every bias (and any array that starts all
zero) gets small random values, so that the check is made at a general point. Compared:

- each parameter's gradient, as `net.loss_and_gradients` leaves it (what training uses);
- each layer's input gradient, dL/d(its input), from the layers' backward passes in sequence;
- each registered loss's gradient with respect to its input (and to the logits, for a loss
  that fuses with softmax).

Central differences: numeric_i = (L(w + eps e_i) - L(w - eps e_i)) / (2 eps), eps = 1e-6, on a
sample of each array's coordinates (half of them those with the largest analytic gradient, the
rest at random). The relative error of an array is max|a - n| / max(max|a| + max|n|, floor),
floor being the differences' resolution (1e4 * machine epsilon * max(1, |L|) / eps): scale free,
and defined when both sides are about zero.

Kinks: a relu-like activation at 0 or a max-pool tie has no derivative, and a difference that
steps across one measures nothing. Each perturbed forward compares which side of 0 every
pre-activation of a non-smooth activation is on, and which input wins every max-pool window,
with the unperturbed forward: a coordinate whose step would cross a kink is skipped and another
one taken. A layer after a binary_step gets no gradient at all (its derivative is zero), and is
reported as such rather than as checked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nnrun import nn

EPS = 1e-6
TOL = 1e-6
SAMPLES = 24  # coordinates compared per array (all of a smaller array)
BATCH = 2
SMOOTH = {"linear", "tanh", "sigmoid", "swish", "softmax"}  # every other activation may kink at 0
ZERO_GRADIENT = {"binary_step"}  # activations whose derivative is zero wherever it exists


@dataclass
class Row:
    """One compared array: a layer's parameter or input, or a loss's input."""

    layer: int | None  # None for a loss
    name: str  # "2 conv2d (relu)", "loss cross_entropy"
    what: str  # "W", "b", "input", "output", "logits"
    size: int
    checked: int = 0
    skipped: int = 0  # coordinates whose step would cross a kink
    scale: float = 0.0  # max |gradient| over the checked coordinates (both sides)
    error: float | None = None  # None when no coordinate could be checked
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.error is not None and self.error < TOL

    @property
    def verdict(self) -> str:
        if self.error is None:
            return "not checked"
        if not self.passed:
            return "FAIL"
        return "zero" if self.scale == 0 else "ok"


@dataclass
class Report:
    rows: list[Row]
    loss: str
    batch: int
    seconds: float = 0.0
    tol: float = TOL
    eps: float = EPS
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.error is not None and not r.passed]

    @property
    def worst(self) -> Row | None:
        checked = [r for r in self.rows if r.error is not None]
        return max(checked, key=lambda r: r.error) if checked else None


# -- the network as a sequence of layers ----------------------------------------------------------
def layer_name(i: int, layer) -> str:
    act = layer.activation.name
    return f"{i} {layer.type}" + (f" ({act})" if act not in ("linear", layer.type) else "")


def kink_signature(layer, a: np.ndarray, z: np.ndarray) -> np.ndarray | None:
    """Which branch of its kinks a layer took: the sign pattern of a non-smooth activation's
    input, or which input won each max-pool window; None for a smooth layer."""
    if layer.type == "maxpool2d":
        cfg = layer.config()
        p, s = cfg["pool_size"], cfg["stride"]
        windows = sliding_window_view(a, (p, p), axis=(2, 3))[:, :, ::s, ::s]
        return windows.reshape(*windows.shape[:4], -1).argmax(axis=-1)
    if layer.activation.name not in SMOOTH:
        return z > 0
    return None


class Probe:
    """The network on one batch, from any layer on: training forwards with the same dropout
    masks every time, recording each layer's input and kink signature."""

    def __init__(self, net: nn.Sequential, loss: nn.Loss, x: np.ndarray, y: np.ndarray, random_state: dict):
        self.net, self.loss, self.x, self.y = net, loss, x, y
        self.random_state = random_state  # the dropout streams before the batch's forward
        self.inputs: list[np.ndarray] = []
        self.value, self.signatures = self.tail(0, x, record=True)

    def tail(self, start: int, a: np.ndarray, record: bool = False) -> tuple[float, list]:
        """The loss of layers[start:] applied to a, and their kink signatures."""
        self.net.set_random_state(self.random_state)
        signatures = []
        for layer in self.net.layers[start:]:
            if record:
                self.inputs.append(a)
            z, out = layer.forward_with_logits(a, training=True)
            signatures.append(kink_signature(layer, a, z))
            a = out
        self.output = a
        return self.net.loss_value(self.loss, z, a, self.y), signatures

    def same_branches(self, start: int, signatures: list) -> bool:
        return all(s is None or np.array_equal(s, t) for s, t in zip(self.signatures[start:], signatures, strict=True))

    def input_gradients(self) -> list[np.ndarray]:
        """dL/d(input of layer i) for every i, by the layers' backward passes in sequence."""
        self.tail(0, self.x)  # every layer's caches from this batch's forward
        layers, out = self.net.layers, self.output
        fused = self.net.fuses_softmax(self.loss)
        grad = self.loss.logits_gradient(out, self.y) if fused else self.loss.gradient(out, self.y)
        grads = [None] * len(layers)
        for i in range(len(layers) - 1, -1, -1):
            grad = layers[i].backward(grad, skip_activation=fused and i == len(layers) - 1, input_gradient=True)
            grads[i] = grad
        return grads


# -- central differences on a sample of coordinates -------------------------------------------------
def candidates(analytic: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flat indices to try, best first: the largest analytic gradients, then the rest at random."""
    flat = np.abs(analytic).ravel()
    largest = np.argsort(-flat, kind="stable")[:max(1, SAMPLES // 2)]
    rest = rng.permutation(np.setdiff1d(np.arange(flat.size), largest))
    return np.concatenate([largest, rest])


def compare(row: Row, analytic: np.ndarray, target: np.ndarray, f: Callable[[], tuple[float, bool]],
            rng: np.random.Generator, floor: float) -> Row:
    """Differences of f (value, stayed on the same side of every kink) as target's coordinates
    move by +-EPS, against analytic, on up to SAMPLES coordinates that cross no kink."""
    flat, grad = target.reshape(-1), analytic.reshape(-1)
    numeric, exact = [], []
    for i in candidates(analytic, rng):
        if len(numeric) == SAMPLES or row.skipped > 4 * SAMPLES:
            break
        old = flat[i]
        flat[i] = old + EPS
        plus, same_plus = f()
        flat[i] = old - EPS
        minus, same_minus = f()
        flat[i] = old
        if not (same_plus and same_minus):
            row.skipped += 1
            continue
        numeric.append((plus - minus) / (2 * EPS))
        exact.append(grad[i])
    return measured(row, np.array(exact), np.array(numeric), floor)


def measured(row: Row, analytic: np.ndarray, numeric: np.ndarray, floor: float) -> Row:
    row.checked = len(numeric)
    if not row.checked:
        row.note = row.note or "every coordinate sits at a kink"
        return row
    row.scale = float(max(np.abs(analytic).max(), np.abs(numeric).max()))
    row.error = float(np.abs(analytic - numeric).max() / max(np.abs(analytic).max() + np.abs(numeric).max(), floor))
    return row


def resolution(value: float) -> float:
    """The smallest gradient central differences can tell from zero at this loss value."""
    return 1e4 * np.finfo(np.float64).eps * max(1.0, abs(value)) / EPS


# -- the check ---------------------------------------------------------------------------------------
def general_point(net: nn.Sequential, rng: np.random.Generator) -> None:
    """Biases, and any array that starts all zero, get small random values: the check is then
    made at a general point rather than a symmetric one."""
    for name, p in net.parameters().items():
        if name.endswith(".b") or not p.any():
            p[...] = rng.normal(0.0, 0.1, p.shape)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS limited to one thread, when threadpoolctl is installed (nnrun does not need it): a
    tiny batch's products are several times slower when a second thread joins in."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limits = nullcontext()
    else:
        limits = threadpool_limits(1, user_api="blas")
    with limits:
        yield


def check_network(net: nn.Sequential, loss: nn.Loss, num_classes: int, batch: int = BATCH,
                  seed: int = 0, x: np.ndarray | None = None) -> Report:
    """Check a float64 network's gradients (see the module's docstring) on x (default: `batch`
    standard normal samples); the network's weights are changed (a general point)."""
    if net.dtype != np.float64:
        raise ValueError("gradient checks need a float64 network: build it with dtype=np.float64")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    general_point(net, rng)
    x = rng.standard_normal((batch, *net.input_shape)) if x is None else np.array(x, np.float64)
    y = np.arange(len(x)) % num_classes
    with one_blas_thread():
        rows = network_rows(net, loss, x, y, rng) + loss_rows(net, x, y, rng)
    report = Report(rows, loss.name, len(x), notes=zero_gradient_notes(net))
    report.seconds = time.perf_counter() - started
    return report


def network_rows(net: nn.Sequential, loss: nn.Loss, x: np.ndarray, y: np.ndarray,
                 rng: np.random.Generator) -> list[Row]:
    random_state = net.random_state()
    value, _ = net.loss_and_gradients(loss, x, y, input_gradient=True)
    param_grads = {k: g.copy() for k, g in net.gradients().items()}
    probe = Probe(net, loss, x, y, random_state)
    if not np.isclose(probe.value, value, rtol=1e-12, atol=0):
        raise RuntimeError(f"the layers in sequence give the loss {probe.value!r}, the network {value!r}")
    input_grads = probe.input_gradients()
    floor = resolution(value)
    params = net.parameters()
    rows = []
    for i, layer in enumerate(net.layers):
        name = layer_name(i, layer)
        for key in layer.params:
            full = f"layers.{i}.{key}"
            f = lambda i=i: _same_side(probe, i, probe.inputs[i])
            rows.append(compare(Row(i, name, key, params[full].size), param_grads[full], params[full], f, rng, floor))
        a = probe.inputs[i].copy()
        f = lambda i=i, a=a: _same_side(probe, i, a)
        rows.append(compare(Row(i, name, "input", a.size), input_grads[i], a, f, rng, floor))
    return rows


def _same_side(probe: Probe, start: int, a: np.ndarray) -> tuple[float, bool]:
    value, signatures = probe.tail(start, a)
    return value, probe.same_branches(start, signatures)


def loss_rows(net: nn.Sequential, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> list[Row]:
    """Every registered loss on this batch's outputs: its gradient, and its gradient with respect
    to the logits when it fuses with softmax. A loss that takes the log of probabilities gets
    softmax probabilities mixed half and half with the uniform distribution: near a tiny
    probability the log's curvature would swamp the differences."""
    logits, out = net.forward_with_logits(x)
    softmax = nn.make_activation("softmax")
    rows = []
    for name in nn.LOSSES:
        loss = nn.make_loss(name)
        z = logits.copy()
        p = (softmax.forward(z) + 1 / z.shape[1]) / 2 if loss.needs_softmax else out.copy()
        floor = resolution(loss.value(p, y))
        value = lambda loss=loss, p=p: (loss.value(p, y), True)
        rows.append(compare(Row(None, f"loss {name}", "output", p.size), loss.gradient(p, y), p, value, rng, floor))
        if loss.fuses_with_softmax:
            from_logits = lambda loss=loss, z=z: (loss.value_from_logits(z, y), True)
            analytic = loss.logits_gradient(softmax.forward(z), y)
            rows.append(compare(Row(None, f"loss {name}", "logits", z.size), analytic, z, from_logits, rng, floor))
    return rows


def zero_gradient_notes(net: nn.Sequential) -> list[str]:
    """What a zero-derivative activation (binary_step) does to the layers up to it: their rows
    compare zeros ("zero" in the table), and why."""
    notes = []
    for k, layer in enumerate(net.layers):
        name = layer.activation.name
        if name not in ZERO_GRADIENT:
            continue
        notes.append(f"layer {k} ({layer.type}) uses {name}, whose derivative is zero: no gradient reaches "
                     f"{'its parameters or ' if layer.params else ''}the layers before it (nothing trains "
                     "there), so their rows compare zeros")
    return notes


# -- from a config ----------------------------------------------------------------------------------
def check_experiment(exp, batch: int = BATCH) -> tuple[Report, str | None]:
    """Check the network a config describes, built in float64 for the data's input shape (from
    the catalogue when a named dataset is not downloaded: the check needs only shapes). Returns
    the report and a note on where the shapes came from (None for the data itself)."""
    from nnrun.builder import build_loss, build_network, input_shape_and_classes

    input_shape, num_classes, note = input_shape_and_classes(exp)
    exp64 = exp.model_copy(update={"model": exp.model.model_copy(update={"dtype": "float64"})})
    net = build_network(exp64, input_shape, num_classes)
    return check_network(net, build_loss(exp), num_classes, batch, seed=exp.seed), note
