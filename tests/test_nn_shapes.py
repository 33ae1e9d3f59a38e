"""Shape inference, parameter counts, the per-layer engine contract, initialisers and dropout."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from nnrun.nn import (
    ACTIVATIONS,
    INITIALIZERS,
    LAYERS,
    Sequential,
    ShapeError,
    default_initializer,
    make_layer,
    make_loss,
)
from nnrun.nn.layers import ActivationLayer, activation_layer_types


def net(specs, input_shape, seed=0, dtype=np.float64):
    return Sequential([make_layer(s) for s in specs], input_shape, seed=seed, dtype=dtype)


# -- the reference CNN, counted by hand -----------------------------------------------------------

REFERENCE_CNN = [
    {"type": "conv2d", "filters": 16, "kernel_size": 3, "padding": 1, "activation": "relu"},
    {"type": "maxpool2d", "pool_size": 2},
    {"type": "conv2d", "filters": 32, "kernel_size": 3, "padding": 1, "activation": "relu"},
    {"type": "maxpool2d", "pool_size": 2},
    {"type": "conv2d", "filters": 64, "kernel_size": 3, "padding": 1, "activation": "relu"},
    {"type": "maxpool2d", "pool_size": 2},
    {"type": "flatten"},
    {"type": "dense", "units": 128, "activation": "relu"},
    {"type": "dense", "units": 10, "activation": "softmax"},
]
# (output shape, parameters); conv out = (H + 2*1 - 3) // 1 + 1 = H, pool out = H // 2
REFERENCE_CNN_EXPECTED = [
    ((16, 28, 28), 160),     # 16*(1*3*3) + 16 = 144 + 16
    ((16, 14, 14), 0),       # 28 // 2
    ((32, 14, 14), 4640),    # 32*(16*3*3) + 32 = 4608 + 32
    ((32, 7, 7), 0),         # 14 // 2
    ((64, 7, 7), 18496),     # 64*(32*3*3) + 64 = 18432 + 64
    ((64, 3, 3), 0),         # (7 - 2) // 2 + 1 = 3
    ((576,), 0),             # 64*3*3
    ((128,), 73856),         # 576*128 + 128 = 73728 + 128
    ((10,), 1290),           # 128*10 + 10
]
REFERENCE_CNN_TOTAL = 98442  # 160 + 4640 + 18496 + 73856 + 1290


def test_reference_cnn_shapes_and_parameter_counts():
    model = net(REFERENCE_CNN, (1, 28, 28), dtype=np.float32)
    rows = model.summary()
    assert [(r["output_shape"], r["params"]) for r in rows] == REFERENCE_CNN_EXPECTED
    assert [r["index"] for r in rows] == list(range(9))
    assert [r["type"] for r in rows] == [s["type"] for s in REFERENCE_CNN]
    assert [r["activation"] for r in rows] == [s.get("activation", "linear") for s in REFERENCE_CNN]
    assert model.num_params == REFERENCE_CNN_TOTAL
    assert sum(p.size for p in model.parameters().values()) == REFERENCE_CNN_TOTAL
    assert model.output_shape == (10,)
    assert model.forward(np.zeros((2, 1, 28, 28))).shape == (2, 10)
    assert model.parameters()["layers.0.W"].shape == (16, 1, 3, 3)
    assert model.parameters()["layers.7.W"].shape == (576, 128)


@pytest.mark.parametrize("kernel", [1, 3, 5, 7])
def test_same_padding_keeps_height_and_width(kernel):
    model = net([{"type": "conv2d", "filters": 4, "kernel_size": kernel, "padding": "same"}], (3, 11, 6))
    assert model.output_shape == (4, 11, 6)
    assert model.forward(np.zeros((2, 3, 11, 6))).shape == (2, 4, 11, 6)


@pytest.mark.parametrize("input_shape, spec, expected", [
    # out = (size + 2*padding - kernel) // stride + 1
    ((1, 28, 28), {"kernel_size": 3, "stride": 2, "padding": 1}, (2, 14, 14)),  # (28+2-3)//2+1 = 14
    ((1, 7, 5), {"kernel_size": 3, "stride": 2, "padding": 0}, (2, 3, 2)),      # (7-3)//2+1, (5-3)//2+1
    ((1, 7, 5), {"kernel_size": [2, 3], "stride": 2, "padding": 1}, (2, 4, 3)),  # (7+2-2)//2+1, (5+2-3)//2+1
    ((3, 8, 9), {"kernel_size": 3, "stride": 3, "padding": 0}, (2, 2, 3)),      # (8-3)//3+1, (9-3)//3+1
    ((1, 6, 6), {"kernel_size": 5, "stride": 2, "padding": 2}, (2, 3, 3)),      # (6+4-5)//2+1 = 3
])
def test_strided_conv_output_size(input_shape, spec, expected):
    model = net([{"type": "conv2d", "filters": 2, **spec}], input_shape)
    assert model.output_shape == expected
    assert model.forward(np.zeros((1, *input_shape))).shape == (1, *expected)


@pytest.mark.parametrize("kind", ["maxpool2d", "avgpool2d"])
@pytest.mark.parametrize("input_shape, pool, stride, expected", [
    ((2, 7, 5), 2, None, (2, 3, 2)),   # 7//2, 5//2
    ((2, 7, 5), 3, 2, (2, 3, 2)),      # (7-3)//2+1, (5-3)//2+1
    ((2, 6, 8), 2, 1, (2, 5, 7)),      # 6-2+1, 8-2+1
])
def test_pool_output_size(kind, input_shape, pool, stride, expected):
    model = net([{"type": kind, "pool_size": pool, "stride": stride}], input_shape)
    assert model.output_shape == expected


@pytest.mark.parametrize("specs, input_shape, fragments", [
    ([{"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "dense", "units": 10}],
     (1, 8, 8), ["layer 1 (dense)", "flatten"]),                 # dense after an unflattened image
    ([{"type": "conv2d", "filters": 4, "kernel_size": 5}], (1, 4, 4), ["layer 0 (conv2d)", "kernel"]),
    ([{"type": "relu"}, {"type": "conv2d", "filters": 2, "kernel_size": [3, 9]}],
     (1, 8, 8), ["layer 1 (conv2d)", "kernel 3x9"]),             # non-square kernel wider than input
    ([{"type": "conv2d", "filters": 2, "kernel_size": 3}, {"type": "maxpool2d", "pool_size": 3}],
     (1, 4, 4), ["layer 1 (maxpool2d)", "pool_size"]),           # 4x4 -> 2x2, then pool 3
    ([{"type": "flatten"}, {"type": "conv2d", "filters": 2, "kernel_size": 3}],
     (1, 8, 8), ["layer 1 (conv2d)", "image"]),                  # conv after flatten
    ([{"type": "conv2d", "filters": 2, "kernel_size": 3, "stride": 2, "padding": "same"}],
     (1, 8, 8), ["layer 0 (conv2d)", "same"]),
    ([{"type": "dense", "units": 3}, {"type": "relu"}, {"type": "avgpool2d"}],
     (5,), ["layer 2 (avgpool2d)", "image"]),
])
def test_bad_stacks_raise_shape_error_with_layer_index(specs, input_shape, fragments):
    with pytest.raises(ShapeError) as info:
        net(specs, input_shape)
    message = str(info.value)
    assert message.startswith(fragments[0])
    for fragment in fragments[1:]:
        assert fragment in message
    error = info.value
    assert fragments[0] == f"layer {error.layer_index} ({error.layer_type})"
    assert message == f"{fragments[0]}: {error.reason}"
    assert error.needs_flat_input == (error.layer_type == "dense")


def test_shape_error_fields_and_message():
    with pytest.raises(ShapeError) as info:
        net([{"type": "relu"}, {"type": "dense", "units": 2}], (1, 3, 3))
    error = info.value
    assert (error.layer_index, error.layer_type, error.needs_flat_input) == (1, "dense", True)
    assert error.reason == ("expects flat input (features,), got (1, 3, 3); "
                            "add a {type: flatten} layer before it")
    assert str(error) == f"layer 1 (dense): {error.reason}"
    unplaced = ShapeError("too small")  # raised by a layer, before Sequential adds its place
    assert (unplaced.layer_index, unplaced.layer_type, unplaced.needs_flat_input) == (None, None, False)
    assert str(unplaced) == "too small"
    with pytest.raises(ShapeError) as info:
        net([{"type": "relu"}], (0,))
    assert (info.value.layer_index, info.value.layer_type) == (0, "relu")
    assert str(info.value) == ("layer 0 (relu): output shape (0,) is empty; "
                               "the input is too small for this stack")


# -- the engine contract, for every registered layer type ----------------------------------------

# Non-activation layers: (spec, input shape, parameter count by hand). Activation layers are
# generic: ({"type": name}, IMAGE, 0). A new layer type must be added here.
EXAMPLES = {
    "dense": ({"units": 3, "activation": "tanh"}, (5,), 18),                 # 5*3 + 3
    "conv2d": ({"filters": 4, "kernel_size": [2, 3], "stride": 2, "padding": 1,
                "activation": {"type": "leaky_relu", "alpha": 0.2}}, (3, 7, 5), 76),  # 4*(3*2*3) + 4
    "maxpool2d": ({"pool_size": 3, "stride": 2}, (3, 7, 5), 0),
    "avgpool2d": ({"pool_size": 2}, (3, 7, 5), 0),
    "flatten": ({}, (3, 7, 5), 0),
    "dropout": ({"rate": 0.25}, (3, 7, 5), 0),
}
IMAGE = (3, 4, 5)


def example(layer_type):
    if issubclass(LAYERS[layer_type], ActivationLayer):
        return {"type": layer_type}, IMAGE, 0
    if layer_type not in EXAMPLES:
        pytest.fail(f"layer type {layer_type!r} has no example in EXAMPLES: add one")
    spec, shape, count = EXAMPLES[layer_type]
    return {"type": layer_type, **spec}, shape, count


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer_type", sorted(LAYERS))
def test_layer_contract(layer_type, dtype):
    spec, input_shape, count = example(layer_type)
    layer = make_layer(spec)
    assert layer.type == layer_type
    out_shape = layer.build(input_shape, np.random.default_rng(0), dtype)
    assert out_shape == layer.output_shape and layer.input_shape == input_shape
    x = np.random.default_rng(1).standard_normal((2, *input_shape)).astype(dtype)
    y = layer.forward(x, training=True)
    assert y.shape == (2, *layer.output_shape) and y.dtype == dtype
    assert layer.forward(x).shape == y.shape
    assert layer.num_params == sum(p.size for p in layer.params.values()) == count
    assert all(p.dtype == dtype for p in layer.params.values())
    dx = layer.backward(np.ones_like(y))
    assert dx.shape == x.shape and dx.dtype == dtype
    assert layer.grads.keys() == layer.params.keys()
    for k in layer.params:
        assert layer.grads[k].shape == layer.params[k].shape and layer.grads[k].dtype == dtype

    config = layer.config()
    json.dumps(config)  # written to weights.json
    rebuilt = make_layer({"type": layer_type, **config})
    assert type(rebuilt) is type(layer)
    assert rebuilt.config() == config
    assert rebuilt.build(input_shape, np.random.default_rng(0), dtype) == out_shape
    assert rebuilt.activation.name == layer.activation.name


@pytest.mark.parametrize("layer_type", sorted(LAYERS))
def test_set_weights_round_trip(layer_type):
    spec, input_shape, _ = example(layer_type)
    a, b = net([spec], input_shape, seed=0), net([spec], input_shape, seed=1)
    weights = a.get_weights()
    assert weights.keys() == a.parameters().keys()
    for k, w in weights.items():
        assert w is not a.parameters()[k]  # copies
    b.set_weights(weights)
    for k, w in b.get_weights().items():
        np.testing.assert_array_equal(w, weights[k])
    x = np.random.default_rng(2).standard_normal((2, *input_shape))
    np.testing.assert_array_equal(a.forward(x), b.forward(x))


def test_parameter_names_and_set_weights_errors():
    model = net([{"type": "conv2d", "filters": 2, "kernel_size": 3}, {"type": "relu"},
                 {"type": "flatten"}, {"type": "dense", "units": 3}], (1, 5, 5))
    weights = model.get_weights()
    assert sorted(weights) == ["layers.0.W", "layers.0.b", "layers.3.W", "layers.3.b"]
    assert sorted(model.gradients()) == sorted(weights)
    for name in weights:
        bad = dict(weights)
        bad[name] = np.zeros(weights[name].shape + (1,))
        with pytest.raises(ValueError, match=name.replace(".", r"\.")):
            model.set_weights(bad)
    missing = {k: v for k, v in weights.items() if k != "layers.3.b"}
    with pytest.raises(ValueError, match=r"layers\.3\.b"):
        model.set_weights(missing)
    with pytest.raises(ValueError, match=r"^weights do not match the model: missing \['layers\.3\.b'\], unexpected \[\]$"):
        model.set_weights(missing)
    with pytest.raises(ValueError, match=r"layers\.9\.W"):
        model.set_weights({**weights, "layers.9.W": np.zeros(1)})


# -- initialisers -------------------------------------------------------------------------------

FAN_IN, FAN_OUT = 500, 300
EXPECTED_STD = {  # for a (500, 300) matrix
    "he_normal": np.sqrt(2 / FAN_IN),
    "he_uniform": np.sqrt(6 / FAN_IN) / np.sqrt(3),       # U(-l, l) has std l / sqrt(3)
    "glorot_normal": np.sqrt(2 / (FAN_IN + FAN_OUT)),
    "glorot_uniform": np.sqrt(6 / (FAN_IN + FAN_OUT)) / np.sqrt(3),
    "lecun_normal": np.sqrt(1 / FAN_IN),
    "normal": 0.01,
    "uniform": 0.1 / np.sqrt(12),                         # U(-0.05, 0.05)
    "zeros": 0.0,
}


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_initializer_shape_dtype_seed_and_std(name):
    if name not in EXPECTED_STD:
        pytest.fail(f"initialiser {name!r} has no expected std in EXPECTED_STD: add one")
    make = INITIALIZERS[name]
    for dtype in (np.float32, np.float64):
        w = make((4, 3, 2), 6, 8, np.random.default_rng(0), dtype)
        assert w.shape == (4, 3, 2) and w.dtype == dtype
    a = make((FAN_IN, FAN_OUT), FAN_IN, FAN_OUT, np.random.default_rng(7), np.float64)
    b = make((FAN_IN, FAN_OUT), FAN_IN, FAN_OUT, np.random.default_rng(7), np.float64)
    np.testing.assert_array_equal(a, b)
    assert a.std() == pytest.approx(EXPECTED_STD[name], rel=0.05, abs=1e-12)
    assert abs(a.mean()) <= 0.05 * EXPECTED_STD[name] + 1e-12


def test_he_normal_std_on_a_500x500_matrix():
    w = INITIALIZERS["he_normal"]((500, 500), 500, 500, np.random.default_rng(3), np.float64)
    assert abs(w.std() / np.sqrt(2 / 500) - 1) < 0.10


@pytest.mark.parametrize("activation, expected", [
    ("relu", "he_normal"), ("leaky_relu", "he_normal"), ("elu", "he_normal"),
    ("selu", "lecun_normal"), ("tanh", "glorot_uniform"), ("sigmoid", "glorot_uniform"),
    ("softmax", "glorot_uniform"), ("linear", "glorot_uniform"),
])
def test_default_initializer_by_activation(activation, expected):
    assert default_initializer(activation) == expected
    assert make_layer({"type": "dense", "units": 2, "activation": activation}).init == expected
    assert make_layer({"type": "conv2d", "filters": 2, "activation": activation}).init == expected


@pytest.mark.parametrize("layer, activation, expected", [
    ({"type": "dense", "units": 400}, "relu", "he_normal"),
    ({"type": "dense", "units": 400}, "selu", "lecun_normal"),
    ({"type": "dense", "units": 400}, "tanh", "glorot_uniform"),
    ({"type": "dense", "units": 400, "activation": "tanh"}, "relu", "glorot_uniform"),  # its own
    ({"type": "dense", "units": 400, "init": "glorot_normal"}, "relu", "glorot_normal"),  # chosen
    ({"type": "conv2d", "filters": 8}, "leaky_relu", "he_normal"),
])
def test_default_initializer_follows_a_separate_activation_layer(layer, activation, expected):
    """A linear layer followed by {type: relu} is a relu layer: it gets He, not Glorot."""
    input_shape = (300,) if layer["type"] == "dense" else (3, 6, 6)
    model = net([layer, {"type": activation}], input_shape)
    assert model.layers[0].init == expected
    assert model.layers[0].config()["init"] == expected  # weights.json rebuilds the same layer
    if expected == "he_normal" and layer["type"] == "dense":
        assert model.parameters()["layers.0.W"].std() == pytest.approx(np.sqrt(2 / 300), rel=0.05)


def test_layer_uses_named_initializer_with_params_and_seed():
    spec = {"type": "dense", "units": 400, "init": "normal", "init_params": {"std": 0.5}}
    w = net([spec], (300,), seed=5).parameters()["layers.0.W"]
    assert w.std() == pytest.approx(0.5, rel=0.05)
    np.testing.assert_array_equal(w, net([spec], (300,), seed=5).parameters()["layers.0.W"])
    assert not np.array_equal(w, net([spec], (300,), seed=6).parameters()["layers.0.W"])
    conv = net([{"type": "conv2d", "filters": 64, "kernel_size": 3, "activation": "relu"}],
               (32, 5, 5), seed=0).parameters()
    assert conv["layers.0.W"].std() == pytest.approx(np.sqrt(2 / (32 * 3 * 3)), rel=0.1)  # He, fan_in = C*kh*kw
    assert np.all(conv["layers.0.b"] == 0)


# -- dropout ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout(rate, dtype):
    layer = make_layer({"type": "dropout", "rate": rate})
    layer.build((500,), np.random.default_rng(0), dtype)
    x = np.random.default_rng(1).uniform(0.5, 1.5, (400, 500)).astype(dtype)
    assert np.array_equal(layer.forward(x, training=False), x)  # evaluation: identity

    y = layer.forward(x, training=True)
    assert y.dtype == dtype
    dropped = y == 0
    assert dropped.mean() == pytest.approx(rate, abs=0.01)
    scale = dtype(1) / dtype(1 - rate)
    np.testing.assert_allclose(y[~dropped], x[~dropped] * scale, rtol=1e-6)
    assert y.mean() == pytest.approx(x.mean(), rel=0.02)  # inverted dropout preserves the mean
    # backward uses the same mask and scale
    g = layer.backward(np.ones_like(x))
    assert np.array_equal(g == 0, dropped)
    np.testing.assert_allclose(g[~dropped], scale, rtol=1e-6)
    # a fresh mask each call
    assert not np.array_equal(layer.forward(x, training=True) == 0, dropped)


def test_dropout_rate_zero_and_invalid_rate():
    layer = make_layer({"type": "dropout", "rate": 0.0})
    layer.build((5,), np.random.default_rng(0))
    x = np.ones((3, 5), np.float32)
    assert np.array_equal(layer.forward(x, training=True), x)
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError):
            make_layer({"type": "dropout", "rate": bad})


def test_dropout_masks_reproducible_from_network_seed():
    specs = [{"type": "dropout", "rate": 0.5}]
    x = np.ones((4, 10))
    a, b = net(specs, (10,), seed=3), net(specs, (10,), seed=3)
    np.testing.assert_array_equal(a.forward(x, training=True), b.forward(x, training=True))


# -- errors and configs that leave the process ----------------------------------------------------

def test_a_shape_error_survives_pickling():
    """An error raised in another process (a sweep's worker) arrives pickled: every field survives."""
    error = ShapeError("too small", 3, "dense", needs_flat_input=True)
    back = pickle.loads(pickle.dumps(error))
    assert (back.reason, back.layer_index, back.layer_type, back.needs_flat_input) == ("too small", 3, "dense", True)
    assert str(back) == "layer 3 (dense): too small"
    assert back.args == error.args == ("too small", 3, "dense", True)  # repr and pickle read them


def test_config_names_the_activation_and_init_params_only_when_there_are_any():
    """What weights.json holds: no activation for a linear layer, a bare name without parameters."""
    assert make_layer({"type": "dense", "units": 2}).config() == {"units": 2, "init": "glorot_uniform", "use_bias": True}
    assert make_layer({"type": "dense", "units": 2, "activation": "relu"}).config()["activation"] == "relu"
    leaky = {"type": "leaky_relu", "alpha": 0.2}
    assert make_layer({"type": "dense", "units": 2, "activation": leaky}).config()["activation"] == leaky
    spec = {"type": "dense", "units": 2, "init": "normal", "init_params": {"std": 0.5}}
    assert make_layer(spec).config() == {"units": 2, "init": "normal", "use_bias": True, "init_params": {"std": 0.5}}


# -- conv2d padding and kernel sizes ----------------------------------------------------------------

@pytest.mark.parametrize("kernel", [[1, 3], [3, 1], [3, 5]])
def test_same_padding_is_a_valid_convolution_of_the_zero_padded_input(kernel):
    x = np.random.default_rng(0).standard_normal((2, 2, 7, 6))
    same = net([{"type": "conv2d", "filters": 3, "kernel_size": kernel, "padding": "same"}], (2, 7, 6))
    ph, pw = kernel[0] // 2, kernel[1] // 2
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    valid = net([{"type": "conv2d", "filters": 3, "kernel_size": kernel, "padding": "valid"}], padded.shape[1:])
    valid.set_weights(same.get_weights())
    assert same.output_shape == valid.output_shape == (3, 7, 6)
    np.testing.assert_allclose(same.forward(x), valid.forward(padded), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel, stride", [([2, 3], 1), ([3, 2], 1), (3, 2)])
def test_same_padding_needs_stride_one_and_an_odd_kernel(kernel, stride):
    spec = {"type": "conv2d", "filters": 2, "kernel_size": kernel, "stride": stride, "padding": "same"}
    with pytest.raises(ShapeError) as info:
        make_layer(spec).build((1, 8, 8), np.random.default_rng(0))
    assert info.value.reason == 'padding "same" needs stride 1 and an odd kernel_size'


def test_a_kernel_as_large_as_the_padded_input_fits():
    model = net([{"type": "conv2d", "filters": 2, "kernel_size": [5, 4], "padding": 1}], (1, 3, 2))
    assert model.output_shape == (2, 1, 1)


@pytest.mark.parametrize("kernel", [[6, 4], [5, 5]])
def test_a_kernel_larger_than_the_padded_input_is_refused(kernel):
    layer = make_layer({"type": "conv2d", "filters": 2, "kernel_size": kernel, "padding": 1})
    with pytest.raises(ShapeError) as info:
        layer.build((1, 3, 2), np.random.default_rng(0))
    assert info.value.reason.startswith(f"kernel {kernel[0]}x{kernel[1]} is larger than its input 3x2 (padding 1)")


def test_conv_glorot_counts_fan_out_as_filters_times_the_kernel_area():
    spec = {"type": "conv2d", "filters": 64, "kernel_size": 3, "init": "glorot_normal"}
    w = net([spec], (32, 5, 5)).parameters()["layers.0.W"]
    assert w.std() == pytest.approx(np.sqrt(2 / (32 * 3 * 3 + 64 * 3 * 3)), rel=0.05)


# -- pooling and dropout defaults -------------------------------------------------------------------

def test_pools_default_to_2x2_windows_every_2_pixels():
    for kind in ("maxpool2d", "avgpool2d"):
        assert net([{"type": kind}], (1, 6, 5)).output_shape == (1, 3, 2)


@pytest.mark.parametrize("input_shape", [(1, 2, 5), (1, 5, 2)])
def test_a_pool_window_larger_than_either_side_is_refused(input_shape):
    with pytest.raises(ShapeError, match="pool_size 3 is larger than its input"):
        make_layer({"type": "maxpool2d", "pool_size": 3}).build(input_shape, np.random.default_rng(0))


def test_dropout_defaults_to_half_and_names_the_rates_it_accepts():
    assert make_layer({"type": "dropout"}).rate == 0.5
    with pytest.raises(ValueError, match=r"^dropout rate must be in \[0, 1\), got 1\.0$"):
        make_layer({"type": "dropout", "rate": 1.0})


# -- the layer run-time contract --------------------------------------------------------------------

def test_forward_with_logits_evaluates_by_default():
    """No training flag: nothing is cached, so there is nothing to back-propagate."""
    layer = make_layer({"type": "dense", "units": 2, "activation": "tanh"})
    layer.build((3,), np.random.default_rng(0))
    z, y = layer.forward_with_logits(np.ones((1, 3), np.float32))
    np.testing.assert_array_equal(y, np.tanh(z))
    with pytest.raises(RuntimeError, match="training=True"):
        layer.backward(np.ones((1, 2), np.float32))


def test_every_activation_is_a_layer_type_of_its_own():
    types = activation_layer_types()
    assert list(types) == list(ACTIVATIONS)
    for name, layer_type in types.items():
        assert issubclass(layer_type, ActivationLayer)
        assert layer_type.__name__ == LAYERS[name].__name__ == f"{ACTIVATIONS[name].__name__}Layer"
        assert make_layer({"type": name}).activation.name == name


# -- the network's dtype and batches ------------------------------------------------------------------

MLP_SPECS = [{"type": "dense", "units": 4, "activation": "tanh"}, {"type": "dense", "units": 3, "activation": "softmax"}]


def test_a_float32_network_computes_in_float32_whatever_the_input():
    model = net(MLP_SPECS, (5,), dtype=np.float32)
    x, y = np.random.default_rng(0).standard_normal((5, 5)), np.arange(5) % 3  # float64 data
    assert model.forward(x).dtype == np.float32
    assert model.loss_and_gradients(make_loss("cross_entropy"), x, y)[1].dtype == np.float32
    empty = model.predict(x[:0])
    assert empty.shape == (0, 3) and empty.dtype == np.float32


def test_predict_and_evaluate_in_batches_equal_one_forward():
    model = net(MLP_SPECS, (5,))
    x, y = np.random.default_rng(0).standard_normal((5, 5)), np.arange(5) % 3
    np.testing.assert_allclose(model.predict(x, batch_size=2), model.forward(x), rtol=1e-12)
    mse = make_loss("mse")
    value, out = model.evaluate(mse, x, y, batch_size=2)
    assert value == pytest.approx(mse.value(model.forward(x), y), rel=1e-12) and out.shape == (5, 3)
