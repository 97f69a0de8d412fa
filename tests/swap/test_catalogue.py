"""The built-in pool's mix catalogue (`mixes.npz`, shipped with the pool): read instead of composed, the same
recombined targets and order as a freshly composed catalogue, never used for another pool or recipe supply, and a
recognizer it lacks embedded (and cached) at first use. Real data: the built-in pool, openpeople's group photo."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mfmc.pool import TargetPool
from mfmc.swap import recombine
from mfmc.swap.ranking import CATALOGUE_FILE, MIX_CATALOGUE, MixCatalogue, write_catalogue
from mfmc.swap.recombine import LEGACY, Recombiner
from mfmc.vision import FacePipeline, cache
from tests.swap.conftest import VERIFIERS, Group

GENDERS = ("female", "male")


@pytest.fixture
def compositions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The recombinations composed (`Recombiner._compose`) while the test runs."""
    made: list[str] = []
    compose = Recombiner._compose

    def counted(self: Recombiner, target: recombine.Target) -> tuple[np.ndarray, np.ndarray]:
        made.append(target.id)
        return compose(self, target)

    monkeypatch.setattr(Recombiner, "_compose", counted)
    return made


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setattr(cache, "_state", {"dir": folder})
    return folder


def copy_pool(tmp_path: Path, *, catalogue: bool) -> Path:
    """The built-in pool's folder, copied (with or without its catalogue)."""
    out = tmp_path / "pool"
    shutil.copytree(TargetPool.default().index.root, out,
                    ignore=None if catalogue else shutil.ignore_patterns(CATALOGUE_FILE))
    return out


def test_the_built_in_pool_s_catalogue_composes_nothing(
    pipeline: FacePipeline, compositions: list[str], cache_dir: Path
) -> None:
    """With an empty cache folder, both genders' catalogues (with every recognizer of the pipeline) come from the
    pool's own file: nothing composed, embedded or written to the mix cache."""
    pool = TargetPool.default()
    assert (Path(pool.index.root) / CATALOGUE_FILE).is_file()
    names = sorted(pipeline.recognizers)
    catalogue = MixCatalogue(pipeline, Recombiner(pool), names)
    for gender in GENDERS:
        mixes = catalogue.mixes(gender)
        assert len(mixes) == MIX_CATALOGUE
        assert all(set(m.embeddings) == set(names) and m.landmarks.shape == (68, 2) for m in mixes)
        assert len({m.target.id for m in mixes}) == len(mixes)
        assert all(pool.entry(m.target.parts[0]).gender == gender for m in mixes)
    assert compositions == [] and catalogue.built == 0 and catalogue.embedded == 0
    assert [f.name for f in cache_dir.iterdir() if f.name.startswith("mix")] == []  # (models convert there)


def test_the_shipped_catalogue_ranks_like_a_freshly_composed_one(
    pipeline: FacePipeline, group: Group, tmp_path: Path, compositions: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same pool without its catalogue file, composed from scratch (cache off): the same recipes, the same 68
    points and embeddings (to float precision) and, for each face of a real group photo, the same targets in the
    same order."""
    from mfmc.swap.generate import FakeGenerator
    from mfmc.swap.verify import Avoid

    monkeypatch.setattr(cache, "_state", {"dir": None})
    shipped = FakeGenerator(pipeline, TargetPool.default(), recognizers=VERIFIERS)
    fresh = FakeGenerator(pipeline, TargetPool.load(copy_pool(tmp_path, catalogue=False)), recognizers=VERIFIERS)

    def orders(gen: FakeGenerator) -> list[list[str]]:
        out = []
        for i in range(len(group.faces)):
            face = group.faces[i]
            ranked = gen.ranker.plain(face, 7, Avoid())
            out.append([t.id for t in ranked.promising + gen.ranker.rest(face, 7, Avoid(), ranked)[0]])
        return out

    before = orders(shipped)
    assert compositions == [] and shipped.ranker.catalogue.built == 0
    assert orders(fresh) == before
    assert any(t.startswith("mix:") for o in before for t in o)
    assert fresh.ranker.catalogue.built > 0 and len(compositions) == fresh.ranker.catalogue.built
    for gender in GENDERS:
        a, b = shipped.ranker.catalogue.mixes(gender), fresh.ranker.catalogue.mixes(gender)
        assert [m.target for m in a] == [m.target for m in b]
        for x, y in zip(a, b, strict=True):
            assert np.allclose(x.landmarks, y.landmarks, atol=1e-3)
            for name in VERIFIERS:
                assert np.allclose(x.embeddings[name], y.embeddings[name], atol=1e-4), name


def test_another_pool_or_recipe_supply_never_uses_the_catalogue(
    pipeline: FacePipeline, tmp_path: Path, compositions: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy of the built-in pool reads its catalogue; once its index (or its attributes) changed, or with another
    recipe supply, the file is not used and the catalogue is composed."""
    monkeypatch.setattr(cache, "_state", {"dir": None})
    root = copy_pool(tmp_path, catalogue=True)
    same = MixCatalogue(pipeline, Recombiner(TargetPool.load(root)), VERIFIERS)
    assert same.shipped("female") is not None
    assert MixCatalogue(pipeline, Recombiner(TargetPool.load(root), supply=LEGACY), VERIFIERS).shipped("female") is None
    index = root / "index.json"
    original = index.read_bytes()
    index.write_bytes(original.replace(b'"name": "default"', b'"name": "default-2"', 1))
    assert index.read_bytes() != original
    other = MixCatalogue(pipeline, Recombiner(TargetPool.load(root)), VERIFIERS)
    assert other.shipped("female") is None and other.shipped("male") is None
    assert len(other.mixes("male")) > 0 and other.built == len(other.mixes("male")) == len(compositions)
    index.write_bytes(original)
    attributes = root / "attributes.npz"
    with np.load(attributes) as z:
        data = {k: z[k] for k in z.files}
    data["quality"] = np.asarray(data["quality"]).copy()
    data["quality"][0] = data["quality"][0] * 0.5
    np.savez_compressed(attributes, **data)
    assert MixCatalogue(pipeline, Recombiner(TargetPool.load(root)), VERIFIERS).shipped("female") is None


def test_a_recognizer_the_catalogue_lacks_is_embedded_once(
    pipeline: FacePipeline, tmp_path: Path, cache_dir: Path, compositions: list[str]
) -> None:
    """A pool catalogue written with dlib only (deterministic: the same bytes twice): a catalogue verifying with
    dlib and FaceNet takes its recipes, points and dlib embeddings and embeds only FaceNet (no recipe drawn), then
    caches it; the next process reads everything (nothing embedded)."""
    root = copy_pool(tmp_path, catalogue=False)
    pool = TargetPool.load(root)
    cache.set_cache_dir(None)
    writer = MixCatalogue(pipeline, Recombiner(pool), ["dlib"])
    path = write_catalogue(writer, ["female"])
    first = path.read_bytes()
    assert write_catalogue(writer, ["female"]).read_bytes() == first
    cache.set_cache_dir(cache_dir)
    made = len(compositions)
    both = MixCatalogue(pipeline, Recombiner(TargetPool.load(root)), VERIFIERS)
    mixes = both.mixes("female")
    assert both.built == 0 and both.embedded == len(mixes) == MIX_CATALOGUE
    assert len(compositions) - made == len(mixes)  # composed once each, to embed FaceNet
    again = MixCatalogue(pipeline, Recombiner(TargetPool.load(root)), VERIFIERS)
    reread = again.mixes("female")
    assert again.built == 0 and again.embedded == 0 and len(compositions) - made == len(mixes)
    for x, y in zip(mixes, reread, strict=True):
        assert x.target == y.target
        assert all(np.array_equal(x.embeddings[n], y.embeddings[n]) for n in VERIFIERS)
    assert both.shipped("male") is None  # the file holds the women's catalogue only
