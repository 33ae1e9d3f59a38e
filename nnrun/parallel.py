"""Threads for a conv net's batch halves (nn/shards.py), sharing out the BLAS threads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from . import nn
from .nn.shards import THREAD_WORK


def blas() -> dict | None:
    """The BLAS library numpy calls, its kernel and threads, which can change a run's last
    digits (numpy's build configuration names the library when threadpoolctl sees none)."""
    from threadpoolctl import threadpool_info

    loaded = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
    if not loaded:
        return built_blas()
    return {"library": loaded[0].get("internal_api"), "version": loaded[0].get("version"),
            "kernel": loaded[0].get("architecture"), "threads": loaded[0].get("num_threads")}


def built_blas() -> dict | None:
    """The BLAS of numpy's build configuration (numpy 1.26 and later), None when not known."""
    try:
        info = np.__config__.CONFIG["Build Dependencies"]["blas"]
        return {"library": info["name"], "version": info.get("version"), "kernel": None, "threads": None}
    except (AttributeError, KeyError, TypeError):
        return None


def blas_threads() -> int:
    """How many threads the BLAS library would use now (1 in a sweep worker, which limits it)."""
    return (blas() or {}).get("threads") or 1


@contextmanager
def shard_threads(net: nn.Sequential, batch_size: int | None = None, threads: int | None = None) -> Iterator[None]:
    """Within the block, run net's batch halves side by side on `threads` threads (default: as
    many as BLAS would use), the BLAS threads shared out between the halves. Nothing changes for
    a network without halves, with halves of batch_size too small to hand to a thread (BLAS
    keeps its threads then), with one thread, or inside an outer shard_threads. The numbers are
    the same either way: only the speed differs."""
    small = batch_size is not None and (batch_size // 2) * net.shards.work_per_sample < THREAD_WORK
    if len(net.shards) < 2 or net.shards.pool is not None or small:
        yield
        return
    threads = threads or blas_threads()
    if threads < 2:
        yield
        return
    from threadpoolctl import threadpool_limits

    # The BLAS threads shared out between the halves: one each on two cores, four each on eight.
    with threadpool_limits(limits=max(1, threads // len(net.shards)), user_api="blas"):
        net.set_threads(threads)
        try:
            yield
        finally:
            net.set_threads(1)
