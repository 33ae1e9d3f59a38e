"""`nnrun bench`: training and inference speed and peak memory, optionally beside PyTorch."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from nnrun.cli.common import app, err, examples, handle_errors, out, shown_as_text, value_of

SIDE_LABELS = {"nnrun": "nnrun", "torch": "PyTorch"}


class BenchData(str, Enum):
    synthetic = "synthetic"
    config = "config"


class Compare(str, Enum):
    torch = "torch"


@app.command(epilog=examples("nnrun bench                       # configs/mlp, small-cnn and cnn",
                             "nnrun bench --compare torch --json bench.json",
                             "nnrun bench configs/cnn.yaml --batches 50 --threads 1",
                             "nnrun bench configs/digits-mlp.yaml --data config"))
@handle_errors
def bench(configs: list[Path] = typer.Argument(None, show_default=False,
                                               help="Experiment YAML files (default: configs/mlp.yaml, "
                                                    "configs/small-cnn.yaml, configs/cnn.yaml)."),
          batches: int = typer.Option(100, "--batches", min=1, help="Timed training batches per repeat."),
          repeats: int = typer.Option(5, "--repeats", min=1, help="Repeats; figures are their medians."),
          compare: Compare = typer.Option(None, "--compare", show_default=False,
                                          help="Time the same network in PyTorch too (needs PyTorch)."),
          threads: int = typer.Option(None, "--threads", min=1, show_default="the usable cores",
                                      help="BLAS (and PyTorch) threads."),
          data: BenchData = typer.Option(BenchData.synthetic, "--data",
                                         help="Random data of the config's data shape, or the config's own "
                                              "data (not downloaded: offline only)."),
          json_path: Path = typer.Option(None, "--json", show_default=False,
                                         help="Also write every figure to this JSON file.")):
    """Measure training and inference throughput and peak memory of configs' networks.

    Training: samples per second over --batches mini-batches (after 5 warm-up batches), each
    what `nnrun train` does per batch. Inference: samples per second predicting 10,000 samples
    at batch 1000. Peak memory: the training process's peak resident memory. Each side runs in a
    fresh process; with --compare torch the sides take turns, repeat by repeat, and the ratios
    are nnrun's time (or memory) over PyTorch's: below 1, nnrun is faster. Ratios only mean
    something on a quiet machine."""
    from nnrun.bench import Settings, run_bench
    from nnrun.fileio import write_json

    settings = Settings(batches=batches, repeats=repeats, threads=threads, data=value_of(data),
                        compare=value_of(compare))
    with err.status("nnrun bench: checking the configs") as status:
        record = run_bench(configs or None, settings, progress=lambda event: status.update(progress_text(event)))
    if json_path is not None:
        write_json(json_path, record)
    out.print(results_table(record))
    for line in footer(record):
        out.print(line, markup=False, soft_wrap=True)
    if json_path is not None:
        out.print(f"wrote {json_path}", markup=False, soft_wrap=True)


def progress_text(event: dict) -> str:
    what = shown_as_text(event["name"])
    if event["phase"] == "start":
        return f"{what}: starting the workers (loading the config, making the data)"
    phase = "training" if event["phase"] == "train" else "inference"
    return f"{what}: {phase}, {SIDE_LABELS[event['side']]}, repeat {event['repeat']}"


# -- the table ------------------------------------------------------------------------------
def results_table(record: dict) -> Table:
    """One row per network and measure: training, inference, peak memory."""
    sides = ["nnrun", "torch"] if record["settings"]["compare"] == "torch" else ["nnrun"]
    s = record["settings"]
    table = Table(title=f"nnrun bench: {plural(s['batches'], 'batch')} x {plural(s['repeats'], 'repeat')} "
                        f"(medians), {plural(s['threads'], 'thread')}, {s['data']} data",
                  title_justify="left")
    table.add_column("network")
    table.add_column("measure")
    for side in sides:
        table.add_column(SIDE_LABELS[side], justify="right")
    if len(sides) == 2:
        table.add_column("nnrun/PyTorch", justify="right")
    for i, net in enumerate(record["networks"]):
        if i:
            table.add_section()
        for label, key, unit, ratio in MEASURES:
            table.add_row(Text(shown_as_text(net["config"])) if label == "training" else "",
                          label, *(unit(net[side][key]) for side in sides),
                          *([f"{net[ratio]:.2f}x"] if len(sides) == 2 else []))
    return table


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}{'es' if noun.endswith('ch') else 's'}"


def per_second(v: float) -> str:
    return f"{v:,.0f}/s"


def megabytes(v: float) -> str:
    return f"{v:,.0f} MB"


MEASURES = [("training", "train_samples_per_s", per_second, "train_time_ratio"),
            ("inference", "inference_samples_per_s", per_second, "inference_time_ratio"),
            ("peak memory", "peak_memory_mb", megabytes, "peak_memory_ratio")]


def footer(record: dict) -> list[str]:
    """What the figures depend on: the machine, versions, BLAS, threads, the load; warnings."""
    m, v, s = record["machine"], record["versions"], record["settings"]
    lines = [f"training: samples/s over {s['batches']} batches (after {s['warmup']} warm-up ones); "
             f"inference: {s['inference_samples']:,} samples at batch {s['inference_batch']}"]
    if s["compare"]:
        lines.append("nnrun/PyTorch: nnrun's time (or memory) over PyTorch's; below 1, nnrun is faster")
    torch = f", PyTorch {v['torch']}" if v.get("torch") else ""
    lines.append(f"machine: {m['cpu'] or 'unknown CPU'}, {m['usable_cores']} of {m['cores']} cores; "
                 f"Python {v['python']}, NumPy {v['numpy']}{torch}")
    torch = f"; PyTorch: {torch_text(record['torch'])}" if record["torch"] else ""
    lines.append(f"BLAS: {blas_text(record['blas'])}{torch}")
    if record["blas_overrides"]:
        overrides = ", ".join(f"{k}={value}" for k, value in record["blas_overrides"].items())
        lines.append(f"BLAS overrides set: {overrides} (users' machines usually have none)")
    load = record["load_average"]
    if load["start"] and load["end"]:
        lines.append(f"load average (1 min): {load['start'][0]:.2f} at the start, {load['end'][0]:.2f} at the end")
    return lines + [f"warning: {w}" for w in record["warnings"]]


def blas_text(blas: dict | None) -> str:
    if not blas:
        return "unknown"
    kernel = f" (kernel {blas['kernel']})" if blas.get("kernel") else ""
    threads = blas.get("threads")
    return f"{blas['library']} {blas.get('version') or ''}{kernel}, {threads} thread{'' if threads == 1 else 's'}"


def torch_text(torch: dict) -> str:
    libs = " + ".join(name for name, on in (("MKL", torch["mkl"]), ("oneDNN", torch["mkldnn"])) if on)
    return f"{libs or 'its own kernels'}, {torch['cpu_capability']}, {torch['threads']} threads"
