"""Number formatting for tables and the report."""

import math

import pytest

from nnrun import fmt


@pytest.mark.parametrize("call, expected", [
    (lambda: fmt.pct(0.97333), "97.33%"),
    (lambda: fmt.pct(None), "-"),
    (lambda: fmt.pct(math.nan, missing="–"), "–"),
    (lambda: fmt.fixed(0.123456), "0.1235"),
    (lambda: fmt.fixed(True), "-"),
    (lambda: fmt.duration(12.34), "12.3s"),
    (lambda: fmt.duration(125, sep=" "), "2m 05s"),
    (lambda: fmt.metric("val_accuracy", 0.5), "50.00%"),
    (lambda: fmt.metric("test_loss", 0.5), "0.5000"),
    (lambda: fmt.significant(1.23456), "1.235"),
    (lambda: fmt.significant(0.0123456, 3), "0.0123"),
    (lambda: fmt.significant(math.inf), "-"),
    (lambda: fmt.compact(3), "3"),
    (lambda: fmt.compact(0.25), "0.25"),
    (lambda: fmt.compact(1e-4), "1e-04"),
    (lambda: fmt.compact(3.25e-6), "3.25e-06"),
    (lambda: fmt.compact(250000.0), "2.50e+05"),
    (lambda: fmt.compact(0.0), "0"),
    (lambda: fmt.compact(True), "True"),
    (lambda: fmt.compact("relu"), "relu"),
    (lambda: fmt.finite("3.5"), 3.5),
    (lambda: fmt.finite(math.inf), None),
    (lambda: fmt.value(0.123456), "0.1235"),
    (lambda: fmt.value(1e-5), "1e-05"),
    (lambda: fmt.value(0.001), "0.001"),
    (lambda: fmt.value(1.0), "1"),
    (lambda: fmt.value(16), "16"),
    (lambda: fmt.value(True), "True"),
    (lambda: fmt.value("relu"), "relu"),
    (lambda: fmt.value(None), "-"),
])
def test_formats(call, expected):
    assert call() == expected
