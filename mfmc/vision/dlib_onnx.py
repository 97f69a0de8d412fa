"""dlib's ResNet face recognizer (`dlib_face_recognition_resnet_model_v1.dat`) run by onnxruntime.

Why: the `dlib-bin` wheel is built without BLAS/AVX, so `face_recognition_model_v1` costs ~100 ms per face on
a small CPU. The same weights run as an ONNX graph are several times faster and give the same descriptors
(max abs difference ~1e-6, see tests/vision/test_dlib_onnx.py and docs/faces.md).

How: `read_network` parses the file written by dlib's `serialize()` of the network type from dlib's
`dnn_face_recognition_ex` example; `build_onnx` turns it into an ONNX graph with `onnx.helper`; `DlibOnnxNet`
runs it. The graph is built at first use (0.2-0.4 s) and kept in the user's cache folder (`mfmc.vision.cache`),
so later processes only load it; deleting the cache is always safe.

File layout, as read from the file itself (integers use dlib's variable-length encoding: one byte holding the
byte count, 0x80 = negative, then little-endian bytes; floats/doubles are an integer mantissa and exponent;
bools are the characters '0'/'1'; tensors are version 2, four dims, raw little-endian float32):

    loss:  version 1, "loss_metric_2", margin, distance threshold, then the sub-network
    stack: one version per layer from the top down -- 2 = computational layer, 1 = tag/skip layer,
           3 = the layer right above the input -- then the input layer, then each computational layer's
           details from the bottom up, each followed by 3 bools and 3 (empty) training tensors (and, for the
           version-3 layer, the sample expansion factor, 1).

Tag/skip layers carry no data, and `add_prev_` does not record which tag it adds, so the wiring comes from the
architecture (`_ARCHITECTURE` below); the file's version pattern and layer names are checked against it, and
every byte of the file must be consumed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CHIP_SIZE = 150


class DlibFormatError(ValueError):
    """The file is not the network this reader understands."""


# --- reading ------------------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def int(self) -> int:
        head = self.data[self.pos]
        size = head & 0x0F
        if size > 8:
            raise DlibFormatError(f"bad integer header 0x{head:02x} at byte {self.pos}")
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if head & 0x80 else value

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        return float(mantissa * 2.0**exponent)

    def bool(self) -> bool:
        char = self.data[self.pos : self.pos + 1]
        if char not in (b"0", b"1"):
            raise DlibFormatError(f"expected a bool at byte {self.pos}, found {char!r}")
        self.pos += 1
        return char == b"1"

    def str(self) -> str:
        size = self.int()
        text = self.data[self.pos : self.pos + size].decode("ascii")
        self.pos += size
        return text

    def expect(self, text: str) -> None:
        found = self.str()
        if found != text:
            raise DlibFormatError(f"expected `{text}`, found `{found}` at byte {self.pos}")

    def tensor(self) -> np.ndarray:
        if (version := self.int()) != 2:
            raise DlibFormatError(f"tensor version {version} at byte {self.pos}")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
        self.pos += 4 * count
        return values.reshape(shape).astype(np.float32)

    def alias(self) -> tuple[int, ...]:
        if (version := self.int()) != 1:
            raise DlibFormatError(f"alias_tensor version {version} at byte {self.pos}")
        return tuple(self.int() for _ in range(4))


@dataclass
class Layer:
    """One layer, bottom-up order. `kind`: input, con, affine, relu, max_pool, avg_pool, add_prev, fc, tag, skip."""

    kind: str
    arg: int = 0  # tag/skip/add_prev: the tag number
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    geometry: dict[str, int] = field(default_factory=dict)


def _architecture() -> list[tuple[str, int]]:
    """The layer stack of dlib's face recognition network (dnn_face_recognition_ex's `anet_type`), top-down:

        block<N,stride>   = affine, con<N,3x3,1>, relu, affine, con<N,3x3,stride>
        ares<N>           = relu, add_prev1, block<N,1>, tag1
        ares_down<N>      = relu, add_prev2, avg_pool<2x2,2>, skip1, tag2, block<N,2>, tag1
        levels, top-down:  ares_down 256 | ares 256 x2, ares_down 256 | ares 128 x2, ares_down 128 |
                           ares 64 x3, ares_down 64 | ares 32 x3
        net               = fc_no_bias 128, avg_pool_everything, levels, max_pool<3x3,2>, relu, affine,
                            con<32,7x7,2>, input_rgb_image_sized<150>
    """
    block = [("affine", 0), ("con", 0), ("relu", 0), ("affine", 0), ("con", 0)]
    ares = [("relu", 0), ("add_prev", 1), *block, ("tag", 1)]
    ares_down = [("relu", 0), ("add_prev", 2), ("avg_pool", 0), ("skip", 1), ("tag", 2), *block, ("tag", 1)]
    levels = ares_down + (ares * 2 + ares_down) * 2 + ares * 3 + ares_down + ares * 3
    return [("fc", 0), ("avg_pool", 0), *levels, ("max_pool", 0), ("relu", 0), ("affine", 0), ("con", 0)]


_ARCHITECTURE = _architecture()


def read_network(path: str | Path) -> tuple[list[Layer], dict[str, float]]:
    """The layers of a serialized dlib face recognition network, bottom-up, and the loss's settings."""
    reader = _Reader(Path(path).read_bytes())
    if reader.int() != 1:
        raise DlibFormatError("not a dlib loss layer")
    reader.expect("loss_metric_2")
    loss = {"margin": reader.float(), "distance_threshold": reader.float()}

    versions = []
    while (version := reader.int()) != 3:
        versions.append(version)
        if len(versions) > len(_ARCHITECTURE):
            raise DlibFormatError("more layers than the face recognition network has")
    versions.append(2)  # the layer just above the input is a computational one
    expected = [1 if kind in ("tag", "skip") else 2 for kind, _ in _ARCHITECTURE]
    if versions != expected:
        raise DlibFormatError("the layer stack is not dlib's face recognition ResNet")

    reader.expect("input_rgb_image_sized")
    mean = np.array([reader.float() for _ in range(3)], dtype=np.float32)
    size = (reader.int(), reader.int())
    if size != (CHIP_SIZE, CHIP_SIZE):
        raise DlibFormatError(f"input size {size}, expected {CHIP_SIZE}")
    layers = [Layer("input", weights={"mean": mean})]

    for kind, arg in reversed(_ARCHITECTURE):
        if kind in ("tag", "skip"):
            layers.append(Layer(kind, arg))
            continue
        layer = Layer(kind, arg)
        _read_details(reader, layer)
        for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, get_output_and_gradient_consistent
            reader.bool()
        for _ in range(3):  # x_grad, cached_output, params_grad: training state, empty in a saved model
            reader.tensor()
        if len(layers) == 1 and (factor := reader.int()) != 1:  # the version-3 layer's sample expansion factor
            raise DlibFormatError(f"sample expansion factor {factor}")
        layers.append(layer)
    if reader.pos != len(reader.data):
        raise DlibFormatError(f"{len(reader.data) - reader.pos} unread bytes at the end")
    return layers, loss


def _read_details(reader: _Reader, layer: Layer) -> None:
    if layer.kind == "con":
        reader.expect("con_4")
        params = reader.tensor().reshape(-1)
        filters, nr, nc = reader.int(), reader.int(), reader.int()
        stride = (reader.int(), reader.int())
        padding = (reader.int(), reader.int())
        kshape, bshape = reader.alias(), reader.alias()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            reader.float()
        count = int(np.prod(kshape))
        if kshape[0] != filters or kshape[2:] != (nr, nc) or params.size != count + int(np.prod(bshape)):
            raise DlibFormatError("inconsistent con_ layer")
        layer.weights = {"w": params[:count].reshape(kshape), "b": params[count:]}
        layer.geometry = {"stride_y": stride[0], "stride_x": stride[1], "pad_y": padding[0], "pad_x": padding[1]}
    elif layer.kind == "affine":
        reader.expect("affine_")
        params = reader.tensor().reshape(-1)
        gshape, _ = reader.alias(), reader.alias()
        if (mode := reader.int()) != 0:  # 0 = per channel (CONV_MODE)
            raise DlibFormatError(f"affine_ mode {mode}")
        channels = int(np.prod(gshape))
        layer.weights = {"gamma": params[:channels], "beta": params[channels:]}
    elif layer.kind == "relu":
        reader.expect("relu_")
    elif layer.kind == "add_prev":
        reader.expect("add_prev_")
    elif layer.kind in ("max_pool", "avg_pool"):
        reader.expect(f"{layer.kind}_2")
        nr, nc, sy, sx, py, px = (reader.int() for _ in range(6))
        layer.geometry = {"nr": nr, "nc": nc, "stride_y": sy, "stride_x": sx, "pad_y": py, "pad_x": px}
    elif layer.kind == "fc":
        reader.expect("fc_2")
        outputs, inputs = reader.int(), reader.int()
        params = reader.tensor()
        reader.alias(), reader.alias()
        if (bias_mode := reader.int()) != 1:  # 1 = no bias
            raise DlibFormatError(f"fc_ bias mode {bias_mode}")
        for _ in range(4):
            reader.float()
        layer.weights = {"w": params.reshape(inputs, outputs)}
    else:  # pragma: no cover - _ARCHITECTURE only holds the kinds above
        raise DlibFormatError(f"unknown layer kind {layer.kind}")


# --- ONNX graph ---------------------------------------------------------------------------------------------


def build_onnx(layers: Sequence[Layer], *, check: bool = True) -> Any:
    """An ONNX model: input `chips` (N, 150, 150, 3) uint8 RGB, output `descriptors` (N, 128) float32.

    Shapes are fixed by the 150 px input, so they are tracked here: dlib's `add_prev_` adds tensors of
    different sizes by zero-padding the smaller one (channels and, in the last two levels, height/width), which
    becomes an explicit Pad. Each affine_ (batch norm frozen at training's end) is folded into its convolution.
    """
    from onnx import TensorProto

    from mfmc.vision.onnx_graph import GraphBuilder

    builder = GraphBuilder()
    const = builder.const

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        return builder.node(op, inputs, builder.name(op.lower()), **attrs)

    mean = layers[0].weights["mean"]
    x = node("Cast", ["chips"], to=TensorProto.FLOAT)
    # input_rgb_image_sized: (pixel - channel mean) / 256
    x = node("Mul", [node("Sub", [x, const(mean)]), const(np.array(1 / 256, dtype=np.float32))])
    x = node("Transpose", [x], perm=[0, 3, 1, 2])
    shape = (3, CHIP_SIZE, CHIP_SIZE)  # (C, H, W)

    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    i = 1
    while i < len(layers):
        layer = layers[i]
        if layer.kind == "con":
            w, b = layer.weights["w"], layer.weights["b"]
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if nxt is not None and nxt.kind == "affine":
                gamma, beta = nxt.weights["gamma"], nxt.weights["beta"]
                w, b = w * gamma[:, None, None, None], b * gamma + beta
                i += 1
            g = layer.geometry
            kh, kw = w.shape[2:]
            x = node("Conv", [x, const(w.astype(np.float32), "w"), const(b.astype(np.float32), "b")],
                     kernel_shape=[kh, kw], strides=[g["stride_y"], g["stride_x"]],
                     pads=[g["pad_y"], g["pad_x"], g["pad_y"], g["pad_x"]])
            shape = (w.shape[0], _out(shape[1], kh, g["stride_y"], g["pad_y"]),
                     _out(shape[2], kw, g["stride_x"], g["pad_x"]))
        elif layer.kind == "affine":  # not after a convolution: keep it as a per-channel scale and shift
            gamma, beta = layer.weights["gamma"], layer.weights["beta"]
            x = node("Add", [node("Mul", [x, const(gamma.reshape(-1, 1, 1))]), const(beta.reshape(-1, 1, 1))])
        elif layer.kind == "relu":
            x = node("Relu", [x])
        elif layer.kind in ("max_pool", "avg_pool"):
            g = layer.geometry
            if g["nr"] == 0 and g["nc"] == 0:  # avg_pool_everything
                x = node("GlobalAveragePool", [x])
                shape = (shape[0], 1, 1)
            else:
                if g["pad_y"] or g["pad_x"]:
                    raise DlibFormatError("padded pooling is not supported")  # dlib's border rule differs
                op = "MaxPool" if layer.kind == "max_pool" else "AveragePool"
                x = node(op, [x], kernel_shape=[g["nr"], g["nc"]], strides=[g["stride_y"], g["stride_x"]])
                shape = (shape[0], _out(shape[1], g["nr"], g["stride_y"], 0),
                         _out(shape[2], g["nc"], g["stride_x"], 0))
        elif layer.kind == "tag":
            tags[layer.arg] = (x, shape)
        elif layer.kind == "skip":
            x, shape = tags[layer.arg]
        elif layer.kind == "add_prev":
            other, other_shape = tags[layer.arg]
            target = tuple(max(a, b) for a, b in zip(shape, other_shape, strict=True))
            x = node("Add", [_pad_to(x, shape, target, node, const), _pad_to(other, other_shape, target, node, const)])
            shape = target
        elif layer.kind == "fc":
            x = node("Flatten", [x], axis=1)
            x = node("MatMul", [x, const(layer.weights["w"].astype(np.float32), "fc")])
        i += 1
    return builder.model("dlib_face_recognition_resnet_model_v1", x, ("chips", ["N", CHIP_SIZE, CHIP_SIZE, 3]),
                         ("descriptors", ["N", 128]), input_type=TensorProto.UINT8, check=check)


def _out(size: int, kernel: int, stride: int, pad: int) -> int:
    return 1 + (size + 2 * pad - kernel) // stride


def _pad_to(x: str, shape: tuple[int, ...], target: tuple[int, ...], node: Any, const: Any) -> str:
    if shape == target:
        return x
    extra = [t - s for s, t in zip(shape, target, strict=True)]
    pads = np.array([0, 0, 0, 0, 0, *extra], dtype=np.int64)  # zeros after the end, like dlib's tt::add
    return node("Pad", [x, const(pads, "pads")], mode="constant")


# --- running ------------------------------------------------------------------------------------------------


#: Part of the disk cache's key: bump it whenever `read_network` or `build_onnx` would build a different graph.
CONVERTER_VERSION = "1"


def convert(path: str | Path) -> bytes:
    """The serialized, checked ONNX graph of the dlib network in `path` (serialized once)."""
    from mfmc.vision.onnx_graph import checked_bytes

    layers, _ = read_network(path)
    return checked_bytes(build_onnx(layers, check=False))


class DlibOnnxNet:
    """The dlib face recognition network as an onnxruntime session: `net(chips)` -> (N, 128) float32.

    The converted graph is cached on disk (`mfmc.vision.cache`, keyed by the weights file's path, size and mtime
    and the converter's version): later processes skip the conversion (and the `onnx` import)."""

    def __init__(self, path: str | Path, *, content_hash: str = "", threads: int | None = None) -> None:
        from mfmc.vision.runtime import cached_cpu_session

        # CPU only: on a GPU host dlib itself would be the better-tested path, and the graph is tiny anyway
        self._session = cached_cpu_session("dlib_resnet", Path(path), version=CONVERTER_VERSION,
                                           content_hash=content_hash, build=lambda: convert(path),
                                           threads=threads or os.cpu_count())

    def __call__(self, chips: np.ndarray) -> np.ndarray:
        chips = np.ascontiguousarray(chips, dtype=np.uint8)
        if chips.ndim == 3:
            chips = chips[None]
        if chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"chips must be (N, {CHIP_SIZE}, {CHIP_SIZE}, 3) RGB uint8, got {chips.shape}")
        if not len(chips):
            return np.zeros((0, 128), dtype=np.float32)
        return self._session.run(["descriptors"], {"chips": chips})[0]


_nets: dict[Path, DlibOnnxNet] = {}
_nets_lock = threading.Lock()


def load(path: str | Path, *, content_hash: str = "") -> DlibOnnxNet:
    """The converted network for `path`, once per process (read from the disk cache, or converted and cached)."""
    key = Path(path).resolve()
    with _nets_lock:
        if key not in _nets:
            _nets[key] = DlibOnnxNet(key, content_hash=content_hash)
        return _nets[key]
