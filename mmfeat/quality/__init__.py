"""Data quality: bad images, wrong labels, mismatched pairs, duplicates and leaks.

- :class:`ImageQuality` scores each image (sharpness, brightness, contrast,
  colourfulness, entropy, size) and :func:`find_image_issues` flags the
  blurry, dark, light, blank, odd and unreadable ones;
- :func:`find_duplicates` finds exact and near-duplicate records within a
  table or across two (train/test leaks) without an all-pairs matrix;
- :func:`find_label_issues` and :func:`find_mismatched_pairs` rank wrong
  labels and photos attached to the wrong record;
- :func:`quality_report` runs them all (``mmfeat check`` on a file);
- :func:`learning_curve_report` shows what fusion buys when data is short,
  and the train/held-out gap.

Multimodal records give a signal no single-modality tool has: when a
record's photo and its title disagree confidently, one of them, or the
label, is wrong. :func:`find_label_issues` and :func:`find_mismatched_pairs`
read it from each modality's out-of-fold probabilities
(:func:`cross_val_modality_proba`).
"""

from mmfeat.features.image import ImageQuality
from mmfeat.quality._curves import LearningCurveReport, learning_curve_report
from mmfeat.quality._duplicates import find_duplicates
from mmfeat.quality._image import IMAGE_ISSUES, find_image_issues
from mmfeat.quality._issues import find_label_issues, find_mismatched_pairs
from mmfeat.quality._oof import (
    ModalityProba,
    cross_val_modality_proba,
    modality_models,
)
from mmfeat.quality._report import CHECKS, QualityReport, quality_report

__all__ = [
    "CHECKS",
    "IMAGE_ISSUES",
    "ImageQuality",
    "LearningCurveReport",
    "ModalityProba",
    "QualityReport",
    "cross_val_modality_proba",
    "find_duplicates",
    "find_image_issues",
    "find_label_issues",
    "find_mismatched_pairs",
    "learning_curve_report",
    "modality_models",
    "quality_report",
]
