"""What a benchmark figure depends on besides the code: the CPU, the load, the BLAS library and
kernel, its threads and the variables that override its choices. Standard library and numpy."""

from __future__ import annotations

import os
import platform
import resource
import sys
from pathlib import Path

QUIET_LOAD = 0.5  # a 1-minute load average above this at the start makes ratios doubtful
# Variables that make OpenBLAS use another kernel or cache size than it would pick itself.
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "MKL_DEBUG_CPU_TYPE", "MKL_ENABLE_INSTRUCTIONS")


def cpu_model() -> str | None:
    """The CPU's model name, from /proc/cpuinfo (Linux) or the platform."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model name", "cpu model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def usable_cores() -> int:
    """The cores this process may run on (its affinity), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def machine() -> dict:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "usable_cores": usable_cores(),
            "system": platform.system(), "arch": platform.machine()}


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (as `uptime` shows them), None where unknown."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def load_warning(load_at_start: list[float] | None) -> str | None:
    if load_at_start is None or load_at_start[0] <= QUIET_LOAD:
        return None
    return (f"the 1-minute load average was {load_at_start[0]:.2f} at the start (other work on this "
            "machine): ratios only mean something on a quiet machine")


def blas_overrides() -> dict[str, str]:
    """The BLAS kernel overrides set in the environment (users' machines usually set none)."""
    return {k: os.environ[k] for k in BLAS_OVERRIDES if k in os.environ}


def peak_memory_mb() -> float:
    """This process's peak resident memory so far: /proc's VmHWM (Linux), else ru_maxrss (KiB on
    Linux, bytes on macOS). VmHWM first because Linux carries ru_maxrss over an exec: a worker
    started from a large parent would report the parent's size."""
    hwm = proc_status_mb("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def memory_now_mb() -> float | None:
    """This process's resident memory now (VmRSS), None where /proc is missing."""
    return proc_status_mb("VmRSS")


def proc_status_mb(field: str) -> float | None:
    """A memory field of /proc/self/status in MiB, None where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None
