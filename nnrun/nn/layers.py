"""Layers: thin objects holding parameters, caches and shapes around pure array kernels.

Shapes exclude the batch axis: images are (C, H, W), flat features (F,). Arrays are batched:
(N, F) or (N, C, H, W). Each layer keeps `params` and `grads` as dicts with the same keys.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from . import kernels
from .activations import ACTIVATIONS, Activation, make_activation
from .init import INITIALIZERS, default_initializer
from .registry import Registry

LAYERS: Registry[type[Layer]] = Registry("layer type", attribute="type")


class ShapeError(ValueError):
    """A layer cannot accept the shape it is given.

    reason: what is wrong and how to fix it; layer_index and layer_type are filled in by
    Sequential (str() is then "layer 3 (dense): <reason>"); needs_flat_input: the layer wants
    (features,) and was given more axes (so the caller can suggest flattening its data).
    """

    def __init__(self, reason: str, layer_index: int | None = None, layer_type: str | None = None,
                 needs_flat_input: bool = False):
        super().__init__(reason, layer_index, layer_type, needs_flat_input)
        self.reason, self.layer_index, self.layer_type = reason, layer_index, layer_type
        self.needs_flat_input = needs_flat_input

    def __str__(self) -> str:
        if self.layer_index is None:
            return self.reason
        return f"layer {self.layer_index} ({self.layer_type}): {self.reason}"


register = LAYERS.register


class Layer:
    """Base class: y = activation(transform(x)), x (batch, *input_shape) -> y (batch, *output_shape).

    A subclass states its shape rule (infer_shape), its parameters (initialize) and its kernel
    pair (transform, transform_backward); the activation and the caches are handled here.
    """

    type = "layer"
    # True for a layer that draws random numbers while training (dropout): build's rng is then
    # its own stream, which it keeps (Sequential gives each such layer a stream of its own).
    stochastic = False

    def __init__(self, activation: str | dict | Activation | None = None):
        self.activation = make_activation(activation)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.input_shape: tuple = ()
        self.output_shape: tuple = ()
        self._z: np.ndarray | None = None  # the last training forward's, for backward
        self._y: np.ndarray | None = None

    # -- build time -------------------------------------------------------------------------
    def build(self, input_shape: tuple, rng: np.random.Generator, dtype: DTypeLike = np.float32) -> tuple:
        """Fix the input shape (without the batch axis), initialise parameters from rng (a
        stochastic layer keeps rng as its own stream instead); returns the output shape."""
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(self.infer_shape(self.input_shape))
        self.initialize(rng, np.dtype(dtype))
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        return self.output_shape

    def infer_shape(self, input_shape: tuple) -> tuple:
        """The output shape for input_shape (both without the batch axis), or ShapeError."""
        return input_shape

    def initialize(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        """Create self.params (input_shape is known by now); nothing for layers without any."""

    def config(self) -> dict:
        """The hyper-parameters that rebuild this layer (written to weights.json)."""
        cfg = self.layer_config()
        if self.activation.name != "linear":
            params = self.activation.config()
            cfg["activation"] = {"type": self.activation.name, **params} if params else self.activation.name
        return cfg

    def layer_config(self) -> dict:
        """The layer's own constructor arguments (the activation is added by config())."""
        return {}

    @property
    def num_params(self) -> int:
        return sum(p.size for p in self.params.values())

    def buffer(self, name: object, shape: tuple, dtype: DTypeLike, zeroed: bool = False,
               keep: bool = True) -> np.ndarray:
        """A scratch array kept between calls (training's steps), one per name (a new shape
        replaces the old one): contents undefined, unless zeroed (allocated as zeros; the caller
        keeps the part it relies on zero). keep=False: a new array, not kept (an evaluation's,
        whose larger batches would otherwise hold memory for the rest of the run)."""
        buffers = self.__dict__.setdefault("_buffers", {})
        kept = buffers.get(name) if keep else None
        if kept is None or kept.shape != shape or kept.dtype != dtype:
            kept = np.zeros(shape, dtype) if zeroed else np.empty(shape, dtype)
            if keep:
                buffers[name] = kept
        return kept

    # -- run time ---------------------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """(batch, *input_shape) -> (batch, *output_shape); training enables dropout and caches
        what backward needs (an evaluation forward caches nothing, see forward_with_logits)."""
        return self.forward_with_logits(x, training)[1]

    def forward_with_logits(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(z, y): the pre-activation output (the logits, before a softmax) and y = activation(z).

        Only a training forward caches anything: a forward in evaluation mode between a training
        forward and its backward must not change what that backward computes."""
        z = self.transform(x, training)
        y = self.activation.forward(z)
        if training:
            self._z, self._y = z, y
        return z, y

    def backward(self, dy: np.ndarray, skip_activation: bool = False,
                 input_gradient: bool = True) -> np.ndarray | None:
        """dL/dx for dL/dy (both batched, shaped like x and y); fills self.grads.

        skip_activation: dy is already dL/dz (the pre-activation gradient). input_gradient
        False: nobody needs dL/dx (the first trainable layer in training), so a layer with
        parameters may skip computing it and return None (saves a GEMM, and col2im for conv2d).
        """
        if self._y is None:
            raise RuntimeError(f"{self.type}: backward needs a forward with training=True first")
        dz = dy if skip_activation else self.activation.backward(self._z, self._y, dy)
        return self.transform_backward(dz, input_gradient)

    def transform(self, x: np.ndarray, training: bool) -> np.ndarray:
        """z, the pre-activation output (batch, *output_shape), for x (batch, *input_shape);
        caches what transform_backward needs only when training."""
        return x

    def transform_backward(self, dz: np.ndarray, input_gradient: bool) -> np.ndarray | None:
        """dL/dx for dL/dz; fills self.grads. Layers without parameters may ignore
        input_gradient (their backward is nothing but the input gradient)."""
        return dz


class ParamLayer(Layer):
    """A layer with weights W and bias b, initialised by name (default from the activation)."""

    def __init__(self, activation: str | dict | Activation | None = None, init: str | None = None,
                 init_params: dict | None = None, use_bias: bool = True):
        super().__init__(activation)
        self.init = init or default_initializer(self.activation.name)
        self.init_is_default = init is None
        self.init_params = dict(init_params or {})
        self.use_bias = use_bias

    def default_init_for(self, activation_name: str) -> None:
        """`activation_name` acts on this layer's output (an activation layer after it, this
        one being linear): the default initialiser follows it, unless one was chosen."""
        if self.init_is_default:
            self.init = default_initializer(activation_name)

    def weight_shape_and_fans(self) -> tuple[tuple, int, int, tuple]:
        """(W's shape, fan_in, fan_out, b's shape) for the built input shape."""
        raise NotImplementedError

    def initialize(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        shape, fan_in, fan_out, bias_shape = self.weight_shape_and_fans()
        make = INITIALIZERS.get(self.init)
        self.params["W"] = make(shape, fan_in, fan_out, rng, dtype, **self.init_params)
        if self.use_bias:
            self.params["b"] = np.zeros(bias_shape, dtype)

    def sum_rows(self, m: np.ndarray, out: np.ndarray) -> np.ndarray:
        """m (rows, F) summed over its rows into out (F,). Rows are added k at a time as rows of
        k*F numbers: for tall thin m, ten times faster than m.sum(axis=0), and unlike a BLAS
        matrix-vector product its result does not depend on the number of BLAS threads."""
        rows, f = m.shape
        k = math.gcd(rows, 64)  # the largest of 64, 32, ..., 1 that divides rows
        partial = np.sum(m.reshape(rows // k, k * f), axis=0)
        return np.sum(partial.reshape(k, f), axis=0, out=out)

    def base_config(self) -> dict:
        """The constructor arguments every ParamLayer shares (activation aside)."""
        cfg = {"init": self.init, "use_bias": self.use_bias}
        if self.init_params:
            cfg["init_params"] = self.init_params
        return cfg


@register("dense")
class Dense(ParamLayer):
    """y = act(x @ W + b): x (batch, in) -> y (batch, units); W (in, units), b (units,)."""

    def __init__(self, units: int, **kw: Any):
        super().__init__(**kw)
        self.units = units

    def layer_config(self) -> dict:
        return {"units": self.units, **self.base_config()}

    def infer_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != 1:
            raise ShapeError(f"expects flat input (features,), got {input_shape}; "
                             "add a {type: flatten} layer before it", needs_flat_input=True)
        return (self.units,)

    def weight_shape_and_fans(self) -> tuple[tuple, int, int, tuple]:
        n_in = self.input_shape[0]
        return (n_in, self.units), n_in, self.units, (self.units,)

    def transform(self, x: np.ndarray, training: bool) -> np.ndarray:
        if training:
            self._x = x
        z = x @ self.params["W"]
        if self.use_bias:
            z += self.params["b"]
        return z

    def transform_backward(self, dz: np.ndarray, input_gradient: bool) -> np.ndarray | None:
        np.matmul(self._x.T, dz, out=self.grads["W"])
        if self.use_bias:
            self.sum_rows(dz, out=self.grads["b"])
        return dz @ self.params["W"].T if input_gradient else None


def conv_output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """Output length along one axis of a convolution or pooling window."""
    return (size + 2 * pad - kernel) // stride + 1


def _image_shape(input_shape: tuple) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ShapeError(f"expects an image input (channels, height, width), got {input_shape}")
    return input_shape


@register("conv2d")
class Conv2D(ParamLayer):
    """2-D cross-correlation like PyTorch: x (batch, C, H, W) -> y (batch, filters, OH, OW);
    W (filters, C, kh, kw), b (filters,).

    Forward is im2col + one GEMM; backward is a GEMM for dW and, for dx, either a convolution
    of dz with the flipped kernel (im2col + one GEMM) or a GEMM per kernel tap + col2im.
    padding: an int, "valid" (0) or "same" (stride 1 only; odd kernels keep H and W).
    """

    def __init__(self, filters: int, kernel_size: int | tuple = 3, stride: int = 1,
                 padding: int | str = 0, **kw: Any):
        super().__init__(**kw)
        self.filters = filters
        self.kernel_size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.stride = stride
        self.padding = padding

    def layer_config(self) -> dict:
        return {"filters": self.filters, "kernel_size": list(self.kernel_size), "stride": self.stride,
                "padding": self.padding, **self.base_config()}

    def pads(self) -> tuple[int, int]:
        """(rows, columns) of zeros added on each side."""
        kh, kw = self.kernel_size
        if self.padding == "valid":
            return 0, 0
        if self.padding == "same":
            if self.stride != 1 or kh % 2 == 0 or kw % 2 == 0:
                raise ShapeError('padding "same" needs stride 1 and an odd kernel_size')
            return kh // 2, kw // 2
        return int(self.padding), int(self.padding)

    def infer_shape(self, input_shape: tuple) -> tuple:
        c, h, w = _image_shape(input_shape)
        (kh, kw), (ph, pw) = self.kernel_size, self.pads()
        if kh > h + 2 * ph or kw > w + 2 * pw:
            raise ShapeError(f"kernel {kh}x{kw} is larger than its input {h}x{w} "
                             f"(padding {ph}); use a smaller kernel_size or more padding")
        s = self.stride
        return (self.filters, conv_output_size(h, kh, s, ph), conv_output_size(w, kw, s, pw))

    def weight_shape_and_fans(self) -> tuple[tuple, int, int, tuple]:
        c = self.input_shape[0]
        kh, kw = self.kernel_size
        return (self.filters, c, kh, kw), c * kh * kw, self.filters * kh * kw, (self.filters,)

    # Memory is channels-last (N, H, W, C) throughout: the GEMM's output (N*OH*OW, F) is NHWC,
    # the NCHW array handed on is a transposed view of it, and the next image layer's
    # transpose back to NHWC is free. So no layer copies to change layout.
    def transform(self, x: np.ndarray, training: bool) -> np.ndarray:
        _, oh, ow = self.output_shape
        z = self.linear_nhwc(x.transpose(0, 2, 3, 1), training, oh, ow)
        return z.transpose(0, 3, 1, 2)

    def transform_backward(self, dz: np.ndarray, input_gradient: bool) -> np.ndarray | None:
        dx = self.backward_nhwc(dz.transpose(0, 2, 3, 1), input_gradient, bias=self.use_bias)
        return None if dx is None else dx.transpose(0, 3, 1, 2)

    def linear_nhwc(self, xh: np.ndarray, training: bool, oh: int, ow: int,
                    bias: bool = True, tile: int = 1) -> np.ndarray:
        """z (N, oh, ow, F) for xh (N, H, W, C): the first oh x ow outputs (fewer than the full
        output when a pool after this layer drops the rest), plus the bias if `bias`. tile > 1:
        z in tiles, (tile, tile, N, oh/tile, ow/tile, F), as kernels.im2col orders them."""
        (kh, kw), (ph, pw), n = self.kernel_size, self.pads(), len(xh)
        if ph or pw:
            shape = (n, xh.shape[1] + 2 * ph, xh.shape[2] + 2 * pw, xh.shape[3])
            xh = kernels.pad_into(xh, ph, pw, self.buffer("padded", shape, xh.dtype, zeroed=True, keep=training))
        if xh.shape[3] == 1:  # cols is stored transposed, (kh*kw, N*oh*ow): see im2col_single_channel
            cols_t = self.buffer("cols", (kh * kw, n * oh * ow), xh.dtype, keep=training)
            blocks = self.buffer("tap blocks", kernels.tap_blocks_shape(n, kh, kw, self.stride, oh, ow, tile),
                                 xh.dtype, keep=training) if tile > 1 else None
            cols = kernels.im2col_single_channel(xh, kh, kw, self.stride, oh, ow, cols_t, tile, blocks).T
        else:
            cols = self.buffer("cols", (n * oh * ow, kh * kw * xh.shape[3]), xh.dtype, keep=training)
            kernels.im2col(xh, kh, kw, self.stride, oh, ow, cols, tile)
        if training:
            self._cols, self._padded_shape = cols, xh.shape
        z = cols @ self.weight_matrix().T
        if bias and self.use_bias:
            z += self.params["b"]
        if tile > 1:
            return z.reshape(tile, tile, n, oh // tile, ow // tile, self.filters)
        return z.reshape(n, oh, ow, self.filters)

    def weight_matrix(self) -> np.ndarray:
        """W (F, C, kh, kw) as (F, kh*kw*C), matching im2col's column order."""
        return self.params["W"].transpose(0, 2, 3, 1).reshape(self.filters, -1)

    def backward_nhwc(self, dzh: np.ndarray, input_gradient: bool, bias: bool) -> np.ndarray | None:
        """dL/dx (N, H, W, C) for dzh, shaped like the last training linear_nhwc's output (in
        tiles too); fills grads["W"] (and grads["b"] if `bias`: a caller that added the bias
        itself fills it)."""
        f = dzh.shape[-1]
        dzm = np.ascontiguousarray(dzh).reshape(-1, f)  # rows in the order of the patch matrix's
        c, kh, kw = self.params["W"].shape[1:]
        dw = (self._cols.T @ dzm).T.reshape(f, kh, kw, c)
        np.copyto(self.grads["W"], dw.transpose(0, 3, 1, 2))
        if bias:
            self.sum_rows(dzm, out=self.grads["b"])
        if not input_gradient:
            return None
        (ph, pw), (_, h, w) = self.pads(), self.input_shape
        # The convolution reads h*w*F numbers per tap, the per-tap products write oh*ow*C: measured
        # in training steps, the per-tap products win from twice as many (a padded conv with twice
        # the channels out: 2-4%; a valid 5x5 conv, 4.5 times: 20%).
        n, oh, ow = spatial_shape(dzh)
        if self.stride == 1 and ph < kh and pw < kw and h * w * f < 2 * oh * ow * c:
            return self.input_gradient_as_conv(dzh)
        if dzh.ndim == 6:
            dzm = kernels.untile(dzh, self.buffer("dz", (n, oh, ow, f), dzh.dtype)).reshape(-1, f)
        taps = self.params["W"].transpose(2, 3, 0, 1).reshape(kh * kw, f, c)  # (tap, F, C)
        dcols = np.matmul(dzm, taps)  # (tap, N*oh*ow, C): one contiguous block per tap
        dxp = self.buffer("dx", self._padded_shape, dzm.dtype)
        kernels.col2im_taps(dcols, kh, kw, self.stride, oh, ow, out=dxp)
        return dxp[:, ph:dxp.shape[1] - ph, pw:dxp.shape[2] - pw, :]

    def input_gradient_as_conv(self, dzh: np.ndarray) -> np.ndarray:
        """dL/dx for stride 1 as a convolution of dzh with the flipped kernel: dzh placed in a
        zero frame, im2col and one GEMM with K = kh*kw*F (about a quarter faster than per-tap
        products and col2im's strided adds). Only the unpadded input's gradient is computed."""
        f = dzh.shape[-1]
        n, oh, ow = spatial_shape(dzh)
        (kh, kw), (ph, pw), (_, h, w) = self.kernel_size, self.pads(), self.input_shape
        # Named by dzh's size: only that region is ever written, the rest of the frame stays 0.
        framed = self.buffer(("dz framed", oh, ow), (n, h + kh - 1, w + kw - 1, f), dzh.dtype, zeroed=True)
        top, left = kh - 1 - ph, kw - 1 - pw
        inside = framed[:, top:top + oh, left:left + ow, :]
        if dzh.ndim == 6:
            kernels.untile(dzh, inside)
        else:
            inside[...] = dzh
        cols = self.buffer("dz cols", (n * h * w, kh * kw * f), dzh.dtype)
        kernels.im2col(framed, kh, kw, 1, h, w, out=cols)
        flipped = self.params["W"][:, :, ::-1, ::-1].transpose(2, 3, 0, 1).reshape(kh * kw * f, -1)
        return (cols @ flipped).reshape(n, h, w, -1)


def spatial_shape(z: np.ndarray) -> tuple[int, int, int]:
    """(N, rows, columns) of a channels-last z, (N, H, W, F) or in tiles (t, t, N, H/t, W/t, F)."""
    if z.ndim == 6:
        t, _, n, th, tw, _ = z.shape
        return n, th * t, tw * t
    return z.shape[:3]


class Pool2D(Layer):
    """A pool_size x pool_size window every stride (default pool_size) pixels, per channel:
    (batch, C, H, W) -> (batch, C, OH, OW)."""

    def __init__(self, pool_size: int = 2, stride: int | None = None, **kw: Any):
        super().__init__(**kw)
        self.pool_size = pool_size
        self.stride = stride or pool_size

    def layer_config(self) -> dict:
        return {"pool_size": self.pool_size, "stride": self.stride}

    def infer_shape(self, input_shape: tuple) -> tuple:
        c, h, w = _image_shape(input_shape)
        p, s = self.pool_size, self.stride
        if p > h or p > w:
            raise ShapeError(f"pool_size {p} is larger than its input {h}x{w}; use a smaller pool_size")
        return (c, conv_output_size(h, p, s, 0), conv_output_size(w, p, s, 0))

    def rows_read(self) -> tuple[int, int]:
        """How many input rows and columns the windows cover: floor mode drops the rest."""
        _, oh, ow = self.output_shape
        return self.stride * (oh - 1) + self.pool_size, self.stride * (ow - 1) + self.pool_size

    # Like conv2d, pools work on the channels-last view, which is how the memory is laid out.
    def transform(self, x: np.ndarray, training: bool) -> np.ndarray:
        return self.pool_nhwc(x.transpose(0, 2, 3, 1), training).transpose(0, 3, 1, 2)

    def transform_backward(self, dz: np.ndarray, input_gradient: bool) -> np.ndarray | None:
        return self.unpool_nhwc(dz.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)

    def pool_nhwc(self, xh: np.ndarray, training: bool) -> np.ndarray:
        """(N, H, W, C) -> (N, OH, OW, C); caches what unpool_nhwc needs if training."""
        raise NotImplementedError

    def unpool_nhwc(self, dyh: np.ndarray) -> np.ndarray:
        """dL/dx (N, H, W, C) for dyh (N, OH, OW, C), after a training pool_nhwc."""
        raise NotImplementedError


@register("maxpool2d")
class MaxPool2D(Pool2D):
    """Max over each window; the gradient goes to the first maximum of a tie (as in PyTorch)."""

    def pool_nhwc(self, xh: np.ndarray, training: bool) -> np.ndarray:
        _, oh, ow = self.output_shape
        y, winners = kernels.max_pool(xh, self.pool_size, self.stride, oh, ow, training)
        if training:
            self._winners, self._input_shape_nhwc = winners, xh.shape
        return y

    def unpool_nhwc(self, dyh: np.ndarray) -> np.ndarray:
        out = np.empty(self._input_shape_nhwc, dyh.dtype)
        return kernels.max_unpool(dyh, self._winners, self.pool_size, self.stride, out)

    def pool_tiles(self, tiles: np.ndarray, training: bool) -> np.ndarray:
        """pool_nhwc for an input in tiles (t, t, N, OH, OW, C) with t = pool_size = stride (see
        kernels.im2col): each window's (i, j) elements are block [i, j], a contiguous array."""
        y, winners = kernels.max_over(list(_blocks(tiles)), training)
        if training:
            self._winners, self._tiles_shape = winners, tiles.shape
        return y

    def unpool_tiles(self, dyh: np.ndarray) -> np.ndarray:
        """dL/dx in tiles, like pool_tiles's input, for dyh (N, OH, OW, C) after a training
        pool_tiles; the array is kept and rewritten by the next call."""
        out = self.buffer("dx tiles", self._tiles_shape, dyh.dtype)
        kernels.send_to_max(dyh, self._winners, list(_blocks(out)))
        return out


def _blocks(tiles: np.ndarray) -> np.ndarray:
    """(t, t, ...) as (t*t, ...): the blocks in row-major order of their window position."""
    return tiles.reshape(-1, *tiles.shape[2:])


@register("avgpool2d")
class AvgPool2D(Pool2D):
    """Mean over each window; the gradient is shared equally among the window's inputs."""

    def pool_nhwc(self, xh: np.ndarray, training: bool) -> np.ndarray:
        if training:
            self._input_shape_nhwc = xh.shape
        _, oh, ow = self.output_shape
        return kernels.avg_pool(xh, self.pool_size, self.stride, oh, ow)

    def unpool_nhwc(self, dyh: np.ndarray) -> np.ndarray:
        out = np.empty(self._input_shape_nhwc, dyh.dtype)
        return kernels.avg_unpool(dyh, self.pool_size, self.stride, out)


@register("flatten")
class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W) in C, H, W order."""

    def infer_shape(self, input_shape: tuple) -> tuple:
        return (int(np.prod(input_shape)),)

    def transform(self, x: np.ndarray, training: bool) -> np.ndarray:
        return x.reshape(len(x), -1)

    def transform_backward(self, dz: np.ndarray, input_gradient: bool) -> np.ndarray | None:
        return dz.reshape(len(dz), *self.input_shape)


@register("dropout")
class Dropout(Layer):
    """Inverted dropout: zero a fraction `rate` of inputs and scale the rest by 1/(1-rate) while
    training, so that evaluation is the identity."""

    def __init__(self, rate: float = 0.5, **kw: Any):
        super().__init__(**kw)
        if not 0 <= rate < 1:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate = rate
        self._mask: np.ndarray | None = None

    def layer_config(self) -> dict:
        return {"rate": self.rate}

    stochastic = True

    def initialize(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        self.rng = rng  # its own stream: the masks are reproducible and draw from nothing else

    def transform(self, x: np.ndarray, training: bool) -> np.ndarray:
        if not training:
            return x
        if self.rate == 0:
            self._mask = None
            return x
        keep = x.dtype.type(1 - self.rate)
        self._mask = (self.rng.random(x.shape, dtype=np.float32) < keep) / keep
        return x * self._mask

    def transform_backward(self, dz: np.ndarray, input_gradient: bool) -> np.ndarray | None:
        return dz if self._mask is None else dz * self._mask


class ActivationLayer(Layer):
    """An activation used as a layer of its own, e.g. `- {type: relu}`."""

    def __init__(self, **activation_params: Any):
        super().__init__({"type": self.type, **activation_params})

    def config(self) -> dict:
        """Only the activation's parameters: the type already names the activation."""
        return self.activation.config()


def activation_layer_types() -> dict[str, type[ActivationLayer]]:
    """A layer type for each activation, by the activation's name: {"relu": ReLULayer, ...}."""
    return {name: type(f"{activation.__name__}Layer", (ActivationLayer,), {})
            for name, activation in ACTIVATIONS.items()}


for _name, _layer_type in activation_layer_types().items():
    register(_name)(_layer_type)


def make_layer(spec: dict) -> Layer:
    """A layer from {"type": name, **kwargs}; an unknown type raises UnknownName."""
    spec = dict(spec)
    return LAYERS.get(spec.pop("type"))(**spec)
