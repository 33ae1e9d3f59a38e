"""The state a checkpoint needs besides the weights: Optimizer.state_dict, Schedule.state_dict
and Sequential.random_state, restored into fresh objects so that training continues bit for bit."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from nnrun.nn import OPTIMIZERS, Sequential, make_layer, make_loss, make_optimizer, make_schedule


def net(specs, input_shape=(6,), seed=5):
    return Sequential([make_layer(s) for s in specs], input_shape, seed=seed)


MLP = [{"type": "dense", "units": 8, "activation": "relu"}, {"type": "dense", "units": 4, "activation": "softmax"}]
DROPOUT = {"type": "dropout", "rate": 0.5}


# -- optimiser and schedule state -----------------------------------------------------------------

OPTIMIZER_SETTINGS = {"sgd": {"momentum": 0.9, "nesterov": True}, "adam": {}, "adamw": {},
                      "rmsprop": {"weight_decay": 0.01}}
PLATEAU = {"factor": 0.5, "patience": 2, "min_delta": 0.0}
# The value the plateau schedule observes after each step: it drops the rate after 2 steps
# without a new best, so the wait counted before the save decides a drop after it.
OBSERVED = [1.0, 0.8, 0.9, 0.85, 0.7, 0.75, 0.9, 0.6, 0.65, 0.66, 0.67]
SAVE_AFTER = 6


def test_every_optimizer_is_round_tripped():
    assert set(OPTIMIZERS) <= set(OPTIMIZER_SETTINGS)


class Trainer:
    """A network with dropout, an optimiser and a plateau schedule, stepped one batch at a time."""

    def __init__(self, optimizer: str, seed: int = 5):
        self.net = net([MLP[0], DROPOUT, MLP[1]], seed=seed)
        self.optimizer = make_optimizer(optimizer, **OPTIMIZER_SETTINGS[optimizer])
        self.schedule = make_schedule("reduce_on_plateau", 0.05, **PLATEAU)
        rng = np.random.default_rng(1)
        self.x, self.y = rng.standard_normal((12, 6)).astype(np.float32), rng.integers(0, 4, 12)
        self.rates: list[float] = []

    def steps(self, observed) -> None:
        for value in observed:
            self.rates.append(self.schedule(len(self.rates)))
            self.net.loss_and_gradients(make_loss("cross_entropy"), self.x, self.y)
            self.optimizer.step(self.net.parameters(), self.net.gradients(), self.rates[-1])
            self.schedule.observe(value)

    def checkpoint(self) -> dict:
        arrays = {**{f"weights/{k}": v for k, v in self.net.get_weights().items()},
                  **{f"optimizer/{k}": v for k, v in self.optimizer.state_dict().items()},
                  **{f"schedule/{k}": v for k, v in self.schedule.state_dict().items()}}
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)  # as a checkpoint file would hold them
        buffer.seek(0)
        return {"arrays": dict(np.load(buffer)), "random": json.loads(json.dumps(self.net.random_state())),
                "epoch": len(self.rates)}

    def restore(self, saved: dict) -> None:
        def part(prefix):
            return {k.removeprefix(prefix): v for k, v in saved["arrays"].items() if k.startswith(prefix)}

        self.net.set_weights(part("weights/"))
        self.net.set_random_state(saved["random"])
        self.optimizer.load_state_dict(part("optimizer/"))
        self.schedule.load_state_dict(part("schedule/"))
        self.rates = [float("nan")] * saved["epoch"]


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZER_SETTINGS))
def test_saving_and_restoring_into_fresh_objects_continues_bit_for_bit(optimizer):
    original = Trainer(optimizer)
    original.steps(OBSERVED[:SAVE_AFTER])
    saved = original.checkpoint()
    original.steps(OBSERVED[SAVE_AFTER:])

    resumed = Trainer(optimizer, seed=6)  # other initial weights and streams: all restored
    resumed.restore(saved)
    resumed.steps(OBSERVED[SAVE_AFTER:])
    assert resumed.rates[SAVE_AFTER:] == original.rates[SAVE_AFTER:]
    assert len(set(original.rates)) == 4  # the schedule dropped 3 times, twice after the save
    for k, w in original.net.get_weights().items():
        np.testing.assert_array_equal(resumed.net.get_weights()[k], w, err_msg=k)
    for k, a in original.optimizer.state_dict().items():
        np.testing.assert_array_equal(resumed.optimizer.state_dict()[k], a, err_msg=k)


def test_optimizer_state_names_and_copies():
    opt = make_optimizer("adam")
    params = {"layers.0.W": np.ones((2, 3), np.float32), "layers.0.b": np.zeros(3, np.float32)}
    opt.step(params, {k: np.full_like(p, 0.5) for k, p in params.items()}, 0.1)
    state = opt.state_dict()
    assert sorted(state) == ["layers.0.W/m", "layers.0.W/v", "layers.0.b/m", "layers.0.b/v", "t"]
    assert state["t"].shape == () and int(state["t"]) == 1
    assert state["layers.0.W/m"].dtype == np.float32
    before = state["layers.0.W/m"].copy()
    opt.step(params, {k: np.full_like(p, 0.5) for k, p in params.items()}, 0.1)
    np.testing.assert_array_equal(state["layers.0.W/m"], before)  # a copy, not the live state


def test_schedules_without_feedback_keep_no_state():
    schedule = make_schedule("cosine", 0.1, T=10)
    assert schedule.state_dict() == {}
    schedule.load_state_dict({})
    plateau = make_schedule("reduce_on_plateau", 0.1)
    assert sorted(plateau.state_dict()) == ["lr", "monitor/best", "monitor/wait"]
    assert np.isnan(plateau.state_dict()["monitor/best"])  # nothing observed yet
    fresh = make_schedule("reduce_on_plateau", 0.1)
    fresh.load_state_dict(plateau.state_dict())
    assert fresh.monitor.best is None and fresh.monitor.wait == 0


@pytest.mark.parametrize("name, settings, names", [
    ("sgd", {}, []), ("sgd", {"momentum": 0.9}, ["velocity"]), ("adam", {}, ["m", "v"]),
    ("adamw", {}, ["m", "v"]), ("rmsprop", {}, ["v"])])
def test_optimizer_state_is_named_by_parameter_and_moment(name, settings, names):
    """The keys a checkpoint holds: "<parameter>/<name>" and the step count "t"."""
    opt = make_optimizer(name, **settings)
    opt.step({"w": np.ones(2, np.float32)}, {"w": np.full(2, 0.5, np.float32)}, 0.1)
    assert sorted(opt.state_dict()) == sorted([f"w/{n}" for n in names] + ["t"])


def test_parameter_names_may_contain_slashes():
    params = {"block/W": np.ones(2), "block/b": np.zeros(1)}
    grads = {k: np.full_like(p, 0.5) for k, p in params.items()}
    opt = make_optimizer("adam")
    opt.step(params, grads, 0.1)
    resumed = make_optimizer("adam")
    resumed.load_state_dict(opt.state_dict())
    assert sorted(resumed.state) == ["block/W", "block/b"] and sorted(resumed.state["block/W"]) == ["m", "v"]
    twin = {k: p.copy() for k, p in params.items()}
    opt.step(params, grads, 0.1)
    resumed.step(twin, grads, 0.1)
    for k in params:
        np.testing.assert_array_equal(twin[k], params[k])


def test_a_state_without_a_step_count_is_refused():
    with pytest.raises(ValueError, match=r"^not an optimizer state: expected 't' and '<parameter>/<name>' "
                                         r"keys, got \['w/m'\]$"):
        make_optimizer("adam").load_state_dict({"w/m": np.zeros(2)})
