"""Pixels for the service: lossless encoding, fake patches as stored diffs, composition, fail-closed obfuscation.

A fake is stored as the rectangle of pixels the generator changed plus a mask, taken from the generator's output
against the image it was made from. Composition pastes the masked pixels: a warm render is numpy copies only.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from mfmc.errors import InvalidImageError, StoreError

Box = tuple[int, int, int, int]


def encode_png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), "RGB").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            arr = np.asarray(img.convert("RGB"))
    except Exception as err:
        raise StoreError(f"a stored image cannot be decoded: {type(err).__name__}",
                         help="the data dir was modified outside mfmc") from None
    arr.flags.writeable = False
    return arr


def load_upload(source: object) -> np.ndarray:
    """An RGB uint8 image from a path, bytes or an array; `InvalidImageError` for anything else."""
    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or source.ndim != 3 or source.shape[2] != 3 or min(source.shape[:2]) < 1:
            raise InvalidImageError("an image must be an RGB uint8 array of shape (H, W, 3)")
        return source
    try:
        from mfmc.vision import load_image
    except ImportError:  # vision not installed: plain Pillow, EXIF-upright
        load_image = None
    if load_image is not None:
        return load_image(source)  # type: ignore[arg-type]
    from PIL import ImageOps

    try:
        raw = source if isinstance(source, bytes) else open(source, "rb").read()  # type: ignore[arg-type]  # noqa: SIM115
        with Image.open(io.BytesIO(raw)) as img:
            return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    except FileNotFoundError:
        raise InvalidImageError(f"no such image `{source}`") from None
    except Exception:
        raise InvalidImageError(f"`{source}` is not a readable image" if not isinstance(source, bytes)
                                else "the uploaded bytes are not a readable image") from None


def clip_box(box: Box | list[float], shape: tuple[int, ...], pad: float = 0.0) -> Box:
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    x1, x2 = x1 - pad * w, x2 + pad * w
    y1, y2 = y1 - pad * h, y2 + pad * h
    H, W = shape[:2]
    return (max(0, int(np.floor(x1))), max(0, int(np.floor(y1))), min(W, int(np.ceil(x2))), min(H, int(np.ceil(y2))))


@dataclass(frozen=True)
class Patch:
    """Pixels to paste at (x, y) where `mask` is true."""

    x: int
    y: int
    pixels: np.ndarray  # (h, w, 3) uint8
    mask: np.ndarray  # (h, w) bool

    @property
    def full(self) -> bool:
        value = self.__dict__.get("_full")
        if value is None:
            value = bool(self.mask.all())
            object.__setattr__(self, "_full", value)
        return value

    def paste(self, out: np.ndarray) -> None:
        """Paste into `out` in place (the caller owns `out`)."""
        h, w = self.mask.shape
        region = out[self.y:self.y + h, self.x:self.x + w]
        if self.full:
            region[...] = self.pixels
        else:
            np.copyto(region, self.pixels, where=self.mask[..., None])

    def apply(self, image: np.ndarray) -> np.ndarray:
        out = image.copy()
        self.paste(out)
        return out

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, xy=np.array([self.x, self.y], dtype=np.int64), pixels=self.pixels,
                            mask=np.packbits(self.mask, axis=None), shape=np.array(self.mask.shape))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Patch:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                h, w = (int(v) for v in z["shape"])
                mask = np.unpackbits(z["mask"], count=h * w).astype(bool).reshape(h, w)
                x, y = (int(v) for v in z["xy"])
                pixels = z["pixels"]
        except Exception as err:
            raise StoreError(f"a stored fake cannot be decoded: {type(err).__name__}") from None
        pixels.flags.writeable = False
        mask.flags.writeable = False
        return cls(x, y, pixels, mask)


def diff_patch(base: np.ndarray, new: np.ndarray) -> Patch | None:
    """The pixels where `new` differs from `base`, or None if nothing changed."""
    if base.shape != new.shape:
        raise ValueError("a fake must keep the image size")
    changed = np.any(base != new, axis=2)
    ys, xs = np.nonzero(changed)
    if len(ys) == 0:
        return None
    y1, y2, x1, x2 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    mask = changed[y1:y2, x1:x2].copy()
    return Patch(x1, y1, new[y1:y2, x1:x2].copy(), mask)


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
