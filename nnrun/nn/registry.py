"""Registries: name -> class, filled by a decorator, read by the schema and error messages."""

from __future__ import annotations


def registrar(registry: dict, attribute: str = "name"):
    """A `@register("relu")` decorator that stores the class in `registry` and sets its name."""

    def register(name: str):
        def decorate(cls):
            setattr(cls, attribute, name)
            registry[name] = cls
            return cls

        return decorate

    return register
