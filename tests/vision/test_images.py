"""Loading photos: every kind of bad input gives an `InvalidImageError` or a correct upright RGB image."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mfmc.errors import InvalidImageError
from mfmc.vision import load_image, read_image, save_image


def marker_image(width: int = 120, height: int = 80) -> np.ndarray:
    """Grey with a red square in the top-left corner, so orientation can be checked."""
    image = np.full((height, width, 3), 128, dtype=np.uint8)
    image[:20, :20] = (255, 0, 0)
    return image


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.jpg", b"", r"is empty \(0 bytes\)"),
        ("notes.jpg", b"these are not pixels\n" * 20, "is not an image"),
        ("fake.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "not an image|corrupt"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    path = write(tmp_path, name, data)
    with pytest.raises(InvalidImageError, match=message) as err:
        load_image(path)
    assert f"`{path}`" in err.value.message and err.value.exit_code == 2
    assert not err.value.message[0].isupper() and not err.value.message.endswith(".")


def test_truncated_jpeg_and_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (200, 300, 3), dtype=np.uint8))
    for fmt in ("JPEG", "PNG"):
        data = encoded(image, fmt)
        path = write(tmp_path, f"cut.{fmt.lower()}", data[: len(data) // 2])
        with pytest.raises(InvalidImageError, match="corrupt or truncated"):
            load_image(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match="does not exist"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(InvalidImageError, match="is a folder"):
        load_image(tmp_path)


def test_grey_rgba_palette_and_cmyk_become_rgb(tmp_path: Path) -> None:
    base = marker_image()
    grey = Image.fromarray(base[..., 0])
    rgba = Image.fromarray(np.dstack([base, np.full(base.shape[:2], 255, np.uint8)]), "RGBA")
    cmyk = Image.fromarray(base).convert("CMYK")
    palette = Image.fromarray(base).convert("P")
    for name, img, fmt in [("g.png", grey, "PNG"), ("a.png", rgba, "PNG"), ("c.jpg", cmyk, "JPEG"),
                           ("p.gif", palette, "GIF")]:
        out = load_image(write(tmp_path, name, encoded(img, fmt)))
        assert out.shape == (80, 120, 3) and out.dtype == np.uint8, name
        assert not np.array_equal(out[5, 5], out[60, 100]), name  # the top-left marker survives
    cmyk_out = load_image(tmp_path / "c.jpg")
    assert cmyk_out[5, 5, 0] > 200 and cmyk_out[5, 5, 1] < 60  # CMYK JPEG keeps its colours


def test_transparent_pixels_composite_on_white(tmp_path: Path) -> None:
    pixels = np.zeros((10, 10, 4), dtype=np.uint8)  # fully transparent black
    out = load_image(write(tmp_path, "t.png", encoded(Image.fromarray(pixels, "RGBA"), "PNG")))
    assert (out == 255).all()


def test_16_bit_png_is_rescaled_not_clipped(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 256, dtype=np.uint16)[None].repeat(4, axis=0)
    out = load_image(write(tmp_path, "deep.png", encoded(Image.fromarray(ramp), "PNG")))
    assert out.shape == (4, 256, 3)
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255 and 120 <= out[0, 128, 0] <= 135


@pytest.mark.parametrize(("orientation", "shape", "corner"), [(1, (80, 120), (0, 0)), (3, (80, 120), (79, 119)),
                                                             (6, (120, 80), (0, 79)), (8, (120, 80), (119, 0))])
def test_exif_orientation_gives_upright_pixels(tmp_path: Path, orientation: int, shape: tuple, corner: tuple) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encoded(Image.fromarray(marker_image()), "JPEG", exif=exif, quality=95)
    loaded = read_image(write(tmp_path, "o.jpg", data))
    assert loaded.image.shape[:2] == shape
    assert loaded.original_size == (shape[1], shape[0])
    y, x = corner
    assert loaded.image[y, x, 0] > 200 and loaded.image[y, x, 2] < 60  # the red marker moved with the rotation


def test_huge_png_is_refused_from_its_header(tmp_path: Path) -> None:
    """A 12000 × 9000 PNG header is refused before any pixel is decoded."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 12000, 9000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(
        b"IEND", b"")
    with pytest.raises(InvalidImageError, match="too large: 12000×9000"):
        load_image(write(tmp_path, "huge.png", data))


def test_huge_jpeg_is_decoded_reduced_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "huge.jpg"
    Image.new("L", (12000, 9000), 90).save(path, quality=50)
    code = (
        "import resource, sys\n"
        "from mfmc.vision import read_image\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"loaded = read_image({str(path)!r})\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(loaded.image.shape, loaded.scale, (peak - base) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    height, width, scale, extra_mib = int(out[0][1:-1]), int(out[1][:-1]), float(out[3]), int(out[4])
    assert (width, height) == (6000, 4500) and scale == 0.5
    # a full-size RGB decode alone would take 309 MiB; the reduced one needs well under half of that
    assert extra_mib < 200, f"decoding took {extra_mib} MiB"


def test_arrays_and_round_trip(tmp_path: Path) -> None:
    rgb = marker_image()
    assert load_image(rgb[..., 0]).shape == (80, 120, 3)
    assert load_image(rgb.astype(np.uint16) * 257).tolist() == rgb.tolist()
    assert load_image(rgb.astype(np.float32) / 255.0).tolist() == rgb.tolist()
    with pytest.raises(InvalidImageError):
        load_image(np.zeros((4, 4, 2), np.uint8))
    for name in ("x.png", "x.jpg"):
        back = load_image(save_image(tmp_path / name, rgb))
        assert back.shape == rgb.shape and np.abs(back.astype(int) - rgb).mean() < 3


def test_bytes_and_stream_sources() -> None:
    data = encoded(Image.fromarray(marker_image()), "PNG")
    assert load_image(data).shape == (80, 120, 3)
    assert load_image(io.BytesIO(data)).shape == (80, 120, 3)
    with pytest.raises(InvalidImageError, match="the image data is empty"):
        load_image(b"")
