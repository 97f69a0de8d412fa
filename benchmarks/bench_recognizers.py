"""Benchmark the recognizers per face: FaceNet on cv2.dnn (one face a call, the baseline) against the same weights
converted to ONNX and run by onnxruntime (one face a call, and batched), and every other recognizer batched.

    python benchmarks/bench_recognizers.py [--faces 32] [--repeat 5] [--json]

Also, per recognizer, the verification pattern of the fake generator: 8 candidate images of one face each,
embedded one call per image against one `embed_many` call (one network batch).

Input: real crops from openpeople expression sheets (16 faces each, a dev dependency), cut as each recognizer
cuts them. Times are the best of `--repeat` runs after one warm-up (the minimum is the least disturbed by other
processes on a shared machine; the median is printed too). Ratios are against the cv2.dnn baseline of the same
run. Load times: the first `FaceNetRecognizer(...)` in the process (onnxruntime: includes reading the on-disk
cache entry, or converting when there is none).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return min(samples), statistics.median(samples)


def sheets(count: int) -> list[np.ndarray]:
    import cv2

    from mfmc.vision import load_image
    from mfmc.vision.registry import package_dir

    folder = package_dir("openpeople")
    if folder is None:
        raise SystemExit("install the dev extra: pip install -e '.[dev]' (openpeople provides the photos)")
    out = []
    for person in sorted((folder / "data" / "curated").iterdir())[: max(1, -(-count // 16))]:
        image = load_image(person / "assets" / "emotions_sheet.jpg")
        out.append(cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from mfmc.vision import FacePipeline
    from mfmc.vision.recognition import FaceNetRecognizer

    pipe = FacePipeline.embedded()
    images = sheets(args.faces)
    faces_per_image = [pipe.detect(image) for image in images]

    start = time.perf_counter()
    cv2_net = FaceNetRecognizer(backend="cv2")
    load_cv2 = time.perf_counter() - start
    start = time.perf_counter()
    onnx_net = FaceNetRecognizer(backend="onnxruntime")
    load_onnx = time.perf_counter() - start

    crops = np.concatenate([cv2_net.crops(im, f) for im, f in zip(images, faces_per_image, strict=True)])
    crops = crops[: args.faces]
    n = len(crops)
    results: dict[str, Any] = {
        "faces": n, "cpus": os.cpu_count(), "machine": platform.machine(),
        "load_s": {"facenet_cv2": round(load_cv2, 3), "facenet_onnxruntime": round(load_onnx, 3)},
        "ms_per_face": {},
    }
    rows = {
        "facenet cv2.dnn, 1 face/call (baseline)": lambda: cv2_net.embed_crops(crops),
        "facenet onnxruntime, 1 face/call": lambda: [onnx_net.embed_crops(crops[i : i + 1]) for i in range(n)],
        f"facenet onnxruntime, batch {n}": lambda: onnx_net.embed_crops(crops),
    }
    for name in pipe.recognizers:
        if name == "facenet":
            continue
        recognizer = pipe.recognizers[name]
        rows[f"{name}, whole photo per call (batched)"] = (
            lambda r=recognizer: [r.embed(im, f) for im, f in zip(images, faces_per_image, strict=True)])
    # verification of K candidates of one face: K single-face images, one `embed` each vs one `embed_many`
    singles = [(images[0], faces_per_image[0][i : i + 1]) for i in range(min(8, len(faces_per_image[0])))]
    for name in pipe.recognizers:
        recognizer = pipe.recognizers[name]
        rows[f"{name}, {len(singles)} one-face images, embed each"] = (
            lambda r=recognizer: [r.embed(im, f) for im, f in singles])
        rows[f"{name}, {len(singles)} one-face images, embed_many"] = lambda r=recognizer: r.embed_many(singles)
    counts = {name: n for name in rows}
    total = sum(len(f) for f in faces_per_image)
    for name in rows:
        if "whole photo" in name:
            counts[name] = total
        elif "one-face images" in name:
            counts[name] = len(singles)
    baseline = None
    for name, fn in rows.items():
        best, median = timed(fn, args.repeat)
        per_face = 1000 * best / counts[name]
        baseline = baseline or per_face
        results["ms_per_face"][name] = {"best": round(per_face, 2), "median": round(1000 * median / counts[name], 2),
                                        "speedup_vs_baseline": round(baseline / per_face, 2)}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{n} real face crops, {results['cpus']} CPUs ({results['machine']}); load: "
              f"cv2 {load_cv2:.2f} s, onnxruntime {load_onnx:.2f} s")
        for name, row in results["ms_per_face"].items():
            print(f"  {name:52s} {row['best']:7.2f} ms/face (median {row['median']:.2f})  "
                  f"x{row['speedup_vs_baseline']:.2f} vs baseline")
    return results


if __name__ == "__main__":
    main()
