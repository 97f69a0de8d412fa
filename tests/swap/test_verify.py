"""The verifier's cascade: recognizers run in a fixed cheap-first order, a candidate one rejects is never embedded
by the later ones, and a passing fake has still been checked by every recognizer (stub recognizers, no models;
real candidates with the embedded models: the same verdicts as without the cascade); batched attribute checks
on real fakes (the embedded models)."""

from __future__ import annotations

import numpy as np
import pytest

from mfmc.pool import TargetPool
from mfmc.swap import FakeGenerator
from mfmc.swap.recombine import Target
from mfmc.swap.verify import MEAN, UncertainGender, Verifier
from mfmc.vision import FacePipeline, Faces
from tests.swap.conftest import Group


class _Rec:
    """Distance to the source = the result's mean pixel value / 255 * scale; records the pixel means it embedded."""

    metric = "euclidean"

    def __init__(self, threshold: float, scale: float) -> None:
        self.threshold, self.scale, self.calls = threshold, scale, 0
        self.seen: list[float] = []

    def embed(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        return self.embed_many([(image, faces)])

    def embed_many(self, items: list[tuple[np.ndarray, Faces]]) -> np.ndarray:
        """One call for a batch of candidates, as a batching network does."""
        self.calls += 1
        self.seen += [float(image.mean()) for image, _ in items]
        return np.array([[image.mean() / 255.0 * self.scale] for image, _ in items], np.float32)

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.abs(np.asarray(a) - np.asarray(b)).sum(-1)


class _Pipe:
    landmarker = None
    attributes = None
    expressions = None

    def __init__(self) -> None:
        # the pipeline lists "facenet" (the costly one, rarely rejecting here) first; "dlib" rejects dark images
        self.recognizers = {"facenet": _Rec(0.3, 1.0), "dlib": _Rec(0.5, 1.0)}


_FACE = Faces(boxes=np.array([[0, 0, 8, 8]], np.float32), scores=np.ones(1, np.float32),
              landmarks5=np.zeros((1, 5, 2), np.float32))


def _swapped(gen: FakeGenerator, pool: TargetPool, image: np.ndarray, faces: Faces, i: int, k: int) -> list[np.ndarray]:
    """The photo with face `i` swapped by `gen`'s swapper for each of its first `k` same-gender pool targets."""
    out = []
    for cand in pool.query(faces[i], k=k, seed=0, same_group="gender"):
        t_img, t_lm = gen.recombiner.image(Target.plain(cand.id, pool.identity(cand.id)))
        out.append(gen.swapper.swap(image, faces.landmarks68[i], t_img, t_lm, alpha=gen.alpha).patch.apply(image))
    return out


def test_the_cascade_runs_cheap_first_and_never_embeds_a_rejected_candidate_again() -> None:
    pipe = _Pipe()
    verifier = Verifier(pipe, margin=0.0)
    assert verifier.order() == ["dlib", "facenet"] == verifier.names  # CASCADE's order, not the pipeline's
    assert Verifier(pipe, recognizers=["facenet", "dlib"]).order() == ["dlib", "facenet"]
    source = {"facenet": np.zeros(1, np.float32), "dlib": np.zeros(1, np.float32)}
    dark = np.full((8, 8, 3), 100, np.uint8)  # distance 0.39: passes "facenet" (0.3), fails "dlib" (0.5)
    bright = np.full((8, 8, 3), 200, np.uint8)  # 0.78: passes both
    timings: dict[str, float] = {}
    verdicts = verifier.verify_many([dark, bright, dark], _FACE, source, timings=timings)
    assert [v.passed for v in verdicts] == [False, True, False]
    assert [v.failed for v in verdicts] == ["dlib", None, "dlib"]
    # the rejected candidates were embedded by dlib only: facenet saw the bright one alone, in one call
    assert pipe.recognizers["dlib"].seen == [100.0, 200.0, 100.0]
    assert pipe.recognizers["facenet"].seen == [200.0] and pipe.recognizers["facenet"].calls == 1
    # what a verdict holds is what was measured: no distance for a recognizer that did not run, named as skipped
    assert list(verdicts[0].distances) == ["dlib"] and verdicts[0].skipped == ("facenet",)
    assert set(verdicts[1].distances) == {"dlib", "facenet"} and verdicts[1].skipped == ()
    assert {"verify:landmarks", "verify:dlib", "verify:facenet"} <= set(timings)
    # without the cascade every recognizer embeds every candidate: the same verdicts
    full = Verifier(_Pipe(), margin=0.0, early_exit=False).verify_many([dark, bright, dark], _FACE, source)
    assert [(v.passed, v.failed) for v in full] == [(v.passed, v.failed) for v in verdicts]
    assert all(set(v.distances) == {"dlib", "facenet"} for v in full)


def test_the_mean_bar_rejects_a_fake_that_clears_every_bar_only_barely() -> None:
    """`mean_ratio`: after every recognizer's bar, the mean of distance / threshold must exceed the ratio; a fake
    one recognizer rejects keeps that recognizer as the reason, and the ratio 0 changes nothing."""
    source = {"facenet": np.zeros(1, np.float32), "dlib": np.zeros(1, np.float32)}
    # distances 200/255 = 0.784 on both: 0.784/0.3 = 2.61 (facenet), 0.784/0.5 = 1.57 (dlib), mean 2.09
    bright = np.full((8, 8, 3), 200, np.uint8)
    dark = np.full((8, 8, 3), 100, np.uint8)  # 0.39: fails dlib's bar (0.5)
    off = Verifier(_Pipe(), margin=0.0).verify_many([bright, dark], _FACE, source)
    assert [v.passed for v in off] == [True, False]
    strict = Verifier(_Pipe(), margin=0.0, mean_ratio=2.2)
    assert strict.normalized(off[0].distances) == pytest.approx((0.784 / 0.3 + 0.784 / 0.5) / 2, abs=1e-3)
    verdicts = strict.verify_many([bright, dark], _FACE, source)
    assert [v.passed for v in verdicts] == [False, False]
    assert verdicts[0].failed == MEAN and verdicts[1].failed == "dlib"
    assert set(verdicts[0].distances) == {"dlib", "facenet"}  # measured by every recognizer before the mean
    assert Verifier(_Pipe(), margin=0.0, mean_ratio=2.0).verify(bright, _FACE, source).passed


def test_the_cascade_order_does_not_follow_timings() -> None:
    """The order is fixed: the same whatever the recognizers cost or rejected before (a run's choices must not
    depend on the machine's load)."""
    pipe = _Pipe()
    verifier = Verifier(pipe, margin=0.0)
    source = {"facenet": np.zeros(1, np.float32), "dlib": np.zeros(1, np.float32)}
    for value in (100, 60, 200, 30):
        verifier.verify(np.full((8, 8, 3), value, np.uint8), _FACE, source)
        assert verifier.order() == ["dlib", "facenet"]


@pytest.mark.slow
def test_cascaded_verdicts_equal_the_full_ones_on_real_candidates(
        pipeline: FacePipeline, pool: TargetPool, group: Group) -> None:
    """Real candidate fakes of every face of the group photo, judged by every recognizer the pipeline has, against
    the source and the photo's other faces: the cascade passes and fails exactly the candidates that running every
    recognizer on every candidate does (and names the same first failing recognizer); its distances are those
    measured in full; a recognizer after the one that rejected a candidate never embedded it. Judged again with
    the 68 points already predicted on the same pixels, the verdicts are the same."""

    gen = FakeGenerator(pipeline, pool)
    names = gen.verifier.names
    assert len(names) >= 2
    image, faces = group.image, group.faces
    rows = {n: 0 for n in names}
    originals = {n: pipeline.recognizers[n].embed_many for n in names}

    def spy(name: str):
        def embed_many(items):
            rows[name] += len(items)
            return originals[name](items)
        return embed_many

    cascade = Verifier(pipeline, recognizers=names)
    full = Verifier(pipeline, recognizers=names, early_exit=False)
    judged = skipped = passed = 0
    for i in range(len(faces)):
        face = faces[i]
        results = _swapped(gen, pool, image, faces, i, k=5)
        source = cascade.source_embeddings(image, face)
        avoid = gen.photo_avoid(faces, i)
        want = full.verify_many(results, face, source, avoid)
        for n in names:
            pipeline.recognizers[n].embed_many = spy(n)  # type: ignore[method-assign]
        try:
            before = dict(rows)
            got = cascade.verify_many(results, face, source, avoid)
        finally:
            for n in names:
                pipeline.recognizers[n].embed_many = originals[n]  # type: ignore[method-assign]
        assert [(v.passed, v.failed, v.rejected) for v in got] == [(v.passed, v.failed, v.rejected) for v in want]
        for g, w in zip(got, want, strict=True):
            assert set(g.distances) | set(g.skipped) == set(names) if not g.rejected else not g.distances
            for n, d in g.distances.items():
                assert abs(d - w.distances[n]) < 1e-5, (i, n)
            if g.failed is not None:  # nothing after the rejecting recognizer was measured
                assert set(g.skipped) == set(names[names.index(g.failed) + 1 :])
        # each recognizer embedded exactly the candidates every earlier one passed
        for k, n in enumerate(names):
            alive = [g for g in got if not g.rejected and all(g.failed != m for m in names[:k])]
            assert rows[n] - before[n] == len(alive), (i, n)
        # judged again with the 68 points of the first verification (the expression fallback does): the same
        # verdicts, and the landmark predictor not run
        import mfmc.vision.landmarks as landmarks_module

        predict = landmarks_module.landmarks_of
        landmarks_module.landmarks_of = None  # type: ignore[assignment]  # would raise if called
        try:
            again = cascade.verify_many(results, face, source, avoid, landmarks=[g.landmarks68 for g in got])
        finally:
            landmarks_module.landmarks_of = predict
        assert [(v.passed, v.failed, v.rejected, v.distances) for v in again] == \
               [(v.passed, v.failed, v.rejected, v.distances) for v in got]
        judged += sum(not g.rejected for g in got)
        skipped += sum(len(g.skipped) for g in got if not g.rejected)
        passed += sum(g.passed for g in got)
    # measured: 20 candidates, 6 judged by the recognizers (the rest rejected on expression or gender), 1 passed,
    # 14 recognizer runs skipped by the cascade
    assert judged >= 4 and skipped >= 6, (judged, skipped, passed)


class _Gender:
    """Reads "female" when the result's mean pixel value is ≥ 128 (probability 0.9, or 0.55 from 220 up),
    else "male" (0.1)."""

    def estimate(self, image: np.ndarray, faces: Faces) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        female = (0.55 if image.mean() >= 220 else 0.9) if image.mean() >= 128 else 0.1
        return (np.full(len(faces), 30.0, np.float32), np.array(["female" if female > 0.5 else "male"] * len(faces)),
                np.full(len(faces), female, np.float32))


class _Expression:
    """FER2013 order (angry, disgust, fear, happy, sad, surprise, neutral): "happy" when the result's top-left
    pixel is 255, else "neutral"."""

    def probabilities(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        p = np.full((len(faces), 7), 0.01, np.float32)
        p[:, 3 if image[0, 0, 0] == 255 else 6] = 0.94
        return p


class _AttrPipe(_Pipe):
    def __init__(self) -> None:
        super().__init__()
        self.attributes = _Gender()
        self.expressions = _Expression()


def _source(female: float, expression: str = "happy") -> Faces:
    return Faces(boxes=np.array([[0, 0, 8, 8]], np.float32), scores=np.ones(1, np.float32),
                 landmarks5=np.zeros((1, 5, 2), np.float32), gender=["female" if female > 0.5 else "male"],
                 gender_score=np.array([female], np.float32), expression=[expression])


def _image(value: int, happy: bool) -> np.ndarray:
    image = np.full((8, 8, 3), value, np.uint8)
    image[0, 0] = 255 if happy else 0
    return image


SOURCE = {"facenet": np.zeros(1, np.float32), "dlib": np.zeros(1, np.float32)}


def test_a_fake_that_reads_as_the_other_gender_is_rejected_before_any_recognizer() -> None:
    pipe = _AttrPipe()
    verifier = Verifier(pipe, margin=0.0)
    dark = _image(100, happy=True)  # reads male; far enough from the source for "facenet" (0.39 > 0.3)
    calls = {n: r.calls for n, r in pipe.recognizers.items()}
    verdict = verifier.verify(dark, _source(0.97), {"facenet": SOURCE["facenet"], "dlib": np.full(1, -1.0, np.float32)})
    assert not verdict.passed and verdict.rejected == "reads male" and verdict.gender_checked
    assert verdict.distances == {} and {n: r.calls for n, r in pipe.recognizers.items()} == calls
    bright = _image(200, happy=True)  # reads female: passes
    assert verifier.verify(bright, _source(0.97), SOURCE).passed
    barely = verifier.verify(_image(230, happy=True), _source(0.97), SOURCE)  # female, but only at 0.55
    assert not barely.passed and barely.rejected == "reads female only at 0.55" and barely.distances == {}
    assert Verifier(_AttrPipe(), margin=0.0, result_gender=0.5).verify(_image(230, happy=True), _source(0.97),
                                                                       SOURCE).passed


def test_a_gender_uncertain_source_gets_a_fake_read_uncertain_on_its_side() -> None:
    """The source reads female at 0.62 (uncertain): by default (`lean`) a fake must read female; `uncertain`
    (issue 11's wording) female below 0.8; `unchecked` (the behaviour before) does not look."""
    far = {"facenet": SOURCE["facenet"], "dlib": np.full(1, -1.0, np.float32)}
    uncertain = _source(0.62)
    verifier = Verifier(_AttrPipe(), margin=0.0, uncertain="uncertain")
    assert verifier.gender_to_keep(uncertain) is None and verifier.gender_to_keep(_source(0.05)) == "male"
    assert verifier.gender_uncertain(uncertain) == pytest.approx(0.62)
    assert verifier.gender_uncertain(_source(0.9)) is None
    assert verifier.checks_gender(uncertain) and verifier.checks_gender(_source(0.97))
    male = verifier.verify(_image(100, happy=True), uncertain, far)  # reads male at 0.90
    assert not male.passed and male.rejected == "reads male: the source leans female" and male.distances == {}
    sure = verifier.verify(_image(200, happy=True), uncertain, far)  # reads female at 0.90
    assert not sure.passed and sure.rejected == "reads female at 0.90: the source's gender is uncertain"
    unsure = verifier.verify(_image(230, happy=True), uncertain, far)  # reads female at 0.55
    assert unsure.passed and unsure.gender_checked and unsure.gender == "female"
    lean = Verifier(_AttrPipe(), margin=0.0)  # the default
    assert lean.verify(_image(200, happy=True), uncertain, far).passed
    assert lean.verify(_image(100, happy=True), uncertain, far).rejected == "reads male: the source leans female"
    off = Verifier(_AttrPipe(), margin=0.0, uncertain=UncertainGender.UNCHECKED)
    verdict = off.verify(_image(100, happy=True), uncertain, far)
    assert verdict.passed and not verdict.gender_checked and verdict.gender is None and not off.checks_gender(uncertain)


@pytest.mark.slow
def test_real_fakes_of_a_real_gender_uncertain_face(pipeline: FacePipeline) -> None:
    """A real face the classifier is unsure of (openpeople P006's studio portrait at 600 px: p(female) 0.57; a
    demo person, never in the pool) swapped with every fourth face of the built-in pool (women and men): a fake the
    classifier reads female at 0.8 or more is accepted by default (`lean`) and rejected under `uncertain`; one
    reading male by both."""
    from mfmc.swap import create_swapper
    from mfmc.swap.recombine import Recombiner
    from tests.vision.helpers import photo

    image = photo("P006", "studio_portrait", 600)
    faces = pipeline.analyze(image, recognizers=[])
    face = faces[0]
    assert 0.2 < float(face.gender_score[0]) < 0.8
    # no recognizer: the gender checks alone (the rule under test; the expression geometry is not checked)
    strict = Verifier(pipeline, margin=0.0, recognizers=[], uncertain="uncertain", geometry=None)
    lean = Verifier(pipeline, margin=0.0, recognizers=[], geometry=None)  # the default gender rule
    pool = TargetPool.default()
    recombiner = Recombiner(pool)
    swapper = create_swapper("split")
    readings = []
    for tid in pool.ids[::4]:
        t_img, t_lm = recombiner.image(Target.plain(tid, pool.identity(tid)))
        result = swapper.swap(image, face.landmarks68[0], t_img, t_lm, alpha=0.5).patch.apply(image)
        v1 = strict.verify_many([result], face, {}, expression=False)[0]
        v2 = lean.verify_many([result], face, {}, expression=False)[0]
        assert v1.gender_checked and v2.gender_checked and v1.female == pytest.approx(v2.female)
        female = float(v1.female or 0.0)
        readings.append(female)
        if female < 0.5:
            assert v1.rejected == v2.rejected == "reads male: the source leans female", tid
        elif female >= 0.8:
            assert v1.rejected.endswith("the source's gender is uncertain") and v2.rejected == "", tid
        else:
            assert v1.rejected == v2.rejected == "", tid
    # both kinds occur: confidently female fakes (women's targets) and male ones (men's)
    assert max(readings) >= 0.8 and min(readings) < 0.5


def test_an_expression_change_rejects_unless_the_caller_accepts_it() -> None:
    verifier = Verifier(_AttrPipe(), margin=0.0)
    neutral = _image(200, happy=False)
    verdict = verifier.verify(neutral, _source(0.97, "happy"), SOURCE)
    assert not verdict.passed and verdict.rejected == "expression happy→neutral" and verdict.expression_changed
    assert verdict.expression == "neutral" and abs(verdict.expression_score - 0.01) < 1e-6
    relaxed = verifier.verify(neutral, _source(0.97, "happy"), SOURCE, expression=False)
    assert relaxed.passed and relaxed.rejected == ""
    # a pixelation (attributes=False) has no gender or expression to keep
    assert verifier.verify(_image(100, happy=False), _source(0.97), {"facenet": SOURCE["facenet"],
                           "dlib": np.full(1, -1.0, np.float32)}, attributes=False).passed


def test_verify_many_gives_each_candidate_the_verdict_it_gets_alone() -> None:
    images = [_image(100, True), _image(200, False), _image(200, True), _image(40, True), _image(210, True)]
    face = _source(0.97)
    alone = [Verifier(_AttrPipe(), margin=0.0).verify(im, face, SOURCE) for im in images]
    pipe = _AttrPipe()
    together = Verifier(pipe, margin=0.0).verify_many(images, face, SOURCE)
    assert [v.passed for v in together] == [v.passed for v in alone] == [False, False, True, False, True]
    assert [v.rejected for v in together] == [v.rejected for v in alone]
    assert [v.distances for v in together] == [v.distances for v in alone]
    # one embedding call per recognizer for the batch: only the candidates the attribute checks kept
    assert pipe.recognizers["dlib"].calls == 1 and pipe.recognizers["facenet"].calls == 1


@pytest.mark.slow
def test_batched_attribute_checks_decide_as_the_per_candidate_models_on_real_fakes(
        pipeline: FacePipeline, pool: TargetPool, group: Group) -> None:
    """Real candidate fakes of each face of the group photo, verified together: each verdict's gender and
    expression are what the models give for that candidate alone (`estimate`, `probabilities`), and every
    decision is the one `verify` gives for it alone."""
    from mfmc.vision.expression import CLASSES

    gen = FakeGenerator(pipeline, pool)
    verifier = Verifier(pipeline, recognizers=gen.verifier.names)
    image, faces = group.image, group.faces
    attributes, expressions = pipeline.attributes, pipeline.expressions
    assert attributes is not None
    checked = 0
    for i in range(len(faces)):
        face = faces[i]
        results = _swapped(gen, pool, image, faces, i, k=4)
        source = verifier.source_embeddings(image, face)
        together = verifier.verify_many(results, face, source)
        alone = [verifier.verify(r, face, source) for r in results]
        assert [(v.passed, v.rejected, v.gender, v.expression) for v in together] == \
               [(v.passed, v.rejected, v.gender, v.expression) for v in alone]
        for result, v in zip(results, together, strict=True):
            if v.landmarks68 is None:  # rejected on its expression before the 68 points were re-predicted
                assert v.expression_changed
                v.landmarks68 = pipeline.landmarker.predict(result, face.replace(embeddings={}))[0]
            probe = face.replace(embeddings={}, landmarks68=v.landmarks68[None])
            if expressions is not None and verifier.expression_to_keep(face) is not None:
                p = expressions.probabilities(result, probe)[0]
                assert v.expression == CLASSES[int(np.argmax(p))].value
                # judged before the re-prediction: the classifier reads the source's box and 5 points, not the 68
                np.testing.assert_array_equal(p, expressions.probabilities(result, face.replace(embeddings={}))[0])
            if v.gender_checked:
                _, gender, female = attributes.estimate(result, probe)
                assert v.gender == str(gender[0]) and abs(v.female - float(female[0])) < 1e-5
                checked += 1
    assert checked >= 4  # the gender network ran on real candidates
