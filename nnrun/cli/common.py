"""Shared pieces of the command line: the typer app, consoles, error handling, the download display.

Exit codes: 0 success, 1 runtime failure, 2 usage or config error, 130 interrupted.
Only nnrun/cli/ imports typer; each command module is a thin layer over the library.
"""

from __future__ import annotations

import functools

import typer
from rich.console import Console
from rich.markup import escape

from nnrun import __version__
from nnrun.cli.display import show_downloads
from nnrun.errors import NnrunError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Config-driven neural-network experiments, written from scratch in NumPy.")
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
STATE = {"debug": False}

SET_HELP = "Override a config key: --set optimizer.lr=0.01 (repeatable)."
RUNS_DIR_HELP = "Folder that holds the run folders."


def version_callback(value: bool):
    if value:
        print(__version__)
        raise typer.Exit()


@app.callback()
def root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
         version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True,
                                      help="Print the version and exit.")):
    STATE["debug"] = debug


def print_error(message: str) -> None:
    """`error: <message>` on stderr, on one line: the message is printed verbatim (brackets and
    all), with any newline in it (a file name's, say) shown as \\n."""
    message = message.replace("\r", "\\r").replace("\n", "\\n")
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True, soft_wrap=True)


def handle_errors(fn):
    """One clear line on stderr and the right exit code; the traceback only with --debug.
    Any dataset download the command starts is shown on stderr."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with show_downloads(err):
                return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except NnrunError as e:
            if STATE["debug"]:
                raise
            for line in getattr(e, "lines", None) or [str(e) or type(e).__name__]:  # one line per problem
                print_error(line)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as e:  # a bug or an environment failure: still one line by default
            if STATE["debug"]:
                raise
            print_error(f"unexpected {type(e).__name__}: {e} (rerun with --debug for the traceback)")
            raise typer.Exit(1) from None

    return wrapper
