"""Pure array kernels for the image layers, channels-last (batch, H, W, C) throughout.

Each function does one job with whole-batch operations: no loop runs over samples or pixels
(the loops below run over the kh*kw kernel taps or the pool window's offsets). Where a kernel
takes `out`, it writes there instead of allocating: the layers keep those buffers between steps,
which spares the page faults of fresh multi-megabyte arrays on every batch.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.lib.stride_tricks import as_strided


def tap_slices(kh: int, kw: int, stride: int, oh: int, ow: int) -> Iterator[tuple[int, slice, slice]]:
    """For each kernel tap k = i*kw + j: the strided (rows, cols) slices of the input it reads."""
    for i in range(kh):
        for j in range(kw):
            yield i * kw + j, slice(i, i + stride * oh, stride), slice(j, j + stride * ow, stride)


def pad_into(x: np.ndarray, ph: int, pw: int, out: np.ndarray) -> np.ndarray:
    """x (N, H, W, C) copied into the interior of out (N, H+2ph, W+2pw, C), whose border is zero
    and stays so (only the interior is ever written)."""
    out[:, ph:ph + x.shape[1], pw:pw + x.shape[2], :] = x
    return out


def im2col(xp: np.ndarray, kh: int, kw: int, stride: int, oh: int, ow: int, out: np.ndarray,
           tile: int = 1) -> np.ndarray:
    """The (N*oh*ow, kh*kw*C) patch matrix of the (padded) input xp (N, H, W, C): row (n, r, c)
    holds the kh x kw x C window whose top-left corner is (r*stride, c*stride).

    tile > 1 orders the rows by tiles: row (i, j, n, r, c) holds the window of output position
    (r*tile + i, c*tile + j), so the product's rows are tile*tile contiguous blocks, block (i, j)
    holding the (i, j) element of every tile x tile pool window (see untile).

    One copy from a strided view of xp: a window's (kw, C) part is contiguous in memory, so
    numpy moves it in runs of kw*C numbers (about 4x faster than one slice copy per tap)."""
    n, c = xp.shape[0], xp.shape[3]
    sn, sh, sw, sc = xp.strides
    shape = (tile, tile, n, oh // tile, ow // tile, kh, kw, c)
    step_h, step_w = sh * stride, sw * stride
    windows = as_strided(xp, shape, (step_h, step_w, sn, step_h * tile, step_w * tile, sh, sw, sc),
                         writeable=False)
    np.copyto(out.reshape(shape), windows)
    return out


def im2col_single_channel(xp: np.ndarray, kh: int, kw: int, stride: int, oh: int, ow: int,
                          out: np.ndarray, tile: int = 1, blocks: np.ndarray | None = None) -> np.ndarray:
    """im2col for C = 1, transposed: out (kh*kw, N*oh*ow), one row per tap, each a shifted copy
    of the images (long contiguous runs; about 6x faster than im2col's runs of kw numbers);
    tile as in im2col, then through blocks, shaped by tap_blocks_shape (see _tiles_from_blocks)."""
    if tile > 1:
        return _tiles_from_blocks(xp, kh, kw, stride, oh, ow, out, tile, blocks)
    sn, sh, sw, _ = xp.strides
    shape = (kh, kw, xp.shape[0], oh, ow)
    taps = as_strided(xp, shape, (sh, sw, sn, sh * stride, sw * stride), writeable=False)
    np.copyto(out.reshape(shape), taps)
    return out


def tap_blocks_shape(n: int, kh: int, kw: int, stride: int, oh: int, ow: int, tile: int) -> tuple:
    """The shape of the blocks _tiles_from_blocks gathers first (see there)."""
    return stride * (tile - 1) + kh, stride * (tile - 1) + kw, n, oh // tile, ow // tile


def _tiles_from_blocks(xp: np.ndarray, kh: int, kw: int, stride: int, oh: int, ow: int,
                       out: np.ndarray, tile: int, blocks: np.ndarray | None = None) -> np.ndarray:
    """The one-channel patch matrix in tiles: tap (i, j) of window element (a, b) reads the
    image from row stride*a + i and column stride*b + j on, every stride*tile pixels, so the
    kh*kw*tile*tile rows are copies of fewer distinct blocks (36 for 5x5 taps in 2x2 tiles,
    not 100). The blocks are gathered once, then copied whole: 40% faster than gathering
    every row."""
    sn, sh, sw, _ = xp.strides
    shape = tap_blocks_shape(xp.shape[0], kh, kw, stride, oh, ow, tile)
    hop_h, hop_w = sh * stride * tile, sw * stride * tile
    blocks = np.empty(shape, xp.dtype) if blocks is None else blocks
    np.copyto(blocks, as_strided(xp, shape, (sh, sw, sn, hop_h, hop_w), writeable=False))
    bu, bv, bn, br, bc = blocks.strides
    rows = (kh, kw, tile, tile, *shape[2:])
    np.copyto(out.reshape(rows), as_strided(blocks, rows, (bu, bv, stride * bu, stride * bv, bn, br, bc),
                                            writeable=False))
    return out


def untile(tiles: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Copy tiles (t, t, N, th, tw, F) into their spatial places in out (N, th*t, tw*t, F),
    which may be a strided view (the interior of a zero frame)."""
    t = tiles.shape[0]
    sn, sh, sw, sc = out.strides
    np.copyto(as_strided(out, tiles.shape, (sh, sw, sn, sh * t, sw * t, sc)), tiles)
    return out


def col2im_taps(dcols: np.ndarray, kh: int, kw: int, stride: int, oh: int, ow: int,
                out: np.ndarray) -> np.ndarray:
    """Add back the per-tap gradients dcols (kh*kw, N*oh*ow, C) into the zeroed padded input
    gradient out (N, H, W, C): the adjoint of im2col. Each tap's block is contiguous."""
    n, c = out.shape[0], out.shape[3]
    out.fill(0)
    for k, rows, cols in tap_slices(kh, kw, stride, oh, ow):
        out[:, rows, cols, :] += dcols[k].reshape(n, oh, ow, c)
    return out


def max_pool(x: np.ndarray, size: int, stride: int, oh: int, ow: int, training: bool) -> tuple:
    """(y, winners): the max over each size x size window, (N, H, W, C) -> (N, oh, ow, C), and
    when training what max_unpool needs to send each window's gradient to its first maximum
    (ties go to the first position in row-major order, as in PyTorch)."""
    return max_over([x[:, rows, cols, :] for _, rows, cols in tap_slices(size, size, stride, oh, ow)],
                    training)


def max_over(views: list[np.ndarray], training: bool) -> tuple:
    """(best, winners) of same-shaped arrays, a window's elements in row-major order: their
    element-wise max, and when training what send_to_max needs."""
    if len(views) == 4:  # a 2x2 window (windows are square)
        return _tournament(*views, training)
    best = views[0].copy()
    for v in views[1:]:
        np.maximum(best, v, out=best)
    if not training:
        return best, None
    first_max = np.empty((len(views), *best.shape), bool)
    taken = np.zeros(best.shape, bool)
    for k, v in enumerate(views):
        np.equal(v, best, out=first_max[k])
        first_max[k] &= ~taken
        taken |= first_max[k]
    return best, first_max


def _tournament(a, b, c, d, training: bool) -> tuple:
    """A 2x2 window (a b / c d) as a tournament: the better of each row's pair, then the better
    row. Three comparisons per output instead of twelve mask operations."""
    top, bottom = np.maximum(a, b), np.maximum(c, d)
    best = np.maximum(top, bottom)
    if not training:
        return best, None
    # Strictly greater: a tie keeps the first (left, then top) element.
    return best, (np.greater(b, a), np.greater(d, c), np.greater(bottom, top))


def send_to_max(dy: np.ndarray, winners, outs: list[np.ndarray]) -> None:
    """The adjoint of max_over: outs[k] (shaped like dy, may be strided views) = dy where
    element k of the window is its first maximum, else 0."""
    if isinstance(winners, tuple):
        # The tournament backwards: the bottom row's share, then each row's right element's
        # (the left one is the rest).
        right, lower, bottom = winners
        d_bottom = dy * bottom
        d_top = dy - d_bottom
        for d_row, wins, (left, right_out) in ((d_top, right, outs[:2]), (d_bottom, lower, outs[2:])):
            np.multiply(d_row, wins, out=right_out)
            np.subtract(d_row, right_out, out=left)
        return
    for k, out in enumerate(outs):
        np.multiply(dy, winners[k], out=out)


def max_unpool(dy: np.ndarray, winners, size: int, stride: int, out: np.ndarray) -> np.ndarray:
    """dL/dx (N, H, W, C) into out for dy (N, oh, ow, C), each window's gradient to its first
    maximum (winners from max_pool)."""
    _, oh, ow, _ = dy.shape
    places = [out[:, rows, cols, :] for _, rows, cols in tap_slices(size, size, stride, oh, ow)]
    if stride == size:  # windows that do not overlap: each place is written once
        if out.shape[1] != oh * size or out.shape[2] != ow * size:
            out.fill(0)  # the last rows or columns, which a floor-mode pool leaves out
        send_to_max(dy, winners, places)
        return out
    out.fill(0)
    if isinstance(winners, tuple):
        parts = [np.empty_like(dy) for _ in places]
        send_to_max(dy, winners, parts)
    else:  # one window position at a time
        parts = (dy * first_max for first_max in winners)
    for place, part in zip(places, parts, strict=True):
        place += part
    return out


def avg_pool(x: np.ndarray, size: int, stride: int, oh: int, ow: int) -> np.ndarray:
    """Mean over each size x size window (N, H, W, C) -> (N, oh, ow, C)."""
    views = [x[:, rows, cols, :] for _, rows, cols in tap_slices(size, size, stride, oh, ow)]
    total = views[0].copy()
    for v in views[1:]:
        total += v
    total /= x.dtype.type(size ** 2)
    return total


def avg_unpool(dy: np.ndarray, size: int, stride: int, out: np.ndarray) -> np.ndarray:
    """dL/dx (N, H, W, C) into out for dy (N, oh, ow, C): each window's gradient is shared
    equally by its size*size inputs."""
    _, oh, ow, _ = dy.shape
    share = dy / dy.dtype.type(size ** 2)
    out.fill(0)
    for _, rows, cols in tap_slices(size, size, stride, oh, ow):
        out[:, rows, cols, :] += share
    return out
