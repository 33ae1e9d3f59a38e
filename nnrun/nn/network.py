"""Sequential: layers in order, shapes inferred at build time, named parameters."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import pairwise

import numpy as np
from numpy.typing import DTypeLike

from . import stages
from .layers import ActivationLayer, Layer, ParamLayer, ShapeError
from .losses import Loss
from .shards import EVAL_CHUNK, Shards, shard_count

# An int seed gives each consumer its own stream, so that none shifts another's numbers (a
# dropout layer added does not change the weights): [seed, INIT_STREAM] initialises the weights,
# [seed, LAYER_STREAM, i] drives layer i's randomness (dropout masks). nnrun's training
# shuffles with [seed, 1] and splits off the validation data with [seed, 2].
INIT_STREAM, LAYER_STREAM = 0, 3

Streams = tuple[np.random.Generator, Callable[[int], np.random.Generator]]


def random_streams(seed: int | np.random.Generator) -> Streams:
    """(the initialisation's stream, layer index -> that layer's own stream). A Generator (library
    use) initialises the weights itself and spawns an independent child for each layer."""
    if isinstance(seed, np.random.Generator):
        return seed, lambda i: seed.spawn(1)[0]
    return np.random.default_rng([seed, INIT_STREAM]), lambda i: np.random.default_rng([seed, LAYER_STREAM, i])


def check_names(what: str, needed: Iterable[str], given: Iterable[str]) -> None:
    """ValueError naming the missing and unexpected names, unless the two sets are equal."""
    missing, extra = set(needed) - set(given), set(given) - set(needed)
    if missing or extra:
        raise ValueError(f"{what} do not match the model: missing {sorted(missing)}, "
                         f"unexpected {sorted(extra)}")


class Sequential:
    """A stack of layers built for one input shape (without the batch axis).

    Parameters are named "layers.<index>.<name>" (e.g. "layers.0.W"); the weights file, the
    optimiser state and the gradient checks all use these names. seed: an int derives one
    stream per consumer (see INIT_STREAM), a Generator is used as random_streams says.
    """

    def __init__(self, layers: list[Layer], input_shape: tuple, seed: int | np.random.Generator = 0,
                 dtype: DTypeLike = np.float32, fuse: bool = True):
        self.layers = list(layers)
        self.input_shape = tuple(input_shape)
        self.dtype = np.dtype(dtype)
        init_rng, layer_rng = random_streams(seed)
        self._default_inits_follow_activation_layers()
        shape = self.input_shape
        for i, layer in enumerate(self.layers):
            try:
                shape = layer.build(shape, layer_rng(i) if layer.stochastic else init_rng, self.dtype)
            except ShapeError as e:
                raise ShapeError(e.reason, i, layer.type, e.needs_flat_input) from None
            if any(size < 1 for size in shape):
                raise ShapeError(f"output shape {shape} is empty; the input is too small for "
                                 "this stack", i, layer.type)
        self.output_shape = shape
        # fuse=False runs every layer on its own: the reference the fused stages are tested against.
        self.stages = stages.plan(self.layers, fuse)
        self._flat_params = flatten(self.layers, "params")
        self._flat_grads = flatten(self.layers, "grads")
        self.shards = Shards(self.layers, self.stages, fuse, shard_count(self.layers))

    def flat_buffers(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(parameters, gradients), each one 1-D array of which parameters() and gradients()
        are views in order, for whole-model optimiser steps; None if a layer's array was replaced
        (then only the per-name arrays are the model)."""
        for attribute, (flat, views) in (("params", self._flat_params), ("grads", self._flat_grads)):
            live = [a for layer in self.layers for a in getattr(layer, attribute).values()]
            if list(map(id, live)) != list(map(id, views)):
                return None
            # A deep copy (or an unpickled network) has the same views, each now an array of its own.
            if any(v.base is not flat for v in views):
                return None
        return self._flat_params[0], self._flat_grads[0]

    def set_threads(self, threads: int) -> None:
        """Run a conv net's two batch halves on this many threads (see shards.py); the caller
        shares the BLAS threads out between them. The numbers do not depend on it."""
        self.shards.set_threads(threads)

    def _default_inits_follow_activation_layers(self) -> None:
        """A linear dense or conv2d followed by {type: relu} is a relu layer: He, not Glorot."""
        for layer, after in pairwise(self.layers):
            linear = isinstance(layer, ParamLayer) and layer.activation.name == "linear"
            if linear and isinstance(after, ActivationLayer):
                layer.default_init_for(after.activation.name)

    # -- parameters -----------------------------------------------------------------------------
    def parameters(self) -> dict[str, np.ndarray]:
        """Every parameter array by name ("layers.0.W", ...): the live arrays, not copies."""
        return {f"layers.{i}.{k}": v for i, l in enumerate(self.layers) for k, v in l.params.items()}

    def gradients(self) -> dict[str, np.ndarray]:
        """Every gradient array by its parameter's name, as left by the last backward."""
        return {f"layers.{i}.{k}": v for i, l in enumerate(self.layers) for k, v in l.grads.items()}

    @property
    def num_params(self) -> int:
        return sum(layer.num_params for layer in self.layers)

    def get_weights(self) -> dict[str, np.ndarray]:
        """A copy of every parameter by name."""
        return {k: v.copy() for k, v in self.parameters().items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Copy named arrays into the parameters; names and shapes must match exactly."""
        params = self.parameters()
        check_names("weights", params, weights)
        for k, p in params.items():
            w = np.asarray(weights[k])
            if w.shape != p.shape:
                raise ValueError(f"weights do not match the model: {k} has shape {w.shape}, "
                                 f"the model needs {p.shape}")
            p[...] = w

    # -- random state -------------------------------------------------------------------------
    def random_state(self) -> dict[str, dict]:
        """The state of each layer's own random stream (dropout masks) by "layers.<index>": numpy's
        bit_generator.state, plain JSON-able dicts, for a checkpoint."""
        return {name: layer.rng.bit_generator.state for name, layer in self._stochastic_layers().items()}

    def set_random_state(self, state: dict[str, dict]) -> None:
        """Restore a random_state(): the next masks are those the saved network would have drawn."""
        layers = self._stochastic_layers()
        check_names("random states", layers, state)
        for name, layer in layers.items():
            layer.rng.bit_generator.state = state[name]

    def _stochastic_layers(self) -> dict[str, Layer]:
        return {f"layers.{i}": layer for i, layer in enumerate(self.layers) if layer.stochastic}

    def summary(self) -> list[dict]:
        """One row per layer: index, type, output shape, parameter count."""
        return [{"index": i, "type": l.type, "activation": l.activation.name,
                 "output_shape": l.output_shape, "params": l.num_params}
                for i, l in enumerate(self.layers)]

    # -- computation ----------------------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """(batch, *input_shape) -> (batch, *output_shape); training enables dropout and keeps
        what backward needs (an evaluation forward leaves the last training forward's caches)."""
        return self.forward_with_logits(x, training)[1]

    def forward_with_logits(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(logits, output): the last layer's pre-activation output and its activation."""
        x = np.asarray(x, self.dtype)
        parts = self.shards.slices(len(x))
        if training or len(parts) < 2:  # a training forward is whole, or split by loss_and_gradients
            return _forward(self.stages, x, training)
        image_stages = self.image_stages()
        return _joined(self.shards.map(lambda stages, part: _forward_in_chunks(stages, image_stages, x[part]),
                                       parts))

    def image_stages(self) -> int:
        """How many stages at the start take images (the rest take flat features), short of the
        last stage."""
        images = [len(self.layers[stage.first].input_shape) == 3 for stage in self.stages[:-1]]
        return images.index(False) if False in images else len(images)

    def backward(self, grad: np.ndarray, skip_output_activation: bool = False,
                 input_gradient: bool = True) -> np.ndarray | None:
        """Back-propagate dL/doutput (or dL/dlogits when skip_output_activation); returns dL/dx,
        or None when input_gradient is False: then backward stops at the first layer with
        parameters, which skips work nobody needs during training."""
        grad = _backward(self.stages, grad, skip_output_activation, input_gradient, self.first_index_with_params())
        # A copy: layers may hand back a buffer that the next backward overwrites.
        return np.array(grad) if input_gradient else None

    def first_index_with_params(self) -> int:
        """Index of the first layer with parameters (0 if none): where training's backward stops."""
        return next((i for i, layer in enumerate(self.layers) if layer.params), 0)

    def fuses_softmax(self, loss: Loss) -> bool:
        """Whether a softmax output and this loss back-propagate together as p - y."""
        return loss.fuses_with_softmax and self.layers[-1].activation.name == "softmax"

    def loss_and_gradients(self, loss: Loss, x: np.ndarray, y: np.ndarray,
                           input_gradient: bool = False) -> tuple[float, np.ndarray]:
        """A training forward, the loss and backward in one go; returns (loss value, output).
        Gradients land in each layer's `grads`. Softmax + cross-entropy use the fused gradient
        p - y. dL/dx is computed (by the first layer's backward) only if input_gradient.
        A conv net computes the batch as halves (shards.py): the same loss and per-sample
        gradients, the parameter gradients summed over the halves. A half goes from its forward
        straight on to its backward (a sample's loss gradient needs only its own output and the
        batch size), so the halves meet once a step, not twice."""
        x = np.asarray(x, self.dtype)
        fused = self.fuses_softmax(loss)
        gradient = loss.logits_gradient if fused else loss.gradient
        first = self.first_index_with_params()

        def forward_and_back(stages: list, part: slice) -> tuple[np.ndarray, np.ndarray]:
            logits, out = _forward(stages, x[part], True)
            _backward(stages, gradient(out, y[part], len(x)), fused, input_gradient, first)
            return logits, out

        parts = self.shards.slices(len(x))
        logits, out = _joined(self.shards.map(forward_and_back, parts))
        self.shards.sum_gradients(len(parts))
        return self.loss_value(loss, logits, out, y), out

    def loss_value(self, loss: Loss, logits: np.ndarray, out: np.ndarray, y: np.ndarray) -> float:
        """The loss of the output; after a softmax, cross-entropy's from the logits, as its
        gradient (exact where a probability rounds to 0)."""
        return loss.value_from_logits(logits, y) if self.fuses_softmax(loss) else loss.value(out, y)

    def evaluate(self, loss: Loss, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> tuple[float, np.ndarray]:
        """(loss value, outputs) for x in evaluation mode, in batches like predict."""
        logits, out = self._in_batches(x, batch_size)
        return self.loss_value(loss, logits, out, y), out

    def predict(self, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Outputs (batch, *output_shape) for x in evaluation mode, in batches to bound memory."""
        return self._in_batches(x, batch_size)[1]

    def _in_batches(self, x: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(logits, outputs) of evaluation forwards over x, batch_size samples at a time."""
        parts = [self.forward_with_logits(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        if not parts:
            empty = np.zeros((0, *self.output_shape), self.dtype)
            return empty, empty
        return np.concatenate([z for z, _ in parts]), np.concatenate([out for _, out in parts])


def _joined(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(logits, outputs) of the batch from those of its parts, in order."""
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([z for z, _ in parts]), np.concatenate([out for _, out in parts])


def _forward(stages: list, x: np.ndarray, training: bool) -> tuple[np.ndarray, np.ndarray]:
    """(logits, output) of the stages run in order on x."""
    for stage in stages[:-1]:
        x = stage.forward(x, training)
    return stages[-1].forward_with_logits(x, training)


def _forward_in_chunks(stages: list, image_stages: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An evaluation forward whose image stages run about EVAL_CHUNK samples at a time, so that
    each stage's arrays stay in the core's cache (measured, cnn.yaml on two threads: 0.55 s per
    10,000 images against 0.85 s 500 at a time; 64 beat 8, 16 and 32); the flat stages then run
    on all of x. Samples do not mix: the values are those of one forward over x, up to float
    rounding (a BLAS may sum a product of fewer rows in another order; no chunk is shorter
    than EVAL_CHUNK, so none is only a row or two)."""
    bounds = np.linspace(0, len(x), max(1, len(x) // EVAL_CHUNK) + 1).astype(int)
    features = [_through(stages[:image_stages], x[a:b]) for a, b in pairwise(bounds)]
    return _forward(stages[image_stages:], np.concatenate(features), False)


def _through(stages: list, x: np.ndarray) -> np.ndarray:
    """x run through the stages in evaluation mode."""
    for stage in stages:
        x = stage.forward(x, False)
    return x


def _backward(stages: list, grad: np.ndarray, skip_output_activation: bool,
              input_gradient: bool, first_with_params: int) -> np.ndarray | None:
    """Back through the stages: to the network's input (dL/dx) if input_gradient, else down to
    the stage of the first layer with parameters, which skips its input gradient."""
    first = 0 if input_gradient else first_with_params
    for stage in reversed(stages):
        if stage.last < first:
            break
        grad = stage.backward(grad, skip_output_activation and stage is stages[-1],
                              input_gradient or stage.first > first)
    return grad


def flatten(layers: list[Layer], attribute: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """Move every layer's `params` (or `grads`) into one 1-D array, in order, leaving views of it
    in their place: (the array, the views)."""
    arrays = [(layer, key, a) for layer in layers for key, a in getattr(layer, attribute).items()]
    dtype = arrays[0][2].dtype if arrays else np.float32
    flat = np.empty(sum(a.size for _, _, a in arrays), dtype)
    views, start = [], 0
    for layer, key, a in arrays:
        view = flat[start:start + a.size].reshape(a.shape)
        view[...] = a
        getattr(layer, attribute)[key] = view
        views.append(view)
        start += a.size
    return flat, views
