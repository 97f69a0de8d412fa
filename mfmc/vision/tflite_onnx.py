"""TensorFlow Lite models (weights shipped in registry packages) converted to ONNX, without TensorFlow or LiteRT.

`read_tflite` reads the flatbuffer with the `flatbuffers` runtime (a dependency of onnxruntime) and the slot
numbers of TFLite's `schema.fbs` (Model, SubGraph, Tensor, Buffer, Operator, OperatorCode and the options tables
of the operators below); `build_onnx` maps the first subgraph to an ONNX graph whose batch dimension is free (a
TFLite file often fixes it: MobileFaceNet's input is (2, 112, 112, 3)). Operators: CONV_2D, DEPTHWISE_CONV_2D,
ADD, SUB, MUL (with fused activations NONE, RELU, RELU6), ABS, RELU, RELU6, PRELU, and RESHAPE where it only
drops 1 × 1 spatial axes. Anything else (other operators, quantized tensors, dilations) is a
`TFLiteFormatError`, never skipped. Feature maps are computed in NCHW (the NHWC input is transposed once).

TensorFlow's exporter writes PReLU as `relu(x) + a * (x - |x|)` (five operators over the whole feature map);
`build_onnx` turns that pattern back into one PReLU with slopes 2a (the same numbers: multiplying by 2 is exact),
written as `Relu(x) + Min(x, 0) * slope`: exactly ONNX's `PRelu` (one of the two terms is zero, the other is
what PRelu computes), and half the time in onnxruntime, whose PRelu kernel is slow and keeps the convolutions
from its blocked layout (MobileFaceNet, 6 faces: 100 -> 52 ms of CPU; tested equal, bit for bit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np


class TFLiteFormatError(ValueError):
    """The file is not a TFLite model this converter understands."""


class BuiltinOp(IntEnum):
    """TFLite `BuiltinOperator` codes of the operators converted here (schema.fbs)."""

    ADD = 0
    CONV_2D = 3
    DEPTHWISE_CONV_2D = 4
    MUL = 18
    RELU = 19
    RELU6 = 21
    RESHAPE = 22
    SUB = 41
    PRELU = 54
    ABS = 101


class Activation(IntEnum):
    """TFLite `ActivationFunctionType` (fused into convolutions and arithmetic)."""

    NONE = 0
    RELU = 1
    RELU_N1_TO_1 = 2
    RELU6 = 3
    TANH = 4
    SIGN_BIT = 5


_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8,
           10: np.float64}  # TFLite TensorType -> numpy


@dataclass(frozen=True)
class TTensor:
    name: str
    shape: tuple[int, ...]
    dtype: type[np.generic]
    data: np.ndarray | None  # constant tensors (weights, shapes); None for activations
    quantized: bool = False


@dataclass(frozen=True)
class TOp:
    op: BuiltinOp
    inputs: tuple[int, ...]  # tensor indices; -1 is an absent optional input
    outputs: tuple[int, ...]
    options: dict[str, int | tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class TFLiteModel:
    tensors: list[TTensor]
    operators: list[TOp]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


# --- reading the flatbuffer -------------------------------------------------------------------------------------


class _Table:
    """One flatbuffer table; fields by their slot number in schema.fbs (vtable offset 4 + 2 * slot)."""

    def __init__(self, buf: bytearray, pos: int) -> None:
        from flatbuffers.table import Table

        self.t = Table(buf, pos)

    def _at(self, slot: int) -> int:
        return int(self.t.Offset(4 + 2 * slot))

    def scalar(self, slot: int, flags: Any, default: int = 0) -> int:
        o = self._at(slot)
        return int(self.t.Get(flags, o + self.t.Pos)) if o else default

    def table(self, slot: int) -> _Table | None:
        o = self._at(slot)
        return _Table(self.t.Bytes, self.t.Indirect(o + self.t.Pos)) if o else None

    def tables(self, slot: int) -> list[_Table]:
        o = self._at(slot)
        if not o:
            return []
        start = self.t.Vector(o)
        return [_Table(self.t.Bytes, self.t.Indirect(start + 4 * i)) for i in range(self.t.VectorLen(o))]

    def array(self, slot: int, flags: Any) -> np.ndarray:
        o = self._at(slot)
        return np.asarray(self.t.GetVectorAsNumpy(flags, o)) if o else np.zeros(0, np.int32)

    def string(self, slot: int) -> str:
        o = self._at(slot)
        return bytes(self.t.String(o + self.t.Pos)).decode() if o else ""


def read_tflite(source: str | Path | bytes) -> TFLiteModel:
    """The first subgraph of a `.tflite` file: tensors (constants with their data), operators, inputs, outputs."""
    from flatbuffers import number_types as n

    buf = bytearray(source if isinstance(source, bytes) else Path(source).read_bytes())
    if len(buf) < 8 or bytes(buf[4:8]) != b"TFL3":
        raise TFLiteFormatError("not a TFLite flatbuffer (no `TFL3` identifier)")
    model = _Table(buf, int.from_bytes(buf[:4], "little"))
    codes = []
    for code in model.tables(1):  # operator_codes
        value = max(code.scalar(0, n.Int8Flags), code.scalar(3, n.Int32Flags))  # deprecated_builtin_code, builtin_code
        codes.append(value)
    buffers = model.tables(4)
    subgraphs = model.tables(2)
    if len(subgraphs) != 1:
        raise TFLiteFormatError(f"{len(subgraphs)} subgraphs; one is supported")
    graph = subgraphs[0]
    tensors = []
    for t in graph.tables(0):
        type_code = t.scalar(1, n.Int8Flags)
        if type_code not in _DTYPES:
            raise TFLiteFormatError(f"tensor type {type_code} is not supported")
        dtype = _DTYPES[type_code]
        shape = tuple(int(d) for d in t.array(0, n.Int32Flags))
        quant = t.table(4)
        quantized = quant is not None and len(quant.array(2, n.Float32Flags)) > 0  # scale
        data = None
        index = t.scalar(2, n.Uint32Flags)
        if 0 < index < len(buffers):
            buffer = buffers[index]
            raw = buffer.array(0, n.Uint8Flags)
            offset, size = buffer.scalar(1, n.Uint64Flags), buffer.scalar(2, n.Uint64Flags)
            if not len(raw) and offset > 1:  # large models keep buffers after the flatbuffer
                raw = np.frombuffer(bytes(buf[offset : offset + size]), np.uint8)
            if len(raw):
                data = np.frombuffer(raw.tobytes(), dtype).reshape(shape)
        tensors.append(TTensor(t.string(3), shape, dtype, data, quantized))
    operators = []
    for op in graph.tables(3):
        code = codes[op.scalar(0, n.Uint32Flags)]
        try:
            kind = BuiltinOp(code)
        except ValueError:
            raise TFLiteFormatError(f"TFLite operator {code} is not supported") from None
        operators.append(TOp(kind, tuple(int(i) for i in op.array(1, n.Int32Flags)),
                             tuple(int(i) for i in op.array(2, n.Int32Flags)), _options(kind, op.table(4))))
    return TFLiteModel(tensors, operators, tuple(int(i) for i in graph.array(1, n.Int32Flags)),
                       tuple(int(i) for i in graph.array(2, n.Int32Flags)))


def _options(kind: BuiltinOp, table: _Table | None) -> dict[str, int | tuple[int, ...]]:
    """The builtin options an operator's conversion needs (defaults as in schema.fbs when absent)."""
    from flatbuffers import number_types as n

    def get(slot: int, flags: Any = n.Int32Flags, default: int = 0) -> int:
        return table.scalar(slot, flags, default) if table is not None else default

    if kind == BuiltinOp.CONV_2D:
        return {"padding": get(0, n.Int8Flags), "stride_w": get(1), "stride_h": get(2),
                "activation": get(3, n.Int8Flags), "dilation_w": get(4, default=1), "dilation_h": get(5, default=1)}
    if kind == BuiltinOp.DEPTHWISE_CONV_2D:
        return {"padding": get(0, n.Int8Flags), "stride_w": get(1), "stride_h": get(2), "multiplier": get(3),
                "activation": get(4, n.Int8Flags), "dilation_w": get(5, default=1), "dilation_h": get(6, default=1)}
    if kind in (BuiltinOp.ADD, BuiltinOp.SUB, BuiltinOp.MUL):
        return {"activation": get(0, n.Int8Flags)}
    if kind == BuiltinOp.RESHAPE and table is not None:
        return {"new_shape": tuple(int(d) for d in table.array(0, n.Int32Flags))}
    return {}


# --- the ONNX graph ---------------------------------------------------------------------------------------------


@dataclass
class _Value:
    name: str
    shape: tuple[int, ...]  # TFLite's shape without the batch: (H, W, C) for a feature map (held as NCHW in ONNX)


def _prelu_patterns(model: TFLiteModel) -> tuple[dict[int, tuple[int, np.ndarray]], set[int]]:
    """TensorFlow's PReLU, `ADD(RELU(x), MUL(a, SUB(x, ABS(x))))` with a constant `a`: ADD's operator index ->
    (x, slope 2a), and the indices of the four operators it replaces (each of their outputs used only there)."""
    producer = {out: i for i, op in enumerate(model.operators) for out in op.outputs}
    uses: dict[int, int] = {}
    for op in model.operators:
        for t in op.inputs:
            uses[t] = uses.get(t, 0) + 1
    for t in model.outputs:
        uses[t] = uses.get(t, 0) + 1

    def made_by(tensor: int, kind: BuiltinOp) -> TOp | None:
        index = producer.get(tensor)
        if index is None or uses.get(tensor) != 1:
            return None
        op = model.operators[index]
        plain = op.options.get("activation", Activation.NONE) == Activation.NONE
        return op if op.op == kind and plain else None

    fused: dict[int, tuple[int, np.ndarray]] = {}
    replaced: set[int] = set()
    for i, op in enumerate(model.operators):
        if op.op != BuiltinOp.ADD or op.options.get("activation") != Activation.NONE or len(op.inputs) != 2:
            continue
        for relu_t, mul_t in (op.inputs, op.inputs[::-1]):
            relu, mul = made_by(relu_t, BuiltinOp.RELU), made_by(mul_t, BuiltinOp.MUL)
            if relu is None or mul is None:
                continue
            x = relu.inputs[0]
            consts = [t for t in mul.inputs if model.tensors[t].data is not None]
            others = [t for t in mul.inputs if model.tensors[t].data is None]
            if len(consts) != 1 or len(others) != 1:
                continue
            sub = made_by(others[0], BuiltinOp.SUB)
            if sub is None or sub.inputs[0] != x:
                continue
            absolute = made_by(sub.inputs[1], BuiltinOp.ABS)
            if absolute is None or absolute.inputs[0] != x:
                continue
            slope = np.asarray(model.tensors[consts[0]].data, np.float32) * np.float32(2.0)
            fused[i] = (x, slope)
            replaced |= {producer[t] for t in (relu_t, mul_t, others[0], sub.inputs[1])}
            break
    return fused, replaced


def build_onnx(model: TFLiteModel, *, input_name: str = "images", output_name: str = "outputs",
               fuse_prelu: bool = True, prelu_op: bool = False) -> Any:
    """An ONNX model `input_name` float32 (N, *input shape without its batch, NHWC as in the file) ->
    `output_name` float32 (N, ...), for a one-input, one-output float TFLite model. PReLUs are written as
    `Relu(x) + Min(x, 0) * slope`, or as ONNX's `PRelu` op with `prelu_op` (the same numbers, slower)."""
    from mfmc.vision.onnx_graph import GraphBuilder, spatial_out

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise TFLiteFormatError("one input and one output are supported")
    for t in model.tensors:
        if t.quantized or (t.data is None and t.dtype != np.float32):
            raise TFLiteFormatError(f"tensor `{t.name}`: quantized or non-float activations are not supported")
    builder = GraphBuilder()
    const = builder.const

    def emit(op: str, inputs: list[str], **attrs: Any) -> str:
        return builder.node(op, inputs, builder.name(op), **attrs)

    def activate(x: str, code: int, where: str) -> str:
        if code == Activation.NONE:
            return x
        if code == Activation.RELU:
            return emit("Relu", [x])
        if code == Activation.RELU6:
            return emit("Clip", [x, const(np.float32(0.0)), const(np.float32(6.0))])
        raise TFLiteFormatError(f"{where}: fused activation {code} is not supported")

    zero: list[str] = []  # the one 0.0 initializer of the PReLUs, made on first use

    def prelu(x: str, slope: str) -> str:
        if prelu_op:
            return emit("PRelu", [x, slope])
        if not zero:
            zero.append(const(np.float32(0.0)))
        return emit("Add", [emit("Relu", [x]), emit("Mul", [emit("Min", [x, zero[0]]), slope])])

    values: dict[int, _Value] = {}
    source = model.tensors[model.inputs[0]]
    shape = source.shape[1:]
    if len(shape) == 3:
        values[model.inputs[0]] = _Value(emit("Transpose", [input_name], perm=[0, 3, 1, 2]), shape)
    else:
        values[model.inputs[0]] = _Value(input_name, shape)

    def value(index: int) -> _Value:
        if index in values:
            return values[index]
        t = model.tensors[index]
        raise TFLiteFormatError(f"tensor `{t.name}` is used before it is computed")

    def operand(index: int, like: _Value) -> str:
        """A tensor as an operand of an elementwise op with `like`: constants broadcast in NCHW."""
        t = model.tensors[index]
        if t.data is None:
            v = value(index)
            if v.shape != like.shape:
                raise TFLiteFormatError(f"elementwise op on shapes {v.shape} and {like.shape}")
            return v.name
        return operand_const(np.asarray(t.data, np.float32), like, t.name)

    def operand_const(data: np.ndarray, like: _Value, name: str = "slope") -> str:
        """A constant broadcast against `like` as TFLite does (NHWC, trailing axes), laid out for NCHW."""
        if len(like.shape) == 3 and data.ndim:
            if data.ndim > 4 or (data.ndim == 4 and data.shape[0] != 1):
                raise TFLiteFormatError(f"constant `{name}` {data.shape} does not broadcast per image")
            data = data.reshape((1,) * (4 - data.ndim) + data.shape).transpose(0, 3, 1, 2)[0]
        return const(data)

    def conv_geometry(op: TOp, v: _Value, kernel: tuple[int, int], where: str) -> tuple[list[int], str, int, int]:
        if (op.options["dilation_h"], op.options["dilation_w"]) != (1, 1):
            raise TFLiteFormatError(f"{where}: dilated convolutions are not supported")
        strides = [int(op.options["stride_h"]), int(op.options["stride_w"])]
        same = op.options["padding"] == 0  # Padding: SAME = 0, VALID = 1
        # TensorFlow's SAME puts the odd pixel at the end, as ONNX's SAME_UPPER
        return (strides, "SAME_UPPER" if same else "VALID", spatial_out(v.shape[0], kernel[0], strides[0], same),
                spatial_out(v.shape[1], kernel[1], strides[1], same))

    fused, replaced = _prelu_patterns(model) if fuse_prelu else ({}, set())
    for i, op in enumerate(model.operators):
        where = f"operator {i} ({op.op.name})"
        if i in replaced:
            continue
        if i in fused:
            x, slope = fused[i]
            v = value(x)
            values[op.outputs[0]] = _Value(prelu(v.name, operand_const(slope, v)), v.shape)
            continue
        if op.op in (BuiltinOp.CONV_2D, BuiltinOp.DEPTHWISE_CONV_2D):
            v = value(op.inputs[0])
            weights = model.tensors[op.inputs[1]].data
            if weights is None or len(v.shape) != 3:
                raise TFLiteFormatError(f"{where}: needs constant weights and a feature map")
            weights = np.asarray(weights, np.float32)
            bias = model.tensors[op.inputs[2]].data if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
            kh, kw = weights.shape[1], weights.shape[2]
            strides, pad, h, w = conv_geometry(op, v, (kh, kw), where)
            if op.op == BuiltinOp.CONV_2D:  # (O, H, W, I) -> (O, I, H, W)
                kernel, group, out_c = weights.transpose(0, 3, 1, 2), 1, weights.shape[0]
            else:  # (1, H, W, C * M) -> (C * M, 1, H, W)
                out_c = weights.shape[3]
                group = v.shape[2]
                if out_c != group * int(op.options["multiplier"] or 1):
                    raise TFLiteFormatError(f"{where}: depthwise channels {out_c} vs input {group}")
                kernel = weights.transpose(3, 0, 1, 2)
            inputs = [v.name, const(kernel, "w")]
            if bias is not None:
                inputs.append(const(np.asarray(bias, np.float32), "b"))
            y = emit("Conv", inputs, kernel_shape=[kh, kw], strides=strides, auto_pad=pad, group=group)
            values[op.outputs[0]] = _Value(activate(y, int(op.options["activation"]), where), (h, w, out_c))
        elif op.op in (BuiltinOp.ADD, BuiltinOp.SUB, BuiltinOp.MUL):
            a, b = op.inputs
            like = values.get(a) or values.get(b)
            if like is None:
                raise TFLiteFormatError(f"{where}: two constant operands")
            kind = {BuiltinOp.ADD: "Add", BuiltinOp.SUB: "Sub", BuiltinOp.MUL: "Mul"}[op.op]
            y = emit(kind, [operand(a, like), operand(b, like)])
            values[op.outputs[0]] = _Value(activate(y, int(op.options["activation"]), where), like.shape)
        elif op.op in (BuiltinOp.ABS, BuiltinOp.RELU, BuiltinOp.RELU6):
            v = value(op.inputs[0])
            if op.op == BuiltinOp.RELU6:
                y = activate(v.name, Activation.RELU6, where)
            else:
                y = emit("Abs" if op.op == BuiltinOp.ABS else "Relu", [v.name])
            values[op.outputs[0]] = _Value(y, v.shape)
        elif op.op == BuiltinOp.PRELU:
            v = value(op.inputs[0])
            alpha = model.tensors[op.inputs[1]].data
            if alpha is None:
                raise TFLiteFormatError(f"{where}: PReLU slopes must be constant")
            values[op.outputs[0]] = _Value(prelu(v.name, operand_const(np.asarray(alpha, np.float32), v)), v.shape)
        elif op.op == BuiltinOp.RESHAPE:
            v = value(op.inputs[0])
            target = op.options.get("new_shape") or ()
            if not target and len(op.inputs) > 1 and model.tensors[op.inputs[1]].data is not None:
                target = tuple(int(d) for d in np.asarray(model.tensors[op.inputs[1]].data).reshape(-1))
            out = tuple(int(d) for d in target)[1:]
            if len(v.shape) != 3 or v.shape[:2] != (1, 1) or out != (v.shape[2],):
                raise TFLiteFormatError(f"{where}: only reshapes that drop 1 x 1 spatial axes are supported")
            values[op.outputs[0]] = _Value(emit("Flatten", [v.name], axis=1), out)
        else:  # pragma: no cover - BuiltinOp lists only the operators handled above
            raise TFLiteFormatError(f"{where}: not supported")

    final = value(model.outputs[0])
    out_shape = ["N", final.shape[2], final.shape[0], final.shape[1]] if len(final.shape) == 3 else ["N", *final.shape]
    return builder.model("tflite_model", final.name, (input_name, ["N", *shape]), (output_name, out_shape))
