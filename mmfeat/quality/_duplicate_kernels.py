"""Numba kernels of duplicate detection: bucket scans, Hamming and Jaccard checks.

Arrays in, arrays out, no validation (see :mod:`mmfeat.quality._duplicates`).

A *band key* table ``keys`` of shape (n_bands, n) holds, per band, one 64-bit
key per row; rows whose keys are equal in some band are candidates. Each band
is scanned in key order (``order[b]`` sorts ``keys[b]``); inside a run of equal
keys every pair is a candidate, and it is verified at once, so no candidate
list is ever stored. A pair that agrees in several bands is checked only in
the first of them (it is skipped in band ``b`` when its keys agree in an
earlier band), so each pair is emitted once without a set of seen pairs.
Runs longer than ``max_bucket`` are skipped and reported.
"""

import numba
import numpy as np

from mmfeat.utils._numba import JIT_SERIAL

__all__ = [
    "_band_keys_bits",
    "_band_keys_minhash",
    "_big_buckets",
    "_jaccard_pairs",
    "_minhash_signatures",
    "_popcount64",
    "_scan_hamming",
    "_scan_jaccard",
]

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(**JIT_SERIAL)
def _popcount64(x):
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return (x * _H01) >> np.uint64(56)


@numba.njit(**JIT_SERIAL)
def _mix64(x):
    # splitmix64's finaliser: a bijection of uint64 that scatters every bit
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


@numba.njit(**JIT_SERIAL)
def _band_keys_bits(hashes, starts, widths):
    """Keys of bit bands of 64-bit hashes: band ``b`` is ``widths[b]`` bits."""
    n_bands = starts.shape[0]
    n = hashes.shape[0]
    keys = np.empty((n_bands, n), dtype=np.uint64)
    for b in range(n_bands):
        # a shift by 64 is undefined (x86 masks it to 0): a whole-hash band
        # needs the all-ones mask spelt out
        if widths[b] >= 64:
            mask = np.uint64(0xFFFFFFFFFFFFFFFF)
        else:
            mask = (np.uint64(1) << np.uint64(widths[b])) - np.uint64(1)
        shift = np.uint64(starts[b])
        for i in range(n):
            keys[b, i] = (hashes[i] >> shift) & mask
    return keys


@numba.njit(**JIT_SERIAL)
def _minhash_signatures(indptr, indices, a, c):
    """MinHash signatures of CSR sets: ``min_x mix64(a_k * x + c_k)``.

    ``indices`` are 64-bit shingle hashes; ``a`` (odd) and ``c`` are the
    seeds of the ``k`` hash functions (a multiply-add modulo 2^64 followed
    by splitmix64's finaliser). A row with no shingle gets the all-ones
    signature (it is never compared).
    """
    n = indptr.shape[0] - 1
    k = a.shape[0]
    sig = np.full((n, k), np.uint64(0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            x = indices[p]
            for j in range(k):
                h = _mix64(a[j] * x + c[j])
                if h < sig[i, j]:
                    sig[i, j] = h
    return sig


@numba.njit(**JIT_SERIAL)
def _band_keys_minhash(sig, n_bands, rows):
    """One key per band of ``rows`` MinHash values (a hash of the band)."""
    n = sig.shape[0]
    keys = np.empty((n_bands, n), dtype=np.uint64)
    for b in range(n_bands):
        for i in range(n):
            h = np.uint64(b) * _GOLD
            for r in range(rows):
                h = _mix64(h ^ sig[i, b * rows + r])
            keys[b, i] = h
    return keys


@numba.njit(**JIT_SERIAL)
def _grow(buf, n):
    if n < buf.shape[0]:
        return buf
    out = np.empty(max(2 * buf.shape[0], 16), dtype=buf.dtype)
    out[: buf.shape[0]] = buf
    return out


@numba.njit(**JIT_SERIAL)
def _agree_before(keys, big, b, i, j):
    # checked in an earlier band: equal keys in a bucket that was not skipped
    for e in range(b):
        if keys[e, i] == keys[e, j] and not big[e, i]:
            return True
    return False


@numba.njit(**JIT_SERIAL)
def _big_buckets(keys, order, valid, max_bucket):
    """Which rows sit in a run of more than ``max_bucket`` valid rows, per band.

    Returns the (n_bands, n) mask and the (band, size) of each such run.
    """
    n_bands, n = keys.shape
    big = np.zeros((n_bands, n), dtype=np.bool_)
    skip_b = []
    skip_n = []
    for b in range(n_bands):
        ob = order[b]
        s = 0
        while s < n:
            e = s + 1
            while e < n and keys[b, ob[e]] == keys[b, ob[s]]:
                e += 1
            size = 0
            for t in range(s, e):
                if valid[ob[t]]:
                    size += 1
            if size > max_bucket:
                skip_b.append(b)
                skip_n.append(size)
                for t in range(s, e):
                    big[b, ob[t]] = True
            s = e
    skipped = np.empty((len(skip_b), 2), dtype=np.int64)
    for k in range(len(skip_b)):
        skipped[k, 0] = skip_b[k]
        skipped[k, 1] = skip_n[k]
    return big, skipped


@numba.njit(**JIT_SERIAL)
def _jaccard(indptr, indices, i, j):
    # sorted, unique shingle hashes per row
    p, pe = indptr[i], indptr[i + 1]
    q, qe = indptr[j], indptr[j + 1]
    na, nb = pe - p, qe - q
    inter = 0
    while p < pe and q < qe:
        if indices[p] == indices[q]:
            inter += 1
            p += 1
            q += 1
        elif indices[p] < indices[q]:
            p += 1
        else:
            q += 1
    union = na + nb - inter
    return inter / union if union > 0 else 0.0


@numba.njit(**JIT_SERIAL)
def _scan_hamming(keys, order, valid, side, big, hashes, max_dist):
    """Pairs within Hamming ``max_dist``, found through equal band keys.

    ``valid`` masks rows that take part; ``side`` is all -1 to pair any two
    rows, or per row 0/1 to pair only rows of different sides (two tables);
    ``big`` (from :func:`_big_buckets`) marks the skipped buckets. Returns
    (first, second, distance) with first < second.
    """
    n_bands, n = keys.shape
    a = np.empty(1024, dtype=np.int64)
    c = np.empty(1024, dtype=np.int64)
    d = np.empty(1024, dtype=np.int64)
    two_sides = side.shape[0] > 0 and side[0] >= 0
    m = 0
    for b in range(n_bands):
        ob = order[b]
        s = 0
        while s < n:
            e = s + 1
            while e < n and keys[b, ob[e]] == keys[b, ob[s]]:
                e += 1
            if e - s > 1 and not big[b, ob[s]]:
                for t in range(s, e):
                    i = ob[t]
                    if not valid[i]:
                        continue
                    for u in range(t + 1, e):
                        j = ob[u]
                        if not valid[j]:
                            continue
                        if two_sides and side[i] == side[j]:
                            continue
                        if _agree_before(keys, big, b, i, j):
                            continue
                        val = _popcount64(hashes[i] ^ hashes[j])
                        if val <= max_dist:
                            a = _grow(a, m)
                            c = _grow(c, m)
                            d = _grow(d, m)
                            a[m] = min(i, j)
                            c[m] = max(i, j)
                            d[m] = val
                            m += 1
            s = e
    return a[:m].copy(), c[:m].copy(), d[:m].copy()


@numba.njit(**JIT_SERIAL)
def _scan_jaccard(keys, order, valid, side, big, indptr, indices, min_sim):
    """Pairs with Jaccard >= ``min_sim``, found through equal MinHash band keys.

    As :func:`_scan_hamming`, the check being the exact Jaccard similarity of
    the CSR shingle sets; returns (first, second, similarity).
    """
    n_bands, n = keys.shape
    a = np.empty(1024, dtype=np.int64)
    c = np.empty(1024, dtype=np.int64)
    d = np.empty(1024, dtype=np.float64)
    two_sides = side.shape[0] > 0 and side[0] >= 0
    m = 0
    for b in range(n_bands):
        ob = order[b]
        s = 0
        while s < n:
            e = s + 1
            while e < n and keys[b, ob[e]] == keys[b, ob[s]]:
                e += 1
            if e - s > 1 and not big[b, ob[s]]:
                for t in range(s, e):
                    i = ob[t]
                    if not valid[i]:
                        continue
                    for u in range(t + 1, e):
                        j = ob[u]
                        if not valid[j]:
                            continue
                        if two_sides and side[i] == side[j]:
                            continue
                        if _agree_before(keys, big, b, i, j):
                            continue
                        val = _jaccard(indptr, indices, i, j)
                        if val >= min_sim:
                            a = _grow(a, m)
                            c = _grow(c, m)
                            d = _grow(d, m)
                            a[m] = min(i, j)
                            c[m] = max(i, j)
                            d[m] = val
                            m += 1
            s = e
    return a[:m].copy(), c[:m].copy(), d[:m].copy()


@numba.njit(**JIT_SERIAL)
def _jaccard_pairs(indptr, indices, first, second):
    """Exact Jaccard similarity of the given pairs of CSR rows."""
    out = np.empty(first.shape[0], dtype=np.float64)
    for k in range(first.shape[0]):
        out[k] = _jaccard(indptr, indices, first[k], second[k])
    return out
