"""Plain-text tables: the live trial table of a search and the demo's leaderboard rows.

Pure formatting (no Ray): ``tune_driver.ProgressCallback`` feeds :class:`ProgressPrinter`.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO


def fmt(value: Any, width: int = 10) -> str:
    """A compact cell: 4 significant digits for floats, ``-`` for missing values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "~"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned text table with a header rule.

    >>> print(format_table(["a", "b"], [[1, 0.5]]))
    a  b
    -  ---
    1  0.5
    """
    cells = [[fmt(v, 24) for v in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def short_name(key: str) -> str:
    """``baseline.model.kl_p`` -> ``kl_p`` (table headers)."""
    return key.rsplit(".", 1)[-1]


class ProgressPrinter:
    """Prints a search's trial table at most every ``interval`` seconds (and on demand).

    Args:
        name: the search name (table title).
        metric: the objective column (e.g. ``probe/FRDist``).
        mode: "min" or "max" (to mark the best trial).
        interval: minimum seconds between unforced tables.
        stream: where to print (default stdout).
    """

    def __init__(self, name: str, metric: str, mode: str, *, interval: float = 20.0,
                 stream: TextIO | None = None) -> None:
        self.name, self.metric, self.mode = name, metric, mode
        self.interval = interval
        self.stream = stream
        self._last = -math.inf
        self._last_text = ""

    def update(self, rows: Sequence[Mapping[str, Any]], *, force: bool = False) -> str | None:
        """Print the table for ``rows`` (dicts: trial_id, status, params, last) if it is due.

        Returns:
            The printed text, or None when skipped.
        """
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return None
        text = self.render(rows)
        if text == self._last_text:
            return None
        self._last, self._last_text = now, text
        print(text, file=self.stream or sys.stdout, flush=True)
        return text

    def render(self, rows: Sequence[Mapping[str, Any]]) -> str:
        """The table text (title line with counts and the best trial, then one row per trial)."""
        params = sorted({k for r in rows for k in r["params"]})
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        scored = [r for r in rows if isinstance(r["last"].get(self.metric), (int, float))]
        best = None
        if scored:
            pick = min if self.mode == "min" else max
            best = pick(scored, key=lambda r: r["last"][self.metric])
        title = (f"[{self.name}] " + ", ".join(f"{n} {s.lower()}" for s, n in
                                               sorted(counts.items())))
        if best is not None:
            title += (f" | best {self.metric} {fmt(best['last'][self.metric])} "
                      f"(trial {best['trial_id']})")
        headers = ["trial", "status", "epoch", self.metric] + [short_name(p) for p in params]
        body = [[r["trial_id"], r["status"], r["last"].get("epoch"), r["last"].get(self.metric)]
                + [r["params"].get(p) for p in params] for r in rows]
        return title + "\n" + format_table(headers, body)
