"""ONNX Runtime sessions with execution providers chosen from what is actually available."""

from __future__ import annotations

import functools
import hashlib
import logging
import mmap
import os
import platform
import shutil
import struct
import tempfile
import zlib
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


def create_session(model: str | Path | bytes, *, providers: list[str] | None = None,
                   threads: int | None = None, optimize: bool = True, save_optimized: str | None = None,
                   save_weights: str | None = None, weights_folder: Path | None = None) -> Any:
    """An `onnxruntime.InferenceSession` with quiet logging and the chosen providers. `optimize=False` skips
    onnxruntime's graph optimizations (for a graph it optimized already); `save_optimized` writes the optimized
    graph to that file, with its weights (initializers of 1 kB and more) in the file named `save_weights` beside
    it when given. `weights_folder`: where the weights file a graph (given as bytes) names is."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # some shipped graphs warn about every initializer
    # onnxruntime's pool threads spin-wait for work between and after runs by default: on the 2 shared cores
    # mfmc targets they took the cores from the Python work between runs (and from the models loading beside
    # it), costing 2-3x the CPU of a cold anonymize (benchmarks/bench_cli.py); idle threads sleep instead
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if save_optimized:
        options.optimized_model_filepath = save_optimized
        if save_weights:
            options.add_session_config_entry("session.optimized_model_external_initializers_file_name", save_weights)
            options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes",
                                             "1024")
    if weights_folder is not None:
        options.add_session_config_entry("session.model_external_initializers_file_folder_path", str(weights_folder))
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=providers or choose_providers())


@functools.lru_cache(maxsize=1)
def cpu_signature() -> str:
    """What an optimized CPU graph depends on besides onnxruntime's version: the machine and the CPU's model
    and instruction-set flags (onnxruntime's layout optimizations pick kernels for them)."""
    info = ""
    try:
        with open("/proc/cpuinfo") as handle:
            lines = [line for line in handle.read(65536).splitlines() if line.startswith(("model name", "flags"))]
        info = "\n".join(dict.fromkeys(lines))
    except OSError:
        info = platform.processor()
    return hashlib.sha256(f"{platform.machine()}\n{info}".encode()).hexdigest()[:16]


def cached_cpu_session(name: str, source: Path, *, version: str, build: Callable[[], bytes] | None = None,
                       content_hash: str = "", threads: int | None = None) -> Any:
    """A CPU session for the graph derived from `source` (`build()`, or the disk cache's copy of it; `source`
    itself, not copied to the cache, when `build` is None), created
    from onnxruntime's own optimized form of the graph when the disk cache has it (`mfmc.vision.cache`).

    Creating a session optimizes the graph first: 0.2-0.35 s of CPU for FaceNet on the shared 2-core machine,
    against 0.05-0.07 s to open the optimized graph with optimizations off (same outputs, tested). So the first
    process saves the optimized graph (keyed like the graph, plus onnxruntime's version and `cpu_signature`)
    and later ones open it. The optimized graph is kept in two files: its weights as they lie in memory
    (`<entry>.weights`), which onnxruntime maps into memory instead of reading and copying them (FaceNet's 94 MB:
    0.29 -> 0.02 s of CPU), and the entry itself, the small graph with the weights file's length and CRC-32,
    checked before each use. An unusable entry or weights file is logged and rebuilt; without a cache folder
    nothing is saved."""
    import onnxruntime as ort

    from mfmc.vision import cache

    cpu = ["CPUExecutionProvider"]
    opt_version = f"{version}|onnxruntime {ort.__version__}|{cpu_signature()}|weights apart"
    opt_path = cache.entry_path(f"{name}-ort", source, version=opt_version, content_hash=content_hash)
    if opt_path is not None:
        data = cache.read_entry(opt_path)
        if data is not None:
            try:
                graph = _checked_graph(data, opt_path.with_suffix(WEIGHTS))
                return create_session(graph, providers=cpu, threads=threads, optimize=False,
                                      weights_folder=opt_path.parent)
            except Exception as error:  # a foreign or damaged entry or weights file: built again below, replaced
                _log.warning("optimized graph `%s` unusable (%s); rebuilding it", opt_path, error)

    def use(data: bytes) -> Any:
        if opt_path is None:
            return create_session(data, providers=cpu, threads=threads)
        try:
            opt_path.parent.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=opt_path.name, suffix=".tmp", dir=opt_path.parent))
        except OSError as error:  # an unwritable cache: the session alone
            _log.debug("cache: cannot save the optimized graph of %s: %s", name, error)
            return create_session(data, providers=cpu, threads=threads)
        try:
            weights = opt_path.with_suffix(WEIGHTS)
            session = create_session(data, providers=cpu, threads=threads, save_optimized=str(work / "graph.onnx"),
                                     save_weights=weights.name)
            _save_optimized(opt_path, work / "graph.onnx", work / weights.name)
            return session
        finally:
            shutil.rmtree(work, ignore_errors=True)

    if build is None:
        return use(Path(source).read_bytes())
    return cache.load_or_build(name, source, version=version, content_hash=content_hash, build=build, use=use)


WEIGHTS = ".weights"  # suffix of an optimized graph's weights file, beside its cache entry
_GRAPH_HEAD = struct.Struct("<16sQI")  # tag, the weights file's length and CRC-32, then the graph
_GRAPH_TAG = b"mfmc-ort-graph-1"


def _save_optimized(entry: Path, graph: Path, weights: Path) -> None:
    """Move the weights file onnxruntime wrote beside `graph` next to `entry` (atomically), then write the entry:
    the graph, with the weights file's length and CRC-32. A graph without weights of 1 kB or more gets an empty
    weights file. An unwritable cache folder is logged at debug level (the session is kept)."""
    from mfmc.vision import cache

    try:
        if not weights.exists():
            weights.write_bytes(b"")
        length, crc = _length_and_crc(weights)
        os.replace(weights, entry.with_suffix(WEIGHTS))
        cache.write_entry(entry, _GRAPH_HEAD.pack(_GRAPH_TAG, length, crc) + graph.read_bytes())
    except OSError as error:
        _log.debug("cache: cannot save the optimized graph `%s`: %s", entry, error)


def _checked_graph(data: bytes, weights: Path) -> bytes:
    """The graph of an optimized-graph entry, once its weights file is found whole (length and CRC-32 as
    recorded); raises ValueError otherwise (a missing file: OSError)."""
    if len(data) < _GRAPH_HEAD.size:
        raise ValueError("not an optimized-graph entry")
    tag, length, crc = _GRAPH_HEAD.unpack_from(data)
    if tag != _GRAPH_TAG:
        raise ValueError("not an optimized-graph entry")
    if _length_and_crc(weights) != (length, crc):
        raise ValueError(f"weights file `{weights.name}` changed or damaged")
    return data[_GRAPH_HEAD.size :]


def _length_and_crc(path: Path) -> tuple[int, int]:
    """A file's length and CRC-32, read through a memory map (no copy; zlib releases the GIL meanwhile)."""
    with path.open("rb") as handle:
        length = os.fstat(handle.fileno()).st_size
        if not length:
            return 0, 0
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return length, zlib.crc32(view)
