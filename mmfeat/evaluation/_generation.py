"""Metrics of generated text: BLEU, CIDEr-D, attribute slots, candidate recall."""

import time

import numpy as np
import pandas as pd

from mmfeat.exceptions import ParameterError
from mmfeat.utils._ngrams import (
    NgramSpace,
    cider_rows,
    mentions,
    tfidf_vectors,
    tokenize,
    value_words,
)

__all__ = [
    "attribute_slot_accuracy",
    "bleu_scores",
    "caption_recall_at_k",
    "cider_d_score",
    "generation_report",
    "make_caption_scorer",
]


def _missing(v):
    return v is None or v is pd.NA or (isinstance(v, float) and v != v)


def _references(references, n=None, name="references"):
    """Per row, the tuple of reference texts (empty: no reference)."""
    if isinstance(references, pd.DataFrame):
        if references.shape[1] != 1:
            raise ParameterError(f"{name} must be one column of texts")
        references = references.iloc[:, 0]
    if isinstance(references, str) or not hasattr(references, "__len__"):
        raise ParameterError(f"{name} must be a sequence, one entry per row")
    refs = []
    for v in list(references):
        if isinstance(v, (list, tuple, np.ndarray)):
            refs.append(tuple(str(t) for t in v if not _missing(t) and str(t).strip()))
        elif _missing(v) or not str(v).strip():
            refs.append(())
        else:
            refs.append((str(v),))
    if n is not None and len(refs) != n:
        raise ParameterError(f"{name} has {len(refs)} rows; the hypotheses have {n}")
    return refs


def _hypotheses(hypotheses):
    if isinstance(hypotheses, str) or not hasattr(hypotheses, "__len__"):
        raise ParameterError("hypotheses must be a sequence of texts, one per row")
    return ["" if _missing(h) else str(h) for h in list(hypotheses)]


def _pairs(references, hypotheses):
    hyps = _hypotheses(hypotheses)
    refs = _references(references, len(hyps))
    keep = [i for i, r in enumerate(refs) if r]
    return [refs[i] for i in keep], [hyps[i] for i in keep]


def bleu_scores(references, hypotheses, *, max_order=4, lowercase=True):
    """Corpus BLEU-1 .. BLEU-``max_order`` of generated texts (sacrebleu).

    BLEU-n is the brevity-penalised geometric mean of the modified 1- to
    n-gram precisions over the whole corpus (Papineni et al. 2002), as
    ``sacrebleu`` computes it (its ``13a`` tokenisation), on a 0-1 scale.
    Rows without a reference are left out; a missing hypothesis (``None``,
    an unreadable photo) is the empty text and scores nothing.

    Parameters
    ----------
    references : sequence of str, or of lists of str
        The true text(s) of each row.
    hypotheses : sequence of str or None
        The generated text of each row.
    max_order : int, default=4
    lowercase : bool, default=True
        Compare lower-cased texts.

    Returns
    -------
    scores : dict
        ``{"BLEU-1": ..., ..., "BLEU-<max_order>": ...}``.

    Examples
    --------
    >>> s = bleu_scores(["a red cotton shirt"], ["a red cotton shirt"])
    >>> round(s["BLEU-4"], 3)
    1.0
    """
    from sacrebleu.metrics import BLEU

    if not isinstance(max_order, int) or not 1 <= max_order <= 9:
        raise ParameterError(f"max_order must be an int in 1..9; got {max_order!r}")
    refs, hyps = _pairs(references, hypotheses)
    if not hyps:
        raise ValueError("no row has a reference text")
    width = max(len(r) for r in refs)
    # sacrebleu takes reference *streams*; None pads rows with fewer refs
    streams = [[r[j] if j < len(r) else None for r in refs] for j in range(width)]
    out = {}
    for n in range(1, max_order + 1):
        bleu = BLEU(max_ngram_order=n, lowercase=lowercase)
        out[f"BLEU-{n}"] = bleu.corpus_score(hyps, streams).score / 100.0
    return out


def cider_d_score(references, hypotheses, *, return_per_item=False):
    """CIDEr-D of generated texts, as the COCO caption evaluation computes it.

    For each row, the mean over its references of the length-penalised,
    clipped cosine similarity of TF-IDF n-gram vectors (n = 1..4, averaged,
    times 10; Vedantam et al. 2015); the IDF comes from the references of
    the rows scored, one document per row. The corpus score is the mean
    over rows. Texts are lower-cased and split into words with
    punctuation removed (the COCO evaluation uses the PTB tokenizer, which
    needs Java); the formula is in :mod:`mmfeat.utils._ngrams`.

    Parameters
    ----------
    references : sequence of str, or of lists of str
        Rows without a reference are left out.
    hypotheses : sequence of str or None
        A missing hypothesis is the empty text (score 0).
    return_per_item : bool, default=False
        Also return each kept row's score.

    Returns
    -------
    score : float
    per_item : ndarray
        Only with ``return_per_item=True``.

    Examples
    --------
    >>> refs = ["red cotton shirt", "blue denim jeans", "black leather belt"]
    >>> cider_d_score(refs, refs) > cider_d_score(refs, refs[::-1])
    True
    """
    refs, hyps = _pairs(references, hypotheses)
    if not hyps:
        raise ValueError("no row has a reference text")
    ref_tokens = [tokenize(t) for r in refs for t in r]
    groups = np.repeat(np.arange(len(refs)), [len(r) for r in refs])
    space = NgramSpace(ref_tokens + [tokenize(h) for h in hyps])
    df = space.document_frequency(groups, len(refs))
    vectors, norms = tfidf_vectors(space, df, len(refs))
    hyp_rows = len(ref_tokens) + groups  # each reference's hypothesis row
    terms = cider_rows(vectors, norms, space.lengths, hyp_rows, np.arange(len(groups)))
    per_item = np.bincount(groups, weights=terms, minlength=len(refs)) / np.bincount(
        groups, minlength=len(refs)
    )
    score = float(per_item.mean())
    return (score, per_item) if return_per_item else score


def attribute_slot_accuracy(texts, attributes, *, columns=None):
    """How often a generated text names each true attribute value.

    A text names a value when every word of the value is among its words,
    compared lower-case, without punctuation, and with a light plural
    stemmer (``"Tshirts"`` is named by ``"T-shirt"``, ``"Casual Shoes"``
    by ``"... casual shoe"``); ``None`` (no text) names nothing.

    Parameters
    ----------
    texts : sequence of str or None
    attributes : DataFrame
        The true values, a column per attribute, one row per text; rows
        with a missing value are left out of that column.
    columns : list of str, default=None
        Attributes to score (default: every column).

    Returns
    -------
    accuracy : Series
        Per attribute, the fraction of rows whose text names the true value.

    Examples
    --------
    >>> import pandas as pd
    >>> truth = pd.DataFrame({"gender": ["Men", "Women"],
    ...                       "articleType": ["Tshirts", "Heels"]})
    >>> attribute_slot_accuracy(["Nike Men Blue T-shirt", "Men Black Heels"],
    ...                         truth).tolist()
    [0.5, 1.0]
    """
    if not isinstance(attributes, pd.DataFrame):
        raise ParameterError("attributes must be a DataFrame of true values")
    texts = list(texts)
    if len(texts) != len(attributes):
        raise ParameterError(
            f"{len(texts)} texts for {len(attributes)} rows of attributes"
        )
    columns = list(attributes.columns) if columns is None else list(columns)
    words = [None if _missing(t) else value_words(t) for t in texts]
    out = {}
    for col in columns:
        truth = attributes[col].tolist()
        hits = [
            (w is not None and mentions(w, str(v)))
            for w, v in zip(words, truth)
            if not _missing(v)
        ]
        out[col] = float(np.mean(hits)) if hits else float("nan")
    return pd.Series(out, name="slot_accuracy")


def caption_recall_at_k(references, candidates, k=(1, 5)):
    """Fraction of rows whose true caption is among the top-k candidates.

    Retrieval-style recall of a captioner's ranked candidates
    (``predict_candidates``): a candidate is the true caption when their
    words are the same (lower case, punctuation removed).

    Parameters
    ----------
    references : sequence of str, or of lists of str
    candidates : list
        Per row, a ranked list of captions or of ``(caption, score)``
        pairs, or ``None``.
    k : int or tuple of int, default=(1, 5)

    Returns
    -------
    recall : dict
        ``{"recall@1": ..., "recall@5": ...}`` over the rows with a
        reference.
    """
    ks = (k,) if isinstance(k, int) else tuple(k)
    if not ks or not all(isinstance(v, int) and v >= 1 for v in ks):
        raise ParameterError(f"k must be positive ints; got {k!r}")
    refs = _references(references, len(candidates))
    out = {f"recall@{v}": [] for v in ks}
    for r, cands in zip(refs, candidates):
        if not r:
            continue
        truth = {tuple(tokenize(t)) for t in r}
        ranked = [
            tuple(tokenize(c[0] if isinstance(c, tuple) else c)) for c in cands or []
        ]
        for v in ks:
            out[f"recall@{v}"].append(any(c in truth for c in ranked[:v]))
    return {name: float(np.mean(v)) if v else float("nan") for name, v in out.items()}


def generation_report(models, X, y, *, attributes=None, k=5):
    """BLEU, CIDEr-D, candidate recall and attribute slots of captioners.

    Parameters
    ----------
    models : captioner or dict of str to captioner
        Fitted models with ``predict`` (any of :mod:`mmfeat.generation`);
        those with ``predict_candidates`` also get ``recall@1`` and
        ``recall@k``.
    X : column of photos, table or matrix
        What the models predict from.
    y : sequence of str, or of lists of str
        The true caption(s) of each row.
    attributes : DataFrame, default=None
        True attribute values per row: adds one ``slot_<column>`` per
        column (:func:`attribute_slot_accuracy`).
    k : int, default=5

    Returns
    -------
    report : DataFrame
        One row per model: ``BLEU-1`` .. ``BLEU-4``, ``CIDEr-D``,
        ``recall@1``, ``recall@<k>``, the slots, ``coverage`` (rows with a
        caption) and ``seconds`` (time to predict; with
        ``predict_candidates``, its time: the prediction is the best
        candidate).
    """
    if not isinstance(models, dict):
        models = {type(models).__name__: models}
    rows = []
    for name, model in models.items():
        row = {"model": name}
        t0 = time.perf_counter()
        if hasattr(model, "predict_candidates"):
            # one search: the prediction is the best candidate
            cands = model.predict_candidates(X, k=k)
            pred = np.empty(len(cands), dtype=object)
            pred[:] = [None if c is None else c[0][0] for c in cands]
        else:
            cands, pred = None, model.predict(X)
        seconds = time.perf_counter() - t0
        row.update(bleu_scores(y, pred))
        row["CIDEr-D"] = cider_d_score(y, pred)
        if cands is not None:
            row.update(caption_recall_at_k(y, cands, k=(1, k)))
        if attributes is not None:
            acc = attribute_slot_accuracy(pred, attributes)
            row.update({f"slot_{c}": v for c, v in acc.items()})
        row["coverage"] = float(np.mean([p is not None for p in pred]))
        row["seconds"] = seconds
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


class _CaptionScorer:
    """``scorer(estimator, X, y)`` for GridSearchCV (picklable)."""

    def __init__(self, metric, text_column):
        self.metric = metric
        self.text_column = text_column

    def __call__(self, estimator, X, y):
        if isinstance(y, pd.DataFrame) and self.text_column is not None:
            y = y[self.text_column]
        pred = estimator.predict(X)
        if self.metric == "cider":
            return cider_d_score(y, pred)
        return bleu_scores(y, pred, max_order=int(self.metric[-1]))[
            f"BLEU-{self.metric[-1]}"
        ]

    def __repr__(self):
        return f"make_caption_scorer({self.metric!r})"


def make_caption_scorer(metric="cider", *, text_column=None):
    """A scorer of generated captions for ``GridSearchCV`` / ``cross_val_score``.

    Parameters
    ----------
    metric : {"cider", "bleu1", "bleu2", "bleu3", "bleu4"}, default="cider"
        CIDEr-D (:func:`cider_d_score`) or corpus BLEU-n.
    text_column : str, default=None
        When ``y`` is a table (:class:`~mmfeat.generation.HybridCaptioner`),
        the column of the captions.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)``; greater is better.
    """
    if metric not in ("cider", "bleu1", "bleu2", "bleu3", "bleu4"):
        raise ParameterError(
            f"metric must be 'cider' or 'bleu1'..'bleu4'; got {metric!r}"
        )
    return _CaptionScorer(metric, text_column)
