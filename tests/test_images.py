"""The image recipes of `nnrun predict`, checked against what they promise: MNIST's 20-pixel box
and centre of mass, the 8x8 digits' block counts, inversion, transparency, colour, 16 bits."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from nnrun.errors import DataError
from nnrun.images import (
    RECIPES,
    centre_of_mass,
    digits_recipe,
    image_shape_of,
    mnist_recipe,
    prepare_image,
    read_image,
    recipe_for,
)


def stroke_picture(height: int = 120, width: int = 90) -> np.ndarray:
    """Ink (H, W) in [0, 1]: an off-centre '7'-like shape, a bar and a diagonal, with margins."""
    ink = np.zeros((height, width), np.float32)
    ink[20:28, 15:70] = 1.0  # the top bar
    for r in range(28, 100):  # the slanted stem
        c = 70 - (r - 28) // 2
        ink[r, c - 4:c + 4] = 1.0
    return ink


def save_grey(ink: np.ndarray, path, dark_on_light: bool = True) -> None:
    pixels = (1 - ink) if dark_on_light else ink
    Image.fromarray((pixels * 255).round().astype(np.uint8)).save(path)


def test_mnist_recipe_fits_the_ink_into_20_pixels_centred_by_its_mass(tmp_path):
    save_grey(stroke_picture(), tmp_path / "seven.png")
    prepared = prepare_image(tmp_path / "seven.png", "mnist", (1, 28, 28))[0]
    assert prepared.shape == (28, 28) and prepared.dtype == np.float32
    assert prepared.min() == 0.0 and prepared.max() == pytest.approx(1.0, abs=0.02)
    inked = prepared >= 0.5
    rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    assert rows[-1] - rows[0] + 1 in (19, 20, 21)  # the longer side (the height here) is 20
    assert cols[-1] - cols[0] + 1 < rows[-1] - rows[0] + 1  # the aspect ratio is kept
    row, col = centre_of_mass(prepared)
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5  # moved by whole pixels, as MNIST was


def test_light_ink_on_dark_and_dark_ink_on_light_give_the_same_digit(tmp_path):
    save_grey(stroke_picture(), tmp_path / "dark.png", dark_on_light=True)
    save_grey(stroke_picture(), tmp_path / "light.png", dark_on_light=False)
    dark = prepare_image(tmp_path / "dark.png", "mnist", (1, 28, 28))
    light = prepare_image(tmp_path / "light.png", "mnist", (1, 28, 28))
    np.testing.assert_allclose(dark, light, atol=1e-6)


def test_transparent_coloured_and_16_bit_pictures_give_the_same_digit(tmp_path):
    ink = stroke_picture()
    save_grey(ink, tmp_path / "grey.png")
    rgba = np.zeros((*ink.shape, 4), np.uint8)  # black strokes on a transparent canvas
    rgba[..., 3] = (ink * 255).round()
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    paper, pen = np.array([250, 250, 250]), np.array([0, 0, 0])
    rgb = (paper + ink[..., None] * (pen - paper)).round().astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.jpg", quality=95)
    Image.fromarray(((1 - ink) * 65535).round().astype(np.uint16)).save(tmp_path / "deep.png")
    grey = prepare_image(tmp_path / "grey.png", "mnist", (1, 28, 28))
    for name in ("alpha.png", "deep.png"):
        np.testing.assert_allclose(prepare_image(tmp_path / name, "mnist", (1, 28, 28)), grey, atol=0.01)
    jpeg = prepare_image(tmp_path / "rgb.jpg", "mnist", (1, 28, 28))  # JPEG noise stays out of the box
    assert np.abs(jpeg - grey).mean() < 0.02


def test_a_white_stroke_on_a_transparent_canvas_is_drawn_on_black(tmp_path):
    ink = stroke_picture()
    rgba = np.full((*ink.shape, 4), 255, np.uint8)
    rgba[..., 3] = (ink * 255).round()
    Image.fromarray(rgba).save(tmp_path / "white.png")
    save_grey(ink, tmp_path / "grey.png")
    np.testing.assert_allclose(prepare_image(tmp_path / "white.png", "mnist", (1, 28, 28)),
                               prepare_image(tmp_path / "grey.png", "mnist", (1, 28, 28)), atol=0.01)


def test_digits_recipe_counts_the_ink_of_each_4x4_block():
    bitmap = np.zeros((32, 32), np.float32)
    bitmap[:, 8:24] = 1.0  # a solid 32x16 block, centred: blocks 2..5 full, the rest empty
    bitmap[0:4, 8:10] = 0.0  # half of block (0, 2) empty: 8 of its 16 pixels left
    big = np.kron(bitmap, np.ones((3, 3), np.float32))  # drawn 3x larger, on a margin
    canvas = np.zeros((140, 130), np.float32)
    canvas[20:116, 10:106] = big
    counts = digits_recipe(np.repeat((1 - canvas)[..., None], 3, axis=2), None)[0] * 16
    expected = np.zeros((8, 8))
    expected[:, 2:6] = 16
    expected[0, 2] = 8
    np.testing.assert_array_equal(counts, expected)


def test_recipes_are_chosen_by_dataset_and_shape():
    digits = [str(d) for d in range(10)]
    assert recipe_for("mnist", (1, 28, 28), digits) == "mnist"
    assert recipe_for(None, (784,), digits) == "mnist"  # files of 28x28 digits, kept flat
    assert recipe_for("digits", (1, 8, 8), digits) == "digits"
    assert recipe_for("fashion-mnist", (1, 28, 28), digits) == "resize"
    assert recipe_for(None, (1, 28, 28), ["cat", "dog"]) == "resize"
    assert recipe_for(None, (3, 32, 32), digits) == "resize"
    assert image_shape_of((784,)) == (1, 28, 28) and image_shape_of((10,)) is None
    assert set(RECIPES) == {"mnist", "digits", "resize"}


def test_resize_recipe_keeps_colour_for_three_channels(tmp_path):
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    Image.fromarray(rgb).save(tmp_path / "red.png")
    prepared = prepare_image(tmp_path / "red.png", "resize", (3, 10, 12))
    assert prepared.shape == (3, 10, 12)
    np.testing.assert_allclose(prepared[0], 1.0)
    np.testing.assert_allclose(prepared[1:], 0.0)
    grey = prepare_image(tmp_path / "red.png", "resize", (1, 10, 12))
    np.testing.assert_allclose(grey, 0.299, atol=1e-6)  # luma of red, not inverted


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_size(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with (nearly) no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 21))
            + png_chunk(b"IEND", b""))


@pytest.mark.parametrize(("content", "message"), [
    (b"hello, this is text", "not an image Pillow can read"),
    (png_with_size(30000, 30000), "more than 89,478,485 pixels"),
    (b"truncated", "cannot read the image"),
])
def test_files_that_are_no_usable_picture_are_one_clear_error(tmp_path, content, message):
    path = tmp_path / "picture.png"
    if content == b"truncated":  # a real picture cut short
        save_grey(stroke_picture(), path)
        content = path.read_bytes()[:len(path.read_bytes()) // 2]
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_image(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_a_blank_picture_is_refused(tmp_path):
    Image.fromarray(np.full((30, 30), 200, np.uint8)).save(tmp_path / "blank.png")
    with pytest.raises(DataError, match="blank"):
        prepare_image(tmp_path / "blank.png", "mnist", (1, 28, 28))


def test_a_recipe_that_does_not_fit_the_network_says_so(tmp_path):
    save_grey(stroke_picture(), tmp_path / "seven.png")
    with pytest.raises(DataError, match="use --recipe resize"):
        prepare_image(tmp_path / "seven.png", "mnist", (1, 8, 8))
    with pytest.raises(DataError, match=r"takes \(10,\) features, not an image"):
        prepare_image(tmp_path / "seven.png", "resize", (10,))
    assert mnist_recipe(*read_image(tmp_path / "seven.png")).shape == (1, 28, 28)
