"""`nnrun predict` and `nnrun export`: thin layers over nnrun.predict and nnrun.export."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from nnrun.cli.common import (
    RUNS_DIR_ENV,
    RUNS_DIR_HELP,
    ExportFormat,
    Recipe,
    app,
    err,
    examples,
    handle_errors,
    out,
    shown_as_text,
    value_of,
)
from nnrun.fmt import pct

RUN_HELP = "A run folder, a folder name inside --runs-dir, `latest`, or a weights.json file."
NAME_WIDTH = 48  # names longer than this are not padded: the columns after them shift


def weights_of(run: str, runs_dir: Path) -> str:
    """RUN, with `latest` resolved and said on stderr (stdout stays the predictions)."""
    if run != "latest":
        return run
    from nnrun.cli.evaluate import resolve

    return str(resolve(run, runs_dir))


def prediction_line(record: dict, width: int) -> str:
    """'digit.png   7 99.8%   1  0.1%': the input, then its top classes with their probabilities."""
    name = shown_as_text(record["input"]).ljust(width)
    return name + "".join(f"   {shown_as_text(t['class'])} {pct(t['probability'], 1):>6}" for t in record["top"])


@app.command(epilog=examples("nnrun predict latest digit.png photos/",
                             "nnrun predict runs/20261130-101500-cnn/weights.json t10k-images.idx --top 1",
                             "nnrun predict latest scans/ --json > predictions.json",
                             "nnrun predict latest scans/ --out predictions.csv --show seen/"))
@handle_errors
def predict(run: str = typer.Argument(..., help=RUN_HELP),
            inputs: list[Path] = typer.Argument(..., help="Images (PNG, JPEG, ...), folders of images, or IDX, "
                                                          "CSV or NPZ files of samples without labels."),
            top: int = typer.Option(3, "--top", help="How many of the most probable classes to show."),
            as_json: bool = typer.Option(False, "--json", help="Print the predictions as JSON, one record per input."),
            out_file: Path | None = typer.Option(None, "--out", help="Also write the predictions to this CSV file."),
            show: Path | None = typer.Option(None, "--show", help="Write a PNG of each prepared input (the first 100) "
                                                                  "beside its probabilities into this folder."),
            recipe: Recipe | None = typer.Option(None, "--recipe", help="How to prepare images (default: the "
                                                                        "run's: mnist, digits or resize)."),
            runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", envvar=RUNS_DIR_ENV, help=RUNS_DIR_HELP)):
    """Classify new inputs with a trained run: one line per input with its top classes.

    Images are prepared the way the run's training data was: 28x28 digits by the MNIST recipe
    (greyscale, inverted when the background is light, cropped to the ink, scaled to 20 pixels,
    centred by the centre of mass), the 8x8 digits by theirs, anything else resized; then scaled
    like the training data. Samples in IDX, CSV and NPZ files are scaled like it."""
    from nnrun.predict import load_model, predict_files, show_inputs, write_csv

    model = load_model(weights_of(run, runs_dir), runs_dir)
    records, prepared, probs = predict_files(model, inputs, top, value_of(recipe))
    if as_json:
        import json

        typer.echo(json.dumps(records, indent=2, ensure_ascii=False))
    else:
        width = min(NAME_WIDTH, max(len(shown_as_text(r["input"])) for r in records))
        typer.echo("\n".join(prediction_line(record, width) for record in records))  # plain text, one write
    if out_file is not None:
        err.print(f"wrote {shown_as_text(str(write_csv(out_file, records)))}", markup=False, soft_wrap=True)
    if show is not None:
        written = show_inputs(model, prepared, probs, show)
        more = f" (the first {len(written)} of {len(records)} inputs)" if len(written) < len(records) else ""
        pictures = "1 picture" if len(written) == 1 else f"{len(written)} pictures"
        err.print(f"wrote {pictures} of what the network saw into {shown_as_text(str(show))}{more}",
                  markup=False, soft_wrap=True)


def load_hint(fmt: str, folder: Path) -> str:
    """How to use what was exported, as a line to copy."""
    if fmt == "torch":
        return f"load it in PyTorch: cd {shlex.quote(str(folder))} && python -c 'from model import load; net = load()'"
    if fmt == "npz":
        return f"PyTorch's names and layouts (Linear weight (out, in)): numpy.load({str(folder / 'weights.npz')!r})"
    return f"run it: onnxruntime.InferenceSession({str(folder / 'model.onnx')!r}).run(None, {{'input': x}})"


@app.command(epilog=examples("nnrun export latest --format torch",
                             "nnrun export runs/20261130-101500-cnn --format onnx --out deploy/",
                             "nnrun export weights.json --format npz"))
@handle_errors
def export(run: str = typer.Argument(..., help=RUN_HELP),
           fmt: ExportFormat = typer.Option(..., "--format", help="onnx: an ONNX graph (needs nnrun[onnx]); "
                                                                  "npz: the weights in PyTorch's layouts; torch: "
                                                                  "model.py and that npz."),
           out_dir: Path | None = typer.Option(None, "--out", help="Folder to write into (default: export/ "
                                                                   "beside the weights file)."),
           runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", envvar=RUNS_DIR_ENV, help=RUNS_DIR_HELP)):
    """Export a trained network for other tools: ONNX, plain arrays, or a PyTorch module."""
    from nnrun.export import export_run

    exported = export_run(weights_of(run, runs_dir), fmt.value, out_dir, runs_dir)
    for note in exported.notes:
        err.print(f"note: {note}", markup=False, soft_wrap=True)
    for path in exported.files:
        out.print(f"wrote {shown_as_text(str(path))}", markup=False, soft_wrap=True)
    out.print(shown_as_text(load_hint(fmt.value, exported.files[0].parent)), markup=False, soft_wrap=True)
