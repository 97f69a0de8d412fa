"""What verifying a candidate measured on its pixels (`verify.Measured`) and what making a photo's faces computed
(`generate._Memo`) are reused, never recomputed, and change no verdict, patch or report (issue 17). Real
candidates of the swap tests' group photo (openpeople people, nothing committed) with the embedded models."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import mfmc.vision.attributes as attributes_module
import mfmc.vision.expression as expression_module
import mfmc.vision.landmarks as landmarks_module
from mfmc.pool import TargetPool
from mfmc.swap import FakeGenerator, assign
from mfmc.swap.patch import FacePatch
from mfmc.swap.report import FaceReport
from mfmc.swap.verify import Avoid, Measured, Verdict, Verifier
from mfmc.vision import FacePipeline
from tests.swap.conftest import Group
from tests.swap.test_verify import _swapped


def _same(a: Verdict, b: Verdict) -> None:
    """Every field of two verdicts equal (arrays bit for bit), but the time spent."""
    for f in dataclasses.fields(Verdict):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "ms":
            continue
        if f.name == "embeddings":
            assert x.keys() == y.keys() and all(np.array_equal(x[n], y[n]) for n in x), f.name
        elif isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert x is not None and y is not None and np.array_equal(x, y), f.name
        else:
            assert x == y, (f.name, x, y)


def _counting(monkeypatch: pytest.MonkeyPatch, pipeline: FacePipeline) -> dict[str, int]:
    """Rows each network of the verifier is given from now on, by name."""
    rows: dict[str, int] = {}

    def count(name: str, f):  # type: ignore[no-untyped-def]
        def run(*args, **kwargs):  # type: ignore[no-untyped-def]
            items = args[-1]
            rows[name] = rows.get(name, 0) + len(items)
            return f(*args, **kwargs)
        return run

    for n, rec in pipeline.recognizers.items():
        monkeypatch.setattr(rec, "embed_many", count(n, rec.embed_many))
    monkeypatch.setattr(landmarks_module, "landmarks_of", count("landmarks", landmarks_module.landmarks_of))
    monkeypatch.setattr(attributes_module, "genders_of", count("gender", attributes_module.genders_of))
    monkeypatch.setattr(expression_module, "probabilities_of", count("expression", expression_module.probabilities_of))
    return rows


def _same_making(a: list[tuple[FacePatch, FaceReport]], b: list[tuple[FacePatch, FaceReport]]) -> None:
    """Two makings of a photo with the same patches (box, pixels, mask) and reports, timings aside."""
    assert len(a) == len(b)
    for (p, r), (q, s) in zip(a, b, strict=True):
        assert p.box == q.box and np.array_equal(p.pixels, q.pixels) and np.array_equal(p.mask, q.mask)
        assert {**r.to_dict(), "timings_ms": {}} == {**s.to_dict(), "timings_ms": {}}


def _counting_swaps(monkeypatch: pytest.MonkeyPatch, gen: FakeGenerator) -> dict[str, int]:
    """Swaps the generator's swappers make from now on (`["n"]`)."""
    swaps = {"n": 0}

    def counted(swap):  # type: ignore[no-untyped-def]
        def run(*args, **kwargs):  # type: ignore[no-untyped-def]
            swaps["n"] += 1
            return swap(*args, **kwargs)
        return run

    for swapper in {id(s): s for s in (gen.swapper, gen.escalate, gen.expression_swapper)}.values():
        monkeypatch.setattr(swapper, "swap", counted(swapper.swap))
    return swaps


def test_what_was_measured_on_a_candidate_is_read_not_computed_and_gives_a_fresh_verdict(
    pipeline: FacePipeline, pool: TargetPool, group: Group, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = FakeGenerator(pipeline, pool)
    verifier = Verifier(pipeline)
    image, faces = group.image, group.faces
    measured_rows = judged_again = 0
    for i in range(len(faces)):
        face = faces[i]
        results = _swapped(gen, pool, image, faces, i, k=5)
        source = verifier.source_embeddings(image, face)
        # against the photo's other faces, then against nothing (what a face made again in its photo may meet)
        rules = [gen.photo_avoid(faces, i), Avoid()]
        measures = [Measured() for _ in results]
        first = verifier.verify_many(results, face, source, rules[0], measured=measures)
        for got, want in zip(first, verifier.verify_many(results, face, source, rules[0]), strict=True):
            _same(got, want)
        kept = {n: sum(n in m.embeddings for m in measures) for n in verifier.names}
        measured_rows += sum(kept.values())
        for avoid in rules:
            fresh = verifier.verify_many(results, face, source, avoid)
            with monkeypatch.context() as m:
                rows = _counting(m, pipeline)
                again = verifier.verify_many(results, face, source, avoid, measured=measures)
            for got, want in zip(again, fresh, strict=True):
                _same(got, want)
            # nothing measured before is measured again: the expression, 68 points and gender never (the same
            # candidates reach them), a recognizer only for candidates it had not embedded
            assert not {"landmarks", "gender", "expression"} & set(rows), rows
            for n in verifier.names:
                need = sum(n in v.distances for v in fresh) - kept[n]
                assert rows.get(n, 0) == max(need, 0), (i, n, rows)
                kept[n] = sum(n in m.embeddings for m in measures)
            judged_again += sum(not v.rejected for v in again)
    assert measured_rows >= 4 and judged_again >= 4, (measured_rows, judged_again)


def test_a_face_made_again_in_its_photo_swaps_and_measures_nothing_again(
    pipeline: FacePipeline, pool: TargetPool, group: Group, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the finished photo's audit (stubbed) refuses face 0's fake once, and its making again (given the rules of
    # its first making) meets the same candidates: no swap, no network run again, the same fake and report
    image, faces = group.image, group.faces
    gen = FakeGenerator(pipeline, pool)
    swaps = _counting_swaps(monkeypatch, gen)
    audits = {"n": 0}
    real_audit = assign.audit

    def refusing_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        audits["n"] += 1
        bad, seen = real_audit(*args, **kwargs)
        return ({0: "stubbed: refused once"} if audits["n"] == 1 else bad), seen

    makings: list[tuple[FaceReport, int, dict[str, int]]] = []
    first_avoid: list[Avoid] = []
    real_fake_face = gen.fake_face

    def recorded(image, faces, index, *, seed=0, avoid=None):  # type: ignore[no-untyped-def]
        if index == 0:
            if first_avoid:
                avoid = first_avoid[0]  # the same rules as its first making
            else:
                first_avoid.append(avoid)
        before = swaps["n"]
        with monkeypatch.context() as m:
            rows = _counting(m, pipeline)
            patch, report = real_fake_face(image, faces, index, seed=seed, avoid=avoid)
        if index == 0:
            makings.append((report, swaps["n"] - before, rows))
        return patch, report

    monkeypatch.setattr(assign, "audit", refusing_once)
    monkeypatch.setattr(gen, "fake_face", recorded)
    gen.patches(image, faces, seed=7)
    assert len(makings) >= 2, "face 0 was not made again"
    (first, swapped_first, _), (again, swapped_again, rows) = makings[0], makings[1]
    assert swapped_first >= 1 and swapped_again == 0, (swapped_first, swapped_again)
    # no network on a candidate again (the expression fallback reads the source's own expression once)
    assert rows.get("expression", 0) <= 1 and not set(rows) - {"expression"}, rows
    assert [dataclasses.astuple(a) for a in again.attempts] == [dataclasses.astuple(a) for a in first.attempts]
    assert again.identity == first.identity and again.fallback == first.fallback

    # the photo made with and without the memo: the same patches and reports (timings aside)
    monkeypatch.undo()
    plain = FakeGenerator(pipeline, pool)
    monkeypatch.setattr(plain, "_memo_for", lambda image: None)  # no memo: every making computes everything
    _same_making(gen.patches(image, faces, seed=7), plain.patches(image, faces, seed=7))


def test_a_second_making_of_a_photo_within_photo_swaps_nothing_again(
    pipeline: FacePipeline, pool: TargetPool, group: Group, monkeypatch: pytest.MonkeyPatch
) -> None:
    # file mode makes a photo twice (a viewer's share, then all candidates): within `photo`, the second making
    # meets only candidates the first swapped and gives the same patches and reports; outside it, it swaps again
    image, faces = group.image, group.faces
    gen = FakeGenerator(pipeline, pool)
    swaps = _counting_swaps(monkeypatch, gen)
    with gen.photo(image):
        first = gen.patches(image, faces, seed=7)
        made = swaps["n"]
        again = gen.patches(image, faces, seed=7)
    assert made > 0 and swaps["n"] == made, (made, swaps["n"])
    _same_making(first, again)
    gen.patches(image, faces, seed=7)  # a making of its own: a memo of its own
    assert swaps["n"] == 2 * made, (made, swaps["n"])
