"""Faces in photos: image loading, the `Faces` type, detection, landmarks, recognizers, age/gender, models.

Everything runs offline on CPU with model files that ship inside installed packages; see MODELS.md.
"""

from mfmc.vision.faces import GENDERS, Faces
from mfmc.vision.images import DEFAULT_MAX_PIXELS, LoadedImage, load_image, read_image, save_image
from mfmc.vision.pipeline import FacePipeline
from mfmc.vision.recognition import Recognizer

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "GENDERS",
    "FacePipeline",
    "Faces",
    "LoadedImage",
    "Recognizer",
    "load_image",
    "read_image",
    "save_image",
]
