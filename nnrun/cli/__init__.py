"""The nnrun command line: `app` (nnrun.cli.commands) and the `nnrun` script's main().

Importing this package costs nothing: the commands, typer and rich load when main() runs or `app`
is first asked for. A sweep's spawned worker re-runs the `nnrun` script, whose first line imports
main from here; it would otherwise load the whole command line (0.4 s) before its first trial.
"""

import signal


def stop_like_ctrl_c(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM ends a run as Ctrl-C does: finished work kept, resumable


def main() -> None:
    from nnrun.cli.commands import app

    signal.signal(signal.SIGTERM, stop_like_ctrl_c)
    app()


def __getattr__(name: str):
    if name == "app":
        from nnrun.cli.commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "app"])
