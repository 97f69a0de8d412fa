"""Fake jobs on the real Redis with RQ workers (`mfmc worker` processes), and uploads killed mid-way.

A worker killed with SIGKILL in the middle of a job has committed nothing; the server re-enqueues the job after
its lease and another worker makes the fake: nothing is lost and the fake is stored exactly once.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mfmc.jobs import FakeJob
from mfmc.service.testing import grid_photo
from tests.server.conftest import Deployment, deployment, passphrase, redis_or_skip

pytestmark = pytest.mark.slow  # `mfmc worker` processes on the real Redis, killed mid-job, leases waited out

ROOT = Path(__file__).resolve().parents[2]


def _worker(dep: Deployment, queue: str, backend: str, *, burst: bool = False) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mfmc.cli.main", "worker", "--data-dir", str(dep.data_dir), "--redis",
           redis_or_skip(), "--queue", queue, "--backend", backend, *(["--burst"] if burst else [])]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def _started(dep: Deployment, queue: str) -> int:
    from rq import Queue
    from rq.registry import StartedJobRegistry

    q = Queue(queue, connection=dep.server.queue.conn)  # type: ignore[attr-defined]
    return len(StartedJobRegistry(queue=q))


def test_a_worker_killed_mid_job_loses_nothing(tmp_path: Path) -> None:
    url = redis_or_skip()
    queue = "mfmc-test-" + secrets.token_hex(4)
    with deployment(tmp_path / "d", redis_url=url, lease_s=2.0, queue=queue) as dep:
        alice, carol = dep.client("alice"), dep.client("carol")
        for c in (alice, carol):
            c.create()
        alice.set_rules("face alice\ndefault friends\n", "alice.mfmc")
        alice.enroll([grid_photo([0], seed=100)])
        photo = grid_photo([0], seed=4)
        up = alice.upload(photo)
        slow = _worker(dep, queue, "grid:8000")  # 8 s of CPU per fake: killed long before it finishes
        result: dict[str, object] = {}

        def view() -> None:
            try:
                result["view"] = carol.render(up.photo_id)
            except Exception as err:  # reported by the assertion below
                result["error"] = err

        viewer = threading.Thread(target=view)
        viewer.start()
        deadline = time.monotonic() + 30
        while _started(dep, queue) == 0:  # the slow worker took the job
            assert time.monotonic() < deadline and slow.poll() is None, slow.stdout.read() if slow.stdout else ""
            time.sleep(0.05)
        time.sleep(0.5)
        slow.send_signal(signal.SIGKILL)
        assert slow.wait(10) == -signal.SIGKILL
        job = FakeJob(up.photo_id, 0, "", 0)
        assert dep.server.maker.find(job) is None  # the killed worker stored nothing
        fast = _worker(dep, queue, "grid")
        try:
            viewer.join(60)
            assert not viewer.is_alive()
            assert "error" not in result, result.get("error")
            seen = result["view"].image  # type: ignore[attr-defined]
            assert not np.array_equal(seen[1:31, 1:31], photo[1:31, 1:31])  # carol sees a fake, not alice
            with dep.server.store.read() as tx:
                rows = tx.fakes(up.photo_id)
            assert [(r.face_index, r.viewer, r.generation) for r in rows] == [(0, "", 0)] and rows[0].verified
            # idempotent per (photo, face, version): queued again and made again, still one row, same blob
            dep.server.queue.enqueue(job)  # type: ignore[attr-defined]
            assert dep.server.maker.make(job).blob == rows[0].blob
            time.sleep(1.0)
            with dep.server.store.read() as tx:
                assert len(tx.fakes(up.photo_id)) == 1
        finally:
            fast.send_signal(signal.SIGTERM)
            fast.wait(20)


def test_without_a_worker_the_face_stays_hidden(tmp_path: Path) -> None:
    """No worker within the timeout: the render fails (409), it never falls back to the real face."""
    from mfmc.errors import StoreError

    url = redis_or_skip()
    with deployment(tmp_path / "d", redis_url=url, lease_s=0.5, queue="mfmc-test-" + secrets.token_hex(4)) as dep:
        dep.server.queue.timeout_s = 1.5  # type: ignore[attr-defined]
        alice, carol = dep.client("alice"), dep.client("carol")
        for c in (alice, carol):
            c.create()
        alice.set_rules("face alice\ndefault friends\n", "alice.mfmc")
        alice.enroll([grid_photo([0], seed=100)])
        up = alice.upload(grid_photo([0], seed=4))
        with pytest.raises(StoreError, match="not made within"):
            carol.render(up.photo_id)
        assert alice.render(up.photo_id).decisions[0].reveal  # the owner needs no fake


UPLOADER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from mfmc.client import Api, Client
    from mfmc.crypto.keys import KdfParams
    from mfmc.service.testing import CostlyGrid, grid_photo
    url, ring, pw = sys.argv[1:4]
    client = Client(Api.connect(url), "alice", Path(ring), backend=CostlyGrid(20000), passphrase=lambda _: pw,
                    kdf=KdfParams.FAST_INSECURE)
    print("uploading", flush=True)
    client.upload(grid_photo([0, None], seed=4))
""")


def test_an_upload_killed_mid_way_stores_nothing_and_the_retry_stores_it_once(tmp_path: Path) -> None:
    with deployment(tmp_path / "d") as dep:
        alice = dep.client("alice")
        alice.create()
        alice.set_rules("face alice\ndefault friends\n", "alice.mfmc")
        alice.enroll([grid_photo([0], seed=100)])
        script = tmp_path / "upload.py"
        script.write_text(UPLOADER)
        proc = subprocess.Popen([sys.executable, str(script), dep.url, str(dep.data_dir / "clients" / "alice"),
                                 passphrase("alice")], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"uploading"
        time.sleep(1.5)  # inside the client-side fake of the unknown face (20 s of CPU)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
        assert dep.server.photos() == []  # nothing half-stored
        first = alice.upload(grid_photo([0, None], seed=4))
        again = alice.upload(grid_photo([0, None], seed=4))
        assert first.created and not again.created and first.photo_id == again.photo_id
        assert [p.id for p in dep.server.photos()] == [first.photo_id]
