"""Run the evaluation over a list of photos: anonymize each face under every configuration, then measure it.

Configurations are `MODE/STRATEGY` with strategy `furthest` or `random` (the pool query, paper Eq. 1) and mode
- `single`: the first pool target that fits the face, swapped once, with no verification (closest to the
  paper, where one SimSwap result per face is evaluated);
- `verified`: `FakeGenerator`'s per-face path (`fake_face`, each face alone: the photo-level rules of
  `patches` are the `kept` figures): every recognizer verifies, retries, and falls back (so the verifying
  recognizers' source-vs-result accuracy is ~0 by construction);
- `holdout`: `FakeGenerator` verifying with one recognizer only (`holdout_verifier`, default dlib): the other
  recognizers never saw the fakes and measure how the protection transfers;
- `given`: results read from a folder (`--anon DIR`) made by any tool; no target is known.

Two more figures per photo (modes that are not configurations), measured by `mfmc.eval.photos`:
- `kept`: the generator as shipped on the whole photo (unique fakes), then gender and expression kept by the
  pipeline's classifiers, facial hair added, faces still detected, fakes matching each other or another real
  face (issue 11);
- `loo`: leave-one-out transfer: for each recognizer, the generator verifies with all the others and the one
  left out counts the swapped fakes it still matches to their source.

Recognition of a result follows an attacker: faces are detected again on the anonymized photo; a source face
whose box a detection overlaps (IoU ≥ 0.5) is embedded from that detection, an undetected one at its source box
(the stricter choice for us: the recognizer gets the face whether or not a detector would find it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mfmc.errors import InvalidImageError, InvalidInputError, MfmcError
from mfmc.eval import metrics as m
from mfmc.eval.dataset import Photo
from mfmc.pool.query import Strategy

if TYPE_CHECKING:
    from mfmc.eval.photos import PhotoOutcome
    from mfmc.pool import TargetPool

MODES = ("single", "verified", "holdout")
FIGURES = ("kept", "loo")  # per-photo figures of mfmc.eval.photos, not anonymization configurations
STRATEGIES = (Strategy.FURTHEST, Strategy.RANDOM)
DETECTION_IOU = 0.5


@dataclass
class EvalOptions:
    strategies: tuple[str, ...] = STRATEGIES
    modes: tuple[str, ...] = MODES
    seed: int = 0
    max_side: int = 1600  # photos are downscaled to this longest side first (CPU time)
    holdout_verifier: str = "dlib"
    exclude_same_person: bool = True  # drop pool targets made from the evaluated person (openpeople sets)
    samples: int = 6  # source/target/result crops kept for the sample sheet
    similarity_sources: int = 5  # faces for the similarity-metric comparison (paper Fig. 6)


@dataclass
class FaceRecord:
    photo: str
    index: int
    identity: str | None
    box: list[float]
    embeddings: dict[str, np.ndarray]
    landmarks68: np.ndarray | None
    age: float | None
    gender: str | None
    aligned: np.ndarray | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    result_embeddings: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def same_person_targets(pool: TargetPool, identity: str | None) -> set[str]:
    """Pool ids whose provenance names `identity` (openpeople faces and morphs such as `P001+P004`)."""
    if not identity:
        return set()
    out = set()
    for rec in pool.index.records:
        person = str(rec.get("source", {}).get("person", ""))
        if identity in person.split("+"):
            out.add(rec["id"])
    return out


class Evaluation:
    """Anonymizes and measures; `run()` returns the raw per-face records and per-photo data for the report."""

    def __init__(self, pipeline: Any, pool: TargetPool, options: EvalOptions | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.pipe = pipeline
        self.pool = pool
        self.opt = options or EvalOptions()
        self.progress = progress
        self.recognizers = list(pipeline.recognizers)
        for s in self.opt.strategies:
            if s not in STRATEGIES:
                raise InvalidInputError(f"unknown strategy `{s}`", help="use `furthest`, `random` or `both`")
        if "holdout" in self.opt.modes and self.opt.holdout_verifier not in self.recognizers:
            raise InvalidInputError(f"unknown recognizer `{self.opt.holdout_verifier}`",
                                    help=f"available: {', '.join(self.recognizers)}")
        self.faces: list[FaceRecord] = []
        self.photos: list[dict[str, Any]] = []
        self.samples: dict[str, list[dict[str, np.ndarray]]] = {}
        self.similarity: list[dict[str, Any]] = []
        self.kept: list[PhotoOutcome] = []  # `kept`: per photo, without its output image
        self.transfer: dict[str, list[int]] = {}  # `loo`: left-out recognizer -> [swapped, re-identified]

    # -- configurations ------------------------------------------------------------------------------------
    def configs(self, given: bool) -> list[str]:
        if given:
            return ["given/given"]
        return [f"{mode}/{s}" for mode in self.opt.modes if mode in MODES for s in self.opt.strategies]

    def _generator(self, mode: str, strategy: str, pool: TargetPool) -> Any:
        from mfmc.swap import FakeGenerator

        recs = [self.opt.holdout_verifier] if mode == "holdout" else None
        return FakeGenerator(self.pipe, pool, strategy=strategy, recognizers=recs, measure=False)

    # -- main loop -----------------------------------------------------------------------------------------
    def run(self, photos: list[Photo], anon_dir: Path | None = None) -> None:
        from mfmc.vision import load_image

        for n, photo in enumerate(photos, 1):
            if self.progress:
                self.progress(f"{photo.name} ({n}/{len(photos)})")
            try:
                image = self._fit(load_image(photo.path))
            except InvalidImageError as err:
                self.photos.append({"photo": photo.name, "error": err.message})
                continue
            given = None
            if anon_dir is not None:
                given = self._given(anon_dir / photo.name, image.shape)
            self._photo(photo, image, given)

    def _fit(self, image: np.ndarray) -> np.ndarray:
        import cv2

        scale = self.opt.max_side / max(image.shape[:2])
        if scale >= 1:
            return image
        return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)

    def _given(self, path: Path, shape: tuple[int, ...]) -> np.ndarray:
        import cv2

        from mfmc.vision import load_image

        if not path.is_file():
            raise InvalidInputError(f"no anonymized photo `{path}`",
                                    help="`--anon DIR` must hold a result for every input, under the same name")
        out = load_image(path)
        if out.shape[:2] != shape[:2]:  # inputs are downscaled the same way
            out = cv2.resize(out, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
        return out

    def _photo(self, photo: Photo, image: np.ndarray, given: np.ndarray | None) -> None:
        from mfmc.pool import Probe

        t0 = time.perf_counter()
        detected = self.pipe.detect(image)
        t1 = time.perf_counter()
        faces = self.pipe.analyze(image, detected)
        t2 = time.perf_counter()
        info: dict[str, Any] = {"photo": photo.name, "identity": photo.identity, "size": list(image.shape[:2]),
                                "faces": len(faces), "detect_ms": (t1 - t0) * 1e3, "analyze_ms": (t2 - t1) * 1e3,
                                "configs": {}}
        self.photos.append(info)
        if not len(faces):
            return
        first = len(self.faces)
        for i in range(len(faces)):
            aligned = None
            with contextlib.suppress(MfmcError):
                aligned = Probe.from_faces(faces, image, index=i).aligned
            self.faces.append(FaceRecord(
                photo.name, i, photo.identity, [float(v) for v in faces.boxes[i]],
                {r: np.asarray(faces.embeddings[r][i], np.float32) for r in self.recognizers},
                None if faces.landmarks68 is None else np.asarray(faces.landmarks68[i], np.float64),
                None if faces.age is None else float(faces.age[i]),
                None if faces.gender is None else str(faces.gender[i]), aligned))
        records = self.faces[first:]
        pool = self.pool
        if self.opt.exclude_same_person and photo.identity and given is None:
            pool = self.pool.excluding(same_person_targets(self.pool, photo.identity))
        for i, rec in enumerate(records):
            if len(self.similarity) < self.opt.similarity_sources:
                self.similarity.append(self._similarity(pool, image, faces, i, rec))
        for key in self.configs(given is not None):
            mode, strategy = key.split("/")
            t = time.perf_counter()
            if given is not None:
                out, per_face = given, [{"fallback": "unknown", "target": None, "mask": None} for _ in records]
            else:
                out, per_face = self._anonymize(mode, strategy, pool, image, faces)
            t_gen = time.perf_counter()
            self._measure(key, image, out, faces, records, per_face)
            info["configs"][key] = {"generate_ms": (t_gen - t) * 1e3, "measure_ms": (time.perf_counter() - t_gen) * 1e3}
            mask = np.zeros(image.shape[:2], bool)
            have_masks = all(p["mask"] is not None for p in per_face)
            for p in per_face:
                if p["mask"] is not None:
                    mask |= p["mask"]
            info["configs"][key]["changed_outside_masks"] = (
                m.changed_outside(image, out, mask) if have_masks else None)
        if given is None:
            self._figures(photo, image, pool)

    def _figures(self, photo: Photo, image: np.ndarray, pool: TargetPool) -> None:
        """`kept` and `loo` (mfmc.eval.photos) on this photo, with the pool the configurations used."""
        from mfmc.eval.photos import evaluate_photo, transfer
        from mfmc.swap import FakeGenerator

        if "kept" in self.opt.modes:
            gen = FakeGenerator(self.pipe, pool)
            outcome = evaluate_photo(gen, self.pipe, photo.name, image, seed=self.opt.seed)
            self.kept.append(dataclasses.replace(outcome, output=np.zeros((0, 0, 3), np.uint8)))
        if "loo" in self.opt.modes and len(self.recognizers) > 1:
            for left in self.recognizers:
                others = [r for r in self.recognizers if r != left]
                gen = FakeGenerator(self.pipe, pool, recognizers=others, measure=False)
                swapped, matched = transfer(gen, self.pipe, left, image, seed=self.opt.seed)
                row = self.transfer.setdefault(left, [0, 0])
                row[0] += swapped
                row[1] += matched

    def _anonymize(self, mode: str, strategy: str, pool: TargetPool, image: np.ndarray,
                   faces: Any) -> tuple[np.ndarray, list[dict[str, Any]]]:
        gen = self._generator(mode, strategy, pool)
        out = image.copy()
        per_face: list[dict[str, Any]] = []
        for i in range(len(faces)):
            if mode == "single":
                patch, rep = self._single(gen, image, faces, i)
            else:
                patch, report = gen.fake_face(image, faces, i, seed=self.opt.seed)
                rep = {"target": report.target, "fallback": report.fallback, "attempts": len(report.attempts),
                       "timings_ms": dict(report.timings_ms)}
            rep["mask"] = None if patch is None else patch.full_mask()
            if patch is not None:
                out = patch.apply(out)
            per_face.append(rep)
        return out, per_face

    def _single(self, gen: Any, image: np.ndarray, faces: Any, i: int) -> tuple[Any, dict[str, Any]]:
        """One swap of the first fitting target, unverified (the paper's setting)."""
        from mfmc.swap.generate import shape_residual

        face = faces[i]
        t0 = time.perf_counter()
        rep: dict[str, Any] = {"target": None, "fallback": "none", "attempts": 1, "timings_ms": {}}
        if face.landmarks68 is None:
            rep["fallback"] = "unswapped"
            return None, rep
        lm = np.asarray(face.landmarks68[0], np.float64)
        cands = gen.pool.query(face, strategy=gen.strategy, k=gen.candidates, seed=self.opt.seed)
        if not cands:
            cands = gen.pool.query(face, strategy=gen.strategy, k=gen.candidates, seed=self.opt.seed,
                                   same_group=False, compatible=False)
        if not cands:
            rep["fallback"] = "unswapped"
            return None, rep
        chosen = cands[0]
        for c in cands:
            if shape_residual(lm, np.asarray(gen.pool.entry(c.id).landmarks68, np.float64)) <= gen.max_shape_residual:
                chosen = c
                break
        t1 = time.perf_counter()
        t_img, t_face = gen.pool.target(chosen.id)
        result = gen.swapper.swap(image, lm, t_img, np.asarray(t_face.landmarks68[0]), alpha=gen.alpha)
        rep["target"] = chosen.id
        t2 = time.perf_counter()
        rep["timings_ms"] = {"query": (t1 - t0) * 1e3, "swap": (t2 - t1) * 1e3, "total": (t2 - t0) * 1e3}
        return result.patch, rep

    def _similarity(self, pool: TargetPool, image: np.ndarray, faces: Any, i: int, rec: FaceRecord) -> dict[str, Any]:
        """The furthest target of one source under each dissimilarity (paper Fig. 6: no randomness, no
        expression filter, same age/gender group), with its embedding distances to the source."""
        out: dict[str, Any] = {"photo": rec.photo, "index": rec.index, "aligned": rec.aligned, "metrics": {}}
        choices = [(f"{r} embedding", "l2" if self.pipe.recognizers[r].metric == "euclidean" else "cosine", r)
                   for r in self.recognizers if r in pool.recognizers]
        choices += [("RMSE", "rmse", None), ("SSIM", "ssim", None), ("PSNR", "psnr", None)]
        for label, metric, r in choices:
            try:
                found = pool.query(faces[i], strategy="furthest", metric=metric, recognizer=r, k=1,
                                   compatible=False, image=image if r is None else None, seed=self.opt.seed)
            except MfmcError as err:
                out["metrics"][label] = {"error": err.message}
                continue
            if not found:
                continue
            c = found[0]
            t_emb = pool.entry(c.id).embeddings
            out["metrics"][label] = {
                "target": c.id, "value": c.value,
                "embedding_distance": {n: float(self.pipe.recognizers[n].distance(np.asarray(t_emb[n]),
                                                                                 rec.embeddings[n]))
                                       for n in self.recognizers if n in t_emb},
            }
        return out

    # -- measurement ---------------------------------------------------------------------------------------
    def _measure(self, key: str, image: np.ndarray, out: np.ndarray, faces: Any, records: list[FaceRecord],
                 per_face: list[dict[str, Any]]) -> None:
        found = self.pipe.detect(out)
        for i, (rec, p) in enumerate(zip(records, per_face, strict=True)):
            box = faces.boxes[i]
            best, best_iou = -1, 0.0
            for j in range(len(found)):
                v = m.iou(box, found.boxes[j])
                if v > best_iou:
                    best, best_iou = j, v
            detected = best_iou >= DETECTION_IOU
            probe = found[best] if detected else faces[i].replace(embeddings={}, landmarks68=None)
            res = self.pipe.analyze(out, probe, attributes=False)
            emb = {r: np.asarray(res.embeddings[r][0], np.float32) for r in self.recognizers}
            rec.result_embeddings[key] = emb
            d_res = {r: float(self.pipe.recognizers[r].distance(emb[r], rec.embeddings[r])) for r in self.recognizers}
            d_tgt: dict[str, float] = {}
            if p.get("target") and p["target"] in self.pool.index.ids:  # not a recombined (`mix:…`) target
                t_emb = self.pool.entry(p["target"]).embeddings
                d_tgt = {r: float(self.pipe.recognizers[r].distance(np.asarray(t_emb[r]), rec.embeddings[r]))
                         for r in self.recognizers if r in t_emb}
            a, b = m.box_crop(image, box), m.box_crop(out, box)
            lm_err = None
            if rec.landmarks68 is not None and res.landmarks68 is not None:
                lm_err = m.landmark_error(rec.landmarks68, np.asarray(res.landmarks68[0], np.float64))
            p_val = m.psnr(a, b)
            rec.results[key] = {
                "target": p.get("target"), "fallback": p.get("fallback"), "attempts": p.get("attempts"),
                "detected": bool(detected), "iou": round(best_iou, 3),
                "distance_to_source": d_res, "target_to_source": d_tgt,
                "psnr": None if not np.isfinite(p_val) else p_val,
                "ssim": m.ssim(a, b) if min(a.shape[:2]) >= 11 else None,
                "rmse": m.rmse(a, b), "landmark_error": lm_err,
                "timings_ms": p.get("timings_ms", {}),
            }
            kept = self.samples.setdefault(key, [])
            if len(kept) < self.opt.samples and rec.aligned is not None:
                kept.append(self._sample(image, out, faces, i, p.get("target")))

    def _sample(self, image: np.ndarray, out: np.ndarray, faces: Any, i: int, target: str | None) -> dict[str, Any]:
        from mfmc.pool import Probe

        src = Probe.from_faces(faces, image, index=i).aligned
        res = Probe.from_faces(faces, out, index=i).aligned
        # a recombined target (`mix:…`) has no stored crop: the sheet shows none for it
        tgt = self.pool.crop_image(target) if target and target in self.pool.index.ids else None
        return {"source": src, "target": tgt, "result": res}
