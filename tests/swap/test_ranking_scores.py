"""The ranker's shape residuals and predicted reaches kept per photo (`ranking.FaceScores`, the generator's
`_Memo`): a face ranked again reads them instead of computing them, and every ranking is the one computed afresh
(issue 17). Real faces: the swap tests' group photo (openpeople people, nothing committed) and the astronaut."""

from __future__ import annotations

import dataclasses

import pytest

from mfmc.pool import TargetPool
from mfmc.swap import FakeGenerator
from mfmc.swap.ranking import FaceScores, Ranked, Ranker
from mfmc.swap.verify import Avoid
from mfmc.vision import FacePipeline
from tests.swap.conftest import VERIFIERS, Astronaut, Group


def _counting(monkeypatch: pytest.MonkeyPatch, ranker: Ranker) -> dict[str, int]:
    """Residuals and reaches the ranker computes from now on."""
    calls = {"residual": 0, "promise": 0}
    for name in calls:
        f = getattr(ranker, name)

        def run(*args, _f=f, _name=name):  # type: ignore[no-untyped-def]
            calls[_name] += 1
            return _f(*args)
        monkeypatch.setattr(ranker, name, run)
    return calls


def _fields(r: Ranked) -> tuple[object, ...]:
    return dataclasses.astuple(r)


def test_a_face_ranked_again_reads_its_scores_and_ranks_as_afresh(
    pipeline: FacePipeline, pool: TargetPool, group: Group, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = FakeGenerator(pipeline, pool)
    faces = group.faces
    scores = FaceScores()
    calls = _counting(monkeypatch, gen.ranker)
    used = {gen.pool.identity(i) for i in gen.pool.ids[:3]}
    for i in range(len(faces)):  # every face of the photo into one `FaceScores`: none reads another's entries
        face = faces[i]
        for seed, avoid in ((7, Avoid()), (8, Avoid(targets=frozenset(used)))):
            fresh = gen.ranker.plain(face, seed, avoid)
            before = dict(calls)
            kept = gen.ranker.plain(face, seed, avoid, scores)
            assert _fields(kept) == _fields(fresh), (i, seed)
            first = dict(calls)
            again = gen.ranker.plain(face, seed, avoid, scores)
            assert _fields(again) == _fields(fresh), (i, seed)
            assert calls == first, (i, seed, calls, first)  # nothing computed again
            if seed == 7:
                assert first["residual"] > before["residual"] and first["promise"] > before["promise"], i
    assert len({k[0] for k in scores.residuals}) == len(faces)  # one set of 68 points a face


def test_the_generator_ranks_a_face_made_again_from_its_photos_scores(
    pipeline: FacePipeline, astronaut: Astronaut, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a face made twice within one `photo`: the second making's ranking computes no residual or reach
    face = pipeline.analyze(astronaut.image, recognizers=VERIFIERS)[0:1]
    gen = FakeGenerator(pipeline, astronaut.pool, recognizers=VERIFIERS)
    calls = _counting(monkeypatch, gen.ranker)
    with gen.photo(astronaut.image):
        first = gen.patches(astronaut.image, face, seed=3)
        made = dict(calls)
        again = gen.patches(astronaut.image, face, seed=3)
    assert made["residual"] > 0 and calls["residual"] == made["residual"], (made, calls)
    assert calls["promise"] == made["promise"], (made, calls)
    assert [r.identity for _, r in first] == [r.identity for _, r in again]
