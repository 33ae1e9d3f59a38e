"""`nnrun bench` (the library behind it): how fast nnrun trains and predicts, and how much memory
it takes, on the networks of some configs; optionally beside PyTorch running the same network.

  run      run_bench: checks every config, then times each network in worker processes, nnrun
           and PyTorch taking turns repeat by repeat; medians, ratios, the machine's record
  worker   one side of one network in a process of its own: data, batches, the timed loops
  twin     the PyTorch twin of an nnrun network (imports torch; loaded only for --compare torch)
  machine  CPU, load averages, BLAS library and kernel, threads, peak memory

The names below are imported from `run` on first use, so that a worker process
(`python -m nnrun.bench.worker`) loads its own module once, and nothing else it does not need.
"""

from __future__ import annotations

import importlib

__all__ = ["TORCH_MISSING", "Settings", "default_configs", "run_bench"]


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.run"), name)
