"""Aligned face crops and the image-space metrics of the paper's supplement B (SSIM, RMSE, PSNR).

An aligned crop maps the five landmarks (eyes, nose, mouth corners) onto a fixed template with a least-squares
similarity transform, so pixel metrics compare faces rather than framing. Pure numpy (bilinear sampling).
"""

from __future__ import annotations

import numpy as np

from mfmc.vision.alignment import ARCFACE_TEMPLATE_112, similarity_fit

#: Side of the aligned crops stored in a pool and compared by the image metrics.
ALIGNED_SIZE = 64
#: Highest PSNR reported (identical crops would otherwise give infinity).
PSNR_CAP = 100.0


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix M of the least-squares similarity (rotation, uniform scale, shift) with M @ [src, 1] ~ dst."""
    s = np.asarray(src, dtype=np.float64)
    if ((s - s.mean(0)) ** 2).sum() <= 1e-12:
        raise ValueError("degenerate landmarks")
    return similarity_fit(s, dst)


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Warp `image` (H, W[, C]) by the 2x3 forward `matrix` into an output of `size` (w, h); edge replicate."""
    img = np.asarray(image)
    w, h = size
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(full)[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    sx = np.clip(sx, 0, img.shape[1] - 1)
    sy = np.clip(sy, 0, img.shape[0] - 1)
    x0 = np.minimum(np.floor(sx).astype(np.intp), img.shape[1] - 2 if img.shape[1] > 1 else 0)
    y0 = np.minimum(np.floor(sy).astype(np.intp), img.shape[0] - 2 if img.shape[0] > 1 else 0)
    x1 = np.minimum(x0 + 1, img.shape[1] - 1)
    y1 = np.minimum(y0 + 1, img.shape[0] - 1)
    fx, fy = sx - x0, sy - y0
    src = img.astype(np.float64)
    if src.ndim == 3:
        fx, fy = fx[..., None], fy[..., None]
    top = src[y0, x0] * (1 - fx) + src[y0, x1] * fx
    bottom = src[y1, x0] * (1 - fx) + src[y1, x1] * fx
    out = top * (1 - fy) + bottom * fy
    if np.issubdtype(img.dtype, np.integer):
        return np.clip(np.rint(out), 0, 255).astype(img.dtype)
    return out.astype(img.dtype)


def aligned_crop(image: np.ndarray, landmarks5: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """The face of `image` with its five landmarks on the template, as a (size, size, 3) uint8 crop."""
    matrix = similarity_transform(landmarks5, ARCFACE_TEMPLATE_112 * (size / 112.0))
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return warp_affine(img.astype(np.uint8), matrix, (size, size))


def _box_mean(a: np.ndarray, win: int) -> np.ndarray:
    """Mean over `win` x `win` windows (valid part) of the last two axes, via summed-area tables."""
    c = np.cumsum(np.cumsum(a, axis=-1), axis=-2)
    c = np.pad(c, [(0, 0)] * (a.ndim - 2) + [(1, 0), (1, 0)])
    s = c[..., win:, win:] - c[..., :-win, win:] - c[..., win:, :-win] + c[..., :-win, :-win]
    return s / float(win * win)


def ssim(probe: np.ndarray, crops: np.ndarray, win: int = 7) -> np.ndarray:
    """Mean SSIM (luma, 7x7 uniform windows) of `probe` (H, W, 3) against each of `crops` (N, H, W, 3)."""
    x = _luma(probe)[None]
    y = _luma(crops)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _box_mean(x, win), _box_mean(y, win)
    sxx = _box_mean(x * x, win) - mx * mx
    syy = _box_mean(y * y, win) - my * my
    sxy = _box_mean(x * y, win) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return (num / den).mean(axis=(-2, -1))


def rmse(probe: np.ndarray, crops: np.ndarray) -> np.ndarray:
    """Root-mean-square difference (0..255 levels, all channels) of `probe` against each of `crops`."""
    diff = np.asarray(crops, dtype=np.float32) - np.asarray(probe, dtype=np.float32)[None]
    return np.sqrt((diff * diff).reshape(diff.shape[0], -1).mean(axis=1)).astype(np.float64)


def psnr(probe: np.ndarray, crops: np.ndarray) -> np.ndarray:
    """Peak signal-to-noise ratio in dB (peak 255, capped at `PSNR_CAP`) of `probe` against each of `crops`."""
    e = rmse(probe, crops)
    with np.errstate(divide="ignore"):
        out = 20.0 * np.log10(255.0 / np.maximum(e, 1e-12))
    return np.minimum(out, PSNR_CAP)


def _luma(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
