"""Figures of one training run or a few: learning curves, the learning rate used, run comparison,
and the learning-rate range test."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from nnrun.fmt import compact, finite, metric, pct, significant
from nnrun.metrics import ema
from nnrun.plots.style import (
    BAD_COLOR,
    TRAIN_COLOR,
    VAL_COLOR,
    WIDE,
    PathLike,
    colors_for,
    column,
    epochs,
    floats,
    has_values,
    integer_epochs,
    message_figure,
    new_figure,
    percent_axis,
    run_curve,
    save,
    styled,
    value_axis,
)

CURVES = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


@styled
def learning_curves(rows: Sequence[Mapping], path: PathLike, title: str = "Learning curves",
                    best_epoch: int | None = None, monitor: str | None = None) -> Path:
    """Loss and accuracy vs epoch (train vs validation), the caller's best epoch marked.

    ``rows``: dicts with ``epoch`` (1-based), ``train_loss``, ``train_accuracy``, ``val_loss``,
    ``val_accuracy`` (val_* may be None/NaN). ``best_epoch`` is training's monitored best and
    ``monitor`` the metric it was chosen by (named in the legend); without ``best_epoch`` nothing
    is marked: a figure does not decide what is best.
    """
    rows = list(rows)
    if not rows:
        return message_figure(path, "No epochs recorded", title)
    ep = epochs(rows)
    curves = {key: column(rows, key) for key in CURVES}
    best = _row_of_epoch(ep, best_epoch)
    marker = "o" if len(rows) <= 30 else None

    fig = new_figure()
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, kind in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        _curve_panel(ax, ep, curves[f"train_{kind}"], curves[f"val_{kind}"], kind, marker, best)
    if has_values(curves["train_accuracy"]) or has_values(curves["val_accuracy"]):
        percent_axis(ax_acc)
    has_val = has_values(curves["val_loss"]) or has_values(curves["val_accuracy"])
    handles = [Line2D([], [], color=TRAIN_COLOR, marker=marker, label="train")]
    if has_val:
        handles.append(Line2D([], [], color=VAL_COLOR, marker=marker, label="validation"))
    if best is not None:
        handles.append(Line2D([], [], color=BAD_COLOR, marker="o", markerfacecolor="none",
                              markersize=8, markeredgewidth=1.8, linestyle="--",
                              label=_best_label(rows[best], int(ep[best]), monitor)))
    ax_acc.legend(handles=handles, loc="best")
    fig.suptitle(title if has_val else f"{title} (no validation data)")
    return save(fig, path)


def _row_of_epoch(ep: np.ndarray, epoch: int | None) -> int | None:
    rows = np.flatnonzero(ep == epoch) if epoch is not None else []
    return int(rows[0]) if len(rows) else None


def _curve_panel(ax: Axes, ep: np.ndarray, train: np.ndarray, val: np.ndarray, kind: str,
                 marker: str | None, best: int | None) -> None:
    if has_values(train):
        ax.plot(ep, train, color=TRAIN_COLOR, marker=marker, label="train")
    if has_values(val):
        ax.plot(ep, val, color=VAL_COLOR, marker=marker, label="validation")
    if best is not None:
        ax.axvline(ep[best], color="#888888", linestyle="--", linewidth=1, zorder=0)
        if np.isfinite(val[best]):
            ax.plot([ep[best]], [val[best]], marker="o", markersize=9, markerfacecolor="none",
                    markeredgecolor=BAD_COLOR, markeredgewidth=1.8, linestyle="none")
    if not (has_values(train) or has_values(val)):
        ax.text(0.5, 0.5, f"no {kind} recorded", ha="center", va="center", color="#888888",
                transform=ax.transAxes)
    ax.set_title(kind.capitalize())
    ax.set_xlabel("Epoch")
    ax.set_ylabel(kind)
    value_axis(ax)
    integer_epochs(ax, ep)


def _best_label(row: Mapping, epoch: int, monitor: str | None) -> str:
    """'best val_loss (epoch 7, 0.3120)'; without a monitor, the validation values of that epoch."""
    if monitor is not None:
        value = finite(row.get(monitor))
        shown = "" if value is None else f", {metric(monitor, value)}"
        return f"best {monitor} (epoch {epoch}{shown})"
    desc = f"epoch {epoch}"
    if finite(row.get("val_accuracy")) is not None:
        desc += f", {pct(row['val_accuracy'], 1)}"
    elif finite(row.get("val_loss")) is not None:
        desc += f", loss {significant(row['val_loss'])}"
    return f"best validation ({desc})"


@styled
def lr_schedule(rows: Sequence[Mapping], path: PathLike, title: str = "Learning-rate schedule") -> Path:
    """Learning rate (key ``lr``) vs epoch; log y-axis if all rates > 0 and span > 10x."""
    rows = list(rows)
    lr = column(rows, "lr")
    if not has_values(lr):
        return message_figure(path, "No learning rates recorded", title)
    ep = epochs(rows)
    fig = new_figure()
    ax = fig.add_subplot()
    ax.plot(ep, lr, color=TRAIN_COLOR, marker="o" if len(rows) <= 40 else None)
    known = lr[np.isfinite(lr)]
    if (known > 0).all() and known.max() / known.min() > 10:
        ax.set_yscale("log")
    else:
        value_axis(ax)
        ax.set_ylim(bottom=0)
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Learning rate")
    ax.set_title(f"{title}  (start {compact(float(known[0]))}, end {compact(float(known[-1]))})")
    integer_epochs(ax, ep)
    return save(fig, path)


@styled
def compare_curves(runs: Sequence[tuple[str, Sequence[Mapping]]], path: PathLike,
                   title: str = "Run comparison") -> Path:
    """Overlay accuracy and loss of several runs (validation, else train), one colour per run;
    the legend shows the caller's labels (nnrun compare puts each run's best epoch in them)."""
    runs = [(str(label), list(rows)) for label, rows in runs]
    if not runs:
        return message_figure(path, "No runs to compare", title)
    fig = new_figure((9.5, 4.5))
    ax_acc, ax_loss = fig.subplots(1, 2)
    handles, all_epochs = [], []
    for (label, rows), color in zip(runs, colors_for(len(runs)), strict=True):
        ep, acc, acc_source = run_curve(rows, "accuracy")
        _, loss, loss_source = run_curve(rows, "loss")
        all_epochs.append(ep)
        marker = "o" if len(rows) <= 1 else None
        ax_acc.plot(ep, acc, color=color, linestyle=_source_style(acc_source), marker=marker)
        ax_loss.plot(ep, loss, color=color, linestyle=_source_style(loss_source), marker=marker)
        handles.append(Line2D([], [], color=color, linestyle=_source_style(acc_source), label=label))
    for ax, name in ((ax_acc, "Accuracy"), (ax_loss, "Loss")):
        ax.set_title(name)
        ax.set_xlabel("Epoch")
        ax.set_ylabel(name.lower())
        integer_epochs(ax, np.concatenate(all_epochs))
    percent_axis(ax_acc)
    value_axis(ax_loss)
    fig.legend(handles=handles, loc="outside right upper", title="solid = validation\ndotted = train",
               title_fontsize=8, alignment="left")
    fig.suptitle(title)
    return save(fig, path)


def _source_style(source: str) -> str:
    return "-" if source == "val" else ":"


@styled
def lr_range_plot(lrs, losses, path: PathLike, suggestion: float | None = None,
                  title: str = "Learning-rate range test") -> Path:
    """Loss vs learning rate (log x): raw loss faint, smoothed (EMA) bold, suggestion marked.

    The y-range shows every loss, raw and smoothed, up to the lowest smoothed loss; above
    that, a final divergence is clipped so it does not flatten the curve.
    """
    lrs = floats(np.ravel(np.asarray(lrs, dtype=object)))
    losses = floats(np.ravel(np.asarray(losses, dtype=object)))
    keep = np.isfinite(lrs) & (lrs > 0)
    lrs, losses = lrs[keep], losses[keep]
    if lrs.size == 0 or not has_values(losses):
        return message_figure(path, "No learning-rate range data", title)
    smooth = ema(losses)
    fig = new_figure()
    ax = fig.add_subplot()
    ax.plot(lrs, losses, color=TRAIN_COLOR, alpha=0.3, linewidth=1.0, label="loss (raw)")
    ax.plot(lrs, smooth, color=TRAIN_COLOR, linewidth=2.4, label="loss (smoothed)")
    ax.set_xscale("log")
    if lrs.min() == lrs.max():
        ax.set_xlim(lrs.min() / 2, lrs.max() * 2)
    _loss_limits(ax, losses, smooth)
    suggested = finite(suggestion)
    if suggested is not None and suggested > 0:
        _mark_suggestion(ax, suggested, lrs, smooth)
    ax.set_xlabel("Learning rate (log scale)")
    ax.set_ylabel("Loss")
    value_axis(ax)
    ax.set_title(title)
    ax.legend(loc="best")
    return save(fig, path)


def _loss_limits(ax: Axes, raw: np.ndarray, smooth: np.ndarray) -> None:
    """From the lowest raw or smoothed loss to the highest before the smoothed minimum, or to
    1.5x the smoothed curve's initial drop above its start if that is higher: the blow-up at the
    end may leave the frame, the descent never does."""
    lowest = int(np.nanargmin(smooth))
    start, bottom = float(smooth[np.isfinite(smooth)][0]), float(smooth[lowest])
    both = np.concatenate([raw, smooth])
    descent = np.concatenate([raw[:lowest + 1], smooth[:lowest + 1]])
    lo, top = float(np.nanmin(both[np.isfinite(both)])), float(np.nanmax(both[np.isfinite(both)]))
    hi = max(float(np.nanmax(descent[np.isfinite(descent)])),
             min(top, start + 1.5 * max(start - bottom, 1e-12)))
    if hi > lo:
        pad = 0.08 * (hi - lo)
        ax.set_ylim(lo - pad, hi + pad)


def _mark_suggestion(ax: Axes, lr: float, lrs: np.ndarray, smooth: np.ndarray) -> None:
    ax.axvline(lr, color=BAD_COLOR, linestyle="--", linewidth=1.5, label=f"suggested lr = {lr:.2e}")
    ok = np.isfinite(smooth)
    if ok.any() and lrs[ok].min() <= lr <= lrs[ok].max():
        order = np.argsort(lrs[ok])
        y = float(np.interp(np.log(lr), np.log(lrs[ok][order]), smooth[ok][order]))
        ax.plot([lr], [y], marker="o", color=BAD_COLOR, markersize=7, zorder=5)


DIAGNOSTIC_PANELS = (("grad_norm", "Gradient norm", True), ("update_ratio", "Update / weight per step", True),
                     ("dead_fraction", "Dead ReLU units", False), ("saturated_fraction", "Saturated units", False))


@styled
def diagnostics_plot(rows: Sequence[Mapping], path: PathLike, title: str = "Diagnostics") -> Path:
    """Per layer against epoch: the gradient norm and the update-to-weight ratio (log scales),
    the fractions of dead ReLU and of saturated tanh/sigmoid units. ``rows``: diagnostics.csv's
    (``epoch``, ``layer``, ``type``, ``activation`` and the four measures; None where a measure
    does not apply). Panels without values are left out."""
    rows = list(rows)
    panels = [p for p in DIAGNOSTIC_PANELS if has_values(column(rows, p[0]))]
    if not panels:
        return message_figure(path, "No diagnostics recorded", title)
    layers = sorted({r["layer"] for r in rows if isinstance(r.get("layer"), int)})
    colors = dict(zip(layers, colors_for(len(layers)), strict=True))
    fig = new_figure((4.0 * len(panels), 3.8) if len(panels) > 2 else WIDE)
    legend: dict[str, Line2D] = {}
    for ax, (key, label, log) in zip(np.atleast_1d(fig.subplots(1, len(panels), sharex=True)), panels, strict=True):
        for layer in layers:
            mine = [r for r in rows if r.get("layer") == layer]
            values = column(mine, key)
            if has_values(values):
                kind = f"{mine[0].get('type')}" + (f" ({mine[0]['activation']})" if mine[0].get("activation")
                                                   not in (None, "linear", mine[0].get("type")) else "")
                (line,) = ax.plot(epochs(mine), values, color=colors[layer], marker="o" if len(mine) <= 30 else None)
                legend.setdefault(f"{layer} {kind}", line)
        _diagnostic_axis(ax, label, log and bool((column(rows, key) > 0).any()), epochs(rows))
    fig.legend(list(legend.values()), list(legend), loc="outside lower center", ncol=min(4, len(legend)))
    fig.suptitle(title)
    return save(fig, path)


def _diagnostic_axis(ax: Axes, label: str, log: bool, ep: np.ndarray) -> None:
    ax.set_title(label)
    ax.set_xlabel("Epoch (0: the initial weights)" if np.nanmin(ep) == 0 else "Epoch")
    if log:
        ax.set_yscale("log")
    else:
        percent_axis(ax)
        ax.set_ylim(-0.02, 1.02)
    integer_epochs(ax, ep)
