"""How well `nnrun predict` reads digits drawn as pictures, and how closely exported networks agree.

    .venv/bin/python experiments/predict_agreement.py     # digits; MNIST too when ../shared has it

1. Pictures: train a run, render its held-out test digits as PNGs the way people make them (dark
   ink on white, 5-10x larger, off-centre, with margins, grey, RGB or transparent: see
   tests/handmade.py) and count how often `predict` on the PNGs names the class that `evaluate`
   names on the original arrays.
2. Exports: export each trained run, and each shipped config with its seeded initial weights, as
   ONNX (onnxruntime) and PyTorch, and compare their probabilities with nnrun's on 1,000 samples.

Prints the tables and writes them to experiments/PREDICT.md. Needs onnx, onnxruntime and torch
for part 2 (skipped without them); MNIST needs ../shared/data/mnist-test.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/handmade.py renders the pictures

from nnrun.config import load_config  # noqa: E402
from nnrun.data import dataset_info, load_idx_pair  # noqa: E402
from nnrun.evaluate import load_run  # noqa: E402
from nnrun.experiment import train_run  # noqa: E402
from nnrun.export import export_run  # noqa: E402
from nnrun.predict import load_model, predict_files  # noqa: E402
from tests.handmade import render_all  # noqa: E402
from tests.test_export import shipped_network  # noqa: E402

MNIST = ROOT.parent / "shared" / "data" / "mnist-test"


def mnist_files(folder: Path) -> tuple[Path, Path, np.ndarray]:
    """MNIST's test set split in two: the last 8,000 to train on (7,200 once the validation split
    is held out), the first 2,000 to render."""
    x, y = load_idx_pair(MNIST / "t10k-images-idx3-ubyte.gz", MNIST / "t10k-labels-idx1-ubyte.gz")
    np.savez(folder / "train.npz", x=x[2000:], y=y[2000:])
    np.savez(folder / "test.npz", x=x[:2000], y=y[:2000])
    return folder / "train.npz", folder / "test.npz", x[:2000, 0] / 255


def runs_to_measure(folder: Path) -> list[tuple[str, list[str], np.ndarray | None]]:
    """(config, overrides, held-out images in [0, 1] or None for the digits' test split)."""
    runs = [("quickstart.yaml", [], None), ("digits-mlp.yaml", [], None)]
    if MNIST.is_dir():
        train, test, images = mnist_files(folder)
        files = ["data.dataset=null", f"data.train.npz={train}", f"data.test.npz={test}"]
        runs += [("mlp.yaml", [*files, "train.epochs=10"], images), ("cnn.yaml", [*files, "train.epochs=3"], images)]
    return runs


def picture_agreement(run_dir: Path, images: np.ndarray, folder: Path) -> dict:
    _, net, data = load_run(run_dir)
    expected = net.predict(data.test[0]).argmax(axis=1)
    paths = render_all(images, folder)
    started = time.perf_counter()
    _, _, probs = predict_files(load_model(run_dir), paths, top=1)
    got = probs.argmax(axis=1)
    sure = net.predict(data.test[0]).max(axis=1) >= 0.9
    return {"n": len(got), "agreement": float(np.mean(got == expected)),
            "accuracy_png": float(np.mean(got == data.test[1])), "accuracy": float(np.mean(expected == data.test[1])),
            "differ": int(np.sum(got != expected)), "differ_sure": int(np.sum((got != expected) & sure)),
            "seconds": time.perf_counter() - started}  # reading and preparing the PNGs, predicting


def oracles(weights: Path, x: np.ndarray, folder: Path) -> dict:
    """Class agreement and the largest probability difference of ONNX and PyTorch against nnrun."""
    ours = load_model(weights).net.predict(x)
    found = {}
    try:
        import onnxruntime as ort
        import torch
    except ImportError:
        return found
    onnx_file = export_run(weights, "onnx", folder / "onnx").files[0]
    theirs = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    found["onnx"] = (float(np.mean(theirs.argmax(1) == ours.argmax(1))), float(np.abs(theirs - ours).max()))
    export_run(weights, "torch", folder / "torch")
    spec = importlib.util.spec_from_file_location(f"m{abs(hash(folder))}", folder / "torch" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with torch.no_grad():
        theirs = module.load()(torch.from_numpy(x)).numpy()
    found["torch"] = (float(np.mean(theirs.argmax(1) == ours.argmax(1))), float(np.abs(theirs - ours).max()))
    return found


def samples(run_dir: Path, n: int = 1000) -> np.ndarray:
    _, _, data = load_run(run_dir)
    x = np.concatenate([data.test[0], data.train[0]])[:n]
    return x.astype(np.float32)


def run_label(config: str, overrides: list[str]) -> str:
    """'mlp.yaml, 10 epochs on 7,200 MNIST images' or 'quickstart.yaml, as shipped'."""
    epochs = [o.split("=")[1] for o in overrides if o.startswith("train.epochs=")]
    return f"{config}, {epochs[0]} epochs on 7,200 MNIST images" if epochs else f"{config}, as shipped"


def oracle_row(label: str, found: dict) -> str:
    cells = [f"{100 * found[k][0]:.1f}% | {found[k][1]:.1e}" if k in found else "- | -" for k in ("onnx", "torch")]
    return f"| {label} | {' | '.join(cells)} |"


def main() -> None:
    picture_rows, oracle_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for config, overrides, images in runs_to_measure(tmp):
            run_dir = train_run(load_config(ROOT / "configs" / config, tuple(overrides)), tmp / "runs", make_plots=False)
            if images is None:
                with np.load(ROOT / "nnrun" / "data" / "digits.npz") as d:
                    images = d["x_test"][:, 0] / 16
            r = picture_agreement(run_dir, images, tmp / f"png-{config}")
            picture_rows.append(f"| {run_label(config, overrides)} | {r['n']} | "
                                f"{100 * r['agreement']:.1f}% | {100 * r['accuracy']:.1f}% | {100 * r['accuracy_png']:.1f}% "
                                f"| {r['differ']} ({r['differ_sure']}) | {r['seconds']:.1f} s |")
            print(picture_rows[-1], flush=True)
            oracle_rows.append(oracle_row(f"{config}, trained", oracles(run_dir / "weights.json", samples(run_dir),
                                                                          tmp / f"export-{config}")))
            print(oracle_rows[-1], flush=True)
        for config in sorted((ROOT / "configs").glob("*.yaml")):
            folder = tmp / f"init-{config.stem}"
            folder.mkdir()
            weights, x = shipped_network(config, folder)
            oracle_rows.append(oracle_row(f"{config.name}, initial weights ({dataset_info(load_config(config).data.dataset).name})",
                                          oracles(weights, x, folder)))
            print(oracle_rows[-1], flush=True)
    write_report(picture_rows, oracle_rows)


def write_report(picture_rows: list[str], oracle_rows: list[str]) -> None:
    text = "\n".join([
        "# predict on pictures, exports against their runtimes", "",
        "Made by `experiments/predict_agreement.py`. predict's time: reading, preparing and classifying",
        "the PNGs (2 cores, shared with other work).", "",
        "## Test digits rendered as PNGs", "",
        "| run | PNGs | predict = evaluate | evaluate accuracy | predict accuracy | disagreements (where evaluate was 90% sure) | predict's time |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |", *picture_rows, "",
        "## Exports: class agreement and largest probability difference on 1,000 samples", "",
        "| network | ONNX classes | ONNX max diff | PyTorch classes | PyTorch max diff |",
        "| --- | ---: | ---: | ---: | ---: |", *oracle_rows, ""])
    (ROOT / "experiments" / "PREDICT.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
