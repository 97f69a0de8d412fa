"""Session-wide fixtures shared by every test package: the embedded pipeline, and a small target pool built from
the openpeople emotion sheets of six people (mfmc.swap and client tests; no photo is committed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mfmc.pool import TargetPool
from mfmc.pool.build import build_pool
from mfmc.vision import FacePipeline, save_image
from tests.vision.helpers import photo

POOL_PEOPLE = ["P001", "P002", "P003", "P004", "P005", "P006"]


@pytest.fixture(scope="session")
def embedded_pipeline() -> FacePipeline:
    """The embedded models, loaded once per test session: the process-wide `FacePipeline.default()` (which the
    CLI, file mode and the platform's vision backend use in-process) when that is the embedded one, so that the
    models are not loaded again for each package or module; otherwise (an InsightFace pack installed on this
    machine) a separate embedded pipeline, since the tests are written for the embedded models."""
    default = FacePipeline.default()
    return default if default.backend == "embedded" else FacePipeline.embedded()


@pytest.fixture(scope="session")
def pipeline() -> FacePipeline:
    return FacePipeline.embedded()


def _tiles(pipeline: FacePipeline, person: str, per_person: int) -> list[np.ndarray]:
    """Crops around the first faces of a person's 4×4 emotion sheet (neutral, happy, sad …)."""
    sheet = photo(person, "emotions_sheet", 1600)
    faces = pipeline.detect(sheet)
    order = np.lexsort((faces.boxes[:, 0], np.round(faces.boxes[:, 1] / 100)))
    crops = []
    for i in order[:per_person]:
        x1, y1, x2, y2 = faces.boxes[i]
        m = 0.7 * (x2 - x1)
        h, w = sheet.shape[:2]
        crops.append(sheet[int(max(0, y1 - m)) : int(min(h, y2 + m)), int(max(0, x1 - m)) : int(min(w, x2 + m))])
    return crops


@pytest.fixture(scope="session")
def pool_dir(pipeline: FacePipeline, tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("pool-src")
    for person in POOL_PEOPLE:
        for j, crop in enumerate(_tiles(pipeline, person, 5)):
            save_image(src / f"{person}-{j}.png", np.ascontiguousarray(crop))
    out = tmp_path_factory.mktemp("pool")
    report = build_pool(src, out, name="swap-tests", pipeline=pipeline, progress=False)
    assert report.added >= 20, report.reasons()
    return out


@pytest.fixture(scope="session")
def pool(pool_dir: Path) -> TargetPool:
    return TargetPool.load(pool_dir)
