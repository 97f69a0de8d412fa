"""Fake jobs on Redis with RQ: the server enqueues, `mfmc worker` processes make the fakes.

Why RQ (see docs/deployment.md): jobs here are plain synchronous Python calls (numpy, onnxruntime) that must
load models once per process; RQ runs exactly that (a `SimpleWorker` keeps the process and its models), needs
only Redis, and lets us name jobs (job id = the fake's key, so a fake is queued once). Durability does not rest
on RQ's bookkeeping: the fake's row in the store is the only completion signal, a job is idempotent, and the
server re-enqueues a job whose row has not appeared within the lease, so a worker killed with SIGKILL mid-job
loses nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from mfmc.errors import ServerUnavailableError, StoreError
from mfmc.jobs import FakeJob, FakeMaking

QUEUE_NAME = "mfmc-fakes"
TASK = "mfmc.jobs.worker.make_fake"


def connect(url: str):  # -> redis.Redis
    """A Redis connection, checked with PING; `ServerUnavailableError` with one clear line otherwise."""
    import redis

    conn = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
    try:
        conn.ping()
    except redis.exceptions.RedisError as err:
        raise ServerUnavailableError(f"cannot reach Redis at `{url}`: {err}",
                                     help="start redis-server, or drop --redis to make fakes in-process") from None
    return conn


class RedisQueue:
    """Enqueue missing fakes for `mfmc worker`s and wait until their rows exist (re-enqueue after the lease)."""

    def __init__(self, url: str, maker: FakeMaking, *, lease_s: float = 30.0, timeout_s: float = 120.0,
                 poll_s: float = 0.02, queue: str = QUEUE_NAME) -> None:
        from rq import Queue

        self.url = url
        self.maker = maker
        self.lease_s = lease_s
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.conn = connect(url)
        self.queue = Queue(queue, connection=self.conn)

    def enqueue(self, job: FakeJob) -> None:
        self.queue.enqueue(TASK, job.photo_id, job.face_index, job.viewer, job.generation, job_id=job.key,
                           job_timeout=max(60, int(self.timeout_s)), result_ttl=60, failure_ttl=3600)

    def run(self, jobs: Sequence[FakeJob]) -> None:
        pending = {job.key: job for job in self.maker.missing(jobs)}
        start = time.monotonic()
        queued_at: dict[str, float] = {}
        for job in pending.values():
            self.enqueue(job)
            queued_at[job.key] = start
        poll = self.poll_s
        while pending:
            time.sleep(poll)
            poll = min(poll * 1.5, 0.25)  # quick for one fake, gentle on the store for many
            now = time.monotonic()
            left = {job.key for job in self.maker.missing(list(pending.values()))}
            for key in list(pending):
                if key not in left:
                    del pending[key]
            if not pending:
                return
            if now - start > self.timeout_s:
                raise StoreError(f"{len(pending)} fake(s) were not made within {self.timeout_s:.0f} s",
                                 help="start `mfmc worker` (the faces stay hidden until their fakes exist)")
            for key, job in pending.items():
                if now - queued_at[key] > self.lease_s:  # worker died or job lost: queue it again
                    self.enqueue(job)
                    queued_at[key] = now

    def close(self) -> None:
        self.conn.close()
