"""Start or join Ray for a stage, and say where its dashboard is.

A local Ray binds its dashboard to ``cluster.dashboard_host`` (127.0.0.1 by default: reach it
from another machine with ``ssh -L 8265:127.0.0.1:8265 host``). An already initialised Ray (a
test session, a notebook) is reused as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from orchestrator.config import ConfigError

log = logging.getLogger(__name__)


def trial_concurrency(cfg: Mapping[str, Any], total_cpus: float) -> int:
    """Trials that may run at once: ``search.max_concurrent``, capped so CPUs stay free for data.

    Ray Data schedules its read/decode tasks outside the trials' placement groups, so CPUs held
    by trials cannot run them: if running trials held every CPU, each would wait for its data
    forever. At most ``(total_cpus - resources.data_cpus) / resources.cpu_per_trial`` trials run.

    Raises:
        ConfigError: not even one trial fits (names the settings and the fix).
    """
    res, wanted = cfg["resources"], int(cfg["search"]["max_concurrent"])
    per_trial, data = float(res["cpu_per_trial"]), float(res["data_cpus"])
    fits = int((total_cpus - data) / per_trial + 1e-9) if per_trial > 0 else wanted
    if fits < 1:
        raise ConfigError(
            f"one trial needs resources.cpu_per_trial={res['cpu_per_trial']} CPUs plus "
            f"resources.data_cpus={res['data_cpus']} free for Ray Data streaming, but the "
            f"cluster has {total_cpus:g} CPUs; lower resources.cpu_per_trial (fractions work)")
    if fits < wanted:
        print(f"running {fits} trial(s) at a time, not search.max_concurrent={wanted}: "
              f"{total_cpus:g} CPUs - resources.data_cpus={res['data_cpus']} / "
              f"resources.cpu_per_trial={res['cpu_per_trial']}", flush=True)
    return min(wanted, fits)


def init_ray(cfg: Mapping[str, Any], *, echo: bool = True) -> str | None:
    """Initialise Ray from ``cfg.cluster`` / ``cfg.resources`` unless it is already running.

    Args:
        cfg: the resolved config (``cluster.address`` null = start a local Ray with
            ``resources.num_cpus`` / ``resources.num_gpus``; ``auto`` or ``ray://...`` joins).
        echo: print the dashboard URL.

    Returns:
        The dashboard URL (``http://host:port``), or None when there is no dashboard.
    """
    import ray

    if ray.is_initialized():
        url = _dashboard_url()
    else:
        cl, res = cfg["cluster"], cfg["resources"]
        kwargs: dict[str, Any] = {"include_dashboard": bool(cl["dashboard"]),
                                  "log_to_driver": True}
        if cl["address"] is None:
            kwargs.update(num_cpus=res["num_cpus"], num_gpus=res["num_gpus"],
                          dashboard_host=cl["dashboard_host"],
                          dashboard_port=int(cl["dashboard_port"]),
                          object_store_memory=cl["object_store_memory"])
        else:
            kwargs["address"] = cl["address"]
        ctx = ray.init(**kwargs)
        url = f"http://{ctx.dashboard_url}" if getattr(ctx, "dashboard_url", None) else None
    if echo:
        if url:
            print(f"Ray dashboard: {url}", flush=True)
        else:
            print("Ray dashboard: off (cluster.dashboard=false or not installed)", flush=True)
    return url


def _dashboard_url() -> str | None:
    """The running Ray's dashboard URL (informational: None when it cannot be told)."""
    import ray

    try:
        url = ray._private.worker.global_worker.node.address_info.get("webui_url")
    except AttributeError:  # a Ray client connection has no local node
        url = None
    return f"http://{url}" if url else None
