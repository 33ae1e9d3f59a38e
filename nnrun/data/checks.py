"""What every loader checks of the arrays it returns: samples are finite numbers, labels are class
indices. Each failure is one DataError line naming the file, the place and what to do."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from nnrun.errors import DataError

# Far more classes than nnrun can train; a larger label is a corrupt file, and counting classes up
# to it would only spend memory (and a float label past 2**63 does not even fit an int64).
MAX_CLASSES = 10_000


def shown(value) -> str:
    """A number from a file as a short text: 3, -2, 1.5, 1e+300, nan."""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{float(value):.10g}"


def shown_text(text: str, limit: int = 24) -> str:
    """Text from a file as a quoted literal: control characters escaped, long text cut."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def place(index: int, rows: Sequence[int] | None) -> str:
    """Where sample `index` is: its row in the file when known (CSV), else its index."""
    return f"row {rows[index]}" if rows is not None else f"index {index}"


def as_int_labels(values: np.ndarray, path: str | os.PathLike,
                  rows: Sequence[int] | None = None) -> np.ndarray:
    """Return class labels (N,) as int64, or raise DataError if any is not an integer
    0 <= label < MAX_CLASSES; `rows` gives each label's row in the file for the message."""
    values = np.asarray(values)
    if values.dtype.kind not in "iuf" or values.ndim != 1:
        raise DataError(f"{path}: labels must be a 1-D numeric array, got {values.dtype} {values.shape}; "
                        "give one class index per sample")
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (values < 0) | (values >= MAX_CLASSES) | (values != np.round(values))
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: label {shown(values[index])} at {place(index, rows)} is not a class index; "
            f"labels must be integers 0, 1, 2, ... below {MAX_CLASSES}"
        )
    return values.astype(np.int64)


def check_samples(x: np.ndarray, path: str | os.PathLike) -> None:
    """Raise DataError unless x (N, ...) holds at least one sample of at least one finite number."""
    if len(x) == 0 or x.size == 0:
        raise DataError(f"{path}: no samples (the data has shape {x.shape}); give a file with data in it")
    if x.dtype.kind != "f":
        return
    finite = np.isfinite(x)
    if not finite.all():
        index = int(np.flatnonzero(~finite.reshape(len(x), -1).all(axis=1))[0])
        value = x[index][~finite[index]].flat[0]
        raise DataError(f"{path}: value {shown(value)} in sample {index} is not a finite number; "
                        "fix or remove that sample")


def check_labels_below(y: np.ndarray, num_classes: int, where: str, classes_from: str) -> None:
    """Raise DataError naming `where` (the labels' file or split) if a label is >= num_classes;
    classes_from says whose classes they are (the training data, a named dataset)."""
    if len(y) == 0 or int(y.max()) < num_classes:
        return
    outside = np.unique(y[y >= num_classes])
    listed = ", ".join(map(str, outside[:5])) + (", ..." if len(outside) > 5 else "")
    raise DataError(f"{where}: label{'s' if len(outside) > 1 else ''} {listed} outside the classes "
                    f"0..{num_classes - 1} of {classes_from}; use the same class indices in every split")
