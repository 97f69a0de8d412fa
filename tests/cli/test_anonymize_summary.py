"""`mfmc anonymize`'s summary says what a swapped face's fake did not keep: a changed expression (the
generator's expression fallback) and a gender that was not checked, with why; per photo and per folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mfmc.cli.anonymize import _folder_summary, _summary
from mfmc.cli.main import main
from mfmc.swap.report import FaceReport


def _reports() -> list[dict]:
    """Reports as the generator fills them: a plain swap, a swap that kept another expression, a swap of a
    gender-uncertain source, and a fill."""
    plain = FaceReport(index=0, box=(0, 0, 40, 40), target="p1", verified=True, gender_checked=True,
                       expression_checked=True)
    sad = FaceReport(index=1, box=(50, 0, 90, 40), target="p2", verified=True, gender_checked=True,
                     expression_checked=True, expression_changed="sad→neutral")
    unsure = FaceReport(index=2, box=(100, 0, 140, 40), target="p3", verified=True, expression_checked=True,
                        notes=["gender not checked: the source's gender is uncertain (p(female) 0.54, checked "
                               "from 0.80 either way)"])
    fill = FaceReport(index=3, box=(150, 0, 190, 40), fallback="fill", verified=True, verified_by="construction",
                      reason="none of 6 swapped targets passed verification")
    return [r.to_dict() for r in (plain, sad, unsure, fill)]


def test_the_photo_summary_names_changed_expressions_and_unchecked_genders(
        capsys: pytest.CaptureFixture[str]) -> None:
    _summary(Path("a.jpg"), _reports())
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("a.jpg: 4 faces anonymized, 3 swapped, fell back: 1 fill, 1 with a changed expression, "
                        "1 without a gender check")
    assert lines[1:] == [
        "  face 3: fill: none of 6 swapped targets passed verification",
        "  face 1: kept with expression sad→neutral (no candidate kept it)",
        "  face 2: gender not checked: the source's gender is uncertain (p(female) 0.54, checked from 0.80 "
        "either way)",
    ]
    _summary(Path("b.jpg"), _reports()[:1])  # nothing to say about a face that kept everything
    assert capsys.readouterr().out.splitlines() == ["b.jpg: 1 face anonymized, 1 swapped"]


def test_the_folder_summary_counts_them_per_change_and_reason(capsys: pytest.CaptureFixture[str]) -> None:
    every = _reports() + _reports()[1:3]
    _folder_summary(2, every, Path("out"))
    assert capsys.readouterr().out.splitlines() == [
        "2 photos, 6 faces anonymized into out, 5 swapped, 1 fell back, 2 with a changed expression, "
        "2 without a gender check",
        "  1 x fill (none of 6 swapped targets passed verification)",
        "  2 x expression changed sad→neutral (no candidate kept it)",
        "  2 x gender not checked (the source's gender is uncertain)",
    ]


@pytest.mark.slow
def test_anonymize_on_a_real_photo_counts_what_its_report_says(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The astronaut (a real photo), end to end, file and folder: the summary's counts are the report's."""
    data = pytest.importorskip("skimage.data")
    from mfmc.vision import save_image

    folder = tmp_path / "in"
    folder.mkdir()
    save_image(folder / "astronaut.png", np.ascontiguousarray(data.astronaut()))
    report = tmp_path / "r.json"
    assert main(["anonymize", str(folder / "astronaut.png"), "-o", str(tmp_path / "o.png"), "--report", str(report),
                 "--seed", "7"]) == 0
    entries = json.loads(report.read_text())
    out = capsys.readouterr().out
    changed = [e for e in entries if e["expression_changed"] is not None]
    unchecked = [e for e in entries if e["fallback"] in ("none", "alpha") and not e["checks"]["gender"]]
    assert len(entries) == 1 and entries[0]["checks"]["gender"] is (not unchecked)
    assert (f"{len(changed)} with a changed expression" in out) is bool(changed)
    assert ("without a gender check" in out) is bool(unchecked)
    for e in changed:
        assert f"face {e['index']}: kept with expression {e['expression_changed']} (no candidate kept it)" in out
    assert main(["anonymize", str(folder), "-o", str(tmp_path / "out"), "--seed", "7"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("1 photo, 1 face anonymized into")
    assert ("expression changed" in out) is bool(changed)
