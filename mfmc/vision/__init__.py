"""Faces in photos: image loading, the `Faces` type, detection, landmarks, recognizers, age/gender, models.

Everything runs offline on CPU with model files that ship inside installed packages; see MODELS.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mfmc.lazy import lazy_attributes

if TYPE_CHECKING:
    from mfmc.vision.faces import GENDERS, Faces, Gender
    from mfmc.vision.images import DEFAULT_MAX_PIXELS, LoadedImage, load_image, read_image, save_image
    from mfmc.vision.pipeline import FacePipeline
    from mfmc.vision.recognition import Recognizer

# name -> submodule: imported on first use, so that `mfmc.vision.settings` or `mfmc.vision.cache` (read by the
# CLI before it knows the command) do not pull in numpy, OpenCV, dlib and onnxruntime
_LAZY = {
    "DEFAULT_MAX_PIXELS": "images",
    "GENDERS": "faces",
    "FacePipeline": "pipeline",
    "Faces": "faces",
    "Gender": "faces",
    "LoadedImage": "images",
    "Recognizer": "recognition",
    "load_image": "images",
    "read_image": "images",
    "save_image": "images",
}


__getattr__ = lazy_attributes(__name__, _LAZY, globals())


__all__ = [
    "DEFAULT_MAX_PIXELS",
    "GENDERS",
    "FacePipeline",
    "Faces",
    "Gender",
    "LoadedImage",
    "Recognizer",
    "load_image",
    "read_image",
    "save_image",
]
