"""numba CPU kernels for the moment-based metrics: one pass per speaker, float64 accumulators.

Each kernel handles the speakers ``[n0, n1)`` so that `metrics._threads.parallel_ranges` can
run ranges on several threads (``nogil``). The torch versions in `ccc`, `synchrony` and
`diversity` are the CUDA path; both are tested against the plain loops of the test suite.
Inputs are float32 (the challenge's dtype); sums are float64 on centred values.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_CCC_EPS = 1e-8


@njit(nogil=True, cache=True)
def _centre(src, dst, mean, var):  # pragma: no cover - compiled
    """src (T, D) float32 -> dst centred float64, per-dim mean and population variance."""
    frames, dim = src.shape
    mean[:] = 0.0
    for t in range(frames):
        for d in range(dim):
            mean[d] += src[t, d]
    mean /= frames
    var[:] = 0.0
    for t in range(frames):
        for d in range(dim):
            c = src[t, d] - mean[d]
            dst[t, d] = c
            var[d] += c * c
    var /= frames


@njit(nogil=True, cache=True)
def best_ccc(pred, app, out):  # pragma: no cover - compiled
    """out[k] = max over g of CCC(app[g], pred[k]) for one speaker.

    pred (K, T, D) float32, app (G, T, D) float32, out (K,) float64.
    """
    n_k, n_t, n_d = pred.shape
    pc = np.empty((n_k, n_t, n_d))
    mp = np.empty((n_k, n_d))
    vp = np.empty((n_k, n_d))
    ac = np.empty((n_t, n_d))
    ma = np.empty(n_d)
    va = np.empty(n_d)
    acc = np.empty(n_d)
    for k in range(n_k):
        _centre(pred[k], pc[k], mp[k], vp[k])
        out[k] = -np.inf
    for g in range(app.shape[0]):
        _centre(app[g], ac, ma, va)
        for k in range(n_k):
            acc[:] = 0.0
            for t in range(n_t):
                for d in range(n_d):
                    acc[d] += pc[k, t, d] * ac[t, d]
            total = 0.0
            for d in range(n_d):
                prod = vp[k, d] * va[d]
                r = 0.0
                if prod > 0.0:
                    r = min(1.0, max(-1.0, acc[d] / n_t / np.sqrt(prod)))
                diff = mp[k, d] - ma[d]
                total += (2.0 * r * np.sqrt(vp[k, d]) * np.sqrt(va[d])
                          / (vp[k, d] + va[d] + diff * diff + _CCC_EPS))
            out[k] = max(out[k], total / n_d)


@njit(nogil=True, cache=True)
def _scan(src, cen, csum, csq, pre_const, suf_const):  # pragma: no cover - compiled
    """Centre src (T, D); prefix sums (T + 1, D) of it and its square; constancy flags.

    pre_const[t, d]: src[0..t, d] constant; suf_const[t, d]: src[t..T-1, d] constant.
    """
    frames, dim = src.shape
    for d in range(dim):
        m = 0.0
        for t in range(frames):
            m += src[t, d]
        m /= frames
        csum[0, d] = 0.0
        csq[0, d] = 0.0
        hi = src[0, d]
        lo = src[0, d]
        for t in range(frames):
            c = src[t, d] - m
            cen[t, d] = c
            csum[t + 1, d] = csum[t, d] + c
            csq[t + 1, d] = csq[t, d] + c * c
            hi = max(hi, src[t, d])
            lo = min(lo, src[t, d])
            pre_const[t, d] = hi == lo
        hi = src[frames - 1, d]
        lo = src[frames - 1, d]
        for t in range(frames - 1, -1, -1):
            hi = max(hi, src[t, d])
            lo = min(lo, src[t, d])
            suf_const[t, d] = hi == lo


@njit(nogil=True, cache=True)
def tlcc_offsets(pred, speaker, lag, challenge, n0, n1, out):  # pragma: no cover - compiled
    """out[n, k] = |best lag| of pred[n, k] against speaker[n] over lags [-lag, lag].

    pred (N, K, T, D) float32, speaker (N, T, D) float32, out (N, K) float64. ``challenge``:
    NaN-as-max (any constant channel makes a lag NaN; the first NaN lag wins); otherwise the
    constant channels are left out of the mean and a lag with none defined is skipped.
    """
    n_k, n_t, n_d = pred.shape[1], pred.shape[2], pred.shape[3]
    n_lags = 2 * lag + 1
    x = np.empty((n_t, n_d))
    y = np.empty((n_t, n_d))
    xs = np.empty((n_t + 1, n_d))
    xq = np.empty((n_t + 1, n_d))
    ys = np.empty((n_t + 1, n_d))
    yq = np.empty((n_t + 1, n_d))
    xpre = np.empty((n_t, n_d), dtype=np.bool_)
    xsuf = np.empty((n_t, n_d), dtype=np.bool_)
    ypre = np.empty((n_t, n_d), dtype=np.bool_)
    ysuf = np.empty((n_t, n_d), dtype=np.bool_)
    xy = np.empty(n_d)
    for n in range(n0, n1):
        _scan(speaker[n], y, ys, yq, ypre, ysuf)
        for k in range(n_k):
            _scan(pred[n, k], x, xs, xq, xpre, xsuf)
            best = -1
            best_val = -np.inf
            for li in range(n_lags):
                shift = li - lag
                x0 = max(0, shift)
                y0 = max(0, -shift)
                m = n_t - abs(shift)
                xy[:] = 0.0
                for t in range(m):
                    for d in range(n_d):
                        xy[d] += x[x0 + t, d] * y[y0 + t, d]
                total = 0.0
                defined = 0
                undefined = 0
                for d in range(n_d):
                    cx = xsuf[x0, d] if shift >= 0 else xpre[m - 1, d]
                    cy = ypre[m - 1, d] if shift > 0 else ysuf[y0, d]
                    sx = xs[x0 + m, d] - xs[x0, d]
                    sy = ys[y0 + m, d] - ys[y0, d]
                    vx = (xq[x0 + m, d] - xq[x0, d]) - sx * sx / m
                    vy = (yq[y0 + m, d] - yq[y0, d]) - sy * sy / m
                    if cx or cy or vx <= 0.0 or vy <= 0.0:
                        undefined += 1
                        continue
                    r = min(1.0, max(-1.0, (xy[d] - sx * sy / m) / np.sqrt(vx * vy)))
                    # The challenge averages float32 values; round like it does.
                    total += np.float32(r) if challenge else r
                    defined += 1
                if challenge:
                    if undefined > 0:
                        best = li  # NaN is the maximum: the first NaN lag wins
                        break
                    val = np.float64(np.float32(total / n_d))
                elif defined == 0:
                    continue
                else:
                    val = total / defined
                if val > best_val:
                    best_val = val
                    best = li
            out[n, k] = abs(best - lag) if best >= 0 else lag


@njit(nogil=True, cache=True)
def diversity_stats(pred, n0, n1, spread, tvar, total):  # pragma: no cover - compiled
    """Per speaker: spread[n] = sum_k ||P[n, k] - mean_k P[n]||^2 (FRDiv),
    tvar[n] = sum_{k, d} unbiased Var_t (FRVar); total (K, T, D) += sum over these speakers
    (the across-speaker mean of FRDvs)."""
    n_k, n_t, n_d = pred.shape[1], pred.shape[2], pred.shape[3]
    mean = np.empty((n_t, n_d))
    mu = np.empty(n_d)
    for n in range(n0, n1):
        mean[:] = 0.0
        for k in range(n_k):
            for t in range(n_t):
                for d in range(n_d):
                    v = np.float64(pred[n, k, t, d])
                    mean[t, d] += v
                    total[k, t, d] += v
        mean /= n_k
        s = 0.0
        tv = 0.0
        for k in range(n_k):
            mu[:] = 0.0
            for t in range(n_t):
                for d in range(n_d):
                    v = np.float64(pred[n, k, t, d])
                    c = v - mean[t, d]
                    s += c * c
                    mu[d] += v
            mu /= n_t
            for t in range(n_t):
                for d in range(n_d):
                    c = pred[n, k, t, d] - mu[d]
                    tv += c * c
        spread[n] = s
        tvar[n] = tv / (n_t - 1) if n_t > 1 else np.nan


@njit(nogil=True, cache=True)
def spread_about(pred, mean, n0, n1, out):  # pragma: no cover - compiled
    """out[n] = sum_{k, t, d} (P[n, k, t, d] - mean[k, t, d])^2 (FRDvs's second pass)."""
    n_k, n_t, n_d = pred.shape[1], pred.shape[2], pred.shape[3]
    for n in range(n0, n1):
        s = 0.0
        for k in range(n_k):
            for t in range(n_t):
                for d in range(n_d):
                    c = pred[n, k, t, d] - mean[k, t, d]
                    s += c * c
        out[n] = s


@njit(nogil=True, cache=True)
def first_nonfinite(flat):  # pragma: no cover - compiled
    """Index of the first NaN/inf of a 1-D array, or -1 (no temporary arrays, early exit)."""
    for i in range(flat.shape[0]):
        if not np.isfinite(flat[i]):
            return i
    return -1


@njit(nogil=True, cache=True)
def frame_moments(frames, mean, scatter):  # pragma: no cover - compiled
    """Add the rows of frames (F, D) float32: mean += sum of rows; then, given the final mean,
    call again with ``scatter`` to add sum of (row - mean)(row - mean)^T (upper triangle)."""
    n_f, n_d = frames.shape
    if scatter.shape[0] == 0:
        for f in range(n_f):
            for d in range(n_d):
                mean[d] += frames[f, d]
        return
    c = np.empty(n_d)
    for f in range(n_f):
        for d in range(n_d):
            c[d] = frames[f, d] - mean[d]
        for a in range(n_d):
            for b in range(a, n_d):
                scatter[a, b] += c[a] * c[b]
