"""`mfmc eval` end to end on a few openpeople photos (real models), and its input checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mfmc.cli.main import main
from mfmc.eval.dataset import discover, openpeople_set


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("openpeople")
    out = tmp_path_factory.mktemp("photos")
    openpeople_set(out, people=3, max_side=640)
    return out


@pytest.fixture(scope="module")
def pool_arg(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The built-in pool when installed, else a small pool built here from openpeople portraits."""
    from mfmc.pool import PoolError, TargetPool

    try:
        TargetPool.default()
        return []
    except PoolError:
        pass
    from PIL import Image

    from mfmc.eval.dataset import openpeople_root
    from mfmc.pool.build import build_pool

    stage = tmp_path_factory.mktemp("stage")
    for person in sorted(openpeople_root().iterdir())[3:]:  # not the evaluated people
        for asset in ("studio_portrait", "amateur_selfie"):
            with Image.open(person / "assets" / f"{asset}.jpg") as im:
                im = im.convert("RGB")
                im.thumbnail((512, 512))
                im.save(stage / f"{person.name}-{asset}.jpg")
    target = tmp_path_factory.mktemp("pool")
    build_pool(stage, target, name="test", progress=False)
    return ["--pool", str(target)]


def test_discover_labels_sub_folders_round_robin(photos: Path) -> None:
    found = discover(photos)
    assert [p.identity for p in found[:3]] == ["P001", "P002", "P003"]
    assert len(found) == 9 and all(p.identity for p in found)
    assert len(discover(photos, limit=4)) == 4


@pytest.mark.slow
def test_eval_writes_a_complete_report(photos: Path, pool_arg: list[str], tmp_path: Path) -> None:
    out = tmp_path / "report"
    code = main(["eval", str(photos), "--out", str(out), "--limit", "2", "--modes", "single,holdout",
                 "--max-side", "640", *pool_arg])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert {"meta", "calibration", "table1", "reidentification", "quality", "pool", "similarity_metrics",
            "timings", "faces", "headline"} <= set(report)
    assert report["meta"]["faces"] >= 2
    assert report["meta"]["configs"] == ["single/furthest", "single/random", "holdout/furthest", "holdout/random"]
    for mode in ("single", "holdout"):
        for rec in ("dlib", "facenet", "average"):
            cell = report["table1"][mode][rec]
            for col in ("source_vs_target", "source_vs_result"):
                assert 0.0 <= cell[col]["random"] <= 1.0
    # dlib verifies in holdout mode: no face it still recognises leaves the generator
    assert report["table1"]["holdout"]["dlib"]["source_vs_result"]["random"] == 0.0
    q = report["quality"]["holdout/random"]
    assert q["changed_outside_masks"] == 0
    assert 0.0 <= q["detection_retention"] <= 1.0
    assert set(q["frechet"]) == {"dlib", "facenet"}
    assert report["pool"]["distance"]["dlib"]["histogram"]["counts"]
    assert report["similarity_metrics"][0]["metrics"]
    md = (out / "report.md").read_text()
    assert "paper Table 1" in md and "not** FID's Inception" in md
    for png in report["meta"].get("plots", []):
        assert (out / png).stat().st_size > 1000


def test_eval_rejects_unknown_strategy_and_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", str(tmp_path), "--strategy", "closest"]) == 2
    assert "unknown strategy `closest`" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["eval", str(tmp_path)]) == 2
    assert "no photos in" in capsys.readouterr().err
