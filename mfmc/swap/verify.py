"""Verification: a fake counts only if every recognizer puts it farther from the source than its same-person
threshold plus a margin, and it keeps what the source shows: its gender (a source read confidently keeps its
label; a gender-uncertain source gets a fake the classifier also rates uncertain), its expression geometry (eye
apertures, mouth opening, smile, brow height of the re-predicted 68 points, within `GEOMETRY_TOLERANCE` of the
source's) and, when an expression classifier is installed, its expression class."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from mfmc.swap.landmarks import GEOMETRY_TOLERANCE, ExpressionGeometry
from mfmc.vision.faces import Gender

if TYPE_CHECKING:
    from mfmc.vision import FacePipeline, Faces
    from mfmc.vision.recognition import Recognizer

# A source's gender label is kept when the pipeline's classifier gives it at least this probability: on the 25
# faces of the issue-11 real photos 24 read ≥ 0.98 and one 0.54 (a woman in profile-lit shade), so 0.8 separates
# "sure" from "a coin toss"; a fake of such a source must read as the source's gender with this probability too
# (`Verifier.result_gender`). A gender-uncertain source (read below it either way) is judged by `UncertainGender`.
GENDER_CONFIDENCE = 0.8

# The verification cascade's order (issue 17): recognizers run in this order, each embedding only the candidates
# every earlier one passed (`Verifier(early_exit=True)`); recognizers not named here run after, in the order
# given. Measured on the generator's own candidates of the issue-11 real photos (`python benchmarks/bench_swap.py
# --real /tmp/photos/*.jpg /tmp/photos2/* --seed 7 --recognizer-cost 3`: 191 candidates, 118 judged by the
# recognizers; best of 5 warm runs, batch of 3, load ~10 on 2 cores): per chip openface 5.5 ms, dlib 8.6,
# mobilefacenet 12.3, facenet 42.2; of the 118, dlib rejects 71, openface 65, facenet 85, mobilefacenet 17, but
# facenet rejects 18 that no other does and mobilefacenet none. Over the 24 orders, the recognizers' expected
# cost per judged candidate is 23.7 ms for this one, 25.1 dlib-first, 51.6 at worst (mobilefacenet, facenet
# first); running every recognizer on every candidate costs 68.6.
CASCADE: tuple[str, ...] = ("openface", "dlib", "facenet", "mobilefacenet")

# `Verdict.failed` of a fake that cleared every recognizer's bar but not the mean bar (`Verifier.mean_ratio`)
MEAN = "the recognizers' mean distance"


class UncertainGender(StrEnum):
    """What a fake of a gender-uncertain source (read below `GENDER_CONFIDENCE` either way) must read as.

    - `lean` (default): the source's likelier label, at any probability — never the other label (a woman read
      at p(female) 0.57 may get a fake reading female at 1.0, never one reading male);
    - `uncertain` (issue 11's wording: "a gender-uncertain source gets a target whose gender the classifier also
      rates uncertain"): the source's likelier label, below `GENDER_CONFIDENCE` — no confidently male or female
      face either;
    - `unchecked`: not checked (the behaviour before; the report says so).
    Measured on real faces the classifier reads uncertain (docs/swap.md): no built-in pool target gave a fake the
    classifier reads uncertain, so `uncertain` pixelated every one of them — a woman read at 0.57 whose female
    fake looked right, a long-haired man read at 0.23 (the generator tests' group) — hence `lean` by default.
    """

    UNCERTAIN = "uncertain"
    LEAN = "lean"
    UNCHECKED = "unchecked"



@dataclass(frozen=True)
class Avoid:
    """What a fake must not match besides its source: embeddings per recognizer name, (K, D) each (the other
    faces and fakes of the photo, people the uploading client knows), and target identities already used.

    A fake passes only when, on every verifying recognizer, it is farther than the recognizer's bar (threshold
    plus margin) from every row here as well as from its source. `floors` (per recognizer, one value per row)
    lowers that bar for a row to the distance the *real* faces already had: on small faces a recognizer may
    match most different people of a photo to each other (dlib: 24 of 36 pairs on a real 9-person photo), and a
    fake cannot be farther from a neighbour than the recognizer can tell people apart. A fake then still may not
    come closer to that neighbour than its original was (no new collision); without a floor the bar holds.
    `real` (per recognizer, one bool per row) marks the rows that are the photo's real faces (`photo_avoid`); the
    others are fakes or rows the caller gave (`Attempt.matched_fake`).
    """

    embeddings: Mapping[str, np.ndarray] = field(default_factory=dict)
    targets: frozenset[str] = frozenset()
    floors: Mapping[str, np.ndarray] = field(default_factory=dict)
    real: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clean = {}
        for name, rows in dict(self.embeddings).items():
            a = np.asarray(rows, dtype=np.float32)
            clean[str(name)] = a.reshape(-1, a.shape[-1]) if a.size else np.zeros((0, 0), np.float32)
        floors, real = {}, {}
        for name, rows in clean.items():
            f = np.asarray(dict(self.floors).get(name, np.full(len(rows), np.inf)), dtype=np.float64).reshape(-1)
            r = np.asarray(dict(self.real).get(name, np.zeros(len(rows), bool)), dtype=bool).reshape(-1)
            if f.shape[0] != len(rows) or r.shape[0] != len(rows):
                raise ValueError(f"`floors[{name!r}]` and `real[{name!r}]` need one value per row ({len(rows)}), "
                                 f"got {f.shape[0]} and {r.shape[0]}")
            floors[name], real[name] = f, r
        object.__setattr__(self, "embeddings", clean)
        object.__setattr__(self, "floors", floors)
        object.__setattr__(self, "real", real)
        object.__setattr__(self, "targets", frozenset(self.targets))

    def plus(self, embeddings: Mapping[str, np.ndarray] | None = None, targets: Iterable[str] = (),
             floors: Mapping[str, np.ndarray] | None = None, real: Mapping[str, np.ndarray] | None = None) -> Avoid:
        """A copy with more rows (per recognizer, with optional floors and real-face marks) and more excluded
        targets."""
        merged, lows, marks = dict(self.embeddings), dict(self.floors), dict(self.real)
        for name, rows in (embeddings or {}).items():
            a = np.asarray(rows, dtype=np.float32)
            a = a.reshape(-1, a.shape[-1])
            f = np.asarray((floors or {}).get(name, np.full(len(a), np.inf)), dtype=np.float64).reshape(-1)
            r = np.asarray((real or {}).get(name, np.zeros(len(a), bool)), dtype=bool).reshape(-1)
            old = merged.get(name)
            fresh = old is None or not old.size
            merged[name] = a if fresh else np.vstack([old, a])
            lows[name] = f if fresh else np.concatenate([lows[name], f])
            marks[name] = r if fresh else np.concatenate([marks[name], r])
        return Avoid(merged, self.targets | frozenset(targets), lows, marks)

    def is_real(self, name: str) -> np.ndarray:
        """Per row of `rows(name)`, whether it is one of the photo's real faces."""
        return self.real.get(name, np.zeros(0, bool))

    def rows(self, name: str) -> np.ndarray:
        a = self.embeddings.get(name)
        return a if a is not None and a.size else np.zeros((0, 0), np.float32)

    def limits(self, name: str, bar: float) -> np.ndarray:
        """Per row, the distance a fake must exceed: the bar, or the row's floor when lower."""
        return np.minimum(bar, self.floors.get(name, np.zeros(0)))

    def __len__(self) -> int:
        return max((len(v) for v in self.embeddings.values()), default=0)

    def __bool__(self) -> bool:  # identities alone are something to avoid (`len` counts embedding rows only)
        return len(self) > 0 or bool(self.targets)


@dataclass
class Measured:
    """What verifying one candidate result measured on its pixels alone, whatever it is compared with (source,
    `Avoid`, the checks asked): its expression probabilities, re-predicted 68 points, gender and embeddings,
    each filled when first computed. Given to `Verifier.verify_many` again for the same pixels of the same face
    (the generator making a face again in its photo, the expression fallback), nothing filled is computed again:
    every network here gives a candidate the same bits alone or in any batch (tested), so the verdicts are
    those of a fresh verification."""

    expression: np.ndarray | None = None  # (C,) probabilities, `mfmc.vision.expression.CLASSES` order
    landmarks68: np.ndarray | None = None  # (68, 2) float32
    gender: tuple[str, float] | None = None  # (label, probability of "female")
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Verdict:
    """Result-to-source distance per recognizer that ran, whether all cleared their bar, and the result's
    re-predicted landmarks (reused by the metrics)."""

    distances: dict[str, float]
    passed: bool
    failed: str | None = None
    landmarks68: np.ndarray | None = None  # None when rejected on its expression first (not re-predicted)
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    ms: float = 0.0
    collision: float | None = None  # smallest distance / bar to an `Avoid` row when that failed the fake
    # recognizers not run because an earlier one of the cascade rejected the candidate (early exit), or because
    # it was rejected on what it keeps before any recognizer: their distances are absent, not measured
    skipped: tuple[str, ...] = ()
    # what the fake keeps: "" when it kept everything checked, else why it was rejected before any recognizer
    # ran ("reads male", "expression happy→neutral")
    rejected: str = ""
    gender: str | None = None  # the result's gender label, when the source's gender was checked (sure or uncertain)
    female: float | None = None  # the result's probability of "female", idem
    expression: str | None = None  # the result's expression class, when the source's was checked
    expression_score: float | None = None  # the result's probability of the source's expression class
    # the result's probabilities of every expression class (`mfmc.vision.expression.CLASSES` order), idem
    expression_probabilities: tuple[float, ...] | None = None
    gender_checked: bool = False
    # the result's expression geometry minus the source's (`ExpressionGeometry`), when it was checked
    geometry: ExpressionGeometry | None = None

    @property
    def expression_changed(self) -> bool:
        """Rejected only on the expression: its class changed or its geometry moved beyond the tolerance
        ("expression geometry: …"); recognizers not run: a candidate for the expression retries and fallback."""
        return self.rejected.startswith("expression")


class Verifier:
    """Re-embeds the face at the source's box in a candidate image with each recognizer and compares.

    Landmarks are re-predicted on the result, as anyone trying to recognise the face would do. The
    recognizers run as a cascade in a fixed order (`CASCADE`: cheapest per chip and most rejecting first), each
    on the candidates every earlier one passed; with `early_exit` (default) a candidate one recognizer rejects
    is never embedded by the later ones. A fake passes only when every recognizer passed it, so the order
    changes no pass/fail verdict, only which recognizers a rejected candidate cost and which distances its
    verdict holds (those measured: `Verdict.distances`, `Verdict.skipped`). The order is fixed, not adapted to
    timings, so a run's choices never depend on the machine's load.

    Before any recognizer (a few ms each, on the re-predicted landmarks): with the pipeline's attribute model,
    a result whose gender label differs from a source read with probability ≥ `gender_confidence` is rejected
    ("reads male"), and so is one that reads as the source's gender below `result_gender` ("reads female only
    at 0.52"); a source read below `gender_confidence` either way (gender-uncertain) by `uncertain`
    (`UncertainGender`: by default a result reading the other label is rejected, "reads male: the source
    leans female"); with its expression classifier, a result whose class differs from the
    source's is rejected ("expression happy→neutral") unless `expression=False` (the generator's fallback when
    no candidate kept it). With `geometry` (default `GEOMETRY_TOLERANCE`; None: not checked), a result whose
    re-predicted eye apertures, mouth opening, smile or brow height moved from the source's by more than the
    tolerance is rejected too ("expression geometry: brows +0.077"), also when `expression=False`: the class
    check alone passed fakes that stare, gape or grin where the source did not. `verify_many` judges several
    candidate results of one face together: each recognizer
    embeds all candidates still in the running in one batched call; every verdict is the one `verify` gives
    alone.
    """

    def __init__(
        self,
        pipeline: FacePipeline,
        *,
        margin: float | Mapping[str, float] = 0.05,
        recognizers: Sequence[str] | None = None,
        early_exit: bool = True,
        gender_confidence: float = GENDER_CONFIDENCE,
        result_gender: float | None = None,
        uncertain: UncertainGender | str = UncertainGender.LEAN,
        mean_ratio: float = 0.0,
        geometry: ExpressionGeometry | None = GEOMETRY_TOLERANCE,
    ) -> None:
        self.pipeline = pipeline
        names = list(pipeline.recognizers) if recognizers is None else list(recognizers)
        # the cascade's order (`CASCADE`), then recognizers it does not name in the order given
        self.names = sorted(names, key=lambda n: (CASCADE.index(n) if n in CASCADE else len(CASCADE),
                                                  names.index(n)))
        self.margin = margin
        # a fake that cleared every bar must also be, on average over the verifying recognizers, at least this
        # many times their same-person thresholds from the source (`normalized`); 0: no such rule
        self.mean_ratio = float(mean_ratio)
        self.early_exit = early_exit
        self.gender_confidence = float(gender_confidence)
        # the probability of the source's gender a result needs: by default as sure as a source must be read to
        # be checked. On the issue-11 photos (seed 7) 0.8 and 0.5 gave the same swaps; at 0.5 the astronaut's
        # fake read female at 0.52 with heavy male brows, at 0.8 the next candidate was taken
        self.result_gender = self.gender_confidence if result_gender is None else float(result_gender)
        # what a gender-uncertain source's fake must read as (`UncertainGender`)
        self.uncertain = UncertainGender(uncertain)
        # how far a fake's re-predicted expression geometry may move from the source's (`_check_geometry`);
        # None: not checked
        self.geometry = geometry

    def order(self) -> list[str]:
        """Recognizers in the order a verification runs them (the cascade: `CASCADE`, then the others)."""
        return list(self.names)

    def threshold(self, name: str) -> float:
        return float(self.pipeline.recognizers[name].threshold)

    def bar(self, name: str) -> float:
        """The distance a fake must exceed for recognizer `name`."""
        m = self.margin.get(name, 0.0) if isinstance(self.margin, Mapping) else self.margin
        return self.threshold(name) + float(m)

    def normalized(self, distances: Mapping[str, float]) -> float:
        """The mean over the recognizers in `distances` of distance / same-person threshold (0.0 for none)."""
        return float(np.mean([d / self.threshold(n) for n, d in distances.items()])) if distances else 0.0

    def source_embeddings(self, image: np.ndarray, face: Faces) -> dict[str, np.ndarray]:
        """The source face's embeddings, computed for recognizers the caller's `Faces` lacks."""
        have = dict(face.embeddings or {})
        out = {}
        for name in self.names:
            if name in have:
                out[name] = np.asarray(have[name][0], dtype=np.float32)
            else:
                out[name] = np.asarray(self.pipeline.recognizers[name].embed(image, face)[0], dtype=np.float32)
        return out

    def gender_to_keep(self, face: Faces) -> str | None:
        """The source's gender label when the classifier is sure of it (≥ `gender_confidence`), else None
        (no attribute model, no gender read, or a gender-uncertain source: not checked)."""
        if self.pipeline.attributes is None or face.gender is None or face.gender_score is None:
            return None
        label, female = str(face.gender[0]), float(face.gender_score[0])
        sure = female if label == Gender.FEMALE else 1.0 - female
        return label if sure >= self.gender_confidence else None

    def gender_uncertain(self, face: Faces) -> float | None:
        """The source's probability of "female" when the classifier reads it below `gender_confidence` either way
        (a gender-uncertain source, whose fake must read uncertain too), else None (sure, or nothing read)."""
        if self.pipeline.attributes is None or face.gender is None or face.gender_score is None:
            return None
        female = float(face.gender_score[0])
        return female if max(female, 1.0 - female) < self.gender_confidence else None

    def checks_gender(self, face: Faces) -> bool:
        """Whether the fakes of `face` are checked on gender: a sure source always, an uncertain one unless
        `uncertain` is `unchecked` (and never without an attribute model or a gender read)."""
        return self._gender_rule(face)[0] is not None

    def _gender_rule(self, face: Faces) -> tuple[str | None, UncertainGender | None]:
        """(the label a fake must keep, how): a sure source's label (None: the confidence `result_gender`), an
        uncertain source's likelier label under `uncertain` or `lean`, or (None, None): not checked."""
        keep = self.gender_to_keep(face)
        if keep is not None:
            return keep, None
        if self.gender_uncertain(face) is None or self.uncertain == UncertainGender.UNCHECKED or face.gender is None:
            return None, None
        return str(face.gender[0]), self.uncertain

    def expression_to_keep(self, face: Faces) -> str | None:
        """The source's expression class when the pipeline has an expression classifier, else None."""
        if self.pipeline.expressions is None or face.expression is None:
            return None
        return str(face.expression[0])

    def expression_probabilities(self, image: np.ndarray, face: Faces) -> dict[str, float] | None:
        """The source's probability of each expression class (by class name), or None without a classifier."""
        if self.pipeline.expressions is None or face.expression is None:
            return None
        from mfmc.vision.expression import CLASSES, probabilities_of

        probs = np.asarray(probabilities_of(self.pipeline.expressions, [(image, face)]), dtype=np.float64)[0]
        return {c.value: float(p) for c, p in zip(CLASSES, probs, strict=True)}

    def verify(
        self, result: np.ndarray, face: Faces, source: Mapping[str, np.ndarray], avoid: Avoid | None = None,
        *, attributes: bool = True, expression: bool = True, timings: dict[str, float] | None = None,
    ) -> Verdict:
        """Check `result` (the whole photo with the fake in) at the place of `face` (a `Faces` of length 1):
        farther than the bar from the source and, with `avoid`, from every face to avoid; with `attributes`,
        the source's gender (and with `expression` its expression class) kept. A pixelation is checked with
        `attributes=False`: it has neither."""
        return self.verify_many([result], face, source, avoid, attributes=attributes, expression=expression,
                                timings=timings)[0]

    def verify_many(
        self, results: Sequence[np.ndarray], face: Faces, source: Mapping[str, np.ndarray],
        avoid: Avoid | None = None, *, attributes: bool = True, expression: bool = True,
        timings: dict[str, float] | None = None, landmarks: Sequence[np.ndarray | None] | None = None,
        measured: Sequence[Measured] | None = None,
    ) -> list[Verdict]:
        """`verify` for several candidate results of the same face, one verdict each, in order: each
        recognizer embeds all candidates still in the running in one batched call (`Recognizer.embed_many`).
        `timings`: wall ms added per stage ("verify:landmarks", "verify:attributes", "verify:<recognizer>").
        `landmarks`: per result, the 68 points already re-predicted on these same pixels (`Verdict.landmarks68`
        of an earlier verification: the predictor is deterministic), or None to predict them. `measured`: per
        result, what earlier verifications of these same pixels of this face measured (`Measured`): read instead
        of computed, and filled with what this one computes."""
        t0 = time.perf_counter()
        spent = timings if timings is not None else {}

        def clock(stage: str, since: float) -> float:
            now = time.perf_counter()
            spent[f"verify:{stage}"] = spent.get(f"verify:{stage}", 0.0) + (now - since) * 1000.0
            return now

        probe = face.replace(embeddings={})
        landmarker = self.pipeline.landmarker
        probes: list[Faces] = [probe] * len(results)
        verdicts = [Verdict({}, False, None, None) for _ in results]
        if landmarks is not None and len(landmarks) != len(results):
            raise ValueError(f"`landmarks` needs one (68, 2) array per result ({len(results)}), "
                             f"got {len(landmarks)}")
        if measured is not None and len(measured) != len(results):
            raise ValueError(f"`measured` needs one `Measured` per result ({len(results)}), got {len(measured)}")
        measures = list(measured) if measured is not None else [Measured() for _ in results]
        given = [lm is not None for lm in landmarks] if landmarks is not None else [False] * len(results)
        for m, lm, known in zip(measures, landmarks or [None] * len(results), given, strict=True):
            if known and m.landmarks68 is None:
                m.landmarks68 = np.asarray(lm, dtype=np.float32)
        t1 = t0
        if attributes and expression:
            # the expression first (~1 ms a face): its classifier reads the box and 5 points the probe keeps (the
            # source's), never the 68 re-predicted below (tests/swap/test_verify.py), so the candidates it
            # rejects (31 of 164 on /tmp/photos, seed 7) are not re-predicted: `Verdict.landmarks68` stays None. No
            # 68 points at all are given: a classifier that read them would fail here, not read the source's
            blind = [probe.replace(landmarks68=None)] * len(results)
            self._check_expression(results, blind, verdicts, self.expression_to_keep(face), measures)
            t1 = clock("attributes", t1)
        if landmarker is not None and len(results):  # the candidates' landmarks in one numpy pass
            from mfmc.vision.landmarks import landmarks_of

            todo = [i for i, m in enumerate(measures) if m.landmarks68 is None and not verdicts[i].rejected]
            predicted = landmarks_of(landmarker, [(results[i], probe) for i in todo]) if todo else []
            for i, lm68 in zip(todo, predicted, strict=True):
                measures[i].landmarks68 = np.asarray(lm68[0], dtype=np.float32)
            for i, m in enumerate(measures):
                # a candidate rejected on its expression has points only when the caller gave them (as before)
                if m.landmarks68 is not None and (given[i] or not verdicts[i].rejected):
                    probes[i] = probe.replace(landmarks68=m.landmarks68[None])
                    verdicts[i].landmarks68 = probes[i].landmarks68[0]
        t1 = clock("landmarks", t1)
        if attributes and self.geometry is not None and face.landmarks68 is not None:  # no network: µs a face
            self._check_geometry(verdicts, np.asarray(face.landmarks68[0], dtype=np.float64))
        if attributes:  # then the gender network (~3 ms a face), on the re-predicted points
            self._check_gender(results, probes, verdicts, *self._gender_rule(face), measures=measures)
            t1 = clock("attributes", t1)
        alive = [i for i, v in enumerate(verdicts) if not v.rejected]
        failed: list[str | None] = [None] * len(verdicts)
        for name in self.order():
            if not alive:
                break
            rec = self.pipeline.recognizers[name]
            embs = self._embedded(rec, name, results, probes, alive, measures)
            bar = self.bar(name)
            rows = avoid.rows(name) if avoid is not None else np.zeros((0, 0), np.float32)
            limits = avoid.limits(name, bar) if avoid is not None and len(rows) else None
            for i, emb in zip(alive, embs, strict=True):
                v = verdicts[i]
                v.embeddings[name] = emb
                v.distances[name] = float(rec.distance(emb, source[name]))
                rejected = not v.distances[name] > bar
                if not rejected and limits is not None:
                    ratio = float(np.min(np.asarray(rec.distance(emb, rows)) / limits))
                    if ratio <= 1.0:
                        rejected = True
                        v.collision = ratio if v.collision is None else min(v.collision, ratio)
                if rejected:
                    failed[i] = failed[i] or name
            t1 = clock(name, t1)
            if self.early_exit:
                alive = [i for i in alive if failed[i] is None]
        if self.mean_ratio > 0.0:  # cleared every bar, but only barely on average: rejected as a whole
            for i, v in enumerate(verdicts):
                if (failed[i] is None and not v.rejected and len(v.distances) == len(self.names)
                        and self.normalized(v.distances) <= self.mean_ratio):
                    failed[i] = MEAN
        ms = (time.perf_counter() - t0) * 1000.0 / max(len(verdicts), 1)
        for v, why in zip(verdicts, failed, strict=True):
            v.failed = why
            v.passed = (why is None and not v.rejected and len(v.distances) == len(self.names)
                        and bool(self.names))
            v.ms = ms
            v.skipped = tuple(n for n in self.names if n not in v.distances)
        return verdicts

    @staticmethod
    def _embedded(rec: Recognizer, name: str, results: Sequence[np.ndarray], probes: list[Faces],
                  alive: list[int], measures: list[Measured]) -> np.ndarray:
        """(len(alive), D) float32: the embeddings by `rec` of the `alive` results, those not yet in
        `measures` computed in one batch and kept there."""
        todo = [i for i in alive if name not in measures[i].embeddings]
        if todo:
            new = np.asarray(rec.embed_many([(results[i], probes[i]) for i in todo]), dtype=np.float32)
            for i, emb in zip(todo, new, strict=True):
                measures[i].embeddings[name] = emb
        return np.stack([measures[i].embeddings[name] for i in alive])

    def _check_gender(self, results: Sequence[np.ndarray], probes: list[Faces], verdicts: list[Verdict],
                      keep: str | None, uncertain: UncertainGender | None, *, measures: list[Measured]) -> None:
        """The gender network alone on every candidate not yet rejected, in one batch (`genders_of`): each must
        read `keep` (the source's label), at `result_gender` or more for a sure source (`uncertain` None), below
        `gender_confidence` for an uncertain one under `UncertainGender.UNCERTAIN`, at any probability under
        `LEAN`."""
        model = self.pipeline.attributes
        if keep is None or model is None:
            return
        from mfmc.vision.attributes import genders_of

        alive = [i for i, v in enumerate(verdicts) if not v.rejected]
        if not alive:
            return
        todo = [i for i in alive if measures[i].gender is None]
        if todo:
            genders, females = genders_of(model, [(results[i], probes[i]) for i in todo])
            for i, gender, female in zip(todo, genders, females, strict=True):
                measures[i].gender = (str(gender), float(female))
        for i in alive:
            v = verdicts[i]
            read = measures[i].gender
            assert read is not None
            v.gender_checked = True
            v.gender, v.female = read
            sure = max(v.female, 1.0 - v.female)
            if uncertain is not None:  # a gender-uncertain source
                if v.gender != keep:
                    v.rejected = f"reads {v.gender}: the source leans {keep}"
                elif uncertain == UncertainGender.UNCERTAIN and sure >= self.gender_confidence:
                    v.rejected = f"reads {v.gender} at {sure:.2f}: the source's gender is uncertain"
                continue
            kept = v.female if keep == Gender.FEMALE else 1.0 - v.female
            if v.gender != keep or kept < self.result_gender:
                v.rejected = f"reads {v.gender}" if v.gender != keep else f"reads {keep} only at {kept:.2f}"

    def _check_geometry(self, verdicts: list[Verdict], source: np.ndarray) -> None:
        """Every candidate not yet rejected whose re-predicted 68 points move an expression measure
        (`ExpressionGeometry`: eye apertures, mouth opening, smile, brow height) beyond `geometry` from the
        source's is rejected ("expression geometry: brows +0.077"), whatever its expression class: a fake can
        read as the source's class and still stare, gape or grin where the source did not."""
        assert self.geometry is not None
        was = ExpressionGeometry.of(source)
        for v in verdicts:
            if v.rejected or v.landmarks68 is None:
                continue
            v.geometry = ExpressionGeometry.of(v.landmarks68).minus(was)
            over = self.geometry.beyond(v.geometry)
            if over:
                v.rejected = f"expression geometry: {', '.join(over)}"

    def _check_expression(self, results: Sequence[np.ndarray], probes: list[Faces], verdicts: list[Verdict],
                          keep: str | None, measures: list[Measured]) -> None:
        """The expression class of every candidate, those not yet in `measures` in one batch
        (`probabilities_of`)."""
        from mfmc.vision.expression import CLASSES, probabilities_of

        model = self.pipeline.expressions
        if keep is None or model is None or not verdicts:
            return
        names = [c.value for c in CLASSES]
        todo = [i for i, m in enumerate(measures) if m.expression is None]
        if todo:
            probs = np.asarray(probabilities_of(model, [(results[i], probes[i]) for i in todo]), dtype=np.float64)
            for i, p in zip(todo, probs, strict=True):
                measures[i].expression = p
        for m, v in zip(measures, verdicts, strict=True):
            p = m.expression
            assert p is not None
            v.expression = names[int(np.argmax(p))]
            v.expression_score = float(p[names.index(keep)])
            v.expression_probabilities = tuple(float(x) for x in p)
            if v.expression != keep:
                v.rejected = f"expression {keep}→{v.expression}"
