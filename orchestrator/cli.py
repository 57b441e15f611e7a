"""``reactune``: the console script (a Hydra app over ``orchestrator/conf``).

    reactune                                         # the demo (= experiment=demo stage=demo)
    reactune stage=prepare data=mars data.root=/data/MARS data.uri=s3://bucket/mars
    reactune stage=search baseline=perfrdiff task=online search.num_samples=64
    reactune stage=resume run=reactune_runs/runs/perfrdiff-online-20250101-120000
    reactune stage=export run=...   |   reactune stage=test bundle=reactune_runs/export/x.pt
    reactune stage=render experiment=demo bundle=<bundle.pt> render.speakers=[0,3]
    reactune stage=report                            # HTML of the demo (run=<dir> for others)
    reactune --cfg job                               # print the composed config

Overrides are checked before Hydra starts, so a typo fails with the key, the allowed values and
the YAML file to look in. The entry point stays thin: all work is in ``orchestrator.stages``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import hydra
from omegaconf import DictConfig

from orchestrator.config import CONF_DIR, CONFIG_NAME, ConfigError, compose


def _stage_overrides(overrides: Sequence[str], stage: str, experiment: str | None) -> list[str]:
    """Plain ``reactune`` is the demo: it runs with the demo preset unless one was chosen."""
    overrides = list(overrides)
    if stage == "demo" and experiment is None:
        overrides = ["experiment=demo", *overrides]
    return overrides


@hydra.main(config_path=str(CONF_DIR), config_name=CONFIG_NAME, version_base="1.3")
def _app(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from orchestrator.stages import run_stage

    hc = HydraConfig.get()
    overrides = _stage_overrides(hc.overrides.task, cfg.stage, hc.runtime.choices.get("experiment"))
    try:
        if list(overrides) != list(hc.overrides.task):
            cfg = compose(overrides, check=False)
        run_stage(cfg, overrides)
    except ConfigError as e:  # a bad value: the message says what to change, no traceback
        print(f"reactune: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``reactune [overrides...]``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    # Tune warns each time a trial's checkpoints force an experiment snapshot; here that is on
    # purpose (a resumed search must see every finished trial), so the warning is noise.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if not any(a.startswith("-") for a in args):  # Hydra flags (--cfg, -m, --help) pass through
        try:
            compose([a for a in args if not a.startswith("hydra.")])
        except ConfigError as e:
            print(f"reactune: {e}", file=sys.stderr)
            raise SystemExit(2) from None
    if argv is not None:
        sys.argv = [sys.argv[0], *args]
    _app()


if __name__ == "__main__":
    main()
