"""Three optimiser steps on a small quadratic equal the textbook (PyTorch) update written out here.

Problem: two named parameters, loss 0.5 * sum(c * (p - target)^2), so g = c * (p - target) is
re-evaluated from the current parameters at each step (the state must carry over correctly).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnrun.nn import OPTIMIZERS, clip_by_global_norm, make_optimizer

START = {"p": [1.0, -2.0], "q": [0.5, 3.0, -1.5]}
TARGET = {"p": [0.3, 0.8], "q": [-1.0, 0.2, 0.7]}
CURV = {"p": [1.0, 3.0], "q": [0.5, 2.0, 4.0]}
LR = 0.05
STEPS = 3


def grad(params):
    return {k: np.array(CURV[k]) * (params[k] - np.array(TARGET[k])) for k in params}


def start():
    return {k: np.array(v, np.float64) for k, v in START.items()}


# -- the reference updates, one function per rule, on dicts of float64 arrays --------------------

def global_norm_clip(g, max_norm):
    norm = math.sqrt(sum(float(np.sum(v * v)) for v in g.values()))
    scale = max_norm / max(norm, max_norm)  # TF/Keras clip_by_global_norm
    return {k: v * scale for k, v in g.items()}


def ref_sgd(lr=LR, momentum=0.0, nesterov=False, weight_decay=0.0, clip_norm=None):
    p, buf = start(), {k: 0.0 for k in START}
    for _ in range(STEPS):
        g = grad(p)
        if clip_norm:
            g = global_norm_clip(g, clip_norm)
        for k in p:
            gk = g[k] + weight_decay * p[k]
            if momentum:
                buf[k] = momentum * buf[k] + gk
                gk = gk + momentum * buf[k] if nesterov else buf[k]
            p[k] = p[k] - lr * gk
    return p


def ref_adam(lr=LR, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False,
             clip_norm=None):
    p = start()
    m, v = {k: 0.0 for k in p}, {k: 0.0 for k in p}
    for t in range(1, STEPS + 1):
        g = grad(p)
        if clip_norm:
            g = global_norm_clip(g, clip_norm)
        for k in p:
            gk = g[k]
            if decoupled:
                p[k] = p[k] * (1 - lr * weight_decay)     # AdamW
            else:
                gk = gk + weight_decay * p[k]             # Adam's L2
            m[k] = beta1 * m[k] + (1 - beta1) * gk
            v[k] = beta2 * v[k] + (1 - beta2) * gk * gk
            m_hat = m[k] / (1 - beta1 ** t)
            v_hat = v[k] / (1 - beta2 ** t)
            p[k] = p[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


def ref_rmsprop(lr=LR, alpha=0.99, eps=1e-8, weight_decay=0.0):
    p, v = start(), {k: 0.0 for k in START}
    for _ in range(STEPS):
        g = grad(p)
        for k in p:
            gk = g[k] + weight_decay * p[k]
            v[k] = alpha * v[k] + (1 - alpha) * gk * gk
            p[k] = p[k] - lr * gk / (np.sqrt(v[k]) + eps)
    return p


CASES = [  # (id, optimiser name, its params, the reference result)
    ("sgd", "sgd", {}, ref_sgd()),
    ("sgd-momentum", "sgd", {"momentum": 0.9}, ref_sgd(momentum=0.9)),
    ("sgd-nesterov", "sgd", {"momentum": 0.9, "nesterov": True}, ref_sgd(momentum=0.9, nesterov=True)),
    ("sgd-momentum-wd", "sgd", {"momentum": 0.8, "weight_decay": 0.1},
     ref_sgd(momentum=0.8, weight_decay=0.1)),
    ("sgd-clip", "sgd", {"clip_norm": 0.5}, ref_sgd(clip_norm=0.5)),
    ("adam", "adam", {}, ref_adam()),
    ("adam-betas-eps", "adam", {"beta1": 0.8, "beta2": 0.9, "eps": 1e-3},
     ref_adam(beta1=0.8, beta2=0.9, eps=1e-3)),
    ("adam-l2", "adam", {"weight_decay": 0.1}, ref_adam(weight_decay=0.1)),
    ("adam-clip-l2", "adam", {"clip_norm": 1.0, "weight_decay": 0.1},
     ref_adam(clip_norm=1.0, weight_decay=0.1)),
    ("adamw", "adamw", {"weight_decay": 0.1}, ref_adam(weight_decay=0.1, decoupled=True)),
    ("adamw-default-wd", "adamw", {}, ref_adam(weight_decay=0.01, decoupled=True)),
    ("adamw-betas-eps-clip", "adamw", {"weight_decay": 0.1, "beta1": 0.8, "beta2": 0.9, "eps": 1e-3, "clip_norm": 1.0},
     ref_adam(weight_decay=0.1, decoupled=True, beta1=0.8, beta2=0.9, eps=1e-3, clip_norm=1.0)),
    ("rmsprop", "rmsprop", {}, ref_rmsprop()),
    ("rmsprop-alpha-eps", "rmsprop", {"alpha": 0.9, "eps": 1e-3}, ref_rmsprop(alpha=0.9, eps=1e-3)),
    ("rmsprop-wd", "rmsprop", {"weight_decay": 0.1}, ref_rmsprop(weight_decay=0.1)),
]


@pytest.mark.parametrize("name, kwargs, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_three_steps_match_textbook_update(name, kwargs, expected):
    opt = make_optimizer(name, **kwargs)
    params = start()
    arrays = dict(params)  # the optimiser must update these very arrays in place
    for _ in range(STEPS):
        opt.step(params, grad(params), LR)
    for k in params:
        assert params[k] is arrays[k]
        np.testing.assert_allclose(params[k], expected[k], rtol=1e-12, atol=0, err_msg=k)
        # sanity: the test problem actually moved the parameters
        assert not np.allclose(params[k], START[k])


def test_every_registered_optimizer_is_checked():
    assert set(OPTIMIZERS) <= {c[1] for c in CASES}


def test_clipping_really_clips_in_the_test_problem():
    g = grad(start())
    norm = math.sqrt(sum(float(np.sum(v * v)) for v in g.values()))
    assert norm > 1.0  # so both clip cases above exercise the scaling branch


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_by_global_norm(max_norm):
    g = {"a": np.array([3.0, 0.0]), "b": np.array([[0.0], [4.0]])}  # global norm 5
    out = clip_by_global_norm(g, max_norm)
    scale = min(1.0, max_norm / 5.0)
    for k in g:
        np.testing.assert_allclose(out[k], g[k] * scale, rtol=1e-15)
    assert g["a"][0] == 3.0  # the input is not modified


def test_float32_parameters_stay_float32():
    for name in OPTIMIZERS:
        opt = make_optimizer(name)
        p = {"w": np.array([1.0, -2.0], np.float32)}
        for _ in range(STEPS):
            opt.step(p, {"w": p["w"] * np.float32(0.5)}, 0.1)
        assert p["w"].dtype == np.float32, name


@pytest.mark.parametrize("name, kwargs", [("adam", {}), ("sgd", {"momentum": 0.9}), ("rmsprop", {})])
def test_a_dead_weights_float32_state_never_turns_subnormal(name, kwargs):
    """After its gradient turns 0 a weight's moments decay geometrically; every FLUSH_EVERY steps
    what is too small to move the weight is set to 0 before it reaches the subnormal floats
    (which the CPU computes about a hundred times slower). Live weights' state is untouched."""
    from nnrun.nn.optimizers import FLUSH_EVERY

    opt = make_optimizer(name, **kwargs)
    p = {"w": np.array([1.0, -2.0, 0.5], np.float32)}
    tiny = np.finfo(np.float32).tiny
    for t in range(1, 8000):  # rmsprop's v, decaying by 0.99, is the slowest to flush
        g = np.array([1e-3 if t <= 20 else 0, -1e-3 if t <= 20 else 0, 1e-3], np.float32)  # the last stays live
        opt.step(p, {"w": g}, 1e-3)
        for a in opt.state["w"].values():
            assert not ((a != 0) & (np.abs(a) < tiny)).any(), (t, a)
    assert all(a[2] != 0 for a in opt.state["w"].values())
    assert any((a[:2] == 0).all() for a in opt.state["w"].values())  # something was flushed
    assert FLUSH_EVERY > 1


def test_flushing_sets_only_values_far_too_small_to_matter_to_zero():
    from nnrun.nn.optimizers import flush_tiny

    values = np.array([1e-40, -1e-40, 3e-35, -9e-31, 1.1e-30, -1e-19, 1e-8, 0.5, -3.0], np.float32)
    flushed = values.copy()
    flush_tiny(flushed)
    assert (flushed[:4] == 0).all() and np.array_equal(flushed[4:], values[4:])
