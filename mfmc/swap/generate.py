"""`FakeGenerator`: query targets, swap, verify, retry, and fail closed with verified fallbacks."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mfmc.errors import GenerationError, MfmcError
from mfmc.swap import landmarks as lmk
from mfmc.swap.base import Swapper, create_swapper
from mfmc.swap.metrics import fake_metrics
from mfmc.swap.obfuscate import face_polygon, fill, pixelate
from mfmc.swap.patch import FacePatch
from mfmc.swap.report import Attempt, FaceReport
from mfmc.swap.verify import Verdict, Verifier

# Recognizers cannot embed faces this small reliably, so a swap there could not be verified (pixels, min side).
MIN_FACE = 20
# A training-free swap moves the embedding only part of the way to the target (design notes §6): on the
# benchmark's 52 attempts (docs/swap.md) the result-to-source distance was 0.85 x the target-to-source one
# on dlib (0.71-0.93) and 0.78 x on FaceNet (0.45-0.95). A target whose own distance times this reach does
# not clear a recognizer's bar rarely passes, so such targets go last. Other recognizers: SWAP_REACH.
SWAP_REACH = 0.85
REACH = {"dlib": 0.85, "facenet": 0.78}


@dataclass
class _Tried:
    target: str
    patch: FacePatch | None
    verdict: Verdict | None
    score: float  # min over recognizers of distance / bar (≥ 1 passes)


class FakeGenerator:
    """Turns a face of a photo into a verified fake (a `FacePatch`) and says how in a `FaceReport`.

    Per face: up to `max_attempts` targets from the pool query are swapped with geometry transfer `alpha` and
    verified with every recognizer of `pipeline`; then up to `alpha_retries` of the closest misses are
    swapped again with full geometry (alpha 1); then the face is pixelated (verified), and as a last resort
    filled with one colour. The original face is never returned.
    """

    def __init__(
        self,
        pipeline: Any,
        pool: Any,
        swapper: Swapper | str | None = None,
        *,
        max_attempts: int = 4,
        alpha_retries: int = 2,
        margin: float | Mapping[str, float] = 0.05,
        alpha: float = 0.3,
        strategy: str = "random",
        candidates: int = 8,
        pixelate_cells: tuple[int, ...] = (8, 5),
        min_face: int = MIN_FACE,
        max_shape_residual: float = 0.12,
        measure: bool = True,
        recognizers: list[str] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.pool = pool
        if swapper is None or isinstance(swapper, str):
            swapper = create_swapper(swapper or "warp")
        self.swapper = swapper
        self.max_attempts = max(0, int(max_attempts))
        self.alpha_retries = max(0, int(alpha_retries))
        self.alpha = float(alpha)
        self.strategy = strategy
        self.candidates = max(int(candidates), self.max_attempts)
        self.pixelate_cells = pixelate_cells
        self.min_face = min_face
        self.max_shape_residual = max_shape_residual
        self.measure = measure
        self.verifier = Verifier(pipeline, margin=margin, recognizers=recognizers)

    # -- public ------------------------------------------------------------------------------------------
    def anonymize(
        self, image: np.ndarray, faces: Any = None, *, seed: int = 0,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[np.ndarray, list[FaceReport]]:
        """Replace every face of `image` (detected and analyzed here when `faces` is None).

        Patches are computed on the original photo, so each equals what `fake_face` gives (cacheable), and
        written in order into a copy; the input image is not modified.
        """
        if faces is None:
            faces = self.pipeline.analyze(image)
        out = image.copy()
        reports = []
        for i in range(len(faces)):
            patch, report = self.fake_face(image, faces, i, seed=seed)
            out = patch.apply(out)
            reports.append(report)
            if progress is not None:
                progress(i + 1, len(faces))
        return out, reports

    def fake_face(self, image: np.ndarray, faces: Any, index: int, *, seed: int = 0) -> tuple[FacePatch, FaceReport]:
        """A verified fake of face `index` of `faces` in `image`, and what it took.

        Raises GenerationError only if not even the fill could be made (an invalid box); every other
        failure (no target, a model error, a tiny or profile face) ends in a verified fallback and is
        recorded in the report.
        """
        if not 0 <= index < len(faces):
            raise GenerationError(f"face index {index} is out of range for {len(faces)} faces")
        t_start = time.perf_counter()
        face = faces[index]
        box = np.asarray(face.boxes[0], dtype=np.float64)
        report = FaceReport(index=index, box=tuple(float(v) for v in box))
        report.thresholds = {n: self.verifier.bar(n) for n in self.verifier.names}
        side = float(min(box[2] - box[0], box[3] - box[1]))
        if side < self.min_face:
            patch = pixelate(image, face_polygon(box, None), cells=3)
            self._finish(report, "obfuscate", None, f"face is {side:.0f} px, below the {self.min_face} px "
                         "recognizers can verify: pixelated to 3 cells", by="construction")
            report.attempts.append(Attempt("pixelate", None, None, {}, True, "too small to verify"))
            return patch, self._close(report, t_start)

        reason = ""
        source_emb: dict[str, np.ndarray] = {}
        try:
            face = self._analyzed(image, face, report)
            source_emb = self.verifier.source_embeddings(image, face)
        except MfmcError as err:
            reason = f"the face could not be analyzed: {err.message}"
        except Exception as err:  # a model failing on odd pixels must not leak the face
            reason = f"the face could not be analyzed: {type(err).__name__}: {err}"
        lm68 = None if face.landmarks68 is None else np.asarray(face.landmarks68[0], dtype=np.float64)

        tried: list[_Tried] = []
        if not reason and lm68 is None:
            reason = "no 68-point landmarks for this face"
        if not reason:
            reason = self._swap_targets(image, face, lm68, source_emb, seed, report, tried)
            if not reason:
                return self._accepted(image, face, lm68, source_emb, report, tried[-1], "none", t_start)
            reason = self._alpha_retries(image, face, lm68, source_emb, report, tried) or reason
            if report.fallback == "alpha":
                return self._accepted(image, face, lm68, source_emb, report, tried[-1], "alpha", t_start)

        polygon = face_polygon(box, lm68)
        if source_emb:
            for cells in self.pixelate_cells:
                t0 = time.perf_counter()
                patch = pixelate(image, polygon, cells)
                report.timings_ms["swap"] += (time.perf_counter() - t0) * 1000.0
                verdict = self._verify(patch, image, face, source_emb, report)
                report.attempts.append(Attempt("pixelate", None, None, verdict.distances if verdict else {},
                                               bool(verdict and verdict.passed), f"{cells} cells"))
                if verdict is not None and verdict.passed:
                    report.distances = dict(verdict.distances)
                    self._finish(report, "obfuscate", None, reason, by="recognizers")
                    self._measure(report, image, patch, face, lm68, verdict, source_emb, {})
                    return patch, self._close(report, t_start)
        patch = fill(image, polygon)
        report.attempts.append(Attempt("fill", None, None, {}, True, "no face left to recognise"))
        self._finish(report, "fill", None, reason or "every verified option failed", by="construction")
        return patch, self._close(report, t_start)

    # -- steps -------------------------------------------------------------------------------------------
    def _analyzed(self, image: np.ndarray, face: Any, report: FaceReport) -> Any:
        """The face with 68 landmarks, pose, age/gender and embeddings (analyzed here if the caller's lacks)."""
        missing = [n for n in self.verifier.names if n not in (face.embeddings or {})]
        if face.landmarks68 is None or missing:
            t0 = time.perf_counter()
            face = self.pipeline.analyze(image, face)
            report.timings_ms["analyze"] = (time.perf_counter() - t0) * 1000.0
        return face

    def _query(self, face: Any, seed: int, report: FaceReport) -> list[Any]:
        """Ranked candidates, widening the query until `max_attempts` promising ones are found.

        Steps: the pool's own filters; without the age group (the gender is kept: a bearded target on a woman
        looks wrong); without its expression filters (the swap keeps an open mouth or open eyes itself);
        without its quality and resolution floors; last, any gender. The pose filter is never dropped (turned
        targets on frontal faces are grotesque), and our landmark check below drops whatever shape mismatch the
        pose estimate misses.
        """
        from mfmc.pool import Compatibility

        any_expression = Compatibility(match_mouth=False, avoid_closed_eyes=False)
        any_quality = dataclasses.replace(any_expression, min_quality=None, min_resolution=None)
        steps: list[tuple[str, dict[str, Any]]] = [
            ("", {}),
            ("any age group", {"same_group": "gender"}),
            ("any expression", {"same_group": "gender", "compatibility": any_expression}),
            ("any quality", {"same_group": "gender", "compatibility": any_quality}),
            ("any gender", {"same_group": False, "compatibility": any_quality}),
        ]
        lm = np.asarray(face.landmarks68[0], dtype=np.float64)
        scores: dict[str, float] = {}

        def promise(target_id: str) -> float:
            if target_id not in scores:
                scores[target_id] = self._promise(face, target_id)
            return scores[target_id]

        seen: dict[str, Any] = {}
        good: list[Any] = []
        for label, extra in steps:
            found = self.pool.query(face, strategy=self.strategy, k=self.candidates, seed=seed, **extra)
            new = [c for c in found if c.id not in seen]
            for c in new:
                seen[c.id] = c
            fitting = [c for c in new if self._fits(lm, c.id)]
            promising = [c for c in fitting if promise(c.id) >= 1.0]
            good += promising
            if label and promising:
                report.notes.append(f"pool query widened: {label}")
            if len(good) >= self.max_attempts:
                break
        # the rest, most promising first: a swap that misses by little is also the best alpha-1 retry
        rest = [c for c in seen.values() if c not in good and self._fits(lm, c.id)]
        rest.sort(key=lambda c: -promise(c.id))
        return good + rest

    def _fits(self, lm: np.ndarray, target_id: str) -> bool:
        """Whether the target's landmarks, similarity-aligned to the source's, differ little enough for a warp
        to look like a face (turned heads onto frontal faces look grotesque)."""
        try:
            tgt = np.asarray(self.pool.entry(target_id).landmarks68, dtype=np.float64)
        except Exception:
            return True
        return shape_residual(lm, tgt) <= self.max_shape_residual

    def _promise(self, face: Any, target_id: str) -> float:
        """Predicted min over recognizers of (result distance / bar) for this target: its own distance to the
        source times the swap's measured reach (REACH). Below 1 a swap rarely passes; such targets go last.
        An entry without stored embeddings is not reranked (inf)."""
        source = face.embeddings or {}
        try:
            emb = self.pool.entry(target_id).embeddings
        except Exception:
            return float("inf")
        score = float("inf")
        for name in self.verifier.names:
            if name in emb and name in source:
                d = float(self.pipeline.recognizers[name].distance(emb[name], source[name][0]))
                score = min(score, d * REACH.get(name, SWAP_REACH) / self.verifier.bar(name))
        return score

    def _swap_targets(
        self, image: np.ndarray, face: Any, lm68: np.ndarray, source_emb: dict[str, np.ndarray], seed: int,
        report: FaceReport, tried: list[_Tried],
    ) -> str:
        """Swap and verify ranked targets; "" when one passed (it is tried[-1]), else the reason none did."""
        t0 = time.perf_counter()
        try:
            candidates = self._query(face, seed, report)
        except MfmcError as err:
            return f"pool query failed: {err.message}"
        except Exception as err:
            return f"pool query failed: {type(err).__name__}: {err}"
        finally:
            report.timings_ms["query"] += (time.perf_counter() - t0) * 1000.0
        if not candidates:
            return "the pool has no target for this face" if len(self.pool) else "the pool is empty"
        for cand in candidates[: self.max_attempts]:
            one = self._attempt(image, face, lm68, source_emb, cand.id, self.alpha, report)
            tried.append(one)
            if one.verdict is not None and one.verdict.passed:
                return ""
        n = min(len(candidates), self.max_attempts)
        return f"none of {n} swapped targets passed verification"

    def _alpha_retries(
        self, image: np.ndarray, face: Any, lm68: np.ndarray, source_emb: dict[str, np.ndarray],
        report: FaceReport, tried: list[_Tried],
    ) -> str:
        if self.alpha >= 1.0 or self.alpha_retries == 0:
            return ""
        best = sorted((t for t in tried if t.patch is not None), key=lambda t: -t.score)[: self.alpha_retries]
        for prev in best:
            one = self._attempt(image, face, lm68, source_emb, prev.target, 1.0, report)
            tried.append(one)
            if one.verdict is not None and one.verdict.passed:
                report.fallback = "alpha"
                return "swaps with partial geometry did not pass; full geometry transfer did"
        return ""

    def _attempt(
        self, image: np.ndarray, face: Any, lm68: np.ndarray, source_emb: dict[str, np.ndarray], target_id: str,
        alpha: float, report: FaceReport,
    ) -> _Tried:
        method = "swap" if alpha == self.alpha else "swap-alpha"
        t0 = time.perf_counter()
        try:
            t_img, t_face = self.pool.target(target_id)
            report.timings_ms["query"] += (time.perf_counter() - t0) * 1000.0
            t1 = time.perf_counter()
            result = self.swapper.swap(image, lm68, t_img, np.asarray(t_face.landmarks68[0]), alpha=alpha)
            report.timings_ms["swap"] += (time.perf_counter() - t1) * 1000.0
        except Exception as err:  # a broken target or swapper costs one attempt, never the face
            report.attempts.append(Attempt(method, target_id, alpha, {}, False, f"swap failed: {err}"))
            return _Tried(target_id, None, None, 0.0)
        for note in result.notes:
            if note not in report.notes:
                report.notes.append(note)
        verdict = self._verify(result.patch, image, face, source_emb, report)
        if verdict is None:
            report.attempts.append(Attempt(method, target_id, alpha, {}, False, "verification failed"))
            return _Tried(target_id, result.patch, None, 0.0)
        score = min(verdict.distances[n] / self.verifier.bar(n) for n in verdict.distances)
        why = "" if verdict.passed else f"{verdict.failed} still matches the source"
        report.attempts.append(Attempt(method, target_id, alpha, dict(verdict.distances), verdict.passed, why))
        return _Tried(target_id, result.patch, verdict, score)

    def _verify(
        self, patch: FacePatch, image: np.ndarray, face: Any, source_emb: dict[str, np.ndarray], report: FaceReport
    ) -> Verdict | None:
        t0 = time.perf_counter()
        try:
            return self.verifier.verify(patch.apply(image), face, source_emb)
        except Exception:  # an unverifiable result is treated as a failed one
            return None
        finally:
            report.timings_ms["verify"] += (time.perf_counter() - t0) * 1000.0

    def _accepted(
        self, image: np.ndarray, face: Any, lm68: np.ndarray, source_emb: dict[str, np.ndarray], report: FaceReport,
        chosen: _Tried, fallback: str, t_start: float,
    ) -> tuple[FacePatch, FaceReport]:
        assert chosen.patch is not None and chosen.verdict is not None
        report.distances = dict(chosen.verdict.distances)
        reason = report.reason if fallback == "none" else "swaps with partial geometry did not pass"
        self._finish(report, fallback, chosen.target, reason, by="recognizers")
        target_emb: dict[str, np.ndarray] = {}
        with contextlib.suppress(Exception):  # a pool without stored embeddings just lacks that metric
            target_emb = dict(self.pool.entry(chosen.target).embeddings)
        self._measure(report, image, chosen.patch, face, lm68, chosen.verdict, source_emb, target_emb)
        return chosen.patch, self._close(report, t_start)

    def _measure(
        self, report: FaceReport, image: np.ndarray, patch: FacePatch, face: Any, lm68: np.ndarray | None,
        verdict: Verdict, source_emb: dict[str, np.ndarray], target_emb: Mapping[str, np.ndarray],
    ) -> None:
        if not self.measure:
            return
        t0 = time.perf_counter()
        # a patch writes only inside its box, so measuring in a margin around it equals the whole photo
        x1, y1, x2, y2 = patch.box
        h, w = image.shape[:2]
        m = max(x2 - x1, y2 - y1) // 4
        win = (max(0, x1 - m), max(0, y1 - m), min(w, x2 + m), min(h, y2 + m))
        crop = image[win[1] : win[3], win[0] : win[2]]
        result = patch.apply(image)[win[1] : win[3], win[0] : win[2]]
        fbox = np.asarray(face.boxes[0], dtype=np.float64) - (win[0], win[1], win[0], win[1])
        report.metrics = fake_metrics(
            crop, result, fbox, patch.full_mask()[win[1] : win[3], win[0] : win[2]],
            source_landmarks=lm68, result_landmarks=verdict.landmarks68,
            result_embeddings=verdict.embeddings, source_embeddings=source_emb,
            target_embeddings=target_emb, recognizers=self.pipeline.recognizers,
        )
        report.timings_ms["metrics"] = (time.perf_counter() - t0) * 1000.0

    @staticmethod
    def _finish(report: FaceReport, fallback: str, target: str | None, reason: str, *, by: str) -> None:
        report.fallback = fallback  # type: ignore[assignment]
        report.target = target
        report.reason = reason
        report.verified = True
        report.verified_by = by

    @staticmethod
    def _close(report: FaceReport, t_start: float) -> FaceReport:
        report.timings_ms["total"] = (time.perf_counter() - t_start) * 1000.0
        return report


def shape_residual(source: np.ndarray, target: np.ndarray) -> float:
    """RMS distance of the target's 68 points, similarity-aligned onto the source's, over the source's
    inter-ocular distance: near 0.05 for two frontal neutral faces, larger with pose or expression changes."""
    s, t = lmk.as_points(source), lmk.as_points(target)
    aligned = lmk.transform(lmk.similarity_fit(t, s), t)
    return float(np.sqrt(((aligned - s) ** 2).sum(1).mean()) / max(lmk.interocular(s), 1e-6))
