"""Cold start of the `mfmc` command: each run is a fresh process, as a user typing the command gets.

    python benchmarks/bench_cli.py [--runs 5]

Measures wall time (median and min of `--runs` fresh processes) and CPU time (user + system, median) of
`mfmc --help`, `mfmc --version`, `mfmc rules check rules/`, `mfmc faces` and `mfmc anonymize` on a 0.2 MP photo
(the first three faces of examples/group.jpg), the README's file-mode `mfmc render` of examples/group.jpg (4 faces,
2 faked), and as the baseline in the same run the interpreter alone
(`python -c pass`) and `python -c "import typer"`, so figures from a busy machine can be read as ratios. "Cold"
means a new process; the OS file cache is warm (each command runs once untimed first), and the model caches of a
first run after install (e.g. the converted ONNX graphs) exist. The console script is called directly (not
through a pyenv or other shim, which adds its own start-up).
Targets: rules check <= 0.3 s, faces <= 1.0 s, anonymize <= 1.5 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"rules check": 0.3, "faces": 1.0, "anonymize": 1.5}


def mfmc() -> list[str]:
    script = Path(sys.executable).parent / "mfmc"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mfmc.cli.main"]


def timed(cmd: list[str], runs: int) -> tuple[list[float], list[float]] | str:
    """Wall and CPU (user + system) times of `runs` fresh processes, or the error line of a failing command.

    CPU time is what the command itself costs; on a machine shared with other work the wall time also holds
    the time spent waiting for a core.
    """
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)  # also warms the OS file cache
    if first.returncode != 0:
        return (first.stderr.strip().splitlines() or [f"exit {first.returncode}"])[0]
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "three.png"
        with Image.open(ROOT / "examples" / "group.jpg") as im:
            im.convert("RGB").crop((0, 0, 768, 256)).save(photo)  # 0.2 MP, three faces
        cases = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "import typer (baseline)": [sys.executable, "-c", "import typer"],
            "--help": [*mfmc(), "--help"],
            "--version": [*mfmc(), "--version"],
            "rules check": [*mfmc(), "rules", "check", "rules/"],
            "faces": [*mfmc(), "faces", str(photo)],
            "anonymize": [*mfmc(), "anonymize", str(photo), "-o", str(Path(tmp) / "out.png")],
            "render (file mode)": [*mfmc(), "render", "--viewer", "bob", "examples/group.jpg", "--rules", "rules",
                                   "--graph", "examples/graph.toml", "--people", "examples/people", "--uploader",
                                   "carol", "-o", str(Path(tmp) / "bob.png")],
        }
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
              f"{args.runs} fresh processes per command")
        print(f"{'command':<28} {'wall med':>9} {'wall min':>9} {'cpu med':>8}  target (on wall median)")
        base = None
        for name, cmd in cases.items():
            result = timed(cmd, args.runs)
            if isinstance(result, str):
                print(f"{name:<28} failed: {result}")
                continue
            walls, cpus = result
            med = statistics.median(walls)
            base = base or med
            target = TARGETS.get(name)
            mark = "" if target is None else f"<= {target:.1f} s {'ok' if med <= target else 'MISSED'}"
            print(f"{name:<28} {med:>8.3f}s {min(walls):>8.3f}s {statistics.median(cpus):>7.3f}s  {mark:<16} "
                  f"({med / base:.1f}x interpreter)")


if __name__ == "__main__":
    main()
