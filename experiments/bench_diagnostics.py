"""What the training diagnostics cost: their hooks' CPU time as a share of the rest of training.

    .venv/bin/python experiments/bench_diagnostics.py [CONFIG ...] [--epochs 10] [--repeat 5]

Trains each config (default: quickstart and digits-mlp, both on the bundled digits) --repeat
times with diagnostics on, timing the Diagnostics hooks inside the same runs (so that a busy
machine slows both sides alike), BLAS on one thread when threadpoolctl is installed. Also gives
the fastest whole run with and without diagnostics. CPU time, not wall time. One JSON line per
config.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import nullcontext

from nnrun import diagnostics
from nnrun.builder import build_network, load_data
from nnrun.config import load_config
from nnrun.experiment import fit_experiment

HOOKS = ("on_train_begin", "on_epoch_begin", "on_batch_begin", "on_batch_end", "on_epoch_end")
spent = [0.0]


def timed(hook):
    def wrapper(*args, **kwargs):
        start = time.process_time()
        try:
            return hook(*args, **kwargs)
        finally:
            spent[0] += time.process_time() - start
    return wrapper


def one_run(config: str, epochs: int, on: bool) -> tuple[float, float]:
    """(CPU seconds of the whole fit, of which in the diagnostics' hooks)."""
    exp = load_config(config, (f"train.epochs={epochs}", f"train.diagnostics={str(on).lower()}"))
    data = load_data(exp)
    net = build_network(exp, data.input_shape, data.num_classes)
    spent[0] = 0.0
    start = time.process_time()
    fit_experiment(exp, net, data)
    return time.process_time() - start, spent[0]


def one_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(1, user_api="blas")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", default=["configs/quickstart.yaml", "configs/digits-mlp.yaml"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for hook in HOOKS:
        setattr(diagnostics.Diagnostics, hook, timed(getattr(diagnostics.Diagnostics, hook)))
    with one_thread():
        for config in args.configs:
            shares, plain, watched = [], [], []
            for _ in range(args.repeat):
                plain.append(one_run(config, args.epochs, on=False)[0])
                total, hooks = one_run(config, args.epochs, on=True)
                watched.append(total)
                shares.append(hooks / (total - hooks))
            print(json.dumps({"config": config, "epochs": args.epochs, "repeat": args.repeat,
                              "hooks_share_median": round(statistics.median(shares), 4),
                              "fastest_without_s": round(min(plain), 4), "fastest_with_s": round(min(watched), 4)}))


if __name__ == "__main__":
    main()
