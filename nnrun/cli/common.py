"""Shared pieces of the command line: the typer app, consoles, error handling, the download display.

Exit codes: 0 success, 1 runtime failure, 2 usage or config error, 130 interrupted.
Only nnrun/cli/ imports typer; each command module is a thin layer over the library.
"""

from __future__ import annotations

import functools
import shlex
import sys
from enum import Enum
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from nnrun import __version__
from nnrun.cli.display import show_downloads
from nnrun.errors import NnrunError


class FlagsTakeNoValue:
    """typer's help gives each flag a type column (`--debug <bool>`) as if it took a value;
    a flag takes none, so its column stays empty."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False):
                param.metavar = ""
        return params


class Command(FlagsTakeNoValue, TyperCommand):
    """A command whose help paragraphs flow to the terminal's width (typer would keep the
    docstring's line breaks, and break lines twice at 80 columns)."""

    def __init__(self, *args, help: str | None = None, **kwargs):
        super().__init__(*args, help=help and reflow(help), **kwargs)


def reflow(text: str) -> str:
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in text.split("\n\n"))


class Group(FlagsTakeNoValue, TyperGroup):
    pass


class App(typer.Typer):
    """A typer app whose commands are all `Command`s."""

    def command(self, *args, cls=None, **kwargs):
        return super().command(*args, cls=cls or Command, **kwargs)


def examples(*lines: str) -> str:
    """A command's epilog: its examples, one command line each (a `#` comment may follow)."""
    # typer dedents an epilog by its lines after the first: the leading newline keeps the indent
    return "\nExamples:\n" + "\n".join(f"  {escape(line)}" for line in lines)


app = App(cls=Group, no_args_is_help=True, pretty_exceptions_enable=False,
          help="Config-driven neural-network experiments, written from scratch in NumPy.",
          epilog=examples("nnrun train configs/quickstart.yaml", "nnrun evaluate latest",
                          "nnrun COMMAND --help      # each command's options and examples"))
out = Console(highlight=False, emoji=False)  # text from files is never read as :emoji: codes
err = Console(stderr=True, highlight=False, emoji=False)
STATE = {"debug": False}

SET_HELP = "Override a config key: --set optimizer.lr=0.01 (repeatable)."
RUNS_DIR_HELP = "Folder that holds the run folders."
RUNS_DIR_ENV = "NNRUN_RUNS_DIR"


# The choices of options, so that help lists them and the shell completes them. Their values are
# the library's names, spelled out rather than imported so that completing a word never loads
# NumPy (tests/test_cli_help.py checks that they stay the same).
class Split(str, Enum):
    test = "test"
    validation = "validation"
    train = "train"


class Metric(str, Enum):
    val_accuracy = "val_accuracy"
    val_loss = "val_loss"
    train_accuracy = "train_accuracy"
    train_loss = "train_loss"
    test_accuracy = "test_accuracy"
    test_loss = "test_loss"


class Mode(str, Enum):
    max = "max"
    min = "min"


class Logger(str, Enum):
    tensorboard = "tensorboard"
    mlflow = "mlflow"


class Search(str, Enum):
    grid = "grid"
    random = "random"
    tpe = "tpe"


class Prune(str, Enum):
    asha = "asha"
    median = "median"
    none = "none"


class Executor(str, Enum):
    local = "local"
    dask = "dask"


class ExportFormat(str, Enum):
    onnx = "onnx"
    npz = "npz"
    torch = "torch"


class Recipe(str, Enum):
    mnist = "mnist"
    digits = "digits"
    resize = "resize"


def value_of(choice: Enum | None) -> str | None:
    return None if choice is None else choice.value


def command_line() -> str:
    """The command as typed, to record in the run folder (the program's own path left out)."""
    return shlex.join(["nnrun", *sys.argv[1:]])


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
    all), with any control character in it (a newline or a terminal escape in a file name or a
    key, say) shown escaped, as \\n or \\x1b."""
    err.print(f"[bold red]error:[/] {escape(shown_as_text(message))}", markup=True, soft_wrap=True)


def shown_as_text(text: str) -> str:
    """Text from a file or a command line, safe for a terminal: control characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def plain(*lines: Any, style: str = "") -> Text:
    """A table cell or header from a file (a name, a status, a class, a config value): shown as
    text, never read as rich markup, control characters (a newline too) escaped; several
    values make several lines."""
    return Text("\n".join(shown_as_text(str(line)) for line in lines), style=style)


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
