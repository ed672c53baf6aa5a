"""Compiled per-pulse update of one Hall bar's bins (numba), drawing from the device's own numpy PCG64.

A single pulse touches ~50 bins; as numpy calls that is ~25 array operations of ~1 µs each, as
one compiled loop it is ~1 µs. The kernel reads uniforms straight from the HallBar's switching
`numpy.random.PCG64` through its documented ctypes interface (`bit_generator.ctypes`), so the
generator's state stays the one numpy saves and restores. The function and state addresses are
passed as integers rather than captured, which keeps the compiled code cacheable across processes.

The law is `switching`'s: HallBar.pulse takes the kernel's arguments (J_eff/h, Δ_eff, ln(t_p/τ0),
target) from `switching.pulse_terms`, and the loop evaluates `switching.log_rate` per bin in
compiled form (it cannot call the Python function: numba's cache would not see that file change).
tests/test_physics.py holds the two equal.
"""
from __future__ import annotations

import ctypes
import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


__all__ = ["generator_handle", "pulse_bins"]


def generator_handle(rng: np.random.Generator) -> tuple[int, int]:
    """(address of next_double, address of the state) of a PCG64-backed Generator."""
    c = rng.bit_generator.ctypes
    return ctypes.cast(c.next_double, ctypes.c_void_p).value, c.state_address


@intrinsic
def _next_double(typingctx, fn_addr, state_addr):
    """Call numpy's `double next_double(void *state)` through its address: a uniform in [0, 1)."""
    sig = types.float64(types.intp, types.intp)

    def codegen(context, builder, signature, args):
        vptr = ir.IntType(8).as_pointer()
        fn = builder.inttoptr(args[0], ir.FunctionType(ir.DoubleType(), [vptr]).as_pointer())
        return builder.call(fn, [builder.inttoptr(args[1], vptr)])
    return sig, codegen


@njit(cache=True)
def _binomial(fn: int, st: int, n: int, p: float) -> int:
    """Exact Binomial(n, p) by geometric waiting times: ~n·min(p, 1-p) + 1 uniforms."""
    flip = p > 0.5
    q = 1.0 - p if flip else p
    if q <= 0.0:
        return n if flip else 0
    lq = math.log1p(-q)
    k, pos = 0, 0
    while True:
        pos += int(math.floor(math.log1p(-_next_double(fn, st)) / lq)) + 1
        if pos > n:
            break
        k += 1
    return n - k if flip else k


@njit(cache=True)
def pulse_bins(fn: int, st: int, inv_jc: np.ndarray, sign: np.ndarray, count: np.ndarray,
               up: np.ndarray, target: int, j_over_h: float, delta: float, ln_t: float,
               n_exp: float, log_cold: float, log_sure: float) -> int:
    """Switch the candidate units of every bin for one pulse; returns the change of Σ m (integer).

    Bin i's units switch towards m = target·sign[i] with P = 1 - exp(-rate),
    ln rate = ln(t_p/τ0) - Δ·max(0, 1 - J/(J_c,i·h))^n. `up` (units at m = +1 per bin) is updated.
    Bins with ln rate <= `log_cold` are left alone, bins above `log_sure` switch entirely (the
    thresholds are arguments, not globals, so a cached compiled kernel cannot keep stale values).
    """
    dm = 0
    for i in range(inv_jc.size):
        c = count[i]
        if c == 0:
            continue
        rising = sign[i] == target
        cand = c - up[i] if rising else up[i]
        if cand == 0:
            continue
        x = 1.0 - j_over_h * inv_jc[i]
        if x < 0.0:
            x = 0.0
        arg = ln_t - delta * (x if n_exp == 1.0 else x ** n_exp)
        if arg <= log_cold:
            continue
        k = cand if arg > log_sure else _binomial(fn, st, cand, -math.expm1(-math.exp(arg)))
        if rising:
            up[i] += k
            dm += 2 * k
        else:
            up[i] -= k
            dm -= 2 * k
    return dm
