"""Behaviours mutation testing found unpinned: each test fails when its behaviour breaks.

Pinned elsewhere: max-pool ties go to the first element and average-pool gradients are divided
by the window size (test_nn_fastpaths.py: test_max_pool_and_its_gradient_match_explicit_windows,
test_the_2x2_tournament_sends_each_tie_to_the_first_element,
test_avg_pool_gradient_is_divided_by_the_window_size); early stopping restores the best epoch's
weights, not the last (test_loop.py: test_best_epoch_early_stopping_and_best_weights_share_one_monitor).
"""

from __future__ import annotations

import numpy as np
import pytest

from nnrun.nn import clip_by_global_norm, make_activation, make_schedule, one_hot
from nnrun.nn.activations import _quiet_underflow


# -- softmax on images: over the channels (axis 1) -------------------------------------------
def image_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


def test_softmax_of_a_4d_input_normalises_over_the_channels():
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5))  # every axis a different length
    y = make_activation("softmax").forward(x)
    np.testing.assert_allclose(y, image_softmax(x), rtol=1e-12)


def test_softmax_backward_of_a_4d_input_is_the_vector_jacobian_product():
    rng = np.random.default_rng(1)
    x, dy = rng.normal(size=(2, 3, 2, 4)), rng.normal(size=(2, 3, 2, 4))
    softmax = make_activation("softmax")
    dx = softmax.backward(x, softmax.forward(x), dy)
    eps, numeric = 1e-6, np.empty_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        numeric[i] = np.sum((image_softmax(x + step) - image_softmax(x - step)) * dy) / (2 * eps)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-9)


# -- leaky ReLU and binary step at exactly 0 ---------------------------------------------------
def test_leaky_relu_at_zero_is_zero_with_slope_alpha_as_in_pytorch():
    """PyTorch: leaky_relu(0) = 0 and its derivative at 0 is negative_slope (x > 0 takes 1)."""
    leaky = make_activation({"type": "leaky_relu", "alpha": 0.25})
    x = np.array([-1.0, 0.0, 1.0], np.float32)
    y = leaky.forward(x)
    assert y.tolist() == [-0.25, 0.0, 1.0]
    assert leaky.backward(x, y, np.ones_like(x)).tolist() == [0.25, 0.25, 1.0]


def test_leaky_relu_at_zero_matches_pytorch():
    torch = pytest.importorskip("torch")
    t = torch.tensor([-1.0, 0.0, 1.0], requires_grad=True)
    torch.nn.functional.leaky_relu(t, 0.25).sum().backward()
    leaky = make_activation({"type": "leaky_relu", "alpha": 0.25})
    x = t.detach().numpy()
    y = leaky.forward(x)
    assert y.tolist() == torch.nn.functional.leaky_relu(t, 0.25).tolist()
    assert leaky.backward(x, y, np.ones_like(x)).tolist() == t.grad.tolist()


def test_binary_step_at_zero_is_zero_and_its_gradient_is_zero_everywhere():
    """Heaviside with value 0 at 0 (torch.heaviside(x, 0)): the step is 1 only for x > 0."""
    step = make_activation("binary_step")
    x = np.array([-1.0, -0.0, 0.0, 1e-30, 1.0], np.float32)
    y = step.forward(x)
    assert y.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0] and y.dtype == np.float32
    assert step.backward(x, y, np.ones_like(x)).tolist() == [0.0] * 5


def test_relu_at_zero_has_gradient_zero_as_in_pytorch():
    relu = make_activation("relu")
    x = np.array([-1.0, 0.0, 1.0], np.float32)
    assert relu.backward(x, relu.forward(x), np.ones_like(x)).tolist() == [0.0, 0.0, 1.0]


# -- default parameters are PyTorch's --------------------------------------------------------------
@pytest.mark.parametrize("name, x, expected", [
    ("leaky_relu", -2.0, -0.02),                      # negative_slope 0.01
    ("elu", -1.0, np.expm1(-1.0)),                    # alpha 1
    ("swish", 1.0, 1 / (1 + np.exp(-1.0))),           # beta 1: SiLU
])
def test_default_activation_parameters_are_pytorchs(name, x, expected):
    assert make_activation(name).forward(np.array([x]))[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("spec", [None, {}, {"type": None}])
def test_a_spec_without_a_type_is_the_identity(spec):
    assert make_activation(spec).name == "linear"


def test_the_underflow_guard_silences_underflow_and_keeps_the_name_and_doc():
    def tiny_square(x):
        """x squared."""
        return x * x

    guarded = _quiet_underflow(tiny_square)
    with np.errstate(all="raise"):
        assert guarded(np.array([1e-30], np.float32)).tolist() == [0.0]
    assert (guarded.__name__, guarded.__doc__) == ("tiny_square", "x squared.")


# -- one-hot targets -------------------------------------------------------------------------------
def test_a_target_matrix_of_the_right_dtype_is_used_as_is():
    matrix = np.eye(3, dtype=np.float32)
    assert one_hot(matrix, 3, np.float32) is matrix  # no copy of a large probability matrix
    assert one_hot(matrix, 3, np.float64).dtype == np.float64


# -- reduce on plateau: an improvement must exceed min_delta (Keras) ---------------------------
@pytest.mark.parametrize("mode, values", [("min", [1.0, 0.5]), ("max", [0.5, 1.0])])
def test_reduce_on_plateau_an_improvement_of_exactly_min_delta_is_none(mode, values):
    plateau = make_schedule("reduce_on_plateau", 1.0, factor=0.5, patience=1, min_delta=0.5, mode=mode)
    for v in values:  # the second moves by exactly min_delta (exact in binary): no improvement
        plateau.observe(v)
    assert plateau(2) == 0.5


@pytest.mark.parametrize("mode, values", [("min", [1.0, 0.25]), ("max", [0.5, 1.25])])
def test_reduce_on_plateau_an_improvement_beyond_min_delta_keeps_the_rate(mode, values):
    plateau = make_schedule("reduce_on_plateau", 1.0, factor=0.5, patience=1, min_delta=0.5, mode=mode)
    for v in values:
        plateau.observe(v)
    assert plateau(2) == 1.0


# -- clipping by global norm ---------------------------------------------------------------------
def test_gradients_whose_norm_is_exactly_the_bound_are_not_clipped():
    g = {"a": np.array([3.0, 0.0], np.float32), "b": np.array([[0.0], [4.0]], np.float32)}  # norm 5
    assert clip_by_global_norm(g, 5.0) is g  # untouched: no scaled copies
    clipped = clip_by_global_norm(g, 4.0)
    assert clipped is not g and clipped["a"].tolist() == [2.4000000953674316, 0.0]


@pytest.mark.parametrize("magnitude", [1e20, 1e-25])
def test_the_global_norm_is_summed_in_float64(magnitude):
    """Squares of 1e20 overflow float32 and squares of 1e-25 underflow it; in float64 neither does."""
    g = {"a": np.full(3, magnitude, np.float32), "b": np.full(1, magnitude, np.float32)}  # norm 2 * m
    clipped = clip_by_global_norm(g, float(np.float32(magnitude)) / 4)  # an eighth of the norm
    for v in clipped.values():
        assert v.dtype == np.float32
        np.testing.assert_allclose(v, np.float32(magnitude) / 8, rtol=1e-6)


# -- cosine decay when only one epoch follows the warm-up -------------------------------------
def test_cosine_with_one_epoch_after_warmup_goes_from_lr0_to_lr_min_in_one_step():
    cosine = make_schedule("cosine", 0.1, T=3, lr_min=0.01, warmup=2)
    assert [cosine(t) for t in range(5)] == pytest.approx([0.1 / 3, 0.2 / 3, 0.1, 0.01, 0.01], rel=1e-12)
