"""Tests for nnrun.metrics: hand-worked examples plus a property test against naive loops."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnrun.metrics import (
    accuracy,
    classification_report,
    confusion_matrix,
    one_vs_rest,
    top_confusions,
)

# 3 classes, 8 samples; class 2 ("c") is never predicted.
Y_TRUE = [0, 0, 0, 1, 1, 1, 2, 2]
Y_PRED = [0, 0, 1, 1, 1, 0, 1, 0]
# By hand:            pred 0  pred 1  pred 2
#   true 0 (a)          2       1       0
#   true 1 (b)          1       2       0
#   true 2 (c)          1       1       0
CM = np.array([[2, 1, 0], [1, 2, 0], [1, 1, 0]])
NAMES = ["a", "b", "c"]


def test_accuracy_by_hand():
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 8)
    assert accuracy([1, 2, 3], [1, 2, 3]) == 1.0
    assert accuracy([], []) == 0.0
    assert isinstance(accuracy(np.array([0]), np.array([0])), float)


def test_accuracy_length_mismatch():
    with pytest.raises(ValueError):
        accuracy([0, 1], [0])


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert cm.dtype == np.int64
    assert cm.shape == (3, 3)
    np.testing.assert_array_equal(cm, CM)
    assert cm.sum() == 8


def test_confusion_matrix_rejects_out_of_range():
    with pytest.raises(ValueError):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError):
        confusion_matrix([0, 1], [0, -1], 3)


def test_confusion_matrix_empty():
    cm = confusion_matrix([], [], 4)
    assert cm.shape == (4, 4) and cm.sum() == 0


def test_one_vs_rest_by_hand():
    ovr = one_vs_rest(CM)
    # class a: TP 2, FP 1+1, FN 1, TN 8-2-2-1=3
    # class b: TP 2, FP 1+1, FN 1, TN 3
    # class c: TP 0, FP 0,   FN 2, TN 6
    np.testing.assert_array_equal(ovr, [[2, 2, 1, 3], [2, 2, 1, 3], [0, 0, 2, 6]])
    np.testing.assert_array_equal(ovr.sum(axis=1), [8, 8, 8])


def test_classification_report_by_hand_no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            rep = classification_report(CM, NAMES)

    a, b, c = rep["classes"]
    assert [x["name"] for x in rep["classes"]] == NAMES
    # precision = TP / column sum: 2/4, 2/4, 0 (never predicted -> 0, no warning)
    assert a["precision"] == pytest.approx(0.5)
    assert b["precision"] == pytest.approx(0.5)
    assert c["precision"] == 0.0
    # recall = TP / row sum: 2/3, 2/3, 0/2
    assert a["recall"] == pytest.approx(2 / 3)
    assert b["recall"] == pytest.approx(2 / 3)
    assert c["recall"] == 0.0
    # f1 = 2PR/(P+R) = (2 * 1/2 * 2/3) / (1/2 + 2/3) = (2/3) / (7/6) = 4/7
    assert a["f1"] == pytest.approx(4 / 7)
    assert b["f1"] == pytest.approx(4 / 7)
    assert c["f1"] == 0.0
    assert [x["support"] for x in rep["classes"]] == [3, 3, 2]
    assert (a["tp"], a["fp"], a["fn"], a["tn"]) == (2, 2, 1, 3)
    assert (c["tp"], c["fp"], c["fn"], c["tn"]) == (0, 0, 2, 6)

    # macro = plain means
    assert rep["macro"]["precision"] == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert rep["macro"]["recall"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    assert rep["macro"]["f1"] == pytest.approx(8 / 21)
    # weighted by support (3, 3, 2) over 8
    assert rep["weighted"]["precision"] == pytest.approx((3 * 0.5 + 3 * 0.5) / 8)
    assert rep["weighted"]["recall"] == pytest.approx((3 * 2 / 3 + 3 * 2 / 3) / 8)
    assert rep["weighted"]["f1"] == pytest.approx((3 * 4 / 7 + 3 * 4 / 7) / 8)

    assert rep["accuracy"] == pytest.approx(0.5)
    assert rep["never_predicted"] == ["c"]
    assert rep["num_samples"] == 8


def test_classification_report_is_json_plain():
    rep = classification_report(CM)
    # default names are the indices as strings
    assert [x["name"] for x in rep["classes"]] == ["0", "1", "2"]
    text = json.dumps(rep, allow_nan=False)
    assert json.loads(text) == rep

    def walk(obj):
        if isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)
        else:
            assert type(obj) in (int, float, str), type(obj)

    walk(rep)


def test_classification_report_class_without_support():
    # class 2 has no samples and is never predicted; class 1 predicted but no support
    cm = np.array([[3, 1, 0], [0, 0, 0], [0, 0, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            rep = classification_report(cm, ["x", "y", "z"])
    x, y, z = rep["classes"]
    assert x["precision"] == 1.0 and x["recall"] == pytest.approx(0.75)
    assert y["precision"] == 0.0 and y["recall"] == 0.0 and y["support"] == 0
    assert z["precision"] == 0.0 and z["recall"] == 0.0 and z["f1"] == 0.0
    assert rep["never_predicted"] == ["z"]
    # weighted only counts class x (support 4 of 4)
    assert rep["weighted"]["recall"] == pytest.approx(0.75)
    assert rep["weighted"]["precision"] == pytest.approx(1.0)


def test_classification_report_empty_matrix():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            rep = classification_report(np.zeros((2, 2), dtype=int))
    assert rep["accuracy"] == 0.0
    assert rep["num_samples"] == 0
    assert rep["weighted"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert rep["never_predicted"] == ["0", "1"]


def test_classification_report_wrong_names():
    with pytest.raises(ValueError):
        classification_report(CM, ["a", "b"])


def test_top_confusions_by_hand():
    cm = np.array(
        [
            [5, 3, 1],
            [3, 9, 0],
            [2, 3, 7],
        ]
    )
    got = top_confusions(cm, ["a", "b", "c"])
    # counts 3 at (0,1), (1,0), (2,1) -> tie broken by true then predicted
    assert got == [
        {"true": "a", "predicted": "b", "count": 3},
        {"true": "b", "predicted": "a", "count": 3},
        {"true": "c", "predicted": "b", "count": 3},
        {"true": "c", "predicted": "a", "count": 2},
        {"true": "a", "predicted": "c", "count": 1},
    ]  # (1, 2) == 0 is excluded, diagonal excluded
    assert top_confusions(cm, n=2) == [
        {"true": "0", "predicted": "1", "count": 3},
        {"true": "1", "predicted": "0", "count": 3},
    ]
    assert top_confusions(np.diag([4, 5])) == []


# ---------------------------------------------------------------- property test


def naive_confusion(y_true, y_pred, k):
    cm = [[0] * k for _ in range(k)]
    for t, p in zip(y_true, y_pred, strict=True):
        cm[t][p] += 1
    return cm


def naive_report(cm):
    k = len(cm)
    n = sum(sum(r) for r in cm)
    out = []
    for i in range(k):
        tp = cm[i][i]
        fp = sum(cm[r][i] for r in range(k)) - tp
        fn = sum(cm[i]) - tp
        tn = n - tp - fp - fn
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out.append((tp, fp, fn, tn, prec, rec, f1, tp + fn))
    return out, n


@st.composite
def labelled(draw):
    k = draw(st.integers(1, 6))
    n = draw(st.integers(0, 60))
    labels = st.lists(st.integers(0, k - 1), min_size=n, max_size=n)
    return k, draw(labels), draw(labels)


@settings(max_examples=100, deadline=None)
@given(labelled())
def test_matches_naive_loops(data):
    k, y_true, y_pred = data
    cm = confusion_matrix(y_true, y_pred, k)
    assert cm.tolist() == naive_confusion(y_true, y_pred, k)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            rep = classification_report(cm)
    rows, n = naive_report(cm.tolist())
    assert rep["num_samples"] == n == len(y_true)
    expected_acc = sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / n if n else 0.0
    assert rep["accuracy"] == pytest.approx(expected_acc)
    assert accuracy(y_true, y_pred) == pytest.approx(expected_acc)

    ovr = one_vs_rest(cm)
    assert (ovr.sum(axis=1) == n).all()
    for i, (tp, fp, fn, tn, prec, rec, f1, sup) in enumerate(rows):
        c = rep["classes"][i]
        assert ovr[i].tolist() == [tp, fp, fn, tn]
        assert (c["tp"], c["fp"], c["fn"], c["tn"], c["support"]) == (tp, fp, fn, tn, sup)
        assert c["precision"] == pytest.approx(prec)
        assert c["recall"] == pytest.approx(rec)
        assert c["f1"] == pytest.approx(f1)

    for key, idx in (("precision", 4), ("recall", 5), ("f1", 6)):
        assert rep["macro"][key] == pytest.approx(sum(r[idx] for r in rows) / k)
        w = sum(r[idx] * r[7] for r in rows) / n if n else 0.0
        assert rep["weighted"][key] == pytest.approx(w)

    assert rep["never_predicted"] == [str(i) for i, r in enumerate(rows) if r[0] + r[1] == 0]

    tops = top_confusions(cm, n=k * k)
    naive_tops = sorted(
        ((cm[i, j], i, j) for i in range(k) for j in range(k) if i != j and cm[i, j] > 0),
        key=lambda x: (-x[0], x[1], x[2]),
    )
    assert [(d["count"], int(d["true"]), int(d["predicted"])) for d in tops] == naive_tops


def test_ema_is_bias_corrected_and_skips_non_finite():
    from nnrun.metrics import ema

    out = ema([1.0, float("nan"), 3.0], beta=0.5)
    # k=1: avg 0.5 -> 0.5/(1-0.5) = 1; NaN skipped; k=2: avg 0.25+1.5 = 1.75 -> 1.75/0.75
    assert out[0] == 1.0 and np.isnan(out[1]) and out[2] == pytest.approx(1.75 / 0.75)
