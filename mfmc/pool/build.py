"""Index a folder of face images into a pool directory (`mfmc pool build DIR`).

Each image must show exactly one usable face. Unusable images are rejected with a reason (corrupt, no face,
several faces, too small, blurry, turned head, analysis failed) and remembered by content hash, like the
accepted ones, so a second run over the same folder only processes new files (resumable; the index is saved
every few faces).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mfmc.errors import InvalidInputError, MfmcError
from mfmc.pool.align import aligned_crop
from mfmc.pool.cues import eye_aspect_ratio, gender_code, laplacian_variance, mouth_open_ratio, quality_score, to_gray
from mfmc.pool.index import ATTRIBUTES, PoolIndex, RecognizerInfo
from mfmc.vision.alignment import five_from_68
from mfmc.vision.images import image_files

if TYPE_CHECKING:
    from mfmc.vision.faces import Faces


class PoolRecognizer(Protocol):
    """What a pool records of a recognizer (`RecognizerInfo`): every `mfmc.vision.recognition.Recognizer`."""

    dim: int
    metric: str  # "euclidean" (stored as "l2") or "cosine"
    threshold: float


class BuildPipeline(Protocol):
    """What a build needs of its `mfmc.vision.FacePipeline` (tests give a stub)."""

    @property
    def recognizers(self) -> Mapping[str, PoolRecognizer]: ...

    def detect(self, image: np.ndarray) -> Faces: ...

    def analyze(self, image: np.ndarray, faces: Faces) -> Faces: ...


@dataclass(frozen=True)
class BuildOptions:
    """Acceptance rules and crop geometry of a build."""

    min_face: float = 64.0  # pixels, longer side of the detection box
    min_sharpness: float = 15.0  # Laplacian variance of the face resized to at most 128 px wide
    min_score: float = 0.5  # detector confidence
    second_face_ratio: float = 0.5  # another face at least this fraction of the main face's width -> rejected
    # turned heads make grotesque warps onto frontal faces, and 68-point landmarks on them are unreliable
    max_yaw: float | None = 30.0  # degrees, |yaw| beyond -> rejected ("turned")
    max_pitch: float | None = 30.0  # degrees, |pitch| beyond -> rejected ("turned")
    # also index the mirror image of every accepted face turned at least this many degrees (None: never): a face
    # turned left, mirrored, is the same person turned right, so turned sources of either side find a target
    # turned their way (the record: `mirror_of` the original's id, its source with `mirrored: true`)
    mirror_yaw: float | None = None
    crop_size: int = 256
    margin: float = 1.8  # crop side = margin x the longer side of the detection box
    jpeg_quality: int = 90
    save_every: int = 25


@dataclass
class BuildReport:
    """What one build run did."""

    pool: Path
    added: int = 0
    skipped: int = 0  # already indexed or already rejected (same content hash)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0

    def reasons(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rejected:
            key = r["reason"].split(":")[0]
            out[key] = out.get(key, 0) + 1
        return out


class Rejected(Exception):
    """Internal: the image cannot be a pool face; the message is the reason."""


def build_pool(
    folder: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    name: str | None = None,
    pipeline: BuildPipeline | None = None,
    options: BuildOptions | None = None,
    sources: Mapping[str, Mapping[str, Any]] | None = None,
    files: Iterable[Path] | None = None,
    progress: bool = True,
    on_face: Callable[[str, dict[str, Any]], None] | None = None,
) -> BuildReport:
    """Index every image under `folder` into the pool directory `out` (created or resumed).

    `sources` maps a path relative to `folder` to the source record stored with its face (defaults to
    ``{"package": "user", "file": relative path}``).
    """
    src = Path(folder)
    if not src.is_dir():
        raise InvalidInputError(f"`{src}` is not a folder", help="pass the folder that holds the face images")
    opts = options or BuildOptions()
    root = Path(out)
    if pipeline is None:
        from mfmc.vision import FacePipeline

        pipeline = FacePipeline.default()
    recognizers = {
        r: RecognizerInfo(r, int(rec.dim), float(rec.threshold),
                          "l2" if rec.metric in ("euclidean", "l2") else rec.metric)
        for r, rec in pipeline.recognizers.items()
    }
    if (root / "index.json").is_file():
        index = PoolIndex.load(root)
        missing = set(index.recognizers) ^ set(recognizers)
        if missing and len(index):
            raise InvalidInputError(
                f"pool `{root}` was built with recognizers {sorted(index.recognizers)}, "
                f"the pipeline has {sorted(recognizers)}",
                help="build into a new folder",
            )
        if name:
            index.name = name
    else:
        index = None
    (root / "crops").mkdir(parents=True, exist_ok=True)
    paths = sorted(files) if files is not None else image_files(src)
    report = BuildReport(pool=root, total=len(paths))
    known = set()
    if index is not None:
        known = {r.get("sha256") for r in index.records} | {r.get("sha256") for r in index.rejected}
    pending: list[tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]] = []

    def flush() -> None:
        nonlocal index
        if index is None:
            dims = {r: (pending[0][1][r].shape[-1] if pending else info.dim) for r, info in recognizers.items()}
            index = PoolIndex(name or src.name, {r: RecognizerInfo(r, dims[r], i.threshold, i.metric)
                                                 for r, i in recognizers.items()})
        if pending:
            index.extend(
                [p[0] for p in pending],
                {r: np.stack([p[1][r] for p in pending]) for r in index.recognizers},
                {k: np.stack([p[2][k] for p in pending]) for k in ATTRIBUTES},
            )
            pending.clear()
        index.save(root)

    with _progress(progress, len(paths)) as advance:
        for path in paths:
            rel = path.relative_to(src).as_posix() if path.is_relative_to(src) else str(path)
            try:
                data = path.read_bytes()
            except OSError as err:
                report.rejected.append({"file": rel, "sha256": "", "reason": f"unreadable: {err.strerror}"})
                advance()
                continue
            sha = hashlib.sha256(data).hexdigest()
            if sha in known:
                report.skipped += 1
                advance()
                continue
            known.add(sha)
            source = dict((sources or {}).get(rel, {"package": "user", "file": rel}))
            try:
                image = _decode(data)
                record, emb, attrs = _index_one(image, sha, source, pipeline, opts, root)
            except Rejected as why:
                rej = {"file": rel, "sha256": sha, "reason": str(why)}
                report.rejected.append(rej)
                if index is None:
                    flush()
                assert index is not None
                index.rejected.append(rej)
                advance()
                continue
            pending.append((record, emb, attrs))
            report.added += 1
            if on_face is not None:
                on_face(rel, record)
            yaw = float(attrs["pose"][0])
            if opts.mirror_yaw is not None and np.isfinite(yaw) and abs(yaw) >= opts.mirror_yaw:
                mirror = _mirrored(image, sha, source, record["id"], pipeline, opts, root)
                if isinstance(mirror, str):
                    report.rejected.append({"file": f"{rel} (mirrored)", "sha256": "", "reason": mirror})
                else:
                    pending.append(mirror)
                    report.added += 1
            if len(pending) >= opts.save_every:
                flush()
            advance()
    flush()
    return report


def _decode(data: bytes) -> np.ndarray:
    from mfmc.pool.index import vision_api

    load_image = vision_api()[1]
    try:
        return load_image(data)
    except MfmcError as err:
        raise Rejected(f"corrupt: {err.message}") from None
    except Exception as err:  # a decoder bug must not stop a build of 10 000 files
        raise Rejected(f"corrupt: {type(err).__name__}") from None


def mirror_sha(sha: str) -> str:
    """The content key of the mirror image of the file whose sha256 is `sha` (stable across builds)."""
    return hashlib.sha256(b"mfmc-mirror\0" + sha.encode()).hexdigest()


def _mirrored(
    image: np.ndarray, sha: str, source: dict[str, Any], original: str, pipeline: BuildPipeline, opts: BuildOptions,
    root: Path,
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]] | str:
    """The mirror image of an accepted face, indexed like any face (detected, landmarked, embedded again), or
    the reason it was not (its detection or pose can differ from the original's)."""
    try:
        record, emb, attrs = _index_one(np.ascontiguousarray(image[:, ::-1]), mirror_sha(sha),
                                        {**source, "mirrored": True}, pipeline, opts, root)
    except Rejected as why:
        return str(why)
    record["mirror_of"] = original
    return record, emb, attrs


def _index_one(
    image: np.ndarray, sha: str, source: dict[str, Any], pipeline: BuildPipeline, opts: BuildOptions, root: Path
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
    faces = pipeline.detect(image)
    if len(faces) == 0:
        raise Rejected("no face")
    faces = faces[np.asarray(faces.scores) >= opts.min_score] if len(faces) > 1 else faces
    if len(faces) == 0:
        raise Rejected("no face: detection score too low")
    widths = np.asarray(faces.widths, dtype=np.float64)
    main = int(np.argmax(widths))
    others = np.delete(widths, main)
    if others.size and others.max() >= opts.second_face_ratio * widths[main]:
        raise Rejected(f"several faces: {int((widths >= opts.second_face_ratio * widths[main]).sum())}")
    face = faces[main]
    if float(face.scores[0]) < opts.min_score:
        raise Rejected(f"no face: detection score {float(face.scores[0]):.2f} too low")
    box = np.asarray(face.boxes[0], dtype=np.float64)
    size = float(max(box[2] - box[0], box[3] - box[1]))
    if size < opts.min_face:
        raise Rejected(f"too small: face is {size:.0f} px, at least {opts.min_face:.0f} needed")
    sharp = _sharpness(image, box)
    if sharp < opts.min_sharpness:
        raise Rejected(f"blurry: sharpness {sharp:.1f} under {opts.min_sharpness:.1f}")
    try:
        face = pipeline.analyze(image, face)
    except MfmcError as err:
        raise Rejected(f"analysis failed: {err.message}") from None
    if face.landmarks68 is None or not face.embeddings:
        raise Rejected("analysis failed: no landmarks or embeddings")
    if face.pose is not None:
        for axis, name, limit in ((0, "yaw", opts.max_yaw), (1, "pitch", opts.max_pitch)):
            angle = float(face.pose[0, axis])
            if limit is not None and np.isfinite(angle) and abs(angle) > limit:
                raise Rejected(f"turned: {name} {angle:.0f} degrees, at most {limit:.0f} accepted")
    lm68 = np.asarray(face.landmarks68[0], dtype=np.float64)
    crop, lm68_crop, box_crop, lm5_crop = _crop(image, box, lm68, np.asarray(face.landmarks5[0]), opts)
    target_id = sha[:16]
    crop_rel = f"crops/{target_id}.jpg"
    _save_jpeg(root / crop_rel, crop, opts.jpeg_quality)
    age = float(face.age[0]) if face.age is not None else np.nan
    gender = str(face.gender[0]) if face.gender is not None else None
    attrs = {
        "age": np.float32(age),
        "gender": np.int8(gender_code(gender)),
        "pose": np.asarray(face.pose[0] if face.pose is not None else [np.nan] * 3, np.float32),
        "mouth_open": np.float32(mouth_open_ratio(lm68)),
        "eye_ratio": np.float32(eye_aspect_ratio(lm68)),
        "face_size": np.float32(size),
        "sharpness": np.float32(sharp),
        "det_score": np.float32(face.scores[0]),
        "quality": np.float32(quality_score(sharp, size, float(face.scores[0]))),
        "box": box_crop.astype(np.float32),
        "landmarks5": lm5_crop.astype(np.float32),
        "landmarks68": lm68_crop.astype(np.float32),
        "aligned": aligned_crop(image, five_from_68(lm68)),
    }
    emb = {r: np.asarray(v[0], np.float32) for r, v in face.embeddings.items()}
    record = {"id": target_id, "sha256": sha, "source": source, "crop": crop_rel}
    return record, emb, attrs


def _sharpness(image: np.ndarray, box: np.ndarray) -> float:
    """Laplacian variance of the face box, first shrunk to at most 128 px wide (never enlarged)."""
    h, w = image.shape[:2]
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    region = image[y1:y2, x1:x2]
    if region.size == 0:
        return 0.0
    if region.shape[1] > 128:
        import cv2

        scale = 128.0 / region.shape[1]
        region = cv2.resize(region, (128, max(3, round(region.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    return laplacian_variance(to_gray(region))


def _crop(
    image: np.ndarray, box: np.ndarray, lm68: np.ndarray, lm5: np.ndarray, opts: BuildOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A square crop of `margin` x the face box around the landmarks' centre, resized to `crop_size`."""
    import cv2

    side = opts.margin * max(box[2] - box[0], box[3] - box[1])
    cx = (box[0] + box[2]) / 2.0
    cy = (box[1] + box[3]) / 2.0
    x0, y0 = round(cx - side / 2.0), round(cy - side / 2.0)
    s = round(side)
    pad = s
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    region = padded[y0 + pad: y0 + pad + s, x0 + pad: x0 + pad + s]
    size = opts.crop_size
    interp = cv2.INTER_AREA if s > size else cv2.INTER_CUBIC
    crop = cv2.resize(region, (size, size), interpolation=interp)
    scale = size / float(s)
    origin = np.array([x0, y0], dtype=np.float64)
    lm68_c = (lm68 - origin) * scale
    lm5_c = (np.asarray(lm5, np.float64) - origin) * scale
    box_c = np.concatenate([(box[:2] - origin) * scale, (box[2:] - origin) * scale])
    return crop, lm68_c, box_c, lm5_c


def _save_jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(path, format="JPEG", quality=quality,
                                                                       optimize=True)


class _progress:
    """A rich progress bar (or nothing) that yields an `advance()` callable."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled
        self.total = total
        self._bar: Any = None

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn("indexing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                             transient=False)
        self._bar.__enter__()
        task = self._bar.add_task("faces", total=self.total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
