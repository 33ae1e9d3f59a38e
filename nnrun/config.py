"""The experiment schema (pydantic v2): the single source of truth for what a config may say.

Layer, activation, optimiser and schedule models are generated from the engine's registries, so
registering a class there is all it takes to make it configurable (and documented in the README,
which a test checks). load_config() reads YAML, applies --set overrides and validates.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shlex
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from nnrun import fmt
from nnrun.data.catalog import dataset_info
from nnrun.errors import ConfigError
from nnrun.fileio import TooLarge, read_limited, size_text
from nnrun.metrics import EPOCH_METRICS
from nnrun.nn import ACTIVATIONS, INITIALIZERS, LAYERS, LOSSES, OPTIMIZERS, SCHEDULES, Registry, UnknownName
from nnrun.nn.registry import did_you_mean

# The bounds each engine parameter's formula needs (nn/optimizers.py, nn/schedules.py): "name"
# wherever a parameter of that name appears, "owner.name" for one registered class (it wins).
# A list's bounds apply to its items. Checks across keys are in Experiment.fits_the_formulas.
PARAM_BOUNDS: dict[str, dict] = {
    # optimisers; decay rates below 1 (at 1 a moving average never moves)
    "lr": {"gt": 0}, "weight_decay": {"ge": 0}, "clip_norm": {"gt": 0},
    "momentum": {"ge": 0, "lt": 1}, "beta1": {"ge": 0, "lt": 1}, "beta2": {"ge": 0, "lt": 1},
    "eps": {"gt": 0}, "rmsprop.alpha": {"ge": 0, "lt": 1},
    # activations
    "alpha": {"ge": 0}, "beta": {"gt": 0},
    # schedules; a factor <= 0 would flip or zero the rate (the sigmoid policy's gamma is an
    # exponent: negative decays, positive grows)
    "gamma": {}, "step.gamma": {"gt": 0}, "multistep.gamma": {"gt": 0}, "milestones": {"gt": 0},
    "k": {"ge": 0}, "step_size": {"gt": 0}, "T": {"gt": 0}, "lr_end": {"ge": 0}, "lr_min": {"ge": 0},
    "power": {"gt": 0}, "warmup": {"ge": 0}, "factor": {"gt": 0, "lt": 1}, "patience": {"ge": 0},
    "min_delta": {"ge": 0},
}


def param_bounds(cls, name: str) -> dict:
    return PARAM_BOUNDS.get(f"{getattr(cls, 'name', '')}.{name}", PARAM_BOUNDS.get(name, {}))


def unknown_name(kind: str, name: Any, known) -> ValueError:
    """For lists that are not registries (monitors, metrics): the registries' one message."""
    return UnknownName(kind, name, known)


def constructor_params(cls) -> dict[str, inspect.Parameter]:
    """Keyword parameters of cls.__init__ and its bases (first definition wins), minus lr0."""
    params: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        for p in inspect.signature(klass.__init__).parameters.values():
            if p.name not in ("self", "lr0") and p.kind is p.POSITIONAL_OR_KEYWORD:
                params.setdefault(p.name, p)
    return params


def constructor_hints(cls) -> dict[str, Any]:
    """The evaluated annotations of cls.__init__ and its bases (first definition wins): the
    engine's modules use `from __future__ import annotations`, so they are strings until read."""
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if "__init__" in vars(klass):
            hints.update(typing.get_type_hints(klass.__init__))
    return hints


def param_fields(cls, skip=()) -> dict[str, tuple]:
    fields = {}
    hints = constructor_hints(cls)
    for name, p in constructor_params(cls).items():
        if name in skip:
            continue
        annotation = hints.get(name, Any) if p.annotation is not inspect.Parameter.empty else Any
        default = list(p.default) if isinstance(p.default, tuple) else p.default
        bounds = param_bounds(cls, name)
        if get_origin(annotation) is list and bounds:  # bound each item
            annotation, bounds = list[Annotated[get_args(annotation)[0], Field(**bounds)]], {}
        fields[name] = (annotation, Field(default, **bounds))
    return fields


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)


# -- activations ----------------------------------------------------------------------------
ACTIVATION_PARAMS = {name: create_model(f"{name}_params", __base__=Strict, **param_fields(cls))
                     for name, cls in ACTIVATIONS.items()}


def parse_activation(value: Any) -> Any:
    """'relu' or {type: leaky_relu, alpha: 0.1} -> the same, with the name and params checked."""
    if value is None:
        return "linear"
    spec = {"type": value} if isinstance(value, str) else value
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError("give an activation name, or {type: name, ...parameters}")
    spec = dict(spec)
    name = spec.pop("type")
    ACTIVATIONS.get(name)  # an unknown name raises, naming the closest known one
    params = ACTIVATION_PARAMS[name].model_validate(spec).model_dump(exclude_defaults=True)
    return {"type": name, **params} if params else name


ActivationSpec = Annotated[str | dict, BeforeValidator(parse_activation)]


def check_init(value: str | None) -> str | None:
    if value is not None:
        INITIALIZERS.get(value)  # an unknown name raises, naming the closest known one
    return value


# -- layers ---------------------------------------------------------------------------------
class LayerBase(Strict):
    activation: ActivationSpec = "linear"


class ParamLayerBase(LayerBase):
    init: Annotated[str | None, BeforeValidator(check_init)] = None
    init_params: dict[str, float] = {}
    use_bias: bool = True


class DenseConfig(ParamLayerBase):
    type: Literal["dense"]
    units: int = Field(gt=0)


class Conv2DConfig(ParamLayerBase):
    type: Literal["conv2d"]
    filters: int = Field(gt=0)
    kernel_size: Annotated[int, Field(gt=0)] | tuple[Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)]] = 3
    stride: int = Field(1, gt=0)
    padding: Annotated[int, Field(ge=0)] | Literal["same", "valid"] = 0


class PoolConfig(LayerBase):
    pool_size: int = Field(2, gt=0)
    stride: int | None = Field(None, gt=0)


class MaxPoolConfig(PoolConfig):
    type: Literal["maxpool2d"]


class AvgPoolConfig(PoolConfig):
    type: Literal["avgpool2d"]


class FlattenConfig(LayerBase):
    type: Literal["flatten"]


class DropoutConfig(LayerBase):
    type: Literal["dropout"]
    rate: float = Field(0.5, ge=0, lt=1)


ACTIVATION_LAYERS = [create_model(f"{name}_layer", __base__=Strict, type=(Literal[name], ...),
                                  **param_fields(cls))
                     for name, cls in ACTIVATIONS.items()]
LAYER_MODELS = [DenseConfig, Conv2DConfig, MaxPoolConfig, AvgPoolConfig, FlattenConfig,
                DropoutConfig, *ACTIVATION_LAYERS]
if {m.model_fields["type"].annotation.__args__[0] for m in LAYER_MODELS} != set(LAYERS):  # kept under python -O
    raise RuntimeError("every registered layer needs a config model in nnrun.config.LAYER_MODELS")


def layer_tag(value: Any) -> str | None:
    return value.get("type") if isinstance(value, dict) else getattr(value, "type", None)


LayerConfig = Annotated[Union[tuple(Annotated[m, Tag(m.model_fields["type"].annotation.__args__[0])]  # noqa: UP007 (built at run time)
                                    for m in LAYER_MODELS)], Discriminator(layer_tag)]


# -- data -----------------------------------------------------------------------------------
def resolve_path(value: Any, info: ValidationInfo) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"expected a file path (a string), got {shown(value)}")
    path = Path(os.path.expanduser(str(value)))
    base = (info.context or {}).get("base_dir")
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path


def existing_file(value: Any, info: ValidationInfo) -> Path:
    path = resolve_path(value, info)
    if path.is_dir():
        raise ValueError(f"is a folder, not a file: {path}")
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    return path


DataPath = Annotated[Path, BeforeValidator(existing_file)]


class IdxSource(Strict):
    images: DataPath
    labels: DataPath


class CsvSource(Strict):
    csv: DataPath
    label_column: Literal["first", "last"] = "last"
    image_shape: list[Annotated[int, Field(gt=0)]] | None = None
    header: bool | Literal["auto"] = "auto"


class NpzSource(Strict):
    npz: DataPath
    x: str = "x"
    y: str = "y"
    image_shape: list[Annotated[int, Field(gt=0)]] | None = None


def source_tag(value: Any) -> str | None:
    keys = value.keys() if isinstance(value, dict) else getattr(value, "__dict__", {}).keys()
    return next((tag for tag, key in (("idx", "images"), ("csv", "csv"), ("npz", "npz")) if key in keys), None)


Source = Annotated[Annotated[IdxSource, Tag("idx")] | Annotated[CsvSource, Tag("csv")] | Annotated[NpzSource, Tag("npz")],
                   Discriminator(source_tag, custom_error_type="source",
                                 custom_error_message="give {images, labels} (IDX), {csv: file} or {npz: file}")]


class DataConfig(Strict):
    dataset: str | None = None
    train: Source | None = None
    test: Source | None = None
    validation_split: float = Field(0.1, ge=0, lt=1)
    scale: Literal["auto"] | Annotated[float, Field(gt=0)] | None = "auto"

    @field_validator("dataset")
    @classmethod
    def known_dataset(cls, value):
        if value is not None:
            dataset_info(value)  # an unknown name raises, naming the closest known one
        return value

    @model_validator(mode="after")
    def has_training_data(self):
        if self.dataset is None and self.train is None:
            raise ValueError("give data.dataset (a named dataset) or data.train (files)")
        return self


# -- optimiser and schedule -----------------------------------------------------------------
def tagged_union(registry: Registry, base: type, skip=()):
    models = [Annotated[create_model(f"{name}_{registry.kind}", __base__=base, type=(Literal[name], ...),
                                     **param_fields(cls, skip)), Tag(name)]
              for name, cls in registry.items()]

    def tag(value):
        return value.get("type") if isinstance(value, dict) else getattr(value, "type", None)

    def check(value):
        """'adam' is short for {type: adam}; an unknown type lists the known ones."""
        value = {"type": value} if isinstance(value, str) else value
        if isinstance(value, dict):
            registry.get(value.get("type"))  # an unknown type raises, naming the closest one
        return value

    return Annotated[Union[tuple(models)], Discriminator(tag), BeforeValidator(check)]  # noqa: UP007 (built at run time)


class OptimizerBase(Strict):
    lr: float = Field(0.001, gt=0)


class ScheduleBase(Strict):
    pass


OptimizerConfig = tagged_union(OPTIMIZERS, OptimizerBase)
ScheduleConfig = tagged_union(SCHEDULES, ScheduleBase, skip=("mode",))


# -- training -------------------------------------------------------------------------------
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # it becomes part of a folder name


def check_name(name: str, where: str = "--name") -> str:
    if not re.fullmatch(NAME_PATTERN, name):
        raise ConfigError(f"{where} {name!r}: use 1-64 letters, digits, '.', '_' or '-' "
                          "(it becomes part of a folder name)")
    return name


def check_monitor(value: str) -> str:
    if value not in EPOCH_METRICS:
        raise unknown_name("monitor", value, EPOCH_METRICS)
    return value


Monitor = Annotated[str, BeforeValidator(check_monitor)]


class EarlyStopping(Strict):
    monitor: Monitor = "val_loss"
    patience: int = Field(5, ge=0)
    min_delta: float = Field(0.0, ge=0)
    restore_best_weights: bool = True


LOGGERS = ("tensorboard", "mlflow")  # nnrun.loggers streams a run to each


def logger_list(value: Any) -> Any:
    """`log: tensorboard` is short for [tensorboard]; each logger is kept once."""
    items = [value] if isinstance(value, str) else value
    return list(dict.fromkeys(items)) if isinstance(items, list) and all(isinstance(v, str) for v in items) else items


class TrainConfig(Strict):
    epochs: int = Field(10, gt=0)
    batch_size: int = Field(64, gt=0)
    shuffle: bool = True
    early_stopping: EarlyStopping | None = None
    plateau_monitor: Monitor = "val_loss"
    diagnostics: bool = True
    log: Annotated[list[Literal[LOGGERS]], BeforeValidator(logger_list)] = []


class AshaPrune(Strict):
    """Successive halving: rungs at min_epochs, min_epochs*eta, ..., train.epochs; the top 1/eta
    of the trials at a rung go on."""
    type: Literal["asha"]
    min_epochs: int = Field(1, ge=1)
    eta: int = Field(3, ge=2)


class MedianPrune(Strict):
    """A trial stops when its best so far is worse than the other trials' median at that epoch."""
    type: Literal["median"]
    min_epochs: int = Field(1, ge=1)
    min_trials: int = Field(3, ge=1)


class NoPrune(Strict):
    type: Literal["none"]


def prune_shorthand(value: Any) -> Any:
    """`prune: asha` is `prune: {type: asha}`."""
    return {"type": value} if isinstance(value, str) else value


def prune_tag(value: Any) -> str | None:
    return value.get("type") if isinstance(value, dict) else getattr(value, "type", None)


PruneConfig = Annotated[Annotated[AshaPrune, Tag("asha")] | Annotated[MedianPrune, Tag("median")]
                        | Annotated[NoPrune, Tag("none")],
                        Discriminator(prune_tag, custom_error_type="prune",
                                      custom_error_message="type is asha, median or none"),
                        BeforeValidator(prune_shorthand)]
SEARCHES = ("grid", "random", "tpe")
# A sweep plans at most this many trials: a few characters ("int:0:1e9", --random 10**9, ten
# params of ten values) must not cost gigabytes before anything runs.
MAX_TRIALS = 10_000


class SweepConfig(Strict):
    """The `sweep:` section (read by `nnrun sweep`; ignored by train). Each param is a dotted key
    (as for --set) with a list of values, a {label: value} mapping, or a range string such as
    "log:1e-5:1:8" (see nnrun.sweep)."""
    params: dict[str, list | dict | str | int | float] = {}
    metric: str | None = None
    mode: Literal["max", "min"] | None = None
    search: Literal[SEARCHES] | None = None  # type: ignore[valid-type]
    trials: int | None = Field(None, gt=0, le=MAX_TRIALS)
    random: int | None = Field(None, gt=0)
    prune: PruneConfig | None = None
    seed: int | None = Field(None, ge=0)
    workers: int | None = Field(None, gt=0)


class Experiment(Strict):
    name: str = Field("experiment", pattern=NAME_PATTERN, max_length=64)
    seed: int = Field(0, ge=0)
    data: DataConfig
    model: ModelConfig
    loss: str = Field("cross_entropy", validate_default=True)
    optimizer: OptimizerConfig = Field(default_factory=lambda: {"type": "adam"}, validate_default=True)
    schedule: ScheduleConfig = Field(default_factory=lambda: {"type": "constant"}, validate_default=True)
    train: TrainConfig = TrainConfig()
    _source: str = PrivateAttr("config")

    @property
    def source(self) -> str:
        """The file the experiment was read from, for error messages."""
        return self._source

    sweep: SweepConfig | None = None

    @field_validator("loss")
    @classmethod
    def known_loss(cls, value, info: ValidationInfo):
        LOSSES.get(value)  # an unknown name raises, naming the closest known one
        model = info.data.get("model")  # None when the model itself is invalid
        if LOSSES[value].needs_softmax and model is not None:
            check_softmax_output(value, model.layers)
        return value

    @model_validator(mode="after")
    def schedule_length_defaults_to_epochs(self):
        # "T" (cosine, polynomial) left at its default means "the whole run".
        if "T" in type(self.schedule).model_fields and "T" not in self.schedule.model_fields_set:
            self.schedule.T = self.train.epochs
        return self

    @model_validator(mode="after")
    def fits_the_formulas(self):
        """What one key's formula needs of another (after T has its default)."""
        nesterov_has_momentum(self.optimizer)
        warmup_leaves_a_cosine(self.schedule)
        decoupled_decay_shrinks(self)
        return self


class AtKey(ValueError):
    """A problem found by a check across keys, reported at the key to change."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def nesterov_has_momentum(optimizer: Any) -> None:
    if getattr(optimizer, "nesterov", False) and not optimizer.momentum:
        raise AtKey("optimizer.nesterov", "Nesterov momentum needs momentum > 0 (with 0 it is plain "
                    "SGD); set optimizer.momentum, e.g. 0.9")


def warmup_leaves_a_cosine(schedule: Any) -> None:
    if getattr(schedule, "warmup", 0) and schedule.warmup >= schedule.T:
        raise AtKey("schedule.warmup", f"{schedule.warmup} epochs of warm-up leave none for the cosine "
                    f"(T = {schedule.T}); use warmup < T (T defaults to train.epochs)")


def decoupled_decay_shrinks(exp: Experiment) -> None:
    """Decoupled weight decay multiplies the weights by 1 - lr * weight_decay each step: at 1
    or more it zeroes them or flips their sign."""
    opt = exp.optimizer
    if not (OPTIMIZERS[opt.type].decoupled_decay and opt.weight_decay):
        return
    lr = largest_rate(exp)
    if lr * opt.weight_decay >= 1:
        raise AtKey("optimizer.weight_decay", f"{opt.type} multiplies the weights by 1 - lr * weight_decay "
                    f"= 1 - {fmt.value(lr)} * {fmt.value(opt.weight_decay)} at the largest rate; "
                    "use lr * weight_decay < 1")


def largest_rate(exp: Experiment) -> float:
    """The largest learning rate the schedule sets in the run (some ignore optimizer.lr)."""
    params = exp.schedule.model_dump(exclude={"type"})
    schedule = SCHEDULES.get(exp.schedule.type)(exp.optimizer.lr, **params)
    return max(schedule(t) for t in range(exp.train.epochs))


def check_softmax_output(loss: str, layers: list) -> None:
    """A loss that takes logs of probabilities after any other output gets gradients of 1e37
    or 0: refuse it, naming the key to change."""
    i, last = len(layers) - 1, layers[-1]
    if last.type in ACTIVATIONS:
        name, where, fix = last.type, f"model.layers[{i}] is a {last.type} layer", "a {type: softmax} layer"
    else:
        name = last.activation if isinstance(last.activation, str) else last.activation["type"]
        where = f"model.layers[{i}].activation is {name}"
        fix = f"model.layers[{i}].activation: softmax"
    if name != "softmax":
        others = " or ".join(n for n, cls in LOSSES.items() if not cls.needs_softmax)
        raise ValueError(f"{loss} needs probabilities, but {where}; end with softmax ({fix}) "
                         f"or use loss: {others}")


class ModelConfig(Strict):
    layers: list[LayerConfig] = Field(min_length=1)
    dtype: Literal["float32", "float64"] = "float32"


Experiment.model_rebuild()


# -- loading --------------------------------------------------------------------------------
PATH_KEYS = {"images", "labels", "csv", "npz"}


KEY_PIECE = re.compile(r"([A-Za-z_][\w-]*|\d+)((?:\[-?\d+\])*)")


def parse_key(key: str, context: str = "--set") -> list[str | int]:
    """'model.layers[-1].units' -> ['model', 'layers', -1, 'units'] (also model.layers.0.units)."""
    parts: list[str | int] = []
    for piece in re.split(r"\.(?![^\[]*\])", key.strip()):
        m = KEY_PIECE.fullmatch(piece)
        if not m:
            raise ConfigError(f"{context}: {shown(key)} is not a dotted key like model.layers[0].units")
        parts.append(int(m.group(1)) if m.group(1).isdigit() else m.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(-?\d+)\]", m.group(2)))
    return parts


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """'optimizer.lr=0.01' -> (['optimizer', 'lr'], 0.01); 'model.layers[0].units=8' too.

    The value is read as JSON, then YAML, else kept as a string."""
    if "=" not in text:
        raise ConfigError(f"{setting(text)}: expected KEY=VALUE, e.g. --set optimizer.lr=0.01")
    key, raw = text.split("=", 1)
    return parse_key(key, setting(text)), parse_value(raw, setting(text))


def shown(value: Any, width: int = 60) -> str:
    """repr(value), on one line and cut to about `width` characters."""
    text = repr(value)
    return text if len(text) <= width else text[:width - 4] + "..." + text[-1]  # keep the closing quote


def setting(text: str) -> str:
    """How error messages name a --set: --set 'optimizer.lr=-1'."""
    return f"--set {shown(text)}"


def parse_value(raw: str, where: str | None = None) -> Any:
    """The value read as JSON, else as YAML, else the string itself; ConfigError for YAML that
    no config may hold (an alias bomb, an unsafe tag)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        pass
    try:
        return parse_yaml(raw)
    except YamlRefused as e:
        raise ConfigError(f"{where or shown(raw)}: {e.problem}") from None
    except (yaml.YAMLError, ValueError, RecursionError):
        return raw


SOURCE_KINDS = {"images": "idx", "labels": "idx", "csv": "csv", "npz": "npz"}


def absolute_paths(value: Any, key: Any = None) -> Any:
    """Paths typed on the command line are relative to where the user typed them."""
    if isinstance(value, dict):
        return {k: absolute_paths(v, k) for k, v in value.items()}
    if key in PATH_KEYS and isinstance(value, str) and not os.path.isabs(value):
        return os.path.abspath(value)
    return value


def checked_step(node: Any, key: str | int, where: str, text: str) -> str | int:
    """The key to take one step into node (a negative index made positive), or ConfigError."""
    if isinstance(node, list):
        if not isinstance(key, int):
            raise ConfigError(f"{setting(text)}: {where} is a list; index it like {where}[0]")
        if not -len(node) <= key < len(node):
            raise ConfigError(f"{setting(text)}: index {key} is out of range ({where} has {len(node)} items)")
        return key % len(node)
    if isinstance(key, int):
        raise ConfigError(f"{setting(text)}: {where} is not a list; use a dotted key")
    return key


def apply_override(config: dict, path: list, value: Any, text: str) -> tuple:
    """Set config[path] = value, creating mappings on the way; a negative index counts from
    the end; a short form (`optimizer: sgd`) grows into {type: sgd} when a sub-key is set.
    Returns the path that was set, its indices counted from the start."""
    node: Any = config
    steps = []
    for i, key in enumerate(path):
        key = checked_step(node, key, dotted(tuple(path[:i])) or "the top level", text)
        steps.append(key)
        if i == len(path) - 1:
            break
        child = node[key] if isinstance(node, list) else node.get(key)
        nxt = path[i + 1]
        if isinstance(child, str) and isinstance(nxt, str):
            child = {"type": child}
        elif not isinstance(child, (dict, list)):
            child = [] if isinstance(nxt, int) else {}
        node[key] = child
        node = child
    if path[:2] in (["data", "train"], ["data", "test"]) and len(path) == 3 and key in SOURCE_KINDS:
        if any(SOURCE_KINDS.get(k, SOURCE_KINDS[key]) != SOURCE_KINDS[key] for k in node):
            node.clear()  # another kind of source: replace it rather than mix the two
    node[key] = absolute_paths(value, key)
    return tuple(steps)


Overridden = Sequence[tuple[tuple, str]]  # (the path a --set wrote, its text), in order


def apply_overrides(raw: dict, texts) -> Overridden:
    """Apply KEY=VALUE texts in order (see apply_override); returns what each one set."""
    done = []
    for text in texts:
        keys, value = parse_override(text)
        done.append((apply_override(raw, keys, value, text), text))
    return done


def canonical_override(text: str) -> str:
    """The same override, with a JSON value and absolute paths: it means the same whatever
    the current folder is when it is applied again (a resumed sweep, a Dask worker)."""
    keys, value = parse_override(text)
    key = text.split("=", 1)[0].strip()
    return f"{key}={json.dumps(absolute_paths(value, keys[-1]), separators=(',', ':'))}"


# -- reading YAML safely -------------------------------------------------------------------
MAX_CONFIG_BYTES = 1 << 20
MAX_DEPTH = 64  # nesting levels; real configs use fewer than ten
MAX_ALIAS_VALUES = 10_000  # values aliases may add beyond those written out
MAX_DIGITS = 100  # Python refuses to convert integers of more than 4300 digits
YAML_TAG = "tag:yaml.org,2002:"
PLAIN_TAGS = {YAML_TAG + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "merge")}


class YamlRefused(yaml.MarkedYAMLError):
    """YAML that parses, but that a config must not hold: alias bombs, recursive aliases, tags
    beyond plain data, duplicate keys, deep nesting, numbers too long to convert."""


class ConfigLoader(yaml.SafeLoader):
    """SafeLoader that stops at MAX_DEPTH while composing (the composer recurses) and reads
    dates as strings (a run named 2025-01-31 stays a name)."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != YAML_TAG + "timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}

    def __init__(self, stream):
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise YamlRefused(problem=f"nested more than {MAX_DEPTH} levels deep; a config is a few "
                                          "levels of mappings and lists", problem_mark=self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def tag_text(tag: str) -> str:
    return "!!" + tag.removeprefix(YAML_TAG) if tag.startswith(YAML_TAG) else tag


class TreeCheck:
    """Walks a composed YAML graph (aliases are shared nodes, not yet expanded) and refuses what
    safe_load would accept but a config must not hold."""

    def __init__(self):
        self.sizes: dict[int, int] = {}  # id(node) -> the number of values it stands for
        self.open: set[int] = set()  # nodes being walked: meeting one again is a cycle
        self.aliased = 0  # values added by aliases so far

    def visit(self, node: yaml.Node) -> int:
        check_node(node)
        self.open.add(id(node))
        total = 1 + sum(self.child(c, node) for c in children(node))
        self.open.discard(id(node))
        self.sizes[id(node)] = total
        return total

    def child(self, node: yaml.Node, parent: yaml.Node) -> int:
        if id(node) in self.open:
            raise YamlRefused(problem="an alias refers to itself (a recursive structure); a config must "
                                      "be a tree", problem_mark=parent.start_mark)
        if id(node) not in self.sizes:
            return self.visit(node)
        self.aliased += self.sizes[id(node)]
        if self.aliased > MAX_ALIAS_VALUES:
            raise YamlRefused(problem=f"aliases expand to more than {MAX_ALIAS_VALUES:,} values (an alias "
                                      "bomb?); write the values out", problem_mark=parent.start_mark)
        return self.sizes[id(node)]


def children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def check_node(node: yaml.Node) -> None:
    if node.tag not in PLAIN_TAGS:
        raise YamlRefused(problem=f"tag {tag_text(node.tag)} is not allowed; a config holds plain mappings, "
                                  "lists, strings, numbers and booleans", problem_mark=node.start_mark)
    if node.tag == YAML_TAG + "int" and len(node.value) > MAX_DIGITS:
        raise YamlRefused(problem=f"a number of {len(node.value):,} digits; numbers in a config have at "
                                  f"most {MAX_DIGITS}", problem_mark=node.start_mark)
    if isinstance(node, yaml.MappingNode):
        check_unique_keys(node)


def check_unique_keys(node: yaml.MappingNode) -> None:
    """safe_load keeps the last of two equal keys without a word: a silently ignored setting."""
    first_line: dict[tuple, int] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == YAML_TAG + "merge":
            continue
        if (key.tag, key.value) in first_line:
            raise YamlRefused(problem=f"duplicate key {key.value!r} (first on line "
                                      f"{first_line[key.tag, key.value]}); give each key once",
                              problem_mark=key.start_mark)
        first_line[key.tag, key.value] = key.start_mark.line + 1


def parse_yaml(text: str) -> Any:
    """The data in YAML text, read like yaml.safe_load but refusing (YamlRefused) alias bombs,
    recursive aliases, tags beyond plain data, duplicate keys and deep nesting."""
    loader = ConfigLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        TreeCheck().visit(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_config_text(path: Path) -> str:
    """The file's text; ConfigError when it is missing, a folder, too large or not UTF-8."""
    try:
        data = read_limited(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; give the experiment's YAML file") from None
    except TooLarge as e:
        raise ConfigError(f"{path}: the file is {e.size_text}; the limit for a config file is "
                          f"{size_text(MAX_CONFIG_BYTES)} (is it the right file?)") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
                          "save it as UTF-8") from None


def yaml_problem(e: yaml.YAMLError) -> str:
    """':line:column: problem' on one line."""
    mark = getattr(e, "problem_mark", None)
    where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    context = getattr(e, "context", None)
    if context and not context.startswith("while "):  # "expected a single document in the stream"
        problem = f"{context}, {problem}"
    return f"{where}: {problem}" if isinstance(e, YamlRefused) else f"{where}: invalid YAML: {problem}"


def type_name(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number",
            bool: "a boolean"}.get(type(value), type(value).__name__)


def read_yaml(path: Path) -> dict:
    """The config file's top-level mapping; ConfigError (one line, naming the file) otherwise."""
    text = read_config_text(path)
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}{yaml_problem(e)}") from None
    if data is None:
        raise ConfigError(f"{path}: the config is empty; give at least data and model "
                          "(see configs/quickstart.yaml)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level is {type_name(data)}; it must be a mapping of keys "
                          "(name, data, model, ...)")
    return data


def dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{key_text(part)}" if out else key_text(part))
    return out


def key_text(key: Any) -> str:
    """A key as written in a dotted path; an odd one (a newline, spaces, a long string) quoted."""
    return key if isinstance(key, str) and re.fullmatch(r"[\w-]{1,64}", key) else shown(key, 40)


def clean_loc(loc: tuple) -> tuple:
    """Drop the union-member tags pydantic inserts (model.layers.3.conv2d.kernel_size), but not
    a key that repeats the tag just dropped (data.train.csv.csv is data.train.csv)."""
    keep, dropped = [], None
    for part in loc:
        if is_union_tag(part) and part != dropped and keep and keep[-1] != "data":
            dropped = part
            continue
        keep.append(part)
    return tuple(keep)


def is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (part in LAYERS or part in OPTIMIZERS or part in SCHEDULES
                                      or part in ("idx", "csv", "npz", "str", "dict")
                                      or part.startswith(("tuple[", "int", "literal[", "float",
                                                          "function-", "union[")))


def format_errors(err: ValidationError, source: str, raw: Any = None, overridden: Overridden = ()) -> list[str]:
    """One line per problem: its source (the file, or the --set that wrote an unknown key), its
    dotted path, what is wrong."""
    lines, seen = [], set()
    for e in err.errors():
        line = one_line(error_line(e, source, raw, overridden))
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return lines


def error_line(e: dict, source: str, raw: Any, overridden: Overridden) -> str:
    error = e.get("ctx", {}).get("error")
    if isinstance(error, AtKey):
        return f"{source}: {error.key}: {error_message(e)}"
    loc = clean_loc(e["loc"])
    if e["type"] == "extra_forbidden":
        return f"{key_source(loc, overridden, source)}: {dotted(loc)}: {unknown_key(loc, raw)}"
    return f"{source}: {dotted(loc) or '(top level)'}: {error_message(e)}"


def error_message(e: dict) -> str:
    """What is wrong, from one of pydantic's error records."""
    if e["type"] == "missing":
        return "required key is missing"
    if e["type"] == "union_tag_invalid":
        return str(UnknownName(LAYERS.kind, e.get("ctx", {}).get("tag"), LAYERS))
    if e["type"] == "union_tag_not_found":
        return f"each layer needs a 'type'; known: {', '.join(LAYERS)}"
    msg = e["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if e["type"] != "value_error" and "input" in e and not isinstance(e["input"], (dict, list)):
        msg += f" (got {shown(e['input'])})"
    return msg


def one_line(text: str, width: int = 1000) -> str:
    """One problem, one line: newlines escaped, an overlong line (a huge value) cut short."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= width else text[:width - 3] + "..."


# -- explaining an unknown key ------------------------------------------------------------------
def key_source(loc: tuple, overridden: Overridden, source: str) -> str:
    """The --set that put an unknown key at loc (the last one that wrote it, a mapping holding
    it, or that mapping's type), else the file."""
    for path, text in reversed(overridden):
        if path[:len(loc)] == loc[:len(path)] or (path[-1:] == ("type",) and loc[:len(path) - 1] == path[:-1]):
            return setting(text)
    return source


def unknown_key(loc: tuple, raw: Any) -> str:
    """Why the key at loc is refused: it belongs to another type of the block, or it is unknown
    (with the closest known key)."""
    block, key = loc[:-1], loc[-1]
    typed = typed_models(block)
    value = value_at(raw, block)
    kind = value.get("type") if isinstance(value, dict) else None
    if isinstance(kind, str) and kind in typed:
        owners = [name for name, model in typed.items() if key in model.model_fields]
        if owners:
            return (f"is a key of {listed(owners)}, not of {kind}; replace the whole block: "
                    f"{replacing_set(block, value, typed[kind])}")
        known = ["type", *typed[kind].model_fields]
    else:
        known = [k for model in models_at(block) for k in model.model_fields]
    hint = did_you_mean(key, dict.fromkeys(known))
    return f"unknown key{hint}" if hint else "unknown key; remove it or check its spelling"


def models_at(block: tuple) -> list[type[BaseModel]]:
    """The schema models a mapping at this dotted path may be validated as."""
    models: list[type[BaseModel]] = [Experiment]
    for part in block:
        if isinstance(part, str):
            models = [m for model in models if part in model.model_fields
                      for m in models_in(model.model_fields[part].annotation)]
    return models


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation holds, through unions, lists, Optional and Annotated."""
    if isinstance(annotation, type) and not get_args(annotation) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in models_in(arg)]


def typed_models(block: tuple) -> dict[str, type[BaseModel]]:
    """The models a mapping at this path may be, by its `type`; {} for a mapping without one."""
    if block[-1:] == ("activation",):
        return ACTIVATION_PARAMS
    models = models_at(block)
    if not models or not all("type" in m.model_fields for m in models):
        return {}
    return {get_args(m.model_fields["type"].annotation)[0]: m for m in models}


def value_at(raw: Any, path: tuple) -> Any:
    for part in path:
        try:
            raw = raw[part]
        except (KeyError, IndexError, TypeError):
            return None
    return raw


def listed(names: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def replacing_set(block: tuple, value: dict, model: type[BaseModel]) -> str:
    """A --set that replaces the block with the keys its type knows."""
    kept = type_first({k: v for k, v in value.items() if k == "type" or k in model.model_fields})
    flow = yaml.safe_dump(kept, default_flow_style=True, sort_keys=False, width=10_000).strip()
    return f"--set {shlex.quote(f'{dotted(block)}={flow}')}"


class ConfigErrors(ConfigError):
    """Several problems, one line each."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def validate(raw: dict, source: str, base_dir: Path | None, overridden: Overridden = ()) -> Experiment:
    """The Experiment raw describes; ConfigErrors naming source (or the --set in overridden that
    wrote an unknown key)."""
    try:
        exp = Experiment.model_validate(raw, context={"base_dir": base_dir})
    except ValidationError as e:
        raise ConfigErrors(format_errors(e, source, raw, overridden)) from None
    exp._source = source
    return exp


def load_config(path: str | os.PathLike, overrides: tuple[str, ...] = ()) -> Experiment:
    """Read a YAML experiment, apply KEY=VALUE overrides and validate it."""
    path = Path(path)
    raw = read_yaml(path)
    overridden = apply_overrides(raw, overrides)
    return validate(raw, str(path), path.resolve().parent, overridden)


def type_first(node: Any) -> Any:
    if isinstance(node, list):
        return [type_first(v) for v in node]
    if isinstance(node, dict):
        ordered = {"type": node["type"]} if "type" in node else {}
        return ordered | {k: type_first(v) for k, v in node.items()}
    return node


def resolved_dict(exp: Experiment) -> dict:
    """The config with every default filled in, as plain YAML-able data ("type" keys first)."""
    return type_first(json.loads(exp.model_dump_json()))
