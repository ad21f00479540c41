"""Evaluation of fused models: the fusion report, ablations and plots.

:func:`fusion_report` scores each modality alone and the fused model
(accuracy, macro recall, macro F1); :func:`missing_modality_curve` measures
how a model degrades as a modality goes missing; the ``plot_*`` functions
draw a confusion matrix, the modality ablation and the fusion weights
(matplotlib, ``pip install "mmfeat[plots]"``). Segmentation masks are scored
by :func:`mean_iou`, :func:`iou_score`, :func:`dice_score`,
:func:`pixel_accuracy`, :func:`boundary_f1` and :func:`segmentation_report`
(counts over every pixel of every image, unlabelled truth pixels ignored),
with :func:`make_segmentation_scorer` for grid searches and
:func:`plot_segmentation` for overlays.
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
from mmfeat.evaluation._segmentation import (
    adapted_rand_error,
    boundary_f1,
    dice_score,
    iou_score,
    make_segmentation_scorer,
    mean_iou,
    pixel_accuracy,
    plot_segmentation,
    segmentation_confusion,
    segmentation_report,
    variation_of_information,
)

__all__ = [
    "adapted_rand_error",
    "boundary_f1",
    "dice_score",
    "fusion_report",
    "fusion_weights",
    "iou_score",
    "make_segmentation_scorer",
    "mask_modality",
    "mean_iou",
    "missing_modality_curve",
    "modality_columns",
    "pixel_accuracy",
    "plot_confusion_matrix",
    "plot_fusion_weights",
    "plot_modality_ablation",
    "plot_segmentation",
    "segmentation_confusion",
    "segmentation_report",
    "variation_of_information",
]
