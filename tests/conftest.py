"""Session-wide fixtures: one local Ray per test session, with explicit small resources."""

from __future__ import annotations

import os
import re
import uuid

import pytest


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One intra-op thread: on 2-core CI machines tiny models run up to 40x slower when torch's
    thread pool fights pytest, Ray workers and Ray Data for the cores."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray started once for the whole test session (2-core CI machines)."""
    import ray

    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            num_gpus=0,
            include_dashboard=False,
            object_store_memory=300 * 1024 * 1024,
            log_to_driver=False,
            configure_logging=False,
            runtime_env={"env_vars": {"PYTHONPATH": os.getcwd()}},
        )
    yield ray
    # Ray is shut down at interpreter exit; tests that need a fresh cluster start their own.


@pytest.fixture(scope="session")
def s3_server():
    """A moto_server process on 127.0.0.1 with bucket ``reactune-test``, for the whole session.

    Sets dummy AWS credentials and region in the environment (and hides any user AWS config)
    while it runs; restores the environment and stops the process by PID at teardown.
    """
    from tests.s3server import DUMMY_CREDENTIALS, start_s3_server

    mp = pytest.MonkeyPatch()
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                "AWS_REGION"):
        mp.delenv(var, raising=False)
    mp.setenv("AWS_CONFIG_FILE", os.devnull)
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    for key, value in DUMMY_CREDENTIALS.items():
        mp.setenv(key, value)
    server = start_s3_server()
    try:
        server.create_bucket("reactune-test")
        yield server
    finally:
        server.stop()
        mp.undo()


@pytest.fixture
def s3_uri(s3_server, request) -> str:
    """A fresh ``s3://reactune-test/<test name>-<random>`` prefix on the test server."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:60]
    return f"s3://{s3_server.bucket}/{name}-{uuid.uuid4().hex[:8]}"
