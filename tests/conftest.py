"""Session-wide fixtures: one local Ray per test session, with explicit small resources."""

from __future__ import annotations

import os

import pytest


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
