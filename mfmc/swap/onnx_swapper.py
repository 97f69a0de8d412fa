"""Optional learned swappers from ONNX files the user provides (InsightFace `inswapper_128.onnx`, SimSwap
exports). Nothing is downloaded and nothing here is required: without a model file the default `warp` swapper
is used. Runs on CUDA when onnxruntime offers it (through mfmc.vision.runtime).

Naming follows the models, not mfmc: the model's `target` input is the face being *changed* (our source face,
aligned to a square crop) and its `source` input is the identity latent being *injected* (our pool target).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from mfmc.errors import InvalidInputError, ModelNotFoundError
from mfmc.swap import landmarks as lmk
from mfmc.swap.base import SwapResult, register_swapper
from mfmc.swap.blend import blend_patch, feather, polygon_mask, region_box, transfer_colour
from mfmc.vision.alignment import five_from_68, similarity_fit
from mfmc.vision.settings import current

if TYPE_CHECKING:
    from mfmc.swap.accessories import Kept

# per-kind input normalisation: x_in = (rgb / 255 - mean) / std
_PRESETS: dict[str, dict[str, Any]] = {
    "inswapper": {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "out_range": (0.0, 1.0)},
    "simswap": {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "out_range": (0.0, 1.0)},
}

IdentityEncoder = Callable[[np.ndarray, np.ndarray], np.ndarray]


def alignment_template(size: int) -> np.ndarray:
    """The 5-point ArcFace template for a square crop of `size` px (112-px template, x-shifted for 128)."""
    if size % 112 == 0:
        return lmk.TEMPLATE_112 * (size / 112.0)
    ratio = size / 128.0
    return (lmk.TEMPLATE_112 + np.array([8.0, 0.0])) * ratio


def align(image: np.ndarray, landmarks68: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Square crop of the face aligned to the template, and the 2×3 matrix image → crop."""
    m = similarity_fit(five_from_68(lmk.as_points(landmarks68)), alignment_template(size))
    crop = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return crop, m


def _session(model: str | Path | bytes, providers: list[str] | None) -> Any:
    from mfmc.vision.runtime import create_session

    if not isinstance(model, bytes) and not Path(model).is_file():
        raise ModelNotFoundError(
            f"swap model `{model}` does not exist",
            help="mfmc never downloads swap models: pass the path of an ONNX file you have",
        )
    return create_session(model, providers=providers)


class ArcFaceEncoder:
    """Identity latent of a face from an ArcFace-style ONNX recognizer (112 px aligned crop, (x-127.5)/127.5,
    512-D output, L2-normalised), e.g. InsightFace's `w600k_r50.onnx`."""

    def __init__(self, model: str | Path | bytes, *, providers: list[str] | None = None) -> None:
        self.session = _session(model, providers)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.size = int(inp.shape[2]) if isinstance(inp.shape[2], int) else 112

    def __call__(self, image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
        crop, _ = align(image, landmarks68, self.size)
        blob = ((crop.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
        out = np.asarray(self.session.run(None, {self.input_name: blob})[0], dtype=np.float32).reshape(-1)
        return out / max(float(np.linalg.norm(out)), 1e-12)


@register_swapper("onnx")
class OnnxSwapper:
    """A learned swapper with the inswapper/SimSwap signature: an image input (1, 3, S, S) and a latent input
    (1, D); one image output (1, 3, S, S).

    model: path (or bytes) of the ONNX graph; encoder: face → identity vector (an ArcFaceEncoder, or its path);
    emap: optional (D, D) matrix applied to the identity before re-normalising (inswapper keeps it as the
    graph's last initializer and it is read from there when not given); kind: "inswapper" or "simswap"
    (input normalisation). When built by name, the paths are the process's `VisionSettings.swap_model` /
    `swap_encoder` (MFMC_SWAP_MODEL / MFMC_SWAP_ENCODER at the edge: the CLI, the server).
    """

    name = "onnx"

    def __init__(
        self,
        model: str | Path | bytes | None = None,
        encoder: IdentityEncoder | str | Path | bytes | None = None,
        *,
        kind: str = "inswapper",
        emap: np.ndarray | None = None,
        providers: list[str] | None = None,
        forehead: float = 0.0,
        feather: float = 0.06,
        colour: bool = False,
    ) -> None:
        settings = current()
        model = model if model is not None else settings.swap_model
        encoder = encoder if encoder is not None else settings.swap_encoder
        if model is None:
            raise ModelNotFoundError(
                "the `onnx` swapper needs a model file",
                help="pass model=PATH (e.g. inswapper_128.onnx) or set MFMC_SWAP_MODEL; mfmc ships none",
            )
        if encoder is None:
            raise ModelNotFoundError(
                "the `onnx` swapper needs an identity encoder",
                help="pass encoder=PATH of an ArcFace ONNX (e.g. w600k_r50.onnx) or set MFMC_SWAP_ENCODER",
            )
        if kind not in _PRESETS:
            raise InvalidInputError(f"unknown swap model kind `{kind}`", help=f"use one of {', '.join(_PRESETS)}")
        self.kind = kind
        self.session = _session(model, providers)
        self.providers = list(self.session.get_providers())
        self.encoder: IdentityEncoder = encoder if callable(encoder) else ArcFaceEncoder(encoder, providers=providers)
        self.image_input, self.latent_input, self.size, self.latent_dim = self._signature()
        self.emap = emap if emap is not None else _last_square_initializer(model, self.latent_dim)
        self.forehead = forehead
        self.feather = feather
        self.colour = colour

    def _signature(self) -> tuple[str, str, int, int]:
        image_name = latent_name = None
        size = dim = 0
        for inp in self.session.get_inputs():
            if len(inp.shape) == 4:
                image_name, size = inp.name, int(inp.shape[2]) if isinstance(inp.shape[2], int) else 128
            elif len(inp.shape) == 2:
                latent_name, dim = inp.name, int(inp.shape[1]) if isinstance(inp.shape[1], int) else 512
        if image_name is None or latent_name is None:
            shapes = {i.name: i.shape for i in self.session.get_inputs()}
            raise InvalidInputError(
                f"swap model inputs `{shapes}` are not an image (1, 3, S, S) and a latent (1, D)",
                help="use an inswapper_128 or SimSwap ONNX export",
            )
        return image_name, latent_name, size, dim

    def latent(self, target_image: np.ndarray, target_landmarks: np.ndarray) -> np.ndarray:
        vec = np.asarray(self.encoder(target_image, target_landmarks), dtype=np.float32).reshape(1, -1)
        if vec.shape[1] != self.latent_dim:
            raise InvalidInputError(
                f"identity encoder gives {vec.shape[1]}-D vectors, the model wants {self.latent_dim}"
            )
        if self.emap is not None:
            vec = vec @ self.emap
        return (vec / max(float(np.linalg.norm(vec)), 1e-12)).astype(np.float32)

    def swap(
        self,
        image: np.ndarray,
        source_landmarks: np.ndarray,
        target_image: np.ndarray,
        target_landmarks: np.ndarray,
        *,
        alpha: float = 0.0,
        kept: Sequence[Kept] | None = None,
    ) -> SwapResult:
        # alpha has no meaning for a learned swapper: it transfers what its training taught it; nor `kept`: the
        # learned swap repaints the whole aligned face (what it keeps of glasses or masks is the model's)
        src = lmk.as_points(source_landmarks)
        preset = _PRESETS[self.kind]
        crop, m = align(image, src, self.size)
        mean, std = np.array(preset["mean"], np.float32), np.array(preset["std"], np.float32)
        x = (crop.astype(np.float32) / 255.0 - mean) / std
        feeds = {self.image_input: x.transpose(2, 0, 1)[None].copy(),
                 self.latent_input: self.latent(target_image, target_landmarks)}
        out = np.asarray(self.session.run(None, feeds)[0], dtype=np.float32)[0].transpose(1, 2, 0)
        lo, hi = preset["out_range"]
        face = np.clip((out - lo) / (hi - lo) * 255.0 + 0.5, 0, 255).astype(np.uint8)

        ext = lmk.extended(src, self.forehead)
        box = region_box(ext, image.shape[:2])
        x1, y1, x2, y2 = box
        inv = cv2.invertAffineTransform(m)
        inv[:, 2] -= (x1, y1)
        size = (x2 - x1, y2 - y1)
        back = cv2.warpAffine(face, inv, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        inside = cv2.warpAffine(np.ones((self.size, self.size), np.uint8), inv, size, flags=cv2.INTER_NEAREST)
        mask = polygon_mask(lmk.outline(ext), size[::-1], (x1, y1)) & inside
        alpha_map = feather(mask, self.feather * float(np.sqrt(max(mask.sum(), 1))))
        if self.colour:
            back = transfer_colour(back, image[y1:y2, x1:x2], mask.astype(np.float32))
        return SwapResult(blend_patch(image, back, alpha_map, box), (f"onnx swapper ({self.kind})",))


def _last_square_initializer(model: str | Path | bytes, dim: int) -> np.ndarray | None:
    """inswapper ships its identity projection `emap` as the graph's last (dim, dim) initializer."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:  # onnx is optional; without it the latent is used as is
        return None
    graph = (onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model))).graph
    if not graph.initializer:
        return None
    last = numpy_helper.to_array(graph.initializer[-1])
    return last.astype(np.float32) if last.shape == (dim, dim) else None
