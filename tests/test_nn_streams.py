"""Random streams: one per consumer, derived from the seed, and Sequential.random_state, which
restores the dropout streams bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnrun.data.prepare import stratified_split
from nnrun.nn import INITIALIZERS, Sequential, make_layer


def net(specs, input_shape=(6,), seed=5):
    return Sequential([make_layer(s) for s in specs], input_shape, seed=seed)


MLP = [{"type": "dense", "units": 8, "activation": "relu"}, {"type": "dense", "units": 4, "activation": "softmax"}]
DROPOUT = {"type": "dropout", "rate": 0.5}


# -- one stream per consumer ---------------------------------------------------------------------

def test_a_dropout_layer_changes_no_initial_weight():
    plain, dropped = net(MLP), net([MLP[0], DROPOUT, MLP[1]])
    np.testing.assert_array_equal(plain.parameters()["layers.0.W"], dropped.parameters()["layers.0.W"])
    np.testing.assert_array_equal(plain.parameters()["layers.1.W"], dropped.parameters()["layers.2.W"])


def test_streams_derive_from_the_seed():
    """Initialisation [seed, 0]; dropout layer i [seed, 3, i] ([seed, 1] shuffles, [seed, 2] splits)."""
    model = net([MLP[0], DROPOUT, MLP[1], DROPOUT], seed=9)
    init = np.random.default_rng([9, 0])
    for name, fan_in, fan_out in (("layers.0.W", 6, 8), ("layers.2.W", 8, 4)):
        init_name = "he_normal" if name == "layers.0.W" else "glorot_uniform"
        expected = INITIALIZERS[init_name]((fan_in, fan_out), fan_in, fan_out, init, np.float32)
        np.testing.assert_array_equal(model.parameters()[name], expected)
    x = np.ones((3, 6), np.float32)
    model.forward(x, training=True)
    for i in (1, 3):
        mask = model.layers[i]._mask
        kept = np.random.default_rng([9, 3, i]).random(mask.shape, dtype=np.float32) < np.float32(0.5)
        np.testing.assert_array_equal(mask != 0, kept)


def test_the_validation_split_has_its_own_stream():
    y = np.repeat([0, 1], [30, 20])
    _, val_idx = stratified_split(y, 0.2, seed=4)
    rng = np.random.default_rng([4, 2])
    expected = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:n] for c, n in ((0, 6), (1, 4))])
    np.testing.assert_array_equal(val_idx, np.sort(expected))


def test_a_generator_seed_initialises_from_itself_and_spawns_the_dropout_streams():
    def build(specs):
        return Sequential([make_layer(s) for s in specs], (6,), seed=np.random.default_rng(3))

    plain, dropped, again = build(MLP), build([MLP[0], DROPOUT, MLP[1]]), build([MLP[0], DROPOUT, MLP[1]])
    expected = INITIALIZERS["he_normal"]((6, 8), 6, 8, np.random.default_rng(3), np.float32)
    np.testing.assert_array_equal(plain.parameters()["layers.0.W"], expected)
    np.testing.assert_array_equal(plain.parameters()["layers.1.W"], dropped.parameters()["layers.2.W"])
    x = np.ones((4, 6), np.float32)
    np.testing.assert_array_equal(dropped.forward(x, training=True), again.forward(x, training=True))


# -- random state ---------------------------------------------------------------------------------

def test_random_state_restores_the_next_masks_bit_for_bit():
    specs = [DROPOUT, MLP[0], {"type": "dropout", "rate": 0.3}, MLP[1]]
    x = np.random.default_rng(0).standard_normal((16, 6)).astype(np.float32)
    trained = net(specs)
    for _ in range(3):
        trained.forward(x, training=True)
    saved = json.loads(json.dumps(trained.random_state()))  # a checkpoint writes it as JSON
    assert sorted(saved) == ["layers.0", "layers.2"]
    expected = [trained.forward(x, training=True) for _ in range(2)]

    fresh = net(specs)
    fresh.set_weights(trained.get_weights())
    fresh.set_random_state(saved)
    for out in expected:
        np.testing.assert_array_equal(fresh.forward(x, training=True), out)


def test_set_random_state_names_what_does_not_match():
    model = net([DROPOUT, *MLP])
    with pytest.raises(ValueError, match=r"^random states do not match the model: missing \['layers\.0'\], unexpected \[\]$"):
        model.set_random_state({})
    with pytest.raises(ValueError, match=r"layers\.1"):
        model.set_random_state({**model.random_state(), "layers.1": model.random_state()["layers.0"]})


def test_a_generator_seed_gives_the_dropout_layers_its_spawned_children_in_order():
    model = Sequential([make_layer(s) for s in [DROPOUT, MLP[0], DROPOUT, MLP[1]]], (6,),
                       seed=np.random.default_rng(3))
    model.forward(np.ones((4, 6), np.float32), training=True)
    children = np.random.default_rng(3).spawn(2)
    for layer, child in zip((model.layers[0], model.layers[2]), children, strict=True):
        kept = child.random(layer._mask.shape, dtype=np.float32) < np.float32(0.5)
        np.testing.assert_array_equal(layer._mask != 0, kept)


def test_the_default_seed_is_0():
    default = Sequential([make_layer(s) for s in MLP], (6,))
    for name, w in net(MLP, seed=0).get_weights().items():
        np.testing.assert_array_equal(default.parameters()[name], w)
