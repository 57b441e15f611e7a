"""The leaderboard: the best model per baseline next to the naive reference rows, every metric.

Reference rows (GT, Random, Mime, MeanFr; ``metrics.baselines``) are scored on the same split,
the same appropriate sets and the same K as the models, so every column is comparable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.progress import format_table

# Column order of the challenge's evaluate.py (FRRea: the feature-space variant, not image FID).
_ORDER = ("FRCorr", "FRDist", "FRDiv", "FRVar", "FRDvs", "FRRea_features", "FRSyn")


def _directions() -> dict[str, str]:
    """metric -> "max" | "min", from ``metrics.METRICS`` (the one place directions are defined)."""
    from metrics import METRICS as HIGHER_IS_BETTER

    return {m: "max" if up else "min" for m, up in HIGHER_IS_BETTER.items()}


def columns(rows: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Metric columns: the challenge order first, then any other metric the rows have."""
    present = {m for r in rows.values() for m in r}
    return [m for m in _ORDER if m in present] + sorted(present - set(_ORDER))


REFERENCES = ("GT", "Random", "Mime", "MeanFr")


def reference_rows(cfg: Mapping[str, Any], eval_set: Any | None = None) -> dict[str, dict]:
    """Score the naive references on the config's full validation set.

    Args:
        cfg: the resolved config (``data.uri``, ``eval.*``, ``seed``).
        eval_set: the eval set to use (default: ``trainable.full_eval_set(cfg)``).

    Returns:
        {"GT": {metric: value}, "Random": ..., "Mime": ..., "MeanFr": ...}.
    """
    from metrics.baselines import reference_rows as score_references
    from orchestrator.trainable import full_eval_set, storage_options
    from react_data import stream

    eval_set = eval_set if eval_set is not None else full_eval_set(cfg)
    opts = storage_options(cfg)
    stats = stream.train_stats(cfg["data"]["uri"], **({"storage_options": opts} if opts else {}))
    train_mean = stats["listener_attr_mean"]  # MeanFr: the train listeners' mean frame
    rows = score_references(eval_set.listener, eval_set.speaker, eval_set.appropriate,
                            train_mean, k=int(cfg["eval"]["num_samples"]), seed=int(cfg["seed"]))
    return {name: {k: float(v) for k, v in row.items()} for name, row in rows.items()}


def render(models: Mapping[str, Mapping[str, float]],
           references: Mapping[str, Mapping[str, float]], *, title: str = "") -> str:
    """Text leaderboard: one row per model, then the reference rows; best model value starred.

    Args:
        models: row name (e.g. the baseline) -> {metric: value}.
        references: reference name -> {metric: value}.
        title: printed above the table.
    """
    better = _directions()
    cols = columns({**models, **references})
    headers = ["model"] + [f"{m} {'(+)' if better.get(m) == 'max' else '(-)'}" for m in cols]
    best = {}
    for m in cols:
        values = [r[m] for r in models.values() if m in r]
        if values and m in better:
            best[m] = (max if better[m] == "max" else min)(values)
    body = []
    for name, row in models.items():
        body.append([name] + [_cell(row.get(m), row.get(m) == best.get(m)) for m in cols])
    for name, row in references.items():
        body.append([f"ref:{name}"] + [_cell(row.get(m), False) for m in cols])
    legend = "(+) higher is better, (-) lower is better, * best model in the column"
    return "\n".join(x for x in (title, format_table(headers, body), legend) if x)


def _cell(value: float | None, star: bool) -> str:
    if value is None:
        return "-"
    text = f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3g}"
    return text + ("*" if star else "")


def write(path: str | Path, models: Mapping[str, Mapping[str, float]],
          references: Mapping[str, Mapping[str, float]], extra: Mapping[str, Any] | None = None
          ) -> Path:
    """Save the leaderboard as JSON (``models``, ``references`` and any ``extra`` fields)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"models": models, "references": references, **(extra or {})},
                               indent=1))
    return path
