"""What nnrun trusts, as properties (issue 15): mutated sweep.json, summary.json, weights.json and
YAML files fed to the commands that read them (runs, compare, evaluate, sweep --resume,
validate, train --resume). Whatever the file says, the command ends with exit code 0, 1 or 2,
never a traceback or an "unexpected" error; nothing outside the folder it works in changes;
text from the file reaches the terminal without raw control characters; and memory stays under
a bound."""

from __future__ import annotations

import copy
import json
import resource
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nnrun.cli import app
from tests.test_security import TINY, canary, tree

runner = CliRunner()
# The process's peak resident memory may grow by at most this over the whole run of these
# properties (tracemalloc would triple their time): no example makes a small file cost more.
MEMORY_BOUND = 256 << 20


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10  # Linux reports KiB
COUNTED = {"examples": 0, "commands": 0, "start_rss": 0}


def examples(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# -- the folders: one pristine copy, a fresh copy per example --------------------------------
@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """pristine/config.yaml, pristine/runs/<run>, pristine/runs/<sweep> (two finished trials)."""
    from nnrun.config import load_config
    from nnrun.experiment import train_run
    from nnrun.sweep import run_sweep

    root = tmp_path_factory.mktemp("pristine")
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump(TINY, sort_keys=False))
    train_run(load_config(config), root / "runs", make_plots=False)
    run_sweep(str(config), runs_dir=root / "runs", workers=1, trial_plots=False, plots=False,
              params=["optimizer.lr=0.01,0.1"])
    return root


@pytest.fixture(scope="module")
def arena(tmp_path_factory) -> Path:
    """arena/outside (a canary folder) and arena/inside, where each example gets its copy."""
    root = tmp_path_factory.mktemp("arena")
    COUNTED["start_rss"] = peak_rss()
    canary(root / "outside")
    (root / "inside").mkdir()
    return root


class Example:
    """A fresh copy of the pristine folders inside the arena: .config, .run, .sweep."""

    def __init__(self, pristine: Path, arena: Path):
        self.arena = arena
        self.home = Path(tempfile.mkdtemp(dir=arena / "inside"))
        shutil.copytree(pristine, self.home, dirs_exist_ok=True)
        self.runs = self.home / "runs"
        self.config = self.home / "config.yaml"
        self.run = next(p for p in self.runs.iterdir() if "-sweep-" not in p.name)
        self.sweep = next(p for p in self.runs.iterdir() if "-sweep-" in p.name)
        self.other = self.runs / "20000101-000000-other"
        shutil.copytree(self.run, self.other)

    def command(self, name: str) -> list[str]:
        return {
            "runs": ["runs", "--runs-dir", self.runs],
            "runs --all --json": ["runs", "--all", "--json", "--runs-dir", self.runs],
            "runs --csv": ["runs", "--csv", "--runs-dir", self.runs],
            "compare": ["compare", self.run, self.other, "--out", self.home],
            "evaluate": ["evaluate", self.run, "--no-plots"],
            "evaluate latest": ["evaluate", "latest", "--no-plots", "--runs-dir", self.runs],
            "train --resume": ["train", "--resume", self.run, "-q"],
            "sweep --resume": ["sweep", "--resume", self.sweep, "-q", "--no-trial-plots", "-j", "1"],
            "validate": ["validate", self.config],
            "validate the run's config": ["validate", self.run / "config.yaml"],
        }[name]

    def check(self, name: str) -> None:
        """Run the command and check every promise."""
        result = runner.invoke(app, [str(a) for a in self.command(name)], env={"COLUMNS": "100"})
        COUNTED["commands"] += 1
        output = result.output
        assert result.exit_code in (0, 1, 2), (name, result.exit_code, output)
        assert result.exception is None or isinstance(result.exception, SystemExit), (name, repr(result.exception))
        assert "Traceback" not in output and "unexpected" not in output, (name, output)
        assert not any(c in output for c in "\x1b\x07\x00\r\x9b"), (name, output)
        assert all(line.startswith(("error: ", "warning: ", "latest: ", "wrote ")) for line in result.stderr.splitlines()), \
            (name, result.stderr)
        assert tree(self.arena / "outside") == {"keep.txt": b"mine\n"}, name
        assert sorted(p.name for p in self.arena.iterdir()) == ["inside", "outside"], name
        assert peak_rss() - COUNTED["start_rss"] < MEMORY_BOUND, name

    def close(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)


# -- mutations ------------------------------------------------------------------------------
HOSTILE = st.sampled_from([
    None, True, False, -1, 0, 1, 10**30, -(10**30), 1e308, -1e-308, float("nan"), float("inf"), "",
    "[/]", "[bold red]x[/]", ":warning:", "\x1b[2J\x1b]0;title\x07", "a\nb\rc\x00", "=cmd|' /C calc'!A0",
    "../../../outside/evil", "../../../../outside", "/tmp", "t000", "t000-..", "trials/../../x", "trials/t999",
    "completed", "pending", "interrupted", "val_loss", "max", "x" * 5000, [], {}, [[[[]]]], {"a": {"b": [1]}},
    [1, "2", None], list(range(50)), {"epoch": "x", "val_accuracy": "y"},
])
VALUES = st.one_of(HOSTILE, st.integers(), st.floats(), st.text(max_size=20),
                   st.lists(st.integers(), max_size=4), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
# (kind, where: an index into the document's paths, value)
MUTATION = st.tuples(st.sampled_from(["set", "set", "set", "delete"]), st.integers(0, 10**6), VALUES)
TEXT_MUTATION = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("replace"), st.binary(max_size=200)),
    st.tuples(st.just("nest"), st.integers(10, 200_000)),
)
# ("every", (where, values)): each key of one object in the document (chosen by `where`: the
# document itself, a trial, a summary's best epoch...) gets the next value: many fields wrong at once
EVERY_KEY = st.tuples(st.integers(0, 10**6), st.lists(HOSTILE, min_size=1, max_size=20)).map(lambda m: ("every", m))
JSON_CHANGE = st.one_of(EVERY_KEY, st.lists(MUTATION, min_size=1, max_size=6).map(lambda m: ("tree", m)),
                        TEXT_MUTATION.map(lambda m: ("text", m)))


def paths(node, prefix=()) -> list[tuple]:
    """Every path into a JSON document, the root first; long lists contribute their first items."""
    found = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            found += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:8]):
            found += paths(v, (*prefix, i))
    return found


def mutate_tree(doc, mutations):
    for kind, where, value in mutations:
        chosen = paths(doc)
        path = chosen[where % len(chosen)]
        if not path:
            doc = copy.deepcopy(value) if kind == "set" else {}
            continue
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        if kind == "set":
            parent[path[-1]] = copy.deepcopy(value)
        elif isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    return doc


def mutate_text(text: bytes, mutation) -> bytes:
    kind, arg = mutation
    if kind == "truncate":
        return text[:int(len(text) * arg)]
    if kind == "replace":
        return arg
    return b"[" * arg + b"]" * arg


def mutate_every_key(doc, change):
    where, values = change
    objects = [node for node in (value_at(doc, path) for path in paths(doc)) if isinstance(node, dict)]
    if objects:
        chosen = objects[where % len(objects)]
        for i, key in enumerate(chosen):
            chosen[key] = copy.deepcopy(values[i % len(values)])
    return doc


def value_at(doc, path):
    for part in path:
        doc = doc[part]
    return doc


def mutate_json(path: Path, change) -> None:
    kind, arg = change
    if kind == "text":
        path.write_bytes(mutate_text(path.read_bytes(), arg))
        return
    doc = json.loads(path.read_text())
    if kind == "at":  # explicit examples: [(path, value), ...]
        for where, value in arg:
            value_at(doc, where[:-1])[where[-1]] = value
    else:
        doc = mutate_tree(doc, arg) if kind == "tree" else mutate_every_key(doc, arg)
    path.write_text(json.dumps(doc))


YAML_SNIPPETS = st.sampled_from([
    "x: &a [1, 2]\ny: [*a, *a, *a]\n",
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefg", "bcdefgh", strict=True)),
    "x: !!python/object/apply:os.system ['touch ../../../outside/pwned']\n",
    "name: a\nname: b\n", "r: &r [*r]\n", "n: " + "[" * 500 + "]" * 500 + "\n",
    "n: " + "9" * 500 + "\n", "? [a, b]\n: c\n", "--- 1\n--- 2\n", "\x00\x1b[2J\n", "name: '[/]'\n",
    "data: {train: {csv: ../../../outside/keep.txt}}\n", "data: {train: {csv: /dev/zero}}\n",
])
YAML_CHANGE = st.one_of(
    st.lists(MUTATION, min_size=1, max_size=4).map(lambda m: ("tree", m)), EVERY_KEY,
    st.tuples(st.just("append"), YAML_SNIPPETS),
    st.tuples(st.just("prepend"), YAML_SNIPPETS),
    TEXT_MUTATION.map(lambda m: ("text", m)),
)


def mutate_yaml(path: Path, change) -> None:
    kind, arg = change
    text = path.read_bytes()
    if kind in ("tree", "every"):
        doc = yaml.safe_load(text)
        doc = mutate_tree(doc, arg) if kind == "tree" else mutate_every_key(doc, arg)
        path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    elif kind == "append":
        path.write_bytes(text + arg.encode())
    elif kind == "prepend":
        path.write_bytes(arg.encode() + text)
    else:
        path.write_bytes(mutate_text(text, arg))


def check_all(pristine: Path, arena: Path, mutate, commands) -> None:
    example = Example(pristine, arena)
    COUNTED["examples"] += 1
    try:
        mutate(example)
        for name in commands:
            example.check(name)
    finally:
        example.close()


# -- the properties: each example's file goes to every command that reads it ------------------
MARKUP, ESCAPE = "[/][bold]x[/]", "\x1b[2J\x1b]0;title\x07"


@examples(6)
@example(change=("every", (0, [MARKUP, ESCAPE, [1], {}, None, 10**30, "x"])))
@example(change=("at", [(("best",), [1]), (("status",), MARKUP), (("name",), ESCAPE), (("class_names",), [1, {}])]))
@given(change=JSON_CHANGE)
def test_any_summary_json(pristine, arena, change):
    check_all(pristine, arena, lambda ex: mutate_json(ex.run / "summary.json", change),
              ["runs", "runs --all --json", "runs --csv", "compare", "evaluate latest", "train --resume"])


@examples(10)
@example(change=("at", [(("trials", 0, "status"), "pending"), (("trials", 0, "name"), "../../../outside")]))
@example(change=("at", [(("trials", 1), "t001"), (("best",), 1), (("trials", 0, "params"), {"x": MARKUP})]))
@example(change=("at", [(("trials", 0, "run_dir"), "../../../outside"), (("best",), 0), (("name",), ESCAPE)]))
@example(change=("at", [(("trials",), {"a": 1}), (("metric",), [])]))
@given(change=JSON_CHANGE)
def test_any_sweep_json(pristine, arena, change):
    check_all(pristine, arena, lambda ex: mutate_json(ex.sweep / "sweep.json", change),
              ["runs", "runs --all --json", "sweep --resume"])


@examples(10)
@given(change=JSON_CHANGE)
def test_any_weights_json(pristine, arena, change):
    check_all(pristine, arena, lambda ex: mutate_json(ex.run / "weights.json", change), ["evaluate"])


@examples(8)
@given(change=YAML_CHANGE)
def test_any_yaml(pristine, arena, change):
    def mutate(ex):
        mutate_yaml(ex.config, change)
        mutate_yaml(ex.run / "config.yaml", change)

    check_all(pristine, arena, mutate, ["validate", "validate the run's config", "compare", "evaluate"])


def test_how_many_hostile_cases_were_tried():
    """Runs last in this file: the examples above all ran (the count goes into the report)."""
    if COUNTED["examples"] == 0:
        pytest.skip("run with the property tests above")
    assert COUNTED["commands"] >= COUNTED["examples"] > 0
    print(f"\nhostile files tried: {COUNTED['examples']}, commands run on them: {COUNTED['commands']}")
