"""FacePatch, masks and blending: no model needed."""

from __future__ import annotations

import numpy as np
import pytest

from mfmc.errors import InvalidInputError
from mfmc.swap import FacePatch, changed_outside
from mfmc.swap.blend import blend_patch, feather, polygon_mask, transfer_colour
from mfmc.swap.obfuscate import face_polygon, fill, pixelate


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (120, 160, 3), dtype=np.uint8)


def _patch(image: np.ndarray) -> FacePatch:
    poly = np.array([[40.0, 30.0], [110.0, 28.0], [120.0, 90.0], [50.0, 100.0]])
    return pixelate(image, poly, 4)


def test_apply_returns_a_new_image_and_touches_only_the_mask() -> None:
    image = _image()
    before = image.copy()
    patch = _patch(image)
    out = patch.apply(image)
    assert np.array_equal(image, before)  # input untouched
    assert out is not image
    assert changed_outside(image, out, patch.full_mask(), tolerance=0) == 0
    assert np.count_nonzero(np.any(out != image, axis=2)) > 0.5 * patch.area


def test_bytes_round_trip_is_small_and_exact() -> None:
    image = _image(1)
    patch = _patch(image)
    data = patch.to_bytes()
    back = FacePatch.from_bytes(data)
    assert back == patch
    assert np.array_equal(back.apply(image), patch.apply(image))
    assert len(data) < image.nbytes


def test_bad_bytes_and_wrong_image_are_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="not a face patch"):
        FacePatch.from_bytes(b"junk")
    with pytest.raises(InvalidInputError):
        _patch(_image()).apply(np.zeros((10, 10, 3), np.uint8))


def test_feathered_alpha_is_zero_outside_and_one_deep_inside() -> None:
    mask = polygon_mask(np.array([[10.0, 10.0], [90.0, 10.0], [90.0, 90.0], [10.0, 90.0]]), (100, 100))
    alpha = feather(mask, 8)
    assert alpha[mask == 0].max() == 0.0
    assert alpha[50, 50] == pytest.approx(1.0)
    assert 0 < alpha[50, 13] < 1


def test_blend_never_changes_pixels_where_alpha_is_zero() -> None:
    image = _image(2)
    new = 255 - image[10:90, 20:120]
    alpha = feather(polygon_mask(np.array([[30.0, 20.0], [110.0, 15.0], [100.0, 85.0]]), (80, 100), (20, 10)), 5)
    patch = blend_patch(image, new, alpha, (20, 10, 120, 90))
    out = patch.apply(image)
    assert changed_outside(image, out, patch.full_mask(), tolerance=0) == 0


def test_colour_transfer_matches_mean_lab() -> None:
    rng = np.random.default_rng(3)
    dark = rng.integers(20, 60, (50, 50, 3), dtype=np.uint8)
    bright = rng.integers(150, 230, (50, 50, 3), dtype=np.uint8)
    out = transfer_colour(dark, bright, np.ones((50, 50), np.float32))
    assert abs(out.mean() - bright.mean()) < 5


def test_fill_hides_everything_inside_the_polygon() -> None:
    """Inside the polygon only a plane per channel is left (nine numbers: tone and light), outside nothing moves."""
    image = _image(4)
    poly = face_polygon(np.array([40, 30, 110, 100]), None)
    patch = fill(image, poly)
    out = patch.apply(image)
    mask = patch.full_mask()
    assert changed_outside(image, out, mask, tolerance=0) == 0
    ys, xs = np.nonzero(mask)
    design = np.stack([np.ones(len(xs)), xs, ys], axis=1)
    for c in range(3):
        coeffs, *_ = np.linalg.lstsq(design, out[ys, xs, c].astype(float), rcond=None)
        assert np.abs(design @ coeffs - out[ys, xs, c]).max() <= 1.0  # a plane up to rounding


def test_fill_takes_the_face_s_own_tone_on_a_real_photo() -> None:
    """The astronaut's filled face is skin-coloured, not the colour of the wall and hair around it."""
    from skimage import data

    image = data.astronaut()
    box = np.array([181, 58, 270, 178])  # her face (the detector's box)
    poly = face_polygon(box, None)
    patch = fill(image, poly)
    mask = patch.full_mask()
    face_mean = image[mask].astype(float).mean(0)
    filled = patch.apply(image)[mask].astype(float)
    ring = image[patch.box[1]:patch.box[3], patch.box[0]:patch.box[2]][~patch.mask].astype(float).mean(0)
    # the skin's tone (fitted on the lighter part: brows, eyes and hair inside the outline left out)
    cheeks = np.concatenate([image[115:135, 192:205], image[115:135, 245:258]], axis=1)  # beside the nose
    skin = cheeks.astype(float).reshape(-1, 3).mean(0)
    assert np.linalg.norm(filled.mean(0) - skin) < np.linalg.norm(face_mean - skin)
    assert np.linalg.norm(filled.mean(0) - face_mean) < np.linalg.norm(ring - face_mean)
    assert filled.std(0).max() < image[mask].astype(float).std(0).max() / 2  # smooth: no features left


def test_what_the_source_wears_stays_under_a_fill_and_a_pixelation() -> None:
    """A kept polygon (a face mask) is left exactly as it was; the rest of the face is hidden."""
    image = _image(5)
    poly = face_polygon(np.array([40, 30, 110, 100]), None)
    mask_poly = np.array([[50.0, 70.0], [100.0, 70.0], [100.0, 100.0], [50.0, 100.0]])
    for patch in (fill(image, poly, [mask_poly]), pixelate(image, poly, 4, [mask_poly])):
        out = patch.apply(image)
        assert np.array_equal(out[72:98, 52:98], image[72:98, 52:98])
        assert not np.array_equal(out[40:60, 60:90], image[40:60, 60:90])
