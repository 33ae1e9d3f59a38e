"""nnrun.plots: every function writes a valid, decently sized PNG atomically, without pyplot and
without touching the importer's matplotlib backend; figures mark only the best they are given."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from nnrun import fmt, plots
from nnrun.metrics import classification_report, confusion_matrix, ema
from nnrun.plots import evaluation, style, sweeps, training

RNG = np.random.default_rng(0)
DIGITS = [str(i) for i in range(10)]


def check_png(path, tmp_path, min_width=400):
    """Exists, decodes, sensible size, no temp files left."""
    assert path.exists()
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    h, w = img.shape[:2]
    assert w >= min_width and h >= 200, (w, h)
    # not a blank canvas
    assert float(img[..., :3].std()) > 0.01
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    return img


def history(n=12, val=True):
    rows = []
    for e in range(1, n + 1):
        rows.append(
            {
                "epoch": e,
                "train_loss": 2.0 * math.exp(-0.3 * e) + 0.05,
                "train_accuracy": 1 - 0.8 * math.exp(-0.35 * e),
                "val_loss": (2.1 * math.exp(-0.25 * e) + 0.1 + 0.01 * e) if val else None,
                "val_accuracy": (0.95 - 0.8 * math.exp(-0.3 * e) - 0.002 * e) if val else float("nan"),
                "lr": 0.1 * 0.5 ** ((e - 1) // 3),
            }
        )
    return rows


# ------------------------------------------------------------------ curves


def test_learning_curves(tmp_path):
    out = plots.learning_curves(history(), tmp_path / "curves.png")
    assert out == tmp_path / "curves.png"
    check_png(out, tmp_path)


def test_learning_curves_no_validation(tmp_path):
    check_png(plots.learning_curves(history(val=False), tmp_path / "c.png"), tmp_path)


def test_learning_curves_single_epoch(tmp_path):
    check_png(plots.learning_curves(history(1), tmp_path / "c.png"), tmp_path)


def test_learning_curves_overwrites_atomically(tmp_path):
    p = tmp_path / "sub" / "c.png"
    plots.learning_curves(history(3), p)
    first = p.read_bytes()
    plots.learning_curves(history(8), p)
    assert p.read_bytes() != first
    check_png(p, tmp_path / "sub")


def legend_labels(monkeypatch, draw) -> list[str]:
    """The legend texts of the figure `draw` makes (caught before it is saved)."""
    figures = []
    monkeypatch.setattr(training, "save", lambda fig, path: figures.append(fig) or Path(path))
    draw()
    (fig,) = figures
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_learning_curves_mark_only_the_best_epoch_given(tmp_path, monkeypatch):
    rows = history()
    path = tmp_path / "c.png"
    assert legend_labels(monkeypatch, lambda: plots.learning_curves(rows, path)) == ["train", "validation"]
    assert legend_labels(monkeypatch, lambda: plots.learning_curves(rows, path, best_epoch=99)) == [
        "train", "validation"]
    best = legend_labels(monkeypatch, lambda: plots.learning_curves(rows, path, best_epoch=7))[-1]
    assert best == f"best validation (epoch 7, {fmt.pct(rows[6]['val_accuracy'], 1)})"
    best = legend_labels(monkeypatch, lambda: plots.learning_curves(rows, path, best_epoch=7,
                                                                   monitor="val_loss"))[-1]
    assert best == f"best val_loss (epoch 7, {fmt.fixed(rows[6]['val_loss'])})"


def test_lr_schedule_log_and_linear(tmp_path):
    check_png(plots.lr_schedule(history(20), tmp_path / "log.png"), tmp_path)
    flat = [{"epoch": e, "lr": 0.01} for e in range(1, 6)]
    check_png(plots.lr_schedule(flat, tmp_path / "flat.png"), tmp_path)
    check_png(plots.lr_schedule([{"epoch": 1, "lr": 0.1}], tmp_path / "one.png"), tmp_path)


def test_compare_curves(tmp_path):
    runs = [("sgd", history(10)), ("adam", history(8)), ("no-val", history(6, val=False))]
    check_png(plots.compare_curves(runs, tmp_path / "cmp.png"), tmp_path)


def test_sweep_curves(tmp_path):
    runs = [(f"trial {i}", history(5 + i % 4)) for i in range(12)]
    check_png(plots.sweep_curves(runs, tmp_path / "many.png"), tmp_path)
    check_png(plots.sweep_curves(runs[:3], tmp_path / "few.png"), tmp_path)


def test_lr_range_plot(tmp_path):
    lrs = np.geomspace(1e-6, 10, 100)
    losses = 2.3 - 1.5 / (1 + np.exp(-(np.log10(lrs) + 3))) + np.exp(np.log10(lrs) * 2) * 0.5
    losses = losses + RNG.normal(0, 0.05, size=100)
    losses[-3:] = [50.0, np.inf, np.nan]
    check_png(plots.lr_range_plot(lrs, losses, tmp_path / "lr.png", suggestion=3e-3), tmp_path)
    check_png(plots.lr_range_plot(lrs[::5], losses[::5], tmp_path / "lr2.png"), tmp_path)


# ------------------------------------------------------------------ classification


def fake_predictions(n=200, k=10):
    y_true = RNG.integers(0, k, size=n)
    y_pred = np.where(RNG.random(n) < 0.8, y_true, RNG.integers(0, k, size=n))
    y_pred[y_pred == k - 1] = 0  # last class never predicted
    return y_true, y_pred


def test_confusion_matrix_plot(tmp_path):
    yt, yp = fake_predictions()
    cm = confusion_matrix(yt, yp, 10)
    check_png(plots.confusion_matrix_plot(cm, DIGITS, tmp_path / "cm.png"), tmp_path)
    long = ["setosa", "versicolor", "virginica"]
    cm3 = np.array([[5, 0, 0], [0, 4, 1], [0, 0, 0]])  # class with no samples
    check_png(plots.confusion_matrix_plot(cm3, long, tmp_path / "cm3.png", title="Iris"), tmp_path)


def test_per_class_plot(tmp_path):
    yt, yp = fake_predictions()
    rep = classification_report(confusion_matrix(yt, yp, 10), DIGITS)
    assert rep["never_predicted"] == ["9"]
    check_png(plots.per_class_plot(rep, tmp_path / "pc.png"), tmp_path)


def test_misclassified_grid(tmp_path):
    n = 20
    images = RNG.random((n, 1, 8, 8))
    yt = RNG.integers(0, 10, n)
    yp = (yt + 1) % 10
    conf = RNG.random(n)
    check_png(plots.misclassified_grid(images, yt, yp, conf, DIGITS, tmp_path / "mis.png",
                                      max_images=12), tmp_path)
    # (N, H, W), fewer than a full grid
    check_png(plots.misclassified_grid(images[:5, 0], yt[:5], yp[:5], conf[:5], None,
                                       tmp_path / "mis5.png", max_images=36), tmp_path)


def test_misclassified_grid_empty(tmp_path):
    empty = np.zeros((0, 1, 8, 8))
    e = np.zeros(0, dtype=int)
    out = plots.misclassified_grid(empty, e, e, np.zeros(0), DIGITS, tmp_path / "none.png")
    check_png(out, tmp_path)


def test_misclassified_grid_rgb(tmp_path):
    images = RNG.normal(size=(6, 3, 16, 16))  # standardised RGB, outside [0, 1]
    yt = np.arange(6) % 3
    yp = (yt + 1) % 3
    out = plots.misclassified_grid(images, yt, yp, RNG.random(6), ["cat", "dog", "ship"],
                                   tmp_path / "rgb.png")
    check_png(out, tmp_path)


def test_predictions_plot(tmp_path):
    n, k = 6, 10
    images = RNG.random((n, 1, 8, 8))
    logits = RNG.normal(size=(n, k)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    yt = RNG.integers(0, k, n)
    check_png(plots.predictions_plot(images, probs, yt, DIGITS, tmp_path / "pred.png",
                                     max_samples=4), tmp_path)
    rgb = RNG.random((2, 3, 12, 12))
    check_png(plots.predictions_plot(rgb, probs[:2, :3] / probs[:2, :3].sum(1, keepdims=True),
                                     [0, 2], ["a", "b", "c"], tmp_path / "p2.png"), tmp_path)


# ------------------------------------------------------------------ weights


def test_weights_conv(tmp_path):
    W = RNG.normal(size=(16, 1, 3, 3))
    check_png(plots.weights_plot(W, tmp_path / "conv.png", "conv"), tmp_path)
    W3 = RNG.normal(size=(100, 3, 5, 5))
    check_png(plots.weights_plot(W3, tmp_path / "conv3.png", "conv", max_tiles=64), tmp_path)


def test_weights_dense(tmp_path):
    W = RNG.normal(size=(64, 32))
    check_png(plots.weights_plot(W, tmp_path / "dense.png", "dense", image_shape=(1, 8, 8)), tmp_path)
    check_png(plots.weights_plot(W, tmp_path / "dense2.png", "dense", image_shape=(8, 8)), tmp_path)
    check_png(plots.weights_plot(RNG.normal(size=(3 * 16, 5)), tmp_path / "dense3.png", "dense",
                                 image_shape=(3, 4, 4)), tmp_path)
    check_png(plots.weights_plot(W, tmp_path / "matrix.png", "dense"), tmp_path)
    W0 = np.zeros((16, 4))  # all-zero weights must not divide by zero
    check_png(plots.weights_plot(W0, tmp_path / "zero.png", "dense", image_shape=(4, 4)), tmp_path)


def test_weights_bad_input(tmp_path):
    with pytest.raises(ValueError):
        plots.weights_plot(np.zeros((3, 3)), tmp_path / "x.png", "conv")
    with pytest.raises(ValueError):
        plots.weights_plot(np.zeros((10, 3)), tmp_path / "x.png", "dense", image_shape=(3, 3))
    with pytest.raises(ValueError):
        plots.weights_plot(np.zeros((10, 3)), tmp_path / "x.png", "rnn")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ sweeps


def test_sweep_one_param_log_with_failure(tmp_path):
    trials = [
        {"params": {"lr": lr}, "metric": m, "status": s}
        for lr, m, s in [
            (1e-4, 0.71, "ok"),
            (1e-3, 0.88, "ok"),
            (1e-2, 0.93, "ok"),
            (1e-2, 0.92, "ok"),
            (1e-1, 0.90, "ok"),
            (1.0, None, "diverged"),
        ]
    ]
    check_png(plots.sweep_plot(trials, ["lr"], "val_accuracy", tmp_path / "s1.png"), tmp_path)
    check_png(plots.sweep_plot(trials, ["lr"], "val_accuracy", tmp_path / "s1lin.png", log_x=False),
              tmp_path)


def test_sweep_one_param_all_failed(tmp_path):
    trials = [{"params": {"lr": lr}, "metric": None, "status": "failed"} for lr in (0.1, 1.0)]
    check_png(plots.sweep_plot(trials, ["lr"], "val_loss", tmp_path / "f.png"), tmp_path)


def test_sweep_categorical(tmp_path):
    trials = [
        {"params": {"optimizer": o}, "metric": m, "status": "ok" if m is not None else "failed"}
        for o, m in [("sgd", 0.9), ("adam", 0.95), ("adam", 0.94), ("rmsprop", None)]
    ]
    check_png(plots.sweep_plot(trials, ["optimizer"], "val_accuracy", tmp_path / "cat.png"), tmp_path)


def heatmap_trials() -> list[dict]:
    trials = []
    for lr in (1e-3, 1e-2, 1e-1):
        for bs in (16, 32, 64, 128):
            failed = lr == 1e-1 and bs == 16
            trials.append(
                {
                    "params": {"lr": lr, "batch_size": bs},
                    "metric": None if failed else 0.8 + 0.05 * math.log10(lr * 1e3) - bs / 2000,
                    "status": "failed" if failed else "ok",
                }
            )
    return trials[:-1]  # one combination never tried


def test_sweep_two_params_heatmap(tmp_path):
    trials = heatmap_trials()
    check_png(plots.sweep_plot(trials, ["lr", "batch_size"], "val_accuracy", tmp_path / "s2.png"),
              tmp_path)
    check_png(plots.sweep_plot(trials, ["lr", "batch_size"], "val_loss", tmp_path / "s2l.png"),
              tmp_path)


def test_sweep_many_params_ranked(tmp_path):
    trials = [
        {
            "params": {"lr": 10.0 ** -RNG.integers(1, 4), "hidden": int(h), "activation": a},
            "metric": float(RNG.random()) if i != 3 else None,
            "status": "ok" if i != 3 else "failed",
        }
        for i, (h, a) in enumerate([(32, "relu"), (64, "tanh"), (128, "relu"), (16, "relu"),
                                    (64, "gelu")])
    ]
    check_png(plots.sweep_plot(trials, ["lr", "hidden", "activation"], "val_accuracy",
                               tmp_path / "s3.png"), tmp_path)


def test_empty_inputs_still_write_png(tmp_path):
    check_png(plots.learning_curves([], tmp_path / "a.png"), tmp_path)
    check_png(plots.sweep_plot([], ["lr"], "acc", tmp_path / "b.png"), tmp_path)
    check_png(plots.compare_curves([], tmp_path / "c.png"), tmp_path)
    check_png(plots.lr_range_plot([], [], tmp_path / "d.png"), tmp_path)


def test_import_keeps_the_backend_and_never_loads_pyplot(tmp_path):
    """A notebook that imports nnrun keeps its backend; figures need no pyplot."""
    out = tmp_path / "c.png"
    script = textwrap.dedent(f"""
        import sys
        import matplotlib
        matplotlib.use("pdf")
        from nnrun import plots
        plots.learning_curves([{{"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5}}], {str(out)!r})
        assert matplotlib.get_backend() == "pdf", matplotlib.get_backend()
        assert "matplotlib.pyplot" not in sys.modules
    """)
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr
    check_png(out, tmp_path)


# ------------------------------------------------------------------ tick labels


@pytest.mark.parametrize("values, percent, expected", [
    ([0.96, 0.9625, 0.965, 0.9675, 0.97], True, ["96.00%", "96.25%", "96.50%", "96.75%", "97.00%"]),
    ([0.9, 0.925, 0.95, 0.975, 1.0], True, ["90.0%", "92.5%", "95.0%", "97.5%", "100.0%"]),
    ([0.0, 0.2, 0.4], True, ["0%", "20%", "40%"]),
    ([0.0, 2e-4, 4e-4, 6e-4, 8e-4, 1e-3], False, ["0.0000", "0.0002", "0.0004", "0.0006", "0.0008", "0.0010"]),
    ([0.1, 0.2, 0.30000000000000004], False, ["0.1", "0.2", "0.3"]),
    ([0.0, 0.25, 0.5], False, ["0.00", "0.25", "0.50"]),
    ([-0.2, -1e-17, 0.2], False, ["-0.2", "0.0", "0.2"]),
    ([1, 2, 3], False, ["1", "2", "3"]),
    ([0.0, 2e-6, 4e-6, 6e-6, 8e-6, 1e-5], False, ["0", "2e-06", "4e-06", "6e-06", "8e-06", "1e-05"]),
    ([1e-5, 1.005e-5, 1.01e-5], False, ["1.000e-05", "1.005e-05", "1.010e-05"]),
    ([0.0, 2e6, 4e6], False, ["0", "2e+06", "4e+06"]),
])
def test_tick_labels_carry_the_decimals_their_step_needs(values, percent, expected):
    assert style.tick_labels(values, percent) == expected


@pytest.fixture
def figures(monkeypatch):
    """The figures the plotting functions draw, drawn and kept instead of saved."""
    drawn = []

    def keep(fig, path):
        fig.canvas.draw()
        drawn.append(fig)
        return Path(path)

    for module in (training, evaluation, sweeps):
        monkeypatch.setattr(module, "save", keep)
    return drawn


def shown_tick_labels(axis) -> list[str]:
    """The major tick labels inside the axis's view."""
    lo, hi = sorted(axis.get_view_interval())
    slack = 1e-9 * max(abs(lo), abs(hi), 1.0)
    return [label.get_text() for label, loc in zip(axis.get_ticklabels(), axis.get_ticklocs(), strict=True)
            if lo - slack <= loc <= hi + slack and label.get_text()]


def test_every_figures_tick_labels_are_distinct(tmp_path, figures):
    sweep_trials = [{"params": {"lr": lr}, "metric": m, "status": "completed"}
                    for lr, m in [(1e-3, 0.9612), (3e-3, 0.9655), (1e-2, 0.9702), (3e-2, 0.9688), (1e-1, 0.9641)]]
    near = [{"epoch": e, "val_accuracy": top - 0.1 * math.exp(-0.5 * e), "val_loss": 0.5 / e}
            for top in (0.85, 0.95, 0.97) for e in range(1, 11)]
    yt, yp = fake_predictions()
    plots.sweep_plot(sweep_trials, ["lr"], "val_accuracy", tmp_path / "sweep.png")
    plots.sweep_plot([{**t, "metric": 1 - t["metric"]} for t in sweep_trials], ["lr"], "val_loss", tmp_path / "s.png")
    plots.compare_curves([(str(i), near[10 * i:10 * i + 10]) for i in range(3)], tmp_path / "compare.png")
    plots.lr_schedule([{"epoch": e, "lr": 0.001} for e in range(1, 13)], tmp_path / "lr.png")
    plots.lr_schedule(history(20), tmp_path / "lr_log.png")
    plots.learning_curves(history(), tmp_path / "curves.png")
    plots.sweep_curves([(str(i), near[10 * i:10 * i + 10]) for i in range(3)], tmp_path / "curves.png")
    plots.per_class_plot(classification_report(confusion_matrix(yt, yp, 10), DIGITS), tmp_path / "pc.png")
    plots.sweep_plot(heatmap_trials(), ["lr", "batch_size"], "val_accuracy", tmp_path / "s2.png")
    plots.sweep_plot(heatmap_trials(), ["lr", "batch_size"], "val_loss", tmp_path / "s2l.png")
    assert len(figures) == 10
    for fig in figures:
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                labels = shown_tick_labels(axis)
                assert len(set(labels)) == len(labels), (fig.axes[0].get_title(), labels)
    assert shown_tick_labels(figures[0].axes[0].yaxis) == ["96.2%", "96.4%", "96.6%", "96.8%", "97.0%"]
    assert shown_tick_labels(figures[2].axes[0].yaxis)[-2:] == ["95.0%", "97.5%"]
    assert shown_tick_labels(figures[3].axes[0].yaxis) == ["0.0000", "0.0002", "0.0004", "0.0006", "0.0008",
                                                           "0.0010"]


def test_weights_grid_and_title_are_centred(tmp_path, figures):
    plots.weights_plot(RNG.normal(size=(16, 1, 3, 3)), tmp_path / "w.png", "conv",
                       title="Layer 0 (conv2d): 16 learned 3x3 filters")
    (fig,) = figures
    grid, colorbar = fig.axes
    image = grid.get_images()[0].get_window_extent()
    title = grid.title.get_window_extent()
    width = fig.bbox.width
    assert abs((title.x0 + title.x1) / 2 - (image.x0 + image.x1) / 2) < 0.01 * width
    left, right = image.x0, width - colorbar.get_tightbbox().x1
    assert abs(left - right) < 0.05 * width, (left, right)  # no empty side


def test_lr_range_shows_every_raw_loss_of_the_descent(tmp_path, figures):
    lrs = np.geomspace(1e-6, 1, 100)
    losses = 2.3 - 1.8 / (1 + np.exp(-(np.log10(lrs) + 3))) + RNG.normal(0, 0.25, 100)
    losses[-8:] = np.linspace(3, 12, 8)
    plots.lr_range_plot(lrs, losses, tmp_path / "lr.png", suggestion=1e-3)
    lo, hi = figures[0].axes[0].get_ylim()
    lowest = int(np.nanargmin(ema(losses)))
    assert lo <= losses.min() and hi >= losses[:lowest + 1].max()
    assert hi < losses.max()  # the blow-up at the end is still clipped
