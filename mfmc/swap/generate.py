"""`FakeGenerator`: query targets, swap, verify, retry, and fail closed with verified fallbacks."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mfmc.errors import GenerationError, MfmcError
from mfmc.swap.base import Swapper, create_swapper
from mfmc.swap.metrics import fake_metrics
from mfmc.swap.obfuscate import face_polygon, fill, pixelate
from mfmc.swap.patch import FacePatch
from mfmc.swap.report import Attempt, FaceReport
from mfmc.swap.verify import Verdict, Verifier

# Recognizers cannot embed faces this small reliably, so a swap there could not be verified (pixels, min side).
MIN_FACE = 20
# A training-free swap moves the embedding most of the way to the target (design notes §6, measured again
# in docs/swap.md), so a target already closer than bar / SWAP_REACH to the source rarely passes.
SWAP_REACH = 0.9


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
        """Ranked candidates; relaxes the age/gender group, then the expression filters, before giving up.

        The swap keeps the source's open mouth and eyes itself, so only pose must match.
        """
        from mfmc.pool import Compatibility

        tries: list[dict[str, Any]] = [
            {},
            {"same_group": False},
            {"same_group": False, "compatibility": Compatibility(match_mouth=False, avoid_closed_eyes=False)},
        ]
        for i, extra in enumerate(tries):
            found = self.pool.query(face, strategy=self.strategy, k=self.candidates, seed=seed, **extra)
            if found:
                if i:
                    report.notes.append(f"pool query relaxed: {extra}")
                return self._rerank(face, found)
        return []

    def _rerank(self, face: Any, found: list[Any]) -> list[Any]:
        """Put first the candidates whose own embeddings are far enough from the source to pass after a swap,
        keeping the pool's order otherwise (cheap: pool entries hold their embeddings)."""
        source = face.embeddings or {}

        def hopeless(c: Any) -> bool:
            try:
                emb = self.pool.entry(c.id).embeddings
            except Exception:  # an entry without embeddings is simply not reranked
                return False
            for name in self.verifier.names:
                if name in emb and name in source:
                    d = float(self.pipeline.recognizers[name].distance(emb[name], source[name][0]))
                    if d * SWAP_REACH <= self.verifier.bar(name):
                        return True
            return False

        return sorted(found, key=hopeless)  # stable: pool order within each group

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
        try:
            target_emb = dict(self.pool.entry(chosen.target).embeddings)
        except Exception:
            pass
        self._measure(report, image, chosen.patch, face, lm68, chosen.verdict, source_emb, target_emb)
        return chosen.patch, self._close(report, t_start)

    def _measure(
        self, report: FaceReport, image: np.ndarray, patch: FacePatch, face: Any, lm68: np.ndarray | None,
        verdict: Verdict, source_emb: dict[str, np.ndarray], target_emb: Mapping[str, np.ndarray],
    ) -> None:
        if not self.measure:
            return
        t0 = time.perf_counter()
        report.metrics = fake_metrics(
            image, patch.apply(image), face.boxes[0], patch.full_mask(),
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

