"""`mfmc worker`: an RQ worker process that makes fakes for the server (models loaded once per process)."""

from __future__ import annotations

from mfmc.jobs import FakeJob
from mfmc.server.fakes import FakeMaker

_maker: FakeMaker | None = None


def make_fake(photo_id: int, face_index: int, viewer: str, generation: int) -> str:
    """The RQ task: make (or find) one fake. Idempotent; returns the patch blob's name."""
    if _maker is None:
        raise RuntimeError("this process was not started by `mfmc worker`")
    return _maker.make(FakeJob(photo_id, face_index, viewer, generation)).blob


def run_worker(maker: FakeMaker, redis_url: str, *, burst: bool = False, name: str | None = None,
               queue: str | None = None) -> None:
    """Process fake jobs until stopped (or, with `burst`, until the queue is empty)."""
    global _maker
    from rq import SimpleWorker

    from mfmc.jobs.redis_queue import QUEUE_NAME, connect

    _maker = maker
    conn = connect(redis_url)
    worker = SimpleWorker([queue or QUEUE_NAME], connection=conn, name=name)
    worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
