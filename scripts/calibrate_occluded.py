"""Same-person thresholds of the recognizers under an occlusion: a synthetic face mask, dark lenses or both painted
flat grey on every face (issue 11: verifying a masked or sunglassed face on what is visible; measured, not adopted,
docs/swap.md "Verifying what is visible").

    python scripts/calibrate_occluded.py [--real PHOTO ...] [--json OUT]

Faces: the openpeople people's photos (`mfmc.vision.calibrate.openpeople_photos`, faces turned ≤ 40°; 10 people,
same- and different-person pairs), and optionally real photos (`--real`: every pair of faces ≥ 40 px within one
photo is two different people). For each recognizer and occlusion (none, mask, lenses) it prints the distance
distributions, the threshold under the occlusion (the smallest distance under which as many same-person pairs fall
as under the recognizer's own threshold without it, never below the balanced-accuracy optimum), its true-match and
false-match rates there, the false-match rate on the real pairs at it, and the share of same- and different-person
pairs beyond every recognizer's bar (threshold + margin). Deterministic (no sampling).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from mfmc.swap import landmarks as lmk
from mfmc.vision import FacePipeline, Faces, load_image
from mfmc.vision.calibrate import openpeople_photos

CONDITIONS = ("none", "mask", "lenses", "mask+lenses")
GREY = 128  # the flat value painted over the occluded region
GROW = 3  # px the painted polygons are grown by (a swapper's feathered alpha edge around a kept region)


def synthetic(landmarks68: np.ndarray, occlusion: str) -> list[np.ndarray]:
    """Polygons of a synthetic occlusion on a face: a mask from the jaw (points 1-15) up to the nose bridge
    (between points 28 and 29), as `accessories.face_mask` outlines a real one, two lenses (ellipses around each
    eye, 0.45 x 0.32 of the eye distance), or both."""
    pts = lmk.as_points(landmarks68)
    out: list[np.ndarray] = []
    if "mask" in occlusion:
        out.append(np.vstack([pts[1:16], ((pts[28] + pts[29]) / 2.0)[None]]))
    if "lenses" in occlusion:
        right, left = pts[lmk.RIGHT_EYE].mean(0), pts[lmk.LEFT_EYE].mean(0)
        d = float(np.linalg.norm(left - right))
        angle = float(np.degrees(np.arctan2(left[1] - right[1], left[0] - right[0])))
        for c in (right, left):
            out.append(cv2.ellipse2Poly((round(float(c[0])), round(float(c[1]))),
                                        (max(int(0.45 * d), 1), max(int(0.32 * d), 1)), round(angle), 0, 360,
                                        10).astype(np.float64))
    return out


def neutralised(image: np.ndarray, polygons: list[np.ndarray], grow: int = GROW) -> np.ndarray:
    """A copy of `image` with `polygons` (grown by `grow` px) painted flat `GREY`."""
    mask = np.zeros(image.shape[:2], np.uint8)
    for poly in polygons:
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32).reshape(-1, 1, 2)], 1)
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    out = image.copy()
    out[mask > 0] = GREY
    return out


def embed_all(pipe: FacePipeline, image: np.ndarray, faces: Faces) -> dict[str, dict[str, np.ndarray]]:
    """Per condition and recognizer, (N, D) embeddings of `faces` with the condition drawn on every face."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for cond in CONDITIONS:
        img = image
        if cond != "none":
            polys = [p for i in range(len(faces)) for p in synthetic(faces.landmarks68[i], cond)]
            img = neutralised(image, polys)
        out[cond] = {n: np.asarray(rec.embed(img, faces), np.float32) for n, rec in pipe.recognizers.items()}
    return out


def collect(pipe: FacePipeline, photos: list[tuple[str, Path]], max_yaw: float, min_side: float,
            max_side: int = 1600) -> tuple[list[str], dict[str, dict[str, np.ndarray]]]:
    labels: list[str] = []
    parts: dict[str, dict[str, list[np.ndarray]]] = {c: {n: [] for n in pipe.recognizers} for c in CONDITIONS}
    for label, path in photos:
        image = load_image(path)
        scale = max_side / max(image.shape[:2])
        if scale < 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        faces = pipe.analyze(image, attributes=False, recognizers=[])
        if not len(faces):
            continue
        side = np.minimum(faces.boxes[:, 2] - faces.boxes[:, 0], faces.boxes[:, 3] - faces.boxes[:, 1])
        keep = (np.abs(faces.pose[:, 0]) <= max_yaw) & (side >= min_side)
        faces = faces[keep]
        if not len(faces):
            continue
        labels += [label if label else f"{path.name}#{i}" for i in range(len(faces))]
        for cond, per in embed_all(pipe, image, faces).items():
            for n, e in per.items():
                parts[cond][n].append(e)
    return labels, {c: {n: np.concatenate(v) for n, v in per.items()} for c, per in parts.items()}


def rates(dist: np.ndarray, same: np.ndarray, t: float) -> tuple[float, float]:
    """(true-match rate, false-match rate) at threshold `t` over the pairs of `dist` (same: a same-person pair)."""
    return float((dist[same] < t).mean()) if same.any() else float("nan"), \
        float((dist[~same] < t).mean()) if (~same).any() else float("nan")


def best_threshold(dist: np.ndarray, same: np.ndarray) -> float:
    candidates = np.unique(np.round(dist, 3))
    tmr = np.array([(dist[same] < t).mean() for t in candidates])
    tnmr = np.array([(dist[~same] >= t).mean() for t in candidates])
    return float(candidates[int(np.argmax((tmr + tnmr) / 2))])


def matched_threshold(dist: np.ndarray, same: np.ndarray, tmr: float) -> float:
    """The smallest threshold under which at least `tmr` of the same-person pairs fall (the unoccluded
    threshold's true-match rate: a fake beyond it is as far from its source as a same-person pair is as rarely
    as without the occlusion)."""
    return float(np.quantile(dist[same], tmr, method="higher")) + 1e-3


def pairs(pipe: FacePipeline, name: str, emb: np.ndarray, labels: list[str],
          photo: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Upper-triangle distances and same-person flags; with `photo`, only pairs within one photo."""
    lab = np.asarray(labels)
    d = np.asarray(pipe.recognizers[name].pairwise(emb, emb), np.float64)
    upper = np.triu_indices(len(lab), 1)
    same = (lab[:, None] == lab[None, :])[upper]
    d = d[upper]
    if photo is not None:
        ph = np.asarray(photo)
        within = (ph[:, None] == ph[None, :])[upper]
        d, same = d[within], same[within]
    return d, same


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", nargs="*", default=[], type=Path)
    parser.add_argument("--max-yaw", type=float, default=40.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--margin", type=float, default=0.05, help="the verifier's margin over each threshold")
    args = parser.parse_args(argv)
    pipe = FacePipeline.default()
    labels, emb = collect(pipe, openpeople_photos(), args.max_yaw, 0.0)
    real_labels, real_emb = collect(pipe, [("", p) for p in args.real], 60.0, 40.0) if args.real else ([], {})
    results: dict[str, dict[str, dict[str, float]]] = {}
    target_tmr = {}
    for name in pipe.recognizers:
        d, same = pairs(pipe, name, emb["none"][name], labels)
        target_tmr[name] = rates(d, same, float(pipe.recognizers[name].threshold))[0]
    for cond in CONDITIONS:
        passing_same, passing_diff = None, None
        for name in pipe.recognizers:
            d, same = pairs(pipe, name, emb[cond][name], labels)
            best = best_threshold(d, same)
            t = float(pipe.recognizers[name].threshold) if cond == "none" else \
                round(max(best, matched_threshold(d, same, target_tmr[name])), 3)
            tmr, fmr = rates(d, same, t)
            beyond = d > t + args.margin  # pairs a fake would pass this recognizer's bar at
            passing_same = beyond[same] if passing_same is None else passing_same & beyond[same]
            passing_diff = beyond[~same] if passing_diff is None else passing_diff & beyond[~same]
            row = {"threshold": t, "balanced_threshold": best, "true_match": tmr, "false_match": fmr,
                   "same_median": float(np.median(d[same])), "same_p95": float(np.percentile(d[same], 95)),
                   "different_p5": float(np.percentile(d[~same], 5)),
                   "different_median": float(np.median(d[~same])),
                   "at_recognizer_threshold": rates(d, same, float(pipe.recognizers[name].threshold))[1]}
            if real_labels:
                rd, _ = pairs(pipe, name, real_emb[cond][name], real_labels,
                              [lab.split("#")[0] for lab in real_labels])
                row["real_pairs"] = len(rd)
                row["real_false_match"] = float((rd < t).mean())
                row["real_min"] = float(rd.min())
            results.setdefault(cond, {})[name] = row
            print(f"{cond:11s} {name:14s} t {t:.3f} (balanced {best:.3f})  TMR {tmr:.3f}  FMR {fmr:.3f}"
                  f"  same med {row['same_median']:.3f} p95 {row['same_p95']:.3f}"
                  f"  diff p5 {row['different_p5']:.3f} med {row['different_median']:.3f}"
                  + (f"  real FMR {row['real_false_match']:.3f} of {row['real_pairs']} (min {row['real_min']:.3f})"
                     if real_labels else ""))
        print(f"{cond:11s} pairs beyond every bar (threshold + {args.margin}): same-person "
              f"{passing_same.mean():.4f} ({passing_same.sum()}), different-person {passing_diff.mean():.3f}")
    print(f"{len(labels)} openpeople faces of {len(set(labels))} people; {len(real_labels)} real faces")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
