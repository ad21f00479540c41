"""Fusion of modalities: feature level and model level.

Feature level, ``F = a·F1 ⊕ b·F2 ⊕ …``: :class:`MultimodalFuser` (and
:func:`make_fuser`, :func:`fusion_weight_grid`). Model level,
``Y = w1·Y1 + w2·Y2 + …``: :class:`LateFusionClassifier` (a weighted sum of
per-modality probabilities, weights given or learned out-of-fold) and
:class:`ModalityStackingClassifier` (a meta-model on them), one model per
modality, scoring rows that miss a modality from the ones they have. Deep
fusion: :class:`NeuralFusionClassifier`, one network with an encoder per
modality trained end to end (torch). :class:`FusionSearchCV` chooses among
all of them (and each modality alone) by cross-validation.

:func:`get_modalities` tells what a fitted model's modalities are and
:func:`predict_with_presence` which of them each row had.
"""

from mmfeat.fusion._fuser import MultimodalFuser, fusion_weight_grid, make_fuser
from mmfeat.fusion._introspect import (
    Modality,
    find_fuser,
    get_modalities,
    is_fusion_model,
    is_modality_ensemble,
    predict_with_presence,
    split_modality_model,
    unwrap_model,
)
from mmfeat.fusion._late import LateFusionClassifier
from mmfeat.fusion._meta import NonNegativeLogisticRegression
from mmfeat.fusion._neural import NeuralFusionClassifier
from mmfeat.fusion._search import FusionSearchCV
from mmfeat.fusion._stacking import ModalityStackingClassifier

__all__ = [
    "FusionSearchCV",
    "LateFusionClassifier",
    "Modality",
    "ModalityStackingClassifier",
    "MultimodalFuser",
    "NeuralFusionClassifier",
    "NonNegativeLogisticRegression",
    "find_fuser",
    "fusion_weight_grid",
    "get_modalities",
    "is_fusion_model",
    "is_modality_ensemble",
    "make_fuser",
    "predict_with_presence",
    "split_modality_model",
    "unwrap_model",
]
