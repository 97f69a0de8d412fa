"""The platform with the real vision pipeline and verified swapper: the paper's Fig. 1 through `mfmc demo`.

Slow-ish (real models on CPU), so one scenario covers identification on the client, per-viewer decisions and
pixels: a face a viewer may see is pixel-identical to the group photo, every other face differs from it.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _needs_real_backend() -> None:
    """The built-in pool and `openpeople` are installed with mfmc: if either is missing or broken the test fails
    (it does not skip); only a pool that was deliberately not installed (`PoolError`) is a reason to skip."""
    from mfmc.pool import TargetPool
    from mfmc.pool.pool import PoolError, default_pool_path

    if not (default_pool_path() / "index.json").is_file():
        pytest.skip(f"the built-in target pool is not installed at {default_pool_path()}")
    try:
        TargetPool.default()
    except PoolError as err:
        pytest.fail(f"the built-in target pool is installed but cannot be loaded: {err.message}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    _needs_real_backend()
    from mfmc.service.demo import run_demo

    out = tmp_path_factory.mktemp("demo")
    data = tmp_path_factory.mktemp("demo-data") / "data"
    return run_demo(out, data_dir=data), out, data


def test_fig1_decisions(demo) -> None:
    result, _, _ = demo
    # A, B, C in the photo (enrolled); D (A's friend) and E (a stranger) enroll no face; B and C are not friends
    assert result.revealed["A"] == ["A", "B", "C"]
    assert result.revealed["B"] == ["A", "B"]
    assert result.revealed["C"] == ["A", "C"]
    assert result.revealed["D"] == ["A"]
    assert result.revealed["E"] == []
    assert result.sheet.exists() and len(result.views) == 5


def test_fig1_pixels_match_decisions_and_fakes_are_verified(demo) -> None:
    from mfmc.service import Platform
    from mfmc.service.demo import DEMO_PASSPHRASE, _people, group_photo

    result, _, data = demo
    original = group_photo(_people()).astype(int)
    with Platform(data, passphrase=lambda _n: DEMO_PASSPHRASE) as p:
        faces = p.faces(result.photo_id)
        for viewer in ["B", "C", "E"]:
            view = p.render(result.photo_id, viewer)
            for d, f in zip(view.decisions, faces, strict=True):
                x1, y1, x2, y2 = (int(v) for v in f.box)
                same = np.array_equal(view.image[y1:y2, x1:x2], original[y1:y2, x1:x2])
                assert same == d.reveal, (viewer, d)
        with p.store.read() as tx:
            fakes = tx.fakes(result.photo_id)
        assert fakes and all(f.verified for f in fakes)


def test_demo_people_are_reserved_and_never_in_the_pool() -> None:
    from mfmc.pool import TargetPool
    from mfmc.service.demo import DEMO_PEOPLE, RESERVED, _people

    assert set(DEMO_PEOPLE) <= set(RESERVED)
    demo_ids = {p.person_id for p in _people()}
    pool_ids = {person for rec in TargetPool.default().index.records
                for person in str(rec["source"].get("person", "")).split("+")}
    assert len(demo_ids) == len(DEMO_PEOPLE) and not demo_ids & pool_ids
