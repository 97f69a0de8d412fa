"""Writing photos: PNG output is lossless at mfmc's fast compression level (every pixel comes back exactly)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mfmc.vision import load_image, save_image
from mfmc.vision.images import PNG_COMPRESS_LEVEL
from tests.vision.helpers import photo


@pytest.mark.parametrize("name", ["out.png", "out.PNG", "no_suffix"])
def test_png_round_trip_is_exact(tmp_path: Path, name: str) -> None:
    rng = np.random.default_rng(0)
    image = np.array(photo("P002", "studio_portrait", 640))
    image[:40, :40] = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)  # noise does not survive a lossy codec
    path = save_image(tmp_path / name, image)
    with Image.open(path) as written:
        assert written.format == "PNG"
    np.testing.assert_array_equal(load_image(path), image)


def test_png_level_trades_size_only(tmp_path: Path) -> None:
    image = np.array(photo("P002", "studio_portrait", 640))
    fast = save_image(tmp_path / "fast.png", image)
    small = save_image(tmp_path / "small.png", image, png_level=9)
    assert PNG_COMPRESS_LEVEL <= 3  # the fast setting is the default
    np.testing.assert_array_equal(load_image(fast), load_image(small))
    assert fast.stat().st_size > small.stat().st_size  # the default does compress less (it writes faster)
