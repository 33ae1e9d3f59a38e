"""The nnrun command line. Each command lives in a module of this package."""

import signal

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


def stop_like_ctrl_c(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM ends a run as Ctrl-C does: finished work kept, resumable


def main() -> None:
    signal.signal(signal.SIGTERM, stop_like_ctrl_c)
    app()
