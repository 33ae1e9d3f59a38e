"""The nnrun app with every command registered: each command lives in a module of this package."""

from nnrun.cli import (
    bench,  # noqa: F401  (registers bench)
    check,  # noqa: F401  (registers check)
    evaluate,  # noqa: F401  (registers evaluate, runs, compare)
    lrfind,  # noqa: F401  (registers lr-find)
    predict,  # noqa: F401  (registers predict, export)
    schema,  # noqa: F401  (registers schema)
    sweep,  # noqa: F401  (registers sweep)
    train,  # noqa: F401  (registers validate, train)
)
from nnrun.cli.common import app

__all__ = ["app"]
