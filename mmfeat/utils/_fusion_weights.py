"""Fusion weights learnt on out-of-fold probabilities (late fusion, segmenters)."""

import numpy as np
from scipy.optimize import minimize

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

    def loss(w):
        # the fused probability of the true class is scale-free in w; the
        # last term pins the scale (sum 1) so the optimum is a point
        num = np.maximum(picked @ w, 1e-300)
        den = np.maximum(present @ w, 1e-300)
        p = np.clip(num / den, 1e-15, 1.0)
        total = w.sum()
        value = -(sw * np.log(p)).sum() + (total - 1.0) ** 2
        grad = -(sw[:, None] * (picked / num[:, None] - present / den[:, None])).sum(0)
        return value, grad + 2.0 * (total - 1.0)

    best = None
    # on the simplex's closure, with bounds w >= 0, so a modality that does
    # not help reaches exactly 0 (a softmax parametrisation only nears it);
    # starts: the centre and near each corner
    starts = [np.full(m, 1.0 / m)] + [
        np.where(np.arange(m) == i, 0.9, 0.1 / max(m - 1, 1)) for i in range(m)
    ]
    for start in starts:
        res = minimize(
            loss, start, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * m
        )
        if best is None or res.fun < best.fun:
            best = res
    w = np.maximum(best.x, 0.0)
    w[w < 1e-6 * w.max()] = 0.0
    return w / w.sum()
