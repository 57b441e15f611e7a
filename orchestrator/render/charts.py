"""Charts of a search for the HTML report: Pareto plot, learning curves, parameter importance.

Each function returns an (H, W, 3) uint8 image (matplotlib ``Figure`` + Agg, no pyplot).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from orchestrator.render.plots import figure_to_array

__all__ = ["importance_chart", "learning_curves", "pareto_chart"]

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#17becf")


def pareto_chart(points: Mapping[str, Sequence[Mapping[str, float]]],
                 front: Mapping[str, Sequence[Mapping[str, float]]],
                 references: Mapping[str, Mapping[str, float]], x: str, y: str, *,
                 x_mode: str, y_mode: str, title: str = "", dpi: int = 90) -> np.ndarray:
    """Trials of each baseline on two metrics, their Pareto fronts joined, references marked.

    Args:
        points: baseline -> every trial's metrics (those lacking x or y are skipped).
        front: baseline -> its Pareto-optimal trials' metrics.
        references: reference row name -> metrics (drawn as labelled crosses).
        x, y: metric names on the axes.
        x_mode, y_mode: "min" or "max" (shown in the axis labels).
        title: figure title.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 5.2), dpi=dpi)
    ax = fig.subplots()
    for i, (name, rows) in enumerate(points.items()):
        color = _PALETTE[i % len(_PALETTE)]
        xy = np.array([(r[x], r[y]) for r in rows if x in r and y in r], dtype=float)
        if len(xy):
            ax.scatter(xy[:, 0], xy[:, 1], s=18, color=color, alpha=0.35, label=f"{name} trials")
        fr = np.array([(r[x], r[y]) for r in front.get(name, []) if x in r and y in r], float)
        if len(fr):
            fr = fr[np.argsort(fr[:, 0])]
            ax.plot(fr[:, 0], fr[:, 1], "-o", color=color, ms=6, lw=1.5,
                    label=f"{name} Pareto front")
    for name, row in references.items():
        if x in row and y in row:
            ax.scatter([row[x]], [row[y]], marker="x", s=60, color="black")
            ax.annotate(name, (row[x], row[y]), textcoords="offset points", xytext=(5, 4),
                        fontsize=8)
    arrow = {"min": "lower is better", "max": "higher is better"}
    ax.set_xlabel(f"{x} ({arrow.get(x_mode, '?')})")
    ax.set_ylabel(f"{y} ({arrow.get(y_mode, '?')})")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    ax.set_title(title or f"{y} vs {x}", fontsize=10)
    fig.tight_layout()
    return figure_to_array(fig)


def learning_curves(curves: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]],
                    metric: str, *, dpi: int = 90) -> np.ndarray:
    """One panel per search: ``metric`` against epoch for every trial.

    Args:
        curves: search name -> trial id -> (epochs, values).
        metric: the plotted result key (the search objective, e.g. ``probe/FRDist``).
    """
    from matplotlib.figure import Figure

    n = max(len(curves), 1)
    fig = Figure(figsize=(4.2 * n, 3.4), dpi=dpi)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (name, trials) in zip(axes, curves.items(), strict=False):
        for i, (_, (ep, val)) in enumerate(sorted(trials.items())):
            ax.plot(ep, val, "-", marker="." if len(ep) < 30 else None, lw=1,
                    color=_PALETTE[i % len(_PALETTE)], alpha=0.8)
        ax.set_title(f"{name} ({len(trials)} trials)", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel(metric, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return figure_to_array(fig)


def importance_chart(importances: Mapping[str, float], title: str, *, dpi: int = 90
                     ) -> np.ndarray:
    """Horizontal bars of parameter importances (largest on top)."""
    from matplotlib.figure import Figure

    items = sorted(importances.items(), key=lambda kv: kv[1])
    fig = Figure(figsize=(6.0, 0.35 * len(items) + 1.2), dpi=dpi)
    ax = fig.subplots()
    ax.barh([k for k, _ in items], [v for _, v in items], color="#1f77b4")
    ax.set_xlabel("importance (fANOVA, fraction of variance)", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    return figure_to_array(fig)
