"""`FacePipeline`: the detector, landmarker, recognizers and attribute model that mfmc uses together.

Components are built on first use, so `mfmc faces` does not pay for loading recognizers it never runs, and a
pipeline can be assembled from injected parts in tests.
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

import numpy as np

from mfmc.errors import InvalidInputError
from mfmc.vision.faces import Faces
from mfmc.vision.landmarks import estimate_pose
from mfmc.vision.protocols import AttributeEstimator, Detector, ExpressionModel, Landmarker
from mfmc.vision.recognition import Recognizer
from mfmc.vision.settings import VisionSettings, current

T = TypeVar("T")
_log = logging.getLogger(__name__)


class LazyMapping(Mapping[str, T], Generic[T]):
    """name -> component, each built by its factory the first time it is looked up (thread-safe)."""

    def __init__(self, factories: Mapping[str, Callable[[], T] | T]) -> None:
        self._factories = dict(factories)
        self._built: dict[str, T] = {}
        self._locks = {name: threading.Lock() for name in self._factories}  # one per item: builds run in parallel

    def __getitem__(self, name: str) -> T:
        if name not in self._factories:
            raise KeyError(name)
        with self._locks[name]:
            if name not in self._built:
                factory = self._factories[name]
                self._built[name] = factory() if _is_factory(factory) else factory  # type: ignore[operator]
            return self._built[name]

    def __contains__(self, name: object) -> bool:
        return name in self._factories  # without building it (Mapping's own `in` looks the item up)

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)

    def loaded(self) -> list[str]:
        return list(self._built)

    def plus(self, extra: Mapping[str, Callable[[], T] | T]) -> LazyMapping[T]:
        """A new mapping with this one's items (those built so far shared, not built again) and `extra`'s."""
        mine = {name: self._built.get(name, factory) for name, factory in self._factories.items()}
        return LazyMapping({**mine, **extra})


def _is_factory(value: object) -> bool:
    """Classes, functions and partials are factories; anything else is an already built component."""
    return isinstance(value, type | functools.partial) or inspect.isroutine(value)


class _Slot(Generic[T]):
    """One lazily built component."""

    def __init__(self, factory: Callable[[], T | None] | T | None) -> None:
        self._factory = factory
        self._value: T | None = None if _is_factory(factory) else factory  # type: ignore[assignment]
        self._lock = threading.Lock()

    def get(self) -> T | None:
        if self._value is None and self._factory is not None:
            with self._lock:
                if self._value is None:
                    self._value = self._factory()  # type: ignore[operator]
        return self._value


class FacePipeline:
    """detect -> Faces(boxes, scores, landmarks5); analyze -> + landmarks68, pose, age, gender, embeddings."""

    _default: FacePipeline | None = None
    _default_settings: VisionSettings | None = None
    _default_lock = threading.Lock()

    def __init__(
        self,
        detector: Detector | Callable[[], Detector],
        *,
        landmarker: Landmarker | Callable[[], Landmarker | None] | None = None,
        recognizers: Mapping[str, Recognizer | Callable[[], Recognizer]] | None = None,
        attributes: AttributeEstimator | Callable[[], AttributeEstimator | None] | None = None,
        expressions: ExpressionModel | Callable[[], ExpressionModel | None] | None = None,
        backend: str = "custom",
    ) -> None:
        self._detector: _Slot[Detector] = _Slot(detector)
        self._landmarker: _Slot[Landmarker] = _Slot(landmarker)
        self._attributes: _Slot[AttributeEstimator] = _Slot(attributes)
        self._expressions: _Slot[ExpressionModel] = _Slot(expressions)
        self.recognizers: LazyMapping[Recognizer] = LazyMapping(recognizers or {})
        self.backend = backend

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def default(cls, settings: VisionSettings | None = None) -> FacePipeline:
        """The shared offline pipeline (built once per process and settings).

        `settings.backend` (default: the process's `VisionSettings`, MFMC_BACKEND at the CLI or server) picks
        it: `auto` uses an InsightFace pack when one is found under `settings.insightface_root`, else the
        embedded CPU models; `embedded` or `insightface` force one.
        """
        settings = settings or current()
        with cls._default_lock:
            if cls._default is None or cls._default_settings != settings:
                cls._default = cls.from_backend(settings.backend, settings)
                cls._default_settings = settings
            return cls._default

    @classmethod
    def reset_default(cls) -> None:
        """Forget the cached default."""
        with cls._default_lock:
            cls._default = None
            cls._default_settings = None

    @classmethod
    def from_backend(cls, backend: str = "auto", settings: VisionSettings | None = None) -> FacePipeline:
        backend = backend.lower()
        if backend not in ("auto", "embedded", "insightface"):
            raise InvalidInputError(f"unknown backend `{backend}`", help="use `auto`, `embedded` or `insightface`")
        settings = settings or current()
        # the InsightFace plumbing is imported only when its folder exists (start-up of the common case)
        if backend == "insightface" or (backend == "auto" and settings.insightface_root.is_dir()):
            from mfmc.vision.backends import insightface

            pack = insightface.find_pack(settings=settings)
            if pack is not None:
                return insightface.pipeline(pack, fallback=cls.embedded())
            if backend == "insightface":
                from mfmc.errors import ModelNotFoundError

                raise ModelNotFoundError(
                    "no insightface model pack found",
                    help=f"put one (e.g. buffalo_l) under `{settings.insightface_root}` or set "
                         "MFMC_INSIGHTFACE_ROOT",
                )
        return cls.embedded()

    @classmethod
    def embedded(cls) -> FacePipeline:
        """The models that ship in registry packages: CenterFace, dlib 68 + ResNet, FaceNet, Cydral age/gender."""
        from mfmc.vision.attributes import AgeGender
        from mfmc.vision.detection import CenterFace
        from mfmc.vision.expression import expression_factory
        from mfmc.vision.landmarks import DlibLandmarks68, DlibShapes
        from mfmc.vision.recognition import recognizer_factories

        shapes = DlibShapes()  # one 5-point predictor shared by the dlib recognizer and age/gender
        return cls(
            CenterFace,
            landmarker=DlibLandmarks68,
            recognizers=recognizer_factories(shapes),  # dlib, facenet + optional families found installed
            attributes=lambda: AgeGender(shapes=shapes),
            expressions=expression_factory(),  # None unless the optional classifier's package is installed
            backend="embedded",
        )

    def with_recognizers(self, extra: Mapping[str, Recognizer | Callable[[], Recognizer]]) -> FacePipeline:
        """A pipeline sharing this one's components, with `extra` recognizers added (e.g. evaluation-only ones
        such as `faceres` in `mfmc.eval.photos`); this pipeline is unchanged."""
        other = copy.copy(self)
        other.recognizers = self.recognizers.plus(extra)
        return other

    # -- components ---------------------------------------------------------------------------------------
    @property
    def detector(self) -> Detector:
        detector = self._detector.get()
        if detector is None:
            raise InvalidInputError("this pipeline has no face detector")
        return detector

    @property
    def landmarker(self) -> Landmarker | None:
        return self._landmarker.get()

    @property
    def attributes(self) -> AttributeEstimator | None:
        return self._attributes.get()

    @property
    def expressions(self) -> ExpressionModel | None:
        return self._expressions.get()

    def preload(self, *, attributes: bool = False, expressions: bool = False, recognizers: Iterable[str] = (),
                landmarks: bool = False, detector: bool = False) -> threading.Thread:
        """Start building the named parts in a background thread (returned, already started) while the caller
        goes on (imports, reading the photo, detection): a later use of a part waits for its build instead of
        starting another. The detector first (a command needs it right after reading its photo), then the parts
        in the order `analyze` uses them.

        The parts mostly release the GIL while they load (onnxruntime sessions; the 68-point model is read from
        the disk cache by numpy), so on two cores they load beside the caller's work. A part that fails to build
        here is logged and built again (raising) where it is used."""
        jobs: list[tuple[str, Callable[[], object]]] = []  # in the order they are needed
        if detector:
            jobs.append(("detector", self._detector.get))
        if landmarks:
            jobs.append(("landmarks", self._landmarker.get))
        if attributes:
            jobs.append(("age/gender", self._attributes.get))
        if expressions:
            jobs.append(("expressions", self._expressions.get))
        jobs += [(f"recognizer `{n}`", functools.partial(self.recognizers.__getitem__, n)) for n in recognizers]

        def run() -> None:
            for what, job in jobs:
                try:
                    job()
                except Exception as error:  # built again (and raised) where it is used
                    _log.info("preloading %s failed (%s); it is built again when used", what, error)

        thread = threading.Thread(target=run, name="mfmc-preload", daemon=True)
        thread.start()
        return thread

    # -- work ---------------------------------------------------------------------------------------------
    def detect(self, image: np.ndarray) -> Faces:
        """Boxes, scores and 5 landmarks of every face (an empty `Faces` when there is none)."""
        _check_image(image)
        return self.detector.detect(image)

    def analyze(
        self,
        image: np.ndarray,
        faces: Faces | None = None,
        *,
        landmarks: bool = True,
        attributes: bool = True,
        recognizers: Iterable[str] | None = None,
        min_size: float = 0.0,
    ) -> Faces:
        """Add landmarks68 + pose, age + gender and embeddings (all recognizers unless `recognizers` names
        some; pass `()` for none) to `faces` (detected here when None).

        `min_size` (px, the box's shorter side): smaller faces are not embedded, e.g. faces that will be
        pixelated anyway (embeddings are most of an analysis: ~45 ms a face on CPU); their embedding rows are
        NaN and `embedded_mask` says which faces have embeddings. They still get landmarks and attributes (a few
        ms). The default (0) embeds every face."""
        _check_image(image)
        if faces is None:
            faces = self.detect(image)
        if not len(faces):
            return faces
        changes: dict[str, Any] = {}
        if landmarks and self.landmarker is not None:
            lm68 = self.landmarker.predict(image, faces)
            changes["landmarks68"] = lm68
            changes["pose"] = estimate_pose(lm68, landmarks5=faces.landmarks5)
        elif faces.pose is None:
            changes["pose"] = estimate_pose(faces.landmarks5)
        if changes:
            faces = faces.replace(**changes)
        if attributes and self.attributes is not None:
            age, gender, female = self.attributes.estimate(image, faces)
            faces = faces.replace(age=age, gender=gender, gender_score=female)
            if self.expressions is not None:
                faces = faces.replace(expression=self.expressions.classify(image, faces))
        names = list(self.recognizers) if recognizers is None else list(recognizers)
        embeddings = dict(faces.embeddings)
        sides = np.minimum(faces.widths, faces.heights)
        wanted = sides >= min_size
        for name in names:
            if name not in self.recognizers:
                raise InvalidInputError(
                    f"unknown recognizer `{name}`", help=f"available: {', '.join(self.recognizers) or 'none'}"
                )
            recognizer = self.recognizers[name]
            if wanted.all():
                embeddings[name] = recognizer.embed(image, faces)
                continue
            values = np.full((len(faces), recognizer.dim), np.nan, dtype=np.float32)
            if wanted.any():
                values[wanted] = recognizer.embed(image, faces[wanted])
            embeddings[name] = values
        return faces.replace(embeddings=embeddings)

    def __call__(self, image: np.ndarray) -> Faces:
        return self.analyze(image)

    def describe(self) -> dict[str, Any]:
        """What this pipeline is made of (for `mfmc doctor`); builds nothing."""
        return {"backend": self.backend, "recognizers": list(self.recognizers)}


def embedded_mask(faces: Faces, names: Iterable[str] | None = None) -> np.ndarray:
    """(N,) bool: which faces carry every named embedding (all of `faces.embeddings` by default). A face left out
    by `FacePipeline.analyze(min_size=...)` has NaN rows instead."""
    mask = np.ones(len(faces), dtype=bool)
    for name in faces.embeddings if names is None else names:
        values = faces.embeddings.get(name)
        mask &= False if values is None else np.isfinite(values).all(axis=1)
    return mask


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = image.shape if isinstance(image, np.ndarray) else None
        raise InvalidInputError(
            f"expected an RGB uint8 image of shape (H, W, 3), got `{shape}`", help="load photos with load_image()"
        )
