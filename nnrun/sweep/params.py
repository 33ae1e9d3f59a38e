"""Swept parameters: reading their specs and expanding them into trials.

A sweep is a list of trials; a trial is a list of `--set` overrides applied to the config (with its
`sweep:` section removed) and trained by train_run() exactly as `nnrun train CONFIG --set ...`
would, so every trial is reproducible on its own.

Parameter values (command line `--param KEY=SPEC` or the `sweep.params` mapping):
  0.001,0.01,0.1      a list (top-level commas; each value read as JSON, then YAML)
  log:1e-5:1:8        8 values spaced evenly in log scale from 1e-5 to 1 (random: log-uniform)
  lin:0:0.5:6         6 values spaced evenly (random: uniform)
  int:16:128:16       integers 16, 32, ... 128 (random: any integer in the range)
In YAML a list gives the values, and a mapping {label: value} names them (handy for whole
values such as model.layers). Keys are dotted as for --set; a negative index counts from the end
(model.layers[-1].activation), resolved per trial after earlier params were applied.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnrun.config import MAX_TRIALS, parse_key, parse_value
from nnrun.errors import ConfigError

RANGE_RE = re.compile(r"^(log|lin|int):([^:]+):([^:]+)(?::([^:]+))?$")


class Param:
    """One swept key: its grid values, a label for each, and (for ranges) the space to sample."""

    def __init__(self, key: str, values: list, labels: list[str] | None = None,
                 space: tuple | None = None):
        if not values:
            raise ConfigError(f"sweep param {key!r}: no values")
        self.key, self.values, self.space = key, list(values), space
        self.labels = labels or [label_for(v, i) for i, v in enumerate(values)]

    def __repr__(self):
        return f"Param({self.key!r}, {self.values!r})"


def round_sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def label_for(value: Any, i: int) -> Any:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, (int, float, str)):
        return value
    return f"#{i + 1}"


# -- reading specs --------------------------------------------------------------------------
def parse_range(key: str, text: str) -> Param | None:
    """'log:1e-5:1:8' -> Param with 8 log-spaced values; None when text is not a range."""
    m = RANGE_RE.match(text.strip())
    if not m:
        return None
    kind, lo_s, hi_s, n_s = m.groups()
    where = f"sweep param {key}={text}"
    try:
        lo, hi = float(lo_s), float(hi_s)
        n = int(n_s) if n_s is not None else None
    except ValueError:
        raise ConfigError(f"{where}: expected {kind}:LOW:HIGH[:N] with numbers") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ConfigError(f"{where}: LOW and HIGH must be finite numbers")
    if kind == "int":
        return int_range(key, where, lo, hi, n)
    return float_range(key, where, kind, lo, hi, n)


def int_range(key: str, where: str, lo: float, hi: float, step: int | None) -> Param:
    if lo != int(lo) or hi != int(hi) or hi < lo:
        raise ConfigError(f"{where}: int:LOW:HIGH[:STEP] needs integers with LOW <= HIGH")
    step = 1 if step is None else step
    if step <= 0:
        raise ConfigError(f"{where}: the step must be positive")
    check_count(where, (int(hi) - int(lo)) // step + 1)
    return Param(key, list(range(int(lo), int(hi) + 1, step)), space=("int", int(lo), int(hi)))


def float_range(key: str, where: str, kind: str, lo: float, hi: float, n: int | None) -> Param:
    n = 5 if n is None else n
    if n < 1:
        raise ConfigError(f"{where}: the number of values must be at least 1")
    check_count(where, n)
    if kind == "log":
        if lo <= 0 or hi <= 0:
            raise ConfigError(f"{where}: log ranges need positive bounds")
        values = np.logspace(math.log10(lo), math.log10(hi), n)
    else:
        values = np.linspace(lo, hi, n)
    values = [round_sig(float(v)) for v in values] if n > 1 else [lo]
    return Param(key, values, space=(kind, lo, hi))


def check_count(where: str, count: int) -> None:
    if count > MAX_TRIALS:
        raise ConfigError(f"{where}: {count:,} values; a sweep runs at most {MAX_TRIALS:,} trials")


def split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets, braces and quotes."""
    parts, depth, quote, cur = [], 0, None, ""
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def parse_param_text(text: str) -> Param:
    """A command-line --param: 'optimizer.lr=0.001,0.01' or 'optimizer.lr=log:1e-5:1:8'."""
    if "=" not in text:
        raise ConfigError(f"--param {text!r}: expected KEY=VALUES, e.g. --param optimizer.lr=0.001,0.01")
    key, raw = (s.strip() for s in text.split("=", 1))
    return param_from_spec(key, raw)


def param_from_spec(key: str, spec: Any) -> Param:
    """A param from a YAML value: list, {label: value}, range string, comma string or scalar."""
    parse_key(key, "sweep param")  # syntax check
    if isinstance(spec, dict):
        return Param(key, list(spec.values()), [str(k) for k in spec])
    if isinstance(spec, list):
        return Param(key, spec)
    if isinstance(spec, str):
        return parse_range(key, spec) or param_from_list_text(key, spec)
    return Param(key, [spec])


def param_from_list_text(key: str, spec: str) -> Param:
    pieces = split_top_level(spec)
    if any(p == "" for p in pieces):
        raise ConfigError(f"sweep param {key}={spec}: empty value in the list")
    return Param(key, [parse_value(p) for p in pieces])


def concrete_key(raw: dict, key: str) -> str:
    """The key with negative list indices resolved against raw (for a plain --set)."""
    node: Any = raw
    out = ""
    for part in parse_key(key, "sweep param"):
        if isinstance(part, int):
            if not isinstance(node, list):
                raise ConfigError(f"sweep param {key!r}: [{part}] indexes something that is not a list")
            idx = part + len(node) if part < 0 else part
            if not 0 <= idx < len(node):
                raise ConfigError(f"sweep param {key!r}: index {part} is out of range ({len(node)} items)")
            out += f"[{idx}]"
            node = node[idx]
        else:
            out += f".{part}" if out else part
            node = node.get(part) if isinstance(node, dict) else None
    return out


def merge_params(section: dict | None, cli: Sequence[str]) -> list[Param]:
    """The sweep section's params, then the command line's (same key: the command line wins)."""
    params: dict[str, Param] = {}
    for key, spec in (section or {}).items():
        params[key] = param_from_spec(key, spec)
    for text in cli:
        p = parse_param_text(text)
        params[p.key] = p
    return list(params.values())


# -- expansion ------------------------------------------------------------------------------
def expand(params: Sequence[Param], random: int | None = None, seed: int = 0) -> list[list[tuple]]:
    """Every trial as [(value, label), ...] in param order: the grid product, or `random` draws
    (ranges sampled continuously, lists uniformly)."""
    if not params:
        return [[]]
    if random:
        check_count(f"--random {random}", random)
    else:
        check_count("the grid (" + " x ".join(str(len(p.values)) for p in params) + ")",
                    math.prod(len(p.values) for p in params))
        return [list(combo) for combo in itertools.product(*[list(zip(p.values, p.labels, strict=True)) for p in params])]
    rng = np.random.default_rng(seed)
    return [[draw(p, rng) for p in params] for _ in range(random)]


def draw(p: Param, rng: np.random.Generator) -> tuple:
    """One random (value, label) of p: from its range when it has one, else one of its values."""
    kind = p.space[0] if p.space else None
    if kind == "log":
        v = round_sig(float(math.exp(rng.uniform(math.log(p.space[1]), math.log(p.space[2])))))
    elif kind == "lin":
        v = round_sig(float(rng.uniform(p.space[1], p.space[2])))
    elif kind == "int":
        v = int(rng.integers(p.space[1], p.space[2] + 1))
    else:
        i = int(rng.integers(len(p.values)))
        return p.values[i], p.labels[i]
    return v, v
