"""Fusion weights learnt on out-of-fold probabilities (late fusion, segmenters)."""

import numpy as np
from scipy.optimize import minimize
from scipy.special import softmax

__all__ = ["learn_weights"]


def learn_weights(probas, y, sample_weight=None):
    """Weights on the simplex that minimise the log-loss of the fused proba.

    Parameters
    ----------
    probas : list of ndarray of shape (n_samples, n_classes)
        Out-of-fold probabilities per modality (NaN rows where missing).
    y : ndarray of shape (n_samples,)
        Encoded labels (column indices).
    sample_weight : ndarray, default=None
        Row weights of the log-loss.

    Returns
    -------
    weights : ndarray of shape (n_modalities,)
        Non-negative, summing to 1.
    """
    m = len(probas)
    if m == 1:
        return np.ones(1)
    # P[i, m] = modality m's probability of row i's true class; A = present
    picked = np.stack([p[np.arange(len(y)), y] for p in probas], axis=1)
    present = ~np.isnan(picked)
    keep = present.any(axis=1)
    picked, present = np.nan_to_num(picked[keep]), present[keep].astype(float)
    sw = np.ones(keep.sum()) if sample_weight is None else sample_weight[keep]
    sw = sw / sw.sum()

    def loss(theta):
        w = softmax(theta)
        num = picked @ w
        den = present @ w
        p = np.clip(num / den, 1e-15, 1.0)
        return -(sw * np.log(p)).sum()

    best = None
    # a few starts: the simplex corners' neighbourhood and the centre
    starts = [np.zeros(m)] + [np.eye(m)[i] * 2.0 for i in range(m)]
    for start in starts:
        res = minimize(loss, start, method="L-BFGS-B")
        if best is None or res.fun < best.fun:
            best = res
    w = softmax(best.x)
    w[w < 1e-6] = 0.0
    return w / w.sum()
