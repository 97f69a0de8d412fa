"""What the service needs from vision and swap, behind one small protocol (so tests can inject cheap stand-ins).

`FaceBackend` detects faces with embeddings (client side, at upload and enrollment), makes a verified fake
of one face (`fake`: server side, the per-face, per-viewer render-time fakes) and the verified fakes of several
faces of one photo under the photo's rules (`fake_many`: client side, the proxy/unknown/`nobody` faces of an
upload; `mfmc.swap.FakeGenerator.patches`, as `mfmc anonymize`). `VisionBackend` is the
real one: `mfmc.vision.FacePipeline.default()` + `mfmc.swap.FakeGenerator` over `mfmc.pool.TargetPool.default()`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from mfmc.vocabulary import Fallback

if TYPE_CHECKING:
    from mfmc.swap import FakeGenerator
    from mfmc.vision import FacePipeline, Faces

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class DetectedFace:
    """One detected face: what the store keeps (box, score, landmarks) plus the transient embedding."""

    box: Box
    score: float = 1.0
    landmarks5: tuple[tuple[float, float], ...] = ()
    embedding: np.ndarray | None = field(default=None, repr=False, compare=False)  # never stored server-side

    def record(self) -> dict[str, Any]:
        return {"box": [round(float(v), 2) for v in self.box], "score": round(float(self.score), 4),
                "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks5]}


@dataclass(frozen=True)
class FakeOutcome:
    """A generator's result for one face: the whole new image, whether it passed verification, and a report.

    `mask` (H, W) bool, where given: the pixels the fake writes (a `fake_many` outcome's `image` is the photo
    with this face's fake alone; the caller writes `image` where `mask` is true, in order)."""

    image: np.ndarray
    verified: bool
    fallback: Fallback = Fallback.NONE
    report: dict[str, Any] = field(default_factory=dict)
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)


@runtime_checkable
class FaceBackend(Protocol):
    recognizer: str
    threshold: float

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """Faces with embeddings (for `recognizer`), in a stable order (left to right)."""
        ...

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Distances between one embedding `a` (D,) and rows `b` (N, D)."""
        ...

    def fake(self, image: np.ndarray, faces: list[DetectedFace], index: int, *, seed: int,
             cache_key: str | None = None, avoid_identities: frozenset[str] = frozenset()) -> FakeOutcome:
        """A fake of face `index`, showing none of `avoid_identities` (other viewers' fakes of the face); may
        raise (the service then fails closed by obfuscating)."""
        ...

    def fake_many(self, image: np.ndarray, faces: list[DetectedFace], indices: Sequence[int], *,
                  seeds: Mapping[int, int], avoid_identities: frozenset[str] = frozenset()) -> list[FakeOutcome]:
        """Fakes of the faces `indices` (the others stay real), made together under the photo's rules (each avoids
        the photo's other faces and fakes; the finished photo is audited), face i with `seeds[i]`: one outcome per
        index, in order, each the photo with that face's fake alone and its `mask`. May raise as a whole (the
        caller then fakes each face alone, failing closed per face: `fake_many_or_block`)."""
        ...


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist() if obj.size <= 16 else f"<array {obj.shape}>"
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    return str(obj)


class VisionBackend:
    """The real backend: offline CPU face pipeline and the verified training-free swapper."""

    def __init__(self, pipeline: FacePipeline | None = None, generator: FakeGenerator | None = None,
                 recognizer: str = "dlib") -> None:
        from mfmc.vision import FacePipeline

        self.pipeline = pipeline if pipeline is not None else FacePipeline.default()
        self._generator = generator  # built on first fake: enrollment and identification do not need the pool
        rec = self.pipeline.recognizers.get(recognizer)
        if rec is None:
            names = sorted(self.pipeline.recognizers)
            if not names:
                from mfmc.errors import ModelNotFoundError

                raise ModelNotFoundError("no face recognizer is installed", help="run `mfmc doctor`")
            recognizer, rec = names[0], self.pipeline.recognizers[names[0]]
        self.recognizer = recognizer
        self._rec = rec
        self.threshold = float(rec.threshold)
        self._analyzed: OrderedDict[str, Faces] = OrderedDict()

    @property
    def generator(self) -> FakeGenerator:
        if self._generator is None:
            from mfmc.pool import TargetPool
            from mfmc.swap import FakeGenerator

            self._generator = FakeGenerator(self.pipeline, TargetPool.default())
        return self._generator

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        faces = self.pipeline.detect(image)
        if len(faces.boxes) == 0:
            return []
        order = np.argsort(faces.boxes[:, 0], kind="stable")
        faces = faces[order]
        faces = self.pipeline.analyze(image, faces, attributes=False, recognizers=[self.recognizer])
        emb = faces.embeddings.get(self.recognizer)
        out = []
        for i in range(len(faces.boxes)):
            out.append(DetectedFace(
                box=tuple(float(v) for v in faces.boxes[i]),  # type: ignore[arg-type]
                score=float(faces.scores[i]),
                landmarks5=tuple((float(x), float(y)) for x, y in faces.landmarks5[i]),
                embedding=None if emb is None else np.asarray(emb[i], dtype=np.float32)))
        return out

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.asarray(self._rec.distance(a[None, :], b)).reshape(-1)

    def _analyzed_faces(self, image: np.ndarray, faces: list[DetectedFace], cache_key: str | None) -> Faces:
        from mfmc.vision import Faces

        if cache_key is not None and cache_key in self._analyzed:
            self._analyzed.move_to_end(cache_key)
            return self._analyzed[cache_key]
        built = Faces(boxes=np.array([f.box for f in faces], dtype=np.float32),
                      scores=np.array([f.score for f in faces], dtype=np.float32),
                      landmarks5=np.array([f.landmarks5 for f in faces], dtype=np.float32).reshape(-1, 5, 2))
        analyzed = self.pipeline.analyze(image, built)
        if cache_key is not None:
            self._analyzed[cache_key] = analyzed
            while len(self._analyzed) > 8:
                self._analyzed.popitem(last=False)
        return analyzed

    def fake(self, image: np.ndarray, faces: list[DetectedFace], index: int, *, seed: int,
             cache_key: str | None = None, avoid_identities: frozenset[str] = frozenset()) -> FakeOutcome:
        from mfmc.swap import Avoid

        analyzed = self._analyzed_faces(image, faces, cache_key)
        # the fake must match no other face of the photo and show none of the identities other viewers' fakes
        # of it show (FAKES helpers: targeted edits)
        avoid = self.generator.photo_avoid(analyzed, index, base=Avoid(targets=frozenset(avoid_identities)))
        patch, report = self.generator.fake_face(image, analyzed, index, seed=seed, avoid=avoid)
        new = patch.apply(image)
        return FakeOutcome(image=np.asarray(new), verified=bool(report.verified), fallback=Fallback(report.fallback),
                           report=_jsonable(report.to_dict()))

    def fake_many(self, image: np.ndarray, faces: list[DetectedFace], indices: Sequence[int], *,
                  seeds: Mapping[int, int], avoid_identities: frozenset[str] = frozenset()) -> list[FakeOutcome]:
        from mfmc.swap import Avoid

        if not indices:
            return []
        analyzed = self._analyzed_faces(image, faces, None)  # once per photo, on the original
        pairs = self.generator.patches(image, analyzed, only=list(indices), seeds=dict(seeds),
                                       avoid=Avoid(targets=frozenset(avoid_identities)))
        by_face = {int(report.index): (patch, report) for patch, report in pairs}
        if sorted(by_face) != sorted(int(i) for i in indices):
            from mfmc.errors import GenerationError

            raise GenerationError(f"the generator made fakes of faces {sorted(by_face)}, not {sorted(indices)}")
        out = []
        for i in indices:  # the order they were made in, and apply in
            patch, report = by_face[int(i)]
            out.append(FakeOutcome(image=np.asarray(patch.apply(image)), verified=bool(report.verified),
                                   fallback=Fallback(report.fallback), report=_jsonable(report.to_dict()),
                                   mask=patch.full_mask()))
        return out


class DeferredBackend:
    """A `FaceBackend` made by `make` on its first use, then kept (`mfmc.server.settings.lazy_backend`; the
    embedded server shares its platform's, `Platform.backend`, made when first needed)."""

    def __init__(self, make: Callable[[], FaceBackend]) -> None:
        self._make = make
        self._backend: FaceBackend | None = None

    def _get(self) -> FaceBackend:
        if self._backend is None:
            self._backend = self._make()
        return self._backend

    @property
    def recognizer(self) -> str:
        return self._get().recognizer

    @property
    def threshold(self) -> float:
        return self._get().threshold

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        return self._get().detect(image)

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._get().distance(a, b)

    def fake(self, image: np.ndarray, faces: list[DetectedFace], index: int, *, seed: int,
             cache_key: str | None = None, avoid_identities: frozenset[str] = frozenset()) -> FakeOutcome:
        return self._get().fake(image, faces, index, seed=seed, cache_key=cache_key,
                                avoid_identities=avoid_identities)

    def fake_many(self, image: np.ndarray, faces: list[DetectedFace], indices: Sequence[int], *,
                  seeds: Mapping[int, int], avoid_identities: frozenset[str] = frozenset()) -> list[FakeOutcome]:
        return self._get().fake_many(image, faces, indices, seeds=seeds, avoid_identities=avoid_identities)


def seed_of(*parts: object) -> int:
    """A deterministic 32-bit seed for fakes (same upload, face and viewer -> same fake), on either side."""
    import hashlib

    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big")


def fake_or_block(backend: FaceBackend, image: np.ndarray, faces: list[DetectedFace], index: int, *, seed: int,
                  cache_key: str | None = None, avoid_identities: frozenset[str] = frozenset()) -> FakeOutcome:
    """A fake of face `index`, or a hatched block if generation fails or changes nothing (fail closed).

    Used on both sides of the platform: by the uploader's client (faces that must never leave it real) and by
    the server's fake jobs (render-time fakes). Only `MfmcError`s (e.g. `GenerationError`, a missing model)
    fall back; each fallback is logged with its error, kept in the outcome's report and counted by the caller.
    Anything else is a bug and propagates: nothing is stored.
    """
    from mfmc.errors import MfmcError

    try:
        outcome = backend.fake(image, faces, index, seed=seed, cache_key=cache_key,
                               avoid_identities=avoid_identities)
    except MfmcError as err:
        return _blocked(image, faces, index, f"{type(err).__name__}: {err.message}")
    why = _refusal(outcome, image)
    return outcome if why is None else _blocked(image, faces, index, why)


def _refusal(outcome: FakeOutcome, image: np.ndarray) -> str | None:
    """Why a fake of `image` is not used (it changes nothing where it writes — its `mask`, else anywhere — or
    is unverified), or None."""
    mask = outcome.mask
    if outcome.image.shape != image.shape or (mask is not None and mask.shape != image.shape[:2]) or not np.any(
            outcome.image != image if mask is None else outcome.image[mask] != image[mask]):
        return "GenerationError: the fake did not change the face"
    if not outcome.verified:
        return f"GenerationError: the fake did not pass verification (fallback `{outcome.fallback}`)"
    return None


def _blocked(image: np.ndarray, faces: list[DetectedFace], index: int, why: str) -> FakeOutcome:
    """Face `index` of `image` under the hatched block (the fail-closed fallback), logged with `why`."""
    import logging

    from mfmc.service.imaging import obfuscate

    logging.getLogger("mfmc.fakes").warning("face %d: no verified fake, using a block instead (%s)", index, why)
    others = [f.box for j, f in enumerate(faces) if j != index]
    return FakeOutcome(image=obfuscate(image, faces[index].box, others), verified=False, fallback=Fallback.BLOCK,
                       report={"error": why})


def fake_many_or_block(backend: FaceBackend, image: np.ndarray, faces: list[DetectedFace], indices: Sequence[int], *,
                       seeds: Mapping[int, int]) -> tuple[np.ndarray, dict[int, FakeOutcome]]:
    """The photo with the faces `indices` faked together (`FaceBackend.fake_many`), failing closed per face as
    `fake_or_block` does, and each face's outcome.

    A face whose fake changes nothing or is unverified gets the hatched block (logged; its outcome says
    `Fallback.BLOCK` and why, for the caller to count). When the photo-level call itself fails (an `MfmcError`,
    e.g. one face's generation raising), each face is faked alone with `fake_or_block`, in order, on the photo as
    faked so far: that face gets a block, the others their fakes. Anything else is a bug and propagates.
    """
    import logging

    from mfmc.errors import MfmcError

    log = logging.getLogger("mfmc.fakes")
    todo = [int(i) for i in indices]
    try:
        made = backend.fake_many(image, faces, todo, seeds=seeds)
    except MfmcError as err:
        log.warning("faces %s: the photo-level fake failed (%s: %s); each face is faked alone", todo,
                    type(err).__name__, err.message)
        base, alone = image, {}
        for i in todo:
            alone[i] = fake_or_block(backend, base, faces, i, seed=seeds[i])
            base = alone[i].image
        return base, alone
    if len(made) != len(todo):
        raise ValueError(f"fake_many returned {len(made)} outcomes for {len(todo)} faces")
    out = image.copy()
    outcomes: dict[int, FakeOutcome] = {}
    blocked: list[tuple[int, str]] = []
    for i, got in zip(todo, made, strict=True):
        why = _refusal(got, image)
        if why is not None:
            blocked.append((i, why))
            continue
        mask = got.mask if got.mask is not None else np.any(got.image != image, axis=-1)
        np.copyto(out, got.image, where=mask[..., None])
        outcomes[i] = got
    for i, why in blocked:  # after every fake: a block always covers its face
        outcomes[i] = _blocked(out, faces, i, why)
        out = outcomes[i].image
    return out, {i: outcomes[i] for i in todo}
