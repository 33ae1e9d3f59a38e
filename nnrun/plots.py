"""Publication-quality PNG plots drawn from plain arrays, lists and dicts.

Every public function takes a ``path``, writes exactly one PNG there
atomically (via :func:`nnrun.fileio.atomic_path`), closes its figure and
returns the path as a :class:`pathlib.Path`. Nothing here trains models or
reads runs from disk.

Style conventions (shared through :func:`_drawing`):

* white background, light grid, top/right spines removed, 120 dpi;
* Okabe-Ito colour-blind-friendly palette (train = blue, validation = orange);
* input images are drawn with ``cmap="gray"`` (0 = black), nearest-neighbour
  interpolation, ``origin="upper"`` and no ticks; each tile is auto-scaled to
  its own min/max. 3-channel images (``(C, H, W)`` with C == 3) are shown as
  RGB (min/max scaled to [0, 1] when outside that range);
* weights use the diverging ``"RdBu_r"`` colormap, symmetric around 0
  (red = positive, blue = negative);
* confusion matrices use ``"Blues"``; sweep heat maps ``"viridis"`` (reversed
  when lower is better, so brighter is always better).

Accuracies are expected as fractions in [0, 1] and displayed as percentages.
``None``, NaN and +-inf values in curves are treated as missing.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import PatchCollection  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter  # noqa: E402

from nnrun.fileio import atomic_path  # noqa: E402
from nnrun.metrics import ema  # noqa: E402

__all__ = [
    "learning_curves",
    "lr_schedule",
    "confusion_matrix_plot",
    "misclassified_grid",
    "predictions_plot",
    "per_class_plot",
    "weights_plot",
    "compare_curves",
    "sweep_plot",
    "sweep_curves",
    "lr_range_plot",
]

# --------------------------------------------------------------------------- style

DPI = 120
WIDE = (8.0, 4.5)
IMAGE_CMAP = "gray"
WEIGHT_CMAP = "RdBu_r"

# Okabe-Ito, ordered so the first few are the most distinguishable on white.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442"]
TRAIN_COLOR = PALETTE[0]
VAL_COLOR = PALETTE[1]
GOOD_COLOR = PALETTE[2]
BAD_COLOR = PALETTE[3]
MUTED = "#9aa5b1"
TEXT = "#333333"

_RC: dict[str, Any] = {
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlepad": 8,
    "axes.labelsize": 10,
    "axes.labelcolor": TEXT,
    "axes.edgecolor": "#555555",
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.8,
    "xtick.color": "#555555",
    "ytick.color": "#555555",
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "figure.titlesize": 13,
    "figure.titleweight": "bold",
    "lines.linewidth": 1.8,
    "lines.markersize": 4,
    "image.interpolation": "nearest",
    "image.origin": "upper",
}


@contextmanager
def _drawing() -> Iterator[None]:
    """Apply the shared style; close any figure created inside, even on error."""
    before = set(plt.get_fignums())
    try:
        with matplotlib.rc_context(_RC):
            yield
    finally:
        for num in set(plt.get_fignums()) - before:
            plt.close(num)


def _figure(figsize: tuple[float, float] = WIDE):
    return plt.figure(figsize=figsize, layout="constrained")


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, facecolor="white")
    finally:
        plt.close(fig)
    return path


def _message_figure(path, message: str, title: str | None = None) -> Path:
    fig = _figure((6.0, 2.5))
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=13, color="#666666",
            transform=ax.transAxes)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _colors(n: int) -> list:
    if n <= len(PALETTE) - 1:  # skip yellow unless needed
        return PALETTE[:n]
    if n <= len(PALETTE):
        return PALETTE[:n]
    cmap = plt.get_cmap("tab20" if n <= 20 else "viridis")
    if n <= 20:
        return [cmap(i) for i in range(n)]
    return [cmap(x) for x in np.linspace(0.0, 0.9, n)]


def _int_epochs(ax, epochs: np.ndarray) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    finite = epochs[np.isfinite(epochs)]
    if finite.size and finite.min() == finite.max():
        ax.set_xlim(finite[0] - 0.5, finite[0] + 0.5)


def _percent_axis(ax) -> None:
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))


def _text_color(rgb) -> str:
    r, g, b = to_rgb(rgb)
    return "white" if (0.299 * r + 0.587 * g + 0.114 * b) < 0.5 else "#222222"


# --------------------------------------------------------------------------- data helpers


def _num(v) -> float:
    """float(v), mapping None/non-numeric/non-finite to NaN."""
    if v is None:
        return math.nan
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f if math.isfinite(f) else math.nan


def _col(rows: Sequence[Mapping], key: str) -> np.ndarray:
    return np.array([_num(r.get(key)) for r in rows], dtype=np.float64)


def _epochs(rows: Sequence[Mapping]) -> np.ndarray:
    ep = _col(rows, "epoch")
    missing = ~np.isfinite(ep)
    ep[missing] = np.arange(1, len(rows) + 1, dtype=np.float64)[missing]
    return ep


def _has(a: np.ndarray) -> bool:
    return bool(np.isfinite(a).any())


def _fmt_pct(x: float) -> str:
    return f"{100.0 * x:.1f}%"


def _fmt(v: Any) -> str:
    """Compact label for a hyper-parameter or metric value."""
    if isinstance(v, (bool, np.bool_)) or v is None:
        return str(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if f != 0 and (abs(f) < 1e-3 or abs(f) >= 1e5):
            return f"{f:.0e}" if f == float(f"{f:.0e}") else f"{f:.2e}"
        return f"{f:.4g}"
    return str(v)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _images_batch(images) -> np.ndarray:
    """Return (N, H, W) grey or (N, H, W, 3) RGB float images."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 2:  # (N, H*W) flattened square images
        side = int(round(math.sqrt(x.shape[1]))) if x.shape[1] else 0
        if side * side != x.shape[1]:
            raise ValueError(f"cannot infer image shape from flat vectors of length {x.shape[1]}")
        return x.reshape(x.shape[0], side, side)
    if x.ndim == 3:
        return x
    if x.ndim == 4:
        if x.shape[1] == 1:
            return x[:, 0]
        if x.shape[1] == 3:
            return x.transpose(0, 2, 3, 1)
        if x.shape[-1] == 1:
            return x[..., 0]
        if x.shape[-1] == 3:
            return x
        return x.mean(axis=1)  # other channel counts: show the channel mean
    raise ValueError(f"images must be (N,H,W) or (N,C,H,W), got shape {x.shape}")


def _show_image(ax, img: np.ndarray) -> None:
    if img.ndim == 3:
        finite = img[np.isfinite(img)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if lo < 0.0 or hi > 1.0:
            img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
        ax.imshow(np.clip(np.nan_to_num(img), 0.0, 1.0), interpolation="nearest", origin="upper")
    else:
        ax.imshow(img, cmap=IMAGE_CMAP, interpolation="nearest", origin="upper")
    _tile_axes(ax)


def _tile_axes(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color("#cccccc")
        spine.set_linewidth(0.6)


def _grid_shape(n: int) -> tuple[int, int]:
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    return rows, cols


def _tile_figure(n: int, tile_w: float, tile_h: float, min_w: float = 5.0, top: float = 0.7):
    rows, cols = _grid_shape(n)
    w = max(min_w, cols * tile_w + 0.4)
    h = rows * tile_h + top
    fig = _figure((w, h))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


# --------------------------------------------------------------------------- 1. learning curves


def _best_val_epoch(val_acc: np.ndarray, val_loss: np.ndarray) -> int | None:
    """Index of the best validation epoch: max accuracy, else min loss."""
    if _has(val_acc):
        return int(np.nanargmax(np.where(np.isfinite(val_acc), val_acc, -np.inf)))
    if _has(val_loss):
        return int(np.nanargmin(np.where(np.isfinite(val_loss), val_loss, np.inf)))
    return None


def learning_curves(rows: Sequence[Mapping], path, title: str = "Learning curves",
                    best_epoch: int | None = None) -> Path:
    """Loss and accuracy vs epoch (train vs validation), best validation epoch marked.

    ``rows``: dicts with ``epoch`` (1-based), ``train_loss``, ``train_accuracy``,
    ``val_loss``, ``val_accuracy`` (val_* may be None/NaN). The best epoch is
    ``best_epoch`` when given (training's monitored best), else the one with the highest
    validation accuracy (or lowest validation loss).
    """
    rows = list(rows)
    with _drawing():
        if not rows:
            return _message_figure(path, "No epochs recorded", title)
        ep = _epochs(rows)
        tl, ta = _col(rows, "train_loss"), _col(rows, "train_accuracy")
        vl, va = _col(rows, "val_loss"), _col(rows, "val_accuracy")
        has_val = _has(vl) or _has(va)
        best = _best_val_epoch(va, vl)
        if best_epoch is not None and best_epoch in ep:
            best = int(np.flatnonzero(ep == best_epoch)[0])
        marker = "o" if len(rows) <= 30 else None

        fig = _figure()
        ax_loss, ax_acc = fig.subplots(1, 2)
        panels = ((ax_loss, tl, vl, "Loss", "loss"), (ax_acc, ta, va, "Accuracy", "accuracy"))
        for ax, tr, vv, name, ylabel in panels:
            if _has(tr):
                ax.plot(ep, tr, color=TRAIN_COLOR, marker=marker, label="train")
            if _has(vv):
                ax.plot(ep, vv, color=VAL_COLOR, marker=marker, label="validation")
            if best is not None:
                ax.axvline(ep[best], color="#888888", linestyle="--", linewidth=1, zorder=0)
                if np.isfinite(vv[best]):
                    ax.plot([ep[best]], [vv[best]], marker="o", markersize=9, markerfacecolor="none",
                            markeredgecolor=BAD_COLOR, markeredgewidth=1.8, linestyle="none")
            if not (_has(tr) or _has(vv)):
                ax.text(0.5, 0.5, f"no {ylabel} recorded", ha="center", va="center",
                        color="#888888", transform=ax.transAxes)
            ax.set_title(name)
            ax.set_xlabel("Epoch")
            ax.set_ylabel(ylabel)
            _int_epochs(ax, ep)
        if _has(ta) or _has(va):
            _percent_axis(ax_acc)

        handles = [Line2D([], [], color=TRAIN_COLOR, marker=marker, label="train")]
        if has_val:
            handles.append(Line2D([], [], color=VAL_COLOR, marker=marker, label="validation"))
        if best is not None:
            desc = f"epoch {int(ep[best])}"
            if np.isfinite(va[best]):
                desc += f", {_fmt_pct(va[best])}"
            elif np.isfinite(vl[best]):
                desc += f", loss {vl[best]:.4g}"
            handles.append(Line2D([], [], color=BAD_COLOR, marker="o", markerfacecolor="none",
                                  markersize=8, markeredgewidth=1.8, linestyle="--",
                                  label=f"best validation ({desc})"))
        ax_acc.legend(handles=handles, loc="best")
        fig.suptitle(title if has_val else f"{title} (no validation data)")
        return _save(fig, path)


# --------------------------------------------------------------------------- 2. lr schedule


def lr_schedule(rows: Sequence[Mapping], path, title: str = "Learning-rate schedule") -> Path:
    """Learning rate (key ``lr``) vs epoch; log y-axis if all rates > 0 and span > 10x."""
    rows = list(rows)
    with _drawing():
        lr = _col(rows, "lr")
        if not _has(lr):
            return _message_figure(path, "No learning rates recorded", title)
        ep = _epochs(rows)
        fig = _figure()
        ax = fig.add_subplot()
        ax.plot(ep, lr, color=TRAIN_COLOR, marker="o" if len(rows) <= 40 else None,
                drawstyle="default")
        finite = lr[np.isfinite(lr)]
        if (finite > 0).all() and finite.max() / finite.min() > 10:
            ax.set_yscale("log")
        else:
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _fmt(float(v))))
            ax.set_ylim(bottom=0)
        ax.set_xlabel("Epoch")
        ax.set_ylabel("Learning rate")
        ax.set_title(f"{title}  (start {_fmt(float(finite[0]))}, end {_fmt(float(finite[-1]))})")
        _int_epochs(ax, ep)
        return _save(fig, path)


# --------------------------------------------------------------------------- 3. confusion matrix


def confusion_matrix_plot(cm, class_names: Sequence[str] | None, path,
                          title: str = "Confusion matrix") -> Path:
    """Counts in each cell, shaded by the row-normalised fraction (rows = true class)."""
    cm = np.asarray(cm, dtype=np.int64)
    k = cm.shape[0]
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(k)]
    with _drawing():
        row_sums = cm.sum(axis=1, keepdims=True).astype(np.float64)
        frac = np.zeros(cm.shape, dtype=np.float64)
        np.divide(cm, row_sums, out=frac, where=row_sums > 0)
        n = int(cm.sum())
        acc = float(np.trace(cm)) / n if n else 0.0

        side = float(np.clip(0.55 * k + 2.5, 5.5, 14.0))
        fig = _figure((side + 0.6, side + 0.2))
        ax = fig.add_subplot()
        cmap = plt.get_cmap("Blues")
        im = ax.imshow(frac, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest", origin="upper")
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        if k <= 30:
            fs = 10 if k <= 10 else (8 if k <= 20 else 6)
            for i in range(k):
                for j in range(k):
                    color = _text_color(cmap(frac[i, j])) if cm[i, j] else "#b8b8b8"
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=fs, color=color)
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        long_names = max((len(s) for s in names), default=0) > 3
        ax.set_xticklabels(names, rotation=45 if long_names else 0, ha="right" if long_names else "center",
                           rotation_mode="anchor")
        ax.set_yticklabels(names)
        ax.tick_params(length=0)
        ax.set_xlabel("Predicted class")
        ax.set_ylabel("True class")
        ax.set_title(f"{title}\naccuracy {_fmt_pct(acc)} on {n} samples")
        cbar = fig.colorbar(im, ax=ax, shrink=0.8)
        cbar.set_label("fraction of true class")
        cbar.outline.set_visible(False)
        return _save(fig, path)


# --------------------------------------------------------------------------- 4. misclassified


def misclassified_grid(images, y_true, y_pred, confidence, class_names: Sequence[str] | None,
                       path, max_images: int = 36) -> Path:
    """Grid of wrong predictions, most confident mistakes first.

    ``images`` (N,H,W) / (N,1,H,W) / (N,3,H,W); the caller passes only the
    misclassified samples. ``confidence`` is the predicted-class probability in
    [0, 1] (may be None: original order is kept and no percentage shown).
    """
    with _drawing():
        n_total = 0 if images is None else len(images)
        if n_total == 0:
            return _message_figure(path, "No misclassified samples", "Misclassified samples")
        imgs = _images_batch(images)
        yt = np.asarray(y_true).astype(np.int64).ravel()
        yp = np.asarray(y_pred).astype(np.int64).ravel()
        conf = None if confidence is None else np.asarray(confidence, dtype=np.float64).ravel()
        order = (np.argsort(-np.nan_to_num(conf, nan=-1.0), kind="stable") if conf is not None
                 else np.arange(n_total))[: max(1, int(max_images))]

        def name(c: int) -> str:
            if class_names is not None and 0 <= c < len(class_names):
                return str(class_names[c])
            return str(c)

        fig, axes = _tile_figure(len(order), tile_w=1.65, tile_h=1.75)
        for ax, i in zip(axes, order):
            _show_image(ax, imgs[i])
            label = f"true {name(yt[i])} → pred {name(yp[i])}"
            if conf is not None and np.isfinite(conf[i]):
                label += f" ({100 * conf[i]:.0f}%)"
            ax.set_title(label, fontsize=8, fontweight="normal", pad=3)
        shown = f"{len(order)} of {n_total}" if len(order) < n_total else f"all {n_total}"
        fig.suptitle(f"Misclassified samples: {shown}" +
                     (", most confident first" if conf is not None else ""))
        return _save(fig, path)


# --------------------------------------------------------------------------- 5. predictions


def predictions_plot(images, probabilities, y_true, class_names: Sequence[str] | None, path,
                     max_samples: int = 8) -> Path:
    """One row per sample: the image, then a bar chart of its class probabilities.

    The true-class bar is green, the predicted class (if different) vermillion.
    """
    with _drawing():
        if images is None or len(images) == 0:
            return _message_figure(path, "No samples", "Predictions")
        imgs = _images_batch(images)
        probs = np.asarray(probabilities, dtype=np.float64)
        yt = np.asarray(y_true).astype(np.int64).ravel()
        n = min(len(imgs), max(1, int(max_samples)))
        k = probs.shape[1]
        names = ([str(c) for c in class_names] if class_names is not None
                 else [str(i) for i in range(k)])
        label_all = k <= 15
        row_h = max(1.5, 0.15 * k + 0.3) if label_all else 1.6

        fig = _figure((8.0, n * row_h + 0.8))
        axes = fig.subplots(n, 2, squeeze=False, gridspec_kw={"width_ratios": [1, 3.2]})
        y = np.arange(k)
        for r in range(n):
            ax_img, ax_bar = axes[r]
            _show_image(ax_img, imgs[r])
            p = np.nan_to_num(probs[r])
            pred = int(np.argmax(p))
            colors = [MUTED] * k
            colors[pred] = BAD_COLOR
            colors[yt[r]] = GOOD_COLOR
            ax_bar.barh(y, p, color=colors, height=0.75)
            ax_bar.set_xlim(0, 1)
            ax_bar.set_ylim(k - 0.5, -0.5)
            ax_bar.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
            ax_bar.grid(axis="y", visible=False)
            ticks = y if label_all else sorted({yt[r], pred})
            ax_bar.set_yticks(ticks)
            ax_bar.set_yticklabels([names[t] for t in ticks], fontsize=7 if k > 10 else 8)
            ax_bar.tick_params(axis="y", length=0)
            if r < n - 1:
                ax_bar.tick_params(axis="x", labelbottom=False)
            else:
                ax_bar.set_xlabel("Predicted probability")
            ok = pred == yt[r]
            verdict = "correct" if ok else "wrong"
            ax_bar.set_title(f"true {names[yt[r]]}, predicted {names[pred]} ({_fmt_pct(p[pred])}) – {verdict}",
                             fontsize=9, loc="left", fontweight="normal",
                             color=TEXT if ok else BAD_COLOR, pad=3)
        handles = [Patch(color=GOOD_COLOR, label="true class"),
                   Patch(color=BAD_COLOR, label="predicted (when wrong)"),
                   Patch(color=MUTED, label="other classes")]
        fig.legend(handles=handles, loc="outside lower center", ncol=3)
        fig.suptitle("Predictions")
        return _save(fig, path)


# --------------------------------------------------------------------------- 6. per class


def per_class_plot(report: Mapping, path, title: str = "Per-class metrics") -> Path:
    """Grouped precision/recall/F1 bars per class from ``metrics.classification_report``."""
    classes = list(report.get("classes", []))
    with _drawing():
        if not classes:
            return _message_figure(path, "No classes", title)
        k = len(classes)
        x = np.arange(k)
        width = 0.8 / 3
        fig = _figure((float(np.clip(0.65 * k + 3.0, 8.0, 20.0)), 4.5))
        ax = fig.add_subplot()
        for i, (key, color) in enumerate((("precision", PALETTE[0]), ("recall", PALETTE[1]),
                                          ("f1", PALETTE[2]))):
            vals = [_num(c.get(key)) for c in classes]
            ax.bar(x + (i - 1) * width, np.nan_to_num(vals), width=width * 0.95, color=color,
                   label="F1" if key == "f1" else key)
        macro = report.get("macro", {}).get("f1")
        if macro is not None:
            ax.axhline(float(macro), color="#555555", linestyle="--", linewidth=1,
                       label=f"macro F1 {float(macro):.3f}")
        ax.set_xticks(x)
        labels = [f"{c.get('name', i)}\nn={c.get('support', '?')}" for i, c in enumerate(classes)]
        ax.set_xticklabels(labels, fontsize=8 if k > 12 else 9)
        ax.tick_params(axis="x", length=0)
        ax.grid(axis="x", visible=False)
        ax.set_ylim(0, 1.05)
        ax.set_xlim(-0.6, k - 0.4)
        ax.set_ylabel("Score")
        ax.set_xlabel("Class")
        acc = report.get("accuracy")
        ax.set_title(title + (f"  (accuracy {_fmt_pct(float(acc))})" if acc is not None else ""))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        never = report.get("never_predicted") or []
        if never:
            ax.text(0.0, -0.22 if k <= 12 else -0.25,
                    "never predicted: " + ", ".join(map(str, never)),
                    transform=ax.transAxes, fontsize=8, color=BAD_COLOR, va="top")
        return _save(fig, path)


# --------------------------------------------------------------------------- 7. weights


def weights_plot(W, path, kind: str, image_shape: Sequence[int] | None = None,
                 max_tiles: int = 64, title: str | None = None) -> Path:
    """Visualise a weight tensor with a diverging colormap symmetric around 0.

    * ``kind="conv"``: ``W`` is (out, in, kh, kw); one tile per filter showing
      the kernel of its single input channel, or the **mean over input
      channels** when in > 1.
    * ``kind="dense"`` with ``image_shape`` (C,H,W) or (H,W): ``W`` is (in, out);
      one tile per output unit j showing ``W[:, j]`` reshaped to the image
      (mean over C when C > 1).
    * ``kind="dense"`` without ``image_shape``: ``W`` as an (in x out) heat map.

    Tiles are each scaled to their own max |w| (red positive, blue negative);
    the default title assumes the first layer of that kind.
    """
    W = np.asarray(W, dtype=np.float64)
    with _drawing():
        if kind == "conv":
            if W.ndim != 4:
                raise ValueError(f"conv weights must be (out, in, kh, kw), got shape {W.shape}")
            out, cin, kh, kw = W.shape
            tiles = W[:, 0] if cin == 1 else W.mean(axis=1)
            what = f"First conv layer: {out} filters {kh}x{kw}"
            notes = [f"mean over {cin} input channels"] if cin > 1 else []
        elif kind == "dense":
            if W.ndim != 2:
                raise ValueError(f"dense weights must be (in, out), got shape {W.shape}")
            n_in, out = W.shape
            if image_shape is None:
                return _weights_matrix(W, path, title)
            shape = tuple(int(s) for s in image_shape)
            if int(np.prod(shape)) != n_in:
                raise ValueError(f"image_shape {shape} does not match {n_in} inputs")
            tiles = W.T.reshape((out, *shape))
            if len(shape) == 3:
                tiles = tiles.mean(axis=1)
            h, w = tiles.shape[1:]
            what = f"First dense layer: {out} units, input weights as {h}x{w} images"
            notes = [f"mean over {shape[0]} channels"] if len(shape) == 3 and shape[0] > 1 else []
        else:
            raise ValueError(f"kind must be 'conv' or 'dense', got {kind!r}")

        n = min(len(tiles), max(1, int(max_tiles)))
        if n < len(tiles):
            notes.append(f"first {n} shown")
        if notes:
            what += "\n(" + ", ".join(notes) + ")"
        mosaic, rows, cols = _mosaic(tiles[:n])
        th, tw = tiles.shape[1:]
        tile_in = float(np.clip(0.25 + 0.09 * max(th, tw), 0.5, 1.1))
        w = max(6.0, cols * tile_in + 2.0)
        fig = _figure((w, max(3.0, rows * tile_in * th / tw + 0.9)))
        ax = fig.add_subplot()
        cmap = plt.get_cmap(WEIGHT_CMAP).with_extremes(bad=_PAD_COLOR)
        im = ax.imshow(mosaic, cmap=cmap, vmin=-1.0, vmax=1.0, interpolation="nearest",
                       origin="upper")
        ax.set_axis_off()
        ax.add_collection(PatchCollection(
            [Rectangle((1 + c * (tw + 1) - 0.5, 1 + r * (th + 1) - 0.5), tw, th)
             for r, c in (divmod(i, cols) for i in range(n))],
            facecolor="none", edgecolor="#b0b0b0", linewidth=0.6))
        cbar = fig.colorbar(im, ax=ax, shrink=0.7, ticks=[-1, 0, 1], aspect=25)
        cbar.ax.set_yticklabels(["−max|w|", "0", "+max|w|"])
        cbar.set_label("weight, each tile scaled to its own max |w|", fontsize=8)
        cbar.outline.set_visible(False)
        ax.set_title(title or what)
        return _save(fig, path)


_PAD_COLOR = "white"


def _mosaic(tiles: np.ndarray, pad: int = 1) -> tuple[np.ndarray, int, int]:
    """Lay out (n, h, w) tiles, each scaled to [-1, 1] by its max |w|, on a NaN-padded canvas."""
    n, h, w = tiles.shape
    rows, cols = _grid_shape(n)
    scale = np.abs(np.nan_to_num(tiles)).reshape(n, -1).max(axis=1)
    scale[scale == 0] = 1.0
    scaled = tiles / scale[:, None, None]
    canvas = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), np.nan)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        canvas[y:y + h, x:x + w] = scaled[i]
    return canvas, rows, cols


def _weights_matrix(W: np.ndarray, path, title: str | None) -> Path:
    n_in, out = W.shape
    fig = _figure(WIDE)
    ax = fig.add_subplot()
    m = float(np.nanmax(np.abs(W))) if np.isfinite(W).any() else 0.0
    m = m if m > 0 else 1.0
    im = ax.imshow(W, cmap=WEIGHT_CMAP, vmin=-m, vmax=m, aspect="auto", interpolation="nearest",
                   origin="upper")
    ax.grid(False)
    ax.set_xlabel("Output unit")
    ax.set_ylabel("Input unit")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title or f"Dense layer weights ({n_in} inputs x {out} outputs)")
    cbar = fig.colorbar(im, ax=ax)
    cbar.set_label("weight")
    cbar.outline.set_visible(False)
    return _save(fig, path)


# --------------------------------------------------------------------------- 8. compare runs


def _run_curve(rows: Sequence[Mapping], metric: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(epochs, values, source) preferring validation, falling back to train."""
    ep = _epochs(rows)
    val = _col(rows, f"val_{metric}")
    if _has(val):
        return ep, val, "val"
    return ep, _col(rows, f"train_{metric}"), "train"


def compare_curves(runs: Sequence[tuple[str, Sequence[Mapping]]], path,
                   title: str = "Run comparison") -> Path:
    """Overlay accuracy and loss of several runs (validation, else train), one colour per run."""
    runs = [(str(label), list(rows)) for label, rows in runs]
    with _drawing():
        if not runs:
            return _message_figure(path, "No runs to compare", title)
        fig = _figure((9.5, 4.5))
        ax_acc, ax_loss = fig.subplots(1, 2)
        colors = _colors(len(runs))
        handles = []
        all_ep = []
        for (label, rows), color in zip(runs, colors):
            ep, acc, src_a = _run_curve(rows, "accuracy")
            _, loss, src_l = _run_curve(rows, "loss")
            all_ep.append(ep)
            marker = "o" if len(rows) <= 1 else None
            ls = "-" if src_a == "val" else ":"
            ax_acc.plot(ep, acc, color=color, linestyle=ls, marker=marker)
            ax_loss.plot(ep, loss, color=color, linestyle="-" if src_l == "val" else ":",
                         marker=marker)
            desc = label
            if _has(acc):
                desc += f" ({src_a} best {_fmt_pct(float(np.nanmax(acc)))})"
            handles.append(Line2D([], [], color=color, linestyle=ls, label=desc))
        epochs = np.concatenate(all_ep) if all_ep else np.array([1.0])
        for ax, name in ((ax_acc, "Accuracy"), (ax_loss, "Loss")):
            ax.set_title(name)
            ax.set_xlabel("Epoch")
            ax.set_ylabel(name.lower())
            _int_epochs(ax, epochs)
        _percent_axis(ax_acc)
        fig.legend(handles=handles, loc="outside right upper", title="solid = validation\ndotted = train",
                   title_fontsize=8, alignment="left")
        fig.suptitle(title)
        return _save(fig, path)


# --------------------------------------------------------------------------- 9. sweeps

_FAILED = {"failed", "error", "errored", "diverged", "crashed", "nan"}


def _lower_is_better(metric_name: str) -> bool:
    m = metric_name.lower()
    return any(w in m for w in ("loss", "error", "err", "mse", "mae", "perplexity"))


def _trial_ok(t: Mapping) -> bool:
    return np.isfinite(_num(t.get("metric"))) and str(t.get("status", "")).lower() not in _FAILED


def sweep_plot(trials: Sequence[Mapping], param_names: Sequence[str], metric_name: str, path,
               log_x: bool | None = None, higher_is_better: bool | None = None) -> Path:
    """Summarise a hyper-parameter sweep.

    * 1 parameter, numeric: metric vs value (log x if ``log_x`` or, when
      ``log_x`` is None, if all values > 0 and span > 10x); failed trials are
      red ``x`` marks along the bottom; the best trial is highlighted.
    * 1 parameter, non-numeric: bar per value (mean of its trials, dots for
      individual trials).
    * 2 parameters: heat map of the best metric per cell, values annotated.
    * >2 parameters: horizontal bars of trials ranked by metric.

    A trial fails when its metric is None/non-finite or its status is one of
    failed/error/diverged/crashed. ``higher_is_better`` defaults to False
    when the metric name mentions loss/error, else True.
    """
    trials = list(trials)
    names = list(param_names)
    hib = (not _lower_is_better(metric_name)) if higher_is_better is None else bool(higher_is_better)
    with _drawing():
        if not trials or not names:
            return _message_figure(path, "No trials to show", f"Sweep: {metric_name}")
        if len(names) == 1:
            values = [t.get("params", {}).get(names[0]) for t in trials]
            if all(_is_number(v) for v in values):
                return _sweep_1d(trials, names[0], values, metric_name, path, log_x, hib)
            return _sweep_categorical(trials, names[0], values, metric_name, path, hib)
        if len(names) == 2:
            return _sweep_2d(trials, names, metric_name, path, hib)
        return _sweep_ranked(trials, names, metric_name, path, hib)


def _best_index(metrics: np.ndarray, ok: np.ndarray, hib: bool) -> int | None:
    if not ok.any():
        return None
    score = np.where(ok, metrics if hib else -metrics, -np.inf)
    return int(np.argmax(score))


def _sweep_title(metric_name: str, n: int, n_failed: int, hib: bool) -> str:
    s = f"Sweep: {metric_name} ({'higher' if hib else 'lower'} is better), {n} trials"
    return s + (f", {n_failed} failed" if n_failed else "")


def _metric_axis(ax, metric_name: str, metrics: np.ndarray, axis: str = "y") -> None:
    finite = metrics[np.isfinite(metrics)]
    if "acc" in metric_name.lower() and finite.size and finite.min() >= 0 and finite.max() <= 1:
        fmt = PercentFormatter(xmax=1.0, decimals=0)
        (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _fmt_metric(metric_name: str, v: float) -> str:
    if "acc" in metric_name.lower() and 0 <= v <= 1:
        return _fmt_pct(v)
    return f"{v:.4g}"


def _sweep_1d(trials, name, values, metric_name, path, log_x, hib) -> Path:
    x = np.array([float(v) for v in values])
    m = np.array([_num(t.get("metric")) for t in trials])
    ok = np.array([_trial_ok(t) for t in trials])
    use_log = bool(log_x) if log_x is not None else False
    if log_x is None and (x > 0).all() and x.max() / x.min() > 10:
        use_log = True
    if use_log and not (x > 0).all():
        use_log = False

    fig = _figure()
    ax = fig.add_subplot()
    if ok.any():
        # mean per distinct value, joined by a thin line
        ux = np.unique(x[ok])
        means = np.array([m[ok & (x == u)].mean() for u in ux])
        ax.plot(ux, means, color=TRAIN_COLOR, alpha=0.5, linewidth=1.2, zorder=1)
        ax.scatter(x[ok], m[ok], color=TRAIN_COLOR, s=36, zorder=2, label="trial")
        lo, hi = float(m[ok].min()), float(m[ok].max())
        pad = 0.12 * (hi - lo) if hi > lo else (0.05 * abs(hi) if hi else 0.05)
        ax.set_ylim(lo - pad, hi + pad)
        _metric_axis(ax, metric_name, m[ok])
    else:
        ax.set_ylim(0, 1)
        ax.text(0.5, 0.5, "all trials failed", ha="center", va="center", color=BAD_COLOR,
                transform=ax.transAxes)
    if (~ok).any():
        ax.scatter(x[~ok], np.full((~ok).sum(), 0.03), marker="x", color=BAD_COLOR, s=50,
                   linewidths=2, transform=ax.get_xaxis_transform(), zorder=3,
                   label=f"failed ({int((~ok).sum())})", clip_on=False)
    best = _best_index(m, ok, hib)
    if best is not None:
        ax.scatter([x[best]], [m[best]], s=160, facecolor="none", edgecolor=BAD_COLOR,
                   linewidths=2, zorder=4,
                   label=f"best: {name}={_fmt(values[best])} → {_fmt_metric(metric_name, m[best])}")
    if use_log:
        ax.set_xscale("log")
        lx = np.log10(x)
        span = max(float(lx.max() - lx.min()), 0.5)
        ax.set_xlim(10 ** (lx.min() - 0.06 * span), 10 ** (lx.max() + 0.06 * span))
    else:
        span = float(x.max() - x.min()) or max(abs(float(x.max())), 1.0)
        ax.set_xlim(x.min() - 0.06 * span, x.max() + 0.06 * span)
    ax.set_xlabel(name + (" (log scale)" if use_log else ""))
    ax.set_ylabel(metric_name)
    ax.set_title(_sweep_title(metric_name, len(trials), int((~ok).sum()), hib))
    ax.legend(loc="best")
    return _save(fig, path)


def _unique(values: Iterable) -> list:
    seen: list = []
    for v in values:
        if not any(v == s and type(v) is type(s) for s in seen):
            seen.append(v)
    if all(_is_number(v) for v in seen):
        seen.sort(key=float)
    return seen


def _index_of(v, uniq: list) -> int:
    for i, u in enumerate(uniq):
        if v == u and type(v) is type(u):
            return i
    raise KeyError(v)


def _sweep_categorical(trials, name, values, metric_name, path, hib) -> Path:
    cats = _unique(values)
    m = np.array([_num(t.get("metric")) for t in trials])
    ok = np.array([_trial_ok(t) for t in trials])
    idx = np.array([_index_of(v, cats) for v in values])
    means = np.full(len(cats), np.nan)
    for c in range(len(cats)):
        sel = ok & (idx == c)
        if sel.any():
            means[c] = m[sel].mean()
    best = _best_index(means, np.isfinite(means), hib)

    fig = _figure((float(np.clip(0.9 * len(cats) + 3, 8.0, 16.0)), 4.5))
    ax = fig.add_subplot()
    colors = [GOOD_COLOR if c == best else MUTED for c in range(len(cats))]
    ax.bar(np.arange(len(cats)), np.nan_to_num(means), color=colors, width=0.6, label="mean of trials")
    if ok.any():
        ax.scatter(idx[ok], m[ok], color=TEXT, s=16, zorder=3, label="trial")
        _metric_axis(ax, metric_name, m[ok])
    if (~ok).any():
        ax.scatter(idx[~ok], np.full((~ok).sum(), 0.03), marker="x", color=BAD_COLOR, s=50,
                   linewidths=2, transform=ax.get_xaxis_transform(), zorder=3,
                   label=f"failed ({int((~ok).sum())})")
    for c in range(len(cats)):
        if np.isfinite(means[c]):
            ax.annotate(_fmt_metric(metric_name, means[c]), (c, means[c]), xytext=(0, 3),
                        textcoords="offset points", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(np.arange(len(cats)))
    ax.set_xticklabels([_fmt(c) for c in cats])
    ax.grid(axis="x", visible=False)
    ax.set_xlabel(name)
    ax.set_ylabel(metric_name)
    if best is not None:
        ax.legend(handles=[*ax.get_legend_handles_labels()[0],
                           Patch(color=GOOD_COLOR, label=f"best: {_fmt(cats[best])}")], loc="best")
    ax.set_title(_sweep_title(metric_name, len(trials), int((~ok).sum()), hib))
    return _save(fig, path)


def _sweep_2d(trials, names, metric_name, path, hib) -> Path:
    vx = [t.get("params", {}).get(names[0]) for t in trials]
    vy = [t.get("params", {}).get(names[1]) for t in trials]
    ux, uy = _unique(vx), _unique(vy)
    grid = np.full((len(uy), len(ux)), np.nan)
    tried = np.zeros(grid.shape, dtype=bool)
    for t, a, b in zip(trials, vx, vy):
        i, j = _index_of(b, uy), _index_of(a, ux)
        tried[i, j] = True
        if _trial_ok(t):
            v = _num(t["metric"])
            cur = grid[i, j]
            if not np.isfinite(cur) or (v > cur if hib else v < cur):
                grid[i, j] = v
    n_failed = sum(not _trial_ok(t) for t in trials)

    w = float(np.clip(1.0 * len(ux) + 3.0, 6.5, 14.0))
    h = float(np.clip(0.7 * len(uy) + 2.0, 4.0, 10.0))
    fig = _figure((w, h))
    ax = fig.add_subplot()
    cmap = plt.get_cmap("viridis" if hib else "viridis_r").with_extremes(bad="#f2f2f2")
    finite = grid[np.isfinite(grid)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto",
                   interpolation="nearest", origin="lower")
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    norm = im.norm
    for i in range(len(uy)):
        for j in range(len(ux)):
            v = grid[i, j]
            if np.isfinite(v):
                ax.text(j, i, _fmt_metric(metric_name, v), ha="center", va="center", fontsize=9,
                        color=_text_color(cmap(norm(v))))
            else:
                ax.text(j, i, "failed" if tried[i, j] else "–", ha="center", va="center",
                        fontsize=8, color=BAD_COLOR if tried[i, j] else "#999999")
    if finite.size:
        bi, bj = np.unravel_index(np.nanargmax(grid) if hib else np.nanargmin(grid), grid.shape)
        ax.add_patch(Rectangle((bj - 0.5, bi - 0.5), 1, 1, fill=False, edgecolor=BAD_COLOR,
                               linewidth=2.5))
    ax.set_xticks(range(len(ux)))
    ax.set_xticklabels([_fmt(v) for v in ux])
    ax.set_yticks(range(len(uy)))
    ax.set_yticklabels([_fmt(v) for v in uy])
    ax.tick_params(length=0)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    title = _sweep_title(metric_name, len(trials), n_failed, hib)
    ax.set_title(title + ("\nbest cell outlined" if finite.size else ""))
    cbar = fig.colorbar(im, ax=ax)
    cbar.set_label(metric_name)
    cbar.outline.set_visible(False)
    if finite.size:
        _metric_axis(cbar.ax, metric_name, finite)
    return _save(fig, path)


def _sweep_ranked(trials, names, metric_name, path, hib, max_rows: int = 40) -> Path:
    m = np.array([_num(t.get("metric")) for t in trials])
    ok = np.array([_trial_ok(t) for t in trials])
    key = np.where(ok, -m if hib else m, np.inf)
    order = np.argsort(key, kind="stable")[:max_rows]
    labels = [", ".join(f"{p}={_fmt(trials[i].get('params', {}).get(p))}" for p in names)
              for i in order]
    n = len(order)
    fig = _figure((float(np.clip(0.06 * max(map(len, labels)) + 6.0, 8.0, 14.0)), 0.32 * n + 1.6))
    ax = fig.add_subplot()
    y = np.arange(n)
    vals = np.where(ok[order], m[order], 0.0)
    colors = [GOOD_COLOR if r == 0 and ok[order[0]] else (TRAIN_COLOR if ok[i] else MUTED)
              for r, i in enumerate(order)]
    ax.barh(y, vals, color=colors, height=0.7)
    finite = m[ok]
    span = float(finite.max()) if finite.size else 1.0
    for r, i in enumerate(order):
        status = str(trials[i].get("status") or "failed")
        txt = (_fmt_metric(metric_name, m[i]) if ok[i]
               else status if status.lower() in _FAILED else f"failed ({status})")
        ax.text(vals[r] + 0.01 * span if ok[i] else 0.0, r, " " + txt, va="center", fontsize=8,
                color=TEXT if ok[i] else BAD_COLOR)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_ylim(n - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="y", visible=False)
    if finite.size:
        ax.set_xlim(0, span * 1.15 if span > 0 else 1.0)
        _metric_axis(ax, metric_name, finite, axis="x")
    ax.set_xlabel(metric_name)
    title = _sweep_title(metric_name, len(trials), int((~ok).sum()), hib)
    if n < len(trials):
        title += f" (top {n} shown)"
    ax.set_title(title)
    return _save(fig, path)


# --------------------------------------------------------------------------- 10. sweep curves


def sweep_curves(runs: Sequence[tuple[str, Sequence[Mapping]]], path,
                 title: str = "Sweep: accuracy curves", best: int | None = None) -> Path:
    """Accuracy (validation, else train) vs epoch for many runs; the best run is bold: runs[best]
    when given (the sweep's winner by its metric), else the one with the highest peak."""
    runs = [(str(label), list(rows)) for label, rows in runs]
    with _drawing():
        if not runs:
            return _message_figure(path, "No runs", title)
        curves = [(label, *_run_curve(rows, "accuracy")) for label, rows in runs]
        peaks = np.array([float(np.nanmax(c[2])) if _has(c[2]) else -np.inf for c in curves])
        if best is None and np.isfinite(peaks).any():
            best = int(np.argmax(peaks))
        few = len(runs) <= 8
        colors = _colors(len(runs)) if few else [MUTED] * len(runs)

        fig = _figure((9.0, 4.8) if few else WIDE)
        ax = fig.add_subplot()
        all_ep = []
        sources = set()
        for r, (label, ep, acc, src) in enumerate(curves):
            all_ep.append(ep)
            sources.add(src)
            if r == best:
                continue
            ax.plot(ep, acc, color=colors[r], linewidth=1.0, alpha=0.75,
                    marker="o" if len(ep) == 1 else None, label=label if few else None)
        if best is not None:
            label, ep, acc, src = curves[best]
            ax.plot(ep, acc, color=BAD_COLOR if not few else colors[best], linewidth=2.8, zorder=5,
                    marker="o" if len(ep) == 1 else None,
                    label=f"best: {label} ({_fmt_pct(peaks[best])})")
        if not few:
            ax.plot([], [], color=MUTED, linewidth=1.0, label=f"other runs ({len(runs) - 1})")
        _int_epochs(ax, np.concatenate(all_ep))
        _percent_axis(ax)
        ax.set_xlabel("Epoch")
        ax.set_ylabel(("validation" if sources == {"val"} else
                       "train" if sources == {"train"} else "validation / train") + " accuracy")
        ax.set_title(f"{title} ({len(runs)} runs)")
        if few:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            ax.legend(loc="lower right")
        return _save(fig, path)


# --------------------------------------------------------------------------- 11. lr range test


def lr_range_plot(lrs, losses, path, suggestion: float | None = None,
                  title: str = "Learning-rate range test") -> Path:
    """Loss vs learning rate (log x): raw loss faint, smoothed (EMA) bold, suggestion marked.

    The y-range is clipped so a final divergence does not flatten the curve.
    """
    lrs = np.array([_num(v) for v in np.ravel(np.asarray(lrs, dtype=object))])
    losses = np.array([_num(v) for v in np.ravel(np.asarray(losses, dtype=object))])
    with _drawing():
        keep = np.isfinite(lrs) & (lrs > 0)
        lrs, losses = lrs[keep], losses[keep]
        if lrs.size == 0 or not _has(losses):
            return _message_figure(path, "No learning-rate range data", title)
        smooth = ema(losses)
        fig = _figure()
        ax = fig.add_subplot()
        ax.plot(lrs, losses, color=TRAIN_COLOR, alpha=0.3, linewidth=1.0, label="loss (raw)")
        ax.plot(lrs, smooth, color=TRAIN_COLOR, linewidth=2.4, label="loss (smoothed)")
        ax.set_xscale("log")
        if lrs.min() == lrs.max():
            ax.set_xlim(lrs.min() / 2, lrs.max() * 2)
        fin = smooth[np.isfinite(smooth)]
        lo, first, top = float(fin.min()), float(fin[0]), float(fin.max())
        hi = min(top, first + 1.5 * max(first - lo, 1e-12))
        if hi > lo:
            pad = 0.08 * (hi - lo)
            ax.set_ylim(lo - pad, hi + pad)
        if suggestion is not None and np.isfinite(_num(suggestion)) and float(suggestion) > 0:
            s = float(suggestion)
            ax.axvline(s, color=BAD_COLOR, linestyle="--", linewidth=1.5,
                       label=f"suggested lr = {s:.2e}")
            ok = np.isfinite(smooth)
            if ok.sum() >= 1 and lrs[ok].min() <= s <= lrs[ok].max():
                order = np.argsort(lrs[ok])
                ys = float(np.interp(np.log(s), np.log(lrs[ok][order]), smooth[ok][order]))
                ax.plot([s], [ys], marker="o", color=BAD_COLOR, markersize=7, zorder=5)
        ax.set_xlabel("Learning rate (log scale)")
        ax.set_ylabel("Loss")
        ax.set_title(title)
        ax.legend(loc="best")
        return _save(fig, path)
