"""Classification metrics in pure NumPy.

Conventions
-----------
* Labels are integers in ``[0, num_classes)``.
* Confusion matrices have rows = true class, columns = predicted class.
* Divisions by zero (precision of a never-predicted class, recall of a class
  with no support, F1 when precision + recall == 0) yield 0.0 silently.
* Everything returned by :func:`classification_report` and
  :func:`top_confusions` is built from plain Python ``int``/``float``/``str``,
  so it can be passed straight to ``json.dumps``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "EPOCH_METRICS",
    "RUN_METRICS",
    "metric_mode",
    "accuracy",
    "confusion_matrix",
    "classification_report",
    "one_vs_rest",
    "top_confusions",
]

# The metrics of one epoch (a row of metrics.csv, in its column order), and of a whole run.
EPOCH_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
RUN_METRICS = (*EPOCH_METRICS, "test_loss", "test_accuracy")


def metric_mode(name: str) -> str:
    """'max' for accuracies, 'min' for losses: which way a metric gets better."""
    return "max" if name.endswith("accuracy") else "min"


def _as_labels(y, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        as_int = arr.astype(np.int64)
        if not np.array_equal(as_int, arr):
            raise ValueError(f"{name} must contain integer class labels")
        arr = as_int
    return arr.astype(np.int64, copy=False)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Elementwise num / den with 0.0 where den == 0, without any warning."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _check_cm(cm) -> np.ndarray:
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square (K, K), got shape {cm.shape}")
    return cm.astype(np.int64, copy=False)


def _names(class_names: Sequence[str] | None, k: int) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(k)]
    names = [str(n) for n in class_names]
    if len(names) != k:
        raise ValueError(f"expected {k} class names, got {len(names)}")
    return names


def accuracy(y_true, y_pred) -> float:
    """Fraction of samples where ``y_pred == y_true`` (0.0 for empty input)."""
    t = _as_labels(y_true, "y_true")
    p = _as_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    if t.size == 0:
        return 0.0
    return float(np.count_nonzero(t == p) / t.size)


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(K, K) int64 counts; ``cm[i, j]`` = samples of true class i predicted as j."""
    k = int(num_classes)
    if k <= 0:
        raise ValueError("num_classes must be positive")
    t = _as_labels(y_true, "y_true")
    p = _as_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    for arr, name in ((t, "y_true"), (p, "y_pred")):
        if arr.size and (arr.min() < 0 or arr.max() >= k):
            raise ValueError(f"{name} has labels outside [0, {k})")
    flat = np.bincount(t * k + p, minlength=k * k)
    return flat.reshape(k, k).astype(np.int64, copy=False)


def one_vs_rest(cm) -> np.ndarray:
    """(K, 4) int64 array with columns TP, FP, FN, TN for each class (each row sums to N)."""
    cm = _check_cm(cm)
    n = cm.sum()
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    tn = n - tp - fp - fn
    return np.stack([tp, fp, fn, tn], axis=1).astype(np.int64, copy=False)


def classification_report(cm, class_names: Sequence[str] | None = None) -> dict:
    """Per-class precision/recall/F1 plus macro and support-weighted averages.

    Returns ``{"classes": [...], "macro": {...}, "weighted": {...}, "accuracy",
    "never_predicted", "num_samples"}``; see the module docstring for the
    zero-division convention. ``never_predicted`` lists the names of classes
    whose predicted-column total is zero.
    """
    cm = _check_cm(cm)
    k = cm.shape[0]
    names = _names(class_names, k)
    ovr = one_vs_rest(cm)
    tp, fp, fn, tn = (ovr[:, i] for i in range(4))
    support = tp + fn
    predicted = tp + fp
    n = int(cm.sum())

    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2.0 * precision * recall, precision + recall)

    classes = [
        {
            "name": names[i],
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
            "tp": int(tp[i]),
            "fp": int(fp[i]),
            "fn": int(fn[i]),
            "tn": int(tn[i]),
        }
        for i in range(k)
    ]

    def _weighted(values: np.ndarray) -> float:
        return float(_safe_div(np.sum(values * support), n)) if n else 0.0

    return {
        "classes": classes,
        "macro": {
            "precision": float(precision.mean()),
            "recall": float(recall.mean()),
            "f1": float(f1.mean()),
        },
        "weighted": {
            "precision": _weighted(precision),
            "recall": _weighted(recall),
            "f1": _weighted(f1),
        },
        "accuracy": float(_safe_div(tp.sum(), n)),
        "never_predicted": [names[i] for i in range(k) if predicted[i] == 0],
        "num_samples": n,
    }


def top_confusions(cm, class_names: Sequence[str] | None = None, n: int = 10) -> list[dict]:
    """The ``n`` largest off-diagonal cells as ``{"true", "predicted", "count"}``.

    Sorted by count descending, ties by true then predicted class index; cells
    with count 0 are excluded. ``true``/``predicted`` are class names.
    """
    cm = _check_cm(cm)
    k = cm.shape[0]
    names = _names(class_names, k)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    rows, cols = np.nonzero(off)
    counts = off[rows, cols]
    order = np.lexsort((cols, rows, -counts))[: max(int(n), 0)]
    return [
        {"true": names[int(rows[i])], "predicted": names[int(cols[i])], "count": int(counts[i])}
        for i in order
    ]


class SmoothedLoss:
    """A bias-corrected exponential moving average, one value at a time."""

    def __init__(self, beta: float = 0.9):
        self.beta, self.avg, self.count = beta, 0.0, 0

    def update(self, value: float) -> float:
        """Add a finite value; returns the average so far."""
        self.count += 1
        self.avg = self.beta * self.avg + (1 - self.beta) * value
        return self.avg / (1 - self.beta ** self.count)


def ema(values, beta: float = 0.9) -> np.ndarray:
    """Bias-corrected exponential moving average; non-finite values are skipped (NaN out)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    smoothed = SmoothedLoss(beta)
    for i, v in enumerate(values):  # a recurrence over a short 1-D series
        if np.isfinite(v):
            out[i] = smoothed.update(v)
    return out
