"""Figures of a hyper-parameter sweep: the metric against the parameters, and every trial's
accuracy curve. Which trial is best comes from the caller (``higher_is_better``, ``best``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Patch, Rectangle

from nnrun.fmt import compact, finite, pct, significant
from nnrun.metrics import metric_mode
from nnrun.plots.style import (
    BAD_COLOR,
    GOOD_COLOR,
    MUTED,
    TEXT,
    TRAIN_COLOR,
    WIDE,
    PathLike,
    bare_axes,
    colormap,
    colors_for,
    floats,
    integer_epochs,
    message_figure,
    new_figure,
    percent_axis,
    run_curve,
    save,
    styled,
    text_color,
    value_axis,
)
from nnrun.status import OK_STATUSES, PAUSED_STATUSES, Status


@styled
def sweep_plot(trials: Sequence[Mapping], param_names: Sequence[str], metric_name: str, path: PathLike,
               log_x: bool | None = None, higher_is_better: bool | None = None) -> Path:
    """Summarise a hyper-parameter sweep.

    * 1 parameter, numeric: metric vs value (log x if ``log_x`` or, when ``log_x`` is None, if
      all values > 0 and span > 10x); failed trials are red ``x`` marks along the bottom; the
      best trial is highlighted.
    * 1 parameter, non-numeric: bar per value (mean of its trials, dots for individual trials).
    * 2 parameters: heat map of the best metric per cell, values annotated.
    * >2 parameters: horizontal bars of trials ranked by metric.

    A trial fails when its metric is None/non-finite or its status is one of
    failed/error/diverged/crashed. ``higher_is_better`` defaults to False when the metric name
    mentions loss/error, else True.
    """
    trials = list(trials)
    names = list(param_names)
    hib = metric_mode(metric_name) == "max" if higher_is_better is None else bool(higher_is_better)
    if not trials or not names:
        return message_figure(path, "No trials to show", f"Sweep: {metric_name}")
    if len(names) == 1:
        values = [t.get("params", {}).get(names[0]) for t in trials]
        if all(_is_number(v) for v in values):
            return _sweep_1d(trials, names[0], values, metric_name, path, log_x, hib)
        return _sweep_categorical(trials, names[0], values, metric_name, path, hib)
    if len(names) == 2:
        return _sweep_2d(trials, names, metric_name, path, hib)
    return _sweep_ranked(trials, names, metric_name, path, hib)


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _trial_ok(t: Mapping) -> bool:
    return finite(t.get("metric")) is not None and t.get("status", Status.COMPLETED) in OK_STATUSES


def _outcomes(trials: Sequence[Mapping]) -> tuple[np.ndarray, np.ndarray]:
    """(metric per trial, NaN when missing; which trials succeeded)."""
    return floats(t.get("metric") for t in trials), np.array([_trial_ok(t) for t in trials])


def _best_index(metrics: np.ndarray, ok: np.ndarray, hib: bool) -> int | None:
    if not ok.any():
        return None
    return int(np.argmax(np.where(ok, metrics if hib else -metrics, -np.inf)))


def _title(metric_name: str, trials: Sequence[Mapping], hib: bool) -> str:
    n_failed, n_pruned = _counts(trials)
    s = f"Sweep: {metric_name} ({'higher' if hib else 'lower'} is better), {len(trials)} trials"
    return s + (f", {n_failed} failed" if n_failed else "") + (f", {n_pruned} pruned" if n_pruned else "")


def _counts(trials: Sequence[Mapping]) -> tuple[int, int]:
    """(failed, pruned): a pruned trial did not fail."""
    ok, pruned = _outcomes(trials)[1], _pruned(trials)
    return int((~(ok | pruned)).sum()), int(pruned.sum())


def _as_percent(metric_name: str, values: Iterable[float]) -> bool:
    """Accuracies that are fractions in [0, 1] are shown as percentages."""
    known = [v for v in values if np.isfinite(v)]
    return "acc" in metric_name.lower() and bool(known) and min(known) >= 0 and max(known) <= 1


def _metric_text(metric_name: str, v: float) -> str:
    return pct(v, 1) if _as_percent(metric_name, [v]) else significant(v)


def _metric_axis(ax: Axes, metric_name: str, metrics: np.ndarray, axis: str = "y") -> None:
    if _as_percent(metric_name, metrics):
        percent_axis(ax, axis)
    else:
        value_axis(ax, axis)


def _pruned(trials: Sequence[Mapping]) -> np.ndarray:
    """Which trials were pruned (or paused): they have a metric, but from fewer epochs."""
    return np.array([finite(t.get("metric")) is not None and t.get("status") in PAUSED_STATUSES for t in trials])


def _mark_failed(ax: Axes, x: np.ndarray, ok: np.ndarray) -> None:
    """Red crosses along the bottom edge where trials failed (a pruned trial did not fail)."""
    if (~ok).any():
        ax.scatter(x[~ok], np.full((~ok).sum(), 0.03), marker="x", color=BAD_COLOR, s=50,
                   linewidths=2, transform=ax.get_xaxis_transform(), zorder=3,
                   label=f"failed ({int((~ok).sum())})", clip_on=False)


# -- one numeric parameter ---------------------------------------------------------------------

def _sweep_1d(trials, name, values, metric_name, path, log_x, hib) -> Path:
    x = np.array([float(v) for v in values])
    m, ok = _outcomes(trials)
    pruned = _pruned(trials)
    fig = new_figure()
    ax = fig.add_subplot()
    if ok.any():
        _trial_points(ax, x, m, ok, metric_name, also=pruned)
    else:
        ax.set_ylim(0, 1)
        ax.text(0.5, 0.5, "all trials failed", ha="center", va="center", color=BAD_COLOR,
                transform=ax.transAxes)
    if pruned.any():
        ax.scatter(x[pruned], m[pruned], facecolor="none", edgecolor=MUTED, s=36, zorder=2,
                   label=f"pruned ({int(pruned.sum())}): its metric when stopped")
    _mark_failed(ax, x, ok | pruned)
    best = _best_index(m, ok, hib)
    if best is not None:
        label = f"best: {name}={compact(values[best])} → {_metric_text(metric_name, m[best])}"
        ax.scatter([x[best]], [m[best]], s=160, facecolor="none", edgecolor=BAD_COLOR, linewidths=2,
                   zorder=4, label=label)
    use_log = _use_log(x, log_x)
    _x_range(ax, x, use_log)
    ax.set_xlabel(name + (" (log scale)" if use_log else ""))
    ax.set_ylabel(metric_name)
    ax.set_title(_title(metric_name, trials, hib))
    ax.legend(loc="best")
    return save(fig, path)


def _trial_points(ax: Axes, x: np.ndarray, m: np.ndarray, ok: np.ndarray, metric_name: str,
                  also: np.ndarray | None = None) -> None:
    """Each trial a dot; the mean per distinct value joined by a thin line; the y range also
    holds the `also` trials (drawn by the caller)."""
    ux = np.unique(x[ok])
    means = np.array([m[ok & (x == u)].mean() for u in ux])
    ax.plot(ux, means, color=TRAIN_COLOR, alpha=0.5, linewidth=1.2, zorder=1)
    ax.scatter(x[ok], m[ok], color=TRAIN_COLOR, s=36, zorder=2, label="trial")
    shown = ok if also is None else ok | also
    lo, hi = float(m[shown].min()), float(m[shown].max())
    pad = 0.12 * (hi - lo) if hi > lo else (0.05 * abs(hi) if hi else 0.05)
    ax.set_ylim(lo - pad, hi + pad)
    _metric_axis(ax, metric_name, m[shown])


def _use_log(x: np.ndarray, log_x: bool | None) -> bool:
    """As asked, but never with values <= 0; by default when the values span over 10x."""
    positive = bool((x > 0).all())
    if log_x is None:
        return positive and x.max() / x.min() > 10
    return bool(log_x) and positive


def _x_range(ax: Axes, x: np.ndarray, use_log: bool) -> None:
    if use_log:
        ax.set_xscale("log")
        lx = np.log10(x)
        span = max(float(lx.max() - lx.min()), 0.5)
        ax.set_xlim(10 ** (lx.min() - 0.06 * span), 10 ** (lx.max() + 0.06 * span))
    else:
        span = float(x.max() - x.min()) or max(abs(float(x.max())), 1.0)
        ax.set_xlim(x.min() - 0.06 * span, x.max() + 0.06 * span)


# -- one categorical parameter -----------------------------------------------------------------

def _unique(values: Iterable) -> list:
    """Distinct values in first-seen order (numbers sorted); 1 and True stay distinct."""
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
    m, ok = _outcomes(trials)
    idx = np.array([_index_of(v, cats) for v in values])
    means = np.full(len(cats), np.nan)
    for c in range(len(cats)):
        chosen = ok & (idx == c)
        if chosen.any():
            means[c] = m[chosen].mean()
    best = _best_index(means, np.isfinite(means), hib)

    fig = new_figure((float(np.clip(0.9 * len(cats) + 3, 8.0, 16.0)), 4.5))
    ax = fig.add_subplot()
    colors = [GOOD_COLOR if c == best else MUTED for c in range(len(cats))]
    ax.bar(np.arange(len(cats)), np.nan_to_num(means), color=colors, width=0.6)
    if ok.any():
        ax.scatter(idx[ok], m[ok], color=TEXT, s=16, zorder=3, label="trial")
        _metric_axis(ax, metric_name, m[ok])
    pruned = _pruned(trials)
    if pruned.any():
        ax.scatter(idx[pruned], m[pruned], facecolor="none", edgecolor=TEXT, s=16, zorder=3,
                   label=f"pruned ({int(pruned.sum())}): its metric when stopped")
    _mark_failed(ax, idx, ok | pruned)
    for c, mean in enumerate(means):
        if np.isfinite(mean):
            ax.annotate(_metric_text(metric_name, mean), (c, mean), xytext=(0, 3),
                        textcoords="offset points", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(np.arange(len(cats)))
    ax.set_xticklabels([compact(c) for c in cats])
    ax.grid(axis="x", visible=False)
    ax.set_xlabel(name)
    ax.set_ylabel(metric_name)
    if best is not None:
        # The bars' own legend entry would take the first bar's colour: name the muted one.
        ax.legend(handles=[Patch(color=MUTED, label="mean of trials"), *ax.get_legend_handles_labels()[0],
                           Patch(color=GOOD_COLOR, label=f"best: {compact(cats[best])}")], loc="best")
    ax.set_title(_title(metric_name, trials, hib))
    return save(fig, path)


# -- two parameters ----------------------------------------------------------------------------

def _sweep_2d(trials, names, metric_name, path, hib) -> Path:
    vx = [t.get("params", {}).get(names[0]) for t in trials]
    vy = [t.get("params", {}).get(names[1]) for t in trials]
    ux, uy = _unique(vx), _unique(vy)
    if all(_is_number(v) for v in vx + vy) and len(ux) * len(uy) > 2 * len(trials):
        return _sweep_scatter(trials, names, vx, vy, metric_name, path, hib)  # sampled, not a grid
    grid, tried = _best_per_cell(trials, vx, vy, ux, uy, hib)
    w = float(np.clip(1.0 * len(ux) + 3.0, 6.5, 14.0))
    h = float(np.clip(0.7 * len(uy) + 2.0, 4.0, 10.0))
    fig = new_figure((w, h))
    ax = fig.add_subplot()
    # reversed when lower is better, so brighter is always better
    cmap = colormap("viridis" if hib else "viridis_r").with_extremes(bad="#f2f2f2")
    known = grid[np.isfinite(grid)]
    vmin, vmax = (float(known.min()), float(known.max())) if known.size else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = _around(vmin)
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto",
                   interpolation="nearest", origin="lower")
    bare_axes(ax)
    _cell_labels(ax, grid, tried, metric_name, lambda v: cmap(im.norm(v)), _pruned_cells(trials, vx, vy, ux, uy))
    if known.size:
        bi, bj = np.unravel_index(np.nanargmax(grid) if hib else np.nanargmin(grid), grid.shape)
        ax.add_patch(Rectangle((bj - 0.5, bi - 0.5), 1, 1, fill=False, edgecolor=BAD_COLOR, linewidth=2.5))
    ax.set_xticks(range(len(ux)))
    ax.set_xticklabels([compact(v) for v in ux])
    ax.set_yticks(range(len(uy)))
    ax.set_yticklabels([compact(v) for v in uy])
    ax.tick_params(length=0)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    title = _title(metric_name, trials, hib)
    ax.set_title(title + ("\nbest cell outlined" if known.size else ""))
    cbar = fig.colorbar(im, ax=ax)
    cbar.set_label(metric_name)
    cbar.outline.set_visible(False)
    if known.size:
        _metric_axis(cbar.ax, metric_name, known)
    return save(fig, path)


def _best_per_cell(trials, vx, vy, ux, uy, hib) -> tuple[np.ndarray, np.ndarray]:
    """(best metric per (y, x) cell, NaN where none succeeded; which cells were tried)."""
    grid = np.full((len(uy), len(ux)), np.nan)
    tried = np.zeros(grid.shape, dtype=bool)
    for t, a, b in zip(trials, vx, vy, strict=True):
        i, j = _index_of(b, uy), _index_of(a, ux)
        tried[i, j] = True
        if _trial_ok(t):
            v, current = finite(t["metric"]), grid[i, j]
            if not np.isfinite(current) or (v > current if hib else v < current):
                grid[i, j] = v
    return grid, tried


def _around(v: float) -> tuple[float, float]:
    """A colour range around a single value (5 % of it each side)."""
    pad = 0.05 * abs(v) or 0.5
    return v - pad, v + pad


def _pruned_cells(trials, vx, vy, ux, uy) -> np.ndarray:
    cells = np.zeros((len(uy), len(ux)), dtype=bool)
    for a, b, pruned in zip(vx, vy, _pruned(trials), strict=True):
        cells[_index_of(b, uy), _index_of(a, ux)] |= bool(pruned)
    return cells


def _cell_labels(ax: Axes, grid: np.ndarray, tried: np.ndarray, metric_name: str, color_of,
                 pruned: np.ndarray) -> None:
    """The metric in each cell; a cell without a finished trial says pruned, failed or – (not tried)."""
    for (i, j), v in np.ndenumerate(grid):
        if np.isfinite(v):
            ax.text(j, i, _metric_text(metric_name, v), ha="center", va="center", fontsize=9,
                    color=text_color(color_of(v)))
        else:
            text, color = ("pruned", MUTED) if pruned[i, j] else ("failed", BAD_COLOR) if tried[i, j] else ("–", "#999999")
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)


def _sweep_scatter(trials, names, vx, vy, metric_name, path, hib) -> Path:
    """Two sampled parameters (random or tpe search): one point per trial, coloured by its metric;
    pruned trials hollow, failed ones crosses, the best outlined."""
    x, y = np.array(vx, dtype=float), np.array(vy, dtype=float)
    m, ok = _outcomes(trials)
    pruned = _pruned(trials)
    fig = new_figure()
    ax = fig.add_subplot()
    cmap = colormap("viridis" if hib else "viridis_r")
    known = m[ok]
    vmin, vmax = (float(known.min()), float(known.max())) if known.size else (0.0, 1.0)
    vmin, vmax = _around(vmin) if vmin == vmax else (vmin, vmax)
    if ok.any():
        points = ax.scatter(x[ok], y[ok], c=m[ok], cmap=cmap, vmin=vmin, vmax=vmax, s=70, zorder=3,
                            edgecolor="white", linewidths=0.6)
        cbar = fig.colorbar(points, ax=ax)
        cbar.set_label(metric_name)
        cbar.outline.set_visible(False)
        _metric_axis(cbar.ax, metric_name, known)
    if pruned.any():
        ax.scatter(x[pruned], y[pruned], facecolor="none", edgecolor=MUTED, s=50, zorder=2,
                   label=f"pruned ({int(pruned.sum())})")
    failed = ~(ok | pruned)
    if failed.any():
        ax.scatter(x[failed], y[failed], marker="x", color=BAD_COLOR, s=50, zorder=2, label=f"failed ({int(failed.sum())})")
    best = _best_index(m, ok, hib)
    if best is not None:
        ax.scatter([x[best]], [y[best]], s=260, facecolor="none", edgecolor=BAD_COLOR, linewidths=2, zorder=4,
                   label=f"best: {compact(vx[best])}, {compact(vy[best])} → {_metric_text(metric_name, m[best])}")
    for axis, values, name in (("x", x, names[0]), ("y", y, names[1])):
        log = _use_log(values, None) and values.max() / values.min() > 100  # rates, not momenta
        if log:
            (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        (ax.set_xlabel if axis == "x" else ax.set_ylabel)(name + (" (log scale)" if log else ""))
    ax.legend(loc="best", fontsize=8)
    ax.set_title(_title(metric_name, trials, hib))
    return save(fig, path)


# -- three or more parameters ------------------------------------------------------------------

def _sweep_ranked(trials, names, metric_name, path, hib, max_rows: int = 40) -> Path:
    m, ok = _outcomes(trials)
    order = np.argsort(np.where(ok, -m if hib else m, np.inf), kind="stable")[:max_rows]
    labels = [", ".join(f"{p}={compact(trials[i].get('params', {}).get(p))}" for p in names)
              for i in order]
    n = len(order)
    fig = new_figure((float(np.clip(0.06 * max(map(len, labels)) + 6.0, 8.0, 14.0)), 0.32 * n + 1.6))
    ax = fig.add_subplot()
    vals = np.where(ok[order], m[order], 0.0)
    colors = [GOOD_COLOR if r == 0 and ok[order[0]] else (TRAIN_COLOR if ok[i] else MUTED)
              for r, i in enumerate(order)]
    ax.barh(np.arange(n), vals, color=colors, height=0.7)
    known = m[ok]
    span = float(known.max()) if known.size else 1.0
    for r, i in enumerate(order):
        text = _ranked_text(trials[i], m[i], ok[i], metric_name)
        ax.text(vals[r] + 0.01 * span if ok[i] else 0.0, r, " " + text, va="center", fontsize=8,
                color=TEXT if ok[i] else MUTED if trials[i].get("status") in PAUSED_STATUSES else BAD_COLOR)
    ax.set_yticks(np.arange(n))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_ylim(n - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="y", visible=False)
    if known.size:
        ax.set_xlim(0, span * 1.15 if span > 0 else 1.0)
        _metric_axis(ax, metric_name, known, axis="x")
    ax.set_xlabel(metric_name)
    title = _title(metric_name, trials, hib)
    ax.set_title(title + (f" (top {n} shown)" if n < len(trials) else ""))
    return save(fig, path)


def _ranked_text(trial: Mapping, metric: float, ok: bool, metric_name: str) -> str:
    if ok:
        return _metric_text(metric_name, metric)
    return str(trial.get("status") or Status.FAILED)


# -- curves ------------------------------------------------------------------------------------

@styled
def sweep_curves(runs: Sequence[tuple[str, Sequence[Mapping]]], path: PathLike,
                 title: str = "Sweep: accuracy curves", best: int | None = None,
                 faded: Iterable[int] = ()) -> Path:
    """Accuracy (validation, else train) vs epoch for many runs; runs[best] (the sweep's winner
    by its metric, when given) is bold; the `faded` ones (pruned trials) are thin grey lines
    ending in a cross where they stopped. Labels are the caller's (a sweep puts each trial's
    metric in it)."""
    runs = [(str(label), list(rows)) for label, rows in runs]
    if not runs:
        return message_figure(path, "No runs", title)
    faded = set(faded) - {best}
    curves = [(label, *run_curve(rows, "accuracy")) for label, rows in runs]
    few = len(runs) - len(faded) <= 8
    colors = colors_for(len(runs)) if few else [MUTED] * len(runs)

    fig = new_figure((9.0, 4.8) if few else WIDE)
    ax = fig.add_subplot()
    for r in sorted(faded):
        _, ep, acc, _ = curves[r]
        ax.plot(ep, acc, color=MUTED, linewidth=0.9, alpha=0.45)
        ax.plot(ep[-1:], acc[-1:], color=MUTED, marker="x", markersize=5, alpha=0.7, linestyle="none")
    for r, (label, ep, acc, _) in enumerate(curves):
        if r != best and r not in faded:
            ax.plot(ep, acc, color=colors[r], linewidth=1.0, alpha=0.75,
                    marker="o" if len(ep) == 1 else None, label=label if few else None)
    if best is not None:
        label, ep, acc, _ = curves[best]
        ax.plot(ep, acc, color=colors[best] if few else BAD_COLOR, linewidth=2.8, zorder=5,
                marker="o" if len(ep) == 1 else None, label=f"best: {label}")
    if not few:
        ax.plot([], [], color=MUTED, linewidth=1.0, label=f"other runs ({len(runs) - len(faded) - 1})")
    if faded:
        ax.plot([], [], color=MUTED, linewidth=0.9, alpha=0.6, marker="x", markersize=5,
                label=f"pruned ({len(faded)})")
    integer_epochs(ax, np.concatenate([ep for _, ep, _, _ in curves]))
    percent_axis(ax)
    ax.set_xlabel("Epoch")
    ax.set_ylabel(_source_name({source for *_, source in curves}) + " accuracy")
    ax.set_title(f"{title} ({len(runs)} runs)")
    if few:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(loc="lower right")
    return save(fig, path)


def _source_name(sources: set[str]) -> str:
    if sources == {"val"}:
        return "validation"
    if sources == {"train"}:
        return "train"
    return "validation / train"
