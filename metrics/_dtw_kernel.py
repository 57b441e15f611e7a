"""The fast DTW kernel: explicit 16-lane SIMD over a batch of pairs, generated as LLVM IR.

Why IR: LLVM's loop vectoriser gives up on the natural numba loop ("too many memory checks":
numba arrays carry runtime strides, so every access needs a run-time alias test). The kernel
below is written directly with vector types, so one instruction updates the same cell of 16
different (x, y) pairs at once (lane b = pair b of a chunk).

Layout of one chunk of ``LANES`` pairs (float32, C order, lane index last):
    xs  (Tx, D, LANES)           the x sequences
    ys  (Ty_pad, D, LANES)       the y sequences, zero padded to a multiple of ``BLOCK`` frames
    col (G, Tx + 1, LANES)       accumulated cost at the column left of the current block
    row (G, BLOCK, LANES)        accumulated cost of the previous x frame over the block

The (Tx, Ty) cost plane is swept in column blocks of ``BLOCK`` y frames: for each block and
each feature group, the x frames are taken ``ROWS`` at a time (then one at a time for an odd
tail) and update the ``BLOCK`` cells (i, j0..j0+BLOCK-1) of each: one load of a y frame serves
both x frames and the two rows' DP chains overlap. The y frames of a block (BLOCK * D * LANES
floats, 25 KiB) stay in L1 while the x frames' group dims stay in registers (groups are split
into loops small enough not to spill), and the DP state is O(Tx + BLOCK) per pair. The local
cost is the exact squared difference (not ||a||^2 + ||b||^2 - 2ab, which cancels and makes
DTW(x, x) non-zero), summed in float32 by one FMA chain; every other ``x - y`` is an
``fma(y, -1, x)`` (the same correctly rounded result) so that the subtractions share the FMA
units with the squares instead of queueing on the adders with the DP's min and add.

Binary groups: when every value of a group is 0 or 1 in both sequences (AU occurrences, as
models output and the challenge's GT holds them), the squared distance of two frames is the
number of differing dims. The runner then packs the group's bits into one int32 (in the slot of
the group's first dim) and the kernel computes the cost as ``popcount(x XOR y)``: 2 vector
instructions instead of 2 per dim. The group's DP then runs in int32 (integer min and add,
which are also cheaper than the float ones): its state in ``col`` and ``row`` holds int32 bits,
``+inf`` read as the int 0x7f800000, larger than any reachable cost. Integer costs below 2^24
sum exactly in float32 as well, so the distances are the same bit for bit.
"""

from __future__ import annotations

import types as types_

import numpy as np
from llvmlite import ir  # numba's own code generator (a numba dependency)
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from react_data.schema import ATTR_GROUPS

LANES = 16  # one AVX-512 register of float32; LLVM splits it on narrower machines
BLOCK = 16  # y frames per column block (unrolled)
ROWS = 2  # x frames per sweep iteration: each y load serves both, and two DP chains overlap

SCHEMA_GROUPS: tuple[tuple[int, int], ...] = tuple((s.start, s.stop) for _, s, _ in ATTR_GROUPS)


def loop_plan(groups: tuple[tuple[int, int], ...], max_registers: int = 12,
              binary: tuple[bool, ...] = (), rows: int = 1) -> list[list[int]]:
    """Which groups share one sweep over the x frames.

    Groups in one loop give independent dependency chains (the DP's ``left`` chain is a
    latency chain: one group alone waits on it when its cost is cheap), but all their x dims
    must stay in registers: a greedy packing under ``max_registers`` vectors (a binary group's
    bits fit in one; ``rows`` x frames at a time need ``rows`` times as many).
    """
    plan: list[list[int]] = []
    used = max_registers + 1
    for g, (a, b) in enumerate(groups):
        need = rows * (1 if g < len(binary) and binary[g] else b - a)
        if plan and used + need <= max_registers:
            plan[-1].append(g)
            used += need
        else:
            plan.append([g])
            used = need
    return plan


def make_block_kernel(groups: tuple[tuple[int, int], ...], lanes: int = LANES,
                      block: int = BLOCK, binary: tuple[bool, ...] = (), rows: int = ROWS):
    """Build the numba intrinsic that sweeps one column block for all x frames and groups.

    Called as ``kernel(xs, ys_block, col, row, tx)`` with 1-D float32 arrays in the layout of
    the module docstring (``ys_block`` starts at the block's first frame); updates ``col`` and
    ``row`` in place. Groups flagged in ``binary`` read their bit-packed int32 (see the module
    docstring) from the slot of their first dim and keep their ``col``/``row`` state as int32.
    """
    n_dim = groups[-1][1]
    binary = tuple(bool(b) for b in binary) + (False,) * (len(groups) - len(binary))
    plan = loop_plan(groups, binary=binary, rows=rows)
    f32 = ir.FloatType()
    vec = ir.VectorType(f32, lanes)
    ivec = ir.VectorType(ir.IntType(32), lanes)
    i64 = ir.IntType(64)

    @intrinsic
    def kernel(typingctx, xs, ys, col, row, tx):
        sig = types.void(xs, ys, col, row, types.intp)

        def codegen(context, builder, signature, args):
            xp, yp, cp, rp = (context.make_array(signature.args[k])(context, builder, args[k]).data
                              for k in range(4))
            n_rows = args[4]
            vptr, iptr = vec.as_pointer(), ivec.as_pointer()
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vec, [vec, vec, vec]), f"llvm.fma.v{lanes}f32")
            ctpop = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ivec, [ivec]), f"llvm.ctpop.v{lanes}i32")

            def const(k):
                return ir.Constant(i64, k)

            neg_one = ir.Constant(vec, [ir.Constant(f32, -1.0)] * lanes)

            def vload(base, idx):
                return builder.load(builder.bitcast(builder.gep(base, [idx]), vptr), align=4)

            def iload(base, idx):
                return builder.load(builder.bitcast(builder.gep(base, [idx]), iptr), align=4)

            def vstore(val, base, idx):
                ptr = vptr if val.type == vec else iptr
                builder.store(val, builder.bitcast(builder.gep(base, [idx]), ptr), align=4)

            def sload(g, base, idx):  # DP state: int32 for binary groups (integer costs)
                return (iload if binary[g] else vload)(base, idx)

            def vmin(a, b):
                if a.type == ivec:
                    return builder.select(builder.icmp_signed("<", a, b), a, b)
                return builder.select(builder.fcmp_ordered("<", a, b), a, b)

            def vadd(a, b):
                return builder.add(a, b) if a.type == ivec else builder.fadd(a, b)

            def yload(loader, idx, cache):
                if idx not in cache:
                    cache[idx] = loader(yp, const(idx))
                return cache[idx]

            def self_cost(g, jj, xv, cache):
                """Local cost of group g between the x frame ``xv`` and y frame jj."""
                if binary[g]:
                    a = groups[g][0]
                    y = yload(iload, (jj * n_dim + a) * lanes, cache)
                    return builder.call(ctpop, [builder.xor(xv[a], y)])
                # Sum of squared differences: one FMA chain (off the DP's dependency chain).
                acc = None
                for d in range(*groups[g]):
                    y = yload(vload, (jj * n_dim + d) * lanes, cache)
                    if d % 2 == 0:  # x - y as fma(y, -1, x): the same rounding
                        diff = builder.call(fma, [y, neg_one, xv[d]])
                    else:  # (spreads the subtractions over the FMA and the add units)
                        diff = builder.fsub(xv[d], y)
                    acc = (builder.fmul(diff, diff) if acc is None
                           else builder.call(fma, [diff, diff, acc]))
                return acc

            col_stride = builder.mul(builder.add(n_rows, const(1)), const(lanes))

            def sweep(members, cg, rg, carry_in, i_in, n_tile, tag):
                """Rows ``i_in, i_in + n_tile, ...`` while ``i + n_tile <= n_rows``, each
                iteration ``n_tile`` x frames against the block (one y load serves them all).
                Returns (i, carry) at exit, carry = D(i - 1, j0 - 1) per group."""
                entry = builder.block
                header = builder.append_basic_block(f"{tag}.header")
                body = builder.append_basic_block(f"{tag}.body")
                done = builder.append_basic_block(f"{tag}.done")
                builder.branch(header)

                builder.position_at_end(header)
                i = builder.phi(i64)
                i.add_incoming(i_in, entry)
                carry = {g: builder.phi(ivec if binary[g] else vec) for g in members}
                for g in members:
                    carry[g].add_incoming(carry_in[g], entry)
                builder.cbranch(builder.icmp_signed("<=", builder.add(i, const(n_tile)), n_rows),
                                body, done)

                builder.position_at_end(body)
                xv_rows, left, diag, slots = [], [], [], []
                for r in range(n_tile):
                    ir_ = builder.add(i, const(r))
                    xbase = builder.mul(ir_, const(n_dim * lanes))
                    xv_rows.append({d: (iload if binary[g] else vload)(
                        xp, builder.add(xbase, const(d * lanes)))
                        for g in members for d in (range(*groups[g]) if not binary[g]
                                                   else [groups[g][0]])})
                    slot = builder.mul(builder.add(ir_, const(1)), const(lanes))
                    slots.append(slot)
                    left.append({g: sload(g, cg[g], slot) for g in members})
                # D(i + r - 1, j0 - 1): the carry for r = 0, the column value above otherwise.
                diag = [dict(carry)] + [dict(left[r - 1]) for r in range(1, n_tile)]
                next_carry = dict(left[-1])
                for jj in range(block):
                    ycache = {}
                    for g in members:
                        slot = const(jj * lanes)
                        up = sload(g, rg[g], slot)
                        for r in range(n_tile):
                            cost = self_cost(g, jj, xv_rows[r], ycache)
                            new = vadd(cost, vmin(vmin(up, diag[r][g]), left[r][g]))
                            diag[r][g], left[r][g] = up, new
                            up = new
                        vstore(up, rg[g], slot)
                for r in range(n_tile):
                    for g in members:
                        vstore(left[r][g], cg[g], slots[r])
                latch = builder.block
                i.add_incoming(builder.add(i, const(n_tile)), latch)
                for g in members:
                    carry[g].add_incoming(next_carry[g], latch)
                builder.branch(header)

                builder.position_at_end(done)
                return i, carry

            for loop_no, members in enumerate(plan):
                cg = {g: builder.gep(cp, [builder.mul(const(g), col_stride)]) for g in members}
                rg = {g: builder.gep(rp, [const(g * block * lanes)]) for g in members}
                # D(-1, j0 - 1), kept by the caller in col[g, 0].
                carry = {g: sload(g, cg[g], const(0)) for g in members}
                i = const(0)
                if rows > 1:
                    i, carry = sweep(members, cg, rg, carry, i, rows, f"dtw{loop_no}.tile")
                sweep(members, cg, rg, carry, i, 1, f"dtw{loop_no}.tail")
            return context.get_dummy_value()

        return sig, codegen

    return kernel


# The schema's binary candidate: the AU group (occurrences in {0, 1}).
SCHEMA_BINARY: tuple[bool, ...] = tuple(name == "au" for name, _, _ in ATTR_GROUPS)
_SCHEMA_KERNEL = make_block_kernel(SCHEMA_GROUPS)
_SCHEMA_KERNEL_BIN = make_block_kernel(SCHEMA_GROUPS, binary=SCHEMA_BINARY)
_BINARY_GROUPS = tuple(g for g, b in zip(SCHEMA_GROUPS, SCHEMA_BINARY, strict=True) if b)
_BINARY_FLAGS = SCHEMA_BINARY
_INF32 = np.float32(np.inf)


@njit(nogil=True, inline="always")
def _gather_frame(dst, dst_bits, t, src, src_bits, rows, dims, bin_slot,
                  n_dim):  # pragma: no cover - compiled
    """Frame t of the chunk buffer: lane b takes row ``rows[b]`` of ``src`` (the float dims
    ``dims``) and of ``src_bits`` (each binary group's bits, into slot ``bin_slot[k]``)."""
    lanes = LANES  # a compile-time trip count
    for q in range(dims.shape[0]):
        d = dims[q]
        off = (t * n_dim + d) * lanes
        for b in range(lanes):
            dst[off + b] = src[rows[b], d]
    for k in range(bin_slot.shape[0]):
        off = (t * n_dim + bin_slot[k]) * lanes
        for b in range(lanes):
            dst_bits[off + b] = src_bits[rows[b], k]


def _run_chunks(x, yf, ystart, ylen, px, py, c0, c1, out, xbits, ybits,
                binary):  # pragma: no cover - compiled
    """Run chunks ``[c0, c1)`` of a sorted pair list (numba nogil; see `make_chunk_runner`).

    ``binary``: the ``_BINARY_GROUPS`` hold only 0/1 in x and y; their bits, packed once per
    frame by `pack_bits` (``xbits`` (M * Tx, B), ``ybits`` (F, B) int32), go to the slot of the
    group's first dim, the group's other slots are not filled, and the popcount kernel runs.
    """
    kernel = _SCHEMA_KERNEL
    kernel_bin = _SCHEMA_KERNEL_BIN
    bin_groups = _BINARY_GROUPS
    lanes = LANES
    block = BLOCK
    tx, n_dim = x.shape[1], x.shape[2]
    n_grp = out.shape[1]
    n_pairs = px.shape[0]
    # The dims the kernel reads as floats (all, or all but the binary groups').
    copied = np.ones(n_dim, dtype=np.bool_)
    bin_slot = np.empty(len(bin_groups), dtype=np.int64)
    n_bin = 0
    if binary:
        for g_lo, g_hi in bin_groups:
            copied[g_lo:g_hi] = False
            bin_slot[n_bin] = g_lo
            n_bin += 1
    dims = np.nonzero(copied)[0]
    xf = x.reshape(-1, n_dim)  # row xi * tx + t
    ty_max = 1
    for p in range(c0 * lanes, min(c1 * lanes, n_pairs)):
        ty_max = max(ty_max, ylen[py[p]])
    ty_pad = (ty_max + block - 1) // block * block
    xs = np.empty(tx * n_dim * lanes, dtype=np.float32)
    ys = np.empty(ty_pad * n_dim * lanes, dtype=np.float32)
    xs_bits = xs.view(np.int32)  # binary groups: packed bits in their first dim's slot
    ys_bits = ys.view(np.int32)
    col = np.empty((n_grp, (tx + 1) * lanes), dtype=np.float32)
    row = np.empty((n_grp, block * lanes), dtype=np.float32)
    row_bits = row.view(np.int32)  # binary groups' DP state: int32 (see make_block_kernel)
    bin_group = _BINARY_FLAGS
    res = np.empty((n_grp, lanes), dtype=np.float32)
    xsel = np.empty(lanes, dtype=np.int64)
    ysel = np.empty(lanes, dtype=np.int64)
    ysize = np.empty(lanes, dtype=np.int64)
    xrow = np.empty(lanes, dtype=np.int64)
    yrow = np.empty(lanes, dtype=np.int64)
    for ch in range(c0, c1):
        lo = ch * lanes
        used = min(lanes, n_pairs - lo)
        ty = 1
        for b in range(used):
            ty = max(ty, ylen[py[lo + b]])
        n_blocks = (ty + block - 1) // block
        for b in range(lanes):
            p = lo + min(b, used - 1)  # idle lanes repeat the last pair
            xsel[b] = px[p]
            ysel[b] = ystart[py[p]]
            ysize[b] = ylen[py[p]]
        # Lane-inner gather (16 lanes of one (frame, dim) fill one cache line). Frames past a
        # lane's y length (the padding up to the block) repeat its last frame: any finite value
        # will do, as no cell at or before the lane's last frame depends on them.
        for t in range(tx):
            for b in range(lanes):
                xrow[b] = xsel[b] * tx + t
            _gather_frame(xs, xs_bits, t, xf, xbits, xrow, dims, bin_slot[:n_bin], n_dim)
        for t in range(n_blocks * block):
            for b in range(lanes):
                yrow[b] = ysel[b] + min(t, ysize[b] - 1)
            _gather_frame(ys, ys_bits, t, yf, ybits, yrow, dims, bin_slot[:n_bin], n_dim)
        col[:] = _INF32
        col[:, :lanes] = 0.0  # D(-1, -1) = 0
        for blk in range(n_blocks):
            row[:] = _INF32  # D(-1, j) = inf
            if binary:
                kernel_bin(xs, ys[blk * block * n_dim * lanes:], col.ravel(), row.ravel(), tx)
            else:
                kernel(xs, ys[blk * block * n_dim * lanes:], col.ravel(), row.ravel(), tx)
            if blk == 0:
                col[:, :lanes] = _INF32
            for b in range(used):
                jj = ylen[py[lo + b]] - 1 - blk * block
                if 0 <= jj < block:
                    for g in range(n_grp):
                        res[g, b] = (row_bits[g, jj * lanes + b] if binary and bin_group[g]
                                     else row[g, jj * lanes + b])
        for b in range(used):
            for g in range(n_grp):
                out[lo + b, g] = np.sqrt(np.float64(res[g, b]))


run_schema_chunks = njit(nogil=True, cache=True)(_run_chunks)

MAX_BINARY_DIMS = 31  # bits of one int32 lane


def make_chunk_runner(groups: tuple[tuple[int, int], ...], binary: tuple[bool, ...] = ()):
    """The chunk runner for ``groups`` with the groups flagged in ``binary`` bit-packed.

    Signature: ``run(x, yf, ystart, ylen, px, py, c0, c1, out, xbits, ybits)`` with x
    (M, Tx, D) float32, yf (F, D) float32 (all y sequences concatenated), ystart/ylen (R,)
    int64, px/py (P,) int64 (pair p compares x[px[p]] with y number py[p]; sorted so that a
    chunk's y lengths are close), out (P, G) float64 receiving the DTW distances of chunks
    ``[c0, c1)``, and the binary groups' bits from ``pack_bits(x, yf, groups, binary)``. The caller
    guarantees that the ``binary`` groups hold only 0 and 1 (`is_binary`). The schema's two
    variants (no binary group; AU binary) are compiled once and disk-cached; other ones are
    compiled on first use.
    """
    binary = tuple(bool(b) for b in binary) + (False,) * (len(groups) - len(binary))
    for (a, b), flag in zip(groups, binary, strict=True):
        if flag and b - a > MAX_BINARY_DIMS:
            raise ValueError(f"binary group ({a}, {b}) has more than {MAX_BINARY_DIMS} dims")
    if groups == SCHEMA_GROUPS and binary in (SCHEMA_BINARY, (False,) * len(groups)):
        flag = any(binary)
        return lambda *args: run_schema_chunks(*args, flag)
    namespace = dict(_run_chunks.__globals__)
    namespace["_SCHEMA_KERNEL"] = make_block_kernel(groups)
    namespace["_SCHEMA_KERNEL_BIN"] = make_block_kernel(groups, binary=binary)
    bins = tuple(g for g, f in zip(groups, binary, strict=True) if f)
    namespace["_BINARY_GROUPS"] = bins or ((0, 0),)  # numba needs a non-empty tuple to type
    namespace["_BINARY_FLAGS"] = binary
    clone = njit(nogil=True)(types_.FunctionType(_run_chunks.__code__, namespace, "_run_chunks"))
    flag = bool(bins)
    return lambda *args: clone(*args, flag)


@njit(nogil=True, cache=True)
def _pack_rows(values, bounds):  # pragma: no cover - compiled
    out = np.empty((values.shape[0], bounds.shape[0]), dtype=np.int32)
    for r in range(values.shape[0]):
        for k in range(bounds.shape[0]):
            bits = 0
            for d in range(bounds[k, 0], bounds[k, 1]):
                if values[r, d] != 0:
                    bits |= 1 << (d - bounds[k, 0])
            out[r, k] = bits
    return out


def pack_bits(x: np.ndarray, yf: np.ndarray, groups: tuple[tuple[int, int], ...],
              binary: tuple[bool, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The runner's ``xbits`` (M * Tx, B) and ``ybits`` (F, B): bit d - lo set where dim d of a
    binary group (lo, hi) is non-zero, one int32 per frame and binary group (B of them; none
    when no group is binary). Computed once per call, not once per chunk lane."""
    flagged = [g for g, f in zip(groups, binary, strict=False) if f]
    bounds = np.array(flagged or [(0, 0)], dtype=np.int64)[: len(flagged)]
    return _pack_rows(x.reshape(-1, x.shape[-1]), bounds), _pack_rows(yf, bounds)


@njit(nogil=True, cache=True)
def is_binary(values, lo, hi):  # pragma: no cover - compiled
    """True if ``values[..., lo:hi]`` (a 2-D (frames, D) float32 array) holds only 0 and 1.

    Checked a row at a time without a branch per value (a branchy scan ran at ~4 ns a value).
    """
    for r in range(values.shape[0]):
        bad = False
        for d in range(lo, hi):
            v = values[r, d]
            bad |= (v != 0) & (v != 1)
        if bad:
            return False
    return True
