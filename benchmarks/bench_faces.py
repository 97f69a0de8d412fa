"""Benchmark the face pipeline: detection per image size, per-face landmarks/embeddings/attributes, memory.

    python benchmarks/bench_faces.py [--repeat 5] [--sizes 0.3,1,2,12] [--backend opencv|onnxruntime] [--json]

Input: an openpeople expression sheet (16 faces, a dev dependency) resized to each size, so detection decodes
real faces. Times are the best of `--repeat` runs after one warm-up (the minimum is the least disturbed by other
processes on a shared machine; the median is printed too). Memory: tracemalloc peak of Python/numpy allocations
during one detection, and the process's maximum resident set size (includes the models).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

CPU_TIMES: list[float] = []  # process CPU seconds of the best wall-clock run of the latest `timed` call


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(best, median) wall seconds; also records the CPU time of the best run, which other processes on a
    shared machine inflate much less than wall time (all threads counted: ≈ wall × cores used when idle)."""
    fn()  # warm-up: first runs allocate and plan
    samples, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        samples.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    CPU_TIMES[:] = [cpu[samples.index(min(samples))]]
    return min(samples), statistics.median(samples)


def source_image() -> np.ndarray:
    from mfmc.vision import load_image
    from mfmc.vision.registry import package_dir

    folder = package_dir("openpeople")
    if folder is None:
        raise SystemExit("install the dev extra: pip install -e '.[dev]' (openpeople provides the test photo)")
    return load_image(folder / "data" / "curated" / "P003" / "assets" / "emotions_sheet.jpg")


def at_megapixels(image: np.ndarray, megapixels: float) -> np.ndarray:
    h, w = image.shape[:2]
    scale = (megapixels * 1e6 / (h * w)) ** 0.5
    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", default="0.3,1,2,12")
    parser.add_argument("--backend", default="auto", help="CenterFace runtime: auto, opencv or onnxruntime")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import dlib

    from mfmc.vision import FacePipeline, dlib_onnx
    from mfmc.vision.detection import CenterFace
    from mfmc.vision.landmarks import DlibShapes
    from mfmc.vision.recognition import DlibRecognizer
    from mfmc.vision.registry import model_path

    pipe = FacePipeline.embedded()
    detector = CenterFace(backend=args.backend)
    base = source_image()
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, cv2 threads {cv2.getNumThreads()}, "
                   f"load average {os.getloadavg()[0]:.1f} at start",
        "detector_backend": detector.backend,
        "detection": [],
    }
    for mp in (float(s) for s in args.sizes.split(",")):
        image = at_megapixels(base, mp)
        faces = detector.detect(image)
        best, median = timed(lambda image=image: detector.detect(image), max(1, args.repeat if mp < 5 else 2))
        tracemalloc.start()
        detector.detect(image)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        passes = sum(1 for _ in detector.passes(*image.shape[:2]))
        result["detection"].append({
            "megapixels": mp, "size": f"{image.shape[1]}x{image.shape[0]}", "faces": len(faces), "passes": passes,
            "best_ms": round(best * 1e3, 1), "median_ms": round(median * 1e3, 1),
            "cpu_ms": round(CPU_TIMES[0] * 1e3, 1),
            "traced_peak_mib": round(peak / 2**20, 1),
        })

    # Writing the output: PNG at Pillow's default level 6 vs mfmc's (lossless either way), on 2.7 MP.
    import io

    from PIL import Image

    from mfmc.vision import save_image
    from mfmc.vision.images import PNG_COMPRESS_LEVEL

    big = at_megapixels(base, 2.7)
    result["png_2_7mp"] = {}
    for level in (6, PNG_COMPRESS_LEVEL):
        path = Path(tempfile.mkdtemp(prefix="mfmc-png-")) / "out.png"
        best, _ = timed(lambda level=level, path=path: save_image(path, big, png_level=level), max(1, args.repeat // 2))
        same = np.array_equal(np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB")), big)
        result["png_2_7mp"][f"level {level}"] = {"ms": round(best * 1e3, 1), "kib": path.stat().st_size // 1024,
                                                 "lossless": same}

    image = at_megapixels(base, 1.0)
    faces = detector.detect(image)
    n = len(faces)
    per_face: dict[str, float] = {}
    per_face_cpu: dict[str, float] = {}
    best, _ = timed(lambda: pipe.landmarker.predict(image, faces), args.repeat)
    per_face["landmarks68_dlib"] = best / n
    per_face_cpu["landmarks68_dlib"] = CPU_TIMES[0] / n
    with_lm = pipe.analyze(image, faces, attributes=False, recognizers=())
    for name in pipe.recognizers:
        recognizer = pipe.recognizers[name]
        best, _ = timed(lambda r=recognizer: r.embed(image, with_lm), args.repeat)
        per_face[f"embedding_{name}"] = best / n
        per_face_cpu[f"embedding_{name}"] = CPU_TIMES[0] / n
        # without 68 landmarks the dlib recognizer runs its own 5-point predictor
        if name == "dlib":
            best, _ = timed(lambda r=recognizer: r.embed(image, faces), args.repeat)
            per_face["embedding_dlib_from_detection_only"] = best / n
            per_face_cpu["embedding_dlib_from_detection_only"] = CPU_TIMES[0] / n
            # the same weights run by dlib itself (the fallback) and, batched, by onnxruntime (the fast path)
            result["dlib_backend"] = recognizer.backend
            native = DlibRecognizer(backend="dlib")
            best, _ = timed(lambda r=native: r.embed(image, with_lm), max(1, min(args.repeat, 2)))
            per_face["embedding_dlib_native_fallback"] = best / n
            per_face_cpu["embedding_dlib_native_fallback"] = CPU_TIMES[0] / n
            if recognizer.backend == "onnxruntime":
                net = dlib_onnx.load(model_path("dlib_resnet"))
                shapes = dlib.full_object_detections()
                shapes.extend(DlibShapes().shapes(image, with_lm))  # from the 68 landmarks, as the recognizer does
                chips = np.stack(dlib.get_face_chips(image, shapes, size=150, padding=0.25))
                best, _ = timed(lambda net=net, chips=chips: net(chips), args.repeat)
                per_face["embedding_dlib_onnx_net_batched"] = best / n
                per_face_cpu["embedding_dlib_onnx_net_batched"] = CPU_TIMES[0] / n
    best, _ = timed(lambda: pipe.attributes.estimate(image, with_lm), args.repeat)
    per_face["age_gender"] = best / n
    per_face_cpu["age_gender"] = CPU_TIMES[0] / n
    result["per_face_ms"] = {k: round(v * 1e3, 2) for k, v in per_face.items()}
    result["per_face_cpu_ms"] = {k: round(v * 1e3, 2) for k, v in per_face_cpu.items()}
    result["faces_for_per_face"] = n
    result["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"machine: {result['machine']}; CenterFace via {result['detector_backend']}; dlib recognizer via "
              f"{result.get('dlib_backend', '-')}")
        print(f"{'MP':>5} {'size':>10} {'faces':>5} {'passes':>6} {'best ms':>8} {'median':>8} {'cpu ms':>8} "
              f"{'peak MiB':>8}")
        for row in result["detection"]:
            print(f"{row['megapixels']:>5} {row['size']:>10} {row['faces']:>5} {row['passes']:>6} "
                  f"{row['best_ms']:>8} {row['median_ms']:>8} {row['cpu_ms']:>8} {row['traced_peak_mib']:>8}")
        print(f"per face (best of {args.repeat}, {n} faces at 1 MP):")
        for key, value in result["per_face_ms"].items():
            print(f"  {key:<36} {value:>7.2f} ms   (cpu {result['per_face_cpu_ms'][key]:.2f} ms)")
        print(f"max RSS: {result['max_rss_mib']} MiB")
        for key, row in result["png_2_7mp"].items():
            print(f"PNG 2.7 MP, zlib {key}: {row['ms']} ms, {row['kib']} KiB, lossless {row['lossless']}")
    return result


if __name__ == "__main__":
    main()
