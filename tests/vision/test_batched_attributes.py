"""The batched attribute checks a verifier runs on candidate fakes: the gender network alone over the faces of
several images (`AgeGender.gender_many`) and the expression classifier over several images
(`ExpressionClassifier.probabilities_many`) give the per-image values, on real photos."""

from __future__ import annotations

import numpy as np
import pytest

from mfmc.vision import FacePipeline, Faces
from mfmc.vision.attributes import AgeGender, genders_of
from mfmc.vision.expression import ExpressionClassifier, expression_missing, probabilities_of
from tests.vision.helpers import photo


@pytest.fixture(scope="module")
def items(pipeline: FacePipeline) -> list[tuple[np.ndarray, Faces]]:
    """Real photos and their analysed faces: three portraits, a selfie and a 16-face expression sheet, plus the
    astronaut when scikit-image is installed; one photo without faces."""
    photos = [photo("P001", "studio_portrait", 640), photo("P004", "studio_portrait", 640),
              photo("P007", "amateur_selfie", 640), photo("P002", "emotions_sheet", 1024)]
    try:
        from skimage import data

        photos.append(np.ascontiguousarray(data.astronaut()))
    except ImportError:
        pass
    out = [(image, pipeline.analyze(image, recognizers=())) for image in photos]
    empty = out[0][1][np.zeros(len(out[0][1]), bool)]
    return [*out[:2], (out[0][0], empty), *out[2:]]


@pytest.mark.slow
def test_gender_many_reads_every_face_as_estimate_does(pipeline: FacePipeline,
                                                       items: list[tuple[np.ndarray, Faces]]) -> None:
    model = pipeline.attributes
    assert isinstance(model, AgeGender)
    labels, female = model.gender_many(items)
    one = [model.estimate(image, faces) for image, faces in items]
    assert len(labels) == sum(len(f) for _, f in items) >= 20
    assert labels.tolist() == [str(g) for _, genders, _ in one for g in genders]
    assert np.allclose(female, np.concatenate([f for _, _, f in one]), atol=1e-5)
    assert {"female", "male"} <= set(labels.tolist())  # both genders among the faces compared
    # the generic path (any estimator) gives the same rows
    assert genders_of(model, items)[0].tolist() == labels.tolist()
    assert model.gender_many([])[0].shape == (0,)


@pytest.mark.slow
@pytest.mark.skipif(expression_missing() is not None, reason=str(expression_missing()))
def test_probabilities_many_classify_every_face_as_probabilities_does(
        pipeline: FacePipeline, items: list[tuple[np.ndarray, Faces]]) -> None:
    model = pipeline.expressions
    assert isinstance(model, ExpressionClassifier)
    together = model.probabilities_many(items)
    alone = np.concatenate([model.probabilities(image, faces) for image, faces in items])
    assert together.shape == alone.shape == (sum(len(f) for _, f in items), 7)
    assert np.array_equal(together.argmax(axis=1), alone.argmax(axis=1))
    assert np.allclose(together, alone, atol=1e-5)
    assert len(set(together.argmax(axis=1).tolist())) >= 3  # the sheet's faces show several classes
    assert np.array_equal(probabilities_of(model, items), together)
