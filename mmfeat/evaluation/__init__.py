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
:func:`plot_segmentation` for overlays. Generated text (captions, titles) is
scored by :func:`bleu_scores` (sacrebleu), :func:`cider_d_score`,
:func:`attribute_slot_accuracy`, :func:`caption_recall_at_k` and
:func:`generation_report`, with :func:`make_caption_scorer` for grid searches.
"""

from mmfeat.evaluation._generation import (
    attribute_slot_accuracy,
    bleu_scores,
    caption_recall_at_k,
    cider_d_score,
    generation_report,
    make_caption_scorer,
)
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
    "attribute_slot_accuracy",
    "bleu_scores",
    "boundary_f1",
    "caption_recall_at_k",
    "cider_d_score",
    "dice_score",
    "fusion_report",
    "fusion_weights",
    "generation_report",
    "iou_score",
    "make_caption_scorer",
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
