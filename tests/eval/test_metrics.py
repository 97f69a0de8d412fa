"""The evaluation's measures against values computed by hand."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from mfmc.errors import InvalidInputError
from mfmc.eval import metrics as m
from mfmc.eval.report import reidentification, table1


def test_psnr_and_rmse_of_a_known_noise() -> None:
    a = np.full((32, 32, 3), 128, np.uint8)
    noise = np.where(np.indices((32, 32)).sum(0) % 2 == 0, 10, -10)[..., None]  # ±10 everywhere: MSE = 100
    b = (a.astype(np.int16) + noise).astype(np.uint8)
    assert m.rmse(a, b) == pytest.approx(10.0)
    assert m.psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 100))  # 28.13 dB
    assert m.psnr(a, a) == float("inf")


def test_ssim_is_one_for_identical_images_and_lower_otherwise() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    assert m.ssim(a, a) == pytest.approx(1.0)
    a = np.repeat(np.linspace(0, 255, 48), 48).reshape(48, 48, 1).repeat(3, axis=2).astype(np.uint8)
    assert m.ssim(a, a) == pytest.approx(1.0)
    small = np.clip(a + rng.integers(-10, 11, a.shape), 0, 255).astype(np.uint8)
    large = np.clip(a + rng.integers(-80, 81, a.shape), 0, 255).astype(np.uint8)
    assert 0.0 < m.ssim(a, large) < m.ssim(a, small) < 1.0


def test_rmse_refuses_different_shapes() -> None:
    with pytest.raises(InvalidInputError, match="cannot compare images"):
        m.rmse(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))


def test_frechet_distance_of_identical_and_shifted_gaussians() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((300, 6))
    assert m.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    delta = np.array([1.0, -2.0, 0.5, 0.0, 3.0, 0.0])
    assert m.frechet_distance(a, a + delta) == pytest.approx(float(delta @ delta))  # |Δμ|² = 14.25


def test_frechet_distance_of_scaled_gaussian() -> None:
    x = np.random.default_rng(2).standard_normal((500, 1))
    x = (x - x.mean()) / x.std(ddof=1)  # sample variance exactly 1
    # N(0, 1) vs N(0, 4): 1 + 4 - 2·sqrt(1·4) = 1
    assert m.frechet_distance(x, 2 * x) == pytest.approx(1.0)


def test_frechet_distance_needs_two_vectors_of_one_size() -> None:
    with pytest.raises(InvalidInputError, match="at least two"):
        m.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(InvalidInputError, match="3-D and 4-D"):
        m.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))


def test_accuracy_and_relative_reduction() -> None:
    assert m.accuracy([0.1, 0.5, 0.7, 0.9], 0.6) == 0.5
    assert m.accuracy([0.6], 0.6) == 0.0  # same person iff distance < threshold
    assert m.accuracy([], 0.6) is None
    assert m.relative_reduction(1.0, 0.39) == pytest.approx(0.61)  # the paper's "61 %"
    assert m.relative_reduction(0.8, 0.2) == pytest.approx(0.75)
    assert m.relative_reduction(0.0, 0.2) is None


def test_iou() -> None:
    assert m.iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert m.iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert m.iou([0, 0, 1, 1], [2, 2, 3, 3]) == 0.0


def _fake_eval(rows: list[tuple[float, float]], threshold: float = 0.6) -> SimpleNamespace:
    rec = SimpleNamespace(threshold=threshold, distance=lambda a, b: np.linalg.norm(np.asarray(a) - b, axis=-1),
                          pairwise=lambda a, b: np.linalg.norm(a[:, None] - b[None], axis=-1))
    faces = [SimpleNamespace(results={"single/random": {"target": "t", "target_to_source": {"x": t},
                                                        "distance_to_source": {"x": r}}})
             for t, r in rows]
    return SimpleNamespace(faces=faces, pipe=SimpleNamespace(recognizers={"x": rec}))


def test_table1_arithmetic() -> None:
    ev = _fake_eval([(0.9, 0.3), (0.5, 0.7), (1.0, 0.65), (0.8, 0.59)])
    t = table1(ev, ["single/random"], {"x": 0.6})
    cell = t["single"]["x"]
    assert cell["source_vs_target"]["random"] == 0.25
    assert cell["source_vs_result"]["random"] == 0.5
    assert cell["relative_reduction"]["random"] == 0.5
    assert t["single"]["average"]["source_vs_result"]["random"] == 0.5


def test_reidentification_counts_nearest_same_person_below_threshold() -> None:
    emb = {"a1": [0.0, 0.0], "a2": [0.1, 0.0], "b1": [5.0, 0.0], "b2": [5.2, 0.0]}
    labels = {"a1": "A", "a2": "A", "b1": "B", "b2": "B"}
    results = {"a1": [5.1, 0.0], "a2": [0.05, 0.0], "b1": [9.0, 9.0], "b2": [5.1, 0.1]}  # a1 now looks like B
    rec = SimpleNamespace(threshold=0.6, pairwise=lambda a, b: np.linalg.norm(a[:, None] - b[None], axis=-1))
    faces = [SimpleNamespace(identity=labels[k], embeddings={"x": np.array(v)},
                             result_embeddings={"c/r": {"x": np.array(results[k])}}) for k, v in emb.items()]
    ev = SimpleNamespace(faces=faces, pipe=SimpleNamespace(recognizers={"x": rec}))
    out = reidentification(ev, ["c/r"], {"x": 0.6})
    assert out["x"]["before"] == 1.0
    assert out["x"]["c/r"]["after"] == 0.5  # a2 and b2 still identified; a1 wrong person, b1 too far
    assert out["x"]["c/r"]["relative_reduction"] == 0.5
