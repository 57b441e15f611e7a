"""Model bundles: one file that rebuilds a trained model through the registry.

A bundle is ``torch.save`` of a dict of plain Python values and tensors (no pickled classes), so
it loads with ``torch.load(weights_only=True)``::

    {"format": "reactune-model-bundle", "bundle_version": 1, "schema_version": 1,
     "reactune_version": "0.1.0", "model": "transvae", "config": {...},
     "state_dict": {...}, "metrics": {"FRDist": ...}, "extra": {"overrides": [...]}}
"""

from __future__ import annotations

import importlib.metadata
import math
import numbers
from pathlib import Path
from typing import Any

import torch

from react_data import schema
from react_models.base import ReactionModel
from react_models.registry import available, build

BUNDLE_FORMAT = "reactune-model-bundle"
BUNDLE_VERSION = 1


def _reactune_version() -> str:
    try:
        return importlib.metadata.version("reactune")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (reactune is not installed as a package)"


def _plain(value: Any, where: str) -> Any:
    """Convert to plain Python types that ``weights_only`` loading accepts, or raise TypeError."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if hasattr(value, "item") and getattr(value, "size", None) == 1:  # numpy scalar / 1-element
        return _plain(value.item(), where)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} keys must be str, got {type(k).__name__} {k!r}")
            out[k] = _plain(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(
        f"{where} holds a {type(value).__name__}; bundles store only plain values (None, bool, "
        f"int, float, str, lists and dicts of them); convert it first"
    )


def save_bundle(path: str | Path, model: ReactionModel, *,
                metrics: dict[str, float] | None = None,
                extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (name, config, weights) and its provenance to one file.

    Args:
        path: destination file (parent folders are created); conventionally ``*.pt``.
        model: a registered ReactionModel.
        metrics: evaluation results to keep with the weights, e.g. ``{"FRDist": 81.2}``.
        extra: other plain-valued provenance, e.g. ``{"overrides": ["model.kl_p=1e-5"]}``.

    Returns:
        The path written.
    """
    if not isinstance(model, ReactionModel) or not model.name:
        raise TypeError(f"save_bundle needs a registered ReactionModel, got {type(model).__name__}")
    if model.name not in available():
        raise ValueError(f"model {model.name!r} is not registered (available: {available()}); "
                         f"decorate its class with @register")
    clean_metrics = _plain(dict(metrics or {}), "metrics")
    for k, v in clean_metrics.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise TypeError(f"metrics[{k!r}] must be a number, got {v!r}")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"metrics[{k!r}] is {v}; store only finite metric values")
    payload = {
        "format": BUNDLE_FORMAT,
        "bundle_version": BUNDLE_VERSION,
        "schema_version": schema.SCHEMA_VERSION,
        "reactune_version": _reactune_version(),
        "model": model.name,
        "config": _plain(model.config_dict(), "config"),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metrics": clean_metrics,
        "extra": _plain(dict(extra or {}), "extra"),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # readers never see a half-written bundle
    return path


def load_bundle(path: str | Path, map_location: str | torch.device = "cpu") -> ReactionModel:
    """Rebuild a model from a bundle written by :func:`save_bundle`.

    Args:
        path: the bundle file.
        map_location: where the weights go (``torch.load``'s argument).

    Returns:
        The model in eval mode, with ``model.bundle_info`` = the bundle dict minus the weights.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a bundle, another schema/bundle version, an unknown model, or weights
            that do not fit the config.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model bundle {path} does not exist; pass the .pt file written "
                                f"by save_bundle / the export stage")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for foreign or corrupt files
        raise ValueError(f"{path} is not a readable model bundle ({type(e).__name__}: {e}); "
                         f"bundles are written by react_models.save_bundle") from e
    if not isinstance(payload, dict) or payload.get("format") != BUNDLE_FORMAT:
        raise ValueError(f"{path} is not a reactune model bundle (no format={BUNDLE_FORMAT!r} "
                         f"entry); bundles are written by react_models.save_bundle")
    if payload.get("bundle_version") != BUNDLE_VERSION:
        raise ValueError(f"{path} has bundle_version {payload.get('bundle_version')!r}, this "
                         f"reactune reads {BUNDLE_VERSION}; re-export it with this version")
    if payload.get("schema_version") != schema.SCHEMA_VERSION:
        raise ValueError(
            f"{path} was trained on data schema version {payload.get('schema_version')!r}, this "
            f"reactune uses {schema.SCHEMA_VERSION}; retrain on re-prepared data or use the "
            f"reactune version that wrote it ({payload.get('reactune_version')})"
        )
    name = payload.get("model")
    if name not in available():
        raise ValueError(f"{path} holds model {name!r}, which is not registered here "
                         f"(available: {available()})")
    model = build(name, payload["config"])
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path}: the weights do not fit model {name!r} built from the bundle's "
                         f"config ({e})") from e
    model.to(map_location)
    model.eval()
    model.bundle_info = {k: v for k, v in payload.items() if k != "state_dict"}
    return model
