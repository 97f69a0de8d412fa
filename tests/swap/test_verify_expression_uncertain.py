"""`Verifier.expression_uncertain`: a source whose expression class the classifier reads below
`EXPRESSION_CONFIDENCE` keeps its expression by construction, not by a class check. Real faces: an openpeople
expression sheet (16 faces, some read with a clear class, some between two)."""

from __future__ import annotations

import numpy as np
import pytest

from mfmc.swap.verify import EXPRESSION_CONFIDENCE, Verifier
from mfmc.vision import FacePipeline
from mfmc.vision.expression import CLASSES, expression_missing
from tests.vision.helpers import photo

pytestmark = pytest.mark.skipif(expression_missing() is not None,
                                reason=f"optional expression classifier: {expression_missing()}")


def test_uncertain_is_the_probability_of_the_class_read(pipeline: FacePipeline) -> None:
    image = photo("P001", "emotions_sheet", 1024)
    faces = pipeline.analyze(image, recognizers=())
    assert len(faces) == 16 and faces.expression is not None and pipeline.expressions is not None
    verifier = Verifier(pipeline, recognizers=())
    probs = pipeline.expressions.probabilities(image, faces)
    flags = [verifier.expression_uncertain(image, faces[i : i + 1]) for i in range(len(faces))]
    for p, label, flag in zip(probs, faces.expression, flags, strict=True):
        assert CLASSES[int(np.argmax(p))].value == label
        assert flag == (float(p.max()) < EXPRESSION_CONFIDENCE)
    # a sheet has both: faces read clearly (most) and faces between two classes
    assert 0 < sum(flags) < len(faces) // 2
    # the "Happy" cell (first row, second column) is read clearly
    happy = [i for i, b in enumerate(faces.boxes) if (b[0] + b[2]) / 2 < image.shape[1] / 2
             and (b[0] + b[2]) / 2 > image.shape[1] / 4 and (b[1] + b[3]) / 2 < image.shape[0] * 0.3]
    assert len(happy) == 1 and faces.expression[happy[0]] == "happy" and not flags[happy[0]]


def test_no_reading_is_never_uncertain(pipeline: FacePipeline) -> None:
    image = photo("P001", "emotions_sheet", 1024)
    faces = pipeline.analyze(image, recognizers=())
    verifier = Verifier(pipeline, recognizers=())
    unsure = next(i for i in range(len(faces)) if verifier.expression_uncertain(image, faces[i : i + 1]))
    assert not verifier.expression_uncertain(image, faces[unsure : unsure + 1].replace(expression=None))
