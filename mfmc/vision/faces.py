"""The `Faces` type: every face found in one image, as parallel numpy arrays.

Arrays are copied to the canonical dtype, validated once in `__post_init__` and made read-only, so a `Faces`
can be shared between stages (detector, recognizers, swapper) without anyone mutating it behind another's back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import numpy as np


class Gender(StrEnum):
    """The gender classifier's labels (`Faces.gender`)."""

    FEMALE = "female"
    MALE = "male"


GENDERS: tuple[str, ...] = tuple(g.value for g in Gender)  # the labels as plain strings, in this order


class Expression(StrEnum):
    """Facial expression classes (the 7 of FER2013, which the shipped expression classifier predicts)."""

    ANGRY = "angry"
    DISGUST = "disgust"
    FEAR = "fear"
    HAPPY = "happy"
    SAD = "sad"
    SURPRISE = "surprise"
    NEUTRAL = "neutral"


Index = int | slice | Sequence[int] | Sequence[bool] | np.ndarray

# the per-face arrays a `Faces` may lack (None until a stage fills them), in field order
OPTIONAL_ARRAYS = ("landmarks68", "pose", "age", "gender", "gender_score", "expression")


def _frozen(array: Any, dtype: Any, shape_tail: tuple[int, ...] | None, name: str) -> np.ndarray:
    out = np.array(array, dtype=dtype, copy=True)
    if out.ndim == 0 or (shape_tail is not None and out.shape[1:] != shape_tail):
        want = "(N" + "".join(f", {d}" for d in shape_tail or ()) + ")"
        raise ValueError(f"`{name}` must have shape {want}, got {out.shape}")
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class Faces:
    """Faces of one image. All arrays share the first dimension N; optional fields are None when not computed.

    - `boxes` (N, 4) float32: x1, y1, x2, y2 in pixels of the upright image
    - `scores` (N,) float32: detector confidence in [0, 1]
    - `landmarks5` (N, 5, 2) float32: image-left eye, image-right eye, nose, mouth left, mouth right
    - `landmarks68` (N, 68, 2) float32 in iBUG order, or None
    - `pose` (N, 3) float32: yaw, pitch, roll in degrees, or None
    - `age` (N,) float32 years, or None; `gender` (N,) str "female"/"male", or None
    - `gender_score` (N,) float32 in [0, 1]: the gender classifier's probability of "female", or None
    - `expression` (N,) str, values of `Expression`, or None
    - `embeddings`: recognizer name -> (N, D) float32
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks5: np.ndarray
    landmarks68: np.ndarray | None = None
    pose: np.ndarray | None = None
    age: np.ndarray | None = None
    gender: np.ndarray | None = None
    gender_score: np.ndarray | None = None
    expression: np.ndarray | None = None
    embeddings: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        put = object.__setattr__
        boxes = _frozen(self.boxes, np.float32, (4,), "boxes") if np.size(self.boxes) else _empty((0, 4))
        n = boxes.shape[0]
        put(self, "boxes", boxes)
        put(self, "scores", _frozen(np.reshape(self.scores, (-1,)), np.float32, (), "scores"))
        lm5 = np.asarray(self.landmarks5)
        lm5 = lm5.reshape(0, 5, 2) if lm5.size == 0 else lm5  # an empty list/array means no faces
        put(self, "landmarks5", _frozen(lm5, np.float32, (5, 2), "landmarks5"))
        if self.landmarks68 is not None:
            put(self, "landmarks68", _frozen(self.landmarks68, np.float32, (68, 2), "landmarks68"))
        if self.pose is not None:
            put(self, "pose", _frozen(self.pose, np.float32, (3,), "pose"))
        if self.age is not None:
            put(self, "age", _frozen(np.reshape(self.age, (-1,)), np.float32, (), "age"))
        if self.gender is not None:
            gender = _frozen(np.reshape(np.asarray(self.gender, dtype=object), (-1,)), "<U6", (), "gender")
            bad = sorted(set(gender.tolist()) - set(GENDERS))
            if bad:
                raise ValueError(f"`gender` values must be {' or '.join(map(repr, GENDERS))}, got `{bad[0]}`")
            put(self, "gender", gender)
        if self.gender_score is not None:
            score = _frozen(np.reshape(self.gender_score, (-1,)), np.float32, (), "gender_score")
            if np.any(~((score >= 0) & (score <= 1))):
                raise ValueError("`gender_score` values must be probabilities in [0, 1]")
            put(self, "gender_score", score)
        if self.expression is not None:
            expression = _frozen(np.reshape(np.asarray(self.expression, dtype=object), (-1,)), "<U8", (),
                                 "expression")
            bad = sorted(set(expression.tolist()) - {e.value for e in Expression})
            if bad:
                raise ValueError(f"`expression` values must be Expression values, got `{bad[0]}`")
            put(self, "expression", expression)
        embeddings = {}
        for name, values in dict(self.embeddings).items():
            array = _frozen(values, np.float32, None, f"embeddings[{name!r}]")
            if array.ndim != 2:
                raise ValueError(f"`embeddings[{name!r}]` must have shape (N, D), got {array.shape}")
            embeddings[str(name)] = array
        put(self, "embeddings", MappingProxyType(embeddings))
        for name, array in self._arrays():
            if array.shape[0] != n:
                raise ValueError(f"`{name}` has {array.shape[0]} rows but `boxes` has {n}")
        if n and not np.all(np.isfinite(boxes)):
            raise ValueError("`boxes` must be finite")
        if n and np.any(boxes[:, 2:] < boxes[:, :2]):
            raise ValueError("`boxes` must be x1, y1, x2, y2 with x2 >= x1 and y2 >= y1")

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def empty(cls) -> Faces:
        """No faces (what detection returns for a photo without any)."""
        return cls(boxes=_empty((0, 4)), scores=_empty((0,)), landmarks5=_empty((0, 5, 2)))

    @classmethod
    def concat(cls, parts: Sequence[Faces]) -> Faces:
        """Stack several `Faces`; an optional field survives only where every part has it."""
        parts = list(parts)
        if not parts:
            return cls.empty()

        def join(attr: str) -> np.ndarray | None:
            values = [getattr(p, attr) for p in parts]
            return None if any(v is None for v in values) else np.concatenate(values)

        names = set.intersection(*(set(p.embeddings) for p in parts))
        return cls(
            boxes=np.concatenate([p.boxes for p in parts]),
            scores=np.concatenate([p.scores for p in parts]),
            landmarks5=np.concatenate([p.landmarks5 for p in parts]),
            landmarks68=join("landmarks68"),
            pose=join("pose"),
            age=join("age"),
            gender=join("gender"),
            gender_score=join("gender_score"),
            expression=join("expression"),
            embeddings={k: np.concatenate([p.embeddings[k] for p in parts]) for k in sorted(names)},
        )

    def replace(self, **changes: Any) -> Faces:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def with_embedding(self, name: str, values: np.ndarray) -> Faces:
        """A copy with one more (or a replaced) recognizer embedding."""
        return self.replace(embeddings={**self.embeddings, name: values})

    # -- access -------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[Faces]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index: Index) -> Faces:
        """`faces[i]`, `faces[a:b]`, `faces[mask]`, `faces[[i, j]]` -> `Faces` (a single int keeps N = 1)."""
        n = len(self)
        if isinstance(index, int | np.integer):
            i = int(index)
            if not -n <= i < n:
                raise IndexError(f"face index {i} out of range for {n} faces")
            key: Any = [i % n]
        elif isinstance(index, slice):
            key = index
        else:
            key = np.asarray(index)
            if key.dtype == bool:
                if key.shape != (n,):
                    raise IndexError(f"boolean mask of shape {key.shape} does not match {n} faces")
            elif key.size == 0:
                key = np.zeros(0, dtype=np.intp)
            elif key.dtype.kind not in "iu" or key.ndim != 1:
                raise IndexError("faces can be indexed by int, slice, boolean mask or 1-D integer array")
            elif np.any((key >= n) | (key < -n)):
                raise IndexError(f"face index out of range for {n} faces")

        def pick(array: np.ndarray | None) -> np.ndarray | None:
            return None if array is None else array[key]

        return Faces(
            boxes=self.boxes[key],
            scores=self.scores[key],
            landmarks5=self.landmarks5[key],
            landmarks68=pick(self.landmarks68),
            pose=pick(self.pose),
            age=pick(self.age),
            gender=pick(self.gender),
            gender_score=pick(self.gender_score),
            expression=pick(self.expression),
            embeddings={k: v[key] for k, v in self.embeddings.items()},
        )

    @property
    def widths(self) -> np.ndarray:
        return self.boxes[:, 2] - self.boxes[:, 0]

    @property
    def heights(self) -> np.ndarray:
        return self.boxes[:, 3] - self.boxes[:, 1]

    @property
    def areas(self) -> np.ndarray:
        return self.widths * self.heights

    def scaled(self, factor: float) -> Faces:
        """Coordinates multiplied by `factor` (e.g. to map boxes from a reduced decode to the original)."""
        if factor == 1.0:
            return self
        return self.replace(
            boxes=self.boxes * factor,
            landmarks5=self.landmarks5 * factor,
            landmarks68=None if self.landmarks68 is None else self.landmarks68 * factor,
        )

    def to_records(self, *, digits: int = 1) -> list[dict[str, Any]]:
        """JSON-ready dicts: box [x1,y1,x2,y2], score, landmarks 5×[x,y], age, gender (+ pose, gender_score and
        expression when known)."""
        records = []
        for i in range(len(self)):
            record: dict[str, Any] = {
                "box": [round(float(v), digits) for v in self.boxes[i]],
                "score": round(float(self.scores[i]), 4),
                "landmarks": [[round(float(x), digits), round(float(y), digits)] for x, y in self.landmarks5[i]],
                "age": None if self.age is None else round(float(self.age[i]), 1),
                "gender": None if self.gender is None else str(self.gender[i]),
            }
            if self.pose is not None:
                yaw, pitch, roll = (round(float(v), 1) for v in self.pose[i])
                record["pose"] = {"yaw": yaw, "pitch": pitch, "roll": roll}
            if self.gender_score is not None:
                record["gender_score"] = round(float(self.gender_score[i]), 3)
            if self.expression is not None:
                record["expression"] = str(self.expression[i])
            records.append(record)
        return records

    def _arrays(self) -> Iterator[tuple[str, np.ndarray]]:
        yield "scores", self.scores
        yield "landmarks5", self.landmarks5
        for name in OPTIONAL_ARRAYS:
            value = getattr(self, name)
            if value is not None:
                yield name, value
        for name, value in self.embeddings.items():
            yield f"embeddings[{name!r}]", value

    def __repr__(self) -> str:
        extra = [n for n in OPTIONAL_ARRAYS if getattr(self, n) is not None]
        extra += [f"emb:{k}" for k in self.embeddings]
        return f"Faces(n={len(self)}{', ' if extra else ''}{', '.join(extra)})"


def _empty(shape: tuple[int, ...]) -> np.ndarray:
    return np.zeros(shape, dtype=np.float32)
