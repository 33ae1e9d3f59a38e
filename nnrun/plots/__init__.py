"""PNG figures drawn from plain arrays, lists and dicts (results and run folders' contents).

Every public function takes a ``path``, writes exactly one PNG there atomically (via
:func:`nnrun.fileio.atomic_path`) and returns it as a :class:`pathlib.Path`. Nothing here trains
models, reads files or decides which result is best: that comes from the caller. Accuracies are
fractions in [0, 1], shown as percentages; ``None``, NaN and +-inf in curves are gaps.

* :mod:`~nnrun.plots.style`: the shared look and helpers (matplotlib's Figure API, no pyplot);
* :mod:`~nnrun.plots.training`: learning curves, learning rate, run comparison, range test;
* :mod:`~nnrun.plots.evaluation`: confusion matrix, mistakes, predictions, per class, weights;
* :mod:`~nnrun.plots.sweeps`: a sweep's metric against its parameters, its trials' curves.
"""

from nnrun.plots.evaluation import (
                                    confusion_matrix_plot,
                                    misclassified_grid,
                                    per_class_plot,
                                    predictions_plot,
                                    prepared_input_plot,
                                    weights_plot,
)
from nnrun.plots.sweeps import sweep_curves, sweep_plot
from nnrun.plots.training import compare_curves, diagnostics_plot, learning_curves, lr_range_plot, lr_schedule

__all__ = [
    "learning_curves",
    "lr_schedule",
    "confusion_matrix_plot",
    "misclassified_grid",
    "predictions_plot",
    "prepared_input_plot",
    "per_class_plot",
    "weights_plot",
    "compare_curves",
    "sweep_plot",
    "sweep_curves",
    "lr_range_plot",
    "diagnostics_plot",
]
