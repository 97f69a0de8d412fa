"""What the project's converters to ONNX (dlib, FaceNet, Keras, TFLite) share: the graph being written.

Imported by their `build_onnx` only (onnx is not loaded for start-up). Every converter names initializers and
intermediate values `prefix` + a running count, and ends with an `Identity` onto the output's name, opset 17 and
IR version 8 (readable by any onnxruntime ≥ 1.10), checked by `onnx.checker`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def spatial_out(size: int, kernel: int, stride: int, same: bool, dilation: int = 1) -> int:
    """A convolution's or pooling's output length along one axis: ceil(size / stride) with SAME padding (as
    TensorFlow, Keras and TFLite pad, ONNX's SAME_UPPER), else the windows that fit (VALID)."""
    span = (kernel - 1) * dilation + 1
    return -(-size // stride) if same else (size - span) // stride + 1


class GraphBuilder:
    """The nodes and initializers of one graph, and fresh names from one counter for both."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, prefix: str) -> str:
        """A name not used before in this graph: `prefix` and the running count."""
        self._count += 1
        return f"{prefix}{self._count}"

    def const(self, array: np.ndarray, prefix: str = "c") -> str:
        """An initializer holding `array` (its dtype), by a fresh name."""
        key = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), key))
        return key

    def node(self, op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        """Append one node writing `out`; returns `out`."""
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def model(self, graph_name: str, final: str, inputs: tuple[str, list[str | int]],
              outputs: tuple[str, list[str | int]], *, input_type: int = TensorProto.FLOAT,
              check: bool = True) -> onnx.ModelProto:
        """The checked model: value `final` copied to the output's name, one input and one float output.
        `check=False` leaves the check to `checked_bytes`, for a caller that serializes the model anyway."""
        (input_name, input_dims), (output_name, output_dims) = inputs, outputs
        self.nodes.append(helper.make_node("Identity", [final], [output_name]))
        graph = helper.make_graph(
            self.nodes, graph_name,
            [helper.make_tensor_value_info(input_name, input_type, input_dims)],
            [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, output_dims)],
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="mfmc")
        model.ir_version = 8
        if check:
            onnx.checker.check_model(model)
        return model


def checked_bytes(model: onnx.ModelProto) -> bytes:
    """The serialized model, checked by `onnx.checker` on these bytes: the checker serializes a model it is given
    as a message, so a large graph (FaceNet's 94 MB) checked and then serialized was serialized twice."""
    data = model.SerializeToString()
    onnx.checker.check_model(data)
    return data
