"""The cluster configs are valid for the tools that consume them; the local 2-node scripts work."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"


def _aws() -> dict:
    return yaml.safe_load((CLUSTER / "aws-gpu.yaml").read_text())


def test_aws_launcher_yaml_passes_rays_own_schema() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = _aws()
    validate_config(prepare_config(copy.deepcopy(config)))
    types = config["available_node_types"]
    assert config["head_node_type"] in types
    assert any(t.get("resources", {}).get("GPU", 0) >= 1 for t in types.values())
    spot = [t for t in types.values()
            if t["node_config"].get("InstanceMarketOptions", {}).get("MarketType") == "spot"]
    assert spot, "a spot GPU worker type is offered"


def test_aws_schema_check_rejects_a_bad_value() -> None:
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    bad = _aws()
    bad["available_node_types"]["ray.worker.gpu"]["min_workers"] = "two"
    with pytest.raises(jsonschema.ValidationError, match="not of type 'integer'"):
        validate_config(prepare_config(bad))


def test_every_top_level_key_of_the_launcher_yaml_is_commented() -> None:
    lines = (CLUSTER / "aws-gpu.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        if line and not line[0].isspace() and not line.startswith("#") and ":" in line:
            assert i > 0 and lines[i - 1].lstrip().startswith("#"), f"key without comment: {line}"


def test_kuberay_manifest_matches_the_pinned_ray() -> None:
    import ray

    doc = yaml.safe_load((CLUSTER / "kuberay-raycluster.yaml").read_text())
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayCluster"
    assert doc["spec"]["rayVersion"] == ray.__version__
    head_image = doc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]
    assert ray.__version__ in head_image
    gpu = doc["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == "1"


@pytest.mark.integration
def test_local_two_node_cluster_starts_joins_and_stops() -> None:
    # A short temp dir: Ray's unix socket paths must stay under 107 bytes.
    base = Path(tempfile.mkdtemp(prefix="rt2n-"))
    # Hermetic auth: a ~/.ray/auth_token on the machine would otherwise switch the head to tokens.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "RAY_AUTH_MODE": "disabled"}
    subprocess.run([str(CLUSTER / "start-local.sh"), str(base), "6397"], check=True, env=env,
                   timeout=120)
    try:
        address = (base / "address").read_text().strip()
        probe = (f"import ray; ray.init(address={address!r}, log_to_driver=False); "
                 "print(sum(n['Alive'] for n in ray.nodes()))")
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                             check=True, timeout=120)
        assert out.stdout.strip().splitlines()[-1] == "2"
        subprocess.run([str(CLUSTER / "stop-local.sh"), str(base), "worker"], check=True,
                       env=env, timeout=60)
        out = subprocess.run([sys.executable, "-c", probe.replace(
            "sum(n['Alive'] for n in ray.nodes())",
            "__import__('time').sleep(2) or sum(n['Alive'] for n in ray.nodes())")],
            capture_output=True, text=True, check=True, timeout=120)
        assert int(out.stdout.strip().splitlines()[-1]) <= 1
    finally:
        subprocess.run([str(CLUSTER / "stop-local.sh"), str(base)], env=env, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
