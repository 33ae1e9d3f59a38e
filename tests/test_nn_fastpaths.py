"""Every fast path of the engine against the straightforward implementation it replaced.

The references here are written for clarity, not speed: a convolution as a sum over kernel taps,
pooling over explicit windows, the network layer by layer on the whole batch.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from nnrun.nn import Sequential, activations, kernels, make_layer, make_loss, shards
from nnrun.nn.shards import THREAD_WORK, Shards, replica, work_per_sample
from nnrun.nn.stages import ConvPoolStage, LayerStage
from tests.peak_memory import PeakMemory

F64 = np.float64


def rand(*shape, seed=0, dtype=F64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# -- references -------------------------------------------------------------------------------
def reference_conv(x, w, b, stride, pad):
    """NCHW cross-correlation as a sum over taps: out[n,f,r,c] = sum x[n,:,r*s+i,c*s+j] w[f,:,i,j]."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    f, _, kh, kw = w.shape
    oh = (xp.shape[2] - kh) // stride + 1
    ow = (xp.shape[3] - kw) // stride + 1
    out = np.zeros((len(x), f, oh, ow))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
            out += np.einsum("nchw,fc->nfhw", patch, w[:, :, i, j])
    return out + b[None, :, None, None]


def reference_max_pool(x, size, stride):
    """NCHW max over each window and, for backward, the index of its first maximum."""
    n, c, h, w = x.shape
    oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
    windows = np.stack([x[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
                        for i in range(size) for j in range(size)])
    return windows.max(axis=0), windows.argmax(axis=0)  # argmax: the first maximum


def reference_max_unpool(dy, first, x_shape, size, stride):
    dx = np.zeros(x_shape)
    oh, ow = dy.shape[2:]
    for k in range(size * size):
        i, j = divmod(k, size)
        dx[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += dy * (first == k)
    return dx


def reference_im2col(xp, kh, kw, stride, oh, ow):
    """NHWC patches, one slice copy per tap (the implementation im2col replaced)."""
    n, _, _, c = xp.shape
    cols = np.empty((n, oh, ow, kh, kw, c), xp.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = xp[:, i:i + stride * oh:stride, j:j + stride * ow:stride, :]
    return cols.reshape(n * oh * ow, -1)


# -- kernels ----------------------------------------------------------------------------------
@pytest.mark.parametrize("c, stride, kh, kw", [(1, 1, 3, 3), (3, 1, 3, 3), (2, 2, 3, 2), (1, 2, 5, 5), (4, 3, 2, 2)])
def test_im2col_is_the_per_tap_copy(c, stride, kh, kw):
    xp = rand(2, 9, 10, c, dtype=np.float32)
    oh, ow = (9 - kh) // stride + 1, (10 - kw) // stride + 1
    expected = reference_im2col(xp, kh, kw, stride, oh, ow)
    out = np.empty_like(expected)
    assert np.array_equal(kernels.im2col(xp, kh, kw, stride, oh, ow, out), expected)
    if c == 1:
        out_t = np.empty(expected.T.shape, np.float32)
        assert np.array_equal(kernels.im2col_single_channel(xp, kh, kw, stride, oh, ow, out_t).T, expected)


@pytest.mark.parametrize("c, stride, tile", [(1, 1, 2), (3, 1, 2), (1, 2, 3), (2, 1, 3)])
def test_im2col_in_tiles_is_the_per_tap_copy_with_rows_grouped_by_window_position(c, stride, tile):
    """Row (i, j, n, r, q) of the tiled patch matrix is row (n, r*tile + i, q*tile + j) of the
    plain one; untile puts an output computed in that order back in place."""
    xp = rand(2, 13, 14, c, dtype=np.float32)
    oh, ow = ((13 - 3) // stride + 1) // tile * tile, ((14 - 3) // stride + 1) // tile * tile
    plain = reference_im2col(xp, 3, 3, stride, oh, ow).reshape(2, oh // tile, tile, ow // tile, tile, -1)
    expected = plain.transpose(2, 4, 0, 1, 3, 5).reshape(2 * oh * ow, -1)
    out = np.empty_like(expected)
    assert np.array_equal(kernels.im2col(xp, 3, 3, stride, oh, ow, out, tile), expected)
    if c == 1:
        out_t = np.empty(expected.T.shape, np.float32)
        assert np.array_equal(kernels.im2col_single_channel(xp, 3, 3, stride, oh, ow, out_t, tile).T, expected)
    tiles = expected.reshape(tile, tile, 2, oh // tile, ow // tile, -1)
    frame = np.zeros((2, oh + 1, ow + 2, expected.shape[1]), np.float32)
    kernels.untile(tiles, frame[:, 1:, 2:])  # a strided view, as the input gradient's frame
    assert np.array_equal(frame[:, 1:, 2:].reshape(2 * oh * ow, -1), plain.reshape(2 * oh * ow, -1))
    assert not frame[:, :1].any() and not frame[:, :, :2].any()


@pytest.mark.parametrize("size, stride", [(2, 2), (3, 3), (3, 2), (2, 1)])
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool_and_its_gradient_match_explicit_windows(size, stride, ties):
    """Values, and which element of a tied window gets the gradient (the first), bit for bit;
    2x2 stride 2 takes the tournament path, the others the general one. Odd sizes leave rows
    that floor mode drops (they get no gradient)."""
    x = rand(3, 2, 9, 7, seed=1)
    if ties:
        x = np.round(x)  # few distinct values: many tied windows
    check_max_pool(x, size, stride)


@pytest.mark.parametrize("shape, stride", [((2, 2, 9, 9), 3), ((2, 2, 10, 9), 3), ((2, 2, 9, 10), 3),
                                           ((2, 6, 9, 7), 3), ((2, 2, 6, 6), 2)])
def test_3x3_windows_that_tile_the_input_or_leave_a_margin(shape, stride):
    """Windows that tile the whole input write each gradient once; a margin that floor mode drops
    gets zeros (6 channels: as many as the columns the windows cover); overlapping windows add up
    (stride 2 on 6x6: two windows cover 6 rows, one row shared and one left out)."""
    check_max_pool(np.round(rand(*shape, seed=19)), 3, stride)


def check_max_pool(x, size, stride):
    shape = x.shape
    y_ref, first = reference_max_pool(x, size, stride)
    oh, ow = y_ref.shape[2:]
    xh = x.transpose(0, 2, 3, 1)
    y, winners = kernels.max_pool(xh, size, stride, oh, ow, training=True)
    assert np.array_equal(y.transpose(0, 3, 1, 2), y_ref)
    dy = rand(*y_ref.shape, seed=2)
    dx = kernels.max_unpool(np.ascontiguousarray(dy.transpose(0, 2, 3, 1)), winners, size, stride,
                            np.full(xh.shape, np.nan))
    assert np.array_equal(dx.transpose(0, 3, 1, 2), reference_max_unpool(dy, first, shape, size, stride))


def test_the_2x2_tournament_sends_each_tie_to_the_first_element():
    x = np.zeros((1, 4, 4, 1))
    x[0, 0:2, 0:2, 0] = [[1, 1], [1, 1]]      # all four tied: top left
    x[0, 0:2, 2:4, 0] = [[0, 2], [2, 2]]      # three tied, first is top right
    x[0, 2:4, 0:2, 0] = [[0, 0], [3, 3]]      # tie in the bottom row: bottom left
    x[0, 2:4, 2:4, 0] = [[-1, -1], [-1, -1]]  # all negative and tied: top left
    _, winners = kernels.max_pool(x, 2, 2, 2, 2, training=True)
    dx = kernels.max_unpool(np.ones((1, 2, 2, 1)), winners, 2, 2, np.empty_like(x))
    assert dx[0, :, :, 0].tolist() == [[1, 0, 0, 1], [0, 0, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]]


def test_avg_pool_gradient_is_divided_by_the_window_size():
    x = np.ones((1, 4, 4, 1))
    y = kernels.avg_pool(x, 2, 2, 2, 2)
    assert np.array_equal(y, np.ones((1, 2, 2, 1)))
    dx = kernels.avg_unpool(np.ones((1, 2, 2, 1)), 2, 2, np.empty_like(x))
    assert np.array_equal(dx, np.full_like(x, 0.25))


# -- layers -----------------------------------------------------------------------------------
@pytest.mark.parametrize("c, stride, padding", [(1, 1, 1), (3, 1, 0), (2, 2, 1), (3, 1, "same"), (1, 2, 0)])
def test_conv2d_forward_and_backward_match_the_sum_over_taps(c, stride, padding):
    x = rand(2, c, 8, 7, seed=3)
    layer = make_layer({"type": "conv2d", "filters": 4, "kernel_size": 3, "stride": stride, "padding": padding})
    layer.build(x.shape[1:], np.random.default_rng(0), F64)
    layer.params["b"][:] = rand(4, seed=4)
    pad = 1 if padding == "same" else padding
    z = layer.forward(x, training=True)
    assert np.allclose(z, reference_conv(x, layer.params["W"], layer.params["b"], stride, pad), atol=1e-12)
    dz = rand(*z.shape, seed=5)
    dx = layer.backward(dz)
    # The reference's gradients by linearity: d<dz, conv(x)>/dW, /db, /dx, each a sum of products.
    eye = np.eye(layer.params["W"].size).reshape(-1, *layer.params["W"].shape)
    zero_b = np.zeros(4)
    dw = np.array([np.sum(dz * reference_conv(x, e, zero_b, stride, pad)) for e in eye])
    assert np.allclose(layer.grads["W"], dw.reshape(layer.params["W"].shape), atol=1e-10)
    assert np.allclose(layer.grads["b"], dz.sum(axis=(0, 2, 3)), atol=1e-12)
    ex = np.eye(x.size).reshape(-1, *x.shape)
    dx_ref = np.array([np.sum(dz * reference_conv(e, layer.params["W"], zero_b, stride, pad)) for e in ex])
    assert np.allclose(dx, dx_ref.reshape(x.shape), atol=1e-10)


def conv_pool_net(activation, fuse, size=9, seed=0, dtype=F64, conv_stride=1, use_bias=True,
                  first_pool=None, channels=2):
    """size: the input's height and width, or (height, width); first_pool: the first maxpool2d's
    settings (default 2x2, stride 2)."""
    specs = [{"type": "conv2d", "filters": 3, "kernel_size": 3, "padding": 1, "stride": conv_stride,
              "activation": activation, "use_bias": use_bias},
             {"type": "maxpool2d", **(first_pool or {"pool_size": 2})},
             {"type": "conv2d", "filters": 4, "kernel_size": 3, "activation": activation, "use_bias": use_bias},
             {"type": "maxpool2d", "pool_size": 2},
             {"type": "flatten"}, {"type": "dense", "units": 3, "activation": "softmax"}]
    height, width = (size, size) if isinstance(size, int) else size
    net = Sequential([make_layer(s) for s in specs], (channels, height, width), seed=seed, dtype=dtype, fuse=fuse)
    for layer in net.layers:
        if "b" in layer.params:
            layer.params["b"][:] = rand(*layer.params["b"].shape, seed=7).astype(dtype) * 0.1
    return net


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("activation", ["relu", "linear"])
@pytest.mark.parametrize("size", [9, 12])
def test_conv_then_pool_as_one_stage_equals_the_two_layers(activation, size, use_bias):
    """Same outputs and gradients, dL/dx included; size 9 leaves conv outputs that the pool
    drops (the fused stage does not compute them)."""
    assert_fused_equals_plain(activation, size, use_bias)


@pytest.mark.parametrize("first_pool, size, tile, more", [
    ({"pool_size": 3}, 12, 3, {}),              # 3x3 tiles: nine blocks, first-maximum masks
    ({"pool_size": 3}, 14, 3, {}),              # 3x3 tiles leaving a margin the pool drops
    ({"pool_size": 2, "stride": 1}, 9, 1, {}),  # overlapping windows: strided views, no tiles
    ({"pool_size": 3, "stride": 2}, 9, 1, {}),
    (None, 11, 2, {"channels": 1}),             # the one-channel patch matrix, in tiles
    (None, 19, 2, {"conv_stride": 2}),          # a strided convolution's output in tiles
    (None, 17, 2, {"conv_stride": 2, "channels": 1}),
])
def test_conv_then_pools_of_other_shapes_as_one_stage_equal_the_two_layers(first_pool, size, tile, more):
    assert conv_pool_net("relu", True, size, first_pool=first_pool, **more).stages[0].tile == tile
    assert_fused_equals_plain("relu", size, True, first_pool, **more)


def assert_fused_equals_plain(activation, size, use_bias, first_pool=None, **more):
    fused = conv_pool_net(activation, True, size, use_bias=use_bias, first_pool=first_pool, **more)
    plain = conv_pool_net(activation, False, size, use_bias=use_bias, first_pool=first_pool, **more)
    assert [type(s) for s in fused.stages[:2]] == [ConvPoolStage, ConvPoolStage]
    assert fused.stages[1].tile == 2 and (first_pool is not None or fused.stages[0].tile == 2)  # 2x2 pools: tiles
    assert all(type(s) is LayerStage for s in plain.stages)
    channels = fused.layers[0].input_shape[0]
    x, y = rand(5, channels, size, size, seed=8), np.array([0, 1, 2, 1, 0])
    loss = make_loss("cross_entropy")
    for net in (fused, plain):
        net.shards = Shards(net.layers, net.stages, True, 1)  # whole batches: only fusion differs
    results = []
    for net in (fused, plain):
        value, out = net.loss_and_gradients(loss, x, y, input_gradient=True)
        logits, probs = net.forward_with_logits(x, training=True)
        dx = net.backward(loss.logits_gradient(probs, y), skip_output_activation=True)
        results.append((value, out, dx, net.gradients()))
    (v1, o1, dx1, g1), (v2, o2, dx2, g2) = results
    assert np.isclose(v1, v2, rtol=1e-13) and np.allclose(o1, o2, atol=1e-14)
    assert np.allclose(dx1, dx2, atol=1e-14)
    for name in g2:
        assert np.allclose(g1[name], g2[name], atol=1e-13), name
    assert np.allclose(fused.forward(x), plain.forward(x), atol=1e-14)  # evaluation: one channel in spatial order


def test_conv_then_pool_relu_ties_send_no_gradient_either_way():
    """Windows whose pre-activations are all negative (relu outputs tie at 0): neither path
    sends a gradient into them, so the weights' gradients agree."""
    fused, plain = conv_pool_net("relu", True), conv_pool_net("relu", False)
    for net in (fused, plain):
        for layer in net.layers:
            if "b" in layer.params:
                layer.params["b"][:] = -0.5  # many windows entirely below 0
        net.shards = Shards(net.layers, net.stages, True, 1)
    x, y = rand(4, 2, 9, 9, seed=9), np.array([0, 1, 2, 0])
    loss = make_loss("cross_entropy")
    grads = []
    for net in (fused, plain):
        net.loss_and_gradients(loss, x, y)
        grads.append(net.gradients())
    for name in grads[1]:
        assert np.allclose(grads[0][name], grads[1][name], atol=1e-13), name


def test_a_pool_that_is_the_last_layer_is_not_fused():
    net = Sequential([make_layer({"type": "conv2d", "filters": 2, "activation": "relu"}),
                      make_layer({"type": "maxpool2d"})], (1, 6, 6))
    assert [type(s) for s in net.stages] == [LayerStage, LayerStage]
    followed = Sequential([make_layer({"type": "conv2d", "filters": 2, "activation": "relu"}),
                           make_layer({"type": "maxpool2d"}), make_layer({"type": "flatten"})], (1, 6, 6))
    assert [type(s) for s in followed.stages] == [ConvPoolStage, LayerStage]  # fused by default


@pytest.mark.parametrize("fuse", [True, False])
def test_both_halves_run_the_networks_plan(fuse):
    """fuse=False is the reference the fused stages are tested against: no half may fuse."""
    plans = [[type(s) for s in stages] for stages in conv_pool_net("relu", fuse).shards.stages]
    assert len(plans) == 2 and plans[0] == plans[1] and (ConvPoolStage in plans[0]) == fuse


def test_the_fused_stage_needs_a_training_forward_before_backward():
    net = conv_pool_net("relu", True)
    net.forward(rand(2, 2, 9, 9))  # evaluation: nothing cached
    with pytest.raises(RuntimeError, match=r"^conv2d\+maxpool2d: backward needs a forward with training=True first$"):
        net.stages[0].backward(np.ones((2, 3, 4, 4)), False, True)


@pytest.mark.parametrize("channels, spec", [
    (1, {"padding": 1}),      # one channel: the transposed patch matrix
    (3, {"padding": 1}),      # the input gradient as a convolution
    (2, {"kernel_size": 5}),  # the input gradient per kernel tap
])
def test_float32_convolutions_stay_float32_on_every_path(channels, spec):
    layer = make_layer({"type": "conv2d", "filters": 3, "kernel_size": 3, **spec})
    layer.build((channels, 8, 8), np.random.default_rng(0), np.float32)
    y = layer.forward(rand(2, channels, 8, 8, dtype=np.float32), training=True)
    assert y.dtype == layer.backward(np.ones_like(y)).dtype == np.float32


@pytest.mark.parametrize("channels", [1, 16])
def test_a_warm_training_forward_reuses_the_convolutions_scratch_arrays(channels):
    """The padded input and the patch matrix are kept between training steps (kernels.py): once
    warm, a forward allocates little more than its small output."""
    layer = make_layer({"type": "conv2d", "filters": 1, "kernel_size": 3, "padding": 1})
    layer.build((channels, 16, 16), np.random.default_rng(0), np.float32)
    x = rand(2, channels, 16, 16, dtype=np.float32)
    layer.forward(x, training=True)  # makes the buffers
    with PeakMemory() as peak:
        layer.forward(x, training=True)
    padded, patches = 2 * 18 * 18 * channels * 4, 2 * 16 * 16 * 9 * channels * 4  # bytes
    assert peak.bytes < (padded if channels > 1 else patches) / 2


def test_a_layer_buffer_is_kept_per_name_shape_and_dtype():
    layer = make_layer({"type": "flatten"})
    a = layer.buffer("x", (2, 3), np.float32)
    assert layer.buffer("x", (2, 3), np.float32) is a  # kept between calls
    assert layer.buffer("y", (2, 3), np.float32) is not a  # one per name
    b = layer.buffer("x", (3, 2), np.float32)  # a new shape replaces the old one
    assert b is not a and layer.buffer("x", (3, 2), np.float32) is b
    c = layer.buffer("x", (3, 2), np.float64)  # so does a new dtype
    assert c.dtype == np.float64 and layer.buffer("x", (3, 2), np.float64) is c
    fresh = layer.buffer("x", (3, 2), np.float64, keep=False)  # not kept, and no kept one handed out
    assert fresh is not c and layer.buffer("x", (3, 2), np.float64) is c
    assert not layer.buffer("z", (1000,), np.float32, zeroed=True).any()


# -- outputs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1000, 10), (3, 1), (5, 64), (7, 65), (0, 10)])
def test_row_max_is_numpys_row_maximum(shape):
    x = rand(*shape, seed=3, dtype=np.float32)
    if x.size:
        x[0, 0], x[-1, -1] = np.nan, np.inf  # a NaN wins its row, as in x.max
        x[len(x) // 2] = -0.0
    expected = x.max(axis=1, keepdims=True)
    got = activations.row_max(x)
    assert got.shape == expected.shape and np.array_equal(got, expected, equal_nan=True)


@pytest.mark.parametrize("shape, dtype, view", [((1000, 10), np.float32, "whole"), ((4, 100), np.float32, "whole"),
                                               ((2, 3, 4, 4), np.float32, "whole"), ((60, 10), F64, "whole"),
                                               ((60, 10), np.float32, "fortran"), ((60, 10), np.float32, "strided")])
def test_softmax_is_the_textbook_formula_bit_for_bit(shape, dtype, view):
    x = rand(*shape, seed=4, dtype=dtype) * 30
    x = {"whole": x, "fortran": np.asfortranarray(x), "strided": x[::2, ::-1]}[view]
    given = x.copy()
    e = np.exp(x - x.max(axis=1, keepdims=True))
    assert np.array_equal(activations.Softmax().forward(x), e / e.sum(axis=1, keepdims=True))
    assert np.array_equal(x, given)  # its input untouched


def test_softmax_of_integers_is_in_floats():
    x = np.arange(12).reshape(3, 4)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    assert np.array_equal(activations.Softmax().forward(x), e / e.sum(axis=1, keepdims=True))


def test_the_fused_cross_entropy_value_is_the_textbook_formula():
    logits, y = rand(1000, 10, seed=5, dtype=np.float32) * 30, np.arange(1000) % 10
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    one_hot = np.eye(10, dtype=np.float32)[y]
    assert make_loss("cross_entropy").value_from_logits(logits, y) == float(-(one_hot * log_p).sum() / 1000)


# -- batch halves and threads -------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 2, 63, 64, 65, 1001])
def test_a_batch_is_split_into_halves_as_numpys_linspace_would(n):
    bounds = np.linspace(0, n, min(2, n) + 1).astype(int)
    assert cnn().shards.slices(n) == [slice(a, b) for a, b in pairwise(bounds)]


@pytest.fixture(autouse=True)
def tiny_nets_have_halves_too(monkeypatch):
    """The tests below split nets far cheaper than MIN_SHARD_WORK, to stay fast."""
    monkeypatch.setattr(shards, "MIN_SHARD_WORK", 0)


def test_a_conv_net_cheaper_than_min_shard_work_computes_whole_batches(monkeypatch):
    monkeypatch.undo()
    assert work_per_sample(cnn().layers) < shards.MIN_SHARD_WORK and len(cnn().shards) == 1
    big = Sequential([make_layer({"type": "conv2d", "filters": 16, "kernel_size": 5, "activation": "relu"}),
                      make_layer({"type": "flatten"}), make_layer({"type": "dense", "units": 10})], (1, 28, 28))
    assert work_per_sample(big.layers) >= shards.MIN_SHARD_WORK and len(big.shards) == 2


def cnn(seed=0):
    specs = [{"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": 1, "activation": "relu"},
             {"type": "maxpool2d", "pool_size": 2},
             {"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]
    return Sequential([make_layer(s) for s in specs], (1, 8, 8), seed=seed)


@pytest.mark.parametrize("n", [33, 32])  # 32: halves of one shape, each with its own buffers
def test_a_batch_in_halves_gives_the_whole_batchs_loss_and_gradients(n):
    halves, whole = cnn(), cnn()
    assert len(halves.shards) == 2
    whole.shards = Shards(whole.layers, whole.stages, True, 1)
    x, y = rand(n, 1, 8, 8, seed=10, dtype=np.float32), np.arange(n) % 10
    loss = make_loss("cross_entropy")
    (v1, o1), (v2, o2) = (net.loss_and_gradients(loss, x, y) for net in (halves, whole))
    assert v1 == pytest.approx(v2, rel=1e-6) and np.allclose(o1, o2, atol=1e-6)
    g1, g2 = halves.gradients(), whole.gradients()
    for name in g2:
        assert np.allclose(g1[name], g2[name], rtol=1e-4, atol=1e-6), name


def test_a_batch_too_small_to_split_gets_only_its_own_gradients():
    halves, whole = cnn(), cnn()
    whole.shards = Shards(whole.layers, whole.stages, True, 1)
    x, y = rand(9, 1, 8, 8, seed=20, dtype=np.float32), np.arange(9) % 10
    loss = make_loss("cross_entropy")
    for net in (halves, whole):
        net.loss_and_gradients(loss, x[:8], y[:8])  # both halves get gradients
        net.loss_and_gradients(loss, x[8:], y[8:])  # one sample: no second half this time
    for name, g in whole.gradients().items():
        assert np.allclose(halves.gradients()[name], g, rtol=1e-5, atol=1e-7), name


def test_a_replica_of_a_used_layer_has_caches_and_buffers_of_its_own():
    """A twin made after the layer ran (and kept its scratch arrays): running the twin on other
    data changes nothing of what the layer's own backward computes."""
    def conv():
        layer = make_layer({"type": "conv2d", "filters": 2, "kernel_size": 3, "padding": 1})
        layer.build((2, 6, 6), np.random.default_rng(0), F64)
        return layer

    x, other, dz = rand(3, 2, 6, 6, seed=1), rand(3, 2, 6, 6, seed=2), rand(3, 2, 6, 6, seed=3)
    alone, layer = conv(), conv()
    alone.forward(x, training=True)
    expected = alone.backward(dz), {k: g.copy() for k, g in alone.grads.items()}
    layer.forward(x, training=True)
    twin = replica(layer)
    assert twin.params["W"] is layer.params["W"] and twin.grads["W"] is not layer.grads["W"]
    twin.forward(other, training=True)
    assert np.array_equal(layer.backward(dz), expected[0])
    for k, g in layer.grads.items():
        assert np.array_equal(g, expected[1][k]), k


def test_work_per_sample_counts_the_multiply_adds_of_convolutions_and_dense_layers():
    # conv2d: 8x8 output positions times 4*1*3*3 weights; dense: 4*4*4 inputs times 10 units
    assert work_per_sample(cnn().layers) == 8 * 8 * 36 + 64 * 10


def test_two_threads_give_the_same_bits_as_one():
    x, y = rand(64, 1, 8, 8, seed=11, dtype=np.float32), np.arange(64) % 10
    loss = make_loss("cross_entropy")
    results = []
    for threads in (1, 2, 1):
        net = cnn()
        net.shards.work_per_sample = 10 ** 9  # hand halves to the thread even for this small net
        net.set_threads(threads)
        assert (net.shards.pool is not None) == (threads == 2)
        value, out = net.loss_and_gradients(loss, x, y)
        results.append((value, out, net.gradients(), net.predict(x, batch_size=16)))
        net.set_threads(1)
    for value, out, grads, predicted in results[1:]:
        assert value == results[0][0] and np.array_equal(out, results[0][1])
        assert np.array_equal(predicted, results[0][3])
        for name, g in grads.items():
            assert np.array_equal(g, results[0][2][name]), name


@pytest.mark.parametrize("loss_name", ["cross_entropy", "mse"])
def test_each_half_going_straight_from_forward_to_backward_gives_the_same_bits(loss_name):
    """loss_and_gradients against what it replaced: both halves forward, the loss gradient of
    the whole batch, then both halves backward."""
    from nnrun.nn.network import _backward, _forward

    x, y = rand(64, 1, 8, 8, seed=12, dtype=np.float32), np.arange(64) % 10
    loss = make_loss(loss_name)
    net, old = cnn(), cnn()
    value, out = net.loss_and_gradients(loss, x, y)
    parts = old.shards.slices(64)
    assert len(parts) == 2
    outs = [_forward(stages, x[part], True) for stages, part in zip(old.shards.stages, parts, strict=True)]
    logits, probabilities = np.concatenate([z for z, _ in outs]), np.concatenate([p for _, p in outs])
    fused = old.fuses_softmax(loss)
    grad = loss.logits_gradient(probabilities, y) if fused else loss.gradient(probabilities, y)
    for stages, part in zip(old.shards.stages, parts, strict=True):
        _backward(stages, grad[part], fused, False, old.first_index_with_params())
    old.shards.sum_gradients(2)
    assert value == old.loss_value(loss, logits, probabilities, y) and np.array_equal(out, probabilities)
    for name, g in old.gradients().items():
        assert np.array_equal(net.gradients()[name], g), name


def test_an_error_in_the_first_half_surfaces_after_the_second_half_has_stopped():
    import threading
    import time

    net = cnn()
    net.shards.work_per_sample = 10 ** 9
    net.set_threads(2)
    finished = threading.Event()

    def work(stages, part):
        if part.start == 0:
            raise ValueError("a bad label")
        time.sleep(0.2)
        finished.set()

    try:
        with pytest.raises(ValueError, match="a bad label"):
            net.shards.map(work, net.shards.slices(64))
        assert finished.is_set()
    finally:
        net.set_threads(1)


def test_networks_with_dropout_or_without_convolutions_are_not_split():
    mlp = Sequential([make_layer({"type": "dense", "units": 4})], (3,))
    dropout = Sequential([make_layer({"type": "conv2d", "filters": 2}), make_layer({"type": "dropout", "rate": 0.5}),
                          make_layer({"type": "flatten"}), make_layer({"type": "dense", "units": 2})], (1, 5, 5))
    assert len(mlp.shards) == 1 and len(dropout.shards) == 1


# -- whole-model optimiser steps ----------------------------------------------------------------
@pytest.mark.parametrize("name, params", [("adam", {}), ("adamw", {"weight_decay": 0.1}),
                                          ("sgd", {"momentum": 0.9, "nesterov": True}),
                                          ("sgd", {"weight_decay": 0.01}), ("rmsprop", {}),
                                          ("sgd", {"clip_norm": 0.05}), ("adam", {"clip_norm": 0.05})])
def test_a_whole_model_step_is_the_per_parameter_step(name, params):
    """The flat step gives the same bits as one step per parameter, and its state reads back
    by parameter (state_dict) and continues after load_state_dict."""
    from nnrun.nn import make_optimizer

    nets = [Sequential([make_layer({"type": "dense", "units": 5, "activation": "tanh"}),
                        make_layer({"type": "dense", "units": 3, "activation": "softmax"})], (4,), seed=1)
            for _ in range(2)]
    assert nets[0].flat_buffers() is not None
    opts = [make_optimizer(name, **params) for _ in range(2)]
    x, y = rand(8, 4, seed=3, dtype=np.float32), np.arange(8) % 3
    loss = make_loss("cross_entropy")
    for step in range(3):
        for net, opt, flat in zip(nets, opts, (True, False), strict=True):
            net.loss_and_gradients(loss, x, y)
            opt.step(net.parameters(), net.gradients(), 0.05, flat=net.flat_buffers() if flat else None)
        for key, p in nets[0].parameters().items():
            assert np.array_equal(p, nets[1].parameters()[key]), (step, key)
        saved = opts[0].state_dict()
        assert {k: v.tolist() for k, v in saved.items()} == {k: v.tolist() for k, v in opts[1].state_dict().items()}
    resumed = make_optimizer(name, **params)
    resumed.load_state_dict(saved)
    before = nets[1].get_weights()
    nets[1].loss_and_gradients(loss, x, y)
    opts[1].step(nets[1].parameters(), nets[1].gradients(), 0.05)
    expected = nets[1].get_weights()
    nets[1].set_weights(before)
    nets[1].loss_and_gradients(loss, x, y)
    resumed.step(nets[1].parameters(), nets[1].gradients(), 0.05, flat=nets[1].flat_buffers())
    for key, p in nets[1].parameters().items():
        assert np.array_equal(p, expected[key]), key


@pytest.mark.parametrize("name, params", [("adam", {}), ("sgd", {"momentum": 0.9}), ("rmsprop", {})])
def test_a_whole_model_step_keeps_the_state_some_parameters_already_have(name, params):
    """Stepped on part of the model first, then on all of it as a whole: the parameters with a
    state keep it, the others start from zeros, as with one step per parameter (the flat path
    used to start every state afresh: Adam moved `a` to 0.826 instead of 0.8)."""
    from nnrun.nn import make_optimizer

    results = []
    for flat in (True, False):
        opt = make_optimizer(name, **params)
        a, b = np.ones(2, np.float32), np.ones(3, np.float32)
        whole, grads = np.ones(5, np.float32), np.full(5, 0.5, np.float32)
        opt.step({"a": a}, {"a": np.ones(2, np.float32)}, 0.1)
        whole[:2], whole[2:] = a, b
        views = {"a": whole[:2], "b": whole[2:]}
        opt.step(views, {"a": grads[:2], "b": grads[2:]}, 0.1, flat=(whole, grads) if flat else None)
        results.append((whole.copy(), {k: v.copy() for k, v in opt.state_dict().items()}))
    assert np.array_equal(results[0][0], results[1][0])
    assert results[0][1].keys() == results[1][1].keys()
    assert all(np.array_equal(results[0][1][k], results[1][1][k]) for k in results[0][1])


def test_a_network_with_a_single_parameter_array_steps_as_a_whole():
    net = Sequential([make_layer({"type": "dense", "units": 2, "use_bias": False})], (3,))
    params, grads = net.flat_buffers()
    assert params.size == grads.size == 6


def test_a_replaced_parameter_array_turns_the_whole_model_step_off():
    net = Sequential([make_layer({"type": "dense", "units": 2})], (3,))
    net.layers[0].params["W"] = net.layers[0].params["W"].copy()
    assert net.flat_buffers() is None


def test_the_numbers_do_not_depend_on_the_blas_thread_count():
    """A sweep worker has a one-thread BLAS, `nnrun train` a multi-thread one: the same trial
    must give the same bits in both (every reduction over the batch is numpy's or a GEMM's)."""
    from threadpoolctl import threadpool_limits

    x, y = rand(128, 1, 28, 28, seed=12, dtype=np.float32), np.arange(128) % 10  # big enough to thread
    loss = make_loss("cross_entropy")
    results = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="blas"):
            # No pool: conv2d's bias gradient sums 64*28*28 rows per half, enough for BLAS to thread.
            specs = [{"type": "conv2d", "filters": 16, "padding": 1, "activation": "relu"},
                     {"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]
            net = Sequential([make_layer(s) for s in specs], (1, 28, 28))
            net.loss_and_gradients(loss, x, y)
            results.append(net.gradients())
    for name, g in results[0].items():
        assert np.array_equal(g, results[1][name]), name


def test_small_halves_stay_on_the_calling_thread(monkeypatch):
    import threading

    net = cnn()
    net.set_threads(2)
    seen = set()
    original = net.shards.stages[1][0].forward

    def spy(x, training):
        seen.add(threading.current_thread().name)
        return original(x, training)

    monkeypatch.setattr(net.shards.stages[1][0], "forward", spy)
    x = rand(64, 1, 8, 8, seed=1, dtype=np.float32)
    net.predict(x)
    assert seen == {threading.current_thread().name}
    net.shards.work_per_sample = 10 ** 9
    seen.clear()
    net.predict(x)
    assert len(seen) == 1 and seen != {threading.current_thread().name}
    assert seen.pop().startswith("nnrun-shard")  # named for whoever reads a thread dump
    net.shards.work_per_sample = THREAD_WORK // 32  # halves of 32: exactly THREAD_WORK, not below it
    net.predict(x)
    assert seen and seen != {threading.current_thread().name}
    net.set_threads(1)


@pytest.mark.parametrize("size", [(9, 9), (9, 8)])
def test_a_layer_run_alone_then_fused_keeps_no_stale_buffer(size):
    """The layer alone computes more conv outputs than the fused stage (9 rows: the pool drops
    one); running the same layer both ways must not let one's buffers leak into the other."""
    from tests.gradcheck import input_gradient

    fused = conv_pool_net("relu", True, size=size)
    plain = conv_pool_net("relu", False, size=size)
    x, y = rand(4, 2, *size, seed=13), np.array([0, 1, 2, 0])
    z = fused.layers[0].forward(x, training=True)
    fused.layers[0].backward(rand(*z.shape, seed=14))  # alone: the whole 9x9 output
    loss = make_loss("cross_entropy")
    for net in (fused, plain):
        net.shards = Shards(net.layers, net.stages, True, 1)
    assert np.allclose(input_gradient(fused, loss, x, y), input_gradient(plain, loss, x, y), atol=1e-13)


@pytest.mark.parametrize("fuse", [True, False])
def test_training_skips_the_first_layers_input_gradient(fuse, monkeypatch):
    """A conv net's first layer has parameters: training's backward must not compute its dL/dx
    (nobody reads it), fused or not, in halves or whole."""
    from nnrun.nn.layers import Conv2D

    net = conv_pool_net("relu", fuse, dtype=np.float32)
    asked = []
    original = Conv2D.backward_nhwc

    def spy(self, dzh, input_gradient, bias):
        asked.append((self.filters, input_gradient))  # the first conv has 3 filters, the second 4
        return original(self, dzh, input_gradient, bias)

    monkeypatch.setattr(Conv2D, "backward_nhwc", spy)
    x, y = rand(6, 2, 9, 9, seed=15, dtype=np.float32), np.arange(6) % 3
    net.loss_and_gradients(make_loss("cross_entropy"), x, y)
    first_layer_calls = [flag for filters, flag in asked if filters == 3]
    assert first_layer_calls and not any(first_layer_calls)


def test_the_callers_errstate_reaches_the_second_half():
    """A diverging conv net in halves on two threads: the training loop silences overflow with
    np.errstate, and the thread running the second half must be silenced too."""
    import warnings

    net = cnn()
    net.shards.work_per_sample = 10 ** 9
    net.set_threads(2)
    x, y = rand(64, 1, 8, 8, seed=16, dtype=np.float32) * 1e30, np.arange(64) % 10
    for p in net.parameters().values():
        p *= 1e20
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            net.loss_and_gradients(make_loss("cross_entropy"), x, y)
    net.set_threads(1)


def test_a_deep_copy_of_a_network_still_trains():
    import copy

    from nnrun.nn import make_optimizer
    from nnrun.train import train_step

    twin = copy.deepcopy(cnn())
    before = twin.get_weights()
    x, y = rand(8, 1, 8, 8, seed=17, dtype=np.float32), np.arange(8) % 10
    train_step(twin, make_loss("cross_entropy"), make_optimizer("adam"), x, y, 0.01)
    assert all(not np.array_equal(p, before[k]) for k, p in twin.parameters().items())


def test_evaluation_keeps_no_scratch_memory():
    net = cnn()
    net.predict(rand(300, 1, 8, 8, seed=18, dtype=np.float32))
    assert all(not getattr(layer, "_buffers", {}) for layer in net.layers)
    two_channels = conv_pool_net("relu", True, dtype=np.float32)
    two_channels.predict(rand(300, 2, 9, 9, seed=18, dtype=np.float32))
    assert all(not getattr(layer, "_buffers", {}) for layer in two_channels.layers)


@pytest.mark.parametrize("threads, per_half", [(2, 1), (4, 2)])
def test_shard_threads_share_the_blas_threads_out_between_the_halves(threads, per_half):
    from threadpoolctl import threadpool_info, threadpool_limits

    from nnrun.parallel import shard_threads

    net = cnn()
    with threadpool_limits(limits=threads, user_api="blas"):
        with shard_threads(net, threads=threads):
            assert net.shards.pool is not None
            inside = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
        assert net.shards.pool is None
    assert inside and all(n == per_half for n in inside)


def test_an_evaluation_forward_runs_the_image_stages_in_chunks_of_each_half(monkeypatch):
    """Each half of a conv net's evaluation batch goes through the image stages EVAL_CHUNK to
    2*EVAL_CHUNK - 1 samples at a time (never a chunk of a row or two), then through the flat
    stages whole: the values of one forward over each half."""
    from nnrun.nn import network

    net = conv_pool_net("relu", True, dtype=np.float32)
    x = rand(4 * network.EVAL_CHUNK + 2, 2, 9, 9, seed=21, dtype=np.float32)  # halves of 2 chunks + 1
    whole_logits, whole_out = network._joined([network._forward(net.stages, x[part], False)
                                              for part in net.shards.slices(len(x))])
    sizes: dict[str, list[int]] = {"forward": [], "forward_with_logits": []}

    def record(stage, method):
        original = getattr(stage, method)

        def spy(h, *args):
            sizes[method].append(len(h))
            return original(h, *args)
        monkeypatch.setattr(stage, method, spy)

    for stages in net.shards.stages:
        record(stages[0], "forward")  # the first image stage
        record(stages[-1], "forward_with_logits")  # the last stage, a flat one
    logits, out = net.forward_with_logits(x)
    assert sorted(sizes["forward"]) == [network.EVAL_CHUNK] * 2 + [network.EVAL_CHUNK + 1] * 2
    assert sizes["forward_with_logits"] == [len(x) // 2] * 2
    assert np.allclose(logits, whole_logits, rtol=1e-6, atol=1e-7) and np.allclose(out, whole_out, rtol=1e-6, atol=1e-7)
