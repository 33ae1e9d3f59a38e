"""The nnrun command line. Each command lives in a module of this package."""

from nnrun.cli.common import app
from nnrun.cli import train  # noqa: F401  (registers validate, train)
from nnrun.cli import evaluate  # noqa: F401  (registers evaluate, runs, compare)
from nnrun.cli import sweep  # noqa: F401  (registers sweep)
from nnrun.cli import lrfind  # noqa: F401  (registers lr-find)


def main() -> None:
    app()
