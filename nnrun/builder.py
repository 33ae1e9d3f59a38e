"""From a validated Experiment to arrays and a network: data, model, loss, optimiser, schedule."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nnrun import nn
from nnrun.config import DataConfig, Experiment
from nnrun.data import (
    MirrorsFailed,
    auto_divisor,
    check_labels_below,
    dataset_info,
    get_dataset,
    load_csv,
    load_idx_pair,
    load_npz,
    scaled,
    stratified_split,
)
from nnrun.errors import ConfigError
from nnrun.metrics import metric_mode

Split = tuple[np.ndarray, np.ndarray]


@dataclass
class Data:
    """The splits ready for the network (x as float arrays, or uint8 pixels scaled a batch at a time:
    data.ScaledSamples); val and test may be None."""

    train: Split
    val: Split | None
    test: Split | None
    class_names: list[str]
    divisor: float | None = None
    sources: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple:
        return tuple(self.train[0].shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_source(source) -> Split:
    if hasattr(source, "images"):
        return load_idx_pair(source.images, source.labels)
    shape = tuple(source.image_shape) if source.image_shape else None
    if hasattr(source, "csv"):
        return load_csv(source.csv, source.label_column, shape, source.header)
    return load_npz(source.npz, source.x, source.y, shape)


def describe(source) -> str:
    return str(getattr(source, "images", None) or getattr(source, "csv", None) or source.npz)


def checked_class_names(cfg, named: dict, train: Split, test: Split | None) -> list[str]:
    """The classes: the named dataset's when it gives a split, else 0..the largest training label.
    A label outside them is blamed on its labels file, not on the network's output layer."""
    if named:
        names, owner = get_dataset(cfg.dataset).class_names, f"dataset {cfg.dataset}"
    else:
        names = [str(c) for c in range(int(train[1].max()) + 1)]
        owner = f"the training data ({labels_file(cfg.train)})"
    for source, split in ((cfg.train, train), (cfg.test, test)):
        if source is not None and split is not None:
            check_labels_below(split[1], len(names), labels_file(source), owner)
    return names


def labels_file(source) -> str:
    return str(getattr(source, "labels", None) or describe(source))


def dataset_splits(cfg: DataConfig) -> tuple[str, ...]:
    """The splits the named dataset still provides: files given for a split replace it there."""
    return tuple(split for split in ("train", "test") if cfg.dataset and getattr(cfg, split) is None)


def needs_download(exp: Experiment) -> bool:
    """Whether loading the data would download a named dataset first."""
    splits = dataset_splits(exp.data)
    return bool(splits) and not get_dataset(exp.data.dataset).is_local(splits)


def load_named(cfg: DataConfig) -> dict[str, Split]:
    """The splits the named dataset still provides, downloaded if need be; a failed download says
    which config key would avoid it."""
    splits = dataset_splits(cfg)
    try:
        return get_dataset(cfg.dataset).load(splits=splits) if splits else {}
    except MirrorsFailed as failed:
        raise failed.with_note(how_to_skip_the_download(cfg.dataset, splits)) from None


def how_to_skip_the_download(dataset: str, splits: tuple[str, ...]) -> str:
    if splits == ("test",):
        return (f"{dataset} is needed only for the test split (data.train is your files): give data.test "
                "files too, or --set data.dataset=null to train without a test split")
    if splits == ("train",):
        return f"{dataset} is needed only for the training split (data.test is your files): give data.train files too"
    return ("or use your own files: data.train (and data.test) replace the dataset for their split, "
            "e.g. --set data.train.images=FILE --set data.train.labels=FILE")


def check_same_shape(exp: Experiment, train_shape: tuple, test_shape: tuple) -> None:
    if test_shape != train_shape:
        raise ConfigError(f"{exp.source}: data.test: samples have shape {test_shape} but the training "
                          f"samples have {train_shape}; use data of the same shape")


def load_data(exp: Experiment) -> Data:
    """Load train/test as the config says, hold out a stratified validation split, scale."""
    cfg = exp.data
    named = load_named(cfg)
    train = load_source(cfg.train) if cfg.train else named["train"]
    test = load_source(cfg.test) if cfg.test else named.get("test")
    if test is not None:
        check_same_shape(exp, train[0].shape[1:], test[0].shape[1:])
    class_names = checked_class_names(cfg, named, train, test)
    val = None
    if cfg.validation_split > 0:
        train_idx, val_idx = stratified_split(train[1], cfg.validation_split, exp.seed)
        train, val = (train[0][train_idx], train[1][train_idx]), (train[0][val_idx], train[1][val_idx])
    divisor = (auto_divisor(train[0]) if cfg.scale == "auto" else cfg.scale)
    dtype = np.dtype(exp.model.dtype)
    scale = lambda split: None if split is None else (scaled(split[0], divisor, dtype), split[1])
    sources = {"train": describe(cfg.train) if cfg.train else cfg.dataset,
               "test": describe(cfg.test) if cfg.test else (cfg.dataset if test is not None else None)}
    return Data(scale(train), scale(val), scale(test), class_names, divisor, sources)


def catalogue_input(exp: Experiment) -> tuple[tuple[int, ...], int]:
    """The input shape and class count the data will have, without downloading the named
    dataset: from its catalogue entry, checked against any files given for the other split."""
    info = dataset_info(exp.data.dataset)
    for split in ("train", "test"):
        source = getattr(exp.data, split)
        if source is None:
            continue
        x, y = load_source(source)
        if split == "train":
            check_same_shape(exp, train_shape=x.shape[1:], test_shape=info.input_shape)
        else:
            check_same_shape(exp, train_shape=info.input_shape, test_shape=x.shape[1:])
        check_labels_below(y, len(info.class_names), labels_file(source), f"dataset {info.name}")
    return info.input_shape, len(info.class_names)


def layer_kwargs(layer_cfg) -> dict:
    spec = layer_cfg.model_dump()
    if spec.get("type") in nn.ACTIVATIONS:
        return spec
    if spec.get("kernel_size") is not None and not isinstance(spec["kernel_size"], int):
        spec["kernel_size"] = tuple(spec["kernel_size"])
    return spec


def build_network(exp: Experiment, input_shape: tuple, num_classes: int | None = None) -> nn.Sequential:
    """The network the config describes, built for input_shape; shape errors name the layer."""
    layers = [nn.make_layer(layer_kwargs(cfg)) for cfg in exp.model.layers]
    try:
        net = nn.Sequential(layers, input_shape, seed=exp.seed, dtype=exp.model.dtype)
    except nn.ShapeError as e:
        hint = ("; or set data.train.image_shape: [features] to keep the samples flat"
                if e.needs_flat_input and len(input_shape) == 3 and input_shape[0] == 1 else "")
        raise ConfigError(f"{exp.source}: model.layers[{e.layer_index}] ({e.layer_type}): {e.reason} "
                          f"(input shape {tuple(input_shape)}){hint}") from None
    if num_classes is not None and net.output_shape != (num_classes,):
        raise ConfigError(f"{exp.source}: model.layers[{len(layers) - 1}]: the network outputs shape "
                          f"{net.output_shape} but the data has {num_classes} classes; "
                          f"end with a dense layer of {num_classes} units")
    return net


def build_loss(exp: Experiment) -> nn.Loss:
    return nn.make_loss(exp.loss)


def build_optimizer(exp: Experiment) -> nn.Optimizer:
    params = exp.optimizer.model_dump(exclude={"type", "lr"})
    return nn.make_optimizer(exp.optimizer.type, **params)


def build_schedule(exp: Experiment, plateau_metric: str | None = None) -> nn.Schedule:
    """The schedule; reduce_on_plateau watches plateau_metric (default train.plateau_monitor)."""
    params = exp.schedule.model_dump(exclude={"type"})
    if exp.schedule.type == "reduce_on_plateau":
        params["mode"] = metric_mode(plateau_metric or exp.train.plateau_monitor)
    return nn.make_schedule(exp.schedule.type, exp.optimizer.lr, **params)


def input_shape_and_classes(exp: Experiment) -> tuple[tuple, int, str | None]:
    """(input shape, class count, note) without downloading anything: from the data when it is
    at hand, else from the named dataset's catalogue entry, which the note then says."""
    if needs_download(exp):
        input_shape, num_classes = catalogue_input(exp)
        splits = " and ".join(dataset_splits(exp.data))
        return input_shape, num_classes, (f"{exp.data.dataset} ({splits}) is not downloaded yet; shapes from "
                                          f"its catalogue entry: input {input_shape}, {num_classes} classes")
    data = load_data(exp)
    return data.input_shape, data.num_classes, None
