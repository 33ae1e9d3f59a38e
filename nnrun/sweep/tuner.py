"""The tuner: which job a free worker gets next, and each result into the sweep document.

A job is "train trial T (from its checkpoint, when it has one) to epoch E": the sweep process
makes every decision, so the same jobs run inline, in worker processes or on Dask. The next job
is, in this order: a promoted trial an interrupted sweep left unfinished, a paused trial the
pruner promotes, the next planned trial (grid, random), a new trial asked from the sampler (tpe).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnrun.status import Status
from nnrun.sweep.plan import plan_trial
from nnrun.sweep.prune import pruner_for
from nnrun.sweep.results import save
from nnrun.sweep.search import params_of, sampler_for


def base_epochs(doc: dict) -> int:
    return int(doc["base_config"].get("train", {}).get("epochs", 10))


class Tuner:
    def __init__(self, sweep_dir: Path, doc: dict, trial_plots: bool = True, sampler=None):
        self.sweep_dir, self.doc, self.trial_plots = sweep_dir, doc, trial_plots
        for t in doc["trials"]:
            with_progress(t)
        self.pruner = pruner_for(doc.get("prune"), base_epochs(doc), doc["mode"])
        search = doc.get("search", "grid")
        self.sampler = sampler or sampler_for(search, doc.get("space") or [], doc["mode"], doc.get("seed") or 0)
        self.running: set[int] = set()

    @property
    def trials(self) -> list[dict]:
        return self.doc["trials"]

    def to_run(self) -> int:
        """Trials not finished yet, counting those the sampler has still to choose."""
        waiting = sum(t["status"] in (Status.PENDING, Status.PAUSED) for t in self.trials)
        return waiting + max(0, self.budget() - len(self.trials))

    def budget(self) -> int:
        """How many trials a sampler may choose (0 for a planned search)."""
        return (self.doc.get("n_trials") or 0) if self.sampler is not None else 0

    def next_job(self) -> dict | None:
        """The job for a free worker, or None when nothing can run now (a result may change that)."""
        trial = self.unfinished_promotion() or self.promoted() or self.planned() or self.asked()
        if trial is None:
            return None
        self.running.add(trial["index"])
        if trial["target"] is None:
            trial["target"] = self.pruner.next_target(len(trial["history"])) if trial["history"] \
                else self.pruner.first_target()
        return self.job(trial)

    def waiting(self) -> list[dict]:
        return [t for t in self.trials if t["status"] == Status.PENDING and t["index"] not in self.running]

    def unfinished_promotion(self) -> dict | None:
        """A trial that was on its way to a later rung when its job stopped (Ctrl-C, a crash)."""
        return next((t for t in self.waiting() if t["history"]), None)

    def promoted(self) -> dict | None:
        closing = not self.running and not self.waiting() and len(self.trials) >= self.budget()
        chosen = self.pruner.promotion(self.trials, closing)
        if chosen is None:
            return None
        trial, target = chosen
        trial.update(status=Status.PENDING, target=target)
        save(self.sweep_dir, self.doc)  # an interrupted sweep goes on with this promotion
        return trial

    def planned(self) -> dict | None:
        """The next planned trial; a pruned sweep takes them in a shuffled order (seeded), so
        that the first trials to reach a rung are not all from one end of a sorted grid."""
        waiting = [t for t in self.waiting() if not t["history"]]
        if not waiting or self.pruner.kind == "none":
            return waiting[0] if waiting else None
        position = {index: place for place, index in enumerate(shuffled(self.doc.get("seed") or 0, len(self.trials)))}
        return min(waiting, key=lambda t: position[t["index"]])

    def asked(self) -> dict | None:
        """New trials from the sampler until one has a valid config (or the budget is spent)."""
        while self.sampler is not None and len(self.trials) < self.budget():
            index = len(self.trials)
            combo = self.sampler.suggest(self.trials, index)
            trial = plan_trial(index, params_of(self.doc["space"]), combo, self.doc["base_config"],
                               self.doc["base_overrides"], f"{self.doc['config']} (trial {index})",
                               Path(self.doc["base_dir"]))
            self.trials.append(with_progress(trial))
            save(self.sweep_dir, self.doc)
            if trial["status"] == Status.PENDING:
                return trial
        return None

    def job(self, trial: dict) -> dict:
        """Everything run_trial needs, as plain data (it may travel to another process or machine)."""
        return {**self.trial_config(trial), "index": trial["index"], "name": trial["name"],
                "trials_dir": str((self.sweep_dir / "trials").resolve()), "metric": self.doc["metric"],
                "mode": self.doc["mode"], "plots": self.trial_plots, "stop_at": trial["target"],
                **self.pruner.job_extras(trial, self.trials)}

    def trial_config(self, trial: dict) -> dict:
        """What trial_experiment reads: the base config, the trial's overrides, where they apply."""
        doc = self.doc
        return {"base_config": doc["base_config"], "base_dir": doc["base_dir"], "source": doc["config"],
                "overrides": trial["overrides"]}

    def dataset_jobs(self) -> list[dict]:
        """The config of each planned trial (for a tpe search, the base config): what the
        datasets to fetch before the workers start are read from."""
        return [self.trial_config(t) for t in self.trials] or [self.trial_config({"overrides": self.doc["base_overrides"]})]

    def record(self, trial: dict, result: dict) -> None:
        """A job's result into its trial: what it reached, the epochs it trained, its time."""
        self.running.discard(trial["index"])
        seconds = (trial["seconds"] or 0.0) + (result.get("seconds") or 0.0)
        trial.update({k: result.get(k) for k in ("status", "metric", "best_epoch", "run_dir", "error")}, seconds=seconds)
        if result.get("history") is None:  # the job left no run (its worker died): --resume retries it
            return
        history = result["history"]
        self.doc["epochs_trained"] = self.doc.get("epochs_trained", 0) + max(0, len(history) - len(trial["history"]))
        trial.update(history=history, epochs=len(history), target=None)


def shuffled(seed: int, n: int) -> list[int]:
    """The order a pruned sweep starts its n planned trials in."""
    return [int(i) for i in np.random.default_rng([seed, 2]).permutation(n)]


def with_progress(trial: dict) -> dict:
    """The fields a trial's progress is kept in (older sweep files lack them)."""
    trial.setdefault("history", [])
    trial.setdefault("epochs", len(trial["history"]))
    trial.setdefault("target", None)
    return trial


def prune_paused(sweep_dir: Path, doc: dict) -> None:
    """At the end of a sweep, the paused trials were not promoted: they are pruned (their run's
    summary says so too; their checkpoint stays, so `nnrun train --resume` can still finish one)."""
    from nnrun.fileio import write_json
    from nnrun.runs import read_summary
    from nnrun.sweep.run import trial_path

    for t in doc["trials"]:
        if t["status"] == Status.PAUSED:
            t["status"] = Status.PRUNED
            run_dir = trial_path(sweep_dir, t)
            summary = read_summary(run_dir)
            if isinstance(summary, dict):
                write_json(run_dir / "summary.json", {**summary, "status": Status.PRUNED})
