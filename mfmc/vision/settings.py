"""Settings of the vision package, read once at the application's edge and handed to the library.

The library never reads environment variables: `mfmc.cli` and `mfmc.server` call
`VisionSettings.from_env(os.environ)` once and pass the result to `configure()`, which makes it the process's
settings (`current()`); code that builds models reads them from there or takes them as an argument. A program
using the library directly gets the defaults unless it calls `configure()` itself.

| variable | field | default |
|---|---|---|
| `MFMC_BACKEND` | `backend`: `auto` (an InsightFace pack if found, else embedded), `embedded`, `insightface` | `auto` |
| `MFMC_DEVICE` | `allow_gpu`: `cpu` keeps onnxruntime on the CPU; anything else lets it use an accelerator | `auto` |
| `MFMC_TENSORRT` | `tensorrt`: `1` allows TensorRT (it compiles engines for minutes on first use) | off |
| `MFMC_DLIB_BACKEND` | `dlib_backend`: `auto`, `onnxruntime` or `dlib` for the dlib recognizer | `auto` |
| `MFMC_SKIP_MODEL_HASH` | `verify_model_hashes`: `1` skips the sha256 check of model files | checked |
| `MFMC_INSIGHTFACE_ROOT` | `insightface_root`: where InsightFace packs are looked for | `~/.insightface/models` |
| `MFMC_INSIGHTFACE_PACK` | `insightface_pack`: which pack (folder name) to use | buffalo_l, else the first |
| `MFMC_CACHE_DIR` | `cache_dir`: derived model files (`mfmc.vision.cache`); `off`: none | `~/.cache/mfmc/models` |
| `MFMC_MODEL_PATH` | `model_path`: `node_modules` folders (`:`-separated) of optional npm models | below |
| `MFMC_SWAP_MODEL` | `swap_model`: the `onnx` swapper's graph when it is built by name (mfmc ships none) | none |
| `MFMC_SWAP_ENCODER` | `swap_encoder`: the `onnx` swapper's ArcFace identity encoder, likewise | none |

`model_path` defaults to `~/.local/share/mfmc/npm/node_modules`, then a source checkout's `build/npm/node_modules`.

This module imports only the standard library (the CLI reads it before knowing which command runs).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mfmc.errors import InvalidInputError

BACKENDS = ("auto", "embedded", "insightface")
DLIB_BACKENDS = ("auto", "onnxruntime", "dlib")
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "mfmc" / "models"
DEFAULT_INSIGHTFACE_ROOT = Path("~/.insightface/models").expanduser()
PATH_SEPARATOR = ";" if sys.platform == "win32" else ":"  # os.pathsep, without importing os (a test checks)
# Where `npm install --prefix ~/.local/share/mfmc/npm PACKAGE@VERSION` puts optional models (MODELS.md).
USER_NPM_MODULES = Path.home() / ".local" / "share" / "mfmc" / "npm" / "node_modules"


def _default_model_path() -> tuple[Path, ...]:
    """The user's npm folder, then, when mfmc runs from a source checkout (a pyproject.toml next to the package),
    the checkout's `build/npm/node_modules` (where .ci/run installs them)."""
    checkout = Path(__file__).resolve().parents[2]
    local = (checkout / "build" / "npm" / "node_modules",) if (checkout / "pyproject.toml").is_file() else ()
    return (USER_NPM_MODULES, *local)


DEFAULT_MODEL_PATH = _default_model_path()


@dataclass(frozen=True)
class VisionSettings:
    """How the vision package picks and loads its models (see the module's table for the variables)."""

    backend: str = "auto"
    allow_gpu: bool = True
    tensorrt: bool = False
    dlib_backend: str = "auto"
    verify_model_hashes: bool = True
    insightface_root: Path = DEFAULT_INSIGHTFACE_ROOT
    insightface_pack: str | None = None
    cache_dir: Path | None = field(default=DEFAULT_CACHE_DIR)
    model_path: tuple[Path, ...] = DEFAULT_MODEL_PATH
    swap_model: Path | None = None
    swap_encoder: Path | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise InvalidInputError(f"unknown backend `{self.backend}`",
                                    help="use `auto`, `embedded` or `insightface` (MFMC_BACKEND)")
        if self.dlib_backend not in DLIB_BACKENDS:
            raise InvalidInputError(f"unknown dlib recognizer backend `{self.dlib_backend}`",
                                    help="use `auto`, `onnxruntime` or `dlib` (MFMC_DLIB_BACKEND)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> VisionSettings:
        """The settings the `MFMC_*` variables of `environ` ask for: the edge (CLI, server) passes `os.environ`;
        unset or empty variables give the defaults."""

        def get(name: str) -> str:
            return environ.get(name, "").strip()

        cache = get("MFMC_CACHE_DIR")
        root = get("MFMC_INSIGHTFACE_ROOT")
        model_path = [Path(p).expanduser() for p in get("MFMC_MODEL_PATH").split(PATH_SEPARATOR) if p.strip()]
        swap_model, swap_encoder = get("MFMC_SWAP_MODEL"), get("MFMC_SWAP_ENCODER")
        return cls(
            backend=(get("MFMC_BACKEND") or "auto").lower(),
            allow_gpu=get("MFMC_DEVICE").lower() != "cpu",
            tensorrt=get("MFMC_TENSORRT") == "1",
            dlib_backend=(get("MFMC_DLIB_BACKEND") or "auto").lower(),
            verify_model_hashes=get("MFMC_SKIP_MODEL_HASH") != "1",
            insightface_root=Path(root).expanduser() if root else DEFAULT_INSIGHTFACE_ROOT,
            insightface_pack=get("MFMC_INSIGHTFACE_PACK") or None,
            cache_dir=None if cache.lower() == "off" else Path(cache).expanduser() if cache else DEFAULT_CACHE_DIR,
            model_path=tuple(model_path) or DEFAULT_MODEL_PATH,
            swap_model=Path(swap_model) if swap_model else None,
            swap_encoder=Path(swap_encoder) if swap_encoder else None,
        )


_state: dict[str, VisionSettings] = {"current": VisionSettings()}
_lock = threading.Lock()


def configure(settings: VisionSettings) -> None:
    """Make `settings` the process's vision settings (the edge calls this once, before building models). A
    later `FacePipeline.default()` is built with them; the disk cache moves to `settings.cache_dir`."""
    with _lock:
        _state["current"] = settings
        cache = sys.modules.get("mfmc.vision.cache")  # not imported yet: it starts from `current()` when it is
        if cache is not None:
            cache.set_cache_dir(settings.cache_dir)


def current() -> VisionSettings:
    """The settings given to `configure()`, or the defaults."""
    return _state["current"]
