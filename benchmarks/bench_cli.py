"""Cold start of the `mfmc` command: each run is a fresh process, as a user typing the command gets.

    python benchmarks/bench_cli.py [--runs 5] [--against OLD_TREE [--tree NEW_TREE]] [--only NAME,NAME]
                                   [--fresh-cache]

Measures wall time (median and min of `--runs` fresh processes) and CPU time (user + system, median) of
`mfmc --help`, `mfmc --version`, `mfmc rules check rules/`, `mfmc faces` and `mfmc anonymize` on a 0.2 MP photo
(the first three faces of examples/group.jpg), the README's file-mode `mfmc render` of examples/group.jpg (4 faces,
2 faked), and as the baseline in the same run the interpreter alone
(`python -c pass`) and `python -c "import typer"`, so figures from a busy machine can be read as ratios. "Cold"
means a new process; the OS file cache is warm (each command runs once untimed first), and the model caches of a
first run after install (e.g. the converted ONNX graphs) exist. `--fresh-cache` measures that first run instead:
every run (the untimed one too) gets a new, empty model cache folder (MFMC_CACHE_DIR), as a new user's first
command. The console script is called directly (not through a pyenv or other shim, which adds its own start-up).
Python's bytecode caches are on, as for an installed package, in a folder of the benchmark's own
(PYTHONPYCACHEPREFIX; the untimed run writes them), even where the calling shell sets PYTHONDONTWRITEBYTECODE:
without them every mfmc module is compiled from source in every process (~0.08 s of CPU for `anonymize`, a cost
a user does not pay; figures before this change include it).
Targets: rules check <= 0.3 s, faces <= 1.0 s, anonymize <= 1.5 s.

`--against OLD_TREE` compares two source trees of mfmc on the same machine at the same time (a before/after of a
change on a shared, busy machine): each command runs alternately from `--tree` (default: this checkout) and from
OLD_TREE (both as `python -m mfmc.cli.main` with the tree first on PYTHONPATH), and the ratio new/old of the wall
and CPU medians is printed, and of the main thread's CPU (one more run each: the critical path, which work moved
to a background thread leaves; on a busy machine the figure wall time cannot show). Make OLD_TREE e.g. with
`git archive <commit> | tar -x -C /tmp/old`.
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


def timed(cmd: list[str], runs: int, env: dict[str, str] | None = None,
          fresh_cache: Path | None = None) -> tuple[list[float], list[float]] | str:
    """Wall and CPU (user + system) times of `runs` fresh processes, or the error line of a failing command.

    CPU time is what the command itself costs; on a machine shared with other work the wall time also holds
    the time spent waiting for a core. `fresh_cache`: a folder under which every run gets a new, empty model
    cache folder (a first run after install).
    """
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                           env=_fresh(env, fresh_cache))  # also warms the OS file cache
    if first.returncode != 0:
        return (first.stderr.strip().splitlines() or [f"exit {first.returncode}"])[0]
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = _once(cmd, _fresh(env, fresh_cache))
        walls.append(wall)
        cpus.append(cpu)
    return walls, cpus


def _fresh(env: dict[str, str] | None, under: Path | None) -> dict[str, str] | None:
    """`env` with MFMC_CACHE_DIR set to a new, empty folder under `under` (unchanged when `under` is None)."""
    if under is None:
        return env
    return {**(os.environ if env is None else env), "MFMC_CACHE_DIR": tempfile.mkdtemp(prefix="cache-", dir=under)}


def with_bytecode(env: dict[str, str] | None, folder: Path) -> dict[str, str]:
    """`env` (default: this process's) with Python's bytecode caches on, kept under `folder`."""
    out = {k: v for k, v in (os.environ if env is None else env).items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**out, "PYTHONPYCACHEPREFIX": str(folder)}


def _once(cmd: list[str], env: dict[str, str] | None, cwd: Path = ROOT) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, capture_output=True, check=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


# `python -c MAIN_CPU ARGS...` runs `mfmc ARGS...` (as `python -m mfmc.cli.main`) and at exit writes the CPU time
# of its main thread to the file named by MFMC_BENCH_MAIN_CPU: the work on the critical path, which background
# threads (model loads, OpenCV's Lab tables) do not add to. On a busy machine wall time mostly waits for a core;
# the main thread's CPU still says what a change moved off the critical path.
MAIN_CPU = ("import atexit, os, runpy, sys, time; "
            "atexit.register(lambda: open(os.environ['MFMC_BENCH_MAIN_CPU'], 'w').write(repr(time.thread_time()))); "
            "sys.argv = ['mfmc', *sys.argv[1:]]; runpy.run_module('mfmc.cli.main', run_name='__main__')")


def _main_cpu(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    """The main thread's CPU time of one run of `cmd` (`python -m mfmc.cli.main ...`), in seconds."""
    with tempfile.NamedTemporaryFile(prefix="mfmc-main-cpu-") as out:
        subprocess.run([sys.executable, "-c", MAIN_CPU, *cmd[3:]], cwd=cwd, capture_output=True, check=True,
                       env={**env, "MFMC_BENCH_MAIN_CPU": out.name})
        return float(Path(out.name).read_text())


def tree_env(tree: Path) -> dict[str, str]:
    """The environment that runs `python -m mfmc.cli.main` from the source tree `tree`."""
    paths = [str(tree), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def compare(cases: dict[str, list[str]], new: Path, old: Path, runs: int, pycache: Path) -> None:
    """Each command from both trees, alternately (new, old, new, old, ...), after one untimed run of each."""
    envs = {"new": with_bytecode(tree_env(new), pycache), "old": with_bytecode(tree_env(old), pycache)}
    # `python -m` puts the working directory first on sys.path: run from a neutral folder, or both sides import
    # the tree the benchmark runs in (every --against comparison before this fix measured that tree twice)
    neutral = Path(tempfile.mkdtemp(prefix="mfmc-bench-cwd-"))
    print(f"{'command':<22} {'new wall':>9} {'old wall':>9} {'ratio':>6}   {'new cpu':>8} {'old cpu':>8} {'ratio':>6}"
          f"   {'new main':>8} {'old main':>8} {'ratio':>6}")
    for name, cmd in cases.items():
        if cmd[0] != sys.executable:
            cmd = [sys.executable, "-m", "mfmc.cli.main", *cmd[1:]]
        # relative paths (e.g. `rules/`, `examples/group.jpg`) from the checkout; words (`rules`, `check`) stay
        cmd = [str(ROOT / a) if ("/" in a or "." in a) and not Path(a).is_absolute() and (ROOT / a).exists()
               else a for a in cmd]
        times: dict[str, tuple[list[float], list[float], list[float]]] = {"new": ([], [], []), "old": ([], [], [])}
        mfmc_command = cmd[:3] == [sys.executable, "-m", "mfmc.cli.main"]
        failed = False
        for which, env in envs.items():
            first = subprocess.run(cmd, cwd=neutral, capture_output=True, text=True, env=env)
            if first.returncode != 0:
                print(f"{name:<22} failed ({which}): {(first.stderr.strip().splitlines() or ['?'])[-1]}")
                failed = True
        if failed:
            continue
        for _ in range(runs):
            for which, env in envs.items():
                wall, cpu = _once(cmd, env, neutral)
                times[which][0].append(wall)
                times[which][1].append(cpu)
                if mfmc_command:  # one more run, for its main thread's CPU
                    times[which][2].append(_main_cpu(cmd, env, neutral))
        nw, nc = (statistics.median(v) for v in times["new"][:2])
        ow, oc = (statistics.median(v) for v in times["old"][:2])
        main = ""
        if mfmc_command:
            nm, om = statistics.median(times["new"][2]), statistics.median(times["old"][2])
            main = f"   {nm:>7.3f}s {om:>7.3f}s {nm / om:>6.2f}"
        print(f"{name:<22} {nw:>8.3f}s {ow:>8.3f}s {nw / ow:>6.2f}   {nc:>7.3f}s {oc:>7.3f}s {nc / oc:>6.2f}{main}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--against", type=Path, default=None, help="an older source tree to compare with")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the newer source tree (default: this checkout)")
    parser.add_argument("--only", default="", help="comma-separated command names (default: all)")
    parser.add_argument("--fresh-cache", action="store_true",
                        help="every run with a new, empty model cache folder (a new user's first command)")
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
            "render (file mode)": [*mfmc(), "render", "--viewer", "bob", "examples/group.jpg", "--rules", "rules/",
                                   "--graph", "examples/graph.toml", "--people", "examples/people", "--uploader",
                                   "carol", "-o", str(Path(tmp) / "bob.png")],
        }
        if args.only:
            wanted = {n.strip() for n in args.only.split(",")}
            cases = {k: v for k, v in cases.items() if k in wanted}
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
              f"{args.runs} fresh processes per command"
              + ("; each with a new, empty model cache folder" if args.fresh_cache else ""))
        if args.against is not None:
            if args.fresh_cache:
                raise SystemExit("error: --fresh-cache is not supported with --against")
            compare(cases, args.tree.resolve(), args.against.resolve(), args.runs, Path(tmp) / "pycache")
            print(f"load average after: {os.getloadavg()[0]:.2f}")
            return
        print(f"{'command':<28} {'wall med':>9} {'wall min':>9} {'cpu med':>8}  target (on wall median)")
        base = None
        for name, cmd in cases.items():
            result = timed(cmd, args.runs, with_bytecode(None, Path(tmp) / "pycache"),
                           fresh_cache=Path(tmp) if args.fresh_cache else None)
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
