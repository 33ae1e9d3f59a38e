"""Checkpoints: all a run needs to go on exactly where it stopped, in one .npz file.

Written atomically at the end of every epoch by the Checkpoint callback, so that a run stopped at
any moment (Ctrl-C, SIGTERM, kill -9, a closed laptop) resumes from its last complete epoch and
ends bit-identical to a run that was never stopped. The file holds arrays only (no pickle): the
weights, the optimiser's and the schedule's state, each callback's arrays, and one JSON text
for the rest (the metrics rows, random streams, callbacks' numbers).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnrun import nn
from nnrun.errors import ConfigError
from nnrun.fileio import atomic_path
from nnrun.status import Status
from nnrun.train import Callback, TrainState

FILE = "checkpoint.npz"
FORMAT, VERSION = "nnrun.checkpoint", 1
MAX_BYTES = 4 << 30  # refuse anything larger before reading it


@dataclass
class Trainer:
    """The objects whose state a checkpoint keeps besides the network."""

    net: nn.Sequential
    optimizer: nn.Optimizer
    schedule: nn.Schedule
    shuffle: np.random.Generator | None
    callbacks: Sequence[Callback]


class Checkpoint(Callback):
    """Writes <run>/checkpoint.npz after every epoch; put it after the callbacks it saves."""

    def __init__(self, path: str | os.PathLike, trainer: Trainer, fingerprint: dict):
        self.path, self.trainer, self.fingerprint = Path(path), trainer, fingerprint

    def on_train_begin(self, state):
        save(self.path, state, self.trainer, self.fingerprint)  # a run stopped in epoch 1 resumes from here

    def on_epoch_end(self, state, row):
        save(self.path, state, self.trainer, self.fingerprint)


def save(path: Path, state: TrainState, trainer: Trainer, fingerprint: dict) -> None:
    arrays = prefixed("weights", state.last_complete_weights)
    arrays |= prefixed("optimizer", trainer.optimizer.state_dict())
    arrays |= prefixed("schedule", trainer.schedule.state_dict())
    numbers = []
    for i, callback in enumerate(trainer.callbacks):
        saved = callback.state_dict()
        arrays |= prefixed(f"callbacks/{i}", {k: v for k, v in saved.items() if isinstance(v, np.ndarray)})
        numbers.append({k: v for k, v in saved.items() if not isinstance(v, np.ndarray)})
    meta = {"format": FORMAT, "version": VERSION, "fingerprint": fingerprint, "rows": state.rows,
            "stopped": [state.status, state.error] if state.stopping else None,
            "shuffle": trainer.shuffle.bit_generator.state if trainer.shuffle is not None else None,
            "layers": trainer.net.random_state(), "callbacks": numbers,
            "callback_types": [type(c).__name__ for c in trainer.callbacks]}
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def prefixed(prefix: str, arrays: dict) -> dict[str, np.ndarray]:
    return {f"{prefix}/{k}": np.asarray(v) for k, v in arrays.items()}


def section(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    start = prefix + "/"
    return {k[len(start):]: v for k, v in arrays.items() if k.startswith(start)}


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The checkpoint's arrays; ConfigError naming the file when it is not a readable checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no checkpoint to resume from (a run removes it when it ends); "
                          "train again without --resume")
    try:
        if sum(member.file_size for member in zipfile.ZipFile(path).infolist()) > MAX_BYTES:
            raise ValueError(f"it unpacks to more than {MAX_BYTES >> 30} GiB")
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, NotImplementedError) as e:
        raise ConfigError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e}); "
                          "train again without --resume") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ConfigError(f"{path}: not an nnrun checkpoint of version {VERSION}")
    return {"meta": meta, **arrays}


def restore(saved: dict, trainer: Trainer, fingerprint: dict, epochs: int,
            path: Path) -> tuple[list[dict], tuple[Status, str | None] | None]:
    """Put every saved state back into the trainer's objects; returns the rows already done and,
    when a callback had already ended training, its (status, error). ConfigError naming the
    file when the checkpoint does not belong to this config and data, or is damaged."""
    meta = saved["meta"]
    if meta.get("fingerprint") != fingerprint:
        raise ConfigError(f"{path}: written for another config.yaml or other data than the run has now; "
                          "put the run's config back, or train again without --resume")
    try:
        return restore_states(saved, trainer, epochs)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise ConfigError(f"{path}: does not fit this run ({type(e).__name__}: {e}); "
                          "train again without --resume") from None


def restore_states(saved: dict, trainer: Trainer, epochs: int) -> tuple[list[dict], tuple | None]:
    meta = saved["meta"]
    if meta["callback_types"] != [type(c).__name__ for c in trainer.callbacks]:
        raise ValueError("written by a different training set-up")
    if not isinstance(meta["rows"], list) or len(meta["rows"]) > epochs:
        raise ValueError(f"its metrics rows are not a list of at most {epochs} epochs")
    trainer.net.set_weights(section(saved, "weights"))
    trainer.optimizer.load_state_dict(section(saved, "optimizer"))
    trainer.schedule.load_state_dict(section(saved, "schedule"))
    if trainer.shuffle is not None:
        trainer.shuffle.bit_generator.state = meta["shuffle"]
    trainer.net.set_random_state(meta["layers"])
    for i, callback in enumerate(trainer.callbacks):
        callback.load_state_dict({**meta["callbacks"][i], **section(saved, f"callbacks/{i}")})
    stopped = meta["stopped"]
    return meta["rows"], (Status(stopped[0]), stopped[1]) if stopped else None
