"""Diagnostics while training: how each layer fares, epoch by epoch, and findings in plain words.

Per layer and epoch (one row of diagnostics.csv each):

- grad_norm: the L2 norm of the layer's gradients (all its parameters together), the mean over
  a few batches of the epoch spread evenly across it (SAMPLED_BATCHES);
- update_ratio: ||parameters after the step - before|| / ||before|| over the same batches: how
  far one step moves the layer (about 1e-3 is the usual healthy figure);
- dead_fraction (relu): the fraction of the layer's units (a dense unit, or a conv filter) whose
  output is zero for every sample of the probe, at every position;
- saturated_fraction (tanh, sigmoid): the fraction of units in the flat tail of their activation
  (|tanh| > 0.99, sigmoid < 0.01 or > 0.99) on at least 90 % of the probe's values.

The probe is a fixed sample of the training data (evenly spaced, no random numbers drawn: a run
is bit-identical with or without diagnostics), run layer by layer in evaluation mode at the end of
each epoch. The callback only reads the network (its parameters, gradients and layers' forward
passes); it never changes what training computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nnrun import fmt, nn
from nnrun.train import Callback

SAMPLED_BATCHES = 2  # per epoch, spread evenly: the steps whose gradient and update are measured
PROBE_MAX, PROBE_FRACTION, PROBE_MIN = 512, 0.1, 64  # samples: a tenth of the data, within bounds
SATURATED_SHARE = 0.9  # of a unit's probe values in the flat tail: the unit is saturated
COLUMNS = ["epoch", "layer", "type", "activation", "grad_norm", "update_ratio", "dead_fraction",
           "saturated_fraction"]
NUMERIC = [k for k in COLUMNS if k not in ("type", "activation")]
WATCHED = {"relu": "dead_fraction", "tanh": "saturated_fraction", "sigmoid": "saturated_fraction"}


def probe_sample(x: np.ndarray) -> np.ndarray:
    """A tenth of the training samples (at least 64, at most 512, all of fewer), evenly spaced."""
    n = len(x)
    k = min(n, PROBE_MAX, max(PROBE_MIN, round(PROBE_FRACTION * n)))
    return x[np.linspace(0, n - 1, k).round().astype(int)] if k else x


def sampled_batches(batches: int) -> set[int]:
    """The batches (from 1) whose step is measured: SAMPLED_BATCHES spread evenly over the epoch
    (the first and the last for two)."""
    n = min(SAMPLED_BATCHES, batches)
    return {1 + round(k * (batches - 1) / (n - 1)) for k in range(n)} if n > 1 else {1}


def dead_fraction(y: np.ndarray) -> float:
    """Units (axis 1) never above zero, over the batch and any spatial positions."""
    alive = (y > 0).any(axis=tuple(a for a in range(y.ndim) if a != 1))
    return float(1 - alive.mean())


def saturated_fraction(y: np.ndarray, activation: str) -> float:
    tail = np.abs(y) > 0.99 if activation == "tanh" else (y < 0.01) | (y > 0.99)
    share = tail.mean(axis=tuple(a for a in range(y.ndim) if a != 1))
    return float((share >= SATURATED_SHARE).mean())


def unit_fraction(layer, y: np.ndarray) -> dict:
    kind = WATCHED.get(layer.activation.name)
    if kind == "dead_fraction":
        return {kind: dead_fraction(y)}
    if kind == "saturated_fraction":
        return {kind: saturated_fraction(y, layer.activation.name)}
    return {}


@dataclass
class Divergence:
    """Where a run's loss stopped being finite, and the first layer whose output did."""

    epoch: int
    batch: int
    loss: float
    lr: float
    layer: int | None = None  # None: every layer's output on the probe stayed finite
    layer_type: str = ""
    params: str = ""  # the layer's non-finite parameters ("W, b"), if any
    largest: float = 0.0  # the largest finite |weight| in the layers up to `layer`
    largest_layer: int | None = None


class Diagnostics(Callback):
    """Measures every layer with parameters or a relu/tanh/sigmoid activation, each epoch (see
    the module's docstring); `rows` holds one dict per layer and epoch, `divergence` where the
    loss first stopped being finite."""

    def __init__(self, probe: np.ndarray):
        self.probe = probe
        self.rows: list[dict] = []
        self.divergence: Divergence | None = None
        self.sums: dict[int, list[float]] = {}  # layer -> [sum of grad norms, of update ratios, steps] this epoch
        self.before: list[list[np.ndarray]] | None = None
        self.measured: set[int] = set()

    def watched(self, net: nn.Sequential) -> list[int]:
        return [i for i, layer in enumerate(net.layers) if layer.params or layer.activation.name in WATCHED]

    def on_train_begin(self, state):
        if state.epoch == 0 and not self.rows:  # the units before the first step (not again on resume)
            self.sums = {}
            self.rows.extend(self.epoch_rows(0, state.net))

    def on_epoch_begin(self, state):
        self.measured = sampled_batches(state.batches)
        self.sums = {i: [0.0, 0.0, 0] for i, layer in enumerate(state.net.layers) if layer.params}

    def on_batch_begin(self, state):
        if state.batch in self.measured:
            self.before = [[p.copy() for p in state.net.layers[i].params.values()] for i in self.sums]

    def on_batch_end(self, state, loss, accuracy):
        if not math.isfinite(loss):
            if self.divergence is None:
                self.divergence = self.locate(state, loss)
        elif self.before is not None:
            self.measure(state.net)
            self.before = None

    def measure(self, net: nn.Sequential) -> None:
        """This step's gradient norm and update-to-weight ratio, per layer."""
        for before, (i, sums) in zip(self.before, self.sums.items(), strict=True):
            layer = net.layers[i]
            change = size = grad = 0.0
            for (key, p), b in zip(layer.params.items(), before, strict=True):
                d, g = (p - b).ravel(), layer.grads[key].ravel()
                change += float(np.dot(d, d))
                size += float(np.dot(b.ravel(), b.ravel()))
                grad += float(np.dot(g, g))
            sums[0] += math.sqrt(grad)
            sums[1] += math.sqrt(change / size) if size > 0 else math.nan
            sums[2] += 1

    def on_epoch_end(self, state, row):
        self.rows.extend(self.epoch_rows(state.epoch, state.net))

    def epoch_rows(self, epoch: int, net: nn.Sequential) -> list[dict]:
        watched = set(self.watched(net))
        rows, a = [], self.probe
        with np.errstate(all="ignore"):
            for i, layer in enumerate(net.layers):
                a = layer.forward(a, training=False)
                if i not in watched:
                    continue
                row = {"epoch": epoch, "layer": i, "type": layer.type, "activation": layer.activation.name}
                grad, ratio, n = self.sums.get(i, (0.0, 0.0, 0))
                row["grad_norm"], row["update_ratio"] = (fmt.finite(grad / n), fmt.finite(ratio / n)) if n else (None, None)
                rows.append(row | unit_fraction(layer, a))
        return rows

    def locate(self, state, loss: float) -> Divergence:
        """The first layer whose output on the probe is not finite, with the weights the batch
        that diverged used (its step was not taken), and the largest weight up to it."""
        found = Divergence(state.epoch, state.batch, loss, state.lr)
        a = self.probe
        with np.errstate(all="ignore"):
            for i, layer in enumerate(state.net.layers):
                a = layer.forward(a, training=False)
                for p in layer.params.values():
                    largest = float(np.max(np.abs(p), initial=0.0, where=np.isfinite(p)))
                    if largest > found.largest:
                        found.largest, found.largest_layer = largest, i
                bad = [k for k, p in layer.params.items() if not np.isfinite(p).all()]
                if bad or not np.isfinite(a).all():
                    found.layer, found.layer_type, found.params = i, layer.type, ", ".join(bad)
                    break
        return found

    # -- checkpoints: the rows so far, as numbers (a diverged run is not resumed) ---------------
    def state_dict(self) -> dict:
        numbers = [[math.nan if row.get(k) is None else row[k] for k in NUMERIC] for row in self.rows]
        return {"rows": np.array(numbers, np.float64).reshape(-1, len(NUMERIC))}

    def load_state_dict(self, saved):
        self.rows = [{k: None if math.isnan(v) else int(v) if k in ("epoch", "layer") else v
                      for k, v in zip(NUMERIC, values, strict=True)} for values in saved["rows"].tolist()]

    def named_rows(self, net: nn.Sequential) -> list[dict]:
        """The rows with each layer's type and activation (restored rows have only numbers)."""
        return [{**row, "type": net.layers[row["layer"]].type, "activation": net.layers[row["layer"]].activation.name}
                for row in self.rows]


# -- findings ---------------------------------------------------------------------------------
DEAD_ALARM = 0.5  # of a layer's relu units dead in the last epoch
SATURATED_ALARM = 0.5
FLAT_LOSS = 0.02  # the loss fell by less than this fraction of its first value
TINY_UPDATE, HUGE_UPDATE = 1e-5, 1e-1
VANISHED = 1e-4  # the first layer's gradient norm over the last one's


def layer_text(row: dict) -> str:
    return f"layer {row['layer']} ({row['type']})"


def rate(lr: float) -> str:
    return fmt.value(float(lr))


def findings(metrics: list[dict], rows: list[dict], divergence: Divergence | None,
             guess: float | None = None) -> list[str]:
    """Plain-language findings, each with its likely cause and a fix: dead or saturated units in
    the last epoch, a loss that did not fall (below its first epoch's, or below `guess`, the loss
    of guessing every class equally), where a diverged run first stopped being finite."""
    lrs = [r["lr"] for r in metrics if fmt.finite(r.get("lr")) is not None]
    lr = max(lrs) if lrs else (divergence.lr if divergence else None)
    found = [diverged(divergence)] if divergence else []
    last = [r for r in rows if r["epoch"] >= 1 and r["epoch"] == rows[-1]["epoch"]]
    start = {r["layer"]: r for r in rows if r["epoch"] == 0}
    found += [dead(r, lr, start.get(r["layer"], {})) for r in last if share(r, "dead_fraction") >= DEAD_ALARM]
    found += [saturated(r, lr, start.get(r["layer"], {})) for r in last
              if share(r, "saturated_fraction") >= SATURATED_ALARM]
    flat = flat_loss(metrics, last, lr, bool(found), guess)
    return found + ([flat] if flat else [])


def diverged(d: Divergence) -> str:
    where = f"the loss became {d.loss} in epoch {d.epoch}, batch {d.batch}"
    if d.layer is None:
        what = "every layer's output on the probe sample was still finite (the batch's own values overflowed)"
    else:
        what = f"layer {d.layer} ({d.layer_type}) was the first whose output became non-finite"
        if d.params:
            what += f" (its {d.params} already were)"
        elif d.largest_layer is not None:
            what += f", with weights up to {d.largest:.1e} (layer {d.largest_layer})"
    return (f"{where}; {what}. Likely cause: steps too large for this network (learning rate {rate(d.lr)}); "
            f"try {rate(d.lr / 10)}, or clip the gradients (optimizer.clip_norm: 1.0)")


def share(row: dict, key: str) -> float:
    return fmt.finite(row.get(key)) or 0.0


def dead(row: dict, lr: float | None, start: dict) -> str:
    text = (f"{layer_text(row)}: {fmt.pct(row['dead_fraction'], 0)} of its ReLU units were dead in the last "
            "epoch (zero for every probe sample)")
    if share(start, "dead_fraction") >= DEAD_ALARM:
        return (f"{text}, and already before the first step: the initial weights or biases push them below "
                "zero; check the layer's init (he_normal suits relu) and data.scale, or use leaky_relu")
    fix = f"the learning rate {rate(lr)} is probably too high; try {rate(lr / 10)}" if lr else "try a smaller learning rate"
    return f"{text}: {fix}, or leaky_relu"


def saturated(row: dict, lr: float | None, start: dict) -> str:
    text = (f"{layer_text(row)}: {fmt.pct(row['saturated_fraction'], 0)} of its {row['activation']} units were "
            f"saturated in the last epoch (in the flat tail of {row['activation']} for at least "
            f"{fmt.pct(SATURATED_SHARE, 0)} of the probe samples), so little gradient passes through them")
    if share(start, "saturated_fraction") >= SATURATED_ALARM:
        return (f"{text}, and already before the first step: their inputs are too large for the initial "
                "weights; check data.scale (inputs around [0, 1]) and the layer's init (glorot_uniform suits "
                f"{row['activation']})")
    fix = f"the learning rate {rate(lr)} is probably too high; try {rate(lr / 10)}" if lr else "try a smaller learning rate"
    return f"{text}: the weights grew too large; {fix}"


def flat_loss(metrics: list[dict], last: list[dict], lr: float | None, explained: bool,
              guess: float | None) -> str | None:
    losses = [fmt.finite(r.get("train_loss")) for r in metrics]
    if len(losses) < 2 or None in losses:
        return None
    fell = losses[-1] < losses[0] * (1 - FLAT_LOSS)
    beat_guessing = guess is None or min(losses) < guess * (1 - FLAT_LOSS)
    if fell and beat_guessing:
        return None
    below = f" below that of guessing every class equally ({fmt.fixed(guess)})" if fell else ""
    return (f"the loss did not fall{below} in {len(losses)} epochs (train_loss {fmt.fixed(losses[0])} -> "
            f"{fmt.fixed(losses[-1])}): {flat_cause(last, lr, explained)}")


def flat_cause(last: list[dict], lr: float | None, explained: bool) -> str:
    ratios = [r["update_ratio"] for r in last if fmt.finite(r.get("update_ratio")) is not None]
    norms = [r["grad_norm"] for r in last if fmt.finite(r.get("grad_norm")) is not None]
    shown = rate(lr) if lr is not None else "?"
    if ratios and max(ratios) < TINY_UPDATE:
        return (f"each step moves the weights by only {max(ratios):.0e} of their size (about 1e-3 is typical): "
                f"the learning rate {shown} is too low; try {rate(lr * 10) if lr else 'ten times it'}")
    if ratios and max(ratios) > HUGE_UPDATE:
        return (f"each step moves a layer by {max(ratios):.0%} of its weights (about 0.1% is typical): the learning "
                f"rate {shown} is too high; try {rate(lr / 10) if lr else 'a tenth of it'}")
    if len(norms) > 1 and norms[-1] > 0 and norms[0] < VANISHED * norms[-1]:
        return (f"the gradient vanishes on its way back (the first layer's is {norms[0] / norms[-1]:.0e} of the last "
                "one's): use relu with he_normal init, or fewer sigmoid/tanh layers")
    if explained:
        return "see the findings above"
    return (f"check that the labels match the inputs, and the learning rate {shown} (nnrun lr-find "
            "suggests one)")
