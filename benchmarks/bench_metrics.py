"""Benchmark: reactune's metric fast paths against the challenge's plain loops, same inputs.

    python benchmarks/bench_metrics.py                    # N=16, K=10, G=10, T=750, all cores
    python benchmarks/bench_metrics.py --n 1000 --reference-pairs 0 --repeats 1   # fast path only

For each metric it prints the fast path's wall time and CPU time (the median of ``--repeats``
runs: one ~0.1 s run moves by 10-20% with the machine's load). For FRDist, FRCorr and FRSyn it
also runs the plain loops of ``tests/metrics/_reference.py`` (tslearn ``dtw`` per group and pair,
``np.corrcoef`` per dimension, Python loops over lags) in a process pool with as many workers
as the fast path has threads (equal cores), on all pairs or on a sample of them (then the
reference time is extrapolated per pair, and says so), checks that the values agree, and
prints the speed-up. Run from the repository root.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import metrics  # noqa: E402
from metrics.dtw import default_threads, grouped_dtw  # noqa: E402
from react_data.schema import ATTR_DIM, ATTR_GROUPS, AU, EXPR, VA  # noqa: E402
from tests.metrics import _reference as ref  # noqa: E402


def make_inputs(n: int, k: int, g: int, t: int, seed: int = 0):
    """Attribute-like data: binary AUs, VA in [-1, 1], expression probabilities."""
    rng = np.random.default_rng(seed)

    def reactions(*shape):
        x = np.empty(shape + (t, ATTR_DIM), dtype=np.float32)
        x[..., AU] = rng.random(shape + (t, AU.stop - AU.start), dtype=np.float32) < 0.3
        x[..., VA] = rng.uniform(-1, 1, shape + (t, VA.stop - VA.start)).astype(np.float32)
        e = rng.random(shape + (t, EXPR.stop - EXPR.start), dtype=np.float32)
        x[..., EXPR] = e / e.sum(-1, keepdims=True)
        return x

    pred = reactions(n, k)
    appropriate = list(reactions(n, g))
    speaker = reactions(n)
    return pred, appropriate, speaker


def timed(fn, *args, **kwargs):
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - w, time.process_time() - c


def timed_median(repeats, fn, *args, **kwargs):
    """``timed`` ``repeats`` times: the last value, the median wall and CPU seconds."""
    runs = [timed(fn, *args, **kwargs) for _ in range(max(1, repeats))]
    return (runs[-1][0], float(np.median([r[1] for r in runs])),
            float(np.median([r[2] for r in runs])))


def _cpu_timed(fn, items):
    c = time.process_time()
    out = [fn(*item) for item in items]
    return out, time.process_time() - c


def _pair_task(items):
    return _cpu_timed(ref.pair_distance, items)


def _ccc_task(items):
    return _cpu_timed(lambda p, a: ref.ccc(a, p), items)


def _tlcc_task(items):
    return _cpu_timed(ref.tlcc_offset, items)


def _warm_worker(_=None):
    """Compile tslearn's numba code and import everything before the clock starts."""
    x = np.zeros((3, 25), np.float32)
    ref.pair_distance(x, x)
    time.sleep(0.5)  # hold this worker so that every worker gets one warm-up task
    return os.getpid()


def run_pool(task, items, workers: int, per_task: int = 8):
    """Run ``task`` over ``items`` in ``workers`` warmed-up processes.

    Returns the results, the wall time (warm-up excluded) and the CPU seconds the workers spent
    inside the tasks.
    """
    batches = [items[i:i + per_task] for i in range(0, len(items), per_task)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_warm_worker, range(workers)))
        w = time.perf_counter()
        parts = list(pool.map(task, batches))
        wall = time.perf_counter() - w
    results = [r for part, _ in parts for r in part]
    return results, wall, sum(cpu for _, cpu in parts)


def sample(total: int, want: int, rng) -> np.ndarray:
    return np.arange(total) if want >= total else np.sort(rng.choice(total, want, replace=False))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=16, help="speakers N")
    ap.add_argument("--k", type=int, default=10, help="reactions per speaker K")
    ap.add_argument("--g", type=int, default=10, help="appropriate reactions per speaker G")
    ap.add_argument("--t", type=int, default=750, help="frames T")
    ap.add_argument("--threads", type=int, default=default_threads(),
                    help="fast-path threads = reference worker processes")
    ap.add_argument("--repeats", type=int, default=3,
                    help="fast-path runs per metric; the median time is printed")
    ap.add_argument("--reference-pairs", type=int, default=1600,
                    help="FRDist pairs the tslearn loop runs (0: skip the reference)")
    ap.add_argument("--reference-items", type=int, default=40,
                    help="(n, k) reactions the FRCorr/FRSyn loops run (0: skip)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    n, k, g, t, threads = args.n, args.k, args.g, args.t, args.threads
    print(f"inputs: N={n} K={k} G={g} T={t}; threads={threads}; device={args.device}")
    pred, app, spk = make_inputs(n, k, g, t)
    _, warm, _ = timed(metrics.evaluate, pred[:2, :2, :60], [a[:2, :60] for a in app[:2]],
                       spk[:2, :60])
    print(f"warm-up (numba load/compile, torch init): {warm:.2f} s")

    rows = []
    fast = {}
    for name, fn, fargs, kw in [
        ("FRCorr", metrics.frcorr, (pred, app), {}),
        ("FRDist", metrics.frdist, (pred, app), {"threads": threads}),
        ("FRDiv", metrics.frdiv, (pred,), {}),
        ("FRVar", metrics.frvar, (pred,), {}),
        ("FRDvs", metrics.frdvs, (pred,), {}),
        ("FRSyn", metrics.frsyn, (pred, spk), {}),
        ("FRRea_features", metrics.frrea_features, (pred, app), {}),
    ]:
        if args.device != "cpu":
            kw = {k_: v for k_, v in kw.items() if k_ != "threads"} | {"device": args.device}
        value, wall, cpu = timed_median(args.repeats, fn, *fargs, **kw)
        fast[name] = (value, wall, cpu)
        rows.append([name, f"{value:.6g}", f"{wall:.3f}", f"{cpu:.3f}"])
    scores, ev_wall, ev_cpu = timed_median(
        args.repeats, metrics.evaluate, pred, app, spk, device=args.device,
        threads=threads if args.device == "cpu" else None)
    rows.append(["evaluate (all)", "-", f"{ev_wall:.3f}", f"{ev_cpu:.3f}"])
    _table(["metric", "value", "fast wall s", "fast cpu s"], rows)
    for name, value in scores.items():
        assert np.isclose(value, fast[name][0], rtol=1e-9, atol=1e-12), (name, value)

    rng = np.random.default_rng(1)
    ref_rows = []
    if args.reference_pairs:
        pairs = [(i, j) for i in range(n * k) for j in range(g)]
        pick = sample(len(pairs), args.reference_pairs, rng)
        flat = pred.reshape(n * k, t, ATTR_DIM)
        items = [(flat[pairs[p][0]], app[pairs[p][0] // k][pairs[p][1]]) for p in pick]
        dists, wall, cpu = run_pool(_pair_task, items, threads)
        ys = [a for s in app for a in s]
        idx = np.array([(pairs[p][0], (pairs[p][0] // k) * g + pairs[p][1]) for p in pick])
        w = np.array([wt for _, _, wt in ATTR_GROUPS])
        mine = grouped_dtw(flat, ys, idx, threads=threads) @ w
        err = float(np.max(np.abs(mine / np.array(dists) - 1)))
        scale = len(pairs) / len(pick)
        ref_rows.append(["FRDist", len(pick), len(pairs), wall * scale, cpu * scale,
                         fast["FRDist"], err])
    if args.reference_items:
        items_nk = sample(n * k, args.reference_items, rng)
        ccc_items = [(pred[i // k, i % k], a) for i in items_nk for a in app[i // k]]
        cccs, wall, cpu = run_pool(_ccc_task, ccc_items, threads, per_task=32)
        best = np.array(cccs).reshape(len(items_nk), g).max(1)
        mine_c = np.array([metrics.frcorr(pred[i // k, i % k][None, None], app[i // k][None])
                           for i in items_nk])
        scale = n * k / len(items_nk)
        ref_rows.append(["FRCorr", len(items_nk) * g, n * k * g, wall * scale, cpu * scale,
                         fast["FRCorr"], float(np.max(np.abs(best - mine_c)))])
        tl_items = [(pred[i // k, i % k], spk[i // k]) for i in items_nk]
        offs, wall, cpu = run_pool(_tlcc_task, tl_items, threads, per_task=2)
        mine_s = np.array([metrics.frsyn(pred[i // k, i % k][None, None], spk[i // k][None])
                           for i in items_nk])
        ref_rows.append(["FRSyn", len(items_nk), n * k, wall * scale, cpu * scale,
                         fast["FRSyn"], float(np.max(np.abs(np.array(offs) - mine_s)))])
    if ref_rows:
        print("\nreference loops (equal cores; '*' = extrapolated per item from a sample):")
        out = []
        for name, done, total, wall, cpu, (_, fwall, fcpu), err in ref_rows:
            star = "*" if done < total else ""
            out.append([name, f"{done}/{total}", f"{wall:.2f}{star}", f"{cpu:.2f}{star}",
                        f"{wall / fwall:.1f}x", f"{cpu / max(fcpu, 1e-9):.1f}x", f"{err:.2e}"])
        _table(["metric", "items run", "ref wall s", "ref cpu s", "speed-up wall",
                "speed-up cpu", "max diff"], out)
        print("max diff: relative per pair for FRDist, absolute per reaction for FRCorr "
              "(best CCC) and FRSyn (offset, frames)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    inputs = (pred.nbytes + sum(a.nbytes for a in app) + spk.nbytes) / 2**20
    print(f"\npeak RSS of this process: {peak:.0f} MiB (inputs {inputs:.0f} MiB, float32)")


def _table(headers, rows) -> None:
    cols = [headers] + [[str(c) for c in r] for r in rows]
    width = [max(len(r[i]) for r in cols) for i in range(len(headers))]
    for j, r in enumerate(cols):
        print("  ".join(c.rjust(width[i]) for i, c in enumerate(r)))
        if j == 0:
            print("  ".join("-" * w for w in width))


if __name__ == "__main__":
    main()
