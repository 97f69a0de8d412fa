"""Reading and writing images: every photo enters mfmc as an upright RGB uint8 array.

Untrusted files are checked before pixels are decoded: the header gives the size, so a 12 000 × 9 000 photo is
either decoded at a reduced scale (JPEG's DCT scaling, which never materialises the full image) or refused,
and memory stays bounded. Every failure becomes an `InvalidImageError` (exit code 2).
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mfmc.errors import InvalidImageError
from mfmc.files import read_regular_file, write_file_atomic

ImageSource = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes] | np.ndarray | Image.Image

#: Images above this many pixels are decoded reduced (JPEG) or refused (other formats). 40 MP keeps one
#: decoded RGB frame near 120 MB and covers every current phone camera.
DEFAULT_MAX_PIXELS = 40_000_000
#: Files larger than this are refused before reading them into memory.
MAX_FILE_BYTES = 256 * 1024 * 1024
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image and how it relates to the file: `scale` is decoded size / original size (≤ 1)."""

    image: np.ndarray
    scale: float
    original_size: tuple[int, int]  # (width, height) of the upright original


def load_image(source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read a photo as an RGB uint8 array (H, W, 3), turned upright by its EXIF orientation.

    Accepts a path, bytes, a binary file object, a PIL image or an array (grey, RGB or RGBA). A JPEG above
    `max_pixels` is decoded at 1/2, 1/4 or 1/8 scale; use `read_image` to learn that scale.
    """
    return read_image(source, max_pixels=max_pixels).image


def read_image(source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Like `load_image`, but also say at which scale the image was decoded."""
    if isinstance(source, np.ndarray):
        image = _array_to_rgb(source, "array")
        return LoadedImage(image, 1.0, (image.shape[1], image.shape[0]))
    if isinstance(source, Image.Image):
        return _decode(source, "image", max_pixels)
    name, data = _read_bytes(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            pil = Image.open(io.BytesIO(data))
            return _decode(pil, name, max_pixels)
    except InvalidImageError:
        raise
    except Image.DecompressionBombError as err:
        raise InvalidImageError(f"{name} is too large to decode", help=str(err)) from None
    except UnidentifiedImageError:
        raise InvalidImageError(
            f"{name} is not an image mfmc can read", help="use a JPEG, PNG, WebP, BMP, TIFF or GIF file"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        # Pillow reports truncated and corrupt data as OSError/ValueError/SyntaxError.
        raise InvalidImageError(f"{name} is corrupt or truncated", help=f"the decoder said: {err}") from None


#: zlib level of written PNGs. PNG is lossless at every level; 1 writes a 2.7 MP photo ~4x faster than Pillow's
#: default 6 (126 vs 493 ms here) for a ~20 % larger file (measured by benchmarks/bench_faces.py).
PNG_COMPRESS_LEVEL = 1


def save_image(
    path: str | os.PathLike[str], image: np.ndarray, *, quality: int = 95, png_level: int = PNG_COMPRESS_LEVEL
) -> Path:
    """Write an RGB (or grey) uint8 array; the format follows the suffix (PNG when there is none).

    `quality` applies to JPEG and WebP (lossy); PNG is always lossless, `png_level` (0-9) only trades its
    writing time against its size."""
    array = _array_to_rgb(image, "image to save")
    target = Path(path)
    suffix = target.suffix.lower()
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}.get(
        suffix, "PNG"
    )
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {"compress_level": png_level} if fmt == "PNG" else {}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        Image.fromarray(array, "RGB").save(buffer, format=fmt, **options)
    except OSError as err:
        raise InvalidImageError(f"cannot write `{target}`", help=str(err)) from None
    # written under a temporary name and renamed: a full disk leaves no partial image (with real faces) behind
    return write_file_atomic(target, buffer.getvalue())


def is_image_path(path: Path) -> bool:
    """Whether a folder entry looks like a photo (by suffix; content is checked when it is loaded)."""
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def image_files(folder: Path) -> list[Path]:
    """Every photo under `folder` (recursively, by suffix), sorted."""
    return sorted(p for p in folder.rglob("*") if is_image_path(p))


def _read_bytes(source: ImageSource) -> tuple[str, bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        name = "the image data"
    elif hasattr(source, "read"):
        data = source.read(MAX_FILE_BYTES + 1)  # type: ignore[union-attr]
        name = "the image stream"
    else:
        path = Path(source)  # type: ignore[arg-type]
        name = f"`{path}`"
        # regular files only (a FIFO or /dev/zero is refused before reading), at most MAX_FILE_BYTES
        data = read_regular_file(path, max_bytes=MAX_FILE_BYTES, error=InvalidImageError)
    if not data:
        raise InvalidImageError(f"{name} is empty (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise InvalidImageError(f"{name} is too large", help="the limit is 256 MiB")
    return name, data


def _decode(pil: Image.Image, name: str, max_pixels: int) -> LoadedImage:
    width, height = pil.size
    if width <= 0 or height <= 0:
        raise InvalidImageError(f"{name} has no pixels")
    scale = 1.0
    if width * height > max_pixels:
        if pil.format != "JPEG":
            raise InvalidImageError(
                f"{name} is too large: {width}×{height} pixels",
                help=f"the limit is {max_pixels / 1e6:.0f} MP for {pil.format or 'this format'} files; "
                "resize it or save it as JPEG",
            )
        # JPEG decodes directly at 1/2, 1/4 or 1/8 scale: the full-size frame is never allocated.
        factor = next((k for k in (2, 4, 8) if (width / k) * (height / k) <= max_pixels), 8)
        pil.draft(None, (-(-width // factor), -(-height // factor)))
        if pil.size[0] * pil.size[1] > max_pixels:
            raise InvalidImageError(
                f"{name} is too large: {width}×{height} pixels", help=f"the limit is {max_pixels / 1e6:.0f} MP"
            )
        scale = pil.size[0] / width
    pil.load()
    # Read EXIF only after the size check: for some formats (PNG) it means parsing the whole file.
    orientation = pil.getexif().get(0x0112, 1)
    upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    if getattr(pil, "n_frames", 1) > 1:
        pil.seek(0)
    pil = ImageOps.exif_transpose(pil) or pil
    image = _pil_to_rgb(pil, name)
    return LoadedImage(image, scale, upright)


def _pil_to_rgb(pil: Image.Image, name: str) -> np.ndarray:
    mode = pil.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # Pillow's convert("RGB") clips 16-bit/float data at 255; rescale by the value range instead.
        values = np.asarray(pil, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        if mode == "F":
            top = max(float(values.max(initial=1.0)), 1e-9)
        grey = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in pil.info):
        # Transparent pixels carry arbitrary colours: composite on white so they don't read as faces.
        rgba = pil.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        pil = Image.alpha_composite(background, rgba)
    try:
        rgb = pil.convert("RGB")
    except (ValueError, OSError) as err:
        raise InvalidImageError(f"{name} has an unsupported colour mode `{mode}`", help=str(err)) from None
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _array_to_rgb(array: np.ndarray, what: str) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise InvalidImageError(f"the {what} is not an array")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InvalidImageError(f"the {what} has shape `{array.shape}`", help="expected (H, W), (H, W, 3) or (H, W, 4)")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InvalidImageError(f"the {what} has no pixels")
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    elif array.dtype.kind == "f":
        array = np.clip(array * (255.0 if float(np.nanmax(array)) <= 1.0 else 1.0) + 0.5, 0, 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise InvalidImageError(f"the {what} has dtype `{array.dtype}`", help="expected uint8, uint16 or float")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    elif array.shape[2] == 4:
        alpha = array[..., 3:4].astype(np.float32) / 255.0
        array = (array[..., :3] * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    return np.ascontiguousarray(array)
