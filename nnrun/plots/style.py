"""The look shared by every figure, and the small helpers the figure modules share.

* white background, light grid, top/right spines removed, 120 dpi;
* Okabe-Ito colour-blind-friendly palette (train = blue, validation = orange);
* images in grey (0 = black), nearest-neighbour, no ticks; weights in ``"RdBu_r"`` symmetric
  around 0; confusion matrices in ``"Blues"``; sweep heat maps in ``"viridis"``.

Figures are ``matplotlib.figure.Figure`` objects with their own Agg canvas: no pyplot, so
importing nnrun never changes the backend of the program (or notebook) that imports it, and
there is no global figure registry to leak into. The style is applied with ``rc_context``
around each drawing function, because artists read rcParams when they are created and saved.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap, to_rgb
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, MaxNLocator

from nnrun.fileio import atomic_path
from nnrun.fmt import finite

PathLike = str | os.PathLike

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

RC: dict[str, Any] = {
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

Draw = TypeVar("Draw", bound=Callable[..., Path])


def styled(draw: Draw) -> Draw:
    """Run a drawing function inside the shared style."""
    @functools.wraps(draw)
    def in_style(*args, **kwargs):
        with matplotlib.rc_context(RC):
            return draw(*args, **kwargs)
    return in_style  # type: ignore[return-value]


def new_figure(figsize: tuple[float, float] = WIDE, layout: str = "constrained") -> Figure:
    """A figure on its own Agg canvas; ``layout="compressed"`` for fixed-aspect images, whose
    space it shares out evenly instead of leaving it on one side."""
    fig = Figure(figsize=figsize, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: PathLike) -> Path:
    """Write the figure as one PNG, atomically; the figure is dropped with its last reference."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, facecolor="white")
    return path


def message_figure(path: PathLike, message: str, title: str | None = None) -> Path:
    """A small PNG that says why there is nothing to draw."""
    fig = new_figure((6.0, 2.5))
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=13, color="#666666",
            transform=ax.transAxes)
    if title:
        fig.suptitle(title)
    return save(fig, path)


def colormap(name: str) -> Colormap:
    return matplotlib.colormaps[name]


def colors_for(n: int) -> list:
    """The palette for a few series; a qualitative or sequential colormap beyond that."""
    if n <= len(PALETTE):
        return PALETTE[:n]
    if n <= 20:
        return [colormap("tab20")(i) for i in range(n)]
    return [colormap("viridis")(x) for x in np.linspace(0.0, 0.9, n)]


def text_color(rgb) -> str:
    """Black or white text, whichever reads better on this background."""
    r, g, b = to_rgb(rgb)
    return "white" if (0.299 * r + 0.587 * g + 0.114 * b) < 0.5 else "#222222"


def integer_epochs(ax: Axes, epochs: np.ndarray) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    known = epochs[np.isfinite(epochs)]
    if known.size and known.min() == known.max():
        ax.set_xlim(known[0] - 0.5, known[0] + 0.5)


MAX_TICK_DECIMALS = 12


class TickFormatter(Formatter):
    """The one tick formatter of every percent and value axis: all labels of an axis share one
    number of decimals, the fewest that write each tick exactly, so 2.5 % steps read 92.5%,
    95.0% and close ticks never read alike (96.25%, 96.50%, not 96%, 96%). Axes whose largest
    tick is below 1e-3 or from 1e5 up are in scientific notation, with shared mantissa decimals.
    ``percent`` shows fractions of 1 as percentages."""

    def __init__(self, percent: bool = False):
        self.percent = percent
        self.notation, self.decimals = "f", 0

    def set_locs(self, locs) -> None:
        super().set_locs(locs)
        self.notation, self.decimals = tick_notation([self.scaled(v) for v in locs])

    def __call__(self, x, pos=None) -> str:
        return number_text(self.scaled(x), self.notation, self.decimals) + ("%" if self.percent else "")

    def scaled(self, x) -> float:
        return 100.0 * float(x) if self.percent else float(x)


def tick_notation(values: Sequence[float]) -> tuple[str, int]:
    """("f" or "e", decimals): the fewest decimals that write every value exactly and distinctly."""
    known = sorted({v for v in values if math.isfinite(v)})
    largest = max((abs(v) for v in known), default=0.0)
    notation = "e" if largest and (largest < 1e-3 or largest >= 1e5) else "f"
    steps = [b - a for a, b in zip(known, known[1:], strict=False)]
    tolerance = 1e-3 * (min(steps) if steps else (largest or 1.0))
    for decimals in range(MAX_TICK_DECIMALS + 1):
        texts = [number_text(v, notation, decimals) for v in known]
        exact = all(abs(float(t) - v) <= tolerance for t, v in zip(texts, known, strict=True))
        if exact and len(set(texts)) == len(texts):
            return notation, decimals
    return notation, MAX_TICK_DECIMALS


def number_text(v: float, notation: str, decimals: int) -> str:
    if notation == "e" and v == 0:
        return "0"
    text = f"{v:.{decimals}{notation}}"
    return text.lstrip("-") if float(text) == 0 else text  # no "-0.00" from a rounding error


def tick_labels(values: Sequence[float], percent: bool = False) -> list[str]:
    """The labels an axis with these tick values shows."""
    return TickFormatter(percent).format_ticks(list(values))


def value_axis(ax: Axes, axis: str = "y") -> None:
    """Tick labels with the decimals their step needs (losses, learning rates, scores)."""
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(TickFormatter())


def percent_axis(ax: Axes, axis: str = "y") -> None:
    """Tick labels as percentages of 1.0 (accuracies are fractions), with the decimals their step needs."""
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(TickFormatter(percent=True))


def bare_axes(ax: Axes) -> None:
    """No grid and no frame: for heat maps whose cells are the picture."""
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)


def floats(values: Iterable) -> np.ndarray:
    """Values as float64; None, non-numbers and infinities become NaN (drawn as gaps)."""
    return np.array([finite(v) for v in values], dtype=np.float64)


def column(rows: Sequence[Mapping], key: str) -> np.ndarray:
    return floats(r.get(key) for r in rows)


def epochs(rows: Sequence[Mapping]) -> np.ndarray:
    """The rows' ``epoch`` values, 1-based row numbers where missing."""
    ep = column(rows, "epoch")
    missing = ~np.isfinite(ep)
    ep[missing] = np.arange(1, len(rows) + 1, dtype=np.float64)[missing]
    return ep


def has_values(a: np.ndarray) -> bool:
    return bool(np.isfinite(a).any())


def run_curve(rows: Sequence[Mapping], metric: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(epochs, values, source) of one run's metric, preferring validation over train."""
    ep = epochs(rows)
    val = column(rows, f"val_{metric}")
    if has_values(val):
        return ep, val, "val"
    return ep, column(rows, f"train_{metric}"), "train"
