"""How a Sequential runs its layers: one stage per layer, except where two layers are faster as one.

A stage has the layer's run-time interface (forward, forward_with_logits, backward) and names
the layers it covers. The layers stay the model (parameters, config, weights file); stages only
change the order in which the same sums are done.
"""

from __future__ import annotations

import numpy as np

from .layers import Conv2D, Layer, MaxPool2D

# Activations that commute with a max over the window (monotone and non-decreasing) and whose
# derivative this stage takes from its output.
_POOLABLE = ("linear", "relu")


class LayerStage:
    """A single layer, run as it is."""

    def __init__(self, layer: Layer, first: int):
        self.layer, self.first, self.last = layer, first, first

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        return self.layer.forward(x, training)

    def forward_with_logits(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, np.ndarray]:
        return self.layer.forward_with_logits(x, training)

    def backward(self, dy: np.ndarray, skip_activation: bool, input_gradient: bool) -> np.ndarray | None:
        return self.layer.backward(dy, skip_activation, input_gradient)


class ConvPoolStage:
    """conv2d (relu or linear) followed by maxpool2d, as one: the pool runs on the convolution's
    raw output, and the bias and relu then on a quarter of the data (max over a window commutes
    with adding a per-channel constant and with relu); outputs that the pool's floor mode drops
    are never computed. Same values as the two layers, and the same gradients but for rounding
    ties: a relu tie at 0 sends no gradient either way, and where adding the bias rounds two
    different raw values to the same number the gradient goes to the larger raw value (the two
    layers would send it to the first)."""

    def __init__(self, conv: Conv2D, pool: MaxPool2D, first: int):
        self.conv, self.pool, self.first, self.last = conv, pool, first, first + 1
        self.relu = conv.activation.name == "relu"
        # Windows that tile the input: the convolution computes its output in tiles (see
        # kernels.im2col), and the pool compares whole blocks instead of strided views.
        self.tile = pool.pool_size if pool.stride == pool.pool_size else 1
        self._y: np.ndarray | None = None

    @staticmethod
    def fits(layer: Layer, after: Layer) -> bool:
        return (type(layer) is Conv2D and layer.activation.name in _POOLABLE
                and type(after) is MaxPool2D and after.activation.name == "linear")

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        rows, cols = self.pool.rows_read()
        # A one-channel patch matrix in tiles is a strided gather at twice the cost, which only
        # the pool's gradient repays: an evaluation computes it in spatial order (1-10% faster).
        tile = self.tile if training or self.conv.input_shape[0] > 1 else 1
        z = self.conv.linear_nhwc(x.transpose(0, 2, 3, 1), training, rows, cols, bias=False, tile=tile)
        y = self.pool.pool_tiles(z, training) if tile > 1 else self.pool.pool_nhwc(z, training)
        if self.conv.use_bias:
            y += self.conv.params["b"]
        if self.relu:
            np.maximum(y, 0, out=y)
        if training:
            self._y = y
        return y.transpose(0, 3, 1, 2)

    def backward(self, dy: np.ndarray, skip_activation: bool, input_gradient: bool) -> np.ndarray | None:
        if self._y is None:
            raise RuntimeError("conv2d+maxpool2d: backward needs a forward with training=True first")
        dyh = dy.transpose(0, 2, 3, 1)
        dyh = dyh * (self._y > 0) if self.relu else np.ascontiguousarray(dyh)
        if self.conv.use_bias:
            self.conv.sum_rows(dyh.reshape(-1, dyh.shape[3]), out=self.conv.grads["b"])
        dz = self.pool.unpool_tiles(dyh) if self.tile > 1 else self.pool.unpool_nhwc(dyh)
        dx = self.conv.backward_nhwc(dz, input_gradient, bias=False)
        return None if dx is None else dx.transpose(0, 3, 1, 2)


def plan(layers: list[Layer], fuse: bool) -> list[LayerStage | ConvPoolStage]:
    """The stages that run `layers` in order; the last layer is always a stage of its own (the
    loss reads its logits)."""
    stages: list[LayerStage | ConvPoolStage] = []
    i = 0
    while i < len(layers):
        if fuse and i + 2 < len(layers) and ConvPoolStage.fits(layers[i], layers[i + 1]):
            stages.append(ConvPoolStage(layers[i], layers[i + 1], i))
            i += 2
        else:
            stages.append(LayerStage(layers[i], i))
            i += 1
    return stages
