"""TfidfExtractor: TF-IDF text features over a column of strings."""

import re

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from mmfeat.exceptions import InputError, MmfeatError, ParameterError
from mmfeat.utils._item_errors import ItemError, report_item_errors
from mmfeat.utils._items import as_item_list, is_missing
from mmfeat.utils._sklearn_compat import (
    Integral,
    Interval,
    Real,
    RealNotInt,
    StrOptions,
    _fit_context,
    check_is_fitted,
)
from mmfeat.utils._state import CheckedStateMixin, state_error
from mmfeat.utils._tags import with_item_tags
from mmfeat.utils._validation import check_pair

__all__ = ["TfidfExtractor"]


def _fit_block(vectorizer, texts, kind):
    """``vectorizer.fit_transform(texts)``, refusals as :class:`ParameterError`.

    On texts already checked, what TfidfVectorizer refuses is its parameters
    against the texts: ``min_df`` above ``max_df``, or no term left by
    ``min_df``, ``max_df``, ``stop_words`` or ``token_pattern``.
    """
    try:
        return vectorizer.fit_transform(texts)
    except ValueError as exc:
        if isinstance(exc, MmfeatError):
            raise
        raise ParameterError(
            f"the {kind} block cannot be learnt from these texts with these "
            f"parameters: {exc} (see min_df, max_df, stop_words, token_pattern)"
        ) from None


class TfidfExtractor(CheckedStateMixin, TransformerMixin, BaseEstimator):
    r"""TF-IDF of word and/or character n-grams of each text, kept sparse.

    A thin layer over scikit-learn's ``TfidfVectorizer`` (one for words, one
    for characters, whichever are enabled) that adds what a column of a
    multimodal table needs: missing texts (``None``, NaN, empty
    or blank strings) give missing rows instead of all-zero rows, non-text
    items give an error naming the row, and the two n-gram blocks are
    weighted into one L2-normalised vector.

    Parameters
    ----------
    word_ngram_range : tuple of int (min_n, max_n) or None, default=(1, 2)
        Word n-grams; ``None`` disables the word block.
    char_ngram_range : tuple of int (min_n, max_n) or None, default=None
        Character n-grams; ``None`` disables the character block. Use it
        (e.g. ``(2, 4)``) for languages written without spaces, for titles
        full of model numbers, or for misspellings.
    char_analyzer : {"char_wb", "char"}, default="char_wb"
        ``"char_wb"`` builds character n-grams inside word boundaries only;
        ``"char"`` runs across spaces (use it for Chinese, Japanese, Thai).
    sublinear_tf : bool, default=True
        Use ``1 + log(tf)``.
    min_df : float in [0, 1] or int >= 1, default=1
        Ignore terms in fewer documents (or a smaller fraction).
    max_df : float in [0, 1] or int >= 1, default=1.0
        Ignore terms in more documents (or a larger fraction).
    max_features : int, default=None
        Keep this many most frequent terms per block.
    stop_words : {"english"}, list or None, default=None
        Word stop words (the word block only).
    lowercase : bool, default=True
        Lowercase before tokenising.
    strip_accents : {"ascii", "unicode"} or None, default=None
        Remove accents.
    token_pattern : str, default=r"(?u)\b\w\w+\b"
        Word tokens (scikit-learn's default).
    char_weight : float, default=1.0
        Weight of the character block relative to the word block before the
        final normalisation.
    norm : {"l2", "l1"} or None, default="l2"
        Row normalisation of the combined vector.
    missing : {"nan", "zero"}, default="nan"
        Row for a missing text: NaN in every column (mmfeat's convention, so
        fusion treats the modality as absent; it stores one value per column
        of such a row) or zeros (nothing stored).
    on_error : {"raise", "missing"}, default="raise"
        A non-text item raises :class:`~mmfeat.exceptions.InputError` naming
        its row, or becomes a missing row reported to
        :func:`mmfeat.collect_item_errors`.

    Attributes
    ----------
    word_vectorizer_ : TfidfVectorizer or None
        The fitted word block.
    char_vectorizer_ : TfidfVectorizer or None
        The fitted character block.
    vocabulary_size_ : int
        Number of output columns.
    n_features_in_ : int
        Always 1.

    See Also
    --------
    sklearn.feature_extraction.text.TfidfVectorizer : The engine underneath.

    Examples
    --------
    >>> texts = ["red cotton shirt", "blue leather shoe", None]
    >>> tfidf = TfidfExtractor(word_ngram_range=(1, 1))
    >>> X = tfidf.fit_transform(texts)
    >>> X.shape, X.format
    ((3, 6), 'csr')
    >>> tfidf.get_feature_names_out()[:3].tolist()
    ['w_blue', 'w_cotton', 'w_leather']
    """

    _parameter_constraints = {
        "word_ngram_range": [tuple, list, None],
        "char_ngram_range": [tuple, list, None],
        "char_analyzer": [StrOptions({"char_wb", "char"})],
        "sublinear_tf": ["boolean"],
        # as TfidfVectorizer: a fraction of the documents, or a count
        "min_df": [
            Interval(RealNotInt, 0, 1, closed="both"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "max_df": [
            Interval(RealNotInt, 0, 1, closed="both"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "max_features": [Interval(Integral, 1, None, closed="left"), None],
        "stop_words": [StrOptions({"english"}), list, None],
        "lowercase": ["boolean"],
        "strip_accents": [StrOptions({"ascii", "unicode"}), None],
        "token_pattern": [str],
        "char_weight": [Interval(Real, 0, None, closed="left")],
        "norm": [StrOptions({"l1", "l2"}), None],
        "missing": [StrOptions({"nan", "zero"})],
        "on_error": [StrOptions({"raise", "missing"})],
    }

    def __init__(
        self,
        *,
        word_ngram_range=(1, 2),
        char_ngram_range=None,
        char_analyzer="char_wb",
        sublinear_tf=True,
        min_df=1,
        max_df=1.0,
        max_features=None,
        stop_words=None,
        lowercase=True,
        strip_accents=None,
        token_pattern=r"(?u)\b\w\w+\b",
        char_weight=1.0,
        norm="l2",
        missing="nan",
        on_error="raise",
    ):
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.char_analyzer = char_analyzer
        self.sublinear_tf = sublinear_tf
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features
        self.stop_words = stop_words
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.token_pattern = token_pattern
        self.char_weight = char_weight
        self.norm = norm
        self.missing = missing
        self.on_error = on_error

    def _texts(self, X):
        """Return (items, texts, present rows), checking item types.

        Items of the wrong type raise, or are reported to the open
        :func:`~mmfeat.collect_item_errors` log and left out.
        """
        items = as_item_list(X)
        texts, present, errors = [], [], []
        for i, item in enumerate(items):
            if is_missing(item):
                continue
            if isinstance(item, np.str_):
                item = str(item)
            if not isinstance(item, str):
                reason = (
                    f"expected a text (str), got {type(item).__name__}; convert the "
                    "column to strings (missing values may stay None/NaN)"
                )
                if self.on_error == "raise":
                    raise InputError(reason, row=i, source=type(item).__name__)
                errors.append(ItemError(i, type(item).__name__, reason))
                continue
            if not item.strip():
                continue  # an empty text is a missing text
            texts.append(item)
            present.append(i)
        report_item_errors(errors)
        return items, texts, np.asarray(present, dtype=np.int64)

    def _vectorizer(self, kind):
        common = dict(
            sublinear_tf=self.sublinear_tf,
            min_df=self.min_df,
            max_df=self.max_df,
            max_features=self.max_features,
            lowercase=self.lowercase,
            strip_accents=self.strip_accents,
            norm=None if self._two_blocks() else self.norm,
            dtype=np.float64,
        )
        if kind == "word":
            return TfidfVectorizer(
                analyzer="word",
                ngram_range=tuple(self.word_ngram_range),
                stop_words=self.stop_words,
                token_pattern=self.token_pattern,
                **common,
            )
        return TfidfVectorizer(
            analyzer=self.char_analyzer,
            ngram_range=tuple(self.char_ngram_range),
            **common,
        )

    def _two_blocks(self):
        return self.word_ngram_range is not None and self.char_ngram_range is not None

    def _check_fitted_state(self):
        sizes = [
            len(v.vocabulary_)
            for v in (self.word_vectorizer_, self.char_vectorizer_)
            if v is not None
        ]
        if not sizes or self.vocabulary_size_ != sum(sizes):
            raise state_error(
                self,
                f"vocabulary_size_={self.vocabulary_size_!r} but the vectorizers "
                f"hold {sum(sizes)} terms",
            )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the vocabularies and IDF weights from the present texts.

        Parameters
        ----------
        X : column of texts
            Strings, or missing values (ignored).
        y : None
            Ignored.

        Returns
        -------
        self : TfidfExtractor
            The fitted extractor.
        """
        self._fit_blocks(X, transform=False)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Fit and transform in one pass over the texts (as TfidfVectorizer does).

        Parameters
        ----------
        X : column of texts
            Strings or missing values.
        y : None
            Ignored.

        Returns
        -------
        features : scipy.sparse.csr_matrix of shape (n_samples, vocabulary_size_)
            As :meth:`transform` returns.
        """
        return self._fit_blocks(X, transform=True)

    def _check_params(self):
        """The checks ``_parameter_constraints`` cannot express."""
        if self.word_ngram_range is None and self.char_ngram_range is None:
            raise ParameterError(
                "word_ngram_range and char_ngram_range are both None: enable at least "
                "one block"
            )
        for name in ("word_ngram_range", "char_ngram_range"):
            pair = check_pair(
                getattr(self, name), name, allow_none=True, labels=("min_n", "max_n")
            )
            if pair is not None and pair[0] > pair[1]:
                raise ParameterError(f"{name} must have min_n <= max_n; got {pair}")
        try:
            groups = re.compile(self.token_pattern).groups
        except re.error as exc:
            raise ParameterError(
                f"token_pattern={self.token_pattern!r} is not a regular expression: "
                f"{exc}"
            ) from None
        if groups > 1:
            raise ParameterError(
                f"token_pattern={self.token_pattern!r} has {groups} capturing "
                "groups; at most one (the token) is allowed"
            )

    def _fit_blocks(self, X, *, transform):
        self._check_params()
        items, texts, present = self._texts(X)
        if not texts:
            raise ParameterError("TfidfExtractor.fit got no non-empty text")
        blocks = []
        self.word_vectorizer_ = self.char_vectorizer_ = None
        if self.word_ngram_range is not None:
            self.word_vectorizer_ = self._vectorizer("word")
            blocks.append(_fit_block(self.word_vectorizer_, texts, "word"))
        if self.char_ngram_range is not None:
            self.char_vectorizer_ = self._vectorizer("char")
            blocks.append(_fit_block(self.char_vectorizer_, texts, "character"))
        self.vocabulary_size_ = sum(b.shape[1] for b in blocks)
        self.n_features_in_ = 1
        if transform:
            return self._assemble(len(items), present, blocks)
        return None

    def transform(self, X):
        """TF-IDF rows, in a CSR matrix with one row per item.

        Parameters
        ----------
        X : column of texts
            Strings or missing values.

        Returns
        -------
        features : scipy.sparse.csr_matrix of shape (n_samples, vocabulary_size_)
            One row per item; missing (and, with ``on_error="missing"``, bad)
            items give NaN rows (or zero rows with ``missing="zero"``).
        """
        check_is_fitted(self, "vocabulary_size_")
        items, texts, present = self._texts(X)
        # every text missing: no rows for the vectorizers (they refuse 0 rows)
        blocks = [
            v.transform(texts) if texts else sp.csr_matrix((0, len(v.vocabulary_)))
            for v in (self.word_vectorizer_, self.char_vectorizer_)
            if v is not None
        ]
        return self._assemble(len(items), present, blocks)

    def _assemble(self, n, present, blocks):
        """Weight and join the blocks, normalise, and put rows in their places."""
        if self._two_blocks():
            blocks[1] = blocks[1] * self.char_weight
            rows = sp.hstack(blocks, format="csr")
            if self.norm is not None:
                rows = normalize(rows, norm=self.norm, copy=False)
        else:
            rows = blocks[0].tocsr()
        if len(present) == n:
            return rows
        width = self.vocabulary_size_
        absent = np.setdiff1d(np.arange(n), present)
        k = len(absent)
        if self.missing == "nan":
            filler = sp.csr_matrix(
                (
                    np.full(k * width, np.nan),
                    np.tile(np.arange(width, dtype=np.int32), k),
                    np.arange(0, (k + 1) * width, width, dtype=np.int64),
                ),
                shape=(k, width),
            )
        else:
            filler = sp.csr_matrix((k, width))
        stacked = sp.vstack([rows, filler], format="csr")
        # row j of the output is row order[j] of the stack
        order = np.empty(n, dtype=np.int64)
        order[present] = np.arange(len(present))
        order[absent] = len(present) + np.arange(k)
        return stacked[order]

    def get_feature_names_out(self, input_features=None):
        """Names ``w_<word n-gram>`` and ``c_<character n-gram>``.

        Parameters
        ----------
        input_features : None
            Ignored.

        Returns
        -------
        names : ndarray of str
            The vocabulary, in column order.
        """
        check_is_fitted(self, "vocabulary_size_")
        names = []
        if self.word_vectorizer_ is not None:
            names += [f"w_{t}" for t in self.word_vectorizer_.get_feature_names_out()]
        if self.char_vectorizer_ is not None:
            names += [f"c_{t}" for t in self.char_vectorizer_.get_feature_names_out()]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.input_tags.sparse = True
        return with_item_tags(tags, modality="text", reads_files=False)

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks."""
        return [
            {},
            {"word_ngram_range": None, "char_ngram_range": (2, 3)},
            {"char_ngram_range": (2, 4), "char_analyzer": "char", "char_weight": 0.5},
        ]
