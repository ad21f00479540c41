"""Evaluation of fused models: the fusion report, ablations and plots.

:func:`fusion_report` scores each modality alone and the fused model
(accuracy, macro recall, macro F1); :func:`missing_modality_curve` measures
how a model degrades as a modality goes missing; the ``plot_*`` functions
draw a confusion matrix, the modality ablation and the fusion weights
(matplotlib, ``pip install "mmfeat[plots]"``).
"""

from mmfeat.evaluation._plots import (
    fusion_weights,
    plot_confusion_matrix,
    plot_fusion_weights,
    plot_modality_ablation,
)
from mmfeat.evaluation._report import (
    fusion_report,
    mask_modality,
    missing_modality_curve,
    modality_columns,
)

__all__ = [
    "fusion_report",
    "fusion_weights",
    "mask_modality",
    "missing_modality_curve",
    "modality_columns",
    "plot_confusion_matrix",
    "plot_fusion_weights",
    "plot_modality_ablation",
]
