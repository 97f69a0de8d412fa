"""The `Swapper` protocol and the registry that finds swappers by name."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from mfmc.errors import InvalidInputError
from mfmc.swap.patch import FacePatch

if TYPE_CHECKING:
    from mfmc.swap.accessories import Kept


@dataclass(frozen=True)
class SwapResult:
    """A swapped face as a patch, plus short notes on choices made (kept mouth, kept eyes …) for the report."""

    patch: FacePatch
    notes: tuple[str, ...] = ()


@runtime_checkable
class Swapper(Protocol):
    """Puts the identity of a target face onto a source face, keeping the source's pose and expression.

    `image` is the source photo (RGB uint8) and `source_landmarks` the (68, 2) iBUG points of the face to
    replace; `target_image`/`target_landmarks` the synthetic identity. `alpha` in [0, 1] moves that much of the
    target's facial geometry in (0 keeps the source geometry). The result must not touch pixels outside its
    patch mask. `kept`: what the source wears that the fake keeps (`mfmc.swap.accessories.kept_regions` of the
    image and source landmarks), when the caller has it — the generator computes it once per face, not once per
    candidate; None: the swapper finds it. Swappers are not verified here: FakeGenerator verifies every result.
    """

    name: str

    def swap(
        self,
        image: np.ndarray,
        source_landmarks: np.ndarray,
        target_image: np.ndarray,
        target_landmarks: np.ndarray,
        *,
        alpha: float = 0.0,
        kept: Sequence[Kept] | None = None,
    ) -> SwapResult: ...


_REGISTRY: dict[str, Callable[..., Swapper]] = {}


def register_swapper(name: str) -> Callable[[Callable[..., Swapper]], Callable[..., Swapper]]:
    """Decorator registering a swapper factory (a class or a function) under `name`."""

    def deco(factory: Callable[..., Swapper]) -> Callable[..., Swapper]:
        _REGISTRY[name] = factory
        return factory

    return deco


def swapper_names() -> list[str]:
    """Names of the registered swappers, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def create_swapper(name: str, **options: Any) -> Swapper:
    """Build the swapper registered as `name`; unknown names raise InvalidInputError with a suggestion."""
    _load_builtins()
    factory = _REGISTRY.get(name)
    if factory is None:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f"did you mean `{close[0]}`?" if close else f"known swappers: {', '.join(sorted(_REGISTRY))}"
        raise InvalidInputError(f"unknown swapper `{name}`", help=hint)
    return factory(**options)


def _load_builtins() -> None:
    # importing the modules runs their @register_swapper decorators
    from mfmc.swap import onnx_swapper, split, warp  # noqa: F401
