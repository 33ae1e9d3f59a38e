"""Real test digits rendered as PNGs the way people make them, for `nnrun predict`: dark ink on
white, 5-10x larger, smoothly upscaled, off-centre on a canvas with margins; some grey, some RGB
with coloured ink on an off-white page, some ink on a transparent background (RGBA)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

STYLES = ("grey", "rgb", "rgba")


def render(ink: np.ndarray, path: Path, rng: np.random.Generator, style: str) -> Path:
    """Write ink (H, W) in [0, 1] (1 = full ink) as a PNG of the given style."""
    h, w = ink.shape
    scale = int(rng.integers(5, 11))
    big = Image.fromarray((ink * 255).astype(np.uint8)).resize((w * scale, h * scale), Image.Resampling.BICUBIC)
    big = np.asarray(big, np.float32) / 255
    margin = [int(m) for m in rng.integers(scale, 6 * scale, size=4)]  # top, bottom, left, right
    canvas = np.zeros((h * scale + margin[0] + margin[1], w * scale + margin[2] + margin[3]), np.float32)
    canvas[margin[0]:margin[0] + big.shape[0], margin[2]:margin[2] + big.shape[1]] = big
    if style == "grey":
        pixels = ((1 - canvas) * 255).round().astype(np.uint8)
    elif style == "rgb":
        paper, pen = np.array([250, 248, 240]), np.array([20, 30, 140])  # blue ink on cream
        pixels = (paper + canvas[..., None] * (pen - paper)).round().astype(np.uint8)
    else:
        pixels = np.zeros((*canvas.shape, 4), np.uint8)  # black ink, transparent page
        pixels[..., 3] = (canvas * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(path, compress_level=1)
    return path


def render_all(images: np.ndarray, folder: Path, seed: int = 0) -> list[Path]:
    """Each image (N, H, W) in [0, 1] as a PNG in folder, the styles taking turns."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    return [render(img, folder / f"{i:05d}.png", rng, STYLES[i % len(STYLES)]) for i, img in enumerate(images)]
