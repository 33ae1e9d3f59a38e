"""The one registry type: registration, look-up, and the one "unknown name" message."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nnrun.nn import (
    ACTIVATIONS,
    INITIALIZERS,
    LAYERS,
    LOSSES,
    OPTIMIZERS,
    SCHEDULES,
    Registry,
    UnknownName,
    make_activation,
    make_layer,
    make_loss,
    make_optimizer,
    make_schedule,
)


def fruits() -> Registry:
    reg = Registry("fruit")
    for name in ("banana", "apple", "cherry"):
        reg.register(name)(type(name.title(), (), {}))
    return reg


def test_register_sets_the_name_and_get_returns_the_class():
    reg = fruits()
    assert reg.get("apple").__name__ == "Apple" and reg.get("apple").name == "apple"
    assert reg["apple"] is reg.get("apple")
    layers = Registry("layer type", attribute="type")
    cls = layers.register("dense")(type("Dense", (), {}))
    assert cls.type == "dense" and layers.get("dense") is cls


def test_mapping_behaviour_keeps_registration_order():
    reg = fruits()
    assert list(reg) == list(reg.keys()) == ["banana", "apple", "cherry"]
    assert [name for name, _ in reg.items()] == ["banana", "apple", "cherry"]
    assert len(reg) == 3 and "apple" in reg and "plum" not in reg and ["unhashable"] not in reg
    with pytest.raises(KeyError):
        reg["plum"]


def test_unknown_name_with_a_suggestion():
    with pytest.raises(UnknownName) as info:
        fruits().get("aple")
    assert str(info.value) == "unknown fruit 'aple' (did you mean 'apple'?); known: banana, apple, cherry"
    assert isinstance(info.value, ValueError)
    assert (info.value.kind, info.value.name, info.value.known) == ("fruit", "aple", ["banana", "apple", "cherry"])


def test_unknown_name_without_a_suggestion():
    with pytest.raises(UnknownName) as info:
        fruits().get("zzz")
    assert str(info.value) == "unknown fruit 'zzz'; known: banana, apple, cherry"
    with pytest.raises(UnknownName, match=r"^unknown fruit None; known"):
        fruits().get(None)
    with pytest.raises(UnknownName, match=r"^unknown fruit \['a'\]; known"):
        fruits().get(["a"])


def test_a_name_half_like_a_known_one_still_gets_a_suggestion():
    with pytest.raises(UnknownName, match=r"^unknown fruit 'chexx' \(did you mean 'cherry'\?\)"):
        fruits().get("chexx")  # similarity 0.55: above the cutoff of one half


def test_the_repr_names_the_kind_and_the_entries():
    assert repr(fruits()) == "Registry('fruit': banana, apple, cherry)"


def test_a_name_can_be_registered_only_once():
    reg = fruits()
    with pytest.raises(ValueError, match="fruit 'apple' is already registered"):
        reg.register("apple")(type("Other", (), {}))
    assert reg.get("apple").__name__ == "Apple"


def test_add_registers_an_instance_as_is():
    reg = Registry("dataset")
    thing = object()
    assert reg.add("digits", thing) is thing and reg.get("digits") is thing


@pytest.mark.parametrize("registry, kind", [
    (LAYERS, "layer type"), (ACTIVATIONS, "activation"), (LOSSES, "loss"),
    (OPTIMIZERS, "optimizer"), (SCHEDULES, "schedule"), (INITIALIZERS, "initializer")])
def test_every_engine_family_is_a_registry(registry, kind):
    assert isinstance(registry, Registry) and registry.kind == kind
    for name, entry in registry.items():
        assert getattr(entry, registry.attribute) == name


@pytest.mark.parametrize("make, message", [
    (lambda: make_layer({"type": "maxpool"}), "unknown layer type 'maxpool' (did you mean 'maxpool2d'?)"),
    (lambda: make_activation("rlu"), "unknown activation 'rlu' (did you mean 'relu'?)"),
    (lambda: make_loss("crossentropy"), "unknown loss 'crossentropy' (did you mean 'cross_entropy'?)"),
    (lambda: make_optimizer("adan"), "unknown optimizer 'adan' (did you mean 'adam'?)"),
    (lambda: make_schedule("cosin", 0.1), "unknown schedule 'cosin' (did you mean 'cosine'?)"),
    (lambda: make_layer({"type": "dense", "units": 2, "init": "he_norml"}).build((3,), None),
     "unknown initializer 'he_norml' (did you mean 'he_normal'?)"),
])
def test_engine_factories_use_the_one_message(make, message):
    with pytest.raises(UnknownName) as info:
        make()
    assert str(info.value).startswith(message + "; known: ")


def test_the_engine_imports_only_numpy_and_the_standard_library():
    code = "import sys, nnrun.nn; print(' '.join(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    assert not {m.split(".")[0] for m in loaded} & {"yaml", "pydantic", "rich", "typer", "matplotlib"}
    assert [m for m in loaded if m.startswith("nnrun.") and not m.startswith("nnrun.nn")] == []
