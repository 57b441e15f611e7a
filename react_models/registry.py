"""Model registry: build any baseline from ``(name, config dict)``."""

from __future__ import annotations

import dataclasses
from typing import Any

from react_models.base import ReactionModel

_REGISTRY: dict[str, type[ReactionModel]] = {}


def register(cls: type[ReactionModel]) -> type[ReactionModel]:
    """Class decorator: ``@register`` on a ReactionModel subclass with ``name`` set."""
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} must set a non-empty class attribute `name`")
    _REGISTRY[cls.name] = cls
    return cls


def available() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def model_class(name: str) -> type[ReactionModel]:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        ) from None


def make_config(name: str, config: dict[str, Any] | None = None) -> Any:
    """Build the model's frozen Config from a (partial) dict, rejecting unknown keys."""
    cls = model_class(name)
    config = dict(config or {})
    known = {f.name for f in dataclasses.fields(cls.config_cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(
            f"unknown config key(s) {unknown} for model {name!r}; allowed: {sorted(known)}"
        )
    return cls.config_cls(**config)


def build(name: str, config: dict[str, Any] | None = None) -> ReactionModel:
    """Build model ``name`` from a config dict (missing keys take the Config defaults)."""
    return model_class(name)(make_config(name, config))


def _load_builtin() -> None:
    # Importing the model modules runs their @register decorators.
    import importlib

    for mod in ("react_models.transvae", "react_models.perfrdiff", "react_models.regnn"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:  # a model file not written yet must not hide the others
            if e.name != mod:
                raise
