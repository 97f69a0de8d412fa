"""Fake generation as jobs: the queue the server hands missing fakes to, and the worker that makes them.

- `InlineQueue` (default, no Redis): the server makes missing fakes itself, in the request's thread.
- `RedisQueue` (`mfmc serve --redis URL`): jobs go to Redis through RQ; `mfmc worker` processes make them.

A job is one `mfmc.server.fakes.FakeJob` (photo, face, viewer key, generation); its id is the job's key, so a
fake is queued once at a time, and making it is idempotent (the store's unique row). The server waits until
the fake's row exists; a job that does not finish within the lease (its worker was killed, or none runs) is
queued again, and after the timeout the render fails (it never shows the real face instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class FakeJob:
    """One fake to make: face `face_index` of `photo_id`, shared (`viewer` "") or per viewer, at `generation`."""

    photo_id: int
    face_index: int
    viewer: str
    generation: int

    @property
    def key(self) -> str:
        """Stable id (the queue's job id): the same fake is never queued twice at once."""
        return f"mfmc-fake-{self.photo_id}-{self.face_index}-{self.generation}-{self.viewer or '_'}"


class FakeMaking(Protocol):
    def make(self, job: FakeJob) -> object:
        """Make and store the fake of `job` (idempotent)."""
        ...

    def find(self, job: FakeJob) -> object | None:
        """The stored fake of `job`, or None."""
        ...

    def missing(self, jobs: Sequence[FakeJob]) -> list[FakeJob]:
        """The jobs whose fake is not stored yet."""
        ...


class FakeQueue(Protocol):
    def run(self, jobs: Sequence[FakeJob]) -> None:
        """Return once every job's fake is stored; raise `StoreError` if that cannot happen in time."""
        ...

    def close(self) -> None: ...


class InlineQueue:
    """No queue: the server process makes the fakes itself (one machine, no Redis)."""

    def __init__(self, maker: FakeMaking) -> None:
        self.maker = maker

    def run(self, jobs: Sequence[FakeJob]) -> None:
        for job in jobs:
            self.maker.make(job)

    def close(self) -> None:
        pass


__all__ = ["FakeJob", "FakeMaking", "FakeQueue", "InlineQueue"]
