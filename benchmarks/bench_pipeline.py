"""Whole-pipeline time per face and per photo: detect, analyze, query, swap, verify (CPU, embedded models).

    python benchmarks/bench_pipeline.py [DIR] [--limit 6] [--strategy random] [--pool PATH] [--json]

DIR defaults to the identity-labelled openpeople set written to a temp folder (`mfmc.eval.dataset`). Each photo
is downscaled to `--max-side`, detected and analyzed once (timed), then every face is faked by `FakeGenerator`
as shipped (all recognizers verify); the generator's own per-face timings split the rest into pool query, swap
and verification (which includes retries). Models are loaded before timing starts (one warm-up photo).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mfmc.eval.dataset import discover, openpeople_set
from mfmc.pool import TargetPool
from mfmc.swap import FakeGenerator
from mfmc.vision import FacePipeline, load_image


def fit(image: np.ndarray, side: int) -> np.ndarray:
    s = side / max(image.shape[:2])
    return image if s >= 1 else cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"n": len(values), "median": statistics.median(values), "mean": statistics.fmean(values),
            "max": max(values)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", type=Path)
    ap.add_argument("--limit", type=int, default=6)
    ap.add_argument("--strategy", default="random", choices=["random", "furthest"])
    ap.add_argument("--pool", type=Path, default=None)
    ap.add_argument("--max-side", type=int, default=1600)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    folder = args.folder
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="mfmc-bench-"))
        openpeople_set(folder)
    photos = discover(folder, args.limit)
    pipe = FacePipeline.default()
    pool = TargetPool.load(args.pool) if args.pool else TargetPool.default()
    gen = FakeGenerator(pipe, pool, strategy=args.strategy, measure=False)
    warm = fit(load_image(photos[0].path), args.max_side)
    gen.anonymize(warm, pipe.analyze(warm)[:1])  # load every model before timing

    per_face: dict[str, list[float]] = {k: [] for k in ("detect", "analyze", "query", "swap", "verify", "total")}
    per_photo: list[float] = []
    fallbacks: dict[str, int] = {}
    for photo in photos:
        image = fit(load_image(photo.path), args.max_side)
        t0 = time.perf_counter()
        faces = pipe.detect(image)
        t1 = time.perf_counter()
        faces = pipe.analyze(image, faces)
        t2 = time.perf_counter()
        _, reports = gen.anonymize(image, faces, seed=0)
        t3 = time.perf_counter()
        per_photo.append((t3 - t0) * 1e3)
        n = max(len(faces), 1)
        for r in reports:
            per_face["detect"].append((t1 - t0) * 1e3 / n)
            per_face["analyze"].append((t2 - t1) * 1e3 / n)
            for k in ("query", "swap", "verify"):
                per_face[k].append(r.timings_ms.get(k, 0.0))
            per_face["total"].append((t1 - t0) * 1e3 / n + (t2 - t1) * 1e3 / n + r.timings_ms.get("total", 0.0))
            fallbacks[r.fallback] = fallbacks.get(r.fallback, 0) + 1
    result: dict[str, Any] = {
        "photos": len(photos), "faces": len(per_face["total"]), "strategy": args.strategy, "pool": pool.name,
        "pool_faces": len(pool), "fallbacks": fallbacks,
        "per_face_ms": {k: stats(v) for k, v in per_face.items()}, "per_photo_ms": stats(per_photo),
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{result['photos']} photos, {result['faces']} faces, pool `{pool.name}` ({len(pool)} faces), "
          f"strategy {args.strategy}, fallbacks {fallbacks}")
    print(f"{'stage':<10}{'median ms/face':>16}{'mean':>10}{'max':>10}")
    for k, s in result["per_face_ms"].items():
        if s:
            print(f"{k:<10}{s['median']:>16.1f}{s['mean']:>10.1f}{s['max']:>10.1f}")
    s = result["per_photo_ms"]
    print(f"{'per photo':<10}{s['median']:>16.1f}{s['mean']:>10.1f}{s['max']:>10.1f}")


if __name__ == "__main__":
    main()
