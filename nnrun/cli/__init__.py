"""The nnrun command line. Each command lives in a module of this package."""

from nnrun.cli import (
    evaluate,  # noqa: F401  (registers evaluate, runs, compare)
    lrfind,  # noqa: F401  (registers lr-find)
    sweep,  # noqa: F401  (registers sweep)
    train,  # noqa: F401  (registers validate, train)
)
from nnrun.cli.common import app


def main() -> None:
    app()
