"""The architecture registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

ModelFactory = Callable[..., nn.Module]
_REGISTRY: dict[str, ModelFactory] = {}


def register_model(factory: ModelFactory) -> ModelFactory:
    """Decorator: registers ``factory`` under its function name."""
    if factory.__name__ in _REGISTRY:
        raise ValueError(f"architecture {factory.__name__!r} is registered already")
    _REGISTRY[factory.__name__] = factory
    return factory


def create_model(name: str, **config: Any) -> nn.Module:
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown architecture {name!r}; known: {', '.join(list_models())}"
        ) from None
    return factory(**config)


def list_models() -> list[str]:
    return sorted(_REGISTRY)
