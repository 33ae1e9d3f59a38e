"""Every learning-rate schedule against its formula (schedules.py's docstring), written out here."""

from __future__ import annotations

import math

import pytest

from nnrun.nn import SCHEDULES, Monitor, make_schedule

LR0 = 0.1
EPOCHS = [0, 1, 2, 4, 5, 9, 10, 11, 15, 20, 30, 59, 60, 61, 100]


def sig(x):
    return 1 / (1 + math.exp(-x))


CASES = [  # (id, schedule name, params, rate(t) for lr0 = LR0)
    ("constant", "constant", {}, lambda t: 0.1),
    ("step", "step", {"step_size": 5, "gamma": 0.5}, lambda t: 0.1 * 0.5 ** (t // 5)),
    ("step-defaults", "step", {}, lambda t: 0.1 * 0.1 ** (t // 10)),
    ("multistep", "multistep", {"milestones": [10, 5, 30], "gamma": 0.2},
     lambda t: 0.1 * 0.2 ** ((t >= 5) + (t >= 10) + (t >= 30))),
    ("multistep-defaults", "multistep", {}, lambda t: 0.1 * 0.1 ** ((t >= 30) + (t >= 60))),
    ("exponential", "exponential", {"k": 0.05}, lambda t: 0.1 * math.exp(-0.05 * t)),
    ("inverse_time", "inverse_time", {"k": 0.5}, lambda t: 0.1 / (1 + 0.5 * t)),
    ("polynomial", "polynomial", {"T": 20, "lr_end": 0.001, "power": 2.0},
     lambda t: 0.001 + (0.1 - 0.001) * (1 - min(t, 20) / 20) ** 2),
    ("polynomial-defaults", "polynomial", {}, lambda t: 0.1 * (1 - min(t, 10) / 10)),
    ("cosine", "cosine", {"T": 20}, lambda t: 0.1 * (1 + math.cos(math.pi * min(t, 20) / 20)) / 2),
    ("cosine-warmup", "cosine", {"T": 20, "lr_min": 0.001, "warmup": 5},
     lambda t: 0.1 * (t + 1) / 6 if t < 5
     else 0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * min(t - 5, 15) / 15)) / 2),
    ("cosine-warmup-1", "cosine", {"T": 20, "warmup": 1},
     lambda t: 0.1 / 2 if t < 1 else 0.1 * (1 + math.cos(math.pi * min(t - 1, 19) / 19)) / 2),
    ("sigmoid", "sigmoid", {"gamma": -0.5, "step_size": 10}, lambda t: 0.1 * sig(-0.5 * (t - 10))),
    ("sigmoid-rising", "sigmoid", {"gamma": 0.3, "step_size": 4}, lambda t: 0.1 * sig(0.3 * (t - 4))),
    ("exponential_fifth", "exponential_fifth", {"k": 0.1}, lambda t: math.exp(-0.1 * t) / 5),
    ("sigmoid_complement", "sigmoid_complement", {"k": 0.1}, lambda t: 1 - sig(0.1 * t) / 2.5),
    ("reduce_on_plateau", "reduce_on_plateau", {}, lambda t: 0.1),  # without observations
    ("exponential-defaults", "exponential", {}, lambda t: 0.1 * math.exp(-0.1 * t)),
    ("inverse_time-defaults", "inverse_time", {}, lambda t: 0.1 / (1 + 0.1 * t)),
    ("cosine-defaults", "cosine", {}, lambda t: 0.1 * (1 + math.cos(math.pi * min(t, 10) / 10)) / 2),
    ("sigmoid-defaults", "sigmoid", {}, lambda t: 0.1 * sig(-0.5 * (t - 10))),
    ("exponential_fifth-defaults", "exponential_fifth", {}, lambda t: math.exp(-0.1 * t) / 5),
    ("sigmoid_complement-defaults", "sigmoid_complement", {}, lambda t: 1 - sig(0.1 * t) / 2.5),
]


@pytest.mark.parametrize("name, params, formula", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_schedule_matches_formula(name, params, formula):
    schedule = make_schedule(name, LR0, **params)
    for t in EPOCHS:
        assert schedule(t) == pytest.approx(formula(t), rel=1e-12, abs=1e-15), f"epoch {t}"


def test_every_registered_schedule_is_checked():
    assert set(SCHEDULES) <= {c[1] for c in CASES}


@pytest.mark.parametrize("t, expected", [
    (0, 0.1 / 6), (1, 0.2 / 6), (4, 0.5 / 6),   # warmup: 0.1 * (t + 1) / (5 + 1)
    (5, 0.1), (20, 0.001), (25, 0.001),         # cosine from lr0 down to lr_min at T
    (12.5, 0.001 + 0.099 * 0.5),                # half way: cos(pi/2) = 0
])
def test_cosine_warmup_landmarks(t, expected):
    assert make_schedule("cosine", 0.1, T=20, lr_min=0.001, warmup=5)(t) == pytest.approx(expected)


@pytest.mark.parametrize("warmup", [1, 2, 3, 7])
def test_cosine_warmup_rises_every_epoch_to_the_base_rate_at_epoch_warmup(warmup):
    schedule = make_schedule("cosine", 0.1, T=20, warmup=warmup)
    rates = [schedule(t) for t in range(warmup + 2)]
    assert all(a < b for a, b in zip(rates[:warmup], rates[1:warmup + 1], strict=True)), rates
    assert rates[warmup] == 0.1 and rates[warmup + 1] < 0.1


def test_original_project_schedules_ignore_lr0():
    assert make_schedule("exponential_fifth", 5.0)(0) == pytest.approx(0.2)
    assert make_schedule("sigmoid_complement", 5.0)(0) == pytest.approx(0.8)
    assert make_schedule("sigmoid_complement", 5.0)(10_000) == pytest.approx(0.6)


def run_plateau(values, **params):
    schedule = make_schedule("reduce_on_plateau", 1.0, **params)
    rates = []
    for epoch, value in enumerate(values):
        schedule.observe(value)
        rates.append(schedule(epoch + 1))  # the rate for the next epoch
    return rates


def test_reduce_on_plateau_drops_after_patience_epochs_without_improvement():
    values = [1.0, 0.9,            # improvements
              0.895, 0.95,         # 2 epochs without improving by > min_delta -> x0.5
              0.80,                # improvement (best 0.80)
              0.85, 0.81,          # 2 more bad epochs -> x0.5 again
              0.81, 0.70, 0.75]    # bad, improvement, bad: no drop
    rates = run_plateau(values, factor=0.5, patience=2, min_delta=0.01)
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25]


def test_reduce_on_plateau_max_mode_and_floor():
    # mode "max" (e.g. accuracy): never improving after the first epoch -> a drop every epoch
    rates = run_plateau([0.5, 0.4, 0.4, 0.3, 0.2], mode="max", factor=0.1, patience=1,
                        min_delta=0.0, lr_min=0.005)
    assert rates == pytest.approx([1.0, 0.1, 0.01, 0.005, 0.005])
    # improving every epoch in max mode: no drop
    assert run_plateau([0.1, 0.2, 0.3, 0.4], mode="max", patience=1) == [1.0] * 4


def test_reduce_on_plateau_default_patience_is_five():
    rates = run_plateau([1.0] * 11)  # defaults: factor 0.1, patience 5
    assert rates == pytest.approx([1.0] * 5 + [0.1] * 5 + [0.01])


def test_feedback_free_schedules_ignore_observe():
    for name in set(SCHEDULES) - {"reduce_on_plateau"}:
        s = make_schedule(name, LR0)
        before = [s(t) for t in EPOCHS]
        for v in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]:
            s.observe(v)
        assert [s(t) for t in EPOCHS] == before, name


def test_the_sigmoid_policy_does_not_overflow_far_from_its_step():
    schedule = make_schedule("sigmoid", 0.1, gamma=-1.0, step_size=0)
    assert schedule(0) == pytest.approx(0.05) and schedule(2000) == 0.0
    assert make_schedule("sigmoid", 0.1, gamma=1.0, step_size=2000)(0) == 0.0


def test_a_schedule_without_state_refuses_a_state_naming_the_schedule_and_the_keys():
    with pytest.raises(ValueError, match=r"schedule cosine keeps no state, got \['lr'\]"):
        make_schedule("cosine", 0.1).load_state_dict({"lr": 0.1})


# -- the monitor behind reduce_on_plateau and early stopping -------------------------------------
def test_the_monitor_defaults_to_min_mode_where_any_decrease_improves():
    monitor = Monitor()
    assert monitor.update(1.0) is True and monitor.update(0.9) is True  # min_delta 0: any decrease
    assert monitor.update(0.9) is False and monitor.update(2.0) is False
    assert (monitor.best, monitor.wait) == (0.9, 2)


def test_the_monitor_names_the_modes_it_accepts():
    with pytest.raises(ValueError, match=r"^mode 'mini': use 'min' or 'max'$"):
        Monitor("mini")
