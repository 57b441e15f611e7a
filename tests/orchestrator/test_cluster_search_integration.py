"""A multi-objective search through the CLI on a local 2-node Ray cluster (cluster/start-local.sh),
losing its worker node mid-search: the trials on it are retried elsewhere and the search ends
with its front."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from orchestrator.tune_driver import PARETO_FILE, load_search
from tests.orchestrator.conftest import overrides

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"
PORT = 6398
EPOCHS = 6


def _nodes(address: str, env: dict) -> dict[str, bool]:
    """{node id: is head} of the alive nodes."""
    probe = (f"import json, ray; ray.init(address={address!r}, log_to_driver=False); "
             "print(json.dumps({n['NodeID']: 'node:__internal_head__' in n['Resources'] "
             "for n in ray.nodes() if n['Alive']}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=120, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _results(run: Path) -> list[dict]:
    rows = []
    for f in run.glob("trial_*/result.json"):
        for line in f.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line being written
                pass
    return rows


def test_mo_search_on_two_nodes_survives_losing_the_worker(smoke_data: str,
                                                           tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="rtmo-"))  # short: Ray's socket paths < 107 bytes
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "RAY_AUTH_MODE": "disabled", "HEAD_CPUS": "1", "WORKER_CPUS": "2"}
    subprocess.run([str(CLUSTER / "start-local.sh"), str(base), str(PORT)], check=True,
                   env=env, timeout=120)
    proc = None
    try:
        address = (base / "address").read_text().strip()
        nodes = _nodes(address, env)
        assert sorted(nodes.values()) == [False, True]
        worker = next(n for n, head in nodes.items() if not head)
        run = tmp_path / "runs" / "cl"
        log = (tmp_path / "driver.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "stage=search", "search=mo",
             "search.gate=null", "cluster=remote", f"cluster.address={address}",
             *overrides(tmp_path, smoke_data, "search.name=cl", "search.num_samples=3",
                        "search.max_concurrent=2", "search.max_failures=3", "baseline=regnn",
                        f"baseline.trainer.epochs={EPOCHS}", "scheduler=fifo")],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        # wait until a trial reports from the worker node, then kill that node
        deadline = time.monotonic() + 240
        while not any(r.get("node_id") == worker and r["epoch"] < EPOCHS
                      for r in _results(run)):
            assert proc.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no trial ran on the worker node"
            time.sleep(0.2)
        subprocess.run([str(CLUSTER / "stop-local.sh"), str(base), "worker"], check=True,
                       env=env, timeout=60)
        # a replacement node joins (what an autoscaler does); the lost trial resumes there
        subprocess.run(["ray", "start", f"--address={address}", "--num-cpus=2", "--num-gpus=0",
                        "--object-store-memory=419430400", f"--temp-dir={base}/worker",
                        "--disable-usage-stats"], check=True, env=env, timeout=120,
                       capture_output=True)
        assert proc.wait(timeout=420) == 0, (tmp_path / "driver.log").read_text()[-3000:]
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        subprocess.run([str(CLUSTER / "stop-local.sh"), str(base)], env=env, timeout=60)
        shutil.rmtree(base, ignore_errors=True)

    outcome = load_search(str(run))
    assert [t.status for t in outcome.trials] == ["TERMINATED"] * 3
    assert all(t.last["epoch"] == EPOCHS for t in outcome.trials)  # fifo: every trial full
    assert sum(t.num_failures for t in outcome.trials) >= 1, "the lost trial was not retried"
    used = {r["node_id"] for r in _results(run) if "node_id" in r}
    assert worker in used and len(used) >= 2
    summary = json.loads((run / PARETO_FILE).read_text())
    assert summary["front"] and all(p["epoch"] == EPOCHS for p in summary["front"])
    assert "Pareto front (" in (tmp_path / "driver.log").read_text()
