"""Where a cold `mfmc` process spends its start-up: command wall times, stages, imports, the disk cache.

    python benchmarks/bench_startup.py [--runs 5] [--photo PATH] [--top 15] [--json]

1. Cold commands: wall time of fresh processes (median, min of `--runs`; one untimed run first warms the OS
   file cache and mfmc's model cache) for `mfmc faces`, `mfmc faces --no-attributes`, `mfmc anonymize` on a
   0.2 MP photo (default: the first three faces of examples/group.jpg) and `mfmc rules check rules/`, beside
   `python -c pass` as the baseline of the same run (read figures from a busy machine as ratios to it); also
   the CPU time (user + sys) of each process, which other jobs inflate less than wall time.
2. Stages of a fresh process, timed inside it: imports, building each model, first and second detection, age
   and gender, 68 landmarks, each recognizer — once with mfmc's disk cache as it is (warm) and once with an
   empty cache folder (the first run after installing: graphs converted, model files hashed).
3. `python -X importtime`: the modules with the largest self time for `import mfmc.cli.main` and for
   `from mfmc.vision import FacePipeline`.
Targets (issue 17, 2 cores): faces <= 1.0 s, anonymize <= 1.5 s, rules check <= 0.3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_cli import mfmc, timed  # the same cold timing as the CLI benchmark (this folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"faces": 1.0, "anonymize": 1.5, "rules check": 0.3}

STAGES = r"""
import json, sys, time
T = time.perf_counter(); out = {}
def lap(name):
    global T
    now = time.perf_counter(); out[name] = round((now - T) * 1e3, 1); T = now
import numpy, cv2; lap("import numpy + cv2")
from mfmc.vision import FacePipeline, cache, read_image; lap("import mfmc.vision")
if sys.argv[2] != "-":
    cache.set_cache_dir(sys.argv[2])
image = read_image(sys.argv[1]).image; lap("read photo")
pipe = FacePipeline.embedded()
pipe.detector; lap("detector: build (CenterFace, hash)")
faces = pipe.detect(image); lap(f"detect: first ({len(faces)} faces)")
pipe.detect(image); lap("detect: second")
pipe.attributes; lap("age/gender: build (+ 5-point predictor)")
pipe.analyze(image, faces, landmarks=False, recognizers=()); lap("age/gender: first run")
pipe.landmarker; lap("landmarks68: build (100 MB dlib model, numpy from the disk cache)")
faces = pipe.analyze(image, faces, attributes=False, recognizers=()); lap("landmarks68: first run")
for name in pipe.recognizers:
    rec = pipe.recognizers[name]; lap(f"{name}: build")
    rec.embed(image, faces); lap(f"{name}: first run")
from mfmc.pool import TargetPool
TargetPool.default(); lap("target pool: load")
print(json.dumps(out))
"""


def cold(cmd: list[str], runs: int) -> dict[str, Any]:
    result = timed(cmd, runs)
    if isinstance(result, str):
        return {"error": result}
    walls, cpus = result
    return {"median_s": round(statistics.median(walls), 3), "min_s": round(min(walls), 3),
            "cpu_median_s": round(statistics.median(cpus), 3)}


def stages(photo: Path, cache_dir: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", STAGES, str(photo), cache_dir], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def import_times(statement: str, top: int) -> list[tuple[str, float]]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        head = parts[0].removeprefix("import time:").strip()
        if len(parts) == 3 and head.isdigit():  # "import time: self [us] | cumulative | module"
            rows.append((parts[2].strip(), int(head) / 1e3))
    return sorted(rows, key=lambda r: -r[1])[:top]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--photo", type=Path, default=None)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from PIL import Image

    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        photo = args.photo
        if photo is None:
            photo = Path(tmp) / "three.png"
            with Image.open(ROOT / "examples" / "group.jpg") as im:
                im.convert("RGB").crop((0, 0, 768, 256)).save(photo)  # 0.2 MP, three faces
        commands = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "faces": [*mfmc(), "faces", str(photo), "--json"],
            "faces --no-attributes": [*mfmc(), "faces", str(photo), "--json", "--no-attributes"],
            "anonymize": [*mfmc(), "anonymize", str(photo), "-o", str(Path(tmp) / "out.png")],
            "rules check": [*mfmc(), "rules", "check", "rules/"],
        }
        result["cold_commands"] = {name: cold(cmd, args.runs) for name, cmd in commands.items()}
        result["stages_ms_warm_cache"] = stages(photo, "-")
        result["stages_ms_empty_cache"] = stages(photo, str(Path(tmp) / "empty-cache"))
    result["imports_self_ms"] = {
        "import mfmc.cli.main": import_times("import mfmc.cli.main", args.top),
        "from mfmc.vision import FacePipeline": import_times("from mfmc.vision import FacePipeline", args.top),
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return result
    print(f"load average {os.getloadavg()[0]:.1f} at the end (other jobs slow every figure down; compare with the "
          "baseline)")
    print(f"cold commands ({args.runs} fresh processes each; wall median, min; CPU time user+sys, median):")
    for name, r in result["cold_commands"].items():
        if "error" in r:
            print(f"  {name:<28} failed: {r['error']}")
            continue
        target = TARGETS.get(name)
        mark = "" if target is None else f"target <= {target} s: {'ok' if r['median_s'] <= target else 'MISSED'}"
        print(f"  {name:<28} {r['median_s']:>7.3f} s {r['min_s']:>7.3f} s  cpu {r['cpu_median_s']:>6.3f} s  {mark}")
    print("stages of a fresh process, ms (warm disk cache | empty cache):")
    warm, empty = result["stages_ms_warm_cache"], result["stages_ms_empty_cache"]
    for name in warm:
        print(f"  {name:<42} {warm[name]:>8.1f} | {empty.get(name, float('nan')):>8.1f}")
    for what, rows in result["imports_self_ms"].items():
        print(f"largest import self times, `{what}`:")
        for module, ms in rows:
            print(f"  {module:<48} {ms:>7.1f} ms")
    return result


if __name__ == "__main__":
    main()
