"""Hyper-parameter sweeps (the library behind `nnrun sweep`).

  params     the swept parameters: spec syntax (lists, log/lin/int ranges), grid and random draws
  plan       plan_sweep: the sweep document, every trial's overrides and folder name, validated
  search     model-based search (tpe, Optuna's sampler by ask and tell)
  prune      the pruners' decisions (asha rungs and promotions, the median stop)
  tuner      which job a free worker gets next, and each result into the document
  executors  run_trial (one job, in a worker) and the inline, process-pool and Dask executors
  results    a trial's metric, the ranking, sweep.json, sweep.csv, best.yaml and the plots
  document   sweep.json's schema, checked before --resume acts on it
  run        run_sweep: plan -> tuner -> executor -> results, with Ctrl-C and --resume

The sweep folder holds the trial folders (trials/t000-...), sweep.json (the plan and every
result; it is rewritten after each trial, so an interrupted sweep can resume), sweep.csv,
best.yaml and plots/.
"""

from nnrun.sweep.executors import run_trial
from nnrun.sweep.params import Param, expand, merge_params, param_from_spec, parse_param_text
from nnrun.sweep.plan import default_metric, plan_sweep, train_command, trial_folder
from nnrun.sweep.results import DONE_STATUSES, best_index, finish_outputs, metric_of, ranking, read_sweep
from nnrun.sweep.run import SweepReporter, run_sweep

__all__ = ["DONE_STATUSES", "Param", "SweepReporter", "best_index", "default_metric",
           "expand", "finish_outputs", "merge_params", "metric_of", "param_from_spec", "parse_param_text",
           "plan_sweep", "ranking", "read_sweep", "run_sweep", "run_trial", "train_command", "trial_folder"]
