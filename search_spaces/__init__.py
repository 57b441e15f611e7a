"""search_spaces: one define-by-run Optuna space per baseline.

Each module ``search_spaces/<baseline>.py`` has ``define_space(trial, *, task="offline",
size="full") -> dict``: it only calls ``trial.suggest_*`` (conditional parameters included) and
returns every value it fixed, keyed by Hydra override paths (``baseline.trainer.lr``,
``task.window_size``), so a sampled trial is also a list of ``reactune`` overrides. No computation
happens inside a space. Ranges follow ``shared/spec/react-baselines.md`` 4.7; ``size="tiny"``
shrinks only the architecture widths/depths and crops (smoke runs and the demo).

Importing this package loads optuna only for type names (no ray, no hydra).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from search_spaces import perfrdiff, regnn, transvae

TASKS = ("offline", "online")
SIZES = ("full", "tiny")

_SPACES: dict[str, Callable[..., dict[str, Any]]] = {
    "perfrdiff": perfrdiff.define_space,
    "regnn": regnn.define_space,
    "transvae": transvae.define_space,
}


def available() -> list[str]:
    """Baselines that have a search space."""
    return sorted(_SPACES)


def get(name: str, *, task: str = "offline", size: str = "full") -> Callable[[Any], dict[str, Any]]:
    """The define-by-run function ``space(trial) -> dict`` of baseline ``name`` for a task/size.

    Args:
        name: a baseline (``available()``).
        task: "offline" or "online" (online adds the window-size parameter).
        size: "full" (published architecture ranges) or "tiny" (small widths for smoke runs).

    Returns:
        A one-argument function, as Optuna's ``study.optimize`` and Ray's ``OptunaSearch(space=)``
        call it.
    """
    if name not in _SPACES:
        raise ValueError(f"no search space for baseline {name!r}; available: {available()} "
                         f"(add search_spaces/{name}.py and register it here)")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    return functools.partial(_SPACES[name], task=task, size=size)


__all__ = ["SIZES", "TASKS", "available", "get"]
