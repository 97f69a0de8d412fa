"""ONNX Runtime sessions with execution providers chosen from what is actually available."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

# Fastest first; anything onnxruntime reports that is not listed goes after these, CPU last.
PREFERRED_PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "ROCMExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
    "OpenVINOExecutionProvider",
)
# Reported by some wheels but never useful for local inference.
IGNORED_PROVIDERS = frozenset({"AzureExecutionProvider"})


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def choose_providers(available: list[str] | None = None, *, allow_gpu: bool | None = None,
                     tensorrt: bool | None = None) -> list[str]:
    """Order providers: accelerators first (unless `allow_gpu` is False), CPU always last as a fallback.

    TensorRT is skipped unless `tensorrt`: it compiles engines for minutes on first use. Both default to the
    process's `VisionSettings` (`MFMC_DEVICE=cpu`, `MFMC_TENSORRT=1` at the CLI or server).
    """
    from mfmc.vision.settings import current

    available = available_providers() if available is None else list(available)
    settings = current()
    allow_gpu = settings.allow_gpu if allow_gpu is None else allow_gpu
    tensorrt = settings.tensorrt if tensorrt is None else tensorrt
    chosen = []
    if allow_gpu:
        for name in PREFERRED_PROVIDERS:
            if name == "TensorrtExecutionProvider" and not tensorrt:
                continue
            if name in available:
                chosen.append(name)
    chosen.append("CPUExecutionProvider")
    return chosen


def create_session(model: str | Path | bytes, *, providers: list[str] | None = None, threads: int | None = None,
                   save_optimized: Path | None = None) -> Any:
    """An `onnxruntime.InferenceSession` with quiet logging and the chosen providers; `save_optimized`: where
    onnxruntime writes the graph after its portable (extended) optimizations."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # some shipped graphs warn about every initializer
    if threads:
        options.intra_op_num_threads = threads
    if save_optimized is not None:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(save_optimized)
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=providers or choose_providers())


#: Part of the disk cache key of optimized graphs (with onnxruntime's version): bump when `optimized_graph` changes.
OPTIMIZED_VERSION = "1"


def optimized_graph(model: bytes) -> bytes:
    """`model` as onnxruntime's CPU provider rewrites it with its extended optimizations (constant folding,
    fused convolutions and activations), serialized. What is left for a session to do on this graph is the
    hardware-specific layout rewrite only, so a session loads it in a fraction of the time; it computes the same
    outputs (tests/vision/test_runtime_cache.py)."""
    with tempfile.TemporaryDirectory(prefix="mfmc-ort-") as tmp:
        target = Path(tmp) / "optimized.onnx"
        create_session(model, providers=["CPUExecutionProvider"], threads=1, save_optimized=target)
        return target.read_bytes()


def cached_session(name: str, source: Path, model: Callable[[], bytes], *, version: str, content_hash: str = "",
                   threads: int | None = None) -> Any:
    """A CPU onnxruntime session for the graph `model()` derived from the file `source`, through the disk cache
    (`mfmc.vision.cache`): the entry holds the graph as onnxruntime optimized it (`optimized_graph`), keyed by
    `name`, `version`, onnxruntime's version and the source's sha256, size and mtime. A later process skips both
    the conversion and most of the session's graph optimization (e.g. FaceNet: 0.29 s -> 0.12 s).

    When onnxruntime cannot write the optimized graph, the session is made from `model()` directly (logged)."""
    import onnxruntime as ort

    from mfmc.vision.cache import load_or_build

    def build() -> bytes:
        graph = model()
        try:
            return optimized_graph(graph)
        except Exception as error:  # an old or unusual onnxruntime: the plain graph still works, only slower
            _log.warning("onnxruntime could not save the optimized `%s` graph (%s); caching it unoptimized",
                         name, error)
            return graph

    def use(data: bytes) -> Any:
        return create_session(data, providers=["CPUExecutionProvider"], threads=threads or os.cpu_count())

    return load_or_build(name, Path(source), version=f"{version}/ort-{ort.__version__}/{OPTIMIZED_VERSION}",
                         content_hash=content_hash, build=build, use=use)
