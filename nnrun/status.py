"""Status: how a run, a sweep trial or a sweep stands. Standard library only, so the command
line can read statuses without loading the engine."""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    """The value is what summary.json and sweep.json say."""

    COMPLETED = "completed"
    STOPPED_EARLY = "stopped_early"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    PENDING = "pending"  # a sweep trial not run yet
    CRASHED = "crashed"  # a sweep trial whose worker process died
    PLANNED = "planned"  # a sweep planned, not started
    RUNNING = "running"  # a sweep under way (or killed without a chance to say so)
    PAUSED = "paused"  # a sweep trial stopped at a rung, waiting to be promoted (its checkpoint is kept)
    PRUNED = "pruned"  # a sweep trial the pruner stopped for good (still resumable by hand)

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__  # f"{status}" gives the value on every Python version


OK_STATUSES = (Status.COMPLETED, Status.STOPPED_EARLY)
# Runs that stopped on purpose before their end and keep their checkpoint, so they can go on.
PAUSED_STATUSES = (Status.PAUSED, Status.PRUNED)


def is_ok(status: str | None) -> bool:
    """Training ran to its planned end or to early stopping: its metrics can be ranked."""
    return status in OK_STATUSES


def is_partial(status: str | None) -> bool:
    """Paused or pruned: metrics of every epoch it ran, but it stopped before its planned end."""
    return status in PAUSED_STATUSES


def status_tone(status: str | None) -> str:
    """How a status should look: "ok", "warn" (interrupted or not finished yet) or "bad"."""
    if is_ok(status):
        return "ok"
    return "warn" if status in (Status.INTERRUPTED, Status.PENDING, Status.PLANNED, Status.RUNNING,
                                *PAUSED_STATUSES) else "bad"
