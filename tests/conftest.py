"""Fixtures shared by the tests: a local HTTP server for downloads, generated data files."""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading
from dataclasses import replace

import numpy as np
import pytest

from nnrun.data.catalog import DATASETS, IDX_FILES
from tests.synthetic import write_idx


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep test output clean
        pass


@pytest.fixture
def served_mnist(tmp_path, monkeypatch):
    """A local HTTP server with good/ and bad/ copies of 4 small MNIST-style files; the catalogue's
    mnist checksums patched to the good ones."""
    root = tmp_path / "www"
    rng = np.random.default_rng(3)
    splits = {"train": 60, "test": 5}  # train images span several 1 KiB download chunks
    hashes, expected = {}, {}
    for split, (images_name, labels_name) in IDX_FILES.items():
        images = rng.integers(0, 256, size=(splits[split], 6, 6), dtype=np.uint8)
        labels = (np.arange(splits[split]) % 10).astype(np.uint8)
        expected[split] = (images, labels)
        for name, array in ((images_name, images), (labels_name, labels)):
            for folder, data in (("good", array), ("bad", array[::-1].copy())):
                (root / folder).mkdir(parents=True, exist_ok=True)
                write_idx(root / folder / name, data, compress=True)
            hashes[name] = hashlib.sha256((root / "good" / name).read_bytes()).hexdigest()
    monkeypatch.setitem(DATASETS, "mnist", replace(DATASETS["mnist"], sha256=hashes))
    monkeypatch.delenv("NNRUN_MIRRORS_MNIST", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield {"good": f"{base}/good/", "bad": f"{base}/bad/", "server": server, "expected": expected}
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
