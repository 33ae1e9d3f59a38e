"""Benchmark (not a test): wall time of the same 8-trial sweep with 1 worker and with 2.

    .venv/bin/python experiments/bench_sweep.py [--workers 1,2] [--epochs 10] [--runs-dir DIR]

The sweep: a small CNN (2 conv + 2 dense) on the bundled digits, 4 learning rates x 2 dense
sizes, 10 epochs, every trial written as a full run folder (no per-trial plots). With 1 worker trials run one after the
other in this process (BLAS free to use every core); with N workers in N spawned processes with
one BLAS thread each. Prints one JSON line per setting and a ratio; checks that every setting
got the same metrics (parallel trials are bit-identical to serial ones). The plotting library is
imported before the clocks start: otherwise the first setting alone would pay for it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml

CONFIG = {
    "name": "bench-sweep", "seed": 0,
    "data": {"dataset": "digits", "validation_split": 0.2},
    "model": {"layers": [
        {"type": "conv2d", "filters": 16, "kernel_size": 3, "padding": 1, "activation": "relu"},
        {"type": "maxpool2d", "pool_size": 2},
        {"type": "conv2d", "filters": 32, "kernel_size": 3, "padding": 1, "activation": "relu"},
        {"type": "maxpool2d", "pool_size": 2},
        {"type": "flatten"},
        {"type": "dense", "units": 64, "activation": "relu"},
        {"type": "dense", "units": 10, "activation": "softmax"}]},
    "optimizer": {"type": "adam", "lr": 0.001},
    "train": {"epochs": 10, "batch_size": 32},
    "sweep": {"params": {"optimizer.lr": [0.0003, 0.001, 0.003, 0.01],
                         "model.layers[5].units": [32, 64]}},
}


def main(argv=None) -> None:
    import nnrun.plots  # noqa: F401  (matplotlib's import, 0.9 s, paid by neither setting's clock)
    from nnrun.sweep import plan_sweep, read_sweep, run_sweep

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--runs-dir", default=None, help="where the sweep folders go (default: a temp dir)")
    args = ap.parse_args(argv)
    tmp = tempfile.TemporaryDirectory(prefix="nnrun-bench-sweep-")
    root = Path(args.runs_dir or tmp.name)
    root.mkdir(parents=True, exist_ok=True)
    cfg = root / "bench-sweep.yaml"
    cfg.write_text(yaml.safe_dump({**CONFIG, "train": {**CONFIG["train"], "epochs": args.epochs}}))
    doc = plan_sweep(cfg)
    times, metrics = {}, {}
    for w in (int(s) for s in args.workers.split(",")):
        start = time.perf_counter()
        sweep_dir = run_sweep(doc, runs_dir=root, workers=w, trial_plots=False)
        times[w] = time.perf_counter() - start
        saved = read_sweep(sweep_dir)
        metrics[w] = [t["metric"] for t in saved["trials"]]
        print(json.dumps({"trials": len(saved["trials"]), "workers": w, "epochs": args.epochs,
                          "wall_seconds": round(times[w], 2),
                          "trial_seconds_sum": round(sum(t["seconds"] or 0 for t in saved["trials"]), 2)}))
    if 1 in times:
        for w, t in times.items():
            if w != 1:
                print(json.dumps({"speedup": f"{w} workers vs 1", "ratio": round(times[1] / t, 2)}))
    same = len({json.dumps(m) for m in metrics.values()}) == 1
    print(json.dumps({"identical_metrics_across_settings": same}))
    tmp.cleanup()


if __name__ == "__main__":
    main()
