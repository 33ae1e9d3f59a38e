"""Pruned and model-based sweeps: ASHA rungs and promotions, the median pruner, bit-identical
continuation of a promoted trial, interrupt and resume between rungs, TPE through a fake sampler
and through Optuna, and every new key and flag with a bad value. Tiny MLPs on the bundled digits."""

from __future__ import annotations

import csv
import json
import shutil
import sys

import pytest
import yaml
from typer.testing import CliRunner

from nnrun import sweep as S
from nnrun.checkpoint import FILE as CHECKPOINT
from nnrun.cli import app
from nnrun.config import load_config
from nnrun.errors import ConfigError
from nnrun.experiment import resume_run, train_run
from nnrun.status import Status
from nnrun.sweep.prune import Asha, Median, MedianStop, ranked, rungs, score_at
from nnrun.sweep.tuner import Tuner, shuffled
from nnrun.train import TrainState
from tests.test_sweep import TINY as SWEEP_TINY
from tests.test_sweep import StopAfter  # Ctrl-C after n results

TINY = {**SWEEP_TINY, "train": {"epochs": 9, "batch_size": 128}}  # test_sweep's network, 9 epochs: rungs 1, 3, 9
RATES = "optimizer.lr=0.0001,0.0003,0.001,0.003,0.01,0.03"


def write_config(tmp_path, **extra):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, **extra}, sort_keys=False))
    return path


def trial(index, history, status=Status.PAUSED):
    return {"index": index, "history": list(history), "status": status}


# -- the pruners' decisions -----------------------------------------------------------------
def test_rungs_grow_by_eta_and_end_at_the_epochs():
    assert rungs(1, 3, 27) == [1, 3, 9, 27]
    assert rungs(1, 3, 30) == [1, 3, 9, 27, 30]
    assert rungs(2, 2, 10) == [2, 4, 8, 10]
    assert rungs(5, 3, 6) == [5, 6]


def test_score_is_the_best_so_far_and_ties_go_to_the_lower_index():
    assert score_at([0.5, 0.9, 0.7], 3, "max") == 0.9 and score_at([0.5, 0.9, 0.7], 1, "max") == 0.5
    assert score_at([2.0, None, 1.0], 3, "min") == 1.0 and score_at([None], 1, "max") is None
    trials = [trial(0, [0.8]), trial(1, [0.9]), trial(2, [0.9]), trial(3, [None])]
    assert [t["index"] for t in ranked(trials, 1, "max")] == [1, 2, 0, 3]
    assert [t["index"] for t in ranked(trials, 1, "min")] == [0, 1, 2, 3]


def test_asha_promotes_the_top_third_of_a_rung_as_results_arrive():
    asha = Asha(epochs=9, mode="max", min_epochs=1, eta=3)
    assert asha.first_target() == 1 and asha.rungs == [1, 3, 9]
    two = [trial(0, [0.5]), trial(1, [0.7])]
    assert asha.promotion(two, closing=False) is None  # 2 // 3 = 0: nobody goes on yet
    three = [*two, trial(2, [0.6])]
    promoted, target = asha.promotion(three, closing=False)
    assert promoted["index"] == 1 and target == 3
    promoted["status"] = Status.PENDING  # running now: no second promotion of the same trial
    assert asha.promotion(three, closing=False) is None


def test_asha_ties_go_to_the_lower_index_and_the_highest_rung_comes_first():
    asha = Asha(epochs=9, mode="max", min_epochs=1, eta=3)
    tied = [trial(0, [0.6]), trial(1, [0.9]), trial(2, [0.9])]
    assert asha.promotion(tied, closing=False)[0]["index"] == 1
    at_three = [trial(i, [0.5, 0.6, 0.7 + i / 100]) for i in range(3)]
    low = [trial(3 + i, [0.1]) for i in range(3)]
    promoted, target = asha.promotion([*low, *at_three], closing=False)
    assert (promoted["index"], target) == (2, 9)


def test_a_trial_that_failed_at_a_rung_is_never_promoted_and_takes_no_place():
    asha = Asha(epochs=9, mode="max", min_epochs=1, eta=3)
    trials = [trial(0, [0.9], Status.FAILED), trial(1, [0.5]), trial(2, [0.4]), trial(3, [0.95], Status.DIVERGED)]
    assert asha.promotion(trials, closing=False) is None  # two in the race at rung 1: 2 // 3 = 0 places
    trials.append(trial(4, [0.3]))
    assert asha.promotion(trials, closing=False)[0]["index"] == 1
    # the best at the last rung diverged: when nothing else can run, the next best still goes on
    top = [trial(0, [0.9, 0.9, 0.9], Status.DIVERGED), trial(1, [0.5, 0.6, 0.7]), trial(2, [0.4])]
    assert asha.promotion(top, closing=True)[0]["index"] == 1


def test_a_paused_trial_between_rungs_waits_at_the_rung_below():
    asha = Asha(epochs=9, mode="max", min_epochs=1, eta=3)
    assert [asha.next_target(n) for n in (0, 1, 2, 3, 8)] == [1, 3, 3, 9, 9]
    trials = [trial(0, [0.9, 0.9]), trial(1, [0.5]), trial(2, [0.4])]  # trial 0 stopped at epoch 2
    assert asha.promotion(trials, closing=False) == (trials[0], 3)


def test_when_nothing_else_can_run_the_best_of_each_rung_goes_on_to_the_end():
    asha = Asha(epochs=9, mode="min", min_epochs=1, eta=3)
    trials = [trial(0, [1.0, 0.5, 0.4]), trial(1, [2.0]), trial(2, [3.0]), trial(3, [1.5])]
    # rung 1: trial 0 holds the one place (it is further already); rung 3: 1 // 3 = 0 places
    assert asha.promotion(trials, closing=False) is None
    promoted, target = asha.promotion(trials, closing=True)
    assert (promoted["index"], target) == (0, 9)


def test_median_table_and_stop():
    median = Median(epochs=5, mode="max", min_epochs=2, min_trials=2)
    others = [trial(0, [0.2, 0.4, 0.6]), trial(1, [0.3, 0.5]), trial(2, [0.1])]
    table = median.job_extras(trial(9, []), others)["median"]["table"]
    assert table == {"2": [0.4, 0.5]}  # epoch 1 is before min_epochs; epoch 3 has one trial

    def run(values):
        stop, state = MedianStop("val_accuracy", "max", table), TrainState(net=None, epochs=5, batches=1)
        stop.on_train_begin(state)
        for epoch, value in enumerate(values, start=1):
            state.epoch = epoch
            stop.on_epoch_end(state, {"val_accuracy": value})
        return state

    assert not run([0.1, 0.46]).stopping  # best so far 0.46 is above the median 0.45
    state = run([0.44, 0.3])  # best so far 0.44 is below it
    assert state.stopping and state.status == Status.PRUNED
    assert not run([0.0]).stopping  # epoch 1: before min_epochs


# -- pruned sweeps, end to end ----------------------------------------------------------------
def rows_without_time(run_dir):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in json.loads((run_dir / "metrics.json").read_text())]


def test_a_promoted_trial_ends_bit_identical_to_the_same_trial_unpruned(tmp_path):
    cfg = write_config(tmp_path)
    doc = S.plan_sweep(cfg, params=[RATES], prune="asha")
    sweep_dir = S.run_sweep(doc, runs_dir=tmp_path / "runs", workers=1, trial_plots=False)
    saved = S.read_sweep(sweep_dir)
    finished = [t for t in saved["trials"] if t["status"] == "completed"]
    assert finished and all(t["epochs"] == 9 for t in finished)
    assert saved["epochs_trained"] < 6 * 9 and saved["best"] in [t["index"] for t in finished]
    for t in finished:  # each went through the rungs 1 and 3, paused and resumed from its checkpoint
        run = sweep_dir / t["run_dir"]
        summary = json.loads((run / "summary.json").read_text())
        assert len(summary["resumed"]) == 2 and not (run / CHECKPOINT).exists()
        alone = train_run(load_config(cfg, tuple(t["overrides"])), tmp_path / f"alone{t['index']}", make_plots=False)
        assert (run / "weights.json").read_bytes() == (alone / "weights.json").read_bytes()
        assert rows_without_time(run) == rows_without_time(alone)
        assert summary["best"]["val_accuracy"] == t["metric"]


def test_pruned_trials_keep_their_folder_status_and_checkpoint(tmp_path):
    cfg = write_config(tmp_path)
    sweep_dir = S.run_sweep(S.plan_sweep(cfg, params=[RATES], prune="asha"), runs_dir=tmp_path / "runs",
                            workers=1, trial_plots=False)
    saved = S.read_sweep(sweep_dir)
    pruned = [t for t in saved["trials"] if t["status"] == "pruned"]
    assert pruned and all(t["epochs"] in (1, 3) and len(t["history"]) == t["epochs"] for t in pruned)
    for t in pruned:
        run = sweep_dir / t["run_dir"]
        assert json.loads((run / "summary.json").read_text())["status"] == "pruned"
        assert (run / CHECKPOINT).is_file() and (run / "weights.json").is_file()
        assert not (run / "report.html").exists()  # drawn only for a run that reached its end
    with open(sweep_dir / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["status"] for r in rows} == {"completed", "pruned"}
    assert sorted(int(r["epochs"]) for r in rows) == sorted(t["epochs"] for t in saved["trials"])
    assert sum(int(r["epochs"]) for r in rows) == saved["epochs_trained"]
    assert (sweep_dir / "plots" / "sweep_curves.png").stat().st_size > 10_000
    # a pruned trial can still be finished by hand, to the same end as if never pruned
    t = pruned[0]
    resume_run(sweep_dir / t["run_dir"], make_plots=False)
    alone = train_run(load_config(cfg, tuple(t["overrides"])), tmp_path / "alone", make_plots=False)
    assert (sweep_dir / t["run_dir"] / "weights.json").read_bytes() == (alone / "weights.json").read_bytes()


def outcome(sweep_dir):
    saved = S.read_sweep(sweep_dir)
    return [(t["status"], t["epochs"], t["metric"], t["history"]) for t in saved["trials"]], saved["epochs_trained"]


@pytest.mark.parametrize("stop_after", [4, 8])
def test_a_sweep_interrupted_between_rungs_resumes_to_the_same_end(tmp_path, stop_after):
    cfg = write_config(tmp_path)
    doc = S.plan_sweep(cfg, params=[RATES], prune="asha")
    straight = S.run_sweep(doc, runs_dir=tmp_path / "a", workers=1, trial_plots=False, plots=False)
    stopped = S.run_sweep(doc, runs_dir=tmp_path / "b", workers=1, trial_plots=False, plots=False,
                          reporter=StopAfter(stop_after))
    saved = S.read_sweep(stopped)
    assert saved["status"] == "interrupted"
    paused = [t for t in saved["trials"] if t["status"] == "paused"]
    assert paused and all((stopped / t["run_dir"] / CHECKPOINT).is_file() for t in paused)
    S.run_sweep(resume=stopped, workers=1, trial_plots=False, plots=False)
    assert S.read_sweep(stopped)["status"] == "completed"
    assert outcome(stopped) == outcome(straight)


def test_the_median_pruner_stops_trials_below_the_median(tmp_path):
    cfg = write_config(tmp_path, sweep={"prune": {"type": "median", "min_epochs": 2, "min_trials": 2}})
    sweep_dir = S.run_sweep(S.plan_sweep(cfg, params=[RATES]), runs_dir=tmp_path / "runs", workers=1,
                            trial_plots=False, plots=False)
    saved = S.read_sweep(sweep_dir)
    assert saved["prune"] == {"type": "median", "min_epochs": 2, "min_trials": 2}
    pruned = [t for t in saved["trials"] if t["status"] == "pruned"]
    assert pruned and all(2 <= t["epochs"] < 9 for t in pruned)
    assert saved["epochs_trained"] == sum(t["epochs"] for t in saved["trials"]) < 6 * 9
    order = shuffled(saved["seed"], 6)  # one worker: each trial ran after those before it in this order
    for t in pruned:  # it was below the median of the trials before it, at the epoch it stopped
        e = t["epochs"]
        earlier = [saved["trials"][i] for i in order[:order.index(t["index"])]]
        before = [score_at(o["history"], e, "max") for o in earlier if len(o["history"]) >= e]
        assert len(before) >= 2 and score_at(t["history"], e, "max") < sorted(before)[len(before) // 2] + 1e-12


def test_pruned_sweeps_run_in_worker_processes_and_on_dask(tmp_path):
    cfg = write_config(tmp_path)
    doc = S.plan_sweep(cfg, params=[RATES], prune="asha")
    local = S.run_sweep(doc, runs_dir=tmp_path / "local", workers=2, trial_plots=False, plots=False)
    saved = S.read_sweep(local)
    assert saved["status"] == "completed" and any(t["status"] == "completed" for t in saved["trials"])
    assert any(t["status"] == "pruned" for t in saved["trials"])
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, worker_dashboard_address=None) as cluster:
        remote = S.run_sweep(doc, runs_dir=tmp_path / "dask", executor="dask", scheduler=cluster.scheduler_address,
                             workers=1, trial_plots=False, plots=False)
    saved = S.read_sweep(remote)
    finished = [t for t in saved["trials"] if t["status"] == "completed"]
    assert finished and any(t["status"] == "pruned" for t in saved["trials"])
    for t in finished:  # promoted on the cluster: the folder travelled there and back
        alone = train_run(load_config(cfg, tuple(t["overrides"])), tmp_path / f"alone{t['index']}", make_plots=False)
        assert (remote / t["run_dir"] / "weights.json").read_bytes() == (alone / "weights.json").read_bytes()


# -- tpe ------------------------------------------------------------------------------------
class FakeSampler:
    """Chooses the rates in a fixed order and records what it was told."""

    def __init__(self, rates):
        self.rates, self.seen = list(rates), []

    def suggest(self, trials, index):
        self.seen.append([(t["index"], t["status"], t["metric"]) for t in trials])
        rate = self.rates[index]
        return [(rate, rate)]


def test_tpe_asks_the_sampler_for_each_trial_and_tells_it_every_result(tmp_path):
    cfg = write_config(tmp_path, train={"epochs": 2, "batch_size": 128})
    doc = S.plan_sweep(cfg, params=["optimizer.lr=log:1e-4:1e-1"], search="tpe", trials=4)
    assert doc["trials"] == [] and doc["n_trials"] == 4 and doc["space"][0]["space"] == ["log", 1e-4, 1e-1]
    fake = FakeSampler([0.001, 0.01, 0.003, 0.03])
    sweep_dir = S.run_sweep(doc, runs_dir=tmp_path / "runs", workers=1, trial_plots=False, plots=False,
                            sampler=fake)
    saved = S.read_sweep(sweep_dir)
    assert [t["params"]["optimizer.lr"] for t in saved["trials"]] == [0.001, 0.01, 0.003, 0.03]
    assert [t["overrides"][-1] for t in saved["trials"]] == [f"optimizer.lr={r}" for r in (0.001, 0.01, 0.003, 0.03)]
    assert all(t["status"] == "completed" for t in saved["trials"])
    assert [len(seen) for seen in fake.seen] == [0, 1, 2, 3]  # told every earlier trial
    assert fake.seen[3][:2] == [(0, "completed", saved["trials"][0]["metric"]),
                                (1, "completed", saved["trials"][1]["metric"])]
    # resume after an interruption asks only for what is missing
    stopped = S.run_sweep(doc, runs_dir=tmp_path / "b", workers=1, trial_plots=False, plots=False,
                          sampler=FakeSampler([0.001, 0.01, 0.003, 0.03]), reporter=StopAfter(2))
    assert len(S.read_sweep(stopped)["trials"]) == 2
    again = FakeSampler([0.001, 0.01, 0.003, 0.03])
    S.run_sweep(resume=stopped, workers=1, trial_plots=False, plots=False, sampler=again)
    assert [len(seen) for seen in again.seen] == [2, 3]
    assert [t["metric"] for t in S.read_sweep(stopped)["trials"]] == [t["metric"] for t in saved["trials"]]


def test_tpe_with_optuna_samples_the_space_and_combines_with_pruning(tmp_path):
    pytest.importorskip("optuna")
    cfg = write_config(tmp_path, train={"epochs": 3, "batch_size": 128})
    params = ["optimizer.lr=log:1e-4:1e-1", "model.layers[1].units=4,8,16", "optimizer.beta1=lin:0.8:0.95"]
    doc = S.plan_sweep(cfg, params=params, search="tpe", trials=5, prune="asha")
    sweep_dir = S.run_sweep(doc, runs_dir=tmp_path / "runs", workers=1, trial_plots=False, plots=False)
    saved = S.read_sweep(sweep_dir)
    assert len(saved["trials"]) == 5 and saved["best"] is not None
    for t in saved["trials"]:
        p = t["params"]
        assert 1e-4 <= p["optimizer.lr"] <= 1e-1 and p["model.layers[1].units"] in (4, 8, 16)
        assert 0.8 <= p["optimizer.beta1"] <= 0.95 and float(f"{p['optimizer.lr']:.4g}") == p["optimizer.lr"]
    assert {t["status"] for t in saved["trials"]} <= {"completed", "pruned"}
    # the same document and seed choose the same trials
    again = S.read_sweep(S.run_sweep(doc, runs_dir=tmp_path / "again", workers=1, trial_plots=False, plots=False))
    assert [t["params"] for t in again["trials"]] == [t["params"] for t in saved["trials"]]


def test_tpe_without_optuna_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    cfg = write_config(tmp_path)
    with pytest.raises(ConfigError, match=r"pip install 'nnrun\[tune\]'"):
        S.plan_sweep(cfg, params=["optimizer.lr=log:1e-4:1e-1"], search="tpe", trials=3)
    result = CliRunner().invoke(app, ["sweep", str(cfg), "-p", "optimizer.lr=log:1e-4:1e-1", "--search", "tpe",
                                      "--trials", "3", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "nnrun[tune]" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


# -- the command line and bad values ------------------------------------------------------------
def test_cli_pruned_sweep_shows_pruned_trials_and_the_epochs_spent(tmp_path):
    cfg = write_config(tmp_path)
    result = CliRunner().invoke(app, ["sweep", str(cfg), "-p", RATES, "--prune", "asha", "-j", "1",
                                      "--no-trial-plots", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert "pruned" in result.output and "paused at epoch 1" in result.output
    assert "of the 54 that 6 full trials take" in result.output
    dry = CliRunner().invoke(app, ["sweep", str(cfg), "-p", RATES, "--prune", "asha", "--dry-run"])
    assert dry.exit_code == 0 and "rungs at epochs 1, 3, 9" in dry.output


BAD_FLAGS = {
    "unknown prune": (["--prune", "hyperband"], "hyperband"),
    "unknown search": (["--search", "bayes"], "bayes"),
    "zero trials": (["--search", "random", "--trials", "0"], "--trials"),
    "trials on a grid": (["--trials", "3"], "a grid runs every combination"),
    "negative seed": (["--search", "random", "--trials", "3", "--seed", "-1"], "greater than or equal to 0"),
    "random without trials": (["--search", "random"], "needs --trials N"),
    "random and tpe": (["--random", "3", "--search", "tpe"], "--random N is --search random --trials N"),
    "prune a test metric": (["--prune", "asha", "--metric", "test_accuracy"], "measured once, at the end"),
    "prune swept epochs": (["--prune", "median", "-p", "train.epochs=5,9"], "train.epochs is swept"),
    "resume with prune": (["--resume", "x", "--prune", "asha"], "drop --param"),
}


@pytest.mark.parametrize("case", BAD_FLAGS)
def test_bad_flags_are_one_line_with_exit_2(tmp_path, case):
    args, expected = BAD_FLAGS[case]
    cfg = write_config(tmp_path)
    if args[0] == "--resume":
        result = CliRunner().invoke(app, ["sweep", *args, "--runs-dir", str(tmp_path / "runs")])
    else:
        result = CliRunner().invoke(app, ["sweep", str(cfg), "-p", RATES, *args, "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


BAD_KEYS = {
    "eta 1": ({"prune": {"type": "asha", "eta": 1}}, "eta"),
    "min_epochs 0": ({"prune": {"type": "asha", "min_epochs": 0}}, "min_epochs"),
    "min_epochs at the end": ({"prune": {"type": "asha", "min_epochs": 9}}, "must be below train.epochs"),
    "unknown type": ({"prune": {"type": "hyperband"}}, "asha, median or none"),
    "a median key on asha": ({"prune": {"type": "asha", "min_trials": 3}}, "min_trials"),
    "min_trials 0": ({"prune": {"type": "median", "min_trials": 0}}, "min_trials"),
    "unknown search": ({"search": "bayes"}, "search"),
    "zero trials": ({"search": "random", "trials": 0}, "trials"),
    "tpe without trials": ({"search": "tpe"}, "needs --trials N (or sweep.trials"),
}


@pytest.mark.parametrize("case", BAD_KEYS)
def test_bad_sweep_keys_are_one_line_with_exit_2(tmp_path, case):
    section, expected = BAD_KEYS[case]
    cfg = write_config(tmp_path, sweep={"params": {"optimizer.lr": [0.01, 0.1]}, **section})
    result = CliRunner().invoke(app, ["sweep", str(cfg), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output and str(cfg.name) in result.output
    assert not (tmp_path / "runs").exists()


def test_the_shorthand_prune_name_and_the_command_line_type_take_the_sections_settings(tmp_path):
    cfg = write_config(tmp_path, sweep={"prune": "asha"})
    assert S.plan_sweep(cfg, params=[RATES])["prune"] == {"type": "asha", "min_epochs": 1, "eta": 3}
    cfg = write_config(tmp_path, sweep={"prune": {"type": "asha", "eta": 2}})
    assert S.plan_sweep(cfg, params=[RATES], prune="asha")["prune"]["eta"] == 2
    assert S.plan_sweep(cfg, params=[RATES], prune="median")["prune"] == {"type": "median", "min_epochs": 1,
                                                                         "min_trials": 3}
    assert S.plan_sweep(cfg, params=[RATES], prune="none")["prune"] is None


def test_a_crashed_job_keeps_the_trials_progress_so_resume_goes_on_from_its_checkpoint(tmp_path):
    from nnrun.sweep.executors import crashed

    cfg = write_config(tmp_path)
    doc = S.plan_sweep(cfg, params=[RATES], prune="asha")
    tuner = Tuner(tmp_path, doc)
    t = doc["trials"][2]
    t.update(status=Status.PAUSED, history=[0.5, 0.6, 0.7], epochs=3)
    t.update(status=Status.PENDING, target=9)  # promoted, then its worker died
    tuner.running.add(2)
    tuner.record(t, crashed(tuner.job(t), "BrokenProcessPool"))
    assert t["status"] == "crashed" and t["history"] == [0.5, 0.6, 0.7] and t["target"] == 9
    assert doc.get("epochs_trained", 0) == 0
    t.update(status=Status.PENDING, target=None)  # as --resume finds it, say after an older nnrun
    job = tuner.next_job()
    assert job["index"] == 2 and job["stop_at"] == 9


def test_resume_refuses_a_paused_trial_whose_folder_leads_outside(tmp_path):
    cfg = write_config(tmp_path)
    sweep_dir = S.run_sweep(S.plan_sweep(cfg, params=[RATES], prune="asha"), runs_dir=tmp_path / "runs",
                            workers=1, trial_plots=False, plots=False, reporter=StopAfter(6))
    saved = S.read_sweep(sweep_dir)
    paused = next(t for t in saved["trials"] if t["status"] == "paused")
    victim = tmp_path / "victim"
    victim.mkdir()
    folder = sweep_dir / paused["run_dir"]
    shutil.rmtree(folder)
    folder.symlink_to(victim)
    result = CliRunner().invoke(app, ["sweep", "--resume", str(sweep_dir)])
    assert result.exit_code == 2 and "outside" in result.output and "Traceback" not in result.output
    assert list(victim.iterdir()) == []


HOSTILE = {
    "seed": lambda d: d.update(seed="x"),
    "negative seed": lambda d: d.update(seed=-1),
    "train not a mapping": lambda d: d["base_config"].update(train="x"),
    "epochs not a number": lambda d: d["base_config"]["train"].update(epochs="abc"),
    "a hundred million epochs": lambda d: d["base_config"]["train"].update(epochs=10**8),
    "a log range through 0": lambda d: d.update(space=[{"key": "optimizer.lr", "space": ["log", 0, 1],
                                                         "values": [1], "labels": [1]}]),
    "a range upside down": lambda d: d.update(space=[{"key": "optimizer.lr", "space": ["lin", 2, 1],
                                                       "values": [1], "labels": [1]}]),
    "labels and values differ": lambda d: d.update(space=[{"key": "k", "space": None, "values": [1, 2], "labels": [1]}]),
    "a history too long": lambda d: d["trials"][0].update(history=[0.5] * 100_001),
    "a bad target": lambda d: d["trials"][0].update(target=0),
    "an unknown pruner": lambda d: d.update(prune={"type": "hyperband"}),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_resume_checks_the_new_fields_of_sweep_json(tmp_path, case):
    cfg = write_config(tmp_path)
    sweep_dir = S.run_sweep(S.plan_sweep(cfg, params=[RATES], prune="asha"), runs_dir=tmp_path / "runs",
                            workers=1, trial_plots=False, plots=False, reporter=StopAfter(3))
    doc = S.read_sweep(sweep_dir)
    HOSTILE[case](doc)
    (sweep_dir / "sweep.json").write_text(json.dumps(doc))
    before = sorted(p.name for p in (sweep_dir / "trials").iterdir())
    result = CliRunner().invoke(app, ["sweep", "--resume", str(sweep_dir)])
    assert result.exit_code == 2, result.output
    assert "sweep.json" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in (sweep_dir / "trials").iterdir()) == before


def test_the_sections_trials_count_with_a_command_line_search(tmp_path):
    cfg = write_config(tmp_path, sweep={"trials": 3})
    assert S.plan_sweep(cfg, params=[RATES], search="random")["n_trials"] == 3
    assert len(S.plan_sweep(cfg, params=[RATES], search="random")["trials"]) == 3


def test_a_trial_interrupted_after_its_last_epoch_completes_on_resume_instead_of_pausing(tmp_path):
    """Promoted to the last rung, stopped after the last epoch's checkpoint: resuming to that
    rung finishes the run (it used to pause at the end and be pruned)."""
    from nnrun.experiment import RunInterrupted
    from nnrun.train import Callback, PauseAt

    class StopAtTheEnd(Callback):
        def on_train_end(self, state):
            raise KeyboardInterrupt

    exp = load_config(write_config(tmp_path))
    with pytest.raises(RunInterrupted):
        train_run(exp, folder=tmp_path / "run", make_plots=False, callbacks=[StopAtTheEnd()])
    resume_run(tmp_path / "run", [PauseAt(9)], make_plots=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 9
    assert not (tmp_path / "run" / CHECKPOINT).exists()


def test_plan_refuses_a_negative_seed(tmp_path):
    with pytest.raises(ConfigError, match="--seed -1: use an integer >= 0"):
        S.plan_sweep(write_config(tmp_path), params=[RATES], search="random", trials=3, seed=-1)


def test_tpe_with_no_more_trials_than_its_random_start_up_says_so(tmp_path):
    pytest.importorskip("optuna")
    result = CliRunner().invoke(app, ["sweep", str(write_config(tmp_path)), "-p", "optimizer.lr=log:1e-4:1e-1",
                                      "--search", "tpe", "--trials", "8", "--dry-run"])
    assert result.exit_code == 0 and "with --trials 8 this is a random search" in result.output


def test_sweep_plots_count_pruned_trials_apart_from_failed_ones(tmp_path, monkeypatch):
    from nnrun.plots import sweeps as P

    trials = [{"params": {"a": 1, "b": 2}, "status": s, "metric": m}
              for s, m in (("completed", 0.9), ("pruned", 0.5), ("paused", 0.4), ("diverged", None), ("failed", None))]
    assert P._counts(trials) == (2, 2)
    drawn = []
    monkeypatch.setattr(P, "_sweep_scatter", lambda *args: drawn.append(args[1]) or args[5])
    grid = [{"params": {"lr": lr, "u": u}, "status": "completed", "metric": 0.9} for lr in (0.1, 1) for u in (8, 16)]
    P.sweep_plot(grid, ["lr", "u"], "val_accuracy", tmp_path / "grid.png")
    assert drawn == [] and (tmp_path / "grid.png").is_file()  # a grid is a heat map
    sampled = [{"params": {"lr": 10 ** -i, "m": i / 10}, "status": "completed", "metric": 0.9} for i in range(6)]
    P.sweep_plot(sampled, ["lr", "m"], "val_accuracy", tmp_path / "sampled.png")
    assert drawn == [["lr", "m"]]


# -- one process at a time in a folder ------------------------------------------------------------
def test_a_second_resume_of_the_same_folder_is_refused_while_the_first_runs(tmp_path):
    from nnrun.fileio import LOCK_FILE, FolderBusy, folder_lock, remove_leftovers

    cfg = write_config(tmp_path)
    sweep_dir = S.run_sweep(S.plan_sweep(cfg, params=[RATES], prune="asha"), runs_dir=tmp_path / "runs",
                            workers=1, trial_plots=False, plots=False, reporter=StopAfter(4))
    before = (sweep_dir / "sweep.json").read_bytes()
    with folder_lock(sweep_dir, "sweep"):  # as the first `nnrun sweep --resume` holds it
        with pytest.raises(FolderBusy, match="another nnrun process is working on this sweep"):
            S.run_sweep(resume=sweep_dir, workers=1)
        result = CliRunner().invoke(app, ["sweep", "--resume", str(sweep_dir)])
        assert result.exit_code == 1 and "another nnrun process" in result.output and "Traceback" not in result.output
    assert (sweep_dir / "sweep.json").read_bytes() == before  # nothing touched
    S.run_sweep(resume=sweep_dir, workers=1, trial_plots=False, plots=False)  # released: it goes on
    assert S.read_sweep(sweep_dir)["status"] == "completed"
    run = sweep_dir / next(t for t in S.read_sweep(sweep_dir)["trials"] if t["status"] == "pruned")["run_dir"]
    with folder_lock(run, "run"):
        with pytest.raises(FolderBusy, match="this run"):
            resume_run(run, make_plots=False)
        remove_leftovers(run)
        assert (run / LOCK_FILE).exists()  # a resume's clean-up never removes a lock it holds


def test_a_run_being_trained_cannot_be_resumed_and_the_lock_file_is_never_followed(tmp_path):
    from nnrun.fileio import LOCK_FILE, FolderBusy, OutsideFolder
    from nnrun.train import Callback

    seen = []

    class ResumeMeanwhile(Callback):
        def on_epoch_end(self, state, row):
            if not seen:
                with pytest.raises(FolderBusy):
                    resume_run(tmp_path / "run", make_plots=False)
                seen.append(row["epoch"])

    exp = load_config(write_config(tmp_path))
    train_run(exp, folder=tmp_path / "run", make_plots=False, callbacks=[ResumeMeanwhile()])
    assert seen == [1] and not (tmp_path / "run" / LOCK_FILE).exists()
    (tmp_path / "outside").mkdir()
    stopped = S.run_sweep(S.plan_sweep(write_config(tmp_path), params=[RATES], prune="asha"),
                          runs_dir=tmp_path / "runs", workers=1, trial_plots=False, plots=False, reporter=StopAfter(3))
    (stopped / LOCK_FILE).symlink_to(tmp_path / "outside" / "made-by-nnrun")
    with pytest.raises(OutsideFolder, match="remove it"):
        S.run_sweep(resume=stopped, workers=1)
    assert list((tmp_path / "outside").iterdir()) == []
