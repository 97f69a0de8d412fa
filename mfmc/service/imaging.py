"""Pixels for the service: lossless encoding, fake patches as stored diffs, composition, fail-closed obfuscation.

A fake is stored as a `mfmc.swap.FacePatch` (the one patch type and npz format): the rectangle of pixels the
generator changed plus a mask, taken from the generator's output against the image it was made from.
Composition pastes the masked pixels: a warm render is numpy copies only.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from mfmc.errors import InvalidImageError, InvalidInputError, StoreError

if TYPE_CHECKING:  # the swap package is heavy to import: fakes are decoded only when a render needs them
    from mfmc.swap.patch import FacePatch

Box = tuple[int, int, int, int]


def encode_png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), "RGB").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def encode_image(image: np.ndarray, suffix: str) -> bytes:
    """An output image in the format its suffix names (`mfmc.files.IMAGE_OUTPUT_FORMATS`; checked before)."""
    from mfmc.files import IMAGE_OUTPUT_FORMATS

    fmt = IMAGE_OUTPUT_FORMATS.get(suffix.lower())
    if fmt is None:
        raise InvalidInputError(f"`{suffix}` is not an image format", help=f"use {', '.join(IMAGE_OUTPUT_FORMATS)}")
    if fmt == "PNG":
        return encode_png(image)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), "RGB").save(buf, format=fmt, **(
        {"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            arr = np.asarray(img.convert("RGB"))
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:  # Pillow's errors
        raise StoreError(f"a stored image cannot be decoded: {type(err).__name__}: {err}",
                         help="the data dir was modified outside mfmc") from None
    arr.flags.writeable = False
    return arr


def load_upload(source: object) -> np.ndarray:
    """An RGB uint8 image from a path, bytes or an array; `InvalidImageError` for anything else."""
    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or source.ndim != 3 or source.shape[2] != 3 or min(source.shape[:2]) < 1:
            raise InvalidImageError("an image must be an RGB uint8 array of shape (H, W, 3)")
        return source
    from mfmc.vision import load_image  # regular files only, bounded, EXIF-upright; `InvalidImageError` otherwise

    return load_image(source)  # type: ignore[arg-type]


def clip_box(box: Box | list[float], shape: tuple[int, ...], pad: float = 0.0) -> Box:
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    x1, x2 = x1 - pad * w, x2 + pad * w
    y1, y2 = y1 - pad * h, y2 + pad * h
    H, W = shape[:2]
    return (max(0, int(np.floor(x1))), max(0, int(np.floor(y1))), min(W, int(np.ceil(x2))), min(H, int(np.ceil(y2))))


def patch_from_bytes(data: bytes) -> FacePatch:
    """A stored fake (`mfmc.swap.FacePatch` bytes); `StoreError` if the stored bytes are not a patch."""
    from mfmc.swap.patch import FacePatch

    try:
        patch = FacePatch.from_bytes(data)
    except InvalidInputError as err:
        raise StoreError(f"a stored fake cannot be decoded: {err.message}",
                         help="the data dir was modified outside mfmc") from None
    patch.pixels.flags.writeable = False
    patch.mask.flags.writeable = False
    return patch


def diff_patch(base: np.ndarray, new: np.ndarray) -> FacePatch | None:
    """The pixels where `new` differs from `base` as a `FacePatch`, or None if nothing changed."""
    from mfmc.swap.patch import FacePatch

    return FacePatch.from_diff(base, new)


def obfuscate(image: np.ndarray, box: Box | list[float], protect: list[Box] | tuple = ()) -> np.ndarray:
    """Fail-closed replacement of a face: its box (padded) becomes a flat hatched block; returns a new image.

    Pixels inside the (unpadded) boxes in `protect` (the other faces) are left alone.
    """
    out = image.copy()
    x1, y1, x2, y2 = clip_box(box, image.shape, pad=0.1)
    if x2 <= x1 or y2 <= y1:
        return out
    region = out[y1:y2, x1:x2]
    mean = region.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    yy, xx = np.mgrid[0:y2 - y1, 0:x2 - x1]
    stripes = ((xx + yy) // max(2, (x2 - x1) // 12)) % 2 == 0
    block = np.where(stripes[..., None], 255 - mean, mean).astype(np.uint8)
    keep = np.zeros(region.shape[:2], dtype=bool)
    inner = clip_box(box, image.shape)
    for other in protect:
        ox1, oy1, ox2, oy2 = clip_box(other, image.shape)
        keep[max(0, oy1 - y1):max(0, oy2 - y1), max(0, ox1 - x1):max(0, ox2 - x1)] = True
    ix1, iy1, ix2, iy2 = inner
    keep[iy1 - y1:iy2 - y1, ix1 - x1:ix2 - x1] = False  # the face itself is always covered
    np.copyto(region, block, where=~keep[..., None])
    return out
