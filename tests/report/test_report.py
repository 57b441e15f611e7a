"""stage=report: the HTML page shows exactly the run's stored metrics, charts and renders."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from orchestrator.report import format_value, report
from tests.report._run import PARETO, build_run


class Cells(HTMLParser):
    """Leaderboard cells: task -> row name -> metric -> (data-value, text, classes)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, dict[str, tuple]]] = {}
        self.task = self.row = self.cell = None
        self.text = ""
        self.data_json = None
        self._in_json = False
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table" and "leaderboard" in (a.get("class") or ""):
            self.task = a["data-task"]
            self.tables[self.task] = {}
        elif tag == "tr" and self.task and "data-row" in a:
            self.row = a["data-row"]
            self.tables[self.task][self.row] = {}
        elif tag == "td" and self.row and "data-metric" in a:
            self.cell, self.text = a, ""
        elif tag == "script" and a.get("id") == "reactune-data":
            self._in_json, self.text = True, ""

    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None:
            c = self.cell
            self.tables[self.task][self.row][c["data-metric"]] = (
                c.get("data-value"), self.text, c.get("class") or "")
            self.cell = None
        elif tag == "table":
            self.task = self.row = None
        elif tag == "script" and self._in_json:
            self.data_json, self._in_json = json.loads(self.text), False

    def handle_data(self, data):
        if self.cell is not None or self._in_json:
            self.text += data


def parse(html_text: str) -> Cells:
    p = Cells()
    p.feed(html_text)
    return p


def check_values(cells: Cells, boards: dict) -> None:
    """Every stored metric appears, exactly, in its row; no cell shows anything else."""
    for task, board in boards.items():
        table = cells.tables[task]
        stored = {**board["models"], **board.get("references", {})}
        for name, metrics in stored.items():
            row = table[name]
            for m, v in metrics.items():
                data_value, text, _ = row[m]
                assert float(data_value) == v, (task, name, m)
                assert text == format_value(v)
            for m, (data_value, text, _) in row.items():
                if m not in metrics:
                    assert data_value is None and text == "–"
        for name, pareto in board.get("pareto", {}).items():
            for p in pareto:
                row = table[f"{name} · Pareto {p['trial_id']}"]
                assert {m: float(row[m][0]) for m in p["metrics"]} == p["metrics"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    boards = build_run(root)
    return root, boards, report(root)


def test_report_tables_equal_the_stored_metrics(run):
    root, boards, path = run
    assert path == root / "report.html"
    cells = parse(path.read_text())
    assert set(cells.tables) == {"offline", "online"}
    check_values(cells, boards)
    # the embedded JSON holds the same rows
    rows = {(b["task"], r["name"]): r["metrics"] for b in cells.data_json["boards"]
            for r in b["rows"]}
    for task, board in boards.items():
        for name, metrics in board["models"].items():
            assert rows[(task, name)] == metrics


def test_pareto_rows_come_from_full_budget_trials_and_best_values_are_marked(run):
    root, boards, path = run
    table = parse(path.read_text()).tables["offline"]
    pareto = {n.rsplit(" ", 1)[1] for n in table if n.startswith("transvae · Pareto")}
    assert pareto == PARETO - {"t0"}  # t0 is the exported best: shown once, as "best"
    # found through the bundle's provenance (extra.run); its best row differs from every trial
    assert {n.rsplit(" ", 1)[1] for n in table if n.startswith("perfrdiff · Pareto")} == PARETO
    for metric, better in (("FRDist", min), ("FRDiv", max), ("FRCorr", max)):
        model_rows = {n: r[metric] for n, r in table.items()
                      if metric in r and r[metric][0] is not None
                      and not n.startswith(("GT", "Random", "Mime", "MeanFr"))}
        best = better(float(v[0]) for v in model_rows.values())
        marked = {n for n, v in model_rows.items() if "best" in v[2]}
        assert marked == {n for n, v in model_rows.items() if float(v[0]) == best}
        assert "best" not in table["GT"][metric][2]  # reference rows are never marked


def test_report_embeds_charts_importance_and_renders(run):
    _, _, path = run
    text = path.read_text()
    cells = parse(text)
    alts = [a.get("alt") for t, a in cells.tags if t == "img"]
    assert "Pareto plot" in alts and "curves" in alts and "transvae" in alts  # importance
    assert "faces_png" in alts
    assert any(t == "video" and a["src"].startswith("data:video/mp4;base64,")
               for t, a in cells.tags)
    assert all(a["src"].startswith("data:") for t, a in cells.tags if t in ("img", "video"))
    assert "fANOVA over 6 completed trials" in text
    assert "FRRea-feat (x): 1.25" in text
    assert "http" not in text.split("<body>", 1)[1].split("<script")[0]  # self-contained


def test_report_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        report(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no leaderboard.json"):
        report(tmp_path)
    (tmp_path / "leaderboard.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="'models' mapping"):
        report(tmp_path)
    (tmp_path / "leaderboard.json").write_text("{not json")
    with pytest.raises(ValueError, match="not readable JSON"):
        report(tmp_path)


def test_minimal_leaderboard_without_searches(tmp_path):
    board = {"models": {"regnn": {"FRDist": 90.0}}, "references": {}}
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "leaderboard.json").write_text(json.dumps(board))
    out = report(tmp_path, tmp_path / "out" / "r.html")
    cells = parse(Path(out).read_text())
    assert cells.tables["demo"]["regnn"]["FRDist"][:2] == ("90.0", "90")
    assert "No search folders found" in Path(out).read_text()
