"""Data flows one way (rules -> decisions -> rendering -> faces/models): the lower layers, mfmc.vision (faces and
models), mfmc.pool (targets, built on vision) and mfmc.policy (rules), import nothing from the swap or above it.

Every import statement of their modules is read from the source (`ast.walk`: module level, inside functions and
methods, under `TYPE_CHECKING`), relative imports resolved, so an import deferred into a function to dodge a
cycle counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mfmc

ROOT = Path(mfmc.__file__).parent

# what each lower layer may import from mfmc besides itself (and `import mfmc`): the shared leaves, and for the
# pool the vision layer
SHARED = {"mfmc.errors", "mfmc.files", "mfmc.lazy", "mfmc.vocabulary"}
ALLOWED: dict[str, set[str]] = {
    "vision": SHARED,
    "pool": SHARED | {"mfmc.vision"},
    "policy": SHARED,
}

# imports upwards that exist and are owed a move down, as (module, imported module) (each entry must still be
# there: fixing one fails this test until the entry goes); none left since the pool's composite warps with
# `mfmc.vision.mesh`, not the swap's warp
KNOWN: set[tuple[str, str]] = set()


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, module) of every mfmc import in `path` (a file under `root`, the mfmc package), function-level ones
    included; `from a import b` gives `a.b` (b may be a submodule)."""
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)] + ([node.module] if node.module else []))
            out += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in out if name == "mfmc" or name.startswith("mfmc.")]


def _within(name: str, module: str) -> bool:
    return name == module or name.startswith(f"{module}.")


def _allowed(layer: str, name: str) -> bool:
    return name == "mfmc" or any(_within(name, ok) for ok in ALLOWED[layer] | {f"mfmc.{layer}"})


def _upward() -> set[tuple[str, str, int]]:
    """(module, imported name, line) of every import of a lower layer that its ALLOWED does not cover."""
    found = set()
    for layer in ALLOWED:
        for path in sorted((ROOT / layer).rglob("*.py")):
            found |= {(_module_name(path), name, line) for line, name in _imported(path) if not _allowed(layer, name)}
    return found


def _known(module: str, name: str) -> bool:
    return any(module == m and _within(name, target) for m, target in KNOWN)


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_lower_layers_do_not_import_upwards(layer: str) -> None:
    new = sorted(f"{module}:{line} imports {name}" for module, name, line in _upward()
                 if _within(module, f"mfmc.{layer}") and not _known(module, name))
    assert not new, "\n".join(new)


def test_known_upward_imports_are_still_there() -> None:
    found = _upward()
    stale = sorted(k for k in KNOWN if not any(m == k[0] and _within(n, k[1]) for m, n, _ in found))
    assert not stale, f"moved down: drop {stale} from KNOWN"


def test_the_scan_reads_function_level_and_relative_imports(tmp_path: Path) -> None:
    """The scan itself, on a module written here: an import inside a method, a relative one and a plain one are
    all read and refused (the sixth build's refit imported mfmc.swap.turned inside `DlibLandmarks68._refitted`)."""
    root = tmp_path / "mfmc"
    probe = root / "vision" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("import numpy\nfrom mfmc.vision import head\n\n\nclass A:\n    def f(self):\n"
                     "        from ..swap import turned\n        import mfmc.eval.photos\n"
                     "        from mfmc import service\n")
    names = [name for _, name in _imported(probe, root)]
    assert sorted(names) == ["mfmc.eval.photos", "mfmc.service", "mfmc.swap.turned", "mfmc.vision.head"]
    assert [n for n in names if not _allowed("vision", n)] == [n for n in names if n != "mfmc.vision.head"]
    # the real landmarker's deferred import of the refit is read too (now within vision)
    assert "mfmc.vision.turned.turned_landmarks" in {name for _, name in _imported(ROOT / "vision" / "landmarks.py")}
