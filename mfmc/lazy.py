"""Package attributes imported on first use (PEP 562): a package maps each public name to its submodule, so that
importing the package (or one light submodule of it) does not import the heavy ones."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_attributes(package: str, where: Mapping[str, str], namespace: dict[str, object]) -> Callable[[str], object]:
    """A module-level `__getattr__` for `package`: `name` is imported from `package.<where[name]>` on first use and
    kept in `namespace` (the package's globals), so later lookups do not come back here."""

    def __getattr__(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module `{package}` has no attribute `{name}`")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    return __getattr__
