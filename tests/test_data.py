"""Tests for nnrun.data: file readers, bundled and downloaded datasets, splits, scaling."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nnrun.builder import load_data
from nnrun.cli import app
from nnrun.config import load_config, unknown_name
from nnrun.data import (
    DATASETS,
    auto_divisor,
    dataset_info,
    get_dataset,
    load_csv,
    load_dataset,
    load_idx_pair,
    load_npz,
    read_idx,
    scale_pixels,
    stratified_split,
)
from nnrun.data.catalog import IDX_FILES
from nnrun.errors import DataError, DownloadError
from tests.synthetic import idx_bytes, write_idx

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()
MNIST_TEST_DIR = REPO.parent / "shared" / "data" / "mnist-test"
# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trips(tmp_path, dtype, compress):
    rng = np.random.default_rng(1)
    array = (rng.random((5, 3, 4)) * 100 - (0 if np.dtype(dtype).kind == "u" else 50)).astype(dtype)
    # the extension deliberately lies: gzip is detected from the magic bytes
    path = write_idx(tmp_path / "data.idx", array, compress)
    result = read_idx(path)
    assert result.dtype == np.dtype(dtype) and result.dtype.isnative
    np.testing.assert_array_equal(result, array)


def test_load_idx_pair_shapes(tmp_path):
    images = np.arange(6 * 2 * 3, dtype=np.uint8).reshape(6, 2, 3)
    labels = np.array([0, 1, 2, 0, 1, 2], dtype=np.uint8)
    x, y = load_idx_pair(write_idx(tmp_path / "i.gz", images, True), write_idx(tmp_path / "l", labels))
    assert x.shape == (6, 1, 2, 3) and x.dtype == np.uint8
    assert y.dtype == np.int64 and y.tolist() == labels.tolist()


def test_load_idx_pair_count_mismatch_names_both_files(tmp_path):
    images = write_idx(tmp_path / "imgs.idx", np.zeros((4, 2, 2), np.uint8))
    labels = write_idx(tmp_path / "labs.idx", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match=r"imgs\.idx has 4 images.*labs\.idx has 3 labels"):
        load_idx_pair(images, labels)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nothere\.idx: no such file"):
        read_idx(tmp_path / "nothere.idx")


def test_read_idx_bad_magic(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x12\x34\x08\x01" + bytes(8))
    with pytest.raises(DataError, match=r"bad\.idx.*magic"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_truncated(tmp_path, compress):
    data = idx_bytes(np.zeros((3, 4, 4), np.uint8))[:-5]
    path = tmp_path / "short.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(DataError, match=r"short\.idx.*truncated"):
        read_idx(path)


def test_read_idx_corrupt_gzip(tmp_path):
    path = tmp_path / "broken.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(10, np.uint8)))[:-6])
    with pytest.raises(DataError, match=r"broken\.gz"):
        read_idx(path)


@pytest.mark.skipif(not MNIST_TEST_DIR.is_dir(), reason=f"real MNIST test files not present at {MNIST_TEST_DIR}")
def test_real_mnist_test_set():
    x, y = load_idx_pair(MNIST_TEST_DIR / "t10k-images-idx3-ubyte.gz", MNIST_TEST_DIR / "t10k-labels-idx1-ubyte.gz")
    assert x.shape == (10000, 1, 28, 28) and x.dtype == np.uint8
    counts = np.bincount(y)
    assert len(counts) == 10 and counts[1] == 1135 and counts[5] == 892


# ---------------------------------------------------------------- CSV


def write_csv(path: Path, rows: np.ndarray, header: str | None = None, compress: bool = False) -> Path:
    text = (header + "\n" if header else "") + "\n".join(",".join(f"{v:g}" for v in row) for row in rows) + "\n"
    path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())
    return path


@pytest.fixture
def pixel_rows():
    """Ten rows of 64 pixel values 0..16 and labels 0..4."""
    rng = np.random.default_rng(2)
    return rng.integers(0, 17, size=(10, 64)), np.arange(10) % 5


def test_csv_label_last_infers_square_image(tmp_path, pixel_rows):
    pixels, labels = pixel_rows
    x, y = load_csv(write_csv(tmp_path / "d.csv", np.column_stack([pixels, labels])))
    assert x.shape == (10, 1, 8, 8)
    np.testing.assert_array_equal(x.reshape(10, 64), pixels)
    assert y.dtype == np.int64 and y.tolist() == labels.tolist()


def test_csv_label_first_with_header_gzip(tmp_path, pixel_rows):
    pixels, labels = pixel_rows
    header = "label," + ",".join(f"p{i}" for i in range(64))
    path = write_csv(tmp_path / "d.csv.gz", np.column_stack([labels, pixels]), header, compress=True)
    x, y = load_csv(path, label_column="first")
    np.testing.assert_array_equal(x.reshape(10, 64), pixels)
    assert y.tolist() == labels.tolist()


def test_csv_explicit_shapes(tmp_path, pixel_rows):
    pixels, labels = pixel_rows
    path = write_csv(tmp_path / "d.csv", np.column_stack([pixels, labels]))
    assert load_csv(path, image_shape=(4, 4, 4))[0].shape == (10, 4, 4, 4)
    assert load_csv(path, image_shape=(2, 32))[0].shape == (10, 1, 2, 32)


def test_csv_bad_shape_names_file_and_numbers(tmp_path, pixel_rows):
    pixels, labels = pixel_rows
    path = write_csv(tmp_path / "d.csv", np.column_stack([pixels, labels]))
    with pytest.raises(DataError, match=r"d\.csv.*49.*64"):
        load_csv(path, image_shape=(7, 7))


def test_csv_non_square_features_stay_flat(tmp_path):
    rows = np.array([[0.5, 1.5, 2.5, 0], [1.0, 2.0, 3.0, 1]])
    x, y = load_csv(write_csv(tmp_path / "f.csv", rows))
    assert x.shape == (2, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x, rows[:, :3])


@pytest.mark.parametrize("bad_label", [1.5, -1])
def test_csv_rejects_non_class_labels(tmp_path, bad_label):
    path = write_csv(tmp_path / "bad.csv", np.array([[1, 2, 0], [3, 4, bad_label]]))
    with pytest.raises(DataError, match=r"bad\.csv.*label"):
        load_csv(path)


def test_csv_non_numeric_body(tmp_path):
    path = tmp_path / "text.csv"
    path.write_text("a,b,label\n1,2,0\n3,x,1\n")
    with pytest.raises(DataError, match=r"text\.csv"):
        load_csv(path)


def test_csv_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"gone\.csv: no such file"):
        load_csv(tmp_path / "gone.csv")


# ---------------------------------------------------------------- NPZ


def test_npz_shapes_and_keys(tmp_path):
    images = np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4)
    np.savez(tmp_path / "a.npz", images=images, targets=np.array([2, 0, 1]))
    x, y = load_npz(tmp_path / "a.npz", x_key="images", y_key="targets")
    assert x.shape == (3, 1, 4, 4) and y.dtype == np.int64 and y.tolist() == [2, 0, 1]

    np.savez(tmp_path / "b.npz", x=np.zeros((3, 12)), y=np.zeros(3))
    assert load_npz(tmp_path / "b.npz")[0].shape == (3, 12)
    assert load_npz(tmp_path / "b.npz", image_shape=(3, 2, 2))[0].shape == (3, 3, 2, 2)

    np.savez(tmp_path / "c.npz", x=np.zeros((3, 2, 5, 5)), y=np.zeros(3))
    assert load_npz(tmp_path / "c.npz")[0].shape == (3, 2, 5, 5)


def test_npz_missing_key_lists_keys(tmp_path):
    np.savez(tmp_path / "k.npz", data=np.zeros((2, 4)), labels=np.zeros(2))
    with pytest.raises(DataError, match=r"k\.npz.*'x'.*\['data', 'labels'\]"):
        load_npz(tmp_path / "k.npz")


def test_npz_object_array_is_refused_not_unpickled(tmp_path):
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}, None], dtype=object), y=np.zeros(2))
    with pytest.raises(DataError, match=r"obj\.npz"):
        load_npz(tmp_path / "obj.npz")


def test_npz_not_an_archive(tmp_path):
    (tmp_path / "fake.npz").write_text("hello")
    with pytest.raises(DataError, match=r"fake\.npz"):
        load_npz(tmp_path / "fake.npz")


# ---------------------------------------------------------------- digits and the catalogue


def test_digits_bundled_split():
    first, second = load_dataset("digits"), load_dataset("digits")
    (x_train, y_train), (x_test, y_test) = first["train"], first["test"]
    assert len(y_train) + len(y_test) == 1797
    assert x_train.shape == (len(y_train), 1, 8, 8) and x_test.shape == (len(y_test), 1, 8, 8)
    assert abs(len(y_test) / 1797 - 0.25) < 0.01
    assert x_train.min() == 0 and max(x_train.max(), x_test.max()) == 16
    assert y_train.dtype == np.int64
    test_share = np.bincount(y_test, minlength=10) / (np.bincount(y_train, minlength=10) + np.bincount(y_test, minlength=10))
    assert np.all(np.abs(test_share - 0.25) < 0.02)
    for split in ("train", "test"):
        np.testing.assert_array_equal(first[split][0], second[split][0])
        np.testing.assert_array_equal(first[split][1], second[split][1])


def test_catalogue_facts_match_the_bundled_digits():
    info, (x_train, _), (x_test, _) = DATASETS["digits"], *load_dataset("digits").values()
    assert (len(x_train), len(x_test)) == (info.train_size, info.test_size)
    assert x_train.shape[1:] == info.input_shape and x_train.max() == info.max_value
    assert get_dataset("digits").class_names == list(info.class_names)


def test_catalogue_metadata():
    assert set(DATASETS) == {"digits", "mnist", "fashion-mnist"}
    assert DATASETS["mnist"].class_names == tuple(str(d) for d in range(10))
    assert DATASETS["fashion-mnist"].class_names[0] == "T-shirt/top"
    assert DATASETS["fashion-mnist"].class_names[-1] == "Ankle boot"
    for name in ("mnist", "fashion-mnist"):
        info = DATASETS[name]
        assert info.input_shape == (1, 28, 28) and info.bundled is None
        assert sorted(info.sha256) == sorted(f for pair in info.files.values() for f in pair)
        assert all(url.startswith(("http://", "https://")) for url in info.mirrors)
    assert DATASETS["fashion-mnist"].mirror_env_var == "NNRUN_MIRRORS_FASHION_MNIST"


def test_unknown_dataset_has_the_schema_wording():
    with pytest.raises(ValueError) as caught:
        dataset_info("mnsit")
    assert str(caught.value) == str(unknown_name("dataset", "mnsit", DATASETS))
    assert str(caught.value) == "unknown dataset 'mnsit' (did you mean 'mnist'?); known: digits, mnist, fashion-mnist"


def test_unknown_dataset_suggests_close_match():
    with pytest.raises(DataError, match=r"'mnsit'.*did you mean 'mnist'.*digits"):
        load_dataset("mnsit")


BLOCKED = ("rich", "pooch", "matplotlib", "typer", "requests", "tqdm")
BLOCK_IMPORTS = textwrap.dedent("""
    import sys
    from pathlib import Path

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked in this test")

    sys.meta_path.insert(0, Blocker())
""")
NOTHING_BLOCKED_LOADED = textwrap.dedent("""
    assert not set(BLOCKED) & {m.split(".")[0] for m in sys.modules}, sorted(sys.modules)
    print("ok")
""")


def run_with_only(blocked: tuple[str, ...], body: str) -> subprocess.CompletedProcess:
    """Run body in a fresh interpreter where importing any of `blocked` fails."""
    code = f"BLOCKED = {blocked!r}" + BLOCK_IMPORTS + textwrap.dedent(body) + NOTHING_BLOCKED_LOADED
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_config_needs_only_numpy_pyyaml_and_pydantic():
    result = run_with_only(BLOCKED, """
        import nnrun.config
        assert Path(nnrun.config.__file__).is_relative_to(Path.cwd())
        raw = {"name": "light", "data": {"dataset": "digits"},
               "model": {"layers": [{"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]}}
        exp = nnrun.config.validate(raw, "light.yaml", None)
        assert exp.data.dataset == "digits"
        try:
            nnrun.config.validate({**raw, "data": {"dataset": "mnsit"}}, "light.yaml", None)
        except nnrun.config.ConfigError as err:
            assert "did you mean 'mnist'" in str(err)
        else:
            raise AssertionError("an unknown dataset was accepted")
    """)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_catalogue_needs_only_the_standard_library():
    result = run_with_only(BLOCKED + ("numpy", "yaml", "pydantic"), """
        from nnrun.data import dataset_info
        assert dataset_info("mnist").input_shape == (1, 28, 28)
    """)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_training_on_a_bundled_dataset_needs_no_download_machinery():
    # A sweep worker imports this much before its first trial; pooch and requests cost it ~85 ms.
    result = run_with_only(("pooch", "requests", "urllib3"), """
        from nnrun.builder import load_data
        from nnrun.config import validate
        from nnrun.experiment import train_run
        raw = {"name": "light", "data": {"dataset": "digits"},
               "model": {"layers": [{"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]}}
        data = load_data(validate(raw, "light.yaml", None))
        assert data.train[0].shape[1:] == (1, 8, 8)
    """)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


# ---------------------------------------------------------------- downloads from a local server


def use_mirrors(monkeypatch, *urls: str) -> None:
    """Replace the catalogue's mnist mirrors (the served_mnist fixture already patched its checksums)."""
    monkeypatch.setitem(DATASETS, "mnist", replace(DATASETS["mnist"], mirrors=urls))


def assert_loaded(splits, expected):
    for split, (images, labels) in expected.items():
        x, y = splits[split]
        np.testing.assert_array_equal(x[:, 0], images)
        assert y.tolist() == labels.tolist()


def test_download_then_cache_without_network(served_mnist, tmp_path, monkeypatch, capsys):
    use_mirrors(monkeypatch, served_mnist["good"])
    assert_loaded(load_dataset("mnist", cache_dir=tmp_path / "cache"), served_mnist["expected"])
    assert capsys.readouterr() == ("", "")  # the data layer never prints; the CLI shows downloads
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == sorted(DATASETS["mnist"].sha256)

    served_mnist["server"].shutdown()
    served_mnist["server"].server_close()
    assert_loaded(load_dataset("mnist", cache_dir=tmp_path / "cache"), served_mnist["expected"])


def test_falls_back_past_unreachable_and_bad_checksum_mirrors(served_mnist, tmp_path, monkeypatch, closed_port_url):
    use_mirrors(monkeypatch, closed_port_url, served_mnist["bad"], served_mnist["good"])
    assert_loaded(get_dataset("mnist").load(tmp_path / "cache"), served_mnist["expected"])


def test_env_var_mirrors_and_data_dir(served_mnist, tmp_path, monkeypatch, closed_port_url):
    use_mirrors(monkeypatch, closed_port_url)
    monkeypatch.setenv("NNRUN_MIRRORS_MNIST", f"{closed_port_url} , {served_mnist['good']}")
    monkeypatch.setenv("NNRUN_DATA_DIR", str(tmp_path / "envcache"))
    assert_loaded(load_dataset("mnist"), served_mnist["expected"])
    assert (tmp_path / "envcache" / "mnist" / "t10k-labels-idx1-ubyte.gz").is_file()


def test_all_mirrors_failing_is_a_short_block_naming_urls_files_and_folder(served_mnist, tmp_path, monkeypatch,
                                                                          closed_port_url):
    use_mirrors(monkeypatch, closed_port_url, served_mnist["bad"], served_mnist["good"].replace("good", "none"))
    with pytest.raises(DownloadError) as caught:
        load_dataset("mnist", cache_dir=tmp_path / "cache")
    first = "train-images-idx3-ubyte.gz"
    assert caught.value.lines == [
        f"could not download mnist {first} from any mirror:",
        f"  {closed_port_url}{first}: cannot connect (Connection refused)",
        f"  {served_mnist['bad']}{first}: checksum mismatch",
        f"  {served_mnist['good'].replace('good', 'none')}{first}: HTTP 404 File not found",
        f"  to work offline, copy these files from a mirror into {tmp_path / 'cache' / 'mnist'} "
        "(NNRUN_DATA_DIR sets the data folder):",
        "    " + " ".join(DATASETS["mnist"].sha256),
    ]
    assert str(caught.value) == "\n".join(caught.value.lines)
    assert not (tmp_path / "cache" / "mnist" / first).exists()


def test_the_block_names_only_the_files_still_missing(served_mnist, tmp_path, monkeypatch, closed_port_url):
    use_mirrors(monkeypatch, served_mnist["good"])
    load_dataset("mnist", tmp_path / "cache", splits=("test",))
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == sorted(IDX_FILES["test"])
    use_mirrors(monkeypatch, closed_port_url)
    with pytest.raises(DownloadError) as caught:
        load_dataset("mnist", tmp_path / "cache")
    assert caught.value.lines[-1] == "    " + " ".join(IDX_FILES["train"])


# ---------------------------------------------------------------- a named dataset and your own files
FLAT_MODEL = {"layers": [{"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]}


def mnist_config(tmp_path: Path, **data) -> str:
    path = tmp_path / "mnist.yaml"
    path.write_text(yaml.safe_dump({"name": "m", "data": {"dataset": "mnist", **data}, "model": FLAT_MODEL,
                                    "train": {"epochs": 1}}))
    return str(path)


def own_files(tmp_path: Path, shape=(28, 28), n=20) -> dict:
    images = np.random.default_rng(0).integers(0, 256, size=(n, *shape), dtype=np.uint8)
    return {"images": str(write_idx(tmp_path / "my-images.idx", images)),
            "labels": str(write_idx(tmp_path / "my-labels.idx", (np.arange(n) % 10).astype(np.uint8)))}


def offline(monkeypatch, tmp_path: Path, closed_port_url: str) -> Path:
    """No mirror answers and the data folder is empty."""
    monkeypatch.setenv("NNRUN_MIRRORS_MNIST", closed_port_url)
    monkeypatch.setenv("NNRUN_DATA_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_files_for_a_split_replace_the_dataset_there_only(served_mnist, tmp_path, monkeypatch):
    use_mirrors(monkeypatch, served_mnist["good"])
    monkeypatch.setenv("NNRUN_DATA_DIR", str(tmp_path / "cache"))
    data = load_data(load_config(mnist_config(tmp_path, train=own_files(tmp_path, (6, 6)), validation_split=0)))
    assert data.train[0].shape == (20, 1, 6, 6) and data.test[0].shape == (5, 1, 6, 6)
    assert data.sources == {"train": str(tmp_path / "my-images.idx"), "test": "mnist"}
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == sorted(IDX_FILES["test"])


@pytest.mark.parametrize("data, note", [
    ({}, "  or use your own files: data.train (and data.test) replace the dataset for their split, "
         "e.g. --set data.train.images=FILE --set data.train.labels=FILE"),
    ({"train": "OWN"}, "  mnist is needed only for the test split (data.train is your files): give data.test files "
                       "too, or --set data.dataset=null to train without a test split"),
    ({"test": "OWN"}, "  mnist is needed only for the training split (data.test is your files): give data.train "
                      "files too"),
])
def test_train_offline_says_which_key_avoids_the_download(tmp_path, monkeypatch, closed_port_url, data, note):
    offline(monkeypatch, tmp_path, closed_port_url)
    data = {split: own_files(tmp_path) for split in data}
    result = runner.invoke(app, ["train", mnist_config(tmp_path, **data), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    missing = "train" if "train" not in data else "test"
    assert f"error: could not download mnist {IDX_FILES[missing][0]} from any mirror:" in lines
    assert f"error:   {closed_port_url}{IDX_FILES[missing][0]}: cannot connect (Connection refused)" in lines
    assert lines[-1] == f"error: {note}"
    block = lines[lines.index(f"error: could not download mnist {IDX_FILES[missing][0]} from any mirror:"):]
    assert all(line.startswith("error:   ") for line in block[1:])


def test_validate_offline_prints_the_summary_from_the_catalogue(tmp_path, monkeypatch, closed_port_url):
    cache = offline(monkeypatch, tmp_path, closed_port_url)
    for data, splits in (({}, "train and test splits are"), ({"train": own_files(tmp_path)}, "test split is")):
        result = runner.invoke(app, ["validate", mnist_config(tmp_path, **data)])
        assert result.exit_code == 0, result.output
        assert "downloading" not in result.output and not cache.exists()
        assert "input (1, 28, 28)" in result.stdout and "7,850" in result.stdout  # 784 * 10 + 10 parameters
        assert (f"data: mnist's {splits} not downloaded yet (nnrun train fetches it); checked with its catalogue "
                "entry: input (1, 28, 28), 10 classes") in result.stdout
        assert result.stdout.splitlines()[-1].endswith("mnist.yaml: valid")


@pytest.mark.parametrize("data, message", [
    ({"train": "OWN"}, "data.test: samples have shape (1, 28, 28) but the training samples have (1, 6, 6)"),
    ({"test": "OWN"}, "data.test: samples have shape (1, 6, 6) but the training samples have (1, 28, 28)"),
])
def test_validate_offline_checks_your_files_against_the_catalogue(tmp_path, monkeypatch, closed_port_url, data,
                                                                  message):
    offline(monkeypatch, tmp_path, closed_port_url)
    path = mnist_config(tmp_path, **{split: own_files(tmp_path, (6, 6)) for split in data})
    result = runner.invoke(app, ["validate", path])
    assert result.exit_code == 2 and result.stderr == f"error: {path}: {message}; use data of the same shape\n"


def test_validate_loads_a_downloaded_dataset(served_mnist, tmp_path, monkeypatch):
    use_mirrors(monkeypatch, served_mnist["good"])
    monkeypatch.setenv("NNRUN_DATA_DIR", str(tmp_path / "cache"))
    load_dataset("mnist")
    result = runner.invoke(app, ["validate", mnist_config(tmp_path, validation_split=0)])
    assert result.exit_code == 0, result.output
    assert "data: train 60, test 5; 10 classes; input (1, 6, 6)" in result.stdout


# ---------------------------------------------------------------- splits and scaling


def test_stratified_split_proportions_and_partition():
    y = np.repeat(np.arange(4), [40, 20, 10, 3])
    train_idx, val_idx = stratified_split(y, 0.2, seed=7)
    assert np.bincount(y[val_idx], minlength=4).tolist() == [8, 4, 2, 1]
    assert np.intersect1d(train_idx, val_idx).size == 0
    np.testing.assert_array_equal(np.union1d(train_idx, val_idx), np.arange(len(y)))
    assert np.all(np.diff(train_idx) > 0) and np.all(np.diff(val_idx) > 0)


def test_stratified_split_is_deterministic_and_seeded():
    y = np.random.default_rng(0).integers(0, 5, size=500)
    first, again, other = stratified_split(y, 0.3, 1), stratified_split(y, 0.3, 1), stratified_split(y, 0.3, 2)
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_stratified_split_fraction_zero_and_singleton_class():
    y = np.array([0, 0, 1, 1, 1, 2])
    train_idx, val_idx = stratified_split(y, 0.0, 0)
    assert val_idx.size == 0 and train_idx.tolist() == list(range(6))
    train_idx, val_idx = stratified_split(y, 0.1, 0)
    assert np.bincount(y[val_idx], minlength=3).tolist() == [1, 1, 0]


def test_scaling():
    x = np.array([[0, 8, 16]], dtype=np.uint8)
    assert auto_divisor(x) == 16.0 and auto_divisor(np.zeros(3)) == 1.0
    scaled = scale_pixels(x, auto_divisor(x))
    assert scaled.dtype == np.float32 and scaled.tolist() == [[0.0, 0.5, 1.0]]
    unscaled = scale_pixels(x, None)
    assert unscaled.dtype == np.float32 and unscaled.tolist() == [[0.0, 8.0, 16.0]]


def test_pixels_stay_uint8_and_are_scaled_a_batch_at_a_time():
    """A quarter of float32's memory, and exactly the numbers scaling all at once gives."""
    from nnrun.data import ScaledSamples, scale_pixels, scaled

    raw = np.random.default_rng(0).integers(0, 256, (50, 1, 4, 4)).astype(np.uint8)
    x = scaled(raw, 255.0, np.float32)
    assert isinstance(x, ScaledSamples) and x.shape == raw.shape and len(x) == 50
    whole = scale_pixels(raw, 255.0, np.float32)
    for index in (slice(3, 17), np.array([5, 1, 49, 5]), np.array([-1, 0], np.int32), np.array([], int),
                  whole[:, 0, 0, 0] > 0.5, 7):
        got = x[index]
        assert got.dtype == np.float32 and np.array_equal(got, whole[index])
    assert np.array_equal(np.asarray(x), whole)
    assert (x.min(), x.max()) == (whole.min(), whole.max())
    floats = np.linspace(0, 1, 10, dtype=np.float64).reshape(10, 1)
    assert isinstance(scaled(floats, None, np.float32), np.ndarray)  # not pixels: scaled now


@pytest.mark.parametrize("kind", [np.uint8, np.uint16, np.int64, np.float64, np.float32])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scaling_gives_the_bits_of_one_division_in_the_target_dtype(kind, dtype):
    from nnrun.data import scale_pixels

    x = (np.random.default_rng(3).random((40, 9)) * 300).astype(kind)
    before = x.copy()
    for divisor in (255.0, 16.0, 7.0, 1.0):
        expected = np.divide(x, np.dtype(dtype).type(divisor), dtype=dtype)
        got = scale_pixels(x, divisor, dtype)
        assert got.dtype == dtype and np.array_equal(got, expected)
    assert np.array_equal(x, before)  # scaled into a new array: the caller's x is untouched
    assert scale_pixels(np.asfortranarray(x), 3.0, dtype).flags.c_contiguous


def test_a_named_image_dataset_is_kept_as_its_uint8_pixels(tmp_path):
    from nnrun.builder import load_data

    config = tmp_path / "c.yaml"
    config.write_text("name: t\ndata: {dataset: digits, validation_split: 0.2}\n"
                      "model: {layers: [{type: flatten}, {type: dense, units: 10, activation: softmax}]}\n")
    data = load_data(load_config(config))
    for split in (data.train, data.val, data.test):
        assert split[0].raw.dtype == np.uint8
    assert data.train[0][:2].dtype == np.float32 and float(data.train[0][:100].max()) == 1.0
