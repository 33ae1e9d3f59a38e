"""The named datasets and what is known of them before loading: shapes, classes, files, checksums,
mirrors. Standard library only, so that the schema can check a dataset name cheaply."""

from __future__ import annotations

from dataclasses import dataclass, field

# The four files of an MNIST-style dataset, per split: (images, labels).
IDX_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


@dataclass(frozen=True)
class DatasetInfo:
    """One named dataset. Samples load as (N, *input_shape) with values 0..max_value, unscaled."""

    name: str
    description: str
    input_shape: tuple[int, int, int]
    max_value: int
    train_size: int
    test_size: int
    class_names: tuple[str, ...]
    bundled: str | None = None  # a file inside nnrun/data: the dataset needs no download
    files: dict[str, tuple[str, str]] = field(default_factory=dict)  # split -> (images, labels)
    sha256: dict[str, str] = field(default_factory=dict)  # file -> hex (or pooch-style "md5:<hex>")
    mirrors: tuple[str, ...] = ()  # base URLs, tried in order

    @property
    def mirror_env_var(self) -> str:
        """The variable whose comma-separated base URLs replace `mirrors`: NNRUN_MIRRORS_<NAME>."""
        return "NNRUN_MIRRORS_" + self.name.upper().replace("-", "_")


DIGIT_NAMES = tuple(str(d) for d in range(10))
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        "digits",
        "UCI handwritten digits, 8x8 grey levels 0..16, 1347 train / 450 test (bundled, offline)",
        input_shape=(1, 8, 8), max_value=16, train_size=1347, test_size=450,
        class_names=DIGIT_NAMES, bundled="digits.npz",
    ),
    "mnist": DatasetInfo(
        "mnist",
        "MNIST handwritten digits, 28x28 grey 0..255, 60000 train / 10000 test (downloaded once)",
        input_shape=(1, 28, 28), max_value=255, train_size=60000, test_size=10000,
        class_names=DIGIT_NAMES, files=IDX_FILES,
        sha256={
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        "Zalando Fashion-MNIST clothing, 28x28 grey 0..255, 60000 train / 10000 test (downloaded once)",
        input_shape=(1, 28, 28), max_value=255, train_size=60000, test_size=10000,
        class_names=FASHION_NAMES, files=IDX_FILES,
        # Published MD5s: 8d4fb7e6c68d591d4c3dfef9ec88bf0d, 25c81989df183df01b3e8a0aad5dffbe,
        # bef4ecab320f06d8554ea6380940ec79, bb300cfdad3c16e7a12a480ee83cd310 (same order).
        sha256={
            "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
    ),
}


def dataset_info(name: str) -> DatasetInfo:
    """The catalogue entry of a dataset; an unknown name raises the registries' UnknownName."""
    if name in DATASETS:
        return DATASETS[name]
    # Imported here: the catalogue itself needs only the standard library (and the message
    # module does too, but its package brings the engine).
    from nnrun.nn.registry import UnknownName

    raise UnknownName("dataset", name, DATASETS)
