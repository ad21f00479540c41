"""Exact and near-duplicate records, in one table or across two (leakage).

Every compared column gives each row a compact signature; candidate pairs
come from hash buckets (never from all pairs) and each candidate is verified
at once, so time and memory grow with the number of rows and of true
matches, not with its square:

- **images**: a 64-bit perceptual hash (pHash: the signs of the 8x8
  lowest-frequency DCT coefficients of a 32x32 grey thumbnail against their
  mean, as ``cv2.img_hash.PHash``) and a content hash of the decoded pixels.
  Candidates come from multi-index hashing: the 64 bits are cut into
  ``r + 1`` bands for a radius of ``r`` bits, and by the pigeonhole principle
  two hashes within Hamming distance ``r`` agree exactly on at least one
  band, so every pair within the radius is found (Norouzi et al. 2012).
- **texts**: a normalised form (Unicode NFKC, lower case, punctuation and
  runs of white space dropped, words as :func:`~mmfeat.utils._ngrams.tokenize`
  cuts them) for exact matches, and MinHash signatures of word (or
  character) shingles cut into LSH bands for near ones (Broder 1997); every
  candidate is verified by the exact Jaccard similarity of its shingle sets.
"""

import hashlib
import math
import os
import unicodedata

import cv2
import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.io import read_image
from mmfeat.quality._duplicate_kernels import (
    _band_keys_bits,
    _band_keys_minhash,
    _big_buckets,
    _jaccard_pairs,
    _minhash_signatures,
    _popcount64,
    _scan_hamming,
    _scan_jaccard,
)
from mmfeat.utils._item_errors import (
    ItemError,
    capture_item_errors,
    report_item_errors,
)
from mmfeat.utils._items import as_item_list, is_missing
from mmfeat.utils._ngrams import tokenize
from mmfeat.utils._parallel import map_items
from mmfeat.utils._sklearn_compat import (
    Integral,
    Interval,
    Real,
    StrOptions,
    validate_params,
)

__all__ = ["find_duplicates"]

_KINDS = ("image", "text")
_IMAGE_SUFFIXES = {
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff",
    ".pgm", ".ppm", ".pbm", ".pnm", ".jp2", ".avif", ".hdr", ".ras", ".sr",
}  # fmt: skip
#: LSH bands are chosen so a pair at the text threshold is a candidate with
#: at least this probability.
_LSH_TARGET = 0.99
_ROWS_PER_CHUNK = 8192
#: The hashes are uint64 arithmetic modulo 2**64 on purpose: compiled, numba
#: wraps silently; run as plain Python (NUMBA_DISABLE_JIT=1), NumPy warns.
_WRAPPING = np.errstate(over="ignore")


# ---------------------------------------------------------------- images


def _phash_thumbnail(small):
    """The pHash of a 32x32 uint8 grey image, bit ``8 * r + c`` = coefficient (r, c)."""
    dct = cv2.dct(small.astype(np.float32))
    top = dct[:8, :8].copy()
    top[0, 0] = 0.0
    bits = top.ravel() > np.float32(top.mean(dtype=np.float64))
    return int(np.packbits(bits, bitorder="little").view("<u8")[0])


def _image_signature(item):
    img = read_image(item, mode="rgb", dtype="uint8")
    h = hashlib.blake2b(digest_size=8)
    h.update(np.asarray(img.shape, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(img).tobytes())
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    big = gray.shape[0] >= 32 and gray.shape[1] >= 32
    interp = cv2.INTER_AREA if big else cv2.INTER_LINEAR
    small = cv2.resize(gray, (32, 32), interpolation=interp)
    return _phash_thumbnail(small), int.from_bytes(h.digest(), "little")


def _image_hashes(items, *, n_jobs, on_error, row_offset=0):
    """The pHash and pixel digest of each image, a validity mask and the errors."""
    values, errors = map_items(
        _image_signature,
        items,
        n_jobs=n_jobs,
        on_error=on_error,
        row_offset=row_offset,
        desc="pHash",
    )
    n = len(items)
    phash = np.zeros(n, dtype=np.uint64)
    digest = np.zeros(n, dtype=np.uint64)
    valid = np.zeros(n, dtype=bool)
    for i, v in enumerate(values):
        if v is not None:
            phash[i], digest[i] = v
            valid[i] = True
    return phash, digest, valid, errors


def _bit_bands(n_bands):
    widths = np.full(n_bands, 64 // n_bands, dtype=np.int64)
    widths[: 64 % n_bands] += 1
    starts = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64)
    return starts, widths


def _image_radius(threshold):
    """Largest Hamming distance whose similarity 1 - d/64 is >= ``threshold``."""
    return int(math.floor(64 * (1.0 - threshold) + 1e-9))


# ----------------------------------------------------------------- texts


def _normalise(text):
    return " ".join(tokenize(unicodedata.normalize("NFKC", text)))


def _shingles(norm, analyzer, n):
    if analyzer == "word":
        words = norm.split(" ") if norm else []
        if len(words) <= n:
            return [norm] if words else []
        return [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    if len(norm) <= n:
        return [norm] if norm else []
    return [norm[i : i + n] for i in range(len(norm) - n + 1)]


def _text_sets(items, *, analyzer, n):
    """Normalised texts, CSR shingle-id sets and a validity mask.

    ``items`` are strings or missing values. A text with no word (empty,
    only punctuation) has no shingle and is not compared, as a missing one.
    """
    vocab = {}
    norms = np.empty(len(items), dtype=object)
    indptr = np.zeros(len(items) + 1, dtype=np.int64)
    indices = []
    for i, item in enumerate(items):
        if not is_missing(item):
            norm = _normalise(item)
            norms[i] = norm
            shingles = _shingles(norm, analyzer, n)
            indices.extend(sorted({vocab.setdefault(s, len(vocab)) for s in shingles}))
        indptr[i + 1] = len(indices)
    indices = np.asarray(indices, dtype=np.uint64)
    valid = np.diff(indptr) > 0
    return norms, indptr, indices, valid


def _raise(err):
    raise err


def _lsh_shape(threshold, num_perm, target=_LSH_TARGET):
    """(bands, rows): the most rows per band whose recall at ``threshold`` >= target.

    A pair of Jaccard similarity ``s`` shares at least one band with
    probability ``1 - (1 - s**rows)**bands``.
    """
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if 1.0 - (1.0 - threshold**rows) ** bands >= target:
            best = (bands, rows)
        else:
            break
    return best


def _candidate_probability(similarity, bands, rows):
    """Probability that a pair of Jaccard ``similarity`` shares an LSH band."""
    return 1.0 - (1.0 - np.asarray(similarity, dtype=float) ** rows) ** bands


@_WRAPPING
def _minhash_keys(indptr, indices, *, bands, rows, seed):
    rng = np.random.default_rng(seed)
    k = bands * rows
    a = rng.integers(0, 2**63, size=k, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    c = rng.integers(0, 2**63, size=k, dtype=np.uint64)
    # hash the shingle ids once, so ids 0, 1, 2, ... are not neighbours
    n = indptr.shape[0] - 1
    keys = np.empty((bands, n), dtype=np.uint64)
    for start in range(0, n, _ROWS_PER_CHUNK):  # signatures chunk by chunk
        stop = min(n, start + _ROWS_PER_CHUNK)
        sub_ptr = indptr[start : stop + 1] - indptr[start]
        sub_idx = indices[indptr[start] : indptr[stop]]
        sig = _minhash_signatures(sub_ptr, sub_idx, a, c)
        keys[:, start:stop] = _band_keys_minhash(sig, bands, rows)
    return keys


# --------------------------------------------------------------- columns


def _infer_kind(items, name):
    sample = [it for it in items if not is_missing(it)][:50]
    if not sample:
        raise ParameterError(
            f"cannot infer the kind of column {name!r}: it has no item; give it "
            f"in columns={{{name!r}: 'image' or 'text'}}"
        )
    n_image = n_text = 0
    for it in sample:
        if isinstance(it, (bytes, bytearray, memoryview, np.ndarray, os.PathLike)):
            n_image += 1
        elif isinstance(it, str):
            if os.path.splitext(it)[1].lower() in _IMAGE_SUFFIXES or (
                len(it) < 4096 and os.path.isfile(it)
            ):
                n_image += 1
            else:
                n_text += 1
    if n_image == n_text == 0:
        raise ParameterError(
            f"cannot infer the kind of column {name!r}: its items are "
            f"{type(sample[0]).__name__}, neither images nor texts; give it in "
            f"columns={{{name!r}: 'image' or 'text'}}"
        )
    return "image" if n_image >= n_text else "text"


def _as_table(X, name):
    if isinstance(X, pd.DataFrame):
        return X
    if isinstance(X, pd.Series):
        col = X.name if isinstance(X.name, str) else "item"
        return pd.DataFrame({col: X.tolist()})
    return pd.DataFrame({"item": as_item_list(X, name=name)})


def _resolve_columns(X, other, columns):
    if columns is None:
        if X.shape[1] != 1:
            raise ParameterError(
                f"columns must name the columns to compare when X has several "
                f"({list(X.columns)[:5]}); got None"
            )
        columns = [X.columns[0]]
    if isinstance(columns, str):
        columns = [columns]
    if isinstance(columns, dict):
        if not columns:
            raise ParameterError("columns must name at least one column; got {}")
        for col, kind in columns.items():
            if kind not in _KINDS:
                raise ParameterError(
                    f"columns[{col!r}] must be one of {list(_KINDS)}; got {kind!r}"
                )
        spec = dict(columns)
    else:
        columns = list(columns)
        if not columns:
            raise ParameterError("columns must name at least one column; got []")
        spec = {col: None for col in columns}
    for col in spec:
        for table, which in ((X, "X"), (other, "other")):
            if table is not None and col not in table.columns:
                raise ParameterError(
                    f"column {col!r} of columns is not in {which}; its columns "
                    f"are {list(table.columns)[:10]}"
                )
    for col, kind in spec.items():
        if kind is None:
            items = X[col].tolist()
            if other is not None:
                items += other[col].tolist()
            spec[col] = _infer_kind(items, col)
    return spec


# ------------------------------------------------------------ the search


def _sorted_keys(keys):
    return np.argsort(keys, axis=1, kind="stable")


def _code(first, second, n):
    return first.astype(np.int64) * np.int64(n) + second.astype(np.int64)


@_WRAPPING
def _hamming_pairs(hashes, radius, *, side=None, max_bucket=1000):
    """All pairs of 64-bit hashes within Hamming ``radius`` (multi-index hashing).

    Returns ``(first, second, distance, skipped)``: the pairs (first <
    second; with ``side``, only pairs whose sides differ), and the (band,
    size) of each bucket over ``max_bucket`` rows that was not searched.
    Every pair within the radius is found unless all the bands it agrees on
    are skipped buckets.
    """
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    n = len(hashes)
    side = np.full(n, -1, np.int64) if side is None else np.asarray(side, np.int64)
    valid = np.ones(n, dtype=bool)
    starts, widths = _bit_bands(min(radius + 1, 64))
    keys = _band_keys_bits(hashes, starts, widths)
    order = _sorted_keys(keys)
    big, skipped = _big_buckets(keys, order, valid, max_bucket)
    a, b, dist = _scan_hamming(keys, order, valid, side, big, hashes, radius)
    return a, b, dist, skipped


@_WRAPPING
def _minhash_pairs(indptr, indices, threshold, *, num_perm, seed, side=None,
                   max_bucket=1000):  # fmt: skip
    """Pairs of CSR shingle sets with Jaccard >= ``threshold``, via MinHash LSH.

    Returns ``(first, second, jaccard, skipped)`` as :func:`_hamming_pairs`;
    a pair of similarity ``s`` is a candidate with probability
    ``_candidate_probability(s, *_lsh_shape(threshold, num_perm))``, and
    every reported similarity is exact.
    """
    n = indptr.shape[0] - 1
    side = np.full(n, -1, np.int64) if side is None else np.asarray(side, np.int64)
    valid = np.ones(n, dtype=bool)
    bands, rows = _lsh_shape(threshold, num_perm)
    keys = _minhash_keys(indptr, indices, bands=bands, rows=rows, seed=seed)
    order = _sorted_keys(keys)
    big, skipped = _big_buckets(keys, order, valid, max_bucket)
    a, b, sim = _scan_jaccard(
        keys, order, valid, side, big, indptr, indices, threshold - 1e-12
    )
    return a, b, sim, skipped


class _Column:
    """One compared column over the stacked rows of X (then other)."""

    def __init__(self, name, kind, items, n_x, *, params):
        self.name, self.kind = name, kind
        self.errors = []
        p = params
        parts = [(items[:n_x], 0, None)]
        if len(items) > n_x:
            parts.append((items[n_x:], n_x, "other"))
        if kind == "image":
            self.hash = np.zeros(len(items), dtype=np.uint64)
            self.digest = np.zeros(len(items), dtype=np.uint64)
            self.valid = np.zeros(len(items), dtype=bool)
            for part, start, table in parts:
                # errors come back here and are reported once, with the table
                with capture_item_errors():
                    h, d, v, errs = self._guard(
                        lambda part=part: _image_hashes(
                            part, n_jobs=p["n_jobs"], on_error=p["on_error"]
                        ),
                        table,
                    )
                stop = start + len(part)
                self.hash[start:stop], self.digest[start:stop] = h, d
                self.valid[start:stop] = v
                self._add_errors(errs, table)
        else:
            texts = list(items)
            for part, start, table in parts:
                for k, item in enumerate(part):
                    if is_missing(item) or isinstance(item, str):
                        continue
                    reason = f"expected a text (str), got {type(item).__name__}"
                    err = InputError(reason, row=k, source="text")
                    if p["on_error"] == "raise":
                        self._guard(lambda err=err: _raise(err), table)
                    self._add_errors([ItemError(k, "text", reason)], table)
                    texts[start + k] = None
            # one pass over both tables: equal shingles get equal ids
            self.norm, self.indptr, self.indices, self.valid = _text_sets(
                texts, analyzer=p["text_analyzer"], n=p["ngram_size"]
            )

    def _guard(self, func, table):
        try:
            return func()
        except InputError as exc:
            where = f"column {self.name!r}" + (f" of {table}" if table else "")
            raise InputError(
                f"{exc.reason} ({where})", row=exc.row, source=exc.source
            ) from None

    def _add_errors(self, errs, table):
        modality = str(self.name) if table is None else f"other__{self.name}"
        errs = [e._replace(modality=modality) for e in errs]
        self.errors.extend((table or "X", e) for e in errs)
        report_item_errors(errs)

    # ------------------------------------------------------------------

    def search(self, side, p):
        """Verified pairs (first, second, similarity) and the skipped buckets."""
        rows = np.flatnonzero(self.valid)
        if len(rows) < 2:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, np.empty(0), []
        sub_side = side[rows] if side[0] >= 0 else None
        if self.kind == "image":
            radius = _image_radius(p["image_threshold"])
            a, b, dist, skipped = _hamming_pairs(
                self.hash[rows], radius, side=sub_side, max_bucket=p["max_bucket_size"]
            )
            sim = 1.0 - dist / 64.0
        else:
            sub_ptr = np.concatenate(
                [[0], np.cumsum(np.diff(self.indptr)[rows])]
            ).astype(np.int64)
            sub_idx = np.concatenate(
                [self.indices[self.indptr[r] : self.indptr[r + 1]] for r in rows]
            )
            a, b, sim, skipped = _minhash_pairs(
                sub_ptr,
                sub_idx,
                p["text_threshold"],
                num_perm=p["num_perm"],
                seed=p["seed"],
                side=sub_side,
                max_bucket=p["max_bucket_size"],
            )
        skips = [
            {"column": self.name, "band": int(bnd), "size": int(size)}
            for bnd, size in skipped
        ]
        return rows[a], rows[b], sim, skips

    @_WRAPPING
    def similarity(self, first, second):
        """Similarity of given pairs (NaN where an item is missing)."""
        ok = self.valid[first] & self.valid[second]
        out = np.full(len(first), np.nan)
        f, s = first[ok], second[ok]
        if self.kind == "image":
            x = self.hash[f] ^ self.hash[s]
            out[ok] = 1.0 - np.array([_popcount64(v) for v in x], dtype=float) / 64
        else:
            out[ok] = _jaccard_pairs(self.indptr, self.indices, f, s)
        return out

    def exact(self, first, second):
        """Whether the items of the given pairs are identical (normalised)."""
        ok = self.valid[first] & self.valid[second]
        if self.kind == "image":
            return ok & (self.digest[first] == self.digest[second])
        return ok & (self.norm[first] == self.norm[second])


_PARAMS = {
    "X": ["array-like"],
    "other": ["array-like", None],
    "columns": [dict, list, tuple, str, None],
    "require": [StrOptions({"all", "any"})],
    "image_threshold": [Interval(Real, 0.5, 1, closed="both")],
    "text_threshold": [Interval(Real, 0, 1, closed="right")],
    "text_analyzer": [StrOptions({"word", "char"})],
    "ngram_size": [Interval(Integral, 1, None, closed="left"), None],
    "num_perm": [Interval(Integral, 1, 1024, closed="both")],
    "max_bucket_size": [Interval(Integral, 2, None, closed="left")],
    "on_error": [StrOptions({"raise", "missing"})],
    "n_jobs": [Integral, None],
    "random_state": ["random_state"],
}


@validate_params(_PARAMS, prefer_skip_nested_validation=True)
def find_duplicates(
    X,
    other=None,
    *,
    columns=None,
    require="all",
    image_threshold=0.95,
    text_threshold=0.7,
    text_analyzer="word",
    ngram_size=None,
    num_perm=128,
    max_bucket_size=1000,
    on_error="raise",
    n_jobs=None,
    random_state=0,
):
    """Find exact and near-duplicate records in a table, or across two tables.

    Each compared column gives every row a signature (a perceptual hash of
    an image, the shingles of a text); candidate pairs come from hash
    buckets and are verified at once, so no all-pairs matrix is built and
    memory grows linearly with the number of rows (plus the pairs found).

    Parameters
    ----------
    X : DataFrame, or one column (list, 1-D array, Series)
        The records. Image items are paths, encoded bytes or arrays (as
        :func:`~mmfeat.io.read_image` reads them); text items are strings;
        ``None``/NaN is missing.
    other : DataFrame or one column, default=None
        A second table (a test split): only pairs with one row in ``X`` and
        one in ``other`` are reported (leakage). It must have the compared
        columns. ``None`` compares the rows of ``X`` with each other.
    columns : dict, list of str, str or None, default=None
        The columns to compare: a dict of column name to kind (``"image"``
        or ``"text"``), or names whose kind is inferred (strings that are
        image paths, i.e. existing files or image file names, bytes and
        arrays are images; other strings texts). ``None``: the only column
        of ``X``.
    require : {"all", "any"}, default="all"
        When two records are duplicates: ``"all"`` when every compared
        column matches (a duplicated record: the right test for train/test
        leakage of image + title records); ``"any"`` when at least one
        column matches (the same photo with another title counts).
    image_threshold : float in [0.5, 1], default=0.95
        Smallest image similarity ``1 - hamming / 64`` of the 64-bit pHashes
        that is a match: 0.95 accepts up to 3 differing bits (a re-encoded,
        slightly resized or re-exposed copy differs by 0 to 2 on product
        photos; different products on a white background start near 3).
        Lower values cut the hash into more, shorter bands, so buckets grow.
    text_threshold : float in (0, 1], default=0.7
        Smallest Jaccard similarity of the two texts' shingle sets that is a
        match.
    text_analyzer : {"word", "char"}, default="word"
        Shingles of texts: word n-grams or character n-grams of the
        normalised text.
    ngram_size : int, default=None
        Words (or characters) per shingle; ``None``: 1 word or 4
        characters. A text shorter than that is one shingle.
    num_perm : int, default=128
        MinHash functions per text. They are cut into LSH bands of ``rows``
        hashes, with the most rows per band that still makes a pair at
        ``text_threshold`` a candidate with probability >= 0.99
        (``1 - (1 - t**rows)**bands``); more functions give higher recall
        and fewer wasted candidates, and cost time linearly.
    max_bucket_size : int, default=1000
        Largest hash bucket whose pairs are verified. Larger buckets (blank
        or placeholder images, one title repeated thousands of times: their
        pairs alone grow with the square of the bucket) are skipped and
        listed in ``result.attrs["skipped_buckets"]``; pairs that also share
        a smaller bucket are still found.
    on_error : {"raise", "missing"}, default="raise"
        An unreadable image or a non-text in a text column: ``"raise"``
        raises :class:`~mmfeat.exceptions.InputError` naming the row, the
        column and the source; ``"missing"`` treats it as missing (it never
        matches) and records it in ``result.attrs["errors"]`` and in an open
        :func:`~mmfeat.collect_item_errors` block.
    n_jobs : int, default=None
        Threads decoding images (joblib semantics).
    random_state : int, RandomState instance or None, default=0
        Seeds the MinHash functions (only which candidates are tried depends
        on it; every reported similarity is exact).

    Returns
    -------
    pairs : DataFrame
        One row per duplicate pair, most similar first, with columns
        ``row`` (position in ``X``), ``other_row`` (position in ``other``,
        or in ``X`` with ``row < other_row`` when ``other`` is None),
        ``similarity`` (the mean of the column similarities that are
        defined), one ``<column>_similarity`` per compared column (1 - the
        pHash Hamming distance / 64 for images, the shingle Jaccard for
        texts; NaN where an item is missing) and ``kind``: ``"exact"`` when
        every compared column is identical (same decoded pixels, same
        normalised text), else ``"near"``. ``pairs.attrs`` holds
        ``"skipped_buckets"`` (list of dicts: column, band, size) and
        ``"errors"`` (list of dicts: table, row, column, source, reason).

    See Also
    --------
    mmfeat.collect_item_errors : Which items were refused.

    Notes
    -----
    Images: the pHash is computed as ``cv2.img_hash.PHash`` does on the
    image's 32x32 grey thumbnail (made with area interpolation, which keeps
    a resized copy's hash stable). For a radius of ``r`` bits the hash is cut
    into ``r + 1`` bands; two hashes within ``r`` bits agree on a whole band,
    so every such pair sharing a bucket no larger than ``max_bucket_size``
    is found, exactly (multi-index hashing). A pair found in several bands is
    verified only in the first.

    Texts: texts are normalised (NFKC, lower case, punctuation and extra
    spaces dropped), so a case change is an exact duplicate. MinHash LSH
    finds a pair of similarity ``s`` with probability
    ``1 - (1 - s**rows)**bands`` (>= 0.99 at the threshold, more above it);
    each candidate is verified by its true Jaccard similarity, so there are
    no false positives. A text with no word is not compared.

    Missing items never match: with ``require="all"`` a pair with a missing
    item in a compared column is not a duplicate; with ``"any"`` its
    similarity there is NaN.

    References
    ----------
    .. [1] Zauner, C. "Implementation and benchmarking of perceptual image
       hash functions", 2010.
    .. [2] Norouzi, M., Punjani, A., Fleet, D. J. "Fast search in Hamming
       space with multi-index hashing", CVPR 2012.
    .. [3] Broder, A. "On the resemblance and containment of documents",
       1997; Leskovec, Rajaraman, Ullman, "Mining of Massive Datasets",
       ch. 3.

    Examples
    --------
    >>> import pandas as pd
    >>> from mmfeat.quality import find_duplicates
    >>> titles = pd.DataFrame({"title": [
    ...     "Nike Men Blue Running Shoes",
    ...     "Puma Women Black Handbag",
    ...     "nike men blue running shoes!",
    ...     "Nike Men Blue Shoes",
    ... ]})
    >>> find_duplicates(titles, columns={"title": "text"})
       row  other_row  similarity  title_similarity   kind
    0    0          2         1.0               1.0  exact
    1    0          3         0.8               0.8   near
    2    2          3         0.8               0.8   near
    >>> test = pd.DataFrame({"title": ["PUMA women black handbag", "Red scarf"]})
    >>> find_duplicates(titles, test, columns=["title"])[["row", "other_row", "kind"]]
       row  other_row   kind
    0    1          0  exact
    """
    X = _as_table(X, "X")
    other = None if other is None else _as_table(other, "other")
    spec = _resolve_columns(X, other, columns)
    n_x = len(X)
    n = n_x + (0 if other is None else len(other))
    rs = check_random_state(random_state)
    params = dict(
        image_threshold=float(image_threshold),
        text_threshold=float(text_threshold),
        text_analyzer=text_analyzer,
        ngram_size=ngram_size or (1 if text_analyzer == "word" else 4),
        num_perm=int(num_perm),
        max_bucket_size=int(max_bucket_size),
        on_error=on_error,
        n_jobs=n_jobs,
        seed=int(rs.randint(0, 2**31 - 1)),
    )
    side = np.full(n, -1, dtype=np.int64)
    if other is not None:
        side[:] = 0
        side[n_x:] = 1

    cols = []
    for name, kind in spec.items():
        items = X[name].tolist()
        if other is not None:
            items += other[name].tolist()
        cols.append(_Column(name, kind, items, n_x, params=params))

    # per column: verified pairs as sorted codes first * n + second
    skipped, found = [], []
    for col in cols:
        a, b, sim, skips = col.search(side, params)
        skipped.extend(skips)
        code = _code(a, b, n)
        keep = np.argsort(code, kind="stable")
        found.append(code[keep])
    codes = found[0]
    for c in found[1:]:
        codes = (
            np.intersect1d(codes, c, assume_unique=True)
            if require == "all"
            else np.union1d(codes, c)
        )
    first, second = codes // n, codes % n
    sims = {col.name: col.similarity(first, second) for col in cols}
    exact = np.ones(len(codes), dtype=bool)
    for col in cols:
        exact &= col.exact(first, second)
    sim_table = np.column_stack([sims[c.name] for c in cols]) if cols else None
    with np.errstate(invalid="ignore"):
        defined = ~np.isnan(sim_table)
        total = np.where(defined, sim_table, 0.0).sum(axis=1)
        combined = total / np.maximum(defined.sum(axis=1), 1)
    out = pd.DataFrame(
        {
            "row": first.astype(np.int64),
            "other_row": (second - (n_x if other is not None else 0)).astype(np.int64),
            "similarity": combined,
            **{f"{name}_similarity": s for name, s in sims.items()},
            "kind": np.where(exact, "exact", "near").astype(object),
        }
    )
    out = out.sort_values(
        ["similarity", "row", "other_row"],
        ascending=[False, True, True],
        kind="stable",
        ignore_index=True,
    )
    out.attrs["skipped_buckets"] = skipped
    out.attrs["errors"] = [
        {
            "table": table,
            "row": int(e.row),
            "column": col.name,
            "source": e.source,
            "reason": e.reason,
        }
        for col in cols
        for table, e in col.errors
    ]
    return out
