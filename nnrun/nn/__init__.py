"""The nnrun engine: pure NumPy layers, activations, losses, optimisers, schedules.

Imports numpy and nothing else of nnrun's, so it can be read, tested and reused alone.
"""

from .activations import ACTIVATIONS, Activation, make_activation
from .init import INITIALIZERS, default_initializer
from .layers import LAYERS, Layer, ShapeError, make_layer
from .losses import LOSSES, Loss, make_loss, one_hot
from .monitor import Monitor
from .network import Sequential
from .optimizers import OPTIMIZERS, Optimizer, clip_by_global_norm, make_optimizer
from .registry import Registry, UnknownName
from .schedules import SCHEDULES, Schedule, make_schedule

__all__ = [
    "ACTIVATIONS", "Activation", "make_activation", "INITIALIZERS", "default_initializer",
    "LAYERS", "Layer", "ShapeError", "make_layer", "LOSSES", "Loss", "make_loss", "one_hot", "Monitor",
    "Sequential", "OPTIMIZERS", "Optimizer", "clip_by_global_norm", "make_optimizer",
    "SCHEDULES", "Schedule", "make_schedule", "Registry", "UnknownName",
]
