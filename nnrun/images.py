"""Image files, and the recipes that prepare a picture the way a run's training data was prepared.

A photo or a drawing is not an MNIST digit: MNIST digits are light ink on black, fitted into a
20x20 box and centred by their centre of mass in a 28x28 frame. Each recipe turns an image into
what the network was trained on, as values in [0, 1] (0 = background, 1 = full ink); the caller
maps them onto the run's input range.

- `mnist`: greyscale, inverted when the background is light, cropped to the ink's bounding box,
  the longer side scaled to 20 pixels (aspect ratio kept), centred by its centre of mass in a
  28x28 frame (how LeCun, Cortes and Burges prepared MNIST);
- `digits`: greyscale, inverted when light, cropped to the ink, the longer side scaled to 32
  pixels and centred in a 32x32 frame, then the ink counted in 4x4 blocks, 0..16 (how the UCI
  8x8 digits were made from 32x32 bitmaps);
- `resize`: the whole picture resized to the input's height and width, greyscale for one
  channel, RGB for three.

Pillow (which matplotlib already needs) is imported only when an image is read or resized.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from nnrun.errors import DataError
from nnrun.nn.registry import Registry

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# ITU-R 601 luma, the weights Pillow's convert("L") uses.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
# A pixel belongs to the ink's bounding box from this much ink on (0..1, after the background is
# taken away and the strongest ink stretched to 1), so that the faint anti-aliased rims of strokes
# and the noise of a photo stay out of the box. MNIST fitted binary strokes into its 20x20 box:
# half the strongest ink finds that box best (98.8% agreement on rendered test digits against
# 98.2% at 0.2); the 8x8 digits count every pixel of ink in a block, a lower bar fits them.
INK_THRESHOLDS = {"mnist": 0.5, "digits": 0.3}
# Less contrast than this between the background and the strongest ink: the picture is blank.
MIN_CONTRAST = 0.05

# (rgb, alpha or None, the file's path for messages, the (C, H, W) image wanted) -> that image in [0, 1]
Recipe = Callable[[np.ndarray, "np.ndarray | None", "str | os.PathLike", tuple], np.ndarray]
RECIPES: Registry[Recipe] = Registry("recipe", attribute="recipe_name")


# -- reading --------------------------------------------------------------------------------
def is_image_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """(rgb (H, W, 3), alpha (H, W) or None) as float32 in [0, 1]. The orientation a camera
    recorded (EXIF) is applied; an animation gives its first frame. Anything Pillow cannot read,
    and images beyond Pillow's decompression-bomb limit, are one DataError line."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img = ImageOps.exif_transpose(img)
                return image_arrays(img)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise DataError(f"{path}: the image has more than {Image.MAX_IMAGE_PIXELS:,} pixels (Pillow's limit "
                        "against decompression bombs); scale it down first") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image Pillow can read (PNG, JPEG, ...); give an image file, "
                        "or an IDX, CSV or NPZ file of samples") from None
    except (OSError, ValueError, SyntaxError) as e:  # truncated or corrupt data inside the file
        raise DataError(f"{path}: cannot read the image ({str(e)[:120] or type(e).__name__}); "
                        "the file is damaged: save it again") from None


def image_arrays(img) -> tuple[np.ndarray, np.ndarray | None]:
    """A Pillow image as (rgb, alpha or None), float32 in [0, 1]."""
    if img.mode in SIXTEEN_BIT_MODES:  # 16-bit greyscale: convert("L") would clip, not scale
        grey = np.asarray(img, np.float32)
        grey = grey / (65535.0 if grey.max() > 255 else 255.0)
        return np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=2), None
    rgba = np.asarray(img.convert("RGBA"), np.float32) / 255.0
    alpha = rgba[..., 3]
    return rgba[..., :3], (alpha if alpha.min() < 1 else None)


# -- from a picture to ink ------------------------------------------------------------------
def greyscale(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Luma (H, W) in [0, 1]. Transparent pixels take the background that makes the visible
    ink stand out: white behind dark ink (a pen stroke on a transparent canvas), black behind
    light ink."""
    grey = rgb @ LUMA
    if alpha is None:
        return grey
    visible = float(alpha.sum())
    ink_level = float((grey * alpha).sum() / visible) if visible > 0 else 0.0
    background = 1.0 if ink_level < 0.5 else 0.0
    return alpha * grey + (1 - alpha) * background


def border(a: np.ndarray) -> np.ndarray:
    """The pixels of the outermost frame of a 2-D array."""
    return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])


def ink(grey: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    """Ink in [0, 1] on a background of 0: inverted when the background (the median of the
    picture's border) is light, the background level taken away and the strongest ink stretched
    to 1. A picture without contrast is a DataError."""
    background = float(np.median(border(grey)))
    if background > 0.5:
        grey, background = 1 - grey, 1 - background
    peak = float(grey.max())
    if peak - background < MIN_CONTRAST:
        raise DataError(f"{path}: the image is blank (no ink stands out from its background); "
                        "nothing to classify")
    return np.clip((grey - background) / (peak - background), 0, 1).astype(np.float32)


def ink_box(a: np.ndarray, threshold: float) -> tuple[slice, slice]:
    """The rows and columns of the bounding box of the pixels with at least `threshold` ink."""
    inked = a >= threshold
    rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def resize(a: np.ndarray, height: int, width: int) -> np.ndarray:
    """A 2-D float array resized with Pillow's bilinear filter (area-weighted when shrinking,
    so a large drawing is smoothed, not sampled)."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(a, np.float32))
    return np.asarray(img.resize((width, height), Image.Resampling.BILINEAR), np.float32)


def fit_longer_side(a: np.ndarray, side: int) -> np.ndarray:
    """a resized so that its longer side is `side` pixels, the aspect ratio kept (the shorter
    side rounded, at least 1 pixel), values clipped to [0, 1]."""
    h, w = a.shape
    scale = side / max(h, w)
    return np.clip(resize(a, max(1, round(h * scale)), max(1, round(w * scale))), 0, 1)


def paste(a: np.ndarray, frame: int, top: int, left: int) -> np.ndarray:
    """a placed with its top-left corner at (top, left) in a frame x frame array of zeros."""
    out = np.zeros((frame, frame), np.float32)
    out[top:top + a.shape[0], left:left + a.shape[1]] = a
    return out


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    """(row, column) of the centre of mass of a 2-D array of non-negative weights."""
    total = float(a.sum())
    rows, cols = np.arange(a.shape[0]), np.arange(a.shape[1])
    return float(a.sum(axis=1) @ rows) / total, float(a.sum(axis=0) @ cols) / total


# -- the recipes ----------------------------------------------------------------------------
def crop_to_ink(rgb: np.ndarray, alpha: np.ndarray | None, path, threshold: float) -> np.ndarray:
    a = ink(greyscale(rgb, alpha), path)
    return a[ink_box(a, threshold)]


@RECIPES.register("mnist")
def mnist_recipe(rgb: np.ndarray, alpha: np.ndarray | None, path: str | os.PathLike = "image",
                 shape: Sequence[int] = (1, 28, 28)) -> np.ndarray:
    """(1, 28, 28): the ink's box scaled to 20 pixels on its longer side, its centre of mass moved
    to the frame's centre (14, 14) by whole pixels (as in MNIST), kept inside the frame."""
    digit = fit_longer_side(crop_to_ink(rgb, alpha, path, INK_THRESHOLDS["mnist"]), 20)
    row, col = centre_of_mass(digit)
    h, w = digit.shape
    top = min(max(round(14 - row), 0), 28 - h)
    left = min(max(round(14 - col), 0), 28 - w)
    return paste(digit, 28, top, left)[None]


@RECIPES.register("digits")
def digits_recipe(rgb: np.ndarray, alpha: np.ndarray | None, path: str | os.PathLike = "image",
                  shape: Sequence[int] = (1, 8, 8)) -> np.ndarray:
    """(1, 8, 8): the ink's box scaled to 32 pixels on its longer side and centred in a 32x32
    frame, then the ink of each 4x4 block counted (0..16, partial ink counting in part) and
    divided by 16."""
    digit = fit_longer_side(crop_to_ink(rgb, alpha, path, INK_THRESHOLDS["digits"]), 32)
    h, w = digit.shape
    bitmap = paste(digit, 32, (32 - h) // 2, (32 - w) // 2)
    counts = np.rint(bitmap.reshape(8, 4, 8, 4).sum(axis=(1, 3)))
    return (counts / 16).astype(np.float32)[None]


@RECIPES.register("resize")
def resize_recipe(rgb: np.ndarray, alpha: np.ndarray | None, path: str | os.PathLike = "image",
                  shape: Sequence[int] = (1, 28, 28)) -> np.ndarray:
    """(C, H, W) for a shape of 1 (greyscale) or 3 (RGB) channels: the whole picture resized,
    transparent parts white."""
    channels, height, width = shape
    if alpha is not None:
        rgb = alpha[..., None] * rgb + (1 - alpha[..., None])
    planes = [rgb @ LUMA] if channels == 1 else [rgb[..., c] for c in range(3)]
    return np.stack([np.clip(resize(p, height, width), 0, 1) for p in planes])


RECIPE_SHAPES = {"mnist": (1, 28, 28), "digits": (1, 8, 8)}


def image_shape_of(input_shape: Sequence[int]) -> tuple[int, int, int] | None:
    """The (C, H, W) image a network input takes: itself, or a flat square of features as a
    one-channel square (784 -> (1, 28, 28)); None when it is no image."""
    shape = tuple(input_shape)
    if len(shape) == 3:
        return shape
    if len(shape) == 1 and shape[0] > 1 and math.isqrt(shape[0]) ** 2 == shape[0]:
        side = math.isqrt(shape[0])
        return 1, side, side
    return None


def recipe_for(dataset: str | None, input_shape: Sequence[int], class_names: Sequence[str]) -> str:
    """The recipe for a run: `mnist` for 28x28 greyscale digits (the mnist dataset, or files of
    that shape with the classes 0..9), `digits` for the 8x8 digits, `resize` for anything else."""
    image = image_shape_of(input_shape)
    digits = list(class_names) == [str(d) for d in range(10)]
    for recipe, shape in RECIPE_SHAPES.items():
        if image == shape and (dataset == recipe or (dataset is None and digits)):
            return recipe
    return "resize"


def prepare_image(path: str | os.PathLike, recipe: str, input_shape: Sequence[int]) -> np.ndarray:
    """The image file prepared by the recipe, as a float32 array of the input's shape in [0, 1]."""
    image = image_shape_of(input_shape)
    if image is None:
        raise DataError(f"{path}: the network takes {tuple(input_shape)} features, not an image; "
                        "give an IDX, CSV or NPZ file of samples")
    if recipe in RECIPE_SHAPES and RECIPE_SHAPES[recipe] != image:
        raise DataError(f"{path}: the {recipe} recipe makes {RECIPE_SHAPES[recipe]} images but the network "
                        f"takes {image}; use --recipe resize")
    if image[0] not in (1, 3):
        raise DataError(f"{path}: the network takes images of {image[0]} channels; only 1 (greyscale) "
                        "or 3 (RGB) can be made from a picture")
    rgb, alpha = read_image(path)
    return RECIPES.get(recipe)(rgb, alpha, path, image).reshape(input_shape)
