"""One trial: build a baseline from a config, train epochs on streamed shards, score, checkpoint.

Framework-free on purpose: :func:`run_trial` reports through a callback, so Ray Tune's function
trainable (``orchestrator.tune_driver``) and ``stage=fit`` (no Tune) run the same code. Every
epoch reports ``epoch``, the mean training losses (``train/<loss>``) and the challenge metrics on
a fixed validation probe (``probe/<metric>``: the same few speakers, sampled with the same seed,
every epoch and in every trial); the last epoch also reports the full validation metrics
(``val/<metric>``).

A checkpoint is a directory holding ``trial_state.pt`` (model name, config, weights, optimiser,
epoch, the epoch's result), loadable with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from orchestrator import loop
from react_models import ReactionModel, build

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "trial_state.pt"
Reporter = Callable[[dict[str, Any], "Path | None"], None]


class InjectedFault(RuntimeError):
    """Raised by ``faults.fail_after_epoch`` (exercises the retry-from-checkpoint path)."""


def save_checkpoint(directory: str | Path, model: ReactionModel,
                    optimizer: torch.optim.Optimizer, epoch: int,
                    result: Mapping[str, Any], cfg: Mapping[str, Any]) -> Path:
    """Write a trial checkpoint into ``directory`` (created).

    Args:
        directory: the checkpoint folder.
        model: the trained model.
        optimizer: its optimiser (state resumes exactly).
        epoch: epochs completed.
        result: the result reported with this checkpoint (plain numbers).
        cfg: the trial's resolved config (plain containers).

    Returns:
        The checkpoint file path.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": model.name,
        "model_config": model.config_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "epoch": int(epoch),
        "result": {k: v for k, v in result.items() if isinstance(v, (int, float, str))},
        "config": dict(cfg),
    }
    path = directory / CHECKPOINT_FILE
    torch.save(payload, path)
    return path


def load_checkpoint(directory: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only`` loading)."""
    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no trial checkpoint {path}; a checkpoint folder holds "
                                f"{CHECKPOINT_FILE} written by orchestrator.trainable")
    return torch.load(path, map_location="cpu", weights_only=True)


def model_from_checkpoint(state: Mapping[str, Any]) -> ReactionModel:
    """Rebuild the trained model (eval mode) from a loaded checkpoint dict."""
    model = build(state["model"], state["model_config"])
    model.load_state_dict(state["state_dict"])
    model.eval()
    return model


def model_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The ``react_models`` config dict of a resolved reactune config (``baseline.model``)."""
    return dict(cfg["baseline"]["model"])


def device_for(cfg: Mapping[str, Any]) -> torch.device:
    """CUDA when the trial was given a GPU share and one is visible, else CPU."""
    wants_gpu = float(cfg["resources"]["gpu_per_trial"] or 0) > 0
    return torch.device("cuda" if wants_gpu and torch.cuda.is_available() else "cpu")


def storage_options(cfg: Mapping[str, Any]) -> dict[str, Any] | None:
    """Storage options for ``react_data`` readers (the S3 endpoint, when configured)."""
    endpoint = cfg["data"].get("endpoint_url")
    return {"endpoint_url": endpoint} if endpoint else None


def probe_set(cfg: Mapping[str, Any]) -> Any:
    """The fixed validation probe: the first ``eval.probe_items`` speakers, same every trial."""
    from react_data import stream

    ev = cfg["eval"]
    return stream.load_eval_set(cfg["data"]["uri"], "val", num_frames=ev["probe_frames"],
                                max_items=ev["probe_items"], protocol=ev["protocol"],
                                seed=_gt_seed(cfg), **_so_kwargs(cfg))


def full_eval_set(cfg: Mapping[str, Any], split: str | None = None) -> Any:
    """All speakers of ``split`` (default ``eval.split``), capped by ``eval.max_items``."""
    from react_data import stream

    ev = cfg["eval"]
    return stream.load_eval_set(cfg["data"]["uri"], split or ev["split"],
                                max_items=ev["max_items"], protocol=ev["protocol"],
                                seed=_gt_seed(cfg), **_so_kwargs(cfg))


def _gt_seed(cfg: Mapping[str, Any]) -> int:
    """The seed the shards' test protocol was sampled with (the eval set must match it)."""
    from react_data import shards

    return int(shards.read_manifest(cfg["data"]["uri"], **_so_kwargs(cfg)).gt_seed)


def _so_kwargs(cfg: Mapping[str, Any]) -> dict[str, Any]:
    opts = storage_options(cfg)
    return {"storage_options": opts} if opts else {}


def train_batches(cfg: Mapping[str, Any], epoch: int, *, verify: bool | str = True) -> Any:
    """A fresh iterator of training ``ReactionBatch``es for ``epoch`` (reshuffled per epoch).

    ``verify``: shard checks (True/"checksum": sha256 of every shard, "size": sizes only).
    """
    from react_data import stream

    tr, task = cfg["baseline"]["trainer"], cfg["task"]
    online = task["name"] == "online"
    # offline items are max_seq_len crops; online items are a window plus its past context
    ds = stream.load(cfg["data"]["uri"], "train", task=task["name"],
                     max_seq_len=None if online else tr["max_seq_len"],
                     window_size=task["window_size"], context_frames=task["context_frames"],
                     seed=int(cfg["seed"]) + epoch, shuffle=True,
                     verify=verify if cfg["data"]["verify"] else False, **_so_kwargs(cfg))
    return stream.iter_batches(ds, int(tr["batch_size"]), drop_last=False)


def run_trial(cfg: Mapping[str, Any], report: Reporter, *,
              resume_state: Mapping[str, Any] | None = None,
              checkpoint_root: str | Path, log_dir: str | Path | None = None) -> dict[str, Any]:
    """Train and score one configuration, reporting after every epoch.

    Args:
        cfg: the resolved config as plain containers (``orchestrator.config.to_plain``).
        report: ``report(result, checkpoint_dir)`` after each epoch; the checkpoint folder may
            be deleted once it returns.
        resume_state: a loaded checkpoint (:func:`load_checkpoint`) to continue from.
        checkpoint_root: scratch folder for the per-epoch checkpoint folders.
        log_dir: write TensorBoard event files here (None: the caller logs results itself).

    Returns:
        The last result reported.
    """
    tr, ev = cfg["baseline"]["trainer"], cfg["eval"]
    epochs = int(tr["epochs"])
    if epochs < 1:
        raise ValueError(f"baseline.trainer.epochs must be >= 1, got {epochs}")
    seed = int(cfg["seed"])
    loop.seed_everything(seed)
    device = device_for(cfg)
    model = build(cfg["baseline"]["name"], model_config(cfg)).to(device)
    optimizer = loop.make_optimizer(model, float(tr["lr"]), float(tr["weight_decay"]))
    start, result = 0, {}
    if resume_state is not None:
        model.load_state_dict(resume_state["state_dict"])
        optimizer.load_state_dict(resume_state["optimizer"])
        start, result = int(resume_state["epoch"]), dict(resume_state["result"])
        log.info("resuming %s at epoch %d/%d", cfg["baseline"]["name"], start, epochs)
    if start >= epochs:  # restored after its last epoch: report the final result again
        report(result, None)
        return result
    writer = _summary_writer(log_dir)
    probe = probe_set(cfg)
    fail_after = (cfg.get("faults") or {}).get("fail_after_epoch")
    n_params = sum(p.numel() for p in model.parameters())
    try:
        for epoch in range(start, epochs):
            loop.seed_everything(seed * 1_000_003 + epoch)  # same data/noise on a retry
            t0 = time.monotonic()
            # full checksums once per process, cheap size checks on later epochs
            batches = train_batches(cfg, epoch, verify="checksum" if epoch == start else "size")
            losses = loop.train_epoch(model, batches, optimizer,
                                      grad_clip=tr["grad_clip"],
                                      max_steps=tr["max_steps_per_epoch"])
            t1 = time.monotonic()
            scores = loop.evaluate(model, probe, num_samples=int(ev["num_samples"]),
                                   metrics=ev["probe_metrics"], seed=seed)
            result = {"epoch": epoch + 1, "num_params": n_params,
                      "train_seconds": t1 - t0, "probe_seconds": time.monotonic() - t1,
                      **{f"train/{k}": v for k, v in losses.items()},
                      **{f"probe/{k}": v for k, v in scores.items()}}
            if epoch + 1 == epochs:
                full = loop.evaluate(model, full_eval_set(cfg),
                                     num_samples=int(ev["num_samples"]), seed=seed)
                result.update({f"val/{k}": v for k, v in full.items()})
            _check_finite(result)
            if writer is not None:
                for k, v in result.items():
                    writer.add_scalar(k, v, epoch + 1)
                writer.flush()
            ckpt = Path(checkpoint_root) / f"epoch_{epoch + 1:04d}"
            save_checkpoint(ckpt, model, optimizer, epoch + 1, result, cfg)
            report(result, ckpt)
            if fail_after is not None and resume_state is None and epoch + 1 == int(fail_after):
                raise InjectedFault(f"faults.fail_after_epoch={fail_after}: injected failure "
                                    f"after epoch {epoch + 1} (retries resume from there)")
    finally:
        if writer is not None:
            writer.close()
    return result


def _check_finite(result: Mapping[str, Any]) -> None:
    bad = {k: v for k, v in result.items() if isinstance(v, float) and not math.isfinite(v)}
    if bad:
        raise FloatingPointError(f"non-finite results {bad}: the trial diverged or a metric got "
                                 f"degenerate input; lower baseline.trainer.lr")


def _summary_writer(log_dir: str | Path | None) -> Any:
    if log_dir is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir))
