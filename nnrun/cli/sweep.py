"""`nnrun sweep`: hyper-parameter sweeps."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from nnrun import fmt
from nnrun.cli.common import (
    RUNS_DIR_ENV,
    RUNS_DIR_HELP,
    SET_HELP,
    Executor,
    Metric,
    Mode,
    Prune,
    Search,
    app,
    err,
    examples,
    handle_errors,
    out,
    plain,
    print_error,
    shown_as_text,
    value_of,
)
from nnrun.status import is_ok, is_partial
from nnrun.sweep.results import epochs_run


def params_text(params: dict, sep: str) -> str:
    return sep.join(f"{k}={fmt.value(v)}" for k, v in params.items())


def trials_table(doc: dict, trials: list[dict], title: str, best: int | None = None,
                 ranked: bool = False) -> Table:
    """One row per trial, named by its id (t003, as its folder); `ranked` trials (best first)
    also get their rank."""
    table = Table(title=plain(title), title_justify="left")
    if ranked:
        table.add_column("rank", justify="right")
    table.add_column("trial", justify="right")
    for name in doc["param_names"]:
        table.add_column(plain(name))
    errors = any(t["error"] for t in trials)
    table.add_column("status", no_wrap=True)
    table.add_column(plain(doc["metric"]), justify="right", no_wrap=True)
    table.add_column("epoch", justify="right")
    pruning = bool(doc.get("prune"))
    if pruning:
        table.add_column("epochs", justify="right")
    table.add_column("seconds", justify="right")
    if errors:
        table.add_column("error", overflow="fold")
    for rank, t in zip(ranks(trials) if ranked else [None] * len(trials), trials, strict=True):
        style = "bold green" if t["index"] == best else (
            "dim" if is_partial(t["status"]) else "red" if not is_ok(t["status"]) else None)
        table.add_row(*([rank] if ranked else []), f"t{t['index']:03d}",
                      *(plain(fmt.value(t["params"].get(k))) for k in doc["param_names"]),
                      plain(t["status"]), fmt.metric(doc["metric"], t["metric"]), fmt.value(t["best_epoch"]),
                      *([str(epochs_run(t)) or "-"] if pruning else []),
                      "-" if t["seconds"] is None else f"{t['seconds']:.1f}",
                      *([plain((t["error"] or "")[:80])] if errors else []), style=style)
    return table


def ranks(ranking: list[dict]) -> list[str]:
    """Each trial's place in a ranking (best first): tied metrics share a place (1, 2, 2, 4);
    trials that failed have none."""
    places, previous = [], None
    for position, t in enumerate(ranking, start=1):
        if not is_ok(t["status"]) or t["metric"] is None:
            places.append("-")
            continue
        places.append(places[-1] if previous is not None and t["metric"] == previous else str(position))
        previous = t["metric"]
    return places


class LiveSweepReporter:
    """A live table of finished trials on a terminal; one line per trial otherwise."""

    def __init__(self, quiet: bool = False):
        self.quiet, self.live, self.done, self.total, self.jobs = quiet, None, {}, 0, 0

    def start(self, doc, pending, workers):
        self.total = pending
        if self.quiet:
            return
        out.print(shown_as_text(f"sweep {doc['name']}: {pending} trial(s) to run on {workers} worker(s) "
                                f"({doc.get('executor', 'local')}); metric {doc['metric']} ({doc['mode']})"),
                  markup=False)
        if out.is_terminal:
            self.live = Live(self.table(doc), console=out, refresh_per_second=4)
            self.live.start()

    def table(self, doc) -> Table:
        finished = sum(t["status"] != "paused" for t in self.done.values())
        return trials_table(doc, sorted(self.done.values(), key=lambda t: t["index"]),
                            f"finished {finished}/{self.total}")

    def trial_done(self, trial, doc):
        self.done[trial["index"]] = dict(trial)
        self.jobs += 1
        if self.quiet:
            return
        if self.live is not None:
            self.live.update(self.table(doc))
        else:
            params = params_text(trial["params"], "  ")
            extra = f"  {trial['error']}" if trial["error"] else ""
            reached = f" at epoch {epochs_run(trial)}" if doc.get("prune") else ""
            out.print(shown_as_text(f"[{self.jobs}] t{trial['index']:03d}  {params}  "
                                    f"{trial['status']}{reached}  {doc['metric']} "
                                    f"{fmt.metric(doc['metric'], trial['metric'])}{extra}"),
                      markup=False, soft_wrap=True)

    def finish(self, doc):
        self.close()

    def close(self):
        if self.live is not None:
            self.live.stop()
            self.live = None


def print_plan(doc: dict) -> None:
    """--dry-run: the trials (or a tpe search's space), the pruner's plan, and each trial's
    train command."""
    from nnrun.sweep import train_command

    if doc["search"] == "tpe":
        out.print(shown_as_text(f"sweep {doc['name']}: {doc['n_trials']} trial(s) chosen by tpe from:"), markup=False)
        for s in doc["space"]:
            shown = f"{s['space'][0]}:{s['space'][1]:g}:{s['space'][2]:g}" if s["space"] else \
                ", ".join(fmt.value(v) for v in s["labels"])
            out.print(shown_as_text(f"  {s['key']} = {shown}"), markup=False, soft_wrap=True)
    else:
        out.print(trials_table(doc, doc["trials"], f"sweep {doc['name']}: {len(doc['trials'])} trial(s)"))
    if doc.get("prune"):
        out.print(shown_as_text(pruning_plan(doc)), markup=False, soft_wrap=True)
    for t in doc["trials"]:
        out.print(f"t{t['index']:03d}: {shown_as_text(train_command(doc['config'], t['overrides']))}",
                  markup=False, soft_wrap=True)


def pruning_plan(doc: dict) -> str:
    from nnrun.sweep.prune import rungs
    from nnrun.sweep.tuner import base_epochs

    p, epochs = doc["prune"], base_epochs(doc)
    if p["type"] == "asha":
        return (f"pruning: asha, rungs at epochs {', '.join(map(str, rungs(p['min_epochs'], p['eta'], epochs)))}; "
                f"the top 1/{p['eta']} at each rung go on")
    return (f"pruning: median, from epoch {p['min_epochs']} once {p['min_trials']} other trial(s) "
            "have reached it")


def budget_line(doc: dict) -> str | None:
    """How many epochs a pruned sweep trained, against every trial to its end."""
    from nnrun.sweep.tuner import base_epochs

    if not doc.get("prune"):
        return None
    full = len(doc["trials"]) * base_epochs(doc)
    spent = doc.get("epochs_trained", 0)
    share = f" ({spent / full:.0%})" if full else ""
    n = len(doc["trials"])
    return f"trained {spent} epochs{share} of the {full} that {n} full trial{'s' if n != 1 else ''} take{'s' if n == 1 else ''}"


def print_ranking(doc: dict) -> None:
    """The trials best first, and the best one's params and score."""
    from nnrun.sweep import ranking

    best = doc["best"]
    out.print(trials_table(doc, ranking(doc), f"ranking by {doc['metric']} ({doc['mode']})", best, ranked=True))
    if best is not None:
        t = doc["trials"][best]
        out.print(shown_as_text(f"best: t{best:03d} {params_text(t['params'], ', ')}  {doc['metric']} "
                                f"{fmt.metric(doc['metric'], t['metric'])} (epoch {t['best_epoch']}); "
                                "config in best.yaml"), markup=False, soft_wrap=True)
    if (line := budget_line(doc)) is not None:
        out.print(line, markup=False, soft_wrap=True)


TPE_STARTUP = 10  # Optuna's TPE: random trials before the model is used

METRIC_HELP = (f"What ranks the trials: {', '.join(m.value for m in Metric)} "
               "(default: val_accuracy; test_accuracy without validation).")
PARAM_SYNTAX = """
--param KEY=SPEC, repeatable; several make the product (the grid):
  KEY=V1,V2,...            these values
  KEY=log:LOW:HIGH[:N]     N values (default 5) evenly spaced in log scale
  KEY=lin:LOW:HIGH[:N]     N values (default 5) evenly spaced
  KEY=int:LOW:HIGH[:STEP]  the integers LOW, LOW+STEP, ... up to HIGH
With --random N, N trials sample the ranges instead of the grid. A --param
replaces the param of the same key in the config's sweep: section."""


@app.command(epilog=escape(PARAM_SYNTAX) + "\n" + examples(
    "nnrun sweep configs/digits-mlp.yaml -p optimizer.lr=0.01,0.1,1 --dry-run",
    "nnrun sweep configs/digits-mlp.yaml -p optimizer.lr=0.1,1 -p seed=0,1,2",
    "nnrun sweep configs/digits-mlp.yaml -p optimizer.lr=log:1e-4:1:9 --random 5",
    "nnrun sweep experiments/lr-sweep.yaml     # params from its sweep: section"))
@handle_errors
def sweep(config: Path | None = typer.Argument(None, help="Experiment YAML file (optional with --resume)."),
          param: list[str] = typer.Option([], "--param", "-p", metavar="KEY=SPEC",
                                          help="Swept key and its values (repeatable; syntax below)."),
          set_: list[str] = typer.Option([], "--set", help=SET_HELP + " Applied to every trial."),
          search: Search | None = typer.Option(None, "--search", help="How trials are chosen: every combination "
                                               "(grid), sampled (random), or from the results so far (tpe, "
                                               "needs the tune extra: pip install 'nnrun\\[tune]'). Default: grid."),
          trials: int | None = typer.Option(None, "--trials", "-n", min=1, metavar="N",
                                               help="Trials of a random or tpe search."),
          random: int | None = typer.Option(None, "--random", min=1, metavar="N",
                                               help="Random search: N trials sampled from the params "
                                               "(--search random --trials N)."),
          prune: Prune | None = typer.Option(None, "--prune", help="Stop hopeless trials early: asha "
                                             "(successive halving) or median. Default: none, or sweep.prune."),
          seed: int | None = typer.Option(None, "--seed", min=0, help="Seed of the random search, of tpe and of a pruned "
                                           "sweep's order (default: the config's)."),
          metric: Metric | None = typer.Option(None, "--metric", metavar="METRIC", help=METRIC_HELP),
          mode: Mode | None = typer.Option(None, "--mode", help="Best is max or min (default: min for losses)."),
          workers: int | None = typer.Option(None, "--workers", "-j", min=1, metavar="N",
                                                help="Parallel trials (default: the number of cores)."),
          executor: Executor = typer.Option(Executor.local, "--executor",
                                            help="Where trials run: local processes or a Dask cluster."),
          scheduler: str | None = typer.Option(None, "--scheduler", help="Dask scheduler address, e.g. tcp://host:8786."),
          resume: Path | None = typer.Option(None, "--resume", help="Sweep folder to complete: runs only the missing trials."),
          runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", envvar=RUNS_DIR_ENV, help=RUNS_DIR_HELP),
          name: str | None = typer.Option(None, "--name", help="Sweep name (default: the config's name)."),
          trial_plots: bool = typer.Option(True, "--trial-plots/--no-trial-plots",
                                           help="Draw each trial's learning curves."),
          dry_run: bool = typer.Option(False, "--dry-run", help="List the trials and exit."),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors and the sweep folder."),
          lr_range: str | None = typer.Option(None, "--lr-range", hidden=True)):
    """Run a hyper-parameter sweep (grid, random or tpe search over config values, optionally pruned).

    Every trial is a normal run folder under <runs-dir>/<time>-sweep-<name>/trials/; the sweep
    folder also gets sweep.json, sweep.csv, best.yaml and plots/. Ctrl-C keeps what finished;
    --resume completes it."""
    from nnrun import sweep as S
    from nnrun.errors import ConfigError

    if lr_range is not None:
        raise ConfigError("--lr-range has moved to its own command: nnrun lr-find CONFIG --min-lr MIN --max-lr MAX")
    if resume is None and config is None:
        raise ConfigError("give a CONFIG (or --resume SWEEP_FOLDER)")
    if resume is not None:
        if param or set_ or random or metric or mode or seed is not None or name or dry_run or search \
                or trials or prune:
            raise ConfigError("--resume continues a sweep as planned: drop --param, --set, --search, --trials, "
                              "--random, --prune, --metric, --mode, --seed, --name and --dry-run")
        doc = None
    else:
        doc = S.plan_sweep(config, param, set_, value_of(metric), value_of(mode), random, seed, name,
                           value_of(search), trials, value_of(prune))
        if doc["search"] == "tpe" and doc["n_trials"] <= TPE_STARTUP:
            err.print(f"note: tpe chooses trials from the results only after its first {TPE_STARTUP} random ones; "
                      f"with --trials {doc['n_trials']} this is a random search", markup=False, soft_wrap=True)
        if dry_run:
            print_plan(doc)
            return
    reporter = LiveSweepReporter(quiet)
    try:
        sweep_dir = S.run_sweep(doc, runs_dir=runs_dir, resume=resume, workers=workers, executor=executor.value,
                                scheduler=scheduler, trial_plots=trial_plots, reporter=reporter)
    finally:
        reporter.close()
    doc = S.read_sweep(sweep_dir)
    if not quiet:
        print_ranking(doc)
    out.print(str(sweep_dir), markup=False, soft_wrap=True)
    if doc["status"] == "interrupted":
        err.print(f"interrupted; finish it with: {shown_as_text(shlex.join(['nnrun', 'sweep', '--resume', str(sweep_dir)]))}",
                  markup=False, soft_wrap=True)
        raise typer.Exit(130)
    if doc["best"] is None:
        print_error("no trial succeeded")
        raise typer.Exit(1)
