"""Property test: a weights file damaged in any way loads or is one ConfigError, never another
exception (nnrun train --init-weights and nnrun evaluate read these files)."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnrun import nn
from nnrun.errors import ConfigError
from nnrun.runs import load_weights_into, weights_document


def network() -> nn.Sequential:
    layers = [nn.make_layer({"type": "dense", "units": 3, "activation": "relu"}),
              nn.make_layer({"type": "dense", "units": 2, "activation": "softmax"})]
    return nn.Sequential(layers, (4,), seed=0)


GOOD = json.dumps(weights_document(network()))
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                      max_size=3), max_leaves=6)


def paths(doc, prefix=()):
    """Every (path, value) inside a JSON document."""
    yield prefix, doc
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield from paths(value, (*prefix, key))


PLACES = [p for p, _ in paths(json.loads(GOOD)) if p]


def replaced(place: tuple, value) -> str:
    doc = json.loads(GOOD)
    node = doc
    for key in place[:-1]:
        node = node[key]
    node[place[-1]] = value
    return json.dumps(doc)


def damaged_texts():
    cut = st.integers(0, len(GOOD) - 1).map(lambda n: GOOD[:n])
    flipped = st.tuples(st.integers(0, len(GOOD) - 1), st.characters()).map(
        lambda t: GOOD[:t[0]] + t[1] + GOOD[t[0] + 1:])
    swapped = st.tuples(st.sampled_from(PLACES), JSON_VALUES).map(lambda t: replaced(*t))
    return cut | flipped | swapped


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=damaged_texts())
def test_any_damaged_weights_file_loads_or_is_a_config_error(tmp_path, text):
    path = tmp_path / "weights.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    net = network()
    try:
        load_weights_into(net, path)
    except ConfigError as e:
        assert str(path) in str(e) and "\n" not in str(e)
    else:  # loaded: then every weight is a finite number of the model's shape
        assert all(np.isfinite(w).all() for w in net.get_weights().values())
