"""Study (not a test): grid vs ASHA vs median pruning vs TPE on the bundled digits.

    .venv/bin/python experiments/tuning.py [--workers 2] [--seeds 0,1,2,3,4] [--out experiments]

1. The learning rate of configs/digits-mlp.yaml, 16 rates log-spaced from 1e-4 to 3, 27 epochs:
   the full grid, then --prune asha and --prune median on the same grid, taking turns (grid, asha,
   median, grid, asha, median) with the same workers: best validation accuracy, epochs trained,
   wall time.
2. Learning rate (log:1e-4:3) and momentum (lin:0:0.99) of the same network, 20 trials, 27
   epochs: --search tpe against --search random, one sweep each per seed; the median metric of
   trials 1-10 against trials 11-20.

Writes <out>/tuning.json and <out>/plots/tuning.png, and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "digits-mlp.yaml"
EPOCHS = ["train.epochs=27"]
RATES = "optimizer.lr=log:1e-4:3:16"
SPACE = ["optimizer.lr=log:1e-4:3", "optimizer.momentum=lin:0:0.99"]


def sweep(root: Path, workers: int, trial_plots: bool = True, **plan) -> dict:
    from nnrun.sweep import plan_sweep, read_sweep, run_sweep

    doc = plan_sweep(CONFIG, overrides=EPOCHS, **plan)
    start = time.perf_counter()
    sweep_dir = run_sweep(doc, runs_dir=root, workers=workers, trial_plots=trial_plots)
    seconds = time.perf_counter() - start
    saved = read_sweep(sweep_dir)
    best = saved["trials"][saved["best"]] if saved["best"] is not None else None
    return {"seconds": seconds, "epochs": saved["epochs_trained"] or 27 * len(saved["trials"]),
            "best": best["metric"] if best else None, "best_params": best["params"] if best else None,
            "trials": [{"params": t["params"], "status": t["status"], "metric": t["metric"], "epochs": t["epochs"]}
                       for t in saved["trials"]]}


PRUNING = {"grid": (None, True), "asha": ("asha", True), "median": ("median", True),
           "grid, no trial plots": (None, False), "asha, no trial plots": ("asha", False)}


def pruning_study(root: Path, workers: int, rounds: int) -> dict:
    runs: dict[str, list[dict]] = {name: [] for name in PRUNING}
    for r in range(rounds):
        for name, (prune, trial_plots) in PRUNING.items():
            result = sweep(root / f"{prune}-{trial_plots}-{r}", workers, trial_plots, params=[RATES], prune=prune)
            runs[name].append(result)
            print(f"  {name:22s} round {r + 1}: best {result['best']:.4f}  epochs {result['epochs']}  "
                  f"{result['seconds']:.1f} s", flush=True)
    return runs


def search_study(root: Path, workers: int, seeds: list[int]) -> dict:
    out: dict[str, list[dict]] = {"random": [], "tpe": []}
    for seed in seeds:
        for search in out:
            result = sweep(root / f"{search}-{seed}", workers, params=SPACE, search=search, trials=20, seed=seed)
            metrics = [t["metric"] if t["metric"] is not None else 0.0 for t in result["trials"]]
            result["first_half"], result["second_half"] = statistics.median(metrics[:10]), statistics.median(metrics[10:])
            out[search].append(result)
            print(f"  {search:6s} seed {seed}: median trials 1-10 {result['first_half']:.4f}, "
                  f"11-20 {result['second_half']:.4f}, best {result['best']:.4f}", flush=True)
    return out


def blas_kernel() -> str:
    from nnrun.parallel import blas

    info = blas()
    return f"{info.get('library')} {info.get('version')} {info.get('kernel')}"


def draw(results: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    colors = {"grid": "#4C72B0", "asha": "#DD8452", "median": "#55A868", "random": "#8172B3", "tpe": "#C44E52"}
    for name, runs in results["pruning"].items():
        first = name.split(",")[0]
        left.scatter([r["epochs"] for r in runs], [100 * r["best"] for r in runs], s=60 if first == name else 140,
                     facecolor=colors[first] if first == name else "none", edgecolor=colors[first],
                     label=f"{name}: {statistics.median(r['seconds'] for r in runs):.1f} s")
    left.set_ylim(90, 100)
    left.set_xlim(0, 460)
    left.set_xlabel("epochs trained (16 rates x 27 epochs = 432 for the grid)")
    left.set_ylabel("best validation accuracy (%)")
    left.set_title("16-rate sweep of the digits MLP: same best, fewer epochs")
    left.legend(loc="lower center", title="wall time, 2 workers")
    for x, name in enumerate(("random", "tpe")):
        runs = results["search"][name]
        changes = [100 * (r["second_half"] - r["first_half"]) for r in runs]
        jitter = [x + 0.18 * ((i * 7919) % 11 - 5) / 5 for i in range(len(changes))]
        right.scatter(jitter, changes, s=30, color=colors[name], alpha=0.8)
        middle = statistics.median(changes)
        right.plot([x - 0.3, x + 0.3], [middle, middle], color=colors[name], linewidth=2.5)
        better = sum(c > 0 for c in changes)
        right.annotate(f"better in {better}/{len(changes)} seeds\nmedian {middle:+.1f} points", (x, 1.0),
                       xycoords=("data", "axes fraction"), ha="center", va="top", fontsize=9)
    every = [100 * (r["second_half"] - r["first_half"]) for runs in results["search"].values() for r in runs]
    right.set_ylim(min(every) - 5, max(every) + 25)  # room for the notes above the dots
    right.axhline(0, color="#999999", linewidth=0.8)
    right.set_xticks([0, 1], ["random search", "tpe"])
    right.set_xlim(-0.6, 1.6)
    right.set_ylabel("median accuracy, trials 11-20 minus 1-10 (points)")
    right.set_title("Learning rate and momentum, 20 trials, one dot per seed")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="turns of grid, asha and median (default 2)")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    ap.add_argument("--draw", metavar="JSON", help="only draw the plot from a tuning.json")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.draw:
        draw(json.loads(Path(args.draw).read_text()), out / "plots" / "tuning.png")
        return
    with tempfile.TemporaryDirectory(prefix="nnrun-tuning-") as tmp:
        load = os.getloadavg()[0]
        print("1. pruning a 16-rate grid", flush=True)
        pruning = pruning_study(Path(tmp), args.workers, args.rounds)
        print("2. tpe against random search", flush=True)
        search = search_study(Path(tmp), args.workers, [int(s) for s in args.seeds.split(",")])
    results = {"workers": args.workers, "cpus": os.cpu_count(), "load_at_start": load, "blas": blas_kernel(),
               "pruning": pruning, "search": search}
    (out / "tuning.json").write_text(json.dumps(results, separators=(",", ":")) + "\n")
    draw(results, out / "plots" / "tuning.png")
    for name, runs in pruning.items():
        same = "grid, no trial plots" if "no trial plots" in name else "grid"
        grid = statistics.median(r["seconds"] for r in pruning[same])
        print(f"{name:22s} best {max(r['best'] for r in runs):.4f}  epochs {statistics.median(r['epochs'] for r in runs):.0f}"
              f"  wall {statistics.median(r['seconds'] for r in runs):.1f} s"
              f" ({statistics.median(r['seconds'] for r in runs) / grid:.2f}x grid)")
    for name, runs in search.items():
        better = sum(r["second_half"] > r["first_half"] for r in runs)
        print(f"{name:6s} second half better in {better}/{len(runs)} seeds; median change "
              f"{statistics.median(r['second_half'] - r['first_half'] for r in runs):+.4f}")


if __name__ == "__main__":
    main()
