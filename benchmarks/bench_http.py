"""HTTP load on a real `mfmc serve` process (127.0.0.1 only, bounded in time and size).

    python benchmarks/bench_http.py [--seconds 10] [--viewers 16] [--faces 20] [--uploads 32] [--jobs 40]

1. renders: `--viewers` concurrent viewers (threads, one login and one connection each) fetch their cached render
   of one `--faces`-face photo for `--seconds`: requests/s, p50/p99 latency, errors, and that every answer is the
   viewer's same version (nothing changed, nothing lost). Target: p50 <= 30 ms, p99 <= 100 ms on 2 cores.
2. uploads: 8 clients upload `--uploads` distinct photos in parallel (client-side identification and fakes,
   then one POST each): uploads/s; every photo stored exactly once.
3. fake jobs (only when Redis answers at 127.0.0.1:6379): `--jobs` fakes made by 1, then by 2 `mfmc worker`
   processes, each fake costing 150 ms of CPU (`--backend grid:150`, a stand-in for a real swapper): fakes/s.

The face backend is the cheap deterministic grid backend (mfmc.service.testing): the server's own work (login,
decisions, cache lookups, composition, PNG bytes, HTTP) is what is measured, not the face models. The server runs
in its own process (uvicorn, `--server-workers` processes, default 1), the load generator in this one: both
share the machine's cores.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mfmc.client.embedded import free_port  # noqa: E402
from mfmc.crypto.keys import KdfParams  # noqa: E402
from mfmc.service.platform import Platform  # noqa: E402
from mfmc.service.testing import GridBackend, grid_photo  # noqa: E402

PASS = "bench passphrase"


def start_server(data: Path, port: int, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mfmc.cli.main", "serve", "--data-dir", str(data), "--port", str(port),
           "--host", "127.0.0.1", "--backend", "grid", "--init", *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
    raise SystemExit("server did not start")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def setup(url: str, data: Path, faces: int, viewers: int) -> tuple[Platform, list[str], int]:
    p = Platform(data, server_url=url, backend=GridBackend(cell=48), passphrase=lambda _n: PASS,
                 kdf=KdfParams.FAST_INSECURE)
    owners = [f"p{k:02d}" for k in range(faces)]
    uploader = "host"
    for name in [uploader, *owners]:
        p.add_user(name)
    for k, name in enumerate(owners):
        p.friend(uploader, name)
        if k % 3 == 0 and k + 1 < faces:
            p.friend(name, owners[k + 1])
    for name in [uploader, *owners]:
        p.set_rules(f"face {name}\ndefault friends\n", f"{name}.mfmc")
    for k, name in enumerate(owners):
        p.enroll(name, [grid_photo([k], cell=48, seed=100 + k)])
    photo = grid_photo(list(range(faces)), cell=48, cols=5, seed=1)
    up = p.upload(photo, uploader)
    assert sum(f.owner is not None for f in up.faces) == faces, "every face identified"
    return p, owners[:viewers], up.photo_id


def _viewer_process(url: str, photo_id: int, viewers: list[tuple[str, str, str]], stop: float) -> tuple[list, list]:
    """One load-generator process: a thread per viewer (token, expected version), until `stop` (wall clock)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def run(viewer: str, token: str, version: str) -> None:
        mine: list[float] = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            while time.time() < stop:
                t = time.perf_counter()
                r = http.get(f"/api/photos/{photo_id}/render.png")
                dt = time.perf_counter() - t
                if r.status_code != 200 or r.headers.get("x-mfmc-version") != version or not r.content:
                    with lock:
                        errors.append(f"{viewer}: {r.status_code}")
                mine.append(dt)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run, args=v) for v in viewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors


def bench_renders(p: Platform, url: str, viewers: list[str], photo_id: int, seconds: float,
                  processes: int = 4) -> dict:
    """Concurrent viewers from `processes` load-generator processes (one Python process alone would measure its
    own GIL queue, not the server)."""
    from concurrent.futures import ProcessPoolExecutor

    tokens = {v: p.api.login(p.client(v).keyring.keys) for v in viewers}
    versions = {}
    for v in viewers:  # warm: fakes made and cached, one composed version per viewer
        r = httpx.get(f"{url}/api/photos/{photo_id}/render.png", headers={"Authorization": f"Bearer {tokens[v]}"},
                      timeout=60)
        r.raise_for_status()
        versions[v] = r.headers["x-mfmc-version"]
    groups = [[(v, tokens[v], versions[v]) for v in viewers[k::processes]] for k in range(processes)]
    with ProcessPoolExecutor(processes) as pool:
        pool.submit(time.sleep, 0).result()  # processes started before the clock
        stop = time.time() + seconds + 1.0
        t0 = time.perf_counter()
        parts = [pool.submit(_viewer_process, url, photo_id, g, stop) for g in groups if g]
        results = [f.result() for f in parts]
        wall = time.perf_counter() - t0
    latencies = [x for lat, _ in results for x in lat]
    errors = [e for _, err in results for e in err]
    return {"viewers": len(viewers), "load_processes": processes, "requests": len(latencies),
            "seconds": round(wall, 2), "req_per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(percentile(latencies, 50) * 1000, 1), "p99_ms": round(percentile(latencies, 99) * 1000, 1),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 1), "errors": len(errors),
            "distinct_versions": len(set(versions.values()))}


def bench_uploads(p: Platform, owners: list[str], count: int, threads_n: int = 8) -> dict:
    """`threads_n` users upload at once (one client per user: a keyring has one writer), `count` photos in all."""
    users = owners[:threads_n]
    results: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    for name in users:
        p.client(name).keyring  # noqa: B018 - unlock before timing

    def run(t: int) -> None:
        for i in range(t, count, len(users)):
            try:
                res = p.client(users[t]).upload(grid_photo([i % 7, None, (i + 3) % 7], cell=48, seed=10_000 + i))
                with lock:
                    results.append(res.photo_id)
            except Exception as err:  # counted and reported
                with lock:
                    errors.append(f"{type(err).__name__}: {err}")

    ts = [threading.Thread(target=run, args=(t,)) for t in range(len(users))]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    listed = {int(ph.id) for ph in p.photos()}
    return {"uploads": count, "clients": len(users), "seconds": round(wall, 2),
            "uploads_per_s": round(len(results) / wall, 1), "stored": len(set(results)),
            "all_listed": set(results) <= listed, "errors": len(errors), "first_error": errors[0] if errors else None}


def bench_jobs(url: str, data: Path, p: Platform, owners: list[str], jobs: int) -> dict | None:
    import redis

    if jobs <= 0:
        return None
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/14", socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        return None
    from mfmc.jobs import FakeJob
    from mfmc.jobs.redis_queue import RedisQueue
    from mfmc.server.fakes import FakeMaker
    from mfmc.server.settings import ServerSettings, make_backend, open_store

    store = open_store(ServerSettings(data_dir=data))
    maker = FakeMaker(store, make_backend("grid"))
    out = {}
    for workers in (1, 2):
        queue = "mfmc-bench-" + secrets.token_hex(4)
        photos = [p.upload(grid_photo(list(range(10)), cell=48, cols=5, seed=50_000 + workers * 100 + k),
                           "host").photo_id for k in range(max(1, -(-jobs // 10)))]
        todo = [FakeJob(pid, i, "", 0) for pid in photos for i in range(10)][:jobs]  # shared fakes, not yet made
        procs = [subprocess.Popen([sys.executable, "-m", "mfmc.cli.main", "worker", "--data-dir", str(data),
                                   "--redis", "redis://127.0.0.1:6379/14", "--queue", queue, "--backend", "grid:150"],
                                  cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)}) for _ in range(workers)]
        time.sleep(4)  # workers import and connect before the clock starts
        q = RedisQueue("redis://127.0.0.1:6379/14", maker, lease_s=20, timeout_s=600, queue=queue)
        t0 = time.perf_counter()
        q.run(todo)
        wall = time.perf_counter() - t0
        for proc in procs:
            proc.terminate()
            proc.wait(20)
        q.close()
        out[f"{workers}_worker"] = {"fakes": len(todo), "seconds": round(wall, 2),
                                    "fakes_per_s": round(len(todo) / wall, 2)}
    out["speedup"] = round(out["2_worker"]["fakes_per_s"] / out["1_worker"]["fakes_per_s"], 2)
    store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--viewers", type=int, default=16)
    ap.add_argument("--faces", type=int, default=20)
    ap.add_argument("--uploads", type=int, default=32)
    ap.add_argument("--jobs", type=int, default=40)
    ap.add_argument("--server-workers", type=int, default=1, help="uvicorn worker processes of the server.")
    ap.add_argument("--load-processes", type=int, default=2, help="Load-generator processes for the viewers.")
    ap.add_argument("--json", type=Path, help="Also write the results here.")
    args = ap.parse_args()
    args.seconds = min(args.seconds, 60.0)  # bounded
    with tempfile.TemporaryDirectory(prefix="mfmc-bench-http-") as tmp:
        data = Path(tmp) / "data"
        port = free_port()
        server = start_server(data, port, "--workers", str(args.server_workers))
        url = f"http://127.0.0.1:{port}"
        try:
            p, viewers, photo_id = setup(url, data, args.faces, args.viewers)
            result = {"machine": {"cpus": os.cpu_count(), "load_1m": round(os.getloadavg()[0], 1),
                                  "server_workers": args.server_workers},
                      "renders": bench_renders(p, url, viewers, photo_id, args.seconds,
                                                args.load_processes)}
            print(json.dumps({"renders": result["renders"]}), flush=True)
            result["uploads"] = bench_uploads(p, [f"p{k:02d}" for k in range(args.faces)], args.uploads)
            print(json.dumps({"uploads": result["uploads"]}), flush=True)
            result["jobs"] = bench_jobs(url, data, p, [f"p{k:02d}" for k in range(args.faces)], args.jobs)
            print(json.dumps({"jobs": result["jobs"]}), flush=True)
            p.close()
        finally:
            server.terminate()
            server.wait(20)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
