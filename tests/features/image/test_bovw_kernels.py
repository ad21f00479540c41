"""The bag-of-words kernels against naive NumPy references."""

import numpy as np
import pytest

from mmfeat.features.image._bovw_kernels import (
    HARD,
    SOFT,
    VLAD,
    _argmin_diff,
    _argmin_diff_keys,
    _bow_encode,
    pyramid_cells,
)


@pytest.fixture
def batch(rng):
    desc = rng.random((700, 16), dtype=np.float32)
    codebook = rng.random((12, 16), dtype=np.float32)
    offsets = np.array([0, 100, 100, 350, 700])  # item 1 has no descriptors
    pos = rng.random((700, 2))
    pos[:5] = [[0.0, 0.0], [0.999999, 0.999999], [0.5, 0.5], [0.25, 0.75], [0.0, 0.5]]
    return desc, codebook, offsets, pos


def _sq_dist(desc, codebook):
    d = desc.astype(np.float64)[:, None, :] - codebook.astype(np.float64)[None]
    return (d**2).sum(-1)


def _cell_index(pos, rows, cols):
    cy = np.minimum((pos[:, 0] * rows).astype(int), rows - 1)
    cx = np.minimum((pos[:, 1] * cols).astype(int), cols - 1)
    return cy * cols + cx


def _naive(desc, codebook, offsets, pos, cells, method, nn=1, sigma=1.0):
    d2 = _sq_dist(desc, codebook)
    k, dim = codebook.shape
    n_cells = int((cells[:, 0] * cells[:, 1]).sum())
    width = n_cells * k * (dim if method == VLAD else 1)
    out = np.zeros((len(offsets) - 1, width))
    for i in range(len(offsets) - 1):
        sl = slice(offsets[i], offsets[i + 1])
        if offsets[i + 1] == offsets[i]:
            continue
        base = 0
        for rows, cols in cells:
            cell = base + _cell_index(pos[sl], rows, cols)
            for j, c in zip(range(offsets[i], offsets[i + 1]), cell):
                order = np.argsort(d2[j], kind="stable")[:nn]
                w = np.exp(-(d2[j, order] - d2[j, order[0]]) / (2 * sigma**2))
                w /= w.sum()
                for word, wt in zip(order, w):
                    if method == VLAD:
                        o = (c * k + word) * dim
                        out[i, o : o + dim] += desc[j] - codebook[word]
                    else:
                        out[i, c * k + word] += wt
            if method != VLAD:
                lo, hi = base * k, (base + rows * cols) * k
                out[i, lo:hi] /= offsets[i + 1] - offsets[i]
            base += rows * cols
    return out


@pytest.mark.parametrize("levels", [(1,), (1, 2, 4), (1, 3)])
def test_hard_histograms_match_naive(batch, levels):
    desc, codebook, offsets, pos = batch
    cells = pyramid_cells(levels)
    got = _bow_encode(desc, offsets, pos, codebook, cells=cells, power=False, l2=False)
    ref = _naive(desc, codebook, offsets, pos, cells, HARD)
    np.testing.assert_allclose(got, ref, atol=1e-12)
    # each level of each non-empty image sums to one
    n_words = len(codebook)
    base = 0
    for n in levels:
        level = got[[0, 2, 3], base * n_words : (base + n * n) * n_words]
        np.testing.assert_allclose(level.sum(axis=1), 1.0)
        base += n * n


def test_soft_weights_match_naive(batch):
    desc, codebook, offsets, pos = batch
    cells = pyramid_cells((1, 2))
    got = _bow_encode(
        desc,
        offsets,
        pos,
        codebook,
        cells=cells,
        method=SOFT,
        n_neighbors=3,
        bandwidth=0.4,
        power=False,
        l2=False,
    )
    ref = _naive(desc, codebook, offsets, pos, cells, SOFT, nn=3, sigma=0.4)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-7)


def test_vlad_matches_naive_with_intra_power_and_l2(batch):
    desc, codebook, offsets, pos = batch
    cells = pyramid_cells((1, 2))
    got = _bow_encode(desc, offsets, pos, codebook, cells=cells, method=VLAD)
    ref = _naive(desc, codebook, offsets, pos, cells, VLAD)
    dim = desc.shape[1]
    blocks = ref.reshape(len(ref), -1, dim)
    norms = np.linalg.norm(blocks, axis=2, keepdims=True)
    ref = np.where(norms > 0, blocks / np.where(norms > 0, norms, 1), 0).reshape(
        len(ref), -1
    )
    ref = np.sign(ref) * np.sqrt(np.abs(ref))
    row_norms = np.linalg.norm(ref, axis=1, keepdims=True)
    ref = np.where(row_norms > 0, ref / np.where(row_norms > 0, row_norms, 1), 0)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", [HARD, SOFT, VLAD])
@pytest.mark.parametrize("blank", ["scattered", "whole chunk", "all"])
def test_blank_descriptors_match_naive(batch, method, blank):
    # all-zero rows skip the BLAS product (their dots are zero): the words
    # and weights must be those of the full computation, in every layout
    desc, codebook, offsets, pos = batch
    desc = desc.copy()
    if blank == "scattered":
        desc[::3] = 0.0
        desc[1::7] = -0.0
    elif blank == "whole chunk":
        desc[256:512] = 0.0  # the kernel's second chunk of 256
        desc[600:] = 0.0
    else:
        desc[:] = 0.0
    cells = pyramid_cells((1, 2))
    kw = dict(n_neighbors=3, bandwidth=0.4) if method == SOFT else {}
    got = _bow_encode(
        desc,
        offsets,
        pos,
        codebook,
        cells=cells,
        method=method,
        power=False,
        l2=False,
        intra=False,
        **kw,
    )
    ref = _naive(
        desc,
        codebook,
        offsets,
        pos,
        cells,
        method,
        nn=3 if method == SOFT else 1,
        sigma=0.4,
    )
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_item_without_descriptors_gives_zero_row(batch):
    desc, codebook, offsets, pos = batch
    got = _bow_encode(desc, offsets, pos, codebook, cells=pyramid_cells((1, 2)))
    assert np.all(got[1] == 0)
    np.testing.assert_allclose(np.linalg.norm(got[[0, 2, 3]], axis=1), 1.0)


@pytest.mark.parametrize("n_words", [50, 200])
def test_hard_assignment_agrees_with_kmeans_predict(rng, n_words):
    from sklearn.cluster import MiniBatchKMeans

    desc = rng.random((3000, 32), dtype=np.float32)
    km = MiniBatchKMeans(n_words, random_state=0, n_init=1).fit(desc)
    codebook = km.cluster_centers_.astype(np.float32)
    offsets = np.array([0, 3000])
    got = _bow_encode(
        desc,
        offsets,
        np.zeros((3000, 2)),
        codebook,
        cells=pyramid_cells((1,)),
        power=False,
        l2=False,
    )
    ref = np.bincount(km.predict(desc), minlength=n_words) / 3000
    np.testing.assert_allclose(got[0], ref, atol=1e-12)


@pytest.mark.parametrize("dim", [13, 128])
@pytest.mark.parametrize("k", [37, 300])
def test_hard_words_equal_float64_argmin_except_near_ties(rng, dim, k):
    # one descriptor per item, so each row's one nonzero is its word; 601
    # descriptors span several assignment chunks; 37 words take the running
    # minima, 300 the integer keys with a ragged tail
    n = 601
    desc = rng.random((n, dim), dtype=np.float32)
    codebook = rng.random((k, dim), dtype=np.float32)
    got = _bow_encode(
        desc,
        np.arange(n + 1),
        rng.random((n, 2)),
        codebook,
        cells=pyramid_cells((1,)),
        power=False,
        l2=False,
    )
    assert np.all((got == 0) | (got == 1)) and np.all(got.sum(1) == 1)
    words = got.argmax(1)
    d2 = _sq_dist(desc, codebook)
    top2 = np.sort(d2, axis=1)[:, :2]
    # float32 GEMM distances err relative to |x|^2 + |c|^2, not to d^2
    scale = (desc.astype(np.float64) ** 2).sum(1) + (codebook**2).sum(1).max()
    clear = top2[:, 1] - top2[:, 0] > 1e-5 * scale
    assert clear.mean() > 0.95
    np.testing.assert_array_equal(words[clear], d2.argmin(1)[clear])
    # elsewhere the chosen word is one of the near-tied nearest
    chosen = d2[np.arange(n), words]
    assert np.all(chosen - top2[:, 0] <= 1e-5 * scale)


def test_temporal_pyramid_cells_for_audio():
    cells = pyramid_cells((1, 2, 4), two_d=False)
    assert cells.tolist() == [[1, 1], [1, 2], [1, 4]]
    desc = np.eye(2, dtype=np.float32)[[0, 0, 1, 1]]
    pos = np.array([[0, 0.1], [0, 0.3], [0, 0.6], [0, 0.9]])
    out = _bow_encode(
        desc,
        np.array([0, 4]),
        pos,
        np.eye(2, dtype=np.float32),
        cells=cells,
        power=False,
        l2=False,
    )
    # level 1 (halves): word 0 only in the first half, word 1 only in the second
    np.testing.assert_allclose(out[0, 2:6], [0.5, 0, 0, 0.5])


@pytest.mark.parametrize("n", [1, 5, 64, 127, 128, 200, 256, 1000, 1024])
def test_argmin_of_a_difference_matches_numpy_with_ties_and_signed_zeros(rng, n):
    # both kernels give np.argmin's first index of the minimum: negative
    # differences, ties (within a block of 64, across blocks, in the ragged
    # tail), the minimum at either end, and -0.0 after a +0.0 it ties with
    a = rng.random(n, dtype=np.float32)
    pairs = [(a, rng.random(n, dtype=np.float32) * 2) for _ in range(20)]
    pairs.append((a, a.copy()))  # all differences zero: index 0
    tied = rng.random(n, dtype=np.float32) * 2
    tied[n // 7 :: max(1, n // 5)] = 5.0
    pairs.append((a, tied))
    for where in (0, n - 1):
        end = np.zeros(n, np.float32)
        end[where] = 3.0
        pairs.append((a, end))
    signed = np.ones(n, np.float32)
    signed[n // 2] = 0.0
    signed[-1] = -0.0  # -0.0 - 0.0 is -0.0, equal to the +0.0 before it
    pairs.append((signed, np.zeros(n, np.float32)))
    work = np.empty(n, np.float32)
    for x, b in pairs:
        expected = np.argmin(x - b)
        assert _argmin_diff(x, b) == expected
        assert _argmin_diff_keys(x, b, work) == expected


@pytest.mark.parametrize("n", [1, 300, 5000, 20_000, 100_000])
@pytest.mark.parametrize("n_words", [8, 256, 1024, 4096, 65536])
def test_assignment_chunks_stay_small_and_spread_over_threads(n, n_words):
    from mmfeat.features.image._bovw_kernels import _chunk_rows

    rows = _chunk_rows(n, n_words)
    assert 256 <= rows <= 1024
    if rows > 256:  # larger than the floor only within 2 MB of distances
        assert rows * n_words * 4 <= 1 << 21  # and in 16 chunks or more
        assert n >= 16 * rows
    assert (n, n_words) != (100_000, 1024) or rows == 512


def test_hard_words_of_a_large_batch_equal_float64_argmin_except_near_ties(rng):
    # 20,000 descriptors take 1,024-row products (20 of them, the last
    # ragged): the words are still the float64 nearest outside near-ties
    from mmfeat.features.image._bovw_kernels import _assign, _chunk_rows

    n, dim, k = 20_000, 32, 300
    assert _chunk_rows(n, k) == 1024
    desc = rng.random((n, dim), dtype=np.float32)
    codebook = rng.random((k, dim), dtype=np.float32)
    half_sq = (0.5 * (codebook.astype(np.float64) ** 2).sum(1)).astype(np.float32)
    words = np.empty((n, 1), np.int64)
    _assign(
        desc, np.ascontiguousarray(codebook.T), half_sq, 1, 1.0, words, np.empty((n, 1))
    )
    x, c = desc.astype(np.float64), codebook.astype(np.float64)
    d2 = (x**2).sum(1)[:, None] - 2 * x @ c.T + (c**2).sum(1)[None]
    top2 = np.sort(d2, axis=1)[:, :2]
    scale = (x**2).sum(1) + (c**2).sum(1).max()
    clear = top2[:, 1] - top2[:, 0] > 1e-5 * scale
    assert clear.mean() > 0.95
    np.testing.assert_array_equal(words[clear, 0], d2.argmin(1)[clear])
    chosen = d2[np.arange(n), words[:, 0]]
    assert np.all(chosen - top2[:, 0] <= 1e-5 * scale)
