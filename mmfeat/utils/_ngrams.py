"""Words and n-gram TF-IDF vectors of short texts, and CIDEr-D between them.

Shared by :mod:`mmfeat.evaluation` (the CIDEr-D metric) and
:mod:`mmfeat.generation` (consensus re-ranking of candidate captions), so the
metric a captioner is tuned on and the one it is scored with are the same
code.

CIDEr-D (Vedantam et al. 2015, as the COCO caption evaluation computes it)
of a hypothesis ``h`` against references ``r_1 .. r_m``::

    CIDEr-D(h, R) = 10 / m * sum_j 1/4 * sum_{n=1..4} pen(h, r_j) *
                    sum_g min(v_n(h)_g, v_n(r_j)_g) * v_n(r_j)_g
                    / (|v_n(h)| * |v_n(r_j)|)

where ``v_n(t)_g = count_t(g) * (log N - log max(1, df(g)))`` is the TF-IDF
weight of n-gram ``g`` (``N`` documents, ``df(g)`` of them have ``g`` in a
reference), ``pen = exp(-(l_h - l_r)^2 / (2 * 6^2))`` with ``l`` the number
of bigrams of a text (the COCO code's length), and the ``min`` clips a
hypothesis that repeats an n-gram more often than the reference does.
"""

import re

import numpy as np
import scipy.sparse as sp

__all__ = [
    "CIDER_SIGMA",
    "NgramSpace",
    "cider_pairwise",
    "cider_rows",
    "mentions",
    "tfidf_vectors",
    "tokenize",
    "value_words",
]

#: The length penalty's width (COCO's ``sigma``).
CIDER_SIGMA = 6.0

# a hyphen or apostrophe inside a word joins it ("T-shirt" -> "tshirt")
_JOIN = re.compile(r"(?<=[^\W_])[-'\u2019](?=[^\W_])")
_WORD = re.compile(r"[^\W_]+")


def tokenize(text):
    """Lower-case word tokens of ``text`` (punctuation dropped).

    A hyphen or apostrophe inside a word joins it (``"T-shirt"`` ->
    ``"tshirt"``, ``"Men's"`` -> ``"mens"``); other punctuation separates
    words. ``None`` and NaN are the empty text.

    Examples
    --------
    >>> tokenize("Nike Men's Blue T-shirt, size M")
    ['nike', 'mens', 'blue', 'tshirt', 'size', 'm']
    """
    if text is None or (isinstance(text, float) and text != text):
        return []
    return _WORD.findall(_JOIN.sub("", str(text).lower()))


def _ngrams(tokens, n):
    return [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


class NgramSpace:
    """N-gram count matrices of a list of tokenised texts, orders 1..``n``.

    Parameters
    ----------
    token_lists : list of list of str
        One tokenised text per row.
    n : int, default=4
        Highest n-gram order.

    Attributes
    ----------
    counts : list of csr_matrix
        ``counts[k]`` is (rows, vocabulary of order ``k + 1``) n-gram counts.
    lengths : ndarray of int
        Bigrams per text (CIDEr-D's length).
    """

    def __init__(self, token_lists, n=4):
        self.n = n
        self.vocab = [{} for _ in range(n)]
        self.counts = []
        for k in range(n):
            vocab = self.vocab[k]
            indptr, indices = [0], []
            for tokens in token_lists:
                for g in _ngrams(tokens, k + 1):
                    indices.append(vocab.setdefault(g, len(vocab)))
                indptr.append(len(indices))
            data = np.ones(len(indices))
            m = sp.csr_matrix(
                (data, np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
                shape=(len(token_lists), len(vocab)),
            )
            m.sum_duplicates()
            self.counts.append(m)
        self.lengths = np.array([max(len(t) - 1, 0) for t in token_lists])

    def document_frequency(self, groups, n_groups):
        """Per order: in how many groups (documents) each n-gram occurs.

        ``groups[i]`` is the document of row ``i`` (several references of
        one image are one document); rows past ``len(groups)`` (hypotheses)
        are not counted.
        """
        groups = np.asarray(groups, dtype=np.intp)
        out = []
        for m in self.counts:
            m = m[: len(groups)]
            member = sp.csr_matrix(
                (np.ones(len(groups)), (groups, np.arange(len(groups)))),
                shape=(n_groups, m.shape[0]),
            )
            present = (member @ m).tocsc()
            present.data[:] = 1.0
            out.append(np.asarray(present.sum(axis=0)).ravel())
        return out


def tfidf_vectors(space, df, n_documents):
    """CIDEr's TF-IDF vectors and their norms, per order."""
    log_n = np.log(float(max(n_documents, 1)))
    vectors, norms = [], []
    for m, d in zip(space.counts, df):
        idf = log_n - np.log(np.maximum(d, 1.0))
        v = m.multiply(idf[None, :]).tocsr()
        vectors.append(v)
        norms.append(np.sqrt(np.asarray(v.multiply(v).sum(axis=1)).ravel()))
    return vectors, norms


def _penalty(lh, lr):
    delta = np.asarray(lh, dtype=float) - np.asarray(lr, dtype=float)
    return np.exp(-(delta**2) / (2.0 * CIDER_SIGMA**2))


def cider_rows(vectors, norms, lengths, hyp, ref):
    """CIDEr-D terms (times 10) of hypothesis rows ``hyp`` against rows ``ref``.

    ``vectors``, ``norms`` and ``lengths`` describe one table of texts;
    ``hyp[i]`` is scored against ``ref[i]``, pair by pair.
    """
    hyp = np.asarray(hyp, dtype=np.intp)
    ref = np.asarray(ref, dtype=np.intp)
    total = np.zeros(len(hyp))
    for v, nrm in zip(vectors, norms):
        H = v[hyp]
        R = v[ref]
        clipped = np.asarray(H.minimum(R).multiply(R).sum(axis=1)).ravel()
        denom = nrm[hyp] * nrm[ref]
        total += np.divide(clipped, denom, out=np.zeros_like(clipped), where=denom > 0)
    return 10.0 * total / len(vectors) * _penalty(lengths[hyp], lengths[ref])


def cider_pairwise(vectors, norms, lengths, rows):
    """CIDEr-D (times 10) of every row in ``rows`` against every other.

    Returns the (m, m) matrix ``S[i, j]`` = CIDEr-D of text ``rows[i]``
    with text ``rows[j]`` as its one reference.
    """
    rows = np.asarray(rows, dtype=np.intp)
    m = len(rows)
    total = np.zeros((m, m))
    for v, nrm in zip(vectors, norms):
        sub = v[rows]
        cols = np.unique(sub.indices)
        if len(cols) == 0:
            continue
        D = sub[:, cols].toarray()
        clipped = np.empty((m, m))
        # blocks of hypotheses: at most ~2M floats of (block, m, n-grams)
        step = max(1, 2_000_000 // max(m * len(cols), 1))
        for a in range(0, m, step):
            b = min(a + step, m)
            clipped[a:b] = np.einsum(
                "iju,ju->ij", np.minimum(D[a:b, None, :], D[None, :, :]), D
            )
        denom = np.outer(nrm[rows], nrm[rows])
        total += np.divide(clipped, denom, out=np.zeros_like(clipped), where=denom > 0)
    lens = lengths[rows]
    return 10.0 * total / len(vectors) * _penalty(lens[:, None], lens[None, :])


def _stem(word):
    """A light plural stemmer for matching attribute values to words."""
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def value_words(text):
    """The stemmed word set that attribute-value matching compares.

    Examples
    --------
    >>> sorted(value_words("Men's Casual Shoes"))
    ['casual', 'men', 'shoe']
    """
    return {_stem(w) for w in tokenize(text)}


def mentions(text_words, value):
    """True when every word of ``value`` is among ``text_words`` (stemmed)."""
    words = value_words(value)
    return bool(words) and words <= text_words
