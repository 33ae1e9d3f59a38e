"""nnrun: config-driven neural-network experiments, written from scratch in NumPy."""

__version__ = "0.1.0"
