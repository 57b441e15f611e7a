"""The report opened in a real headless Chromium: it draws, and its tables show the run's values.

Needs a ``chromium`` binary (Debian: ``apt-get install -y chromium``); skipped without one.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from orchestrator.report import report
from tests.report._run import build_run
from tests.report.test_report import check_values, parse

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")

pytestmark = pytest.mark.integration


def browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(f"no Chromium binary on PATH (looked for {', '.join(BROWSERS)}); install it "
                f"with `apt-get install -y chromium` to run this test")


def run_browser(tmp_path, *args: str) -> subprocess.CompletedProcess:
    cmd = [browser(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


def test_report_renders_in_chromium_with_the_stored_values(tmp_path):
    boards = build_run(tmp_path / "run")
    page = report(tmp_path / "run").resolve().as_uri()
    shot = tmp_path / "shot.png"
    run_browser(tmp_path, f"--screenshot={shot}", "--window-size=1280,1600", page)
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB")).astype(float)
    assert img.shape[:2] == (1600, 1280)
    not_background = (np.abs(img - img[5, 5]).sum(-1) > 30).mean()
    assert img.std() > 20 and not_background > 0.05  # text, tables and charts were drawn
    dom = run_browser(tmp_path, "--dump-dom", page).stdout
    cells = parse(dom)
    assert set(cells.tables) == {"offline", "online"}
    check_values(cells, boards)
