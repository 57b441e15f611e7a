"""``stage=report``: one self-contained HTML page about a run (tables, charts, renders inline).

Per leaderboard (task): the table of each baseline's best model and Pareto points with every
metric next to the reference rows (GT, Random, Mime, MeanFr), the best model value of each
column marked; a Pareto plot; learning curves of the searches; Optuna parameter importances;
the renders of the render stage (images and MP4s embedded as data URIs). What the page shows is
also embedded as JSON (``<script id="reactune-data">``), so tools and tests can read it back.
Run layout read: `orchestrator.render.report_data`.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import math
from pathlib import Path
from typing import Any

from orchestrator.render.report_data import BETTER, Board, find_boards, read_board

__all__ = ["REPORT_FILE", "format_value", "metric_columns", "report"]

REPORT_FILE = "report.html"
ORDER = ("FRCorr", "FRDist", "FRDiv", "FRVar", "FRDvs", "FRRea", "FRRea_features", "FRSyn")
MAX_EMBED_BYTES = 25_000_000  # per video; bigger ones are linked, not embedded

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;
background:#fafafa}h1{margin-bottom:4px}section{background:#fff;border:1px solid #ddd;
border-radius:6px;padding:16px;margin:18px 0}table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f0f0f0}
td.name,th.name,td.kind{text-align:left}td.best{font-weight:700;background:#d9f2d9}
tr.reference td{color:#555;background:#f7f7f7}tr.pareto td.name{padding-left:18px}
td.missing{color:#aaa}img{max-width:100%;border:1px solid #eee}video{max-width:100%}
figure{margin:12px 0}figcaption{font-size:12px;color:#555}.note{font-size:12px;color:#666}
"""


def format_value(v: float | None) -> str:
    """How a metric value is printed in the tables (4 significant digits)."""
    if v is None or not math.isfinite(v):
        return "–"
    return f"{v:.4g}"


def metric_columns(board: Board) -> list[str]:
    """Metrics present in any row: the challenge's order first, then the rest alphabetically."""
    present = {m for r in board.rows for m in r.metrics}
    return [m for m in ORDER if m in present] + sorted(present - set(ORDER))


def _best(board: Board, columns: list[str]) -> dict[str, float]:
    best = {}
    for m in columns:
        if m not in BETTER:
            continue
        vals = [r.metrics[m] for r in board.rows if r.kind != "reference" and m in r.metrics]
        if vals:
            best[m] = max(vals) if BETTER[m] == "max" else min(vals)
    return best


def _table(board: Board) -> str:
    cols = metric_columns(board)
    best = _best(board, cols)
    arrow = {"max": " ↑", "min": " ↓"}
    head = "".join(f'<th data-metric="{html.escape(m)}">{html.escape(m)}'
                   f'{arrow.get(BETTER.get(m, ""), "")}</th>' for m in cols)
    body = []
    for r in board.rows:
        cells = []
        for m in cols:
            v = r.metrics.get(m)
            if v is None:
                cells.append(f'<td class="missing" data-metric="{html.escape(m)}">–</td>')
                continue
            cls = ' class="best"' if r.kind != "reference" and best.get(m) == v else ""
            cells.append(f'<td{cls} data-metric="{html.escape(m)}" data-value="{v!r}">'
                         f'{format_value(v)}</td>')
        body.append(f'<tr class="{r.kind}" data-row="{html.escape(r.name)}" '
                    f'data-kind="{r.kind}"><td class="name">{html.escape(r.name)}</td>'
                    f'<td class="kind">{r.kind}</td>{"".join(cells)}</tr>')
    return (f'<table class="leaderboard" data-task="{html.escape(board.task)}"><thead><tr>'
            f'<th class="name">model</th><th>row</th>{head}</tr></thead><tbody>'
            f'{"".join(body)}</tbody></table><p class="note">↑ higher is better, ↓ lower is '
            f'better; bold green = best model value in the column (reference rows excluded). '
            f'"pareto" rows are the non-dominated full-budget trials on '
            f'{" and ".join(f"{m} ({mode})" for m, mode in board.objectives)}.</p>')


def _img(image: Any, alt: str) -> str:
    from orchestrator.render.plots import png_bytes

    data = base64.b64encode(png_bytes(image)).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _file_img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _video(path: Path, out_dir: Path) -> str:
    if path.stat().st_size <= MAX_EMBED_BYTES:
        data = base64.b64encode(path.read_bytes()).decode()
        return f'<video controls loop muted src="data:video/mp4;base64,{data}"></video>'
    rel = Path(path).resolve()
    try:
        rel = rel.relative_to(out_dir.resolve())
    except ValueError:
        pass
    return f'<p class="note">video too large to embed: <a href="{html.escape(str(rel))}">' \
           f'{html.escape(path.name)}</a></p>'


def _charts(board: Board) -> str:
    from orchestrator.render.charts import importance_chart, learning_curves, pareto_chart

    parts = []
    (x, x_mode), (y, y_mode) = (board.objectives + [("FRDiv", "max")])[:2]
    points = {n: [t["metrics"] for t in s.trials] for n, s in board.searches.items()}
    front = {n: [r.metrics for r in board.rows if r.baseline == n and r.kind in ("pareto",
                                                                                 "best")]
             for n in {r.baseline for r in board.rows if r.kind != "reference"}}
    refs = {r.name: r.metrics for r in board.rows if r.kind == "reference"}
    img = pareto_chart(points, front, refs, x, y, x_mode=x_mode, y_mode=y_mode,
                       title=f"{board.task}: {y} vs {x}")
    parts.append(f'<figure class="pareto">{_img(img, "Pareto plot")}<figcaption>Every trial '
                 f'(faint), each baseline\'s best and Pareto rows (joined), references '
                 f'(crosses).</figcaption></figure>')
    if board.searches:
        metric = next((s.objective for s in board.searches.values() if s.objective), "")
        curves = {}
        for n, s in board.searches.items():
            key = s.objective or metric
            curves[n] = {t["trial_id"]: (t["curve"].get("epoch", t["curve"].get(
                "training_iteration", [])), t["curve"].get(key, [])) for t in s.trials
                if key in t["curve"]}
        parts.append(f'<figure class="curves">{_img(learning_curves(curves, metric), "curves")}'
                     f'<figcaption>Learning curves: {html.escape(metric)} per epoch, one line '
                     f'per trial.</figcaption></figure>')
        for n, s in board.searches.items():
            if s.importance:
                parts.append(f'<figure class="importance">'
                             f'{_img(importance_chart(s.importance, f"{n}: {s.name}"), n)}'
                             f'<figcaption>{html.escape(s.importance_note)}</figcaption></figure>')
            else:
                parts.append(f'<p class="note">Parameter importance of {html.escape(n)}: not '
                             f'available ({html.escape(s.importance_note)}).</p>')
    else:
        parts.append('<p class="note">No search folders found for this leaderboard: learning '
                     'curves and parameter importance need them.</p>')
    return "".join(parts)


def _renders(board: Board, out_dir: Path) -> str:
    parts = []
    for name, (folder, summary) in board.renders.items():
        parts.append(f'<h3>Renders: {html.escape(name)} ({html.escape(str(summary.get("model")))}'
                     f', face model {html.escape(str(summary.get("face_model")))}, backend '
                     f'{html.escape(str(summary.get("backend")))})</h3>')
        for key, r in (summary.get("realism") or {}).items():
            parts.append(f'<p class="realism" data-key="{html.escape(key)}">'
                         f'{html.escape(str(r.get("label", key)))}: '
                         f'{format_value(float(r["value"]))}</p>')
        for item in summary.get("items", []):
            parts.append(f'<h4>{html.escape(item["key"])}</h4>')
            for kind, f in sorted(item.get("files", {}).items()):
                p = folder / f
                if not p.is_file():
                    parts.append(f'<p class="note">missing {html.escape(str(p))}</p>')
                elif f.endswith(".png"):
                    parts.append(f"<figure>{_file_img(p, kind)}<figcaption>{kind}</figcaption>"
                                 f"</figure>")
                elif f.endswith(".mp4"):
                    parts.append(f"<figure>{_video(p, out_dir)}<figcaption>{kind}</figcaption>"
                                 f"</figure>")
    return "".join(parts)


def _data(boards: list[Board]) -> str:
    data = {"boards": [{"task": b.task, "leaderboard": str(b.path),
                        "rows": [{"name": r.name, "kind": r.kind, "baseline": r.baseline,
                                  "trial_id": r.trial_id, "metrics": r.metrics}
                                 for r in b.rows]} for b in boards]}
    return json.dumps(data).replace("</", "<\\/")


def report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of a run directory.

    Args:
        run_dir: folder holding ``leaderboard.json`` (or subfolders with one each); see
            `orchestrator.render.report_data` for the files read.
        out: the HTML file (default ``<run_dir>/report.html``).

    Returns:
        The path written.
    """
    run_dir = Path(run_dir).expanduser()
    boards = [read_board(p) for p in find_boards(run_dir)]
    out = Path(out) if out else run_dir / REPORT_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    sections = []
    for b in boards:
        notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in b.notes)
        sections.append(f'<section class="board" data-task="{html.escape(b.task)}"><h2>Task: '
                        f'{html.escape(b.task)}</h2><p class="note">{html.escape(str(b.path))}'
                        f'</p>{_table(b)}{notes}{_charts(b)}{_renders(b, out.parent)}</section>')
    when = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>reactune '
            f'report: {html.escape(run_dir.name)}</title><style>{_CSS}</style></head><body>'
            f'<h1>reactune report</h1><p class="note">{html.escape(str(run_dir.resolve()))} · '
            f'{when}</p>{"".join(sections)}<script type="application/json" id="reactune-data">'
            f'{_data(boards)}</script></body></html>')
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out
