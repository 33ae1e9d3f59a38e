"""Figures of a trained model on a split: confusion matrix, misclassified samples, predicted
probabilities, per-class scores, and what the first layer's weights learned."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator

from nnrun.fmt import fixed, pct
from nnrun.plots.style import (
    BAD_COLOR,
    GOOD_COLOR,
    IMAGE_CMAP,
    MUTED,
    PALETTE,
    TEXT,
    WEIGHT_CMAP,
    WIDE,
    PathLike,
    bare_axes,
    colormap,
    floats,
    message_figure,
    new_figure,
    percent_axis,
    save,
    styled,
    text_color,
    value_axis,
)


@styled
def confusion_matrix_plot(cm, class_names: Sequence[str] | None, path: PathLike,
                          title: str = "Confusion matrix") -> Path:
    """Counts in each cell, shaded by the row-normalised fraction (rows = true class)."""
    cm = np.asarray(cm, dtype=np.int64)
    k = cm.shape[0]
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(k)]
    row_sums = cm.sum(axis=1, keepdims=True).astype(np.float64)
    frac = np.zeros(cm.shape, dtype=np.float64)
    np.divide(cm, row_sums, out=frac, where=row_sums > 0)
    n = int(cm.sum())
    acc = float(np.trace(cm)) / n if n else 0.0

    side = float(np.clip(0.55 * k + 2.5, 5.5, 14.0))
    fig = new_figure((side + 0.6, side + 0.2))
    ax = fig.add_subplot()
    cmap = colormap("Blues")
    im = ax.imshow(frac, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest", origin="upper")
    bare_axes(ax)
    if k <= 30:
        _cell_counts(ax, cm, frac, cmap)
    _class_ticks(ax, names)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.set_title(f"{title}\naccuracy {pct(acc, 1)} on {n} samples")
    cbar = fig.colorbar(im, ax=ax, shrink=0.8)
    cbar.set_label("fraction of true class")
    cbar.outline.set_visible(False)
    return save(fig, path)


def _cell_counts(ax: Axes, cm: np.ndarray, frac: np.ndarray, cmap) -> None:
    k = cm.shape[0]
    size = 10 if k <= 10 else (8 if k <= 20 else 6)
    for i in range(k):
        for j in range(k):
            color = text_color(cmap(frac[i, j])) if cm[i, j] else "#b8b8b8"
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=size, color=color)


def _class_ticks(ax: Axes, names: list[str]) -> None:
    ax.set_xticks(range(len(names)))
    ax.set_yticks(range(len(names)))
    slanted = max((len(s) for s in names), default=0) > 3
    ax.set_xticklabels(names, rotation=45 if slanted else 0, ha="right" if slanted else "center",
                       rotation_mode="anchor")
    ax.set_yticklabels(names)
    ax.tick_params(length=0)


@styled
def misclassified_grid(images, y_true, y_pred, confidence, class_names: Sequence[str] | None,
                       path: PathLike, max_images: int = 36) -> Path:
    """Grid of wrong predictions, most confident mistakes first.

    ``images`` (N,H,W) / (N,1,H,W) / (N,3,H,W); the caller passes only the misclassified
    samples. ``confidence`` is the predicted-class probability in [0, 1] (may be None: original
    order is kept and no percentage shown).
    """
    n_total = 0 if images is None else len(images)
    if n_total == 0:
        return message_figure(path, "No misclassified samples", "Misclassified samples")
    imgs = _images_batch(images)
    yt = np.asarray(y_true).astype(np.int64).ravel()
    yp = np.asarray(y_pred).astype(np.int64).ravel()
    conf = None if confidence is None else np.asarray(confidence, dtype=np.float64).ravel()
    order = (np.argsort(-np.nan_to_num(conf, nan=-1.0), kind="stable") if conf is not None
             else np.arange(n_total))[: max(1, int(max_images))]

    fig, axes = _tile_figure(len(order), tile_w=1.65, tile_h=1.75)
    for ax, i in zip(axes, order, strict=False):
        _show_image(ax, imgs[i])
        label = f"true {_class_name(class_names, yt[i])} → pred {_class_name(class_names, yp[i])}"
        if conf is not None and np.isfinite(conf[i]):
            label += f" ({pct(conf[i], 0)})"
        ax.set_title(label, fontsize=8, fontweight="normal", pad=3)
    shown = f"{len(order)} of {n_total}" if len(order) < n_total else f"all {n_total}"
    fig.suptitle(f"Misclassified samples: {shown}" + (", most confident first" if conf is not None else ""))
    return save(fig, path)


def _class_name(class_names: Sequence[str] | None, c: int) -> str:
    if class_names is not None and 0 <= c < len(class_names):
        return str(class_names[c])
    return str(c)


@styled
def predictions_plot(images, probabilities, y_true, class_names: Sequence[str] | None, path: PathLike,
                     max_samples: int = 8) -> Path:
    """One row per sample: the image, then a bar chart of its class probabilities.

    The true-class bar is green, the predicted class (if different) vermillion.
    """
    if images is None or len(images) == 0:
        return message_figure(path, "No samples", "Predictions")
    imgs = _images_batch(images)
    probs = np.asarray(probabilities, dtype=np.float64)
    yt = np.asarray(y_true).astype(np.int64).ravel()
    n = min(len(imgs), max(1, int(max_samples)))
    k = probs.shape[1]
    names = [str(c) for c in class_names] if class_names is not None else [str(i) for i in range(k)]
    label_all = k <= 15
    row_h = max(1.5, 0.15 * k + 0.3) if label_all else 1.6

    fig = new_figure((8.0, n * row_h + 0.8))
    axes = fig.subplots(n, 2, squeeze=False, gridspec_kw={"width_ratios": [1, 3.2]})
    for r in range(n):
        _show_image(axes[r, 0], imgs[r])
        _probability_bars(axes[r, 1], np.nan_to_num(probs[r]), int(yt[r]), names, label_all,
                          last=r == n - 1)
    handles = [Patch(color=GOOD_COLOR, label="true class"),
               Patch(color=BAD_COLOR, label="predicted (when wrong)"),
               Patch(color=MUTED, label="other classes")]
    fig.legend(handles=handles, loc="outside lower center", ncol=3)
    fig.suptitle("Predictions")
    return save(fig, path)


def _probability_bars(ax: Axes, p: np.ndarray, true: int, names: list[str], label_all: bool,
                      last: bool) -> None:
    k = len(p)
    pred = int(np.argmax(p))
    colors = [MUTED] * k
    colors[pred] = BAD_COLOR
    colors[true] = GOOD_COLOR
    ax.barh(np.arange(k), p, color=colors, height=0.75)
    ax.set_xlim(0, 1)
    ax.set_ylim(k - 0.5, -0.5)
    percent_axis(ax, "x")
    ax.grid(axis="y", visible=False)
    ticks = np.arange(k) if label_all else sorted({true, pred})
    ax.set_yticks(ticks)
    ax.set_yticklabels([names[t] for t in ticks], fontsize=7 if k > 10 else 8)
    ax.tick_params(axis="y", length=0)
    if last:
        ax.set_xlabel("Predicted probability")
    else:
        ax.tick_params(axis="x", labelbottom=False)
    right = pred == true
    ax.set_title(f"true {names[true]}, predicted {names[pred]} ({pct(p[pred], 1)}) – "
                 f"{'correct' if right else 'wrong'}",
                 fontsize=9, loc="left", fontweight="normal", color=TEXT if right else BAD_COLOR, pad=3)


@styled
def prepared_input_plot(image, probabilities, class_names: Sequence[str], path: PathLike,
                        title: str = "Prediction") -> Path:
    """One input as the network saw it (after preparation and scaling; None when it is no
    image), beside a bar chart of its class probabilities, the predicted class highlighted."""
    probs = np.nan_to_num(np.asarray(probabilities, dtype=np.float64))
    k = len(probs)
    names = [str(c) for c in class_names]
    label_all = k <= 15
    fig = new_figure((8.0, max(2.2, 0.18 * k + 0.9) if label_all else 2.6))
    if image is None:
        bars = fig.subplots(1, 1)
    else:
        ax, bars = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2.4]})
        _show_image(ax, _images_batch(np.asarray(image)[None])[0])
        ax.set_title("what the network saw", fontsize=9, fontweight="normal")
    pred = int(np.argmax(probs))
    _probability_bars(bars, probs, pred, names, label_all, last=True)
    bars.set_title(f"predicted {names[pred]} ({pct(probs[pred], 1)})", fontsize=9, loc="left",  # no truth to show
                   fontweight="normal", color=TEXT, pad=3)
    fig.suptitle(title.replace("$", r"\$"))  # a file name is text, not mathtext
    return save(fig, path)


@styled
def per_class_plot(report: Mapping, path: PathLike, title: str = "Per-class metrics") -> Path:
    """Grouped precision/recall/F1 bars per class from ``metrics.classification_report``."""
    classes = list(report.get("classes", []))
    if not classes:
        return message_figure(path, "No classes", title)
    k = len(classes)
    x = np.arange(k)
    width = 0.8 / 3
    fig = new_figure((float(np.clip(0.65 * k + 3.0, 8.0, 20.0)), 4.5))
    ax = fig.add_subplot()
    for i, (key, color) in enumerate((("precision", PALETTE[0]), ("recall", PALETTE[1]), ("f1", PALETTE[2]))):
        ax.bar(x + (i - 1) * width, np.nan_to_num(floats(c.get(key) for c in classes)),
               width=width * 0.95, color=color, label="F1" if key == "f1" else key)
    macro = report.get("macro", {}).get("f1")
    if macro is not None:
        ax.axhline(float(macro), color="#555555", linestyle="--", linewidth=1,
                   label=f"macro F1 {fixed(macro, 3)}")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{c.get('name', i)}\nn={c.get('support', '?')}" for i, c in enumerate(classes)],
                       fontsize=8 if k > 12 else 9)
    ax.tick_params(axis="x", length=0)
    ax.grid(axis="x", visible=False)
    ax.set_ylim(0, 1.05)
    value_axis(ax)
    ax.set_xlim(-0.6, k - 0.4)
    ax.set_ylabel("Score")
    ax.set_xlabel("Class")
    acc = report.get("accuracy")
    ax.set_title(title + (f"  (accuracy {pct(acc, 1)})" if acc is not None else ""))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    never = report.get("never_predicted") or []
    if never:
        ax.text(0.0, -0.22 if k <= 12 else -0.25, "never predicted: " + ", ".join(map(str, never)),
                transform=ax.transAxes, fontsize=8, color=BAD_COLOR, va="top")
    return save(fig, path)


@styled
def weights_plot(W, path: PathLike, kind: str, image_shape: Sequence[int] | None = None,
                 max_tiles: int = 64, title: str | None = None) -> Path:
    """Visualise a weight tensor with a diverging colormap symmetric around 0.

    * ``kind="conv"``: ``W`` is (out, in, kh, kw); one tile per filter showing the kernel of its
      single input channel, or the **mean over input channels** when in > 1.
    * ``kind="dense"`` with ``image_shape`` (C,H,W) or (H,W): ``W`` is (in, out); one tile per
      output unit j showing ``W[:, j]`` reshaped to the image (mean over C when C > 1).
    * ``kind="dense"`` without ``image_shape``: ``W`` as an (in x out) heat map.

    Tiles are each scaled to their own max |w| (red positive, blue negative); the default title
    assumes the first layer of that kind.
    """
    W = np.asarray(W, dtype=np.float64)
    if kind == "dense" and W.ndim == 2 and image_shape is None:
        return _weights_matrix(W, path, title)
    tiles, what, notes = _weight_tiles(W, kind, image_shape)
    n = min(len(tiles), max(1, int(max_tiles)))
    if n < len(tiles):
        notes.append(f"first {n} shown")
    if notes:
        what += "\n(" + ", ".join(notes) + ")"
    fig, ax = _mosaic_figure(tiles[:n])
    ax.set_title(title or what)
    return save(fig, path)


def _weight_tiles(W: np.ndarray, kind: str, image_shape: Sequence[int] | None
                  ) -> tuple[np.ndarray, str, list[str]]:
    """(tiles (n, h, w), default title, notes) for a conv kernel or a dense layer over an image."""
    if kind == "conv":
        if W.ndim != 4:
            raise ValueError(f"conv weights must be (out, in, kh, kw), got shape {W.shape}")
        out, cin, kh, kw = W.shape
        tiles = W[:, 0] if cin == 1 else W.mean(axis=1)
        return tiles, f"First conv layer: {out} filters {kh}x{kw}", (
            [f"mean over {cin} input channels"] if cin > 1 else [])
    if kind != "dense":
        raise ValueError(f"kind must be 'conv' or 'dense', got {kind!r}")
    if W.ndim != 2:
        raise ValueError(f"dense weights must be (in, out), got shape {W.shape}")
    n_in, out = W.shape
    shape = tuple(int(s) for s in image_shape)
    if int(np.prod(shape)) != n_in:
        raise ValueError(f"image_shape {shape} does not match {n_in} inputs")
    tiles = W.T.reshape((out, *shape))
    if len(shape) == 3:
        tiles = tiles.mean(axis=1)
    h, w = tiles.shape[1:]
    notes = [f"mean over {shape[0]} channels"] if len(shape) == 3 and shape[0] > 1 else []
    return tiles, f"First dense layer: {out} units, input weights as {h}x{w} images", notes


def _mosaic_figure(tiles: np.ndarray) -> tuple[Figure, Axes]:
    n, th, tw = tiles.shape
    mosaic, rows, cols = _mosaic(tiles)
    tile_in = float(np.clip(0.25 + 0.09 * max(th, tw), 0.5, 1.1))
    fig = new_figure((max(6.0, cols * tile_in + 2.0), max(3.0, rows * tile_in * th / tw + 0.9)), "compressed")
    ax = fig.add_subplot()
    im = ax.imshow(mosaic, cmap=colormap(WEIGHT_CMAP).with_extremes(bad="white"), vmin=-1.0, vmax=1.0,
                   interpolation="nearest", origin="upper")
    ax.set_axis_off()
    ax.add_collection(PatchCollection(
        [Rectangle((1 + c * (tw + 1) - 0.5, 1 + r * (th + 1) - 0.5), tw, th)
         for r, c in (divmod(i, cols) for i in range(n))],
        facecolor="none", edgecolor="#b0b0b0", linewidth=0.6))
    cbar = fig.colorbar(im, ax=ax, shrink=0.7, ticks=[-1, 0, 1], aspect=25)
    cbar.ax.set_yticklabels(["−max|w|", "0", "+max|w|"])
    cbar.set_label("weight, each tile scaled to its own max |w|", fontsize=8)
    cbar.outline.set_visible(False)
    return fig, ax


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


def _weights_matrix(W: np.ndarray, path: PathLike, title: str | None) -> Path:
    n_in, out = W.shape
    fig = new_figure(WIDE)
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
    return save(fig, path)


# -- images -----------------------------------------------------------------------------------

def _images_batch(images) -> np.ndarray:
    """Return (N, H, W) grey or (N, H, W, 3) RGB float images."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 2:  # (N, H*W) flattened square images
        side = math.isqrt(x.shape[1])
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


def _show_image(ax: Axes, img: np.ndarray) -> None:
    """Grey images auto-scaled by imshow; RGB min/max-scaled to [0, 1] when outside it."""
    if img.ndim == 3:
        known = img[np.isfinite(img)]
        lo, hi = (float(known.min()), float(known.max())) if known.size else (0.0, 1.0)
        if lo < 0.0 or hi > 1.0:
            img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
        ax.imshow(np.clip(np.nan_to_num(img), 0.0, 1.0), interpolation="nearest", origin="upper")
    else:
        ax.imshow(img, cmap=IMAGE_CMAP, interpolation="nearest", origin="upper")
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
    fig = new_figure((max(min_w, cols * tile_w + 0.4), rows * tile_h + top))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]
