"""The config's JSON Schema, for editors: completion, descriptions and checking while typing.

Built from the pydantic models in nnrun.config (which are built from the engine's registries),
then completed with what pydantic cannot see: the short forms the loader accepts (`optimizer:
sgd`, `schedule: cosine`, `activation: relu` or `{type: leaky_relu, alpha: 0.2}` or null), the
registered names as enums (losses, activations, initialisers, datasets, monitors), and a
description and default for every key. Checks across keys (cross_entropy needs a softmax output,
warmup < T, ...) stay with the loader: `nnrun validate` makes them.
"""

from __future__ import annotations

import copy
from typing import Any

from nnrun import __version__
from nnrun.config import ACTIVATION_PARAMS, LOGGERS, Experiment
from nnrun.data.catalog import DATASETS
from nnrun.metrics import EPOCH_METRICS
from nnrun.nn import ACTIVATIONS, INITIALIZERS, LAYERS, LOSSES, OPTIMIZERS, SCHEDULES, Registry

DRAFT = "https://json-schema.org/draft/2020-12/schema"

# Each key's description: by "<model>.<key>" where one model's key means something of its own,
# else by the key's name. A test checks that every key of the schema has one.
DESCRIPTIONS = {
    # top level
    "Experiment.name": "The run's name, the run folder's suffix: 1-64 letters, digits, '.', '_' or '-'.",
    "Experiment.seed": "One seed drives the initialisation, the shuffling, the dropout masks and the validation split.",
    "Experiment.data": "Where the samples come from: a named dataset, your own files, or both (files replace the "
                       "dataset for their split).",
    "Experiment.model": "The network: its layers in order, and the dtype.",
    "Experiment.loss": "cross_entropy (the last layer must end with softmax) or mse.",
    "Experiment.optimizer": "A name (adam) or {type: name, lr: ..., its parameters}.",
    "Experiment.schedule": "The learning rate per epoch: a name (cosine) or {type: name, its parameters}.",
    "Experiment.train": "Epochs, batches, shuffling, early stopping, diagnostics, loggers.",
    "Experiment.sweep": "The parameters `nnrun sweep` varies (nnrun train ignores this section).",
    # data
    "DataConfig.dataset": "A named dataset (downloaded once and cached, except the bundled digits).",
    "DataConfig.train": "Your training data (IDX, CSV or NPZ); replaces the named dataset's training split.",
    "DataConfig.test": "Your test data (IDX, CSV or NPZ); replaces the named dataset's test split.",
    "DataConfig.validation_split": "The fraction of the training data held out for validation, stratified by class "
                                   "and seeded by `seed`.",
    "DataConfig.scale": "auto divides by the largest training value (255 for MNIST); a number divides by it; "
                        "null keeps the values.",
    "images": "The images' IDX file (raw or gzip), relative to the config file.",
    "labels": "The labels' IDX file (raw or gzip), relative to the config file.",
    "csv": "A CSV file (.gz allowed), one sample per row, relative to the config file.",
    "label_column": "Which column holds the label.",
    "header": "Whether row 1 is a header; auto: when none of its fields is a number.",
    "image_shape": "[C, H, W] or [H, W] makes images, [F] keeps the samples flat; null: a square feature count "
                   "becomes a 1-channel square image.",
    "npz": "A NumPy .npz file (plain numeric arrays; nothing is unpickled), relative to the config file.",
    "x": "The name of the samples' array in the .npz.",
    "y": "The name of the labels' array in the .npz.",
    # model
    "ModelConfig.layers": "The layers in order; output shapes are inferred, and the last layer must output one "
                          "value per class.",
    "ModelConfig.dtype": "The network's floating-point type.",
    "activation": "A name (relu), {type: name, its parameters} ({type: leaky_relu, alpha: 0.2}), or null for linear.",
    "init": "The weights' initialiser; null: chosen by the activation (he_normal for relu, glorot_uniform for tanh).",
    "init_params": "The initialiser's parameters, e.g. {std: 0.01} for normal.",
    "use_bias": "Whether the layer adds a bias.",
    "units": "Output features.",
    "filters": "Output channels (one filter each).",
    "kernel_size": "The filter's height and width: an int, or [kh, kw].",
    "Conv2DConfig.stride": "The step between the filter's positions.",
    "padding": "Zeros added on each side: an int, valid (0), or same (stride 1, odd kernels: keeps height and width).",
    "pool_size": "The window's height and width.",
    "MaxPoolConfig.stride": "The step between windows; null: pool_size.",
    "AvgPoolConfig.stride": "The step between windows; null: pool_size.",
    "rate": "The fraction of inputs zeroed while training (0 <= rate < 1).",
    "leaky_relu.alpha": "The slope for x <= 0.",
    "elu.alpha": "The value approached for very negative x is -alpha.",
    "swish.beta": "x * sigmoid(beta x); 1 is SiLU.",
    # optimisers
    "lr": "The learning rate (the schedule's base rate).",
    "momentum": "The velocity's decay (0: plain SGD).",
    "nesterov": "Nesterov momentum (needs momentum > 0).",
    "weight_decay": "L2 penalty added to the gradient (adamw: decoupled, the weights shrink by lr * weight_decay "
                    "each step).",
    "clip_norm": "Scale the gradients down when their joint L2 norm exceeds this; null: no clipping.",
    "beta1": "Decay of the gradient's moving average.",
    "beta2": "Decay of the squared gradient's moving average.",
    "eps": "Added to the denominator for stability.",
    "rmsprop.alpha": "Decay of the squared gradient's moving average.",
    # schedules
    "step.step_size": "Epochs between reductions.",
    "step.gamma": "The factor applied every step_size epochs.",
    "multistep.gamma": "The factor applied at each milestone.",
    "milestones": "The epochs at which the rate is multiplied by gamma.",
    "k": "The decay rate per epoch.",
    "T": "The epochs the schedule spans (default: train.epochs).",
    "lr_end": "The rate reached at T.",
    "power": "The polynomial's exponent.",
    "lr_min": "The lowest rate.",
    "warmup": "Epochs of linear warm-up before the cosine (< T).",
    "sigmoid.gamma": "The sigmoid's slope: negative decays, positive grows.",
    "sigmoid.step_size": "The epoch at the sigmoid's midpoint.",
    "factor": "The factor applied when the monitored metric stalls (0 < factor < 1).",
    "reduce_on_plateau.patience": "Epochs without improvement before the rate is lowered.",
    "reduce_on_plateau.min_delta": "The improvement that counts.",
    # train
    "epochs": "Epochs to train.",
    "batch_size": "Samples per step (the last batch of an epoch may be smaller).",
    "shuffle": "Shuffle the training data each epoch (seeded).",
    "early_stopping": "Stop when the monitored metric stops improving; null: train every epoch.",
    "plateau_monitor": "The metric reduce_on_plateau watches.",
    "diagnostics": "Watch each layer while training: diagnostics.csv, plots/diagnostics.png and findings.",
    "log": "Also stream the metrics and diagnostics to these loggers: tensorboard, mlflow (optional extras).",
    "EarlyStopping.monitor": "The metric that chooses the best epoch (val_* fall back to train_* without "
                             "validation data).",
    "EarlyStopping.patience": "Epochs in a row without improvement that stop training.",
    "EarlyStopping.min_delta": "The improvement that counts.",
    "restore_best_weights": "Go back to the best epoch's weights at the end (stopped early or not).",
    # sweep
    "params": "Dotted key (as for --set) -> a list of values, a {label: value} mapping, or a range string "
              "(log:1e-5:1:8, lin:0:1:5, int:16:128:16).",
    "metric": "The metric that ranks the trials (default val_accuracy).",
    "mode": "max or min (default: min for losses, else max).",
    "random": "Draw this many random trials instead of the full grid (search: random, trials: N).",
    "search": "How trials are chosen: grid (every combination), random, or tpe (from the results so far; "
              "needs nnrun[tune]).",
    "SweepConfig.trials": "How many trials a random or tpe search runs.",
    "prune": "Stop hopeless trials early: asha, median or none (a name, or {type: ..., settings}).",
    "AshaPrune.min_epochs": "The first rung: every trial trains this many epochs before it is compared.",
    "eta": "Each rung is eta times the last, and the top 1/eta of the trials at a rung go on.",
    "MedianPrune.min_epochs": "No trial stops before this epoch.",
    "min_trials": "A trial stops only once this many other trials have reached its epoch.",
    "SweepConfig.seed": "The seed of the random search, the tpe sampler and a pruned sweep's trial order.",
    "workers": "Trials in parallel (default: the number of cores).",
}


def description(model: str, key: str, owner: str | None) -> str:
    """The description of `key` in the schema model `model` (owner: the registered name whose
    parameters the model holds)."""
    return (DESCRIPTIONS.get(f"{model}.{key}") or (DESCRIPTIONS.get(f"{owner}.{key}") if owner else None)
            or DESCRIPTIONS.get(key, ""))


def first_line(cls: type) -> str:
    doc = (cls.__doc__ or "").strip()
    return doc.split("\n\n")[0].replace("\n", " ") if doc else ""


def names(registry) -> list[str]:
    return list(registry)


# -- the pieces pydantic leaves open ------------------------------------------------------------
def activation_schema() -> dict:
    """What an `activation` key accepts: a name, {type: name, params}, or null (linear)."""
    objects = []
    for name, model in ACTIVATION_PARAMS.items():
        params = copy.deepcopy(model.model_json_schema().get("properties", {}))
        for key, prop in params.items():
            prop.pop("title", None)
            prop["description"] = description("", key, name)
        objects.append({"type": "object", "additionalProperties": False, "required": ["type"],
                        "properties": {"type": {"const": name, "description": first_line(ACTIVATIONS[name])},
                                       **params}})
    return {"anyOf": [{"enum": names(ACTIVATIONS)}, {"oneOf": objects}, {"type": "null"}]}


def short_form(prop: dict, registry: Registry, default: str) -> dict:
    """A registry's block: its name alone, or the mapping pydantic describes."""
    mappings = {k: prop[k] for k in ("oneOf", "anyOf") if k in prop}
    return {"anyOf": [{"enum": names(registry)}, mappings], "default": default}


def nullable_enum(values: list[str], default: Any) -> dict:
    return {"anyOf": [{"enum": values}, {"type": "null"}], "default": default}


REGISTRY_DEFS = {"optimizer": (OPTIMIZERS, "adam"), "schedule": (SCHEDULES, "constant")}


def owner_of(def_name: str) -> tuple[str | None, Registry | None]:
    """`sgd_optimizer` -> ("sgd", OPTIMIZERS): the registered name a generated model is for."""
    for suffix, registry in (("_optimizer", OPTIMIZERS), ("_schedule", SCHEDULES), ("_layer", LAYERS)):
        if def_name.endswith(suffix) and def_name[:-len(suffix)] in registry:
            return def_name[:-len(suffix)], registry
    return None, None


def type_description(name: str, registry: Registry | None) -> str:
    """A `type` constant's description: its class's first docstring line, else its kind."""
    cls = registry.get(name) if registry is not None else None
    if registry is LAYERS and name in ACTIVATIONS:
        cls = ACTIVATIONS[name]  # an activation used as a layer of its own
    text = first_line(cls) if cls is not None else ""
    return f"{name}: {text}" if text else f"{name} ({registry.kind if registry is not None else 'type'})"


def complete_model(def_name: str, model: dict) -> None:
    """Descriptions, enums and short forms for one model's keys, in place."""
    owner, registry = owner_of(def_name)
    for key, prop in model.get("properties", {}).items():
        prop.pop("title", None)
        if key == "activation":
            prop.clear()
            prop.update({"$ref": "#/$defs/Activation", "default": "linear"})
        elif key == "init":
            prop.clear()
            prop.update(nullable_enum(names(INITIALIZERS), None))
        elif key == "log":
            prop.clear()
            prop.update({"anyOf": [{"enum": list(LOGGERS)}, {"type": "array", "items": {"enum": list(LOGGERS)}}],
                         "default": []})
        elif key in ("monitor", "plateau_monitor"):
            prop["enum"] = list(EPOCH_METRICS)
            prop.pop("type", None)
        if key == "type" and "const" in prop:
            const = prop["const"]
            layer = LAYERS if const in LAYERS or const in ACTIVATIONS else None  # else a sweep's prune type
            prop["description"] = type_description(const, registry or layer)
        else:
            prop["description"] = description(def_name, key, owner)


def complete_top(schema: dict) -> None:
    props = schema["properties"]
    for key, (registry, default) in REGISTRY_DEFS.items():
        props[key] = short_form(props[key], registry, default)
    props["loss"] = {"enum": names(LOSSES), "default": props["loss"]["default"]}
    data = schema["$defs"]["DataConfig"]
    data["properties"]["dataset"] = nullable_enum(list(DATASETS), None)
    needs = "data needs a named dataset or training files (or both)"
    data["anyOf"] = [{"required": ["dataset"], "properties": {"dataset": {"type": "string", "description": needs}}},
                     {"required": ["train"], "properties": {"train": {"type": "object", "description": needs}}}]
    for key, prop in props.items():
        prop.pop("title", None)
        prop["description"] = description("Experiment", key, None)
    for key in ("data", "model"):
        props[key] = {"allOf": [{"$ref": props[key]["$ref"]}], "description": props[key]["description"]}


def build_schema() -> dict:
    """The JSON Schema (draft 2020-12) of an experiment file."""
    schema = Experiment.model_json_schema(mode="validation")
    complete_top(schema)
    for def_name, model in schema["$defs"].items():
        model.pop("title", None)
        complete_model(def_name, model)
    schema["$defs"]["Activation"] = activation_schema()
    schema.pop("title", None)
    return {"$schema": DRAFT, "title": f"nnrun {__version__} experiment",
            "description": "An nnrun experiment file (nnrun train CONFIG); made by nnrun schema.", **schema}
