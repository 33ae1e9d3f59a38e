"""The training loop and its callback protocol, used from Python with no config file."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnrun import nn
from nnrun.train import (
    BestEpoch,
    Callback,
    EarlyStopping,
    RestoreBestWeights,
    Status,
    StopOnDivergence,
    evaluate_arrays,
    fit,
)


def blobs(n: int = 96, seed: int = 0):
    """Two Gaussian blobs in 4-D: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = (rng.normal(size=(n, 4)) + 2.0 * y[:, None]).astype(np.float32)
    return x, y


def network(seed: int = 0) -> nn.Sequential:
    layers = [nn.make_layer({"type": "dense", "units": 8, "activation": "tanh"}),
              nn.make_layer({"type": "dense", "units": 2, "activation": "softmax"})]
    return nn.Sequential(layers, (4,), seed=seed)


def train(callbacks=(), epochs=3, batch_size=32, lr=0.05, val=True, net=None):
    x, y = blobs()
    net = net or network()
    return net, fit(net, (x, y), (x[:32], y[:32]) if val else None, nn.make_loss("cross_entropy"),
                    nn.make_optimizer("sgd"), nn.make_schedule("constant", lr), epochs, batch_size,
                    np.random.default_rng(1), callbacks)


class Recorder(Callback):
    """Writes down every hook call as (hook, epoch, batch)."""

    def __init__(self):
        self.calls = []

    def on_train_begin(self, state):
        self.calls.append(("train_begin", state.epoch, state.batch))

    def on_epoch_begin(self, state):
        self.calls.append(("epoch_begin", state.epoch, state.batch))

    def on_batch_begin(self, state):
        self.calls.append(("batch_begin", state.epoch, state.batch))

    def on_batch_end(self, state, loss, accuracy):
        assert math.isfinite(loss) and 0 <= accuracy <= 1
        self.calls.append(("batch_end", state.epoch, state.batch))

    def on_epoch_end(self, state, row):
        assert row is state.rows[-1] and row["epoch"] == state.epoch
        self.calls.append(("epoch_end", state.epoch, state.batch))

    def on_train_end(self, state):
        self.calls.append(("train_end", state.epoch, state.batch))


def test_a_callback_sees_every_epoch_and_batch_in_order():
    recorder = Recorder()
    _, state = train([recorder], epochs=2, batch_size=40)  # 96 samples: batches of 40, 40, 16
    expected = [("train_begin", 0, 0)]
    for epoch in (1, 2):
        expected.append(("epoch_begin", epoch, 0 if epoch == 1 else 3))
        for batch in (1, 2, 3):
            expected += [("batch_begin", epoch, batch), ("batch_end", epoch, batch)]
        expected.append(("epoch_end", epoch, 3))
    expected.append(("train_end", 2, 3))
    assert recorder.calls == expected
    assert state.status == Status.COMPLETED and [r["epoch"] for r in state.rows] == [1, 2]


def test_a_callback_stops_training_at_the_end_of_an_epoch():
    class StopAfter2(Callback):
        def on_epoch_end(self, state, row):
            if state.epoch == 2:
                state.request_stop()

    recorder = Recorder()
    _, state = train([StopAfter2(), recorder], epochs=5)
    assert len(state.rows) == 2 and recorder.calls[-1][0] == "train_end"
    assert state.status == Status.STOPPED_EARLY


def test_a_stop_mid_epoch_keeps_no_trace_of_that_epoch():
    class StopInEpoch2(Callback):
        def on_batch_end(self, state, loss, accuracy):
            if state.epoch == 2 and state.batch == 2:
                state.request_stop()

    net, state = train([StopInEpoch2()], epochs=4)
    assert [r["epoch"] for r in state.rows] == [1]
    one_epoch, _ = train(epochs=1)
    for name, w in one_epoch.get_weights().items():
        assert np.array_equal(net.get_weights()[name], w), name  # rolled back to the end of epoch 1


def test_callbacks_change_nothing_they_are_not_asked_to():
    plain, state = train(epochs=3)
    watched, watched_state = train([Recorder(), BestEpoch("val_loss")], epochs=3)
    assert [r["train_loss"] for r in state.rows] == [r["train_loss"] for r in watched_state.rows]
    for name, w in plain.get_weights().items():
        assert np.array_equal(watched.get_weights()[name], w)


def test_the_rate_a_callback_sets_is_the_rate_the_step_uses():
    class Freeze(Callback):
        def on_batch_begin(self, state):
            state.lr = 0.0

    before = network().get_weights()
    net, state = train([Freeze()], epochs=2)
    for name, w in before.items():
        assert np.array_equal(net.get_weights()[name], w)


def test_best_epoch_early_stopping_and_best_weights_share_one_monitor():
    # min_delta so large that only the first epoch counts as an improvement.
    best = BestEpoch("val_loss", min_delta=100.0)
    snapshots = {}

    class Snapshot(Callback):
        def on_epoch_end(self, state, row):
            snapshots[state.epoch] = state.net.get_weights()

    net, state = train([best, EarlyStopping(best, patience=2), RestoreBestWeights(best), Snapshot()],
                       epochs=10)
    assert state.status == Status.STOPPED_EARLY and len(state.rows) == 3  # patience 2: epochs 2 and 3 fail
    assert state.best_epoch == 1 and state.monitor == "val_loss" and state.weights == "best"
    for name, w in snapshots[1].items():
        assert np.array_equal(net.get_weights()[name], w)


@pytest.mark.parametrize("patience, epochs_run", [(0, 2), (1, 2), (3, 4)])
def test_patience_counts_epochs_without_improvement_as_keras_does(patience, epochs_run):
    best = BestEpoch("val_loss", min_delta=100.0)
    _, state = train([best, EarlyStopping(best, patience)], epochs=10)
    assert len(state.rows) == epochs_run


def test_divergence_stops_training_and_keeps_the_last_complete_epoch():
    class Explode(Callback):
        def on_epoch_begin(self, state):
            if state.epoch == 3:
                state.net.layers[0].params["W"][0, 0] = np.nan

    net, state = train([StopOnDivergence(), Explode()], epochs=5)
    assert state.status == Status.DIVERGED and len(state.rows) == 2
    assert "in epoch 3" in state.error and "smaller optimizer.lr" in state.error
    assert all(np.isfinite(w).all() for w in net.get_weights().values())


def test_ctrl_c_is_an_interrupted_status_and_train_end_still_runs():
    class CtrlC(Callback):
        def on_batch_end(self, state, loss, accuracy):
            if state.epoch == 2:
                raise KeyboardInterrupt

    recorder = Recorder()
    _, state = train([CtrlC(), recorder], epochs=3)
    assert state.status == Status.INTERRUPTED and len(state.rows) == 1
    assert recorder.calls[-1][0] == "train_end"


def test_monitor_min_max_min_delta_and_non_finite_values():
    low = nn.Monitor("min", min_delta=0.1)
    assert [low.update(v) for v in (1.0, 0.95, 0.8, float("nan"), None, 0.5)] == [True, False, True, False,
                                                                                  False, True]
    assert low.best == 0.5 and low.wait == 0
    high = nn.Monitor("max")
    assert [high.update(v) for v in (0.5, 0.5, 0.7)] == [True, False, True] and high.wait == 0
    with pytest.raises(ValueError, match="mode"):
        nn.Monitor("up")


def test_status_values_are_the_strings_the_files_hold():
    import json

    assert json.dumps({"status": Status.STOPPED_EARLY}) == '{"status": "stopped_early"}'
    assert f"{Status.DIVERGED}" == "diverged" and Status("completed") is Status.COMPLETED


def test_the_first_stop_request_stands_and_none_is_taken_back():
    class DivergeInEpoch2(Callback):
        def on_batch_end(self, state, loss, accuracy):
            if state.epoch == 2:
                state.request_stop(Status.DIVERGED, "made up")

    class LaterStop(Callback):
        def on_batch_end(self, state, loss, accuracy):
            if state.epoch == 2:
                state.request_stop()  # a second request changes nothing

    _, state = train([DivergeInEpoch2(), LaterStop()], epochs=4)
    assert (state.status, state.error, len(state.rows)) == (Status.DIVERGED, "made up", 1)


def test_an_error_in_a_callback_still_rolls_back_and_ends_training():
    class Boom(Callback):
        def on_batch_end(self, state, loss, accuracy):
            if state.epoch == 2 and state.batch == 2:
                raise RuntimeError("boom")

    recorder = Recorder()
    net = network()
    with pytest.raises(RuntimeError, match="boom"):
        train([Boom(), recorder], epochs=3, net=net)
    assert recorder.calls[-1][0] == "train_end"
    one_epoch, _ = train(epochs=1)
    for name, w in one_epoch.get_weights().items():
        assert np.array_equal(net.get_weights()[name], w), name


def test_an_epoch_whose_last_step_overflows_is_divergence_not_a_snapshot():
    # One batch per epoch: the loss was finite before the step, the step sent a weight to inf.
    class Overflow(Callback):
        def on_batch_end(self, state, loss, accuracy):
            if state.epoch == 2:
                state.net.layers[0].params["W"][0, 0] = np.inf

    net, state = train([StopOnDivergence(), Overflow()], epochs=3, batch_size=96, val=False)
    assert state.status == Status.DIVERGED and len(state.rows) == 1
    assert "epoch 2" in state.error
    assert all(np.isfinite(w).all() for w in net.get_weights().values())


def test_a_non_finite_validation_loss_is_divergence():
    class HugeLogits(Callback):  # finite weights whose outputs overflow: the validation loss is not finite
        def on_batch_end(self, state, loss, accuracy):
            if state.epoch == 2:
                state.net.layers[-1].params["W"][...] = np.float32(3e38)

    _, state = train([HugeLogits()], epochs=3, lr=0.0)
    assert state.status == Status.DIVERGED and [r["epoch"] for r in state.rows] == [1]


def test_validation_loss_of_a_confident_mistake_is_exact():
    """evaluate_arrays (the validation loss that early stopping and plateau read) takes
    cross-entropy from the logits: 2000 here, where log(clipped p) would say 87.34."""
    net = nn.Sequential([nn.make_layer({"type": "dense", "units": 3, "activation": "softmax"})], (1,))
    net.set_weights({"layers.0.W": np.array([[1000, 0, -1000]], np.float32),
                     "layers.0.b": np.zeros(3, np.float32)})
    loss, accuracy, out = evaluate_arrays(net, nn.make_loss("cross_entropy"), np.ones((2, 1), np.float32),
                                          np.array([2, 0]))
    assert loss == 1000.0 and accuracy == 0.5 and out.shape == (2, 3)


def test_each_epoch_draws_a_new_shuffle_order_from_the_stream(monkeypatch):
    """The orders are successive permutations of one stream, so no two epochs repeat."""
    import nnrun.train as loop

    seen = []

    def recording_step(net, loss, optimizer, x, y, lr):
        seen.append(x[:, 0].astype(int))  # column 0 holds each sample's index
        return real_step(net, loss, optimizer, x, y, lr)

    real_step = loop.train_step
    monkeypatch.setattr(loop, "train_step", recording_step)
    x, y = blobs()
    x[:, 0] = np.arange(len(x))
    fit(network(), (x, y), None, nn.make_loss("cross_entropy"), nn.make_optimizer("sgd"),
        nn.make_schedule("constant", 0.01), 3, 32, np.random.default_rng(1))
    orders = [np.concatenate(seen[e * 3:(e + 1) * 3]) for e in range(3)]
    stream = np.random.default_rng(1)
    for order in orders:
        assert np.array_equal(order, stream.permutation(len(x)))
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
