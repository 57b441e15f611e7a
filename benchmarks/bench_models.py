"""Train-step and sampling time per model and task at the baselines' configurations.

Shapes follow the spec's seed commands (react-baselines.md §4): Trans-VAE offline batch 4 x 750
frames, online batch 2 x 256 with window 16; PerFRDiff batch 4 x 750 (online window 30); REGNN
batch 64 x 50-frame windows. Sampling is timed for one speaker, K reactions, 750 frames (the
evaluation unit). Inputs are random but valid batches; models are at their default Config
(the baseline sizes) unless ``--small``.

    python benchmarks/bench_models.py --steps 3                 # CPU
    python benchmarks/bench_models.py --device cuda --steps 20  # GPU
    # PerFRDiff at 4 x 750 with 10 training repeats needs > 24 GB on CPU: cap it
    python benchmarks/bench_models.py --models perfrdiff --max-batch 1 --set num_preds_train=2
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch

from react_data import schema
from react_data.batch import ReactionBatch
from react_models import available, build, model_class


@dataclass(frozen=True)
class Case:
    model: str
    task: str  # "offline" | "online"
    train_batch: int
    train_frames: int
    config: dict


CASES = (
    Case("transvae", "offline", 4, 750, {}),
    Case("transvae", "online", 2, 256, {"online": True, "window_size": 16}),
    Case("perfrdiff", "offline", 4, 750, {}),
    Case("perfrdiff", "online", 4, 750, {"online": True, "window_size": 30}),
    Case("regnn", "offline", 64, 50, {}),
    Case("regnn", "online", 64, 50, {"online": True}),
)
# --small: width/depth overrides (only fields a Config has are applied) for a quick look.
SMALL = {"feature_dim": 64, "latent_dim": 128, "num_layers": 2, "ff_dim": 256, "sample_steps": 10}


def random_batch(b: int, t: int, *, seed: int = 0, device: str = "cpu") -> ReactionBatch:
    """A valid ReactionBatch of random speakers and listeners (all modalities present)."""
    g = torch.Generator().manual_seed(seed)

    def attrs() -> torch.Tensor:
        au = (torch.rand(b, t, schema.N_AU, generator=g) > 0.7).float()
        va = torch.rand(b, t, 2, generator=g) * 2 - 1
        ex = torch.softmax(torch.randn(b, t, schema.N_EXPR, generator=g), -1)
        return torch.cat([au, va, ex], -1)

    return ReactionBatch(
        speaker_attr=attrs(), speaker_coef=torch.randn(b, t, schema.COEF_DIM, generator=g),
        speaker_audio=torch.randn(b, t, schema.AUDIO_DIM, generator=g),
        listener_attr=attrs(), listener_coef=torch.randn(b, t, schema.COEF_DIM, generator=g),
        mask=torch.ones(b, t, dtype=torch.bool),
        listener_idx=torch.randint(0, 4, (b,), generator=g),
        session=torch.randint(0, schema.N_SESSIONS, (b,), generator=g),
        clip=[f"clip{i}" for i in range(b)],
    ).to(device)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, n: int, device: str) -> float:
    """Median seconds of ``n`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(n):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def bench_case(case: Case, *, device: str, steps: int, sample_reps: int, num_samples: int,
               sample_frames: int, small: bool, overrides: dict | None = None,
               max_batch: int | None = None) -> dict:
    known = {f.name for f in fields(model_class(case.model).config_cls)}
    cfg = {**({k: v for k, v in SMALL.items() if k in known} if small else {}), **case.config,
           **{k: v for k, v in (overrides or {}).items() if k in known}}
    torch.manual_seed(0)
    model = build(case.model, cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    b = case.train_batch if max_batch is None else min(case.train_batch, max_batch)
    batch = random_batch(b, case.train_frames, device=device)

    def train_step() -> None:
        model.train()
        loss = model(batch)["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    speaker = random_batch(1, sample_frames, seed=1, device=device)

    def sample() -> None:
        model.eval()
        model.sample(speaker, num_samples)

    return {
        "model": case.model, "task": case.task,
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "train_shape": f"{b}x{case.train_frames}",
        "train_step_s": _timed(train_step, steps, device),
        "sample_shape": f"1x{num_samples}x{sample_frames}",
        "sample_s": _timed(sample, sample_reps, device),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--steps", type=int, default=3, help="timed train steps (after 1 warm-up)")
    p.add_argument("--sample-reps", type=int, default=1, help="timed sample calls per case")
    p.add_argument("--num-samples", type=int, default=10, help="K reactions per speaker")
    p.add_argument("--sample-frames", type=int, default=750, help="frames per sampled speaker")
    p.add_argument("--models", nargs="*", default=None, help="subset of registered models")
    p.add_argument("--tasks", nargs="*", default=["offline", "online"])
    p.add_argument("--small", action="store_true", help="shrink widths/steps for a quick look")
    p.add_argument("--max-batch", type=int, default=None,
                   help="cap the train batch size (memory-bound machines)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every model whose Config has KEY "
                        "(e.g. num_preds_train=2); repeatable")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--set expects KEY=VALUE, got {item!r}")
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value  # a plain string value
    if args.max_batch is not None and args.max_batch < 1:
        p.error("--max-batch must be >= 1")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda requested but torch.cuda.is_available() is False")
    if args.steps < 1 or args.sample_reps < 1:
        p.error("--steps and --sample-reps must be >= 1")
    registered = available()
    models = args.models or registered
    unknown = sorted(set(models) - set(registered))
    if unknown:
        p.error(f"unknown model(s) {unknown}; registered: {registered}")
    rows = []
    header = f"{'model':<10} {'task':<8} {'params(M)':>9} {'train BxT':>10} {'train s/step':>12} " \
             f"{'sample 1xKxT':>13} {'sample s':>9}"
    print(f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"overrides={overrides} max_batch={args.max_batch}")
    print(header)
    print("-" * len(header))
    for case in CASES:
        if case.model not in models or case.task not in args.tasks:
            continue
        known = {f.name for f in fields(model_class(case.model).config_cls)}
        if case.task == "online" and "online" not in known:
            continue
        r = bench_case(case, device=args.device, steps=args.steps, sample_reps=args.sample_reps,
                       num_samples=args.num_samples, sample_frames=args.sample_frames,
                       small=args.small, overrides=overrides, max_batch=args.max_batch)
        rows.append(r)
        print(f"{r['model']:<10} {r['task']:<8} {r['params_M']:>9.2f} {r['train_shape']:>10} "
              f"{r['train_step_s']:>12.3f} {r['sample_shape']:>13} {r['sample_s']:>9.3f}",
              flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": args.device, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
