"""Plots of a fused model: confusion matrix, modality ablation, weights.

matplotlib is optional (``pip install "mmfeat[plots]"``); every function
returns the matplotlib Figure it drew on.
"""

import numpy as np

from mmfeat.evaluation._report import modality_columns
from mmfeat.exceptions import ParameterError
from mmfeat.fusion import (
    LateFusionClassifier,
    ModalityStackingClassifier,
    find_fuser,
    unwrap_model,
)

__all__ = ["plot_confusion_matrix", "plot_fusion_weights", "plot_modality_ablation"]


def _axes(ax, figsize):
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("plots need matplotlib: pip install 'mmfeat[plots]'") from exc
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    return ax.figure, ax


def plot_confusion_matrix(y_true, y_pred, *, labels=None, normalize=None, ax=None):
    """Draw the confusion matrix of a set of predictions.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    labels : array-like, default=None
        Label order (default: sorted union of both).
    normalize : {"true", "pred", "all"}, default=None
        As in :func:`sklearn.metrics.confusion_matrix`.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when ``None``.

    Returns
    -------
    fig : matplotlib Figure
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(np.unique(np.concatenate([np.asarray(y_true), np.asarray(y_pred)])))
    fig, ax = _axes(ax, (1.0 + 0.45 * n, 0.8 + 0.45 * n))
    ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=labels,
        normalize=normalize,
        ax=ax,
        colorbar=False,
        values_format=".2f" if normalize else "d",
        xticks_rotation="vertical",
    )
    fig.tight_layout()
    return fig


def plot_modality_ablation(report, *, metrics=("accuracy", "macro_f1"), ax=None):
    """Bar chart of a :func:`fusion_report`: each modality alone vs fused.

    Parameters
    ----------
    report : DataFrame
        From :func:`fusion_report`.
    metrics : sequence of str, default=("accuracy", "macro_f1")
        Columns to draw, one bar per modality and metric.
    ax : matplotlib Axes, default=None
        Where to draw.

    Returns
    -------
    fig : matplotlib Figure
    """
    missing = [m for m in metrics if m not in report.columns]
    if missing:
        raise ParameterError(f"the report has no columns {missing}")
    fig, ax = _axes(ax, (1.5 + 1.2 * len(report), 3.5))
    x = np.arange(len(report))
    width = 0.8 / len(metrics)
    for i, metric in enumerate(metrics):
        bars = ax.bar(x + i * width, report[metric].to_numpy(), width, label=metric)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(x + width * (len(metrics) - 1) / 2, list(report.index))
    low = float(np.nanmin(report[list(metrics)].to_numpy()))
    ax.set_ylim(max(0.0, low - 0.1), 1.0)
    ax.set_ylabel("score")
    ax.set_title("each modality alone vs fused")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def fusion_weights(model):
    """The weight of each modality in a fused model.

    Late fusion: ``weights_``. Feature-level fusion: the fuser's block
    weights. Stacking: each modality's share of the meta-model's absolute
    coefficients (a linear meta-model is needed).

    Parameters
    ----------
    model : fitted estimator

    Returns
    -------
    weights : dict of str to float
    """
    model = unwrap_model(model)
    if isinstance(model, LateFusionClassifier):
        return dict(model.weights_)
    if isinstance(model, ModalityStackingClassifier):
        coef = getattr(model.final_estimator_, "coef_", None)
        if coef is None:
            raise ParameterError(
                "the stacking meta-model has no coef_; weights need a linear one"
            )
        k = len(model.classes_)
        share = {}
        for i, name in enumerate(model.modality_names_):
            block = np.abs(np.atleast_2d(coef)[:, i * (k + 1) : (i + 1) * (k + 1) - 1])
            share[name] = float(block.sum())
        total = sum(share.values()) or 1.0
        return {n: v / total for n, v in share.items()}
    fuser = find_fuser(model)
    if fuser is not None and hasattr(fuser, "weights_"):
        return dict(fuser.weights_)
    modality_columns(model)  # raises the explanatory error
    raise ParameterError("the fuser is not fitted")


def plot_fusion_weights(model, *, ax=None):
    """Bar chart of :func:`fusion_weights`.

    Parameters
    ----------
    model : fitted estimator
        Late fusion, stacking (linear meta-model) or a Pipeline with a fuser.
    ax : matplotlib Axes, default=None
        Where to draw.

    Returns
    -------
    fig : matplotlib Figure
    """
    weights = fusion_weights(model)
    fig, ax = _axes(ax, (1.5 + 1.0 * len(weights), 3.0))
    bars = ax.bar(list(weights), list(weights.values()), color="tab:green")
    ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_ylabel("weight")
    ax.set_title(f"modality weights ({type(unwrap_model(model)).__name__})")
    fig.tight_layout()
    return fig
