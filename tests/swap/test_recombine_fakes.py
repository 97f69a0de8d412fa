"""Distinct fakes (`mfmc.swap.recombine.fake_supply`) on scikit-image's astronaut: the pool's women and 12
recombinations swapped onto her, as the generator swaps. Measured (dlib + FaceNet): 3 of 25 fakes leave her at
alpha 0.5 and 2 of those are distinct; 7 and 3 with the escalation's full geometry. Many distinct *targets* make
few distinct *fakes*: the swap keeps the source's coarse look (docs/pool.md, *Distinct fakes*)."""

from __future__ import annotations

import pytest

from mfmc.swap.generate import FakeGenerator
from mfmc.swap.recombine import fake_supply
from mfmc.vision import FacePipeline
from tests.swap.conftest import VERIFIERS, Astronaut


@pytest.mark.slow
def test_fakes_of_one_face_collapse_to_few_identities(pipeline: FacePipeline, astronaut: Astronaut) -> None:
    gen = FakeGenerator(pipeline, astronaut.pool, recognizers=VERIFIERS)
    women = {astronaut.pool.identity(i) for i in astronaut.pool.ids if astronaut.pool.entry(i).gender == "female"}
    first = fake_supply(gen, astronaut.image, 12)
    full = fake_supply(gen, astronaut.image, 12, full=True)
    for rep, alpha in ((first, gen.alpha), (full, 1.0)):
        assert rep.gender == "female" and rep.alpha == alpha
        assert rep.targets == len(women) + 12
        assert 1 <= rep.distinct <= rep.leaving < rep.targets
        assert rep.distinct <= rep.targets // 4  # few identities among many targets
    assert full.leaving >= first.leaving  # full geometry moves her farther
