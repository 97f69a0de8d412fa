"""Keras HDF5 models (weights shipped in registry packages) converted to ONNX, without TensorFlow or Keras.

A model is a list of `KLayer`s (name, Keras class, config, input layer names) plus its weights. `read_keras`
gets both from a saved model (`model_config` + `model_weights`, Keras 2 and 3, nested `Sequential`s
flattened); a weights-only file (`load_weights` format) gets its layer list from code (`read_weights`).
`build_onnx` maps the layers to ONNX: Conv2D, SeparableConv2D, DepthwiseConv2D, BatchNormalization,
Activation/ReLU, Max/AveragePooling2D, GlobalAveragePooling2D, ZeroPadding2D, Add, Concatenate, Flatten,
Dense, Dropout (identity at inference), L2Normalize; anything else is a `KerasFormatError`, never skipped.
Shapes are tracked statically; the ONNX graph always computes in NCHW (a channels-last model is transposed
once at its input, and again only where its layout is observable: Flatten of a feature map).

Reading HDF5 needs `h5py` (imported here only); the graph is cached on disk by the caller (`mfmc.vision.cache`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class KerasFormatError(ValueError):
    """The file or layer list is not a model this converter understands."""


@dataclass
class KLayer:
    name: str
    kind: str  # Keras class name
    config: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_weights(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """layer name -> {'kernel': ..., 'bias': ..., ...} from a Keras HDF5 file (full model or weights only).
    Layers nested in a Sequential are listed under their own names."""
    import h5py

    out: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path, "r") as f:
        root = f.get("model_weights", f)
        for layer in root:
            found: list[tuple[str, np.ndarray]] = []
            root[layer].visititems(lambda name, obj, found=found: found.append((name, np.asarray(obj, np.float32)))
                                   if isinstance(obj, h5py.Dataset) else None)
            parents = {name.rsplit("/", 1)[0] if "/" in name else "" for name, _ in found}
            nested = len(parents) > 1  # a Sequential inside the model: one folder per inner layer
            for name, value in found:
                parts = name.split("/")
                owner = parts[-2] if nested and len(parts) >= 2 else layer
                out.setdefault(owner, {})[parts[-1].split(":")[0]] = value
    return out


def read_keras(path: str | Path) -> tuple[list[KLayer], tuple[int, ...]]:
    """The layers of a saved Keras model (bottom-up) and its input shape without the batch (e.g. (64, 64, 1))."""
    import h5py

    with h5py.File(path, "r") as f:
        if "model_config" not in f.attrs:
            raise KerasFormatError("no model_config: a weights-only file needs its layers from code")
        config = json.loads(_text(f.attrs["model_config"]))
    layers: list[KLayer] = []
    shape: tuple[int, ...] = ()

    def input_shape(cfg: dict[str, Any]) -> tuple[int, ...]:
        dims = cfg.get("batch_input_shape") or cfg.get("batch_shape")
        if not dims:
            raise KerasFormatError("input layer without a shape")
        return tuple(int(d) for d in dims[1:])

    def add_sequential(cfg: dict[str, Any], previous: str | None) -> str:
        nonlocal shape
        for item in cfg["layers"]:
            kind, lcfg = item["class_name"], item["config"]
            name = lcfg.get("name") or item.get("name")
            if kind == "InputLayer":
                shape = shape or input_shape(lcfg)
                if previous is None:
                    layers.append(KLayer(name, "InputLayer", lcfg))
                    previous = name
                continue
            if previous is None:
                if "batch_input_shape" not in lcfg and "batch_shape" not in lcfg:
                    raise KerasFormatError("sequential model without an input shape")
                shape = input_shape(lcfg)
                layers.append(KLayer("input", "InputLayer", {}))
                previous = "input"
            layers.append(KLayer(name, kind, lcfg, [previous]))
            previous = name
        if previous is None:
            raise KerasFormatError("empty sequential model")
        return previous

    if config["class_name"] == "Sequential":
        add_sequential(config["config"], None)
        return layers, shape

    renamed: dict[str, str] = {}  # a nested Sequential's name -> its last layer
    model_inputs = [_text(i[0]) for i in config["config"].get("input_layers", [])]
    for item in config["config"]["layers"]:
        kind, lcfg, name = item["class_name"], item["config"], item.get("name") or item["config"]["name"]
        inbound = _inbound(item.get("inbound_nodes", []))
        inbound = [renamed.get(i, i) for i in inbound]
        if kind == "InputLayer":
            if model_inputs and name != model_inputs[0]:
                continue  # a second input (e.g. the other image of a siamese pair): not part of this graph
            shape = input_shape(lcfg)
            layers.append(KLayer(name, kind, lcfg))
        elif kind in ("Sequential", "Functional", "Model"):
            if kind != "Sequential":
                raise KerasFormatError(f"nested `{kind}` models are not supported")
            if len(inbound) != 1:
                raise KerasFormatError("a nested Sequential with several inputs")
            renamed[name] = add_sequential(lcfg, inbound[0])
        else:
            layers.append(KLayer(name, kind, lcfg, inbound))
    return layers, shape


def _inbound(nodes: list[Any]) -> list[str]:
    """Input layer names of a layer's first call (Keras 2 lists, Keras 3 dicts with keras_history)."""
    if not nodes:
        return []
    node = nodes[0]
    if isinstance(node, list):  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
        return [_text(entry[0]) for entry in node]
    names: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("class_name") == "__keras_tensor__":
                names.append(value["config"]["keras_history"][0])
                return
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(node.get("args", []))
    return names


# --- ONNX graph ------------------------------------------------------------------------------------------------


@dataclass
class _Value:
    name: str
    shape: tuple[int, ...]  # (C, H, W) for feature maps, (D,) for vectors


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int | float) else (int(value[0]), int(value[1]))


def build_onnx(
    layers: Sequence[KLayer],
    weights: dict[str, dict[str, np.ndarray]],
    input_shape: tuple[int, ...],
    *,
    channels_first: bool = False,
    input_name: str = "images",
    output_name: str = "outputs",
    until: str | None = None,
) -> Any:
    """An ONNX model: `input_name` float32 (N, *input_shape) -> `output_name` float32, from Keras layers.

    `channels_first`: the model's feature maps are (C, H, W) as given (input and Flatten order); otherwise
    (H, W, C), transposed to NCHW at the input. `until`: the layer whose output is the graph's (default: the
    last one; e.g. the embedding tower of a siamese model, before its comparison head)."""
    from mfmc.vision.onnx_graph import GraphBuilder, spatial_out

    builder = GraphBuilder()
    values: dict[str, _Value] = {}
    const = builder.const

    def emit(op: str, inputs: list[str], hint: str, **attrs: Any) -> str:
        return builder.node(op, inputs, builder.name(f"{hint}:{op}"), **attrs)

    def activation(x: str, kind: str, hint: str) -> str:
        kind = kind or "linear"
        if kind == "linear":
            return x
        ops = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}
        if kind in ops:
            return emit(ops[kind], [x], hint)
        if kind == "softmax":
            return emit("Softmax", [x], hint, axis=-1)
        raise KerasFormatError(f"`{hint}`: unsupported activation `{kind}`")

    def conv_geometry(cfg: dict[str, Any], v: _Value, kernel: tuple[int, int]) -> tuple[list[int], str, tuple]:
        strides = list(_pair(cfg.get("strides", 1)))
        padding = cfg.get("padding", "valid")
        if _pair(cfg.get("dilation_rate", 1)) != (1, 1):
            raise KerasFormatError("dilated convolutions are not supported")
        if cfg.get("data_format") not in (None, "channels_first" if channels_first else "channels_last"):
            raise KerasFormatError(f"layer data_format `{cfg.get('data_format')}` differs from the model's")
        h = spatial_out(v.shape[1], kernel[0], strides[0], padding == "same")
        w = spatial_out(v.shape[2], kernel[1], strides[1], padding == "same")
        return strides, ("SAME_UPPER" if padding == "same" else "VALID"), (h, w)

    if len(input_shape) == 3:
        shape = tuple(input_shape) if channels_first else (input_shape[2], input_shape[0], input_shape[1])
        x = input_name if channels_first else emit("Transpose", [input_name], "input", perm=[0, 3, 1, 2])
    else:
        shape, x = tuple(input_shape), input_name
    last = ""
    for layer in layers:
        kind, cfg, name = layer.kind, layer.config, layer.name
        w = weights.get(name, {})
        ins = [values[i] for i in layer.inputs] if kind != "InputLayer" else []
        if kind == "InputLayer":
            values[name] = _Value(x, shape)
            last = name
            continue
        v = ins[0]
        if kind == "Conv2D":
            kernel = w["kernel"]  # (kh, kw, cin, cout)
            strides, pad, (h, wd) = conv_geometry(cfg, v, kernel.shape[:2])
            bias = w.get("bias", np.zeros(kernel.shape[3], np.float32))
            y = emit("Conv", [v.name, const(kernel.transpose(3, 2, 0, 1), "w"), const(bias, "b")], name,
                     kernel_shape=list(kernel.shape[:2]), strides=strides, auto_pad=pad)
            values[name] = _Value(activation(y, cfg.get("activation"), name), (kernel.shape[3], h, wd))
        elif kind in ("SeparableConv2D", "DepthwiseConv2D"):
            depth = w["depthwise_kernel"]  # (kh, kw, cin, multiplier)
            kh, kw, cin, mult = depth.shape
            strides, pad, (h, wd) = conv_geometry(cfg, v, (kh, kw))
            dw = depth.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)
            if kind == "DepthwiseConv2D":
                bias = w.get("bias", np.zeros(cin * mult, np.float32))
                y = emit("Conv", [v.name, const(dw, "w"), const(bias, "b")], name, group=cin,
                         kernel_shape=[kh, kw], strides=strides, auto_pad=pad)
                out_c = cin * mult
            else:
                y = emit("Conv", [v.name, const(dw, "w")], name, group=cin, kernel_shape=[kh, kw], strides=strides,
                         auto_pad=pad)
                point = w["pointwise_kernel"]  # (1, 1, cin*mult, cout)
                out_c = point.shape[3]
                bias = w.get("bias", np.zeros(out_c, np.float32))
                y = emit("Conv", [y, const(point.transpose(3, 2, 0, 1), "w"), const(bias, "b")], name,
                         kernel_shape=[1, 1])
            values[name] = _Value(activation(y, cfg.get("activation"), name), (out_c, h, wd))
        elif kind == "BatchNormalization":
            axis = cfg.get("axis", -1)
            axis = axis[0] if isinstance(axis, list) else axis
            feature_axis = 1 if channels_first else -1
            if len(v.shape) == 3 and axis not in (feature_axis, 3 if not channels_first else 1):
                raise KerasFormatError(f"`{name}`: batch norm over axis {axis} is not the channel axis")
            channels = v.shape[0]
            gamma = w.get("gamma", np.ones(channels, np.float32))
            beta = w.get("beta", np.zeros(channels, np.float32))
            mul = gamma / np.sqrt(w["moving_variance"] + float(cfg.get("epsilon", 1e-3)))
            add = beta - w["moving_mean"] * mul
            tail = (-1, 1, 1) if len(v.shape) == 3 else (-1,)
            y = emit("Add", [emit("Mul", [v.name, const(mul.reshape(tail).astype(np.float32))], name),
                             const(add.reshape(tail).astype(np.float32))], name)
            values[name] = _Value(y, v.shape)
        elif kind in ("Activation", "ReLU"):
            act = cfg.get("activation", "relu") if kind == "Activation" else "relu"
            if kind == "ReLU" and (cfg.get("max_value") is not None or cfg.get("negative_slope", 0.0)):
                raise KerasFormatError(f"`{name}`: clipped or leaky ReLU is not supported")
            if act == "softmax" and len(v.shape) != 1:
                raise KerasFormatError(f"`{name}`: softmax over a feature map")
            values[name] = _Value(activation(v.name, act, name), v.shape)
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            pool = _pair(cfg.get("pool_size", 2))
            strides = _pair(cfg.get("strides") or pool)
            padding = cfg.get("padding", "valid")
            op = "MaxPool" if kind == "MaxPooling2D" else "AveragePool"
            y = emit(op, [v.name], name, kernel_shape=list(pool), strides=list(strides),
                     auto_pad="SAME_UPPER" if padding == "same" else "VALID")
            same = padding == "same"
            h = spatial_out(v.shape[1], pool[0], strides[0], same)
            wd = spatial_out(v.shape[2], pool[1], strides[1], same)
            values[name] = _Value(y, (v.shape[0], h, wd))
        elif kind == "GlobalAveragePooling2D":
            y = emit("Flatten", [emit("GlobalAveragePool", [v.name], name)], name, axis=1)
            values[name] = _Value(y, (v.shape[0],))
        elif kind == "ZeroPadding2D":
            pad = cfg.get("padding", 1)
            if isinstance(pad, int | float):
                (top, bottom), (left, right) = (int(pad),) * 2, (int(pad),) * 2
            elif isinstance(pad[0], int | float):
                (top, bottom), (left, right) = (int(pad[0]),) * 2, (int(pad[1]),) * 2
            else:
                (top, bottom), (left, right) = (int(p) for p in pad[0]), (int(p) for p in pad[1])
            pads = np.array([0, 0, top, left, 0, 0, bottom, right], np.int64)
            y = emit("Pad", [v.name, const(pads, "pads")], name, mode="constant")
            values[name] = _Value(y, (v.shape[0], v.shape[1] + top + bottom, v.shape[2] + left + right))
        elif kind == "Add":
            if any(i.shape != v.shape for i in ins):
                raise KerasFormatError(f"`{name}`: adding tensors of different shapes")
            y = ins[0].name
            for other in ins[1:]:
                y = emit("Add", [y, other.name], name)
            values[name] = _Value(y, v.shape)
        elif kind == "Concatenate":
            axis = int(cfg.get("axis", -1))
            rank = len(v.shape) + 1
            axis %= rank
            onnx_axis = axis if (channels_first or rank == 2) else (0, 2, 3, 1)[axis]
            if rank == 4 and onnx_axis != 1:
                raise KerasFormatError(f"`{name}`: only channel concatenation is supported")
            size = sum(i.shape[0] for i in ins) if rank == 4 else sum(i.shape[-1] for i in ins)
            y = emit("Concat", [i.name for i in ins], name, axis=1)
            values[name] = _Value(y, (size, *v.shape[1:]) if rank == 4 else (size,))
        elif kind == "Flatten":
            src = v.name
            if len(v.shape) == 3 and not channels_first and (v.shape[1], v.shape[2]) != (1, 1):
                src = emit("Transpose", [src], name, perm=[0, 2, 3, 1])  # Keras flattens H, W, C
            values[name] = _Value(emit("Flatten", [src], name, axis=1), (int(np.prod(v.shape)),))
        elif kind == "Dense":
            kernel = w["kernel"]  # (in, out)
            if len(v.shape) != 1 or v.shape[0] != kernel.shape[0]:
                raise KerasFormatError(f"`{name}`: dense layer on a {v.shape} input")
            y = emit("MatMul", [v.name, const(kernel, "fc")], name)
            if "bias" in w:
                y = emit("Add", [y, const(w["bias"], "b")], name)
            values[name] = _Value(activation(y, cfg.get("activation"), name), (kernel.shape[1],))
        elif kind == "Dropout":
            values[name] = v
        elif kind == "L2Normalize":
            if len(v.shape) != 1:
                raise KerasFormatError(f"`{name}`: L2 normalisation of a feature map")
            values[name] = _Value(emit("LpNormalization", [v.name], name, axis=1, p=2), v.shape)
        else:
            raise KerasFormatError(f"unsupported Keras layer `{kind}` (`{name}`)")
        last = name
        if name == until:
            break
    final = values[last]
    return builder.model("keras_model", final.name, (input_name, ["N", *input_shape]),
                         (output_name, ["N", *final.shape]))
