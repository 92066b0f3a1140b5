"""Fused compiled kernels of the health engine: exact 128-bit per-wallet sums in one pass over the positions.

The polars path builds a fresh column of a million rows for every step of wallet_health (products, sums, quotients in
Int128, then their doubles) and groups the book by wallet; here one compiled loop over the positions, in the book's
order, adds each position into its wallet's slots of preallocated arrays, in unsigned 128-bit integers held as two
64-bit limbs (products of 64-bit halves through 32-bit quarters, quotients by long division). The results are those
of the polars path bit for bit: the same integers, the same doubles (each integer taken to the nearest double, as
polars' cast does) and the same float sums (added in the book's order, as polars' grouped sums are). Whatever the
kernel cannot take exactly (a negative amount or threshold, a product or sum leaving the 127 bits of a positive
Int128, a null) it reports, and the caller runs the polars path instead: the kernel is a shortcut, never a second
definition of a figure.

The loops that can run on several threads split the wallets (or rows) between `threads` (numba's own count, passed
in: read inside a kernel it would keep the kernel from the cache).

Compiled with numba on first use and cached next to this module (`cache=True`; where that folder is read-only numba
compiles again in each process, a few seconds, and says nothing).
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from numba import njit, prange

#: Codes of the health rules in the kernels (0: Aave's floored average threshold, the default).
AVERAGE, PER_POSITION, WEIGHTED_THRESHOLD, COLLATERAL_RATIO = 0, 1, 2, 3

_U0 = np.uint64(0)
_U1 = np.uint64(1)
_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_S63 = np.uint64(63)
_S64F = 18446744073709551616.0  # 2^64
_E9 = np.uint64(10**9)
_BPS = np.uint64(10_000)
_HALF_BPS = np.uint64(5_000)
_WAD_HI = np.uint64(0)
_WAD_LO = np.uint64(10**18)
_BELOW_ONE = float(np.nextafter(1.0, 0.0))

Limbs = npt.NDArray[np.uint64]


def int128_limbs(series: pl.Series, keep: list[pl.Series]) -> Limbs | None:
    """An Int128 column's values as rows of (low, high) unsigned 64-bit limbs, read in place (no copy): None when it
    holds nulls or is not Int128. `keep` holds the column while the view is used (the view does not own it)."""
    if series.dtype != pl.Int128 or series.null_count() > 0:
        return None
    if series.len() == 0:
        return np.zeros((0, 2), dtype=np.uint64)
    whole = series.rechunk()
    keep.append(whole)
    pointer = whole._s.as_single_ptr()
    buffer = (ctypes.c_uint64 * (2 * whole.len())).from_address(pointer)
    return np.ctypeslib.as_array(buffer).reshape(-1, 2)


def aligned(series: pl.Series, lengths: list[int]) -> pl.Series:
    """`series` (one chunk) cut into chunks of `lengths` without copying: a frame whose columns are chunked alike is
    read as it is, while one whose chunks differ is copied whole into one chunk by the next operation on it."""
    if len(lengths) <= 1:
        return series
    parts, start = [], 0
    for length in lengths:
        parts.append(series.slice(start, length))
        start += length
    return pl.concat(parts, rechunk=False)


def new_int128(rows: int) -> tuple[pl.Series, Limbs]:
    """A new Int128 column of `rows` zeros and a writable view of its limbs, for a kernel to write the column's values
    in place: the column is made here and shared with nothing, so writing it changes no other frame."""
    column = pl.zeros(rows, dtype=pl.Int128, eager=True)
    if rows == 0:
        return column, np.zeros((0, 2), dtype=np.uint64)
    keep: list[pl.Series] = []
    view = int128_limbs(column, keep)
    if view is None or keep[0].n_chunks() != 1:
        raise AssertionError("a new Int128 column is one chunk without nulls")
    return keep[0], view


@njit(inline="always")
def _mul64(a: Any, b: Any) -> Any:
    """a * b of two uint64 as (high, low)."""
    a_lo = a & _M32
    a_hi = a >> _S32
    b_lo = b & _M32
    b_hi = b >> _S32
    p0 = a_lo * b_lo
    p1 = a_lo * b_hi
    p2 = a_hi * b_lo
    p3 = a_hi * b_hi
    mid = (p0 >> _S32) + (p1 & _M32) + (p2 & _M32)
    low = (p0 & _M32) | (mid << _S32)
    high = p3 + (p1 >> _S32) + (p2 >> _S32) + (mid >> _S32)
    return high, low


@njit(inline="always")
def _mul128_64(h: Any, lo: Any, b: Any) -> Any:
    """(h, lo) * b as (high, low, fits): fits when the product is below 2^127 (a positive Int128)."""
    h1, l1 = _mul64(lo, b)
    h2, l2 = _mul64(h, b)
    mid = h1 + l2
    carry = _U1 if mid < h1 else _U0
    top = h2 + carry
    return mid, l1, top == _U0 and (mid >> _S63) == _U0


@njit(inline="always")
def _add128(ah: Any, al: Any, bh: Any, bl: Any) -> Any:
    """(ah, al) + (bh, bl) as (high, low, fits) for two values below 2^127: fits when the sum is too."""
    low = al + bl
    carry = _U1 if low < al else _U0
    high = ah + bh + carry
    return high, low, (high >> _S63) == _U0


@njit(inline="always")
def _sub128(ah: Any, al: Any, bh: Any, bl: Any) -> Any:
    """(ah, al) - (bh, bl) modulo 2^128."""
    low = al - bl
    borrow = _U1 if al < bl else _U0
    return ah - bh - borrow, low


@njit(inline="always")
def _less(ah: Any, al: Any, bh: Any, bl: Any) -> Any:
    return ah < bh or (ah == bh and al < bl)


@njit(inline="always")
def _divmod_small(h: Any, lo: Any, d: Any) -> Any:
    """(h, lo) // d and % d for 0 < d < 2^32, by long division in 32-bit steps: (q_high, q_low, remainder)."""
    q_high = h // d
    r = h % d
    x = (r << _S32) | (lo >> _S32)
    q1 = x // d
    r = x % d
    x = (r << _S32) | (lo & _M32)
    q0 = x // d
    r = x % d
    return q_high, (q1 << _S32) | q0, r


@njit(inline="always")
def _bit_length(x: Any) -> Any:
    """The number of bits of a uint64 above its leading zeros."""
    n = _U0
    for step in (np.uint64(32), np.uint64(16), np.uint64(8), np.uint64(4), np.uint64(2), np.uint64(1)):
        if (x >> step) != _U0:
            x >>= step
            n += step
    return n + x


@njit(inline="always")
def _to_float(h: Any, lo: Any) -> float:
    """The nearest double to the unsigned 128-bit (h, lo) (ties to even, as a hardware conversion): the top 64 bits
    with every bit below them folded into the lowest (a sticky bit), converted, then scaled."""
    if h == _U0:
        return float(lo)
    shift = _bit_length(h)
    # The value has 64 + shift bits; its top 64 are (h, lo) >> shift.
    top = (h << (np.uint64(64) - shift)) | (lo >> shift) if shift < np.uint64(64) else h
    lost = lo & ((_U1 << shift) - _U1) if shift < np.uint64(64) else lo
    if lost != _U0:
        top |= _U1
    scaled: float = float(top) * 2.0 ** float(shift)
    return scaled


@njit(inline="always")
def _signed_float(h: Any, lo: Any) -> float:
    """The nearest double to the two's-complement 128-bit (h, lo)."""
    if (h >> _S63) == _U0:
        return _to_float(h, lo)
    nh, nl = _sub128(_U0, _U0, h, lo)
    return -_to_float(nh, nl)


@njit(cache=True)
def _divmod128(ah: Any, al: Any, bh: Any, bl: Any) -> Any:
    """(a // b, a % b) of two unsigned 128-bit integers, b > 0: (q_high, q_low, r_high, r_low)."""
    if ah == _U0 and bh == _U0:
        return _U0, al // bl, _U0, al % bl
    if bh == _U0 and bl <= _M32:
        qh, ql, r = _divmod_small(ah, al, bl)
        return qh, ql, _U0, r
    estimate = (float(ah) * _S64F + float(al)) / (float(bh) * _S64F + float(bl))
    if estimate < 2.0**50:
        # The estimate is within a few units of the quotient: correct it with exact products.
        q = np.uint64(estimate)
        ph, pl_, top_fits = _mul128_64(bh, bl, q)
        while not top_fits or _less(ah, al, ph, pl_):
            q -= _U1
            ph, pl_, top_fits = _mul128_64(bh, bl, q)
        rh, rl = _sub128(ah, al, ph, pl_)
        while not _less(rh, rl, bh, bl):
            q += _U1
            rh, rl = _sub128(rh, rl, bh, bl)
        return _U0, q, rh, rl
    # Shift and subtract, one bit of the quotient at a time (quotients this large are rare).
    qh, ql, rh, rl = _U0, _U0, _U0, _U0
    for i in range(127, -1, -1):
        bit = (ah >> np.uint64(i - 64)) & _U1 if i >= 64 else (al >> np.uint64(i)) & _U1
        rh = (rh << _U1) | (rl >> _S63)
        rl = (rl << _U1) | bit
        if not _less(rh, rl, bh, bl):
            rh, rl = _sub128(rh, rl, bh, bl)
            if i >= 64:
                qh |= _U1 << np.uint64(i - 64)
            else:
                ql |= _U1 << np.uint64(i)
    return qh, ql, rh, rl


@njit(inline="always")
def _floor_wad_product(h: Any, lo: Any, t: Any) -> Any:
    """floor(value * t / 1e18) as (value // 1e18) * t + ((value % 1e18) * t) // 1e18, the polars path's split:
    (high, low, fits)."""
    # value // 1e18 by two divisions by 1e9.
    q1h, q1l, r1 = _divmod_small(h, lo, _E9)
    qh, ql, r2 = _divmod_small(q1h, q1l, _E9)
    remainder = r2 * _E9 + r1  # value % 1e18 (< 1e18)
    ah, al, fits = _mul128_64(qh, ql, t)
    bh, bl = _mul64(remainder, t)
    ch, cl, _, _ = _divmod128(bh, bl, _WAD_HI, _WAD_LO)
    sh, sl, fits_sum = _add128(ah, al, ch, cl)
    return sh, sl, fits and fits_sum


@njit(inline="always")
def _over_ratio(h: Any, lo: Any, th: Any, tl: Any) -> Any:
    """floor(value * 1e18 / t) as (value // t) * 1e18 + ((value % t) * 1e18) // t: (high, low, fits)."""
    qh, ql, rh, rl = _divmod128(h, lo, th, tl)
    ah, al, fits = _mul128_64(qh, ql, _WAD_LO)
    bh, bl, fits_r = _mul128_64(rh, rl, _WAD_LO)
    ch, cl, _, _ = _divmod128(bh, bl, th, tl)
    sh, sl, fits_sum = _add128(ah, al, ch, cl)
    return sh, sl, fits and fits_r and fits_sum


@njit(inline="always")
def _accumulate(exact: Any, w: Any, slot: int, h: Any, lo: Any) -> bool:
    """Adds (h, lo) into exact[w, slot]: whether the sum stays below 2^127."""
    sh, sl, fits = _add128(exact[w, slot, 1], exact[w, slot, 0], h, lo)
    exact[w, slot, 1] = sh
    exact[w, slot, 0] = sl
    return bool(fits)


#: Slots of the exact per-wallet sums (wallet_sums' `exact`).
COLLATERAL, DEBT, WEIGHTED_LT, WEIGHTED_LTV, ADJUSTED_PER_POSITION, CAPACITY_PER_POSITION, ADJUSTED_RATIO = range(7)
#: Slots of the float per-wallet sums (wallet_sums' `floats`).
COLLATERAL_USD, DEBT_USD, STABLE_WEIGHTED_USD, VOLATILE_WEIGHTED_USD, RECOVERABLE_USD = range(5)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def wallet_sums(
    index: Any,
    wallets: int,
    collateral: Any,
    debt: Any,
    threshold_bps: Any,
    ltv_bps: Any,
    collateral_usd: Any,
    debt_usd: Any,
    threshold_float: Any,
    stable: Any,
    bonus: Any,
    rules: bool,
    threshold_wad: Any,
    ratio_rows: Any,
    threads: int,
) -> Any:
    """Per wallet (`index`: each row's wallet, 0..wallets-1): the exact sums of wallet_health, as (wallets, slots, 2)
    limbs (7 slots with `rules`, else the first 4), and its float sums, as (wallets, 5); with whether every row was
    taken exactly (else the caller runs the polars path). `threshold_wad` and `ratio_rows` (rows under the
    collateral-ratio rule) are read when `rules`. Each thread takes the wallets of its residue, reading the rows in
    the book's order, so every wallet's sums are added in that order whatever the number of threads."""
    exact = np.zeros((wallets, 7 if rules else 4, 2), dtype=np.uint64)
    floats = np.zeros((wallets, 5), dtype=np.float64)
    parts = max(1, min(threads, wallets))
    taken = np.zeros(parts, dtype=np.bool_)
    for part in prange(parts):
        taken[part] = _wallet_sums_part(
            part,
            parts,
            index,
            collateral,
            debt,
            threshold_bps,
            ltv_bps,
            collateral_usd,
            debt_usd,
            threshold_float,
            stable,
            bonus,
            rules,
            threshold_wad,
            ratio_rows,
            exact,
            floats,
        )
    return exact, floats, bool(taken.all())


@njit(cache=True, nogil=True, error_model="numpy")
def _wallet_sums_part(
    part: int,
    parts: int,
    index: Any,
    collateral: Any,
    debt: Any,
    threshold_bps: Any,
    ltv_bps: Any,
    collateral_usd: Any,
    debt_usd: Any,
    threshold_float: Any,
    stable: Any,
    bonus: Any,
    rules: bool,
    threshold_wad: Any,
    ratio_rows: Any,
    exact: Any,
    floats: Any,
) -> bool:
    """wallet_sums over the wallets w with w % parts == part: whether each of their rows was taken exactly."""
    for row in range(index.shape[0]):
        w = index[row]
        if w % parts != part:
            continue
        ch = collateral[row, 1]
        cl = collateral[row, 0]
        dh = debt[row, 1]
        dl = debt[row, 0]
        lt = threshold_bps[row]
        ltv = ltv_bps[row]
        if (ch >> _S63) != _U0 or (dh >> _S63) != _U0 or lt < 0 or ltv < 0:
            return False
        fits = _accumulate(exact, w, COLLATERAL, ch, cl) and _accumulate(exact, w, DEBT, dh, dl)
        wh, wl, fits_w = _mul128_64(ch, cl, np.uint64(lt))
        vh, vl, fits_v = _mul128_64(ch, cl, np.uint64(ltv))
        if not (fits and fits_w and fits_v):
            return False
        if not (_accumulate(exact, w, WEIGHTED_LT, wh, wl) and _accumulate(exact, w, WEIGHTED_LTV, vh, vl)):
            return False
        if rules:
            th = threshold_wad[row, 1]
            tl = threshold_wad[row, 0]
            if th != _U0:
                return False
            h, lo, fits = _floor_wad_product(ch, cl, tl)
            if not (fits and _accumulate(exact, w, ADJUSTED_PER_POSITION, h, lo)):
                return False
            qh, ql, _ = _divmod_small(vh, vl, _BPS)
            if not _accumulate(exact, w, CAPACITY_PER_POSITION, qh, ql):
                return False
            if ratio_rows[row] and tl != _U0:
                h, lo, fits = _over_ratio(ch, cl, th, tl)
                if not (fits and _accumulate(exact, w, ADJUSTED_RATIO, h, lo)):
                    return False
        c_usd = collateral_usd[row]
        # polars divides a column by a number as a product with its reciprocal.
        weighted_usd = c_usd * threshold_float[row] * (1.0 / 10_000.0)
        floats[w, COLLATERAL_USD] += c_usd
        floats[w, DEBT_USD] += debt_usd[row]
        if stable[row]:
            floats[w, STABLE_WEIGHTED_USD] += weighted_usd
            floats[w, VOLATILE_WEIGHTED_USD] += 0.0
        else:
            floats[w, STABLE_WEIGHTED_USD] += 0.0
            floats[w, VOLATILE_WEIGHTED_USD] += weighted_usd
        floats[w, RECOVERABLE_USD] += c_usd / bonus[row]
    return True


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def wallet_verdicts(exact: Any, rule: Any, threads: int) -> Any:
    """Per wallet from wallet_sums' exact sums and its rule code: the average threshold and LTV (bps), the health
    factor (a double below 1 exactly when the integers say liquidatable; meaningless without debt), whether it is
    liquidatable, whether it has debt, and borrowing capacity less debt as a double; with whether every wallet was
    taken exactly."""
    wallets = exact.shape[0]
    threshold = np.zeros(wallets, dtype=np.int64)
    ltv = np.zeros(wallets, dtype=np.int64)
    health = np.zeros(wallets, dtype=np.float64)
    liquidatable = np.zeros(wallets, dtype=np.bool_)
    in_debt = np.zeros(wallets, dtype=np.bool_)
    spare = np.zeros(wallets, dtype=np.float64)
    parts = max(1, min(threads, wallets))
    taken = np.zeros(parts, dtype=np.bool_)
    for part in prange(parts):
        start = part * wallets // parts
        end = (part + 1) * wallets // parts
        taken[part] = _verdicts_part(start, end, exact, rule, threshold, ltv, health, liquidatable, in_debt, spare)
    return threshold, ltv, health, liquidatable, in_debt, spare, bool(taken.all())


@njit(cache=True, nogil=True, error_model="numpy")
def _verdicts_part(
    start: int,
    end: int,
    exact: Any,
    rule: Any,
    threshold: Any,
    ltv: Any,
    health: Any,
    liquidatable: Any,
    in_debt: Any,
    spare: Any,
) -> bool:
    """wallet_verdicts of the wallets start..end-1: whether each was taken exactly."""
    for w in range(start, end):
        ch, cl = exact[w, COLLATERAL, 1], exact[w, COLLATERAL, 0]
        dh, dl = exact[w, DEBT, 1], exact[w, DEBT, 0]
        wh, wl = exact[w, WEIGHTED_LT, 1], exact[w, WEIGHTED_LT, 0]
        vh, vl = exact[w, WEIGHTED_LTV, 1], exact[w, WEIGHTED_LTV, 0]
        lt = _U0
        lv = _U0
        if ch != _U0 or cl != _U0:
            _, lt, _, _ = _divmod128(wh, wl, ch, cl)
            _, lv, _, _ = _divmod128(vh, vl, ch, cl)
        if (lt >> _S63) != _U0 or (lv >> _S63) != _U0:
            return False
        threshold[w] = np.int64(lt)
        ltv[w] = np.int64(lv)
        r = rule[w]
        if r == PER_POSITION:
            ah, al = exact[w, ADJUSTED_PER_POSITION, 1], exact[w, ADJUSTED_PER_POSITION, 0]
            bh, bl = exact[w, CAPACITY_PER_POSITION, 1], exact[w, CAPACITY_PER_POSITION, 0]
        elif r == COLLATERAL_RATIO:
            ah, al = exact[w, ADJUSTED_RATIO, 1], exact[w, ADJUSTED_RATIO, 0]
            bh, bl = exact[w, CAPACITY_PER_POSITION, 1], exact[w, CAPACITY_PER_POSITION, 0]
        elif r == WEIGHTED_THRESHOLD:
            ah, al, _ = _divmod_small(wh, wl, _BPS)
            ph, pl_, fits = _mul128_64(ch, cl, lv)
            if not fits:
                return False
            bh, bl, _ = _divmod_small(ph, pl_, _BPS)
        else:
            # PercentageMath.percentMul: (collateral * bps + 5000) / 10000.
            ph, pl_, fits = _mul128_64(ch, cl, lt)
            ph, pl_, fits_sum = _add128(ph, pl_, _U0, _HALF_BPS)
            if not fits or not fits_sum:
                return False
            ah, al, _ = _divmod_small(ph, pl_, _BPS)
            ph, pl_, fits = _mul128_64(ch, cl, lv)
            ph, pl_, fits_sum = _add128(ph, pl_, _U0, _HALF_BPS)
            if not fits or not fits_sum:
                return False
            bh, bl, _ = _divmod_small(ph, pl_, _BPS)
        has_debt = dh != _U0 or dl != _U0
        in_debt[w] = has_debt
        below = _less(ah, al, dh, dl)
        liquidatable[w] = has_debt and below
        if has_debt:
            # polars divides a column by a number as a product with its reciprocal.
            numerator = _to_float(wh, wl) * (1.0 / 10_000.0) if r == WEIGHTED_THRESHOLD else _to_float(ah, al)
            ratio = numerator / _to_float(dh, dl)
            health[w] = min(ratio, _BELOW_ONE) if below else max(ratio, 1.0)
        sh, sl = _sub128(bh, bl, dh, dl)
        spare[w] = _signed_float(sh, sl)
    return True


@njit(inline="always")
def _greater(a: float, b: float) -> bool:
    """a > b as polars compares doubles: NaN above every number and equal to itself."""
    if np.isnan(a):
        return not np.isnan(b)
    if np.isnan(b):
        return False
    return a > b


@njit(inline="always")
def _differ(a: float, b: float) -> bool:
    """a != b as polars compares doubles (NaN equal to itself)."""
    if np.isnan(a) or np.isnan(b):
        return not (np.isnan(a) and np.isnan(b))
    return a != b


@njit(inline="always")
def _max_ignoring_nan(a: float, b: float) -> float:
    """polars' max_horizontal of two doubles: NaN gives way to a number."""
    if np.isnan(a):
        return b
    if np.isnan(b):
        return a
    return a if a >= b else b


@njit(inline="always")
def _average(x: float, unfloored: bool) -> float:
    return x if unfloored else np.floor(x)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def position_prices(
    index: Any,
    wallets: int,
    collateral: Any,
    debt: Any,
    collateral_amount: Any,
    debt_amount: Any,
    threshold: Any,
    unit: Any,
    unfloored: Any,
    iterations: int,
    threads: int,
) -> Any:
    """Per position: the price at which its wallet's HF reaches 1, other prices held, and what it is (0: no price,
    1: liquidated when the price falls below it, 2: when it rises above it, 3: a price of neither way); the
    formulas, order of operations and float comparisons of chainrisk.scoring.health's polars path (see
    liquidation_prices there)."""
    rows = index.shape[0]
    own_c = np.empty(rows, dtype=np.float64)
    own_d = np.empty(rows, dtype=np.float64)
    c = np.zeros(wallets, dtype=np.float64)
    d = np.zeros(wallets, dtype=np.float64)
    weighted = np.zeros(wallets, dtype=np.float64)
    for row in range(rows):
        w = index[row]
        oc = _signed_float(collateral[row, 1], collateral[row, 0])
        od = _signed_float(debt[row, 1], debt[row, 0])
        own_c[row] = oc
        own_d[row] = od
        c[w] += oc
        d[w] += od
        weighted[w] += oc * threshold[row]
    price = np.empty(rows, dtype=np.float64)
    way = np.zeros(rows, dtype=np.int8)
    block = 512
    blocks = (rows + block - 1) // block
    parts = max(1, min(threads, blocks))
    for part in prange(parts):
        _prices_part(
            part * blocks // parts * block,
            min(rows, (part + 1) * blocks // parts * block),
            block,
            index,
            own_c,
            own_d,
            c,
            d,
            weighted,
            collateral_amount,
            debt_amount,
            threshold,
            unit,
            unfloored,
            iterations,
            price,
            way,
        )
    return price, way


@njit(cache=True, nogil=True, error_model="numpy")
def _prices_part(
    first: int,
    last: int,
    block: int,
    index: Any,
    own_c: Any,
    own_d: Any,
    c: Any,
    d: Any,
    weighted: Any,
    collateral_amount: Any,
    debt_amount: Any,
    threshold: Any,
    unit: Any,
    unfloored: Any,
    iterations: int,
    price: Any,
    way: Any,
) -> None:
    """position_prices' rows first..last-1, in blocks of `block` rows."""
    bps = 10_000.0
    # A block of rows at a time, each step over the whole block: the rows' chains of divisions are independent, so
    # the processor overlaps them (one row's rounds, one after another, would wait on each division in turn).
    c_other = np.empty(block, dtype=np.float64)
    d_other = np.empty(block, dtype=np.float64)
    w_other = np.empty(block, dtype=np.float64)
    alpha = np.empty(block, dtype=np.float64)
    beta = np.empty(block, dtype=np.float64)
    average = np.empty(block, dtype=np.float64)
    p = np.empty(block, dtype=np.float64)
    for start in range(first, last, block):
        size = min(block, last - start)
        for k in range(size):
            row = start + k
            w = index[row]
            lt = threshold[row]
            c_other[k] = c[w] - own_c[row]
            d_other[k] = d[w] - own_d[row]
            w_other[k] = weighted[w] - own_c[row] * lt
            alpha[k] = _signed_float(collateral_amount[row, 1], collateral_amount[row, 0]) / unit[row]
            beta[k] = _signed_float(debt_amount[row, 1], debt_amount[row, 0]) / unit[row]
            average[k] = _average(weighted[w] / c[w], unfloored[row]) if _greater(c[w], 0.0) else 0.0
            p[k] = (bps * d_other[k] - w_other[k]) / (alpha[k] * lt - bps * beta[k])
        for _ in range(iterations):
            for k in range(size):
                row = start + k
                at_price = alpha[k] * p[k]
                if _greater(c_other[k] + at_price, 0.0) and np.isfinite(p[k]):
                    average[k] = _average(
                        (w_other[k] + at_price * threshold[row]) / (c_other[k] + at_price), unfloored[row]
                    )
                p[k] = (bps * d_other[k] - average[k] * c_other[k]) / (average[k] * alpha[k] - bps * beta[k])
        for k in range(size):
            row = start + k
            lt = threshold[row]
            a = alpha[k]
            q = p[k]
            average_at_p = _average((w_other[k] + a * q * lt) / (c_other[k] + a * q), unfloored[row])
            higher = _max_ignoring_nan(average_at_p, average[k])
            step = (higher * c_other[k] - w_other[k]) / (a * (lt - higher))
            if _differ(average_at_p, average[k]) and _greater(a, 0.0) and np.isfinite(step) and _greater(step, 0.0):
                q = step
            price[row] = q
            if _greater(d[index[row]], 0.0) and _greater(q, 0.0) and np.isfinite(q):
                slope = average[k] * a - bps * beta[k]
                if _greater(slope, 0.0):
                    way[row] = 1
                elif _greater(0.0, slope):
                    way[row] = 2
                else:
                    way[row] = 3


@njit(cache=True, nogil=True, error_model="numpy")
def price_views(
    price: Any, way: Any, snapshot: Any, scaled: bool, decimals: Any, unit: Any, base_unit: Any, powers_float: Any
) -> Any:
    """position_prices' price where it has one (else NaN), in USD per whole token, and as a change from the oracle
    price (`snapshot`, limbs), as liquidation_prices' polars path computes them; with whether every view of a priced
    row is a number (else NaN could not stand for a missing view, and the caller runs the polars path)."""
    rows = price.shape[0]
    found = np.full(rows, np.nan)
    usd = np.full(rows, np.nan)
    change = np.full(rows, np.nan)
    for row in range(rows):
        if way[row] == 0:
            continue
        p = price[row]
        found[row] = p
        if scaled:
            usd[row] = p * (powers_float[decimals[row]] / unit[row]) / base_unit[row]
        else:
            usd[row] = p / base_unit[row]
        change[row] = p / _signed_float(snapshot[row, 1], snapshot[row, 0]) - 1.0
        if np.isnan(usd[row]) or np.isnan(change[row]):
            return found, usd, change, False
    return found, usd, change, True


#: 10^d for d in 0..36 as (low, high) limbs, and as the nearest doubles: the units of `decimals`.
POWERS_OF_TEN = np.array([[(10**d) % 2**64, (10**d) >> 64] for d in range(37)], dtype=np.uint64)
POWERS_OF_TEN_FLOAT = np.array([float(10**d) for d in range(37)], dtype=np.float64)
#: Products of amount and price below 2^122 (5.3e36) are taken exactly by the polars path too (it takes the float
#: branch only from an estimate of 1e37 up).
_PRODUCT_TOP = np.uint64(58)


@njit(inline="always")
def _divide_by_power_of_ten(h: Any, lo: Any, d: Any) -> Any:
    """floor((h, lo) / 10^d), 0 <= d <= 36: by 1e9 while d >= 9 (floor(floor(x / a) / b) = floor(x / ab)), then by
    the rest, each divisor a constant the compiler turns into a multiplication."""
    while d >= 9:
        h, lo, _ = _divmod_small(h, lo, _E9)
        d -= 9
    if d == 1:
        h, lo, _ = _divmod_small(h, lo, np.uint64(10))
    elif d == 2:
        h, lo, _ = _divmod_small(h, lo, np.uint64(100))
    elif d == 3:
        h, lo, _ = _divmod_small(h, lo, np.uint64(1_000))
    elif d == 4:
        h, lo, _ = _divmod_small(h, lo, np.uint64(10_000))
    elif d == 5:
        h, lo, _ = _divmod_small(h, lo, np.uint64(100_000))
    elif d == 6:
        h, lo, _ = _divmod_small(h, lo, np.uint64(1_000_000))
    elif d == 7:
        h, lo, _ = _divmod_small(h, lo, np.uint64(10_000_000))
    elif d == 8:
        h, lo, _ = _divmod_small(h, lo, np.uint64(100_000_000))
    return h, lo


@njit(inline="always")
def _power_of_ten(uh: Any, ul: Any, powers: Any) -> int:
    """d where (uh, ul) = 10^d (d <= 36), else -1."""
    for d in range(powers.shape[0]):
        if powers[d, 0] == ul and powers[d, 1] == uh:
            return d
    return -1


@njit(inline="always")
def _divide_by_unit(h: Any, lo: Any, uh: Any, ul: Any, d: int) -> Any:
    """floor((h, lo) / unit) for a unit > 0 that is 10^d (d >= 0) or any other (d = -1)."""
    if d >= 0:
        return _divide_by_power_of_ten(h, lo, d)
    qh, ql, _, _ = _divmod128(h, lo, uh, ul)
    return qh, ql


@njit(inline="always")
def _value(ah: Any, al: Any, p: Any, uh: Any, ul: Any, d: int) -> Any:
    """floor(amount * price / unit) as (high, low, taken): not taken for a negative amount or a product of 2^122 or
    more."""
    if (ah >> _S63) != _U0:
        return _U0, _U0, False
    mh, ml, fits = _mul128_64(ah, al, p)
    if not fits or (mh >> _PRODUCT_TOP) != _U0:
        return _U0, _U0, False
    vh, vl = _divide_by_unit(mh, ml, uh, ul, d)
    return vh, vl, True


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def base_values(
    collateral_amount: Any,
    debt_amount: Any,
    price: Any,
    snapshot_price: Any,
    collateral_given: Any,
    debt_given: Any,
    unit: Any,
    decimals: Any,
    powers: Any,
    powers_float: Any,
    base_unit: Any,
    collateral: Any,
    debt: Any,
    floats: Any,
    threads: int,
) -> bool:
    """Per position: collateral and debt in base units, floor(amount * price / unit) (or the adapter's exact value,
    `*_given` when they have rows, where the price is the snapshot's own), written as limbs into `collateral` and
    `debt`; and into `floats` (3, rows) their doubles over the base unit and the price per whole token in USD.
    `unit` is price_scale as limbs when it has rows, else 10^decimals. Whether every row was taken exactly: a negative
    amount or price, a product of 2^122 or more, a unit of 0 or decimals beyond 36 leave the book to the polars
    path."""
    rows = price.shape[0]
    parts = max(1, min(threads, rows))
    taken = np.zeros(parts, dtype=np.bool_)
    for part in prange(parts):
        taken[part] = _base_values_part(
            part * rows // parts,
            (part + 1) * rows // parts,
            collateral_amount,
            debt_amount,
            price,
            snapshot_price,
            collateral_given,
            debt_given,
            unit,
            decimals,
            powers,
            powers_float,
            base_unit,
            collateral,
            debt,
            floats,
        )
    return bool(taken.all())


@njit(cache=True, nogil=True, error_model="numpy")
def _base_values_part(
    first: int,
    last: int,
    collateral_amount: Any,
    debt_amount: Any,
    price: Any,
    snapshot_price: Any,
    collateral_given: Any,
    debt_given: Any,
    unit: Any,
    decimals: Any,
    powers: Any,
    powers_float: Any,
    base_unit: Any,
    collateral: Any,
    debt: Any,
    floats: Any,
) -> bool:
    """base_values of rows first..last-1."""
    scaled = unit.shape[0] > 0
    given = collateral_given.shape[0] > 0
    for row in range(first, last):
        ph = price[row, 1]
        p = price[row, 0]
        if ph != _U0:
            return False
        if scaled:
            uh = unit[row, 1]
            ul = unit[row, 0]
            if (uh >> _S63) != _U0 or (uh == _U0 and ul == _U0):
                return False
            d = decimals[row]
            if d < 0 or d > 36:
                return False
            floats[2, row] = float(p) * (powers_float[d] / _to_float(uh, ul)) / base_unit[row]
            d = _power_of_ten(uh, ul, powers)
        else:
            d = decimals[row]
            if d < 0 or d > 36:
                return False
            uh = powers[d, 1]
            ul = powers[d, 0]
            floats[2, row] = float(p) / base_unit[row]
        if given and snapshot_price[row, 0] == p and snapshot_price[row, 1] == ph:
            ch, cl = collateral_given[row, 1], collateral_given[row, 0]
            dh, dl = debt_given[row, 1], debt_given[row, 0]
        else:
            ch, cl, taken_c = _value(collateral_amount[row, 1], collateral_amount[row, 0], p, uh, ul, d)
            dh, dl, taken_d = _value(debt_amount[row, 1], debt_amount[row, 0], p, uh, ul, d)
            if not (taken_c and taken_d):
                return False
        collateral[row, 1] = ch
        collateral[row, 0] = cl
        debt[row, 1] = dh
        debt[row, 0] = dl
        floats[0, row] = _signed_float(ch, cl) / base_unit[row]
        floats[1, row] = _signed_float(dh, dl) / base_unit[row]
    return True
