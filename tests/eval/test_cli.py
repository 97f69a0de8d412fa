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
    # every recognizer both the evaluation and the pool store (the built-in pool: dlib, FaceNet, openface)
    from mfmc.pool import TargetPool

    pool = TargetPool.load(pool_arg[1]) if pool_arg else TargetPool.default()
    evaluated = set(report["table1"]["holdout"]) - {"average"}
    assert set(q["frechet"]) == evaluated & set(pool.recognizers) >= {"dlib", "facenet"}
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


@pytest.mark.slow
def test_eval_reports_kept_figures_and_leave_one_out_transfer(photos: Path, pool_arg: list[str], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    """`kept` and `loo` (issue 11) come from mfmc.eval.photos on the same photos; a verifying recognizer never
    matches a swapped fake to its source, and the one left out counts at most the faces that were swapped."""
    from mfmc.vision import FacePipeline

    out = tmp_path / "report"
    code = main(["eval", str(photos), "--out", str(out), "--limit", "2", "--modes", "kept,loo", "--max-side", "640",
                 "--no-plots", *pool_arg])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["meta"]["configs"] == []  # kept and loo are figures, not anonymization configurations
    kept = report["kept"]
    assert kept["photos"] == 2 and kept["faces"] == report["meta"]["faces"] >= 2
    assert sum(kept["fallbacks"].values()) == kept["faces"]
    assert kept["changed_outside"] == 0
    for key in ("swapped", "detected", "gender_kept", "expression_kept"):
        assert kept[key] is None or 0.0 <= kept[key] <= 1.0
    # the generator of `kept` verifies with every recognizer: none matches a swapped fake to its source
    assert kept["source_matches"] == 0
    recognizers = list(FacePipeline.default().recognizers)
    loo = report["leave_one_out"]
    assert list(loo) == recognizers
    for row in loo.values():
        assert row["verifiers"] == len(recognizers) - 1
        assert 0 <= row["reidentified"] <= row["swapped"] <= kept["faces"]
    md = (out / "report.md").read_text()
    assert "## Kept: the shipped generator" in md and "## Leave-one-out transfer" in md
    printed = capsys.readouterr().out
    assert "gender kept" in printed and "leave-one-out, re-identified by the recognizer left out" in printed


def test_eval_rejects_unknown_mode(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", str(tmp_path), "--modes", "kept,everything"]) == 2
    assert "unknown mode `everything`" in capsys.readouterr().err
