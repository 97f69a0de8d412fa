"""Measure same-person thresholds of the recognizers on identity-labelled faces from the `openpeople` package.

    python -m mfmc.vision.calibrate [--max-yaw 40] [--json] [--evaluation faceres,…]

openpeople (MIT, a dev dependency) ships 10 synthetic people, each with a studio portrait, a selfie, two
full-body shots, a 4-view character sheet and a 4×4 sheet of expressions. Every face the default detector
finds is labelled with its person, faces turned more than `--max-yaw` degrees (68-point pose) are left out
(no frontal recognizer is meant for profiles), and all same-person and different-person pairs are scored.
`--evaluation` adds evaluation-only recognizers (`EVALUATION_RECOGNIZERS`, e.g. faceres) to the pipeline's.
For each recognizer this prints the distance distributions, the error rates at its current threshold, and the
threshold that maximises balanced accuracy (mean of the true-match and true-non-match rates).

Caveat, also in docs/faces.md: 10 identities from one image generator, many faces per sheet generated together;
the numbers are a sanity check of the operating point, not a benchmark such as LFW.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from mfmc.vision.images import load_image
from mfmc.vision.pipeline import FacePipeline
from mfmc.vision.registry import package_dir

ASSETS = ("studio_portrait", "amateur_selfie", "studio_posture", "amateur_posture", "character_sheet", "emotions_sheet")


def openpeople_photos() -> list[tuple[str, Path]]:
    """(person id, photo path) for every asset of every curated openpeople person."""
    folder = package_dir("openpeople")
    if folder is None:
        raise SystemExit("openpeople is not installed: pip install openpeople==0.1.2")
    photos = []
    for person in sorted((folder / "data" / "curated").iterdir()):
        for asset in ASSETS:
            path = person / "assets" / f"{asset}.jpg"
            if path.is_file():
                photos.append((person.name, path))
    return photos


def collect(pipe: FacePipeline, max_yaw: float, max_side: int = 1600) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    import cv2

    labels: list[str] = []
    embeddings: dict[str, list[np.ndarray]] = {name: [] for name in pipe.recognizers}
    for person, path in openpeople_photos():
        image = load_image(path)
        scale = max_side / max(image.shape[:2])
        if scale < 1:  # the sheets are 2400 px wide; faces stay > 100 px at 1600
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        faces = pipe.analyze(image, attributes=False)
        keep = np.abs(faces.pose[:, 0]) <= max_yaw if len(faces) else np.zeros(0, bool)
        faces = faces[keep]
        labels += [person] * len(faces)
        for name in embeddings:
            embeddings[name].append(faces.embeddings[name])
    return np.asarray(labels), {k: np.concatenate(v) for k, v in embeddings.items()}


def evaluate(labels: np.ndarray, emb: np.ndarray, recognizer: Any) -> dict[str, Any]:
    dist = recognizer.pairwise(emb, emb)
    upper = np.triu_indices(len(labels), 1)
    same = (labels[:, None] == labels[None, :])[upper]
    d = dist[upper]
    pos, neg = d[same], d[~same]
    candidates = np.unique(np.round(d, 3))
    tmr = np.array([(pos < t).mean() for t in candidates])
    tnmr = np.array([(neg >= t).mean() for t in candidates])
    best = int(np.argmax((tmr + tnmr) / 2))
    t = recognizer.threshold
    return {
        "faces": len(labels),
        "identities": len(set(labels.tolist())),
        "same_pairs": int(same.sum()),
        "different_pairs": int((~same).sum()),
        "same_distance": _stats(pos),
        "different_distance": _stats(neg),
        "threshold": t,
        "false_non_match_rate": float((pos >= t).mean()),
        "false_match_rate": float((neg < t).mean()),
        "best_threshold": float(candidates[best]),
        "best_balanced_accuracy": float((tmr[best] + tnmr[best]) / 2),
        "eer_like_threshold": float(candidates[int(np.argmin(np.abs(tmr - tnmr)))]),
    }


def _stats(values: np.ndarray) -> dict[str, float]:
    q = np.percentile(values, [1, 5, 50, 95, 99])
    return {"min": float(values.min()), "p1": float(q[0]), "p5": float(q[1]), "median": float(q[2]),
            "p95": float(q[3]), "p99": float(q[4]), "max": float(values.max())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-yaw", type=float, default=40.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--evaluation", default="", help="evaluation-only recognizers to add, NAME[,NAME…]")
    args = parser.parse_args(argv)
    pipe = FacePipeline.embedded()
    if args.evaluation:
        from mfmc.vision.recognition import EVALUATION_RECOGNIZERS

        names = [n for n in args.evaluation.split(",") if n]
        unknown = sorted(set(names) - set(EVALUATION_RECOGNIZERS))
        if unknown:
            parser.error(f"--evaluation: unknown {', '.join(unknown)} (known: {', '.join(EVALUATION_RECOGNIZERS)})")
        pipe = pipe.with_recognizers({n: EVALUATION_RECOGNIZERS[n] for n in names})
    labels, embeddings = collect(pipe, args.max_yaw)
    results = {name: evaluate(labels, emb, pipe.recognizers[name]) for name, emb in embeddings.items()}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, r in results.items():
        print(f"{name}: {r['faces']} faces of {r['identities']} people, {r['same_pairs']} same / "
              f"{r['different_pairs']} different pairs")
        same = r["same_distance"]
        print(f"  same-person distance   median {same['median']:.3f}  p95 {same['p95']:.3f}"
              f"  p99 {same['p99']:.3f}  max {same['max']:.3f}")
        other = r["different_distance"]
        print(f"  other-person distance  min {other['min']:.3f}  p1 {other['p1']:.3f}"
              f"  p5 {other['p5']:.3f}  median {other['median']:.3f}")
        print(f"  at threshold {r['threshold']}: false non-match {r['false_non_match_rate']:.3%}, "
              f"false match {r['false_match_rate']:.3%}")
        print(f"  best balanced accuracy {r['best_balanced_accuracy']:.3%} at {r['best_threshold']:.3f}; "
              f"equal-error threshold {r['eer_like_threshold']:.3f}")


if __name__ == "__main__":
    main()
