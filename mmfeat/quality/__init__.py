"""Data quality: bad images, wrong labels, mismatched pairs, duplicates and leaks.

Multimodal records give a signal no single-modality tool has: when a
record's photo and its title disagree confidently, one of them, or the
label, is wrong. :func:`find_label_issues` and :func:`find_mismatched_pairs`
read it from each modality's out-of-fold probabilities
(:func:`cross_val_modality_proba`).
"""

from mmfeat.quality._curves import LearningCurveReport, learning_curve_report
from mmfeat.quality._issues import find_label_issues, find_mismatched_pairs
from mmfeat.quality._oof import (
    ModalityProba,
    cross_val_modality_proba,
    modality_models,
)

__all__ = [
    "LearningCurveReport",
    "ModalityProba",
    "cross_val_modality_proba",
    "find_label_issues",
    "find_mismatched_pairs",
    "learning_curve_report",
    "modality_models",
]
