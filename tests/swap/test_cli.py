"""`mfmc anonymize` end to end on a generated group photo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mfmc.cli.main import main
from mfmc.vision import load_image, save_image
from tests.swap.conftest import Group

pytestmark = pytest.mark.slow


def test_anonymize_writes_photo_and_report(tmp_path: Path, group: Group, pool_dir: Path) -> None:
    src = tmp_path / "in" / "group.png"
    src.parent.mkdir()
    save_image(src, group.image[:350, :600])  # the top two people keep this test short
    out, report = tmp_path / "out.png", tmp_path / "report.json"
    code = main(["anonymize", str(src), "-o", str(out), "--report", str(report), "--seed", "3",
                 "--pool", str(pool_dir)])
    assert code == 0
    assert load_image(out).shape == (350, 600, 3)
    entries = json.loads(report.read_text())
    assert len(entries) == 2
    for e in entries:
        assert {"box", "target", "attempts", "distances", "timings_ms"} <= set(e)
        assert e["verified"] is True
        if e["verified_by"] == "construction":  # only the last resort is verified without recognizers
            assert e["fallback"] == "fill"
        else:  # every recognizer measured the fake far enough from the real face (same person iff < threshold)
            assert e["verified_by"] == "recognizers" and set(e["distances"]) == set(e["thresholds"]) != set()
            assert all(e["distances"][r] >= e["thresholds"][r] for r in e["thresholds"]), e
        # the default swapper is the generator's (split, alpha 0.5), not the whole-face warp (alpha 0.3): the CLI
        # had defaulted to `warp` while every figure was measured with `split`
        assert all(a["alpha"] == 0.5 for a in e["attempts"] if a["method"] == "swap"), e["attempts"]
        x1, y1, x2, y2 = (int(v) for v in e["box"])  # and the face in the written photo really changed
        assert (load_image(out)[y1:y2, x1:x2].astype(int) - group.image[y1:y2, x1:x2].astype(int)).any()


def test_unknown_swapper_is_invalid_input(tmp_path: Path, group: Group, pool_dir: Path) -> None:
    src = tmp_path / "g.png"
    save_image(src, group.image[:50, :50])
    code = main(["anonymize", str(src), "-o", str(tmp_path / "o.png"), "--swapper", "warpp", "--pool", str(pool_dir)])
    assert code == 2


def test_verifiers_choose_the_recognizers_and_the_summary_names_fallbacks(
    tmp_path: Path, group: Group, pool_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.png"
    save_image(src, group.image[:350, :600])
    report = tmp_path / "r.json"
    code = main(["anonymize", str(src), "-o", str(tmp_path / "o.png"), "--report", str(report), "--seed", "3",
                 "--pool", str(pool_dir), "--verifiers", "dlib"])
    assert code == 0
    entries = json.loads(report.read_text())
    for e in entries:
        assert set(e["thresholds"]) == {"dlib"}  # only the chosen recognizer verifies
    out = capsys.readouterr().out
    swapped = sum(e["fallback"] in ("none", "alpha") for e in entries)
    assert f"{len(entries)} faces anonymized, {swapped} swapped" in out
    for e in entries:
        if e["fallback"] not in ("none", "alpha"):
            assert f"face {e['index']}: {e['fallback']}: {e['reason']}" in out


def test_unknown_verifier_is_invalid_input(tmp_path: Path, group: Group, pool_dir: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "g.png"
    save_image(src, group.image[:50, :50])
    code = main(["anonymize", str(src), "-o", str(tmp_path / "o.png"), "--verifiers", "dlibb", "--pool", str(pool_dir)])
    assert code == 2
    assert "unknown verifier `dlibb`" in capsys.readouterr().err
